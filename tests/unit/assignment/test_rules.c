/* test_rules.c - the compiled model's checks, routing, recusal and both strategies,
 * without a broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "helpers.h"

/* G1 and G2 are handling groups; U-S1 and U-S2 are units cases are about. */
static const char units[] =
    "'units': [{'id': 'G0', 'name': 'n', 'kind': 'commission'},"
    " {'id': 'G1', 'name': 'n', 'kind': 'inspection_group', 'head': 'h1'},"
    " {'id': 'G2', 'name': 'n', 'kind': 'inspection_group'},"
    " {'id': 'U-S1', 'name': 'n', 'kind': 'street_office'},"
    " {'id': 'U-S2', 'name': 'n', 'kind': 'bureau'}]";

static char *directory(const char *officers)
{
  size_t n = strlen(units) + strlen(officers) + 32;
  char *text = malloc(n);
  snprintf(text, n, "{%s, 'officers': [%s]}", units, officers);
  return text;
}

/* Builds a model of 'rules' over the units above and 'officers'. */
static struct assignment_model *build(const char *rules, const char *officers)
{
  char *dir = directory(officers);
  struct assignment_model *m = model_of(rules, dir);
  free(dir);
  assert_non_null(m);
  return m;
}

static void facts_of(const struct assignment_model *m, const char *data,
                     struct assignment_facts *f, json_t **doc)
{
  *doc = jq(data);
  assert_non_null(*doc);
  assignment_facts_read(m, *doc, f);
}

/* Routes and chooses one case; returns the officer id or NULL. 'load' may be NULL
 * (all zero); 'ticket' for round robin. */
struct outcome {
  struct assignment_route route;
  struct assignment_result result;
  const char *officer;
};

static void decide(const struct assignment_model *m, const char *data,
                   const long long *load, const bool *excluded, unsigned long long ticket,
                   struct outcome *out)
{
  struct assignment_facts f;
  json_t *doc;
  long long zeros[64] = {0};
  facts_of(m, data, &f, &doc);
  assignment_route(m, &f, &out->route);
  struct assignment_ask ask = {.facts = &f,
                               .route = &out->route,
                               .load = load ? load : zeros,
                               .excluded = excluded,
                               .ticket = ticket};
  assignment_choose(m, &ask, &out->result);
  out->officer = out->result.officer >= 0 ? m->officers[out->result.officer].id : NULL;
  json_decref(doc);
}

static const char *recused_reason(const struct assignment_model *m,
                                  const struct assignment_result *r, const char *id)
{
  for(size_t i = 0; i < r->nrecused; i++)
    if(strcmp(m->officers[r->recused[i].officer].id, id) == 0)
      return r->recused[i].reason;
  return NULL;
}

/* ---- the model's checks ------------------------------------------------------------ */

static void expect_refused(const char *rules, const char *officers, const char *message)
{
  char *dir = directory(officers);
  json_t *r = jq(rules), *d = jq(dir);
  struct assignment_model *m = NULL;
  char *why = NULL;
  assert_int_equal(assignment_model_new(r, d, &m, &why), DUB_ERR_CONFIG);
  assert_null(m);
  assert_string_equal(why, message);
  free(why);
  json_decref(r);
  json_decref(d);
  free(dir);
}

static void test_model_checks_cross_references(void **state)
{
  (void)state;
  const char *ok_rules = "{'rules': [], 'fallback_unit': 'G0'}";
  const char *ok_officers = "{'id': 'h1', 'name': 'n', 'unit': 'G1', 'roles': ['head']}";
  expect_refused(ok_rules, "{'id': 'a', 'name': 'n', 'unit': 'G9', 'roles': ['handler']}",
                 "directory.json: /officers/0/unit: no unit 'G9'");
  expect_refused(ok_rules,
                 "{'id': 'h1', 'name': 'n', 'unit': 'G1', 'roles': ['head']},"
                 "{'id': 'h1', 'name': 'n', 'unit': 'G2', 'roles': ['handler']}",
                 "directory.json: /officers/1/id: officer 'h1' is also /officers/0");
  expect_refused(ok_rules,
                 "{'id': 'h1', 'name': 'n', 'unit': 'G1', 'roles': ['head'],"
                 " 'conflicts': ['U-S1', 'U-NONE']}",
                 "directory.json: /officers/0/conflicts/1: no unit 'U-NONE'");
  /* G1 names h1 as its head; without h1 the reference dangles. */
  expect_refused(ok_rules, "{'id': 'x', 'name': 'n', 'unit': 'G1', 'roles': ['head']}",
                 "directory.json: /units/1/head: no officer 'h1'");
  expect_refused("{'rules': [{'id': 'r1', 'unit': 'G1', 'strategy': 'least_loaded'},"
                 " {'id': 'r2', 'unit': 'G7', 'strategy': 'least_loaded'}],"
                 " 'fallback_unit': 'G0'}",
                 ok_officers,
                 "rules.json: /rules/1/unit: no unit 'G7' in directory.json");
  expect_refused("{'rules': [{'id': 'r1', 'unit': 'G1', 'strategy': 'least_loaded'},"
                 " {'id': 'r1', 'unit': 'G2', 'strategy': 'round_robin'}],"
                 " 'fallback_unit': 'G0'}",
                 ok_officers, "rules.json: /rules/1/id: rule 'r1' is also /rules/0");
  expect_refused("{'rules': [], 'fallback_unit': 'G8'}", ok_officers,
                 "rules.json: /fallback_unit: no unit 'G8' in directory.json");

  json_t *r = jq("{'rules': [], 'fallback_unit': 'G0'}");
  json_t *d = jq("{'units': [{'id': 'G0', 'name': 'n', 'kind': 'commission',"
                 " 'parent': 'G5'}], 'officers': []}");
  struct assignment_model *m = NULL;
  char *why = NULL;
  assert_int_equal(assignment_model_new(r, d, &m, &why), DUB_ERR_CONFIG);
  assert_string_equal(why, "directory.json: /units/0/parent: no unit 'G5'");
  free(why);
  json_decref(d);
  d = jq("{'units': [{'id': 'G0', 'name': 'n', 'kind': 'commission'},"
         " {'id': 'G0', 'name': 'm', 'kind': 'bureau'}], 'officers': []}");
  assert_int_equal(assignment_model_new(r, d, &m, &why), DUB_ERR_CONFIG);
  assert_string_equal(why, "directory.json: /units/1/id: unit 'G0' is also /units/0");
  free(why);
  json_decref(d);
  json_decref(r);
}

static void test_shipped_configuration_compiles(void **state)
{
  (void)state;
  json_t *r = json_load_file("deploy/config/rules.json", 0, NULL);
  json_t *d = json_load_file("deploy/config/directory.json", 0, NULL);
  struct assignment_model *m = NULL;
  char *why = NULL;
  assert_int_equal(assignment_model_new(r, d, &m, &why), DUB_OK);
  assert_int_equal(m->nrules, 4);
  assert_string_equal(m->units[m->fallback_unit].id, "U-CMO");
  /* U-IG-03: LI is head and handler, ZHOU and WU handlers: all in the handler tier. */
  const struct assignment_unit *u = &m->units[assignment_model_unit(m, "U-IG-03")];
  assert_int_equal(u->nhandlers, 3);
  assert_int_equal(u->nheads, 0);
  assert_string_equal(m->officers[u->handlers[0]].id, "O-IG03-LI");
  assignment_model_free(m);
  json_decref(r);
  json_decref(d);
}

/* ---- routing ----------------------------------------------------------------------- */

static const char plain_officers[] =
    "{'id': 'h1', 'name': 'n', 'unit': 'G1', 'roles': ['head']},"
    "{'id': 'a1', 'name': 'n', 'unit': 'G1', 'roles': ['handler']},"
    "{'id': 'b2', 'name': 'n', 'unit': 'G2', 'roles': ['handler']},"
    "{'id': 'z0', 'name': 'n', 'unit': 'G0', 'roles': ['handler']},"
    "{'id': 's1', 'name': 'n', 'unit': 'U-S1', 'roles': ['handler', 'head']}";

static const char *route_of(const struct assignment_model *m, const char *data)
{
  struct outcome o;
  decide(m, data, NULL, NULL, 0, &o);
  assignment_result_release(&o.result);
  return o.route.rule >= 0 ? m->rules[o.route.rule].id : "fallback";
}

static void test_first_matching_rule_wins(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': ["
            " {'id': 'r-urgent', 'match': {'severity': ['urgent']}, 'unit': 'G1',"
            "  'strategy': 'least_loaded'},"
            " {'id': 'r-any', 'match': {}, 'unit': 'G2', 'strategy': 'round_robin'},"
            " {'id': 'r-never-reached', 'unit': 'G1', 'strategy': 'least_loaded'}],"
            " 'fallback_unit': 'G0'}",
            plain_officers);
  const char *urgent = "{'kind': 'clue', 'category': 'violation', 'severity': 'urgent',"
                       " 'subject': {'unit_id': 'U-S2'}}";
  const char *low = "{'kind': 'clue', 'category': 'violation', 'severity': 'low',"
                    " 'subject': {'unit_id': 'U-S2'}}";
  assert_string_equal(route_of(m, urgent), "r-urgent");
  /* Both later rules fit anything; the earlier of them wins. */
  assert_string_equal(route_of(m, low), "r-any");
  struct outcome o;
  decide(m, low, NULL, NULL, 0, &o);
  assert_int_equal(o.route.strategy, ASSIGNMENT_ROUND_ROBIN);
  assert_string_equal(m->units[o.route.unit].id, "G2");
  assert_false(o.route.fallback);
  assignment_result_release(&o.result);
  assignment_model_free(m);
}

static void test_every_match_field(void **state)
{
  (void)state;
  struct assignment_model *m = build(
      "{'rules': ["
      " {'id': 'kind', 'match': {'kind': ['finding', 'weak_link']}, 'unit': 'G1',"
      "  'strategy': 'least_loaded'},"
      " {'id': 'category', 'match': {'category': ['work_style']}, 'unit': 'G1',"
      "  'strategy': 'least_loaded'},"
      " {'id': 'severity', 'match': {'severity': ['high']}, 'unit': 'G1',"
      "  'strategy': 'least_loaded'},"
      " {'id': 'region', 'match': {'region_prefix': ['3201', '110105']}, 'unit': 'G1',"
      "  'strategy': 'least_loaded'},"
      " {'id': 'subject', 'match': {'subject_unit': ['U-S2', 'U-ELSEWHERE']},"
      "  'unit': 'G1', 'strategy': 'least_loaded'},"
      " {'id': 'all', 'match': {'kind': ['clue'], 'category': ['violation'],"
      "  'severity': ['urgent'], 'region_prefix': ['44'], 'subject_unit': ['U-S1']},"
      "  'unit': 'G2', 'strategy': 'least_loaded'},"
      " {'id': 'empty-lists', 'match': {'kind': [], 'category': [], 'severity': [],"
      "  'region_prefix': [], 'subject_unit': []}, 'unit': 'G2',"
      "  'strategy': 'least_loaded'}],"
      " 'fallback_unit': 'G0'}",
      plain_officers);
#define CASE(kind, cat, sev, region, subject)                                            \
  "{'kind': '" kind "', 'category': '" cat "', 'severity': '" sev "'" region             \
  ", 'subject': {'unit_id': '" subject "'}}"
  assert_string_equal(route_of(m, CASE("finding", "violation", "low", "", "U-S1")),
                      "kind");
  assert_string_equal(route_of(m, CASE("weak_link", "violation", "low", "", "U-S1")),
                      "kind");
  assert_string_equal(route_of(m, CASE("clue", "work_style", "low", "", "U-S1")),
                      "category");
  assert_string_equal(route_of(m, CASE("clue", "violation", "high", "", "U-S1")),
                      "severity");
  assert_string_equal(
      route_of(m, CASE("clue", "violation", "low", ", 'region': '320102'", "U-S1")),
      "region");
  assert_string_equal(
      route_of(m, CASE("clue", "violation", "low", ", 'region': '110105'", "U-S1")),
      "region");
  /* A prefix must be a prefix: 110106 does not start with 110105. */
  assert_string_equal(
      route_of(m, CASE("clue", "violation", "low", ", 'region': '110106'", "U-S1")),
      "empty-lists");
  /* Without a region, a rule with region_prefix does not fit. */
  assert_string_equal(route_of(m, CASE("clue", "violation", "urgent", "", "U-S1")),
                      "empty-lists");
  assert_string_equal(route_of(m, CASE("clue", "violation", "low", "", "U-S2")),
                      "subject");
  /* A subject unit the directory does not know is matched by its id. */
  assert_string_equal(route_of(m, CASE("clue", "violation", "low", "", "U-ELSEWHERE")),
                      "subject");
  assert_string_equal(route_of(m, CASE("clue", "violation", "low", "", "U-UNKNOWN")),
                      "empty-lists");
  /* Every field of 'all' fits ... */
  assert_string_equal(
      route_of(m, CASE("clue", "violation", "urgent", ", 'region': '440300'", "U-S1")),
      "all");
  /* ... and each one alone that does not fit makes it miss. */
  assert_string_equal(
      route_of(m, CASE("clue", "violation", "urgent", ", 'region': '450300'", "U-S1")),
      "empty-lists");
  assert_string_equal(
      route_of(m, CASE("clue", "violation", "urgent", ", 'region': '440300'", "U-S3")),
      "empty-lists");
  assert_string_equal(route_of(m, CASE("clue", "risk_prevention", "urgent",
                                       ", 'region': '440300'", "U-S1")),
                      "empty-lists");
  assert_string_equal(route_of(m, CASE("complaint", "violation", "urgent",
                                       ", 'region': '440300'", "U-S1")),
                      "empty-lists");
  assignment_model_free(m);
}

static void test_no_match_goes_to_fallback(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': [{'id': 'r', 'match': {'kind': ['warning']}, 'unit': 'G1',"
            " 'strategy': 'least_loaded'}], 'fallback_unit': 'G2',"
            " 'fallback_strategy': 'round_robin'}",
            plain_officers);
  struct outcome o;
  decide(m, CASE("clue", "violation", "low", "", "U-S1"), NULL, NULL, 0, &o);
  assert_true(o.route.fallback);
  assert_int_equal(o.route.rule, -1);
  assert_string_equal(m->units[o.route.unit].id, "G2");
  assert_int_equal(o.route.strategy, ASSIGNMENT_ROUND_ROBIN);
  assert_string_equal(o.officer, "b2");
  assignment_result_release(&o.result);
  assignment_model_free(m);
}

/* ---- recusal ----------------------------------------------------------------------- */

static void test_unit_that_is_the_subject_goes_to_fallback(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': [{'id': 'r-self', 'match': {'subject_unit': ['U-S1']},"
            " 'unit': 'U-S1', 'strategy': 'least_loaded'}], 'fallback_unit': 'G0'}",
            plain_officers);
  struct outcome o;
  decide(m, CASE("clue", "violation", "low", "", "U-S1"), NULL, NULL, 0, &o);
  assert_true(o.route.fallback);
  assert_string_equal(m->units[o.route.unit].id, "G0");
  assert_string_equal(m->units[o.route.recused_unit].id, "U-S1");
  assert_string_equal(o.officer, "z0");
  /* The subject unit's own officer is recorded as recused. */
  assert_int_equal(o.result.nrecused, 1);
  assert_string_equal(recused_reason(m, &o.result, "s1"), "subject_unit");
  assignment_result_release(&o.result);
  assignment_model_free(m);
}

static void test_fallback_that_is_the_subject_needs_manual(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': [], 'fallback_unit': 'U-S1'}", plain_officers);
  struct outcome o;
  decide(m, CASE("clue", "violation", "low", "", "U-S1"), NULL, NULL, 0, &o);
  assert_string_equal(m->units[o.route.unit].id, "U-S1");
  assert_null(o.officer);
  assert_int_equal(o.result.officer, -1);
  assert_int_equal(o.result.nrecused, 1);
  assert_string_equal(recused_reason(m, &o.result, "s1"), "subject_unit");
  assignment_result_release(&o.result);
  assignment_model_free(m);
}

static const char conflict_officers[] =
    "{'id': 'h1', 'name': 'n', 'unit': 'G1', 'roles': ['head'], 'conflicts': ['U-S2']},"
    "{'id': 'c1', 'name': 'n', 'unit': 'G1', 'roles': ['handler'], 'conflicts': "
    "['U-S1']},"
    "{'id': 'c2', 'name': 'n', 'unit': 'G1', 'roles': ['handler'],"
    " 'conflicts': ['U-S2', 'U-S1']},"
    "{'id': 'd3', 'name': 'n', 'unit': 'G1', 'roles': ['handler'], 'active': false,"
    " 'conflicts': ['U-S1']},"
    "{'id': 'e4', 'name': 'n', 'unit': 'G1', 'roles': ['handler']},"
    "{'id': 'z0', 'name': 'n', 'unit': 'G0', 'roles': ['handler']}";

static void test_declared_conflicts_are_recused(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': [{'id': 'r', 'unit': 'G1', 'strategy': 'least_loaded'}],"
            " 'fallback_unit': 'G0'}",
            conflict_officers);
  long long load[8] = {0};
  /* e4 is the busiest, but the only one without a conflict with U-S1. */
  load[officer(m, "e4")] = 9;
  struct outcome o;
  decide(m, CASE("clue", "violation", "low", "", "U-S1"), load, NULL, 0, &o);
  assert_string_equal(o.officer, "e4");
  /* Every officer of the unit with a conflict, inactive ones too, each once. */
  assert_int_equal(o.result.nrecused, 3);
  assert_string_equal(recused_reason(m, &o.result, "c1"), "conflict");
  assert_string_equal(recused_reason(m, &o.result, "c2"), "conflict");
  assert_string_equal(recused_reason(m, &o.result, "d3"), "conflict");
  assert_null(recused_reason(m, &o.result, "h1"));
  assignment_result_release(&o.result);

  /* About U-S2: c2 and the head h1 are recused; c1 is free again. */
  decide(m, CASE("clue", "violation", "low", "", "U-S2"), load, NULL, 0, &o);
  assert_string_equal(o.officer, "c1");
  assert_int_equal(o.result.nrecused, 2);
  assert_string_equal(recused_reason(m, &o.result, "h1"), "conflict");
  assignment_result_release(&o.result);

  /* With e4 away only the head h1 is left for U-S1; without h1, nobody. */
  bool excluded[8] = {false};
  excluded[officer(m, "e4")] = true;
  decide(m, CASE("clue", "violation", "low", "", "U-S1"), load, excluded, 0, &o);
  assert_string_equal(o.officer, "h1");
  assignment_result_release(&o.result);
  excluded[officer(m, "h1")] = true;
  decide(m, CASE("clue", "violation", "low", "", "U-S1"), load, excluded, 0, &o);
  assert_null(o.officer);
  assert_string_equal(m->units[o.route.unit].id, "G1");
  assert_false(o.route.fallback);
  assignment_result_release(&o.result);
  assignment_model_free(m);
}

static void test_conflict_reasons(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': [], 'fallback_unit': 'G0'}", conflict_officers);
  struct assignment_facts f;
  json_t *doc;
  facts_of(m, CASE("clue", "violation", "low", "", "G1"), &f, &doc);
  assert_string_equal(assignment_conflict(m, officer(m, "c1"), &f), "subject_unit");
  json_decref(doc);
  facts_of(m, CASE("clue", "violation", "low", "", "U-S1"), &f, &doc);
  assert_string_equal(assignment_conflict(m, officer(m, "c1"), &f), "conflict");
  assert_null(assignment_conflict(m, officer(m, "e4"), &f));
  json_decref(doc);
  /* No subject (data that skipped the schema): nobody has a conflict with it. */
  facts_of(m, "{'kind': 'clue'}", &f, &doc);
  assert_null(assignment_conflict(m, officer(m, "c1"), &f));
  json_decref(doc);
  assignment_model_free(m);
}

/* ---- the choice within the unit ---------------------------------------------------- */

static const char team[] =
    "{'id': 'h1', 'name': 'n', 'unit': 'G1', 'roles': ['head']},"
    "{'id': 'o-c', 'name': 'n', 'unit': 'G1', 'roles': ['handler']},"
    "{'id': 'o-a', 'name': 'n', 'unit': 'G1', 'roles': ['handler', 'supervisor']},"
    "{'id': 'o-b', 'name': 'n', 'unit': 'G1', 'roles': ['handler'], 'max_open': 2},"
    "{'id': 'o-d', 'name': 'n', 'unit': 'G1', 'roles': ['handler'], 'active': false},"
    "{'id': 'lead', 'name': 'n', 'unit': 'G1', 'roles': ['leader']},"
    "{'id': 'z0', 'name': 'n', 'unit': 'G0', 'roles': ['handler']}";

#define ABOUT_S1 CASE("clue", "violation", "low", "", "U-S1")

static const char *choose_in(const struct assignment_model *m, const long long *load,
                             const bool *excluded, unsigned long long ticket)
{
  struct outcome o;
  decide(m, ABOUT_S1, load, excluded, ticket, &o);
  assignment_result_release(&o.result);
  return o.officer;
}

static void test_least_loaded(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': [{'id': 'r', 'unit': 'G1', 'strategy': 'least_loaded'}],"
            " 'fallback_unit': 'G0'}",
            team);
  long long load[8] = {0};
  /* All at zero: the smallest id wins the tie, whatever the directory order. */
  assert_string_equal(choose_in(m, load, NULL, 0), "o-a");
  load[officer(m, "o-a")] = 3;
  load[officer(m, "o-b")] = 1;
  load[officer(m, "o-c")] = 1;
  assert_string_equal(choose_in(m, load, NULL, 0), "o-b");
  load[officer(m, "o-b")] = 2; /* at max_open */
  assert_string_equal(choose_in(m, load, NULL, 0), "o-c");
  /* The inactive o-d has no cases at all and is still never chosen. */
  load[officer(m, "o-c")] = 7;
  assert_string_equal(choose_in(m, load, NULL, 0), "o-a");
  /* The ticket means nothing to least_loaded. */
  assert_string_equal(choose_in(m, load, NULL, 5), "o-a");
  assignment_model_free(m);
}

static void test_round_robin(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': [{'id': 'r', 'unit': 'G1', 'strategy': 'round_robin'}],"
            " 'fallback_unit': 'G0'}",
            team);
  long long load[8] = {0};
  /* Eligible handlers by id: o-a, o-b, o-c (o-d is inactive and takes no turn, so
   * nobody gets a double share): tickets walk that rotation. */
  const char *expect[] = {"o-a", "o-b", "o-c", "o-a", "o-b", "o-c"};
  for(unsigned t = 0; t < 6; t++)
    assert_string_equal(choose_in(m, load, NULL, t), expect[t]);
  /* Load means nothing to round_robin, except at max_open: o-b leaves the rotation. */
  load[officer(m, "o-a")] = 50;
  load[officer(m, "o-b")] = 2;
  assert_string_equal(choose_in(m, load, NULL, 0), "o-a");
  assert_string_equal(choose_in(m, load, NULL, 1), "o-c");
  assert_string_equal(choose_in(m, load, NULL, 2), "o-a");
  assignment_model_free(m);
}

static void test_heads_are_the_last_resort(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': [{'id': 'r', 'unit': 'G1', 'strategy': 'least_loaded'}],"
            " 'fallback_unit': 'G0'}",
            team);
  long long load[8] = {0};
  bool excluded[8] = {false};
  load[officer(m, "h1")] = 40; /* busier than anyone, still only a last resort */
  assert_string_equal(choose_in(m, load, NULL, 0), "o-a");
  excluded[officer(m, "o-a")] = true;
  excluded[officer(m, "o-c")] = true;
  load[officer(m, "o-b")] = 2;
  assert_string_equal(choose_in(m, load, excluded, 0), "h1");
  /* 'leader' and 'supervisor' alone never make anyone eligible. */
  excluded[officer(m, "h1")] = true;
  assert_null(choose_in(m, load, excluded, 0));
  assignment_model_free(m);
}

static void test_caps_and_inactive_leave_nobody(void **state)
{
  (void)state;
  struct assignment_model *m = build(
      "{'rules': [{'id': 'r', 'unit': 'G1', 'strategy': 'round_robin'}],"
      " 'fallback_unit': 'G0'}",
      "{'id': 'h1', 'name': 'n', 'unit': 'G1', 'roles': ['head'], 'max_open': 1},"
      "{'id': 'o1', 'name': 'n', 'unit': 'G1', 'roles': ['handler'], 'max_open': 3},"
      "{'id': 'o2', 'name': 'n', 'unit': 'G1', 'roles': ['handler'], 'active': false}");
  long long load[4] = {0};
  load[officer(m, "o1")] = 3;
  assert_string_equal(choose_in(m, load, NULL, 0), "h1");
  load[officer(m, "h1")] = 1;
  struct outcome o;
  decide(m, ABOUT_S1, load, NULL, 0, &o);
  assert_int_equal(o.result.officer, -1);
  assert_string_equal(m->units[o.route.unit].id, "G1"); /* stays with the unit */
  assignment_result_release(&o.result);
  assignment_model_free(m);
}

static void test_returners_are_excluded(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': [{'id': 'r', 'unit': 'G1', 'strategy': 'round_robin'}],"
            " 'fallback_unit': 'G0'}",
            team);
  long long load[8] = {0};
  bool excluded[8] = {false};
  excluded[officer(m, "o-b")] = true;
  /* o-b takes no turn: the rotation is o-a, o-c. */
  assert_string_equal(choose_in(m, load, excluded, 0), "o-a");
  assert_string_equal(choose_in(m, load, excluded, 1), "o-c");
  for(unsigned t = 0; t < 8; t++)
    assert_string_not_equal(choose_in(m, load, excluded, t), "o-b");
  assignment_model_free(m);
}

static void test_no_officer_keeps_the_recusals(void **state)
{
  (void)state;
  struct assignment_model *m =
      build("{'rules': [{'id': 'r', 'unit': 'G1', 'strategy': 'least_loaded'}],"
            " 'fallback_unit': 'G0'}",
            conflict_officers);
  struct assignment_facts f;
  json_t *doc;
  facts_of(m, ABOUT_S1, &f, &doc);
  struct assignment_route route;
  assignment_route(m, &f, &route);
  long long load[8] = {0};
  struct assignment_ask ask = {
      .facts = &f, .route = &route, .load = load, .no_officer = true};
  struct assignment_result r;
  assignment_choose(m, &ask, &r);
  assert_int_equal(r.officer, -1);
  assert_int_equal(r.nrecused, 3);
  assignment_result_release(&r);
  json_decref(doc);
  assignment_model_free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_model_checks_cross_references),
      cmocka_unit_test(test_shipped_configuration_compiles),
      cmocka_unit_test(test_first_matching_rule_wins),
      cmocka_unit_test(test_every_match_field),
      cmocka_unit_test(test_no_match_goes_to_fallback),
      cmocka_unit_test(test_unit_that_is_the_subject_goes_to_fallback),
      cmocka_unit_test(test_fallback_that_is_the_subject_needs_manual),
      cmocka_unit_test(test_declared_conflicts_are_recused),
      cmocka_unit_test(test_conflict_reasons),
      cmocka_unit_test(test_least_loaded),
      cmocka_unit_test(test_round_robin),
      cmocka_unit_test(test_heads_are_the_last_resort),
      cmocka_unit_test(test_caps_and_inactive_leave_nobody),
      cmocka_unit_test(test_returners_are_excluded),
      cmocka_unit_test(test_no_officer_keeps_the_recusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
