/* rules.c - first-match routing, recusal and officer choice. */
#include "rules.h"

#include "json/json.h"

#include <string.h>

/* An absent or empty list matches anything; otherwise the value must be listed. */
static bool list_fits(const json_t *list, const char *value)
{
  if(!json_is_array(list) || json_array_size(list) == 0)
    return true;
  return value && dub_json_array_has_str(list, value);
}

static bool prefix_fits(const json_t *list, const char *region)
{
  size_t i;
  json_t *p;
  if(!json_is_array(list) || json_array_size(list) == 0)
    return true;
  if(!region)
    return false;
  json_array_foreach(list, i, p)
  {
    const char *prefix = json_string_value(p);
    if(prefix && strncmp(region, prefix, strlen(prefix)) == 0)
      return true;
  }
  return false;
}

bool assignment_rule_matches(const json_t *rule, const json_t *problem)
{
  const json_t *m = json_object_get(rule, "match");
  const char *subject = dub_json_str(json_object_get(problem, "subject"), "unit_id");
  return list_fits(json_object_get(m, "kind"), dub_json_str(problem, "kind")) &&
         list_fits(json_object_get(m, "category"), dub_json_str(problem, "category")) &&
         list_fits(json_object_get(m, "severity"), dub_json_str(problem, "severity")) &&
         prefix_fits(json_object_get(m, "region_prefix"),
                     dub_json_str(problem, "region")) &&
         list_fits(json_object_get(m, "subject_unit"), subject);
}

const char *assignment_conflict(const json_t *officer, const char *subject_unit)
{
  const char *unit = dub_json_str(officer, "unit");
  if(unit && subject_unit && strcmp(unit, subject_unit) == 0)
    return "subject_unit";
  if(subject_unit &&
     dub_json_array_has_str(json_object_get(officer, "conflicts"), subject_unit))
    return "conflict";
  return NULL;
}

static bool already_recused(const json_t *recused, const char *id)
{
  size_t i;
  json_t *r;
  json_array_foreach(recused, i, r)
  {
    if(strcmp(dub_json_str(r, "officer"), id) == 0)
      return true;
  }
  return false;
}

/* Records every officer of 'unit' with a conflict, once. */
static void recuse(const json_t *directory, const char *unit, const char *subject,
                   struct assignment_result *out)
{
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(directory, "officers"), i, o)
  {
    const char *id = dub_json_str(o, "id");
    const char *home = dub_json_str(o, "unit");
    const char *why = assignment_conflict(o, subject);
    if(id && home && why && strcmp(home, unit) == 0 && !already_recused(out->recused, id))
      json_array_append_new(out->recused,
                            json_pack("{s:s, s:s}", "officer", id, "reason", why));
  }
}

/* The first active officer of 'unit' with 'role' and no conflict, or NULL. */
static const char *pick(const json_t *directory, const char *unit, const char *subject,
                        const char *role)
{
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(directory, "officers"), i, o)
  {
    const char *id = dub_json_str(o, "id");
    const char *home = dub_json_str(o, "unit");
    if(!id || !home || strcmp(home, unit) != 0 || assignment_conflict(o, subject))
      continue;
    if(dub_json_bool(o, "active", true) &&
       dub_json_array_has_str(json_object_get(o, "roles"), role))
      return id;
  }
  return NULL;
}

void assignment_choose(const json_t *rules, const json_t *directory,
                       const json_t *problem, struct assignment_result *out)
{
  const char *subject = dub_json_str(json_object_get(problem, "subject"), "unit_id");
  size_t i;
  json_t *rule;
  memset(out, 0, sizeof *out);
  out->recused = json_array();
  json_array_foreach(json_object_get(rules, "rules"), i, rule)
  {
    if(assignment_rule_matches(rule, problem)) {
      out->unit = dub_json_str(rule, "unit");
      out->rule_id = dub_json_str(rule, "id");
      break;
    }
  }
  /* A unit never handles a case about itself. */
  if(!out->unit || (subject && strcmp(out->unit, subject) == 0)) {
    out->unit = dub_json_str(rules, "fallback_unit");
    out->rule_id = NULL;
    out->fallback = true;
  }
  recuse(directory, out->unit, subject, out);
  out->officer = pick(directory, out->unit, subject, "handler");
  if(!out->officer)
    out->officer = pick(directory, out->unit, subject, "head");
  out->needs_manual = out->officer == NULL;
}

void assignment_result_release(struct assignment_result *result)
{
  json_decref(result->recused);
  result->recused = NULL;
}
