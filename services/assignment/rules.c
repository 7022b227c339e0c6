/* rules.c - first-match routing, recusal and the choice of an officer. */
#include "rules.h"

#include "core/alloc.h"
#include "json/json.h"

#include <stdlib.h>
#include <string.h>

void assignment_facts_read(const struct assignment_model *m, const json_t *data,
                           struct assignment_facts *out)
{
  out->kind = assignment_model_bit(ASSIGNMENT_KIND, dub_json_str(data, "kind"));
  out->category =
      assignment_model_bit(ASSIGNMENT_CATEGORY, dub_json_str(data, "category"));
  out->severity =
      assignment_model_bit(ASSIGNMENT_SEVERITY, dub_json_str(data, "severity"));
  out->region = dub_json_str(data, "region");
  out->subject = dub_json_str(json_object_get(data, "subject"), "unit_id");
  out->subject_key = out->subject ? assignment_model_id(m, out->subject) : -1;
  out->subject_unit = out->subject ? assignment_model_unit(m, out->subject) : -1;
}

static bool bits_fit(unsigned listed, unsigned value)
{
  return !listed || (listed & value);
}

static bool has_int(const int *list, size_t n, int v)
{
  for(size_t i = 0; i < n; i++)
    if(list[i] == v)
      return true;
  return false;
}

bool assignment_rule_matches(const struct assignment_rule *rule,
                             const struct assignment_facts *f)
{
  if(!bits_fit(rule->kinds, f->kind) || !bits_fit(rule->categories, f->category) ||
     !bits_fit(rule->severities, f->severity))
    return false;
  if(rule->nsubjects &&
     (f->subject_key < 0 || !has_int(rule->subjects, rule->nsubjects, f->subject_key)))
    return false;
  if(!rule->nprefixes)
    return true;
  for(size_t i = 0; f->region && i < rule->nprefixes; i++)
    if(strncmp(f->region, rule->prefixes[i], strlen(rule->prefixes[i])) == 0)
      return true;
  return false;
}

void assignment_route(const struct assignment_model *m, const struct assignment_facts *f,
                      struct assignment_route *out)
{
  memset(out, 0, sizeof *out);
  out->rule = -1;
  out->recused_unit = -1;
  for(size_t i = 0; i < m->nrules; i++) {
    const struct assignment_rule *rule = &m->rules[i];
    if(!assignment_rule_matches(rule, f))
      continue;
    /* A unit never handles a case about itself. */
    if(rule->unit == f->subject_unit) {
      out->recused_unit = rule->unit;
      break;
    }
    out->unit = rule->unit;
    out->rule = (int)i;
    out->strategy = rule->strategy;
    return;
  }
  out->unit = m->fallback_unit;
  out->strategy = m->fallback_strategy;
  out->fallback = true;
}

const char *assignment_conflict(const struct assignment_model *m, int officer,
                                const struct assignment_facts *f)
{
  const struct assignment_officer *o = &m->officers[officer];
  if(f->subject_unit >= 0 && o->unit == f->subject_unit)
    return "subject_unit";
  if(f->subject_key >= 0 && has_int(o->conflicts, o->nconflicts, f->subject_key))
    return "conflict";
  return NULL;
}

static bool eligible(const struct assignment_model *m, const struct assignment_ask *ask,
                     int i)
{
  const struct assignment_officer *o = &m->officers[i];
  return o->active && !(ask->excluded && ask->excluded[i]) &&
         !(o->max_open && ask->load[i] >= o->max_open) &&
         !assignment_conflict(m, i, ask->facts);
}

/* The officer one tier (handlers, or heads) gives, or -1. */
static int pick(const struct assignment_model *m, const struct assignment_ask *ask,
                const int *tier, size_t n)
{
  int best = -1;
  size_t neligible = 0;
  /* The tier is sorted by id, so the first of equals is the smallest id. */
  for(size_t k = 0; k < n; k++) {
    int i = tier[k];
    if(!eligible(m, ask, i))
      continue;
    neligible++;
    if(best < 0 || ask->load[i] < ask->load[best])
      best = i;
  }
  if(ask->route->strategy != ASSIGNMENT_ROUND_ROBIN || !neligible)
    return best;
  /* The rotation runs over those eligible now, so that an officer who is away never
   * hands their turns to the colleague after them. */
  size_t want = (size_t)(ask->ticket % neligible);
  for(size_t k = 0; k < n; k++) {
    int i = tier[k];
    if(eligible(m, ask, i) && want-- == 0)
      return i;
  }
  return -1;
}

static void recuse_unit(const struct assignment_model *m,
                        const struct assignment_ask *ask, int unit,
                        struct assignment_result *out)
{
  const struct assignment_unit *u = &m->units[unit];
  for(size_t k = 0; k < u->nmembers; k++) {
    const char *why = assignment_conflict(m, u->members[k], ask->facts);
    if(why)
      out->recused[out->nrecused++] = (struct assignment_recusal){u->members[k], why};
  }
}

void assignment_choose(const struct assignment_model *m, const struct assignment_ask *ask,
                       struct assignment_result *out)
{
  const struct assignment_route *route = ask->route;
  const struct assignment_unit *u = &m->units[route->unit];
  size_t cap = u->nmembers;
  if(route->recused_unit >= 0 && route->recused_unit != route->unit)
    cap += m->units[route->recused_unit].nmembers;
  out->recused = dub_xcalloc(cap ? cap : 1, sizeof *out->recused);
  out->nrecused = 0;
  if(route->recused_unit >= 0 && route->recused_unit != route->unit)
    recuse_unit(m, ask, route->recused_unit, out);
  recuse_unit(m, ask, route->unit, out);
  out->officer = -1;
  if(ask->no_officer)
    return;
  out->officer = pick(m, ask, u->handlers, u->nhandlers);
  if(out->officer < 0)
    out->officer = pick(m, ask, u->heads, u->nheads);
}

void assignment_result_release(struct assignment_result *result)
{
  free(result->recused);
  result->recused = NULL;
  result->nrecused = 0;
}
