/* test_property.c - thousands of random directories, rules and cases, each decision
 * checked against a plain reading of the JSON documents: no officer with a conflict is
 * ever chosen; routing is the first matching rule; least_loaded never picks someone with
 * more open cases than an eligible colleague (and breaks ties by id); round_robin takes
 * the next eligible officer of the rotation; heads only when no handler is eligible.
 * DUB_PROPERTY_SEED=<n> replays one run; DUB_PROPERTY_RUNS=<n> changes how many. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "helpers.h"
#include "json/json.h"

static uint64_t rng_state;

static uint64_t next(void)
{
  uint64_t x = rng_state; /* xorshift64* */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 2685821657736338717ULL;
}

static unsigned below(unsigned n)
{
  return (unsigned)(next() % n);
}

static bool chance(unsigned percent)
{
  return below(100) < percent;
}

static const char *const kinds[] = {"clue", "finding", "complaint", "weak_link",
                                    "warning"};
static const char *const categories[] = {
    "political_building", "team_management", "work_management",
    "office_management",  "responsibility",  "discipline_enforcement",
    "risk_prevention",    "work_style",      "violation"};
static const char *const severities[] = {"low", "normal", "high", "urgent"};
static const char *const roles[] = {"handler", "head", "supervisor", "leader"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static json_t *subset(const char *const *values, size_t n, unsigned percent)
{
  json_t *list = json_array();
  for(size_t i = 0; i < n; i++)
    if(chance(percent))
      json_array_append_new(list, json_string(values[i]));
  return list;
}

static json_t *unit_ids(size_t nunits, unsigned percent, bool outsider)
{
  json_t *list = json_array();
  char id[16];
  for(size_t u = 0; u < nunits; u++) {
    snprintf(id, sizeof id, "U%zu", u);
    if(chance(percent))
      json_array_append_new(list, json_string(id));
  }
  if(outsider && chance(percent))
    json_array_append_new(list, json_string("U-OUT"));
  return list;
}

static json_t *random_directory(size_t nunits)
{
  json_t *units = json_array(), *officers = json_array();
  char id[16];
  for(size_t u = 0; u < nunits; u++) {
    snprintf(id, sizeof id, "U%zu", u);
    json_array_append_new(units, json_pack("{s:s, s:s, s:s}", "id", id, "name", "n",
                                           "kind", "inspection_group"));
  }
  size_t nofficers = below(40);
  for(size_t k = 0; k < nofficers; k++) {
    snprintf(id, sizeof id, "O%02u", below(100)); /* ids out of directory order */
    char unique[24];
    snprintf(unique, sizeof unique, "%s-%zu", id, k);
    char unit[16];
    snprintf(unit, sizeof unit, "U%u", below((unsigned)nunits));
    json_t *r = subset(roles, COUNT(roles), 40);
    if(!json_array_size(r))
      json_array_append_new(r, json_string(roles[below(COUNT(roles))]));
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", unique, "name", "n", "unit",
                          unit, "roles", r, "conflicts", unit_ids(nunits, 15, false));
    if(chance(85))
      json_object_set_new(o, "active", json_boolean(chance(85)));
    if(chance(50))
      json_object_set_new(o, "max_open", json_integer(1 + below(8)));
    json_array_append_new(officers, o);
  }
  return json_pack("{s:o, s:o}", "units", units, "officers", officers);
}

static json_t *random_rules(size_t nunits)
{
  json_t *list = json_array();
  char id[16], unit[16];
  size_t n = below(13);
  for(size_t k = 0; k < n; k++) {
    json_t *match = json_object();
    if(chance(40))
      json_object_set_new(match, "kind", subset(kinds, COUNT(kinds), 40));
    if(chance(40))
      json_object_set_new(match, "category", subset(categories, COUNT(categories), 30));
    if(chance(40))
      json_object_set_new(match, "severity", subset(severities, COUNT(severities), 50));
    if(chance(30)) {
      json_t *prefixes = json_array();
      for(unsigned p = below(3); p > 0; p--) {
        char prefix[8];
        unsigned len = 1 + below(3);
        for(unsigned c = 0; c < len; c++)
          prefix[c] = (char)('1' + below(2));
        prefix[len] = '\0';
        json_array_append_new(prefixes, json_string(prefix));
      }
      json_object_set_new(match, "region_prefix", prefixes);
    }
    if(chance(35))
      json_object_set_new(match, "subject_unit", unit_ids(nunits, 30, true));
    snprintf(id, sizeof id, "R%zu", k);
    snprintf(unit, sizeof unit, "U%u", below((unsigned)nunits));
    json_t *rule = json_pack("{s:s, s:s, s:s}", "id", id, "unit", unit, "strategy",
                             chance(50) ? "least_loaded" : "round_robin");
    if(chance(85))
      json_object_set_new(rule, "match", match);
    else
      json_decref(match);
    json_array_append_new(list, rule);
  }
  snprintf(unit, sizeof unit, "U%u", below((unsigned)nunits));
  json_t *rules = json_pack("{s:o, s:s}", "rules", list, "fallback_unit", unit);
  if(chance(50))
    json_object_set_new(rules, "fallback_strategy",
                        json_string(chance(50) ? "least_loaded" : "round_robin"));
  return rules;
}

static json_t *random_case(size_t nunits)
{
  char subject[16], region[8];
  if(chance(15))
    snprintf(subject, sizeof subject, "U-OUT");
  else
    snprintf(subject, sizeof subject, "U%u", below((unsigned)nunits));
  json_t *c =
      json_pack("{s:s, s:s, s:s, s:{s:s}}", "kind", kinds[below(COUNT(kinds))],
                "category", categories[below(COUNT(categories))], "severity",
                severities[below(COUNT(severities))], "subject", "unit_id", subject);
  if(chance(80)) {
    for(int i = 0; i < 6; i++)
      region[i] = (char)('1' + below(3));
    region[6] = '\0';
    json_object_set_new(c, "region", json_string(region));
  }
  return c;
}

/* ---- the oracle: the rules read straight from the JSON ----------------------------- */

static bool listed(const json_t *match, const char *field, const char *value)
{
  const json_t *list = json_object_get(match, field);
  return !json_array_size(list) || (value && dub_json_array_has_str(list, value));
}

static bool oracle_matches(const json_t *rule, const json_t *c)
{
  const json_t *m = json_object_get(rule, "match");
  const char *subject = dub_json_str(json_object_get(c, "subject"), "unit_id");
  if(!listed(m, "kind", dub_json_str(c, "kind")) ||
     !listed(m, "category", dub_json_str(c, "category")) ||
     !listed(m, "severity", dub_json_str(c, "severity")) ||
     !listed(m, "subject_unit", subject))
    return false;
  const json_t *prefixes = json_object_get(m, "region_prefix");
  const char *region = dub_json_str(c, "region");
  if(!json_array_size(prefixes))
    return true;
  size_t i;
  json_t *p;
  json_array_foreach(prefixes, i, p)
  {
    const char *s = json_string_value(p);
    if(region && strncmp(region, s, strlen(s)) == 0)
      return true;
  }
  return false;
}

/* The unit and rule id (NULL = fallback) a plain reading gives. */
static const char *oracle_route(const json_t *rules, const json_t *c,
                                const char **rule_id, const char **strategy, bool *self)
{
  const char *subject = dub_json_str(json_object_get(c, "subject"), "unit_id");
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(rules, "rules"), i, r)
  {
    if(!oracle_matches(r, c))
      continue;
    *self = strcmp(dub_json_str(r, "unit"), subject) == 0;
    if(*self)
      break;
    *rule_id = dub_json_str(r, "id");
    *strategy = dub_json_str(r, "strategy");
    return dub_json_str(r, "unit");
  }
  *rule_id = NULL;
  *strategy = dub_json_str(rules, "fallback_strategy");
  if(!*strategy)
    *strategy = "least_loaded";
  return dub_json_str(rules, "fallback_unit");
}

static bool oracle_conflict(const json_t *o, const char *subject)
{
  return strcmp(dub_json_str(o, "unit"), subject) == 0 ||
         dub_json_array_has_str(json_object_get(o, "conflicts"), subject);
}

/* 1 handler tier, 2 head tier, 0 never chosen. */
static int tier(const json_t *o)
{
  const json_t *r = json_object_get(o, "roles");
  return dub_json_array_has_str(r, "handler") ? 1
         : dub_json_array_has_str(r, "head")  ? 2
                                              : 0;
}

static bool oracle_eligible(const json_t *o, const char *unit, const char *subject,
                            long long load, bool excluded)
{
  long long cap = 0;
  return strcmp(dub_json_str(o, "unit"), unit) == 0 && dub_json_bool(o, "active", true) &&
         !excluded && !oracle_conflict(o, subject) &&
         !(dub_json_int(o, "max_open", &cap) && load >= cap);
}

struct run {
  unsigned long long seed;
  size_t decisions, assigned, heads, nobody, fallbacks, recusals;
};

#define CHECK(cond, ...)                                                                 \
  do {                                                                                   \
    if(!(cond)) {                                                                        \
      print_error("seed %llu, decision %zu: ", run->seed, run->decisions);               \
      fail_msg(__VA_ARGS__);                                                             \
    }                                                                                    \
  } while(0)

/* One decision, checked in full. Updates 'load' as the service would. */
static void check_one(struct run *run, const struct assignment_model *m,
                      const json_t *rules, const json_t *dir, const json_t *c,
                      long long *load, bool *excluded)
{
  const json_t *officers = json_object_get(dir, "officers");
  const char *subject = dub_json_str(json_object_get(c, "subject"), "unit_id");
  const char *want_rule = NULL, *want_strategy = NULL;
  bool self = false; /* the matching rule's unit was the subject unit */
  const char *want_unit = oracle_route(rules, c, &want_rule, &want_strategy, &self);
  struct assignment_facts f;
  struct assignment_route route;
  struct assignment_result r;
  unsigned long long ticket = next() % 1000;
  assignment_facts_read(m, c, &f);
  assignment_route(m, &f, &route);
  struct assignment_ask ask = {
      .facts = &f, .route = &route, .load = load, .excluded = excluded, .ticket = ticket};
  assignment_choose(m, &ask, &r);
  run->decisions++;

  CHECK(strcmp(m->units[route.unit].id, want_unit) == 0, "unit %s, expected %s",
        m->units[route.unit].id, want_unit);
  CHECK(route.rule >= 0 ? want_rule && strcmp(m->rules[route.rule].id, want_rule) == 0
                        : want_rule == NULL,
        "rule %s, expected %s", route.rule >= 0 ? m->rules[route.rule].id : "fallback",
        want_rule ? want_rule : "fallback");
  CHECK(strcmp(assignment_strategy_name(route.strategy), want_strategy) == 0,
        "strategy %s, expected %s", assignment_strategy_name(route.strategy),
        want_strategy);
  run->fallbacks += route.fallback;

  /* Recusals: exactly the officers of the unit (and of a rule's unit that was the
   * subject) with a conflict. */
  size_t want_recused = 0;
  for(size_t i = 0; i < m->nofficers; i++) {
    const json_t *o = json_array_get(officers, i);
    const char *home = dub_json_str(o, "unit");
    if(oracle_conflict(o, subject) &&
       (strcmp(home, want_unit) == 0 || (self && strcmp(home, subject) == 0)))
      want_recused++;
  }
  CHECK(r.nrecused == want_recused, "%zu recused, expected %zu", r.nrecused,
        want_recused);
  for(size_t k = 0; k < r.nrecused; k++)
    CHECK(
        oracle_conflict(json_array_get(officers, (size_t)r.recused[k].officer), subject),
        "recused without a conflict");
  run->recusals += r.nrecused;

  /* The eligible officers of each tier, by id. */
  int best[3] = {-1, -1, -1};
  size_t eligible[3] = {0};
  for(size_t i = 0; i < m->nofficers; i++) {
    const json_t *o = json_array_get(officers, i);
    int t = tier(o);
    if(!t || !oracle_eligible(o, want_unit, subject, load[i], excluded[i]))
      continue;
    eligible[t]++;
    if(best[t] < 0 || load[i] < load[best[t]] ||
       (load[i] == load[best[t]] &&
        strcmp(m->officers[i].id, m->officers[best[t]].id) < 0))
      best[t] = (int)i;
  }
  if(r.officer < 0) {
    CHECK(eligible[1] == 0 && eligible[2] == 0,
          "nobody chosen with %zu handlers, %zu heads eligible", eligible[1],
          eligible[2]);
    run->nobody++;
    assignment_result_release(&r);
    return;
  }
  const json_t *o = json_array_get(officers, (size_t)r.officer);
  /* The hard rule, checked on its own. */
  CHECK(!oracle_conflict(o, subject), "officer %s has a conflict with %s",
        m->officers[r.officer].id, subject);
  CHECK(oracle_eligible(o, want_unit, subject, load[r.officer], excluded[r.officer]),
        "officer %s is not eligible", m->officers[r.officer].id);
  int t = tier(o);
  CHECK(t == 1 || (t == 2 && eligible[1] == 0), "a head chosen over %zu handlers",
        eligible[1]);
  run->heads += t == 2;
  if(route.strategy == ASSIGNMENT_LEAST_LOADED) {
    for(size_t i = 0; i < m->nofficers; i++) {
      const json_t *other = json_array_get(officers, i);
      CHECK(!(tier(other) == t &&
              oracle_eligible(other, want_unit, subject, load[i], excluded[i]) &&
              load[i] < load[r.officer]),
            "%s has %lld open cases, eligible %s only %lld", m->officers[r.officer].id,
            load[r.officer], m->officers[i].id, load[i]);
    }
    CHECK(r.officer == best[t], "tie not broken by id: %s instead of %s",
          m->officers[r.officer].id, m->officers[best[t]].id);
  } else {
    /* The eligible officers of the tier in id order; the one at ticket % their
     * number. */
    const char *ids[64];
    int index[64];
    size_t ne = 0;
    for(size_t i = 0; i < m->nofficers; i++) {
      const json_t *other = json_array_get(officers, i);
      if(tier(other) != t ||
         !oracle_eligible(other, want_unit, subject, load[i], excluded[i]))
        continue;
      size_t at = ne++;
      while(at > 0 && strcmp(ids[at - 1], m->officers[i].id) > 0) {
        ids[at] = ids[at - 1];
        index[at] = index[at - 1];
        at--;
      }
      ids[at] = m->officers[i].id;
      index[at] = (int)i;
    }
    int want = index[ticket % ne];
    CHECK(r.officer == want, "round robin chose %s, expected %s",
          m->officers[r.officer].id, want >= 0 ? m->officers[want].id : "nobody");
  }
  load[r.officer]++;
  run->assigned++;
  assignment_result_release(&r);
}

static void test_random_models(void **state)
{
  (void)state;
  const char *seed_env = getenv("DUB_PROPERTY_SEED");
  const char *runs_env = getenv("DUB_PROPERTY_RUNS");
  unsigned long long first = seed_env ? strtoull(seed_env, NULL, 10) : 1;
  size_t runs = seed_env ? 1 : runs_env ? strtoul(runs_env, NULL, 10) : 3000;
  struct run total = {0};
  for(size_t k = 0; k < runs; k++) {
    struct run run = {.seed = first + k};
    rng_state = run.seed * 0x9E3779B97F4A7C15ULL + 1;
    size_t nunits = 1 + below(7);
    json_t *dir = random_directory(nunits);
    json_t *rules = random_rules(nunits);
    struct assignment_model *m = NULL;
    char *why = NULL;
    if(assignment_model_new(rules, dir, &m, &why))
      fail_msg("seed %llu: model refused: %s", run.seed, why);
    long long *load = calloc(m->nofficers + 1, sizeof *load);
    bool *excluded = calloc(m->nofficers + 1, sizeof *excluded);
    for(size_t i = 0; i < m->nofficers; i++) {
      load[i] = below(4);
      excluded[i] = chance(5);
    }
    /* A stream of cases over the same directory: loads grow as cases are assigned. */
    for(unsigned c = 0; c < 30; c++) {
      json_t *kase = random_case(nunits);
      check_one(&run, m, rules, dir, kase, load, excluded);
      json_decref(kase);
    }
    total.decisions += run.decisions;
    total.assigned += run.assigned;
    total.heads += run.heads;
    total.nobody += run.nobody;
    total.fallbacks += run.fallbacks;
    total.recusals += run.recusals;
    free(load);
    free(excluded);
    assignment_model_free(m);
    json_decref(dir);
    json_decref(rules);
  }
  print_message("%zu models, %zu decisions: %zu assigned (%zu to heads), %zu to nobody, "
                "%zu by fallback, %zu recusals\n",
                runs, total.decisions, total.assigned, total.heads, total.nobody,
                total.fallbacks, total.recusals);
  /* The generator must reach every path, or the run proves little. */
  if(!seed_env) {
    assert_true(total.heads > 0);
    assert_true(total.nobody > 0);
    assert_true(total.fallbacks > 0);
    assert_true(total.recusals > 0);
    assert_true(total.assigned > total.decisions / 4);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_models),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
