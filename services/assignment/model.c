/* model.c - compiles rules.json and directory.json into the routing model and checks
 * their cross-references. */
#include "model.h"

#include "core/alloc.h"
#include "json/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- interned ids ------------------------------------------------------------------ */

/* Open addressing over borrowed strings; values are 0, 1, 2, ... in order of interning.
 */
struct assignment_idmap {
  const char **keys;
  size_t cap; /* a power of two */
  int *values;
  size_t count;
};

static uint64_t hash(const char *s)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for(; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static struct assignment_idmap *idmap_new(void)
{
  struct assignment_idmap *m = dub_xcalloc(1, sizeof *m);
  m->cap = 64;
  m->keys = dub_xcalloc(m->cap, sizeof *m->keys);
  m->values = dub_xcalloc(m->cap, sizeof *m->values);
  return m;
}

static void idmap_free(struct assignment_idmap *m)
{
  if(!m)
    return;
  free(m->keys);
  free(m->values);
  free(m);
}

static size_t slot_of(const struct assignment_idmap *m, const char *s)
{
  size_t i = (size_t)hash(s) & (m->cap - 1);
  while(m->keys[i] && strcmp(m->keys[i], s) != 0)
    i = (i + 1) & (m->cap - 1);
  return i;
}

static int idmap_get(const struct assignment_idmap *m, const char *s)
{
  if(!s)
    return -1;
  size_t i = slot_of(m, s);
  return m->keys[i] ? m->values[i] : -1;
}

static int idmap_intern(struct assignment_idmap *m, const char *s)
{
  size_t i = slot_of(m, s);
  if(m->keys[i])
    return m->values[i];
  if(2 * (m->count + 1) > m->cap) {
    struct assignment_idmap bigger = {.cap = 2 * m->cap};
    bigger.keys = dub_xcalloc(bigger.cap, sizeof *bigger.keys);
    bigger.values = dub_xcalloc(bigger.cap, sizeof *bigger.values);
    for(size_t k = 0; k < m->cap; k++) {
      if(!m->keys[k])
        continue;
      size_t j = slot_of(&bigger, m->keys[k]);
      bigger.keys[j] = m->keys[k];
      bigger.values[j] = m->values[k];
    }
    free(m->keys);
    free(m->values);
    m->keys = bigger.keys;
    m->values = bigger.values;
    m->cap = bigger.cap;
    i = slot_of(m, s);
  }
  m->keys[i] = s;
  m->values[i] = (int)m->count++;
  return m->values[i];
}

/* ---- match lists ------------------------------------------------------------------- */

static const char *const kinds[] = {"clue", "finding", "complaint", "weak_link",
                                    "warning"};
static const char *const categories[] = {
    "political_building", "team_management", "work_management",
    "office_management",  "responsibility",  "discipline_enforcement",
    "risk_prevention",    "work_style",      "violation"};
static const char *const severities[] = {"low", "normal", "high", "urgent"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* Set in a list's bits when none of its values is known: then nothing matches. */
#define NEVER (1u << 31)

unsigned assignment_model_bit(enum assignment_field field, const char *value)
{
  const char *const *table = field == ASSIGNMENT_KIND       ? kinds
                             : field == ASSIGNMENT_CATEGORY ? categories
                                                            : severities;
  size_t n = field == ASSIGNMENT_KIND       ? COUNT(kinds)
             : field == ASSIGNMENT_CATEGORY ? COUNT(categories)
                                            : COUNT(severities);
  for(size_t i = 0; value && i < n; i++)
    if(strcmp(table[i], value) == 0)
      return 1u << i;
  return 0;
}

static unsigned list_bits(const json_t *list, enum assignment_field field)
{
  size_t i;
  json_t *v;
  unsigned bits = 0;
  json_array_foreach(list, i, v) bits |=
      assignment_model_bit(field, json_string_value(v));
  return json_array_size(list) && !bits ? NEVER : bits;
}

/* ---- building ---------------------------------------------------------------------- */

const char *assignment_strategy_name(enum assignment_strategy strategy)
{
  return strategy == ASSIGNMENT_ROUND_ROBIN ? "round_robin" : "least_loaded";
}

static enum assignment_strategy strategy_of(const char *name)
{
  return name && strcmp(name, "round_robin") == 0 ? ASSIGNMENT_ROUND_ROBIN
                                                  : ASSIGNMENT_LEAST_LOADED;
}

static void intern_list(struct assignment_idmap *ids, const json_t *list)
{
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v)
  {
    if(json_string_value(v))
      idmap_intern(ids, json_string_value(v));
  }
}

/* Every id either document names, so that later lookups never miss one. */
static void intern_all(struct assignment_idmap *ids, const json_t *rules,
                       const json_t *directory)
{
  const char *const unit_fields[] = {"id", "head", "parent"};
  const char *const officer_fields[] = {"id", "unit"};
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(directory, "units"), i, o)
  {
    for(size_t f = 0; f < COUNT(unit_fields); f++)
      if(dub_json_str(o, unit_fields[f]))
        idmap_intern(ids, dub_json_str(o, unit_fields[f]));
  }
  json_array_foreach(json_object_get(directory, "officers"), i, o)
  {
    for(size_t f = 0; f < COUNT(officer_fields); f++)
      if(dub_json_str(o, officer_fields[f]))
        idmap_intern(ids, dub_json_str(o, officer_fields[f]));
    intern_list(ids, json_object_get(o, "conflicts"));
  }
  json_array_foreach(json_object_get(rules, "rules"), i, o)
  {
    if(dub_json_str(o, "unit"))
      idmap_intern(ids, dub_json_str(o, "unit"));
    intern_list(ids, json_object_get(json_object_get(o, "match"), "subject_unit"));
  }
  if(dub_json_str(rules, "fallback_unit"))
    idmap_intern(ids, dub_json_str(rules, "fallback_unit"));
}

static int *int_list(const struct assignment_idmap *ids, const json_t *list, size_t *n)
{
  size_t i;
  json_t *v;
  *n = json_array_size(list);
  int *out = dub_xcalloc(*n ? *n : 1, sizeof *out);
  json_array_foreach(list, i, v) out[i] = idmap_get(ids, json_string_value(v));
  return out;
}

struct by_id {
  const char *id;
  int index;
};

static int cmp_by_id(const void *a, const void *b)
{
  return strcmp(((const struct by_id *)a)->id, ((const struct by_id *)b)->id);
}

/* The officers of unit u that 'want' selects, sorted by id. */
static int *members(const struct assignment_model *m, int u, unsigned want, size_t *n)
{
  struct by_id *tmp = dub_xcalloc(m->nofficers ? m->nofficers : 1, sizeof *tmp);
  size_t k = 0;
  for(size_t i = 0; i < m->nofficers; i++) {
    const struct assignment_officer *o = &m->officers[i];
    bool handler = o->roles & ASSIGNMENT_ROLE_HANDLER;
    bool head = (o->roles & ASSIGNMENT_ROLE_HEAD) && !handler;
    if(o->unit == u && (!want || (want == ASSIGNMENT_ROLE_HANDLER && handler) ||
                        (want == ASSIGNMENT_ROLE_HEAD && head)))
      tmp[k++] = (struct by_id){o->id, (int)i};
  }
  qsort(tmp, k, sizeof *tmp, cmp_by_id);
  int *out = dub_xcalloc(k ? k : 1, sizeof *out);
  for(size_t i = 0; i < k; i++)
    out[i] = tmp[i].index;
  free(tmp);
  *n = k;
  return out;
}

static enum dub_err build_directory(struct assignment_model *m, const json_t *directory,
                                    char **why)
{
  const json_t *units = json_object_get(directory, "units");
  const json_t *officers = json_object_get(directory, "officers");
  size_t i;
  json_t *o;
  m->nunits = json_array_size(units);
  m->units = dub_xcalloc(m->nunits ? m->nunits : 1, sizeof *m->units);
  json_array_foreach(units, i, o)
  {
    int key = idmap_get(m->ids, dub_json_str(o, "id"));
    if(assignment_model_unit(m, dub_json_str(o, "id")) >= 0) {
      *why = dub_xasprintf("directory.json: /units/%zu/id: unit '%s' is also /units/%d",
                           i, dub_json_str(o, "id"), m->unit_of_key[key]);
      return DUB_ERR_CONFIG;
    }
    m->unit_of_key[key] = (int)i;
    m->units[i].id = dub_json_str(o, "id");
    m->units[i].key = key;
  }
  m->nofficers = json_array_size(officers);
  m->officers = dub_xcalloc(m->nofficers ? m->nofficers : 1, sizeof *m->officers);
  json_array_foreach(officers, i, o)
  {
    struct assignment_officer *off = &m->officers[i];
    const char *id = dub_json_str(o, "id");
    const char *unit = dub_json_str(o, "unit");
    int key = idmap_get(m->ids, id);
    if(assignment_model_officer(m, id) >= 0) {
      *why = dub_xasprintf("directory.json: /officers/%zu/id: officer '%s' is also "
                           "/officers/%d",
                           i, id, m->officer_of_key[key]);
      return DUB_ERR_CONFIG;
    }
    m->officer_of_key[key] = (int)i;
    off->id = id;
    off->unit = assignment_model_unit(m, unit);
    if(off->unit < 0) {
      *why = dub_xasprintf("directory.json: /officers/%zu/unit: no unit '%s'", i, unit);
      return DUB_ERR_CONFIG;
    }
    const json_t *roles = json_object_get(o, "roles");
    off->roles =
        (dub_json_array_has_str(roles, "handler") ? ASSIGNMENT_ROLE_HANDLER : 0) |
        (dub_json_array_has_str(roles, "head") ? ASSIGNMENT_ROLE_HEAD : 0);
    off->active = dub_json_bool(o, "active", true);
    if(!dub_json_int(o, "max_open", &off->max_open))
      off->max_open = 0;
    const json_t *conflicts = json_object_get(o, "conflicts");
    int *list = int_list(m->ids, conflicts, &off->nconflicts);
    off->conflicts = list;
    for(size_t c = 0; c < off->nconflicts; c++) {
      if(list[c] < 0 || m->unit_of_key[list[c]] < 0) {
        *why = dub_xasprintf("directory.json: /officers/%zu/conflicts/%zu: no unit '%s'",
                             i, c, json_string_value(json_array_get(conflicts, c)));
        return DUB_ERR_CONFIG;
      }
    }
  }
  json_array_foreach(units, i, o)
  {
    const char *head = dub_json_str(o, "head");
    const char *parent = dub_json_str(o, "parent");
    if(head && assignment_model_officer(m, head) < 0) {
      *why = dub_xasprintf("directory.json: /units/%zu/head: no officer '%s'", i, head);
      return DUB_ERR_CONFIG;
    }
    if(parent && assignment_model_unit(m, parent) < 0) {
      *why = dub_xasprintf("directory.json: /units/%zu/parent: no unit '%s'", i, parent);
      return DUB_ERR_CONFIG;
    }
    struct assignment_unit *u = &m->units[i];
    u->handlers = members(m, (int)i, ASSIGNMENT_ROLE_HANDLER, &u->nhandlers);
    u->heads = members(m, (int)i, ASSIGNMENT_ROLE_HEAD, &u->nheads);
    u->members = members(m, (int)i, 0, &u->nmembers);
  }
  return DUB_OK;
}

static enum dub_err unit_named(const struct assignment_model *m, const char *id,
                               const char *pointer, int *out, char **why)
{
  *out = assignment_model_unit(m, id);
  if(*out >= 0)
    return DUB_OK;
  *why = dub_xasprintf("rules.json: %s: no unit '%s' in directory.json", pointer, id);
  return DUB_ERR_CONFIG;
}

static enum dub_err build_rules(struct assignment_model *m, const json_t *rules,
                                char **why)
{
  const json_t *list = json_object_get(rules, "rules");
  size_t i;
  json_t *r;
  enum dub_err rc;
  char pointer[64];
  m->nrules = json_array_size(list);
  m->rules = dub_xcalloc(m->nrules ? m->nrules : 1, sizeof *m->rules);
  json_array_foreach(list, i, r)
  {
    struct assignment_rule *rule = &m->rules[i];
    const json_t *match = json_object_get(r, "match");
    rule->id = dub_json_str(r, "id");
    for(size_t j = 0; j < i; j++) {
      if(strcmp(m->rules[j].id, rule->id) == 0) {
        *why = dub_xasprintf("rules.json: /rules/%zu/id: rule '%s' is also /rules/%zu", i,
                             rule->id, j);
        return DUB_ERR_CONFIG;
      }
    }
    snprintf(pointer, sizeof pointer, "/rules/%zu/unit", i);
    rc = unit_named(m, dub_json_str(r, "unit"), pointer, &rule->unit, why);
    if(rc)
      return rc;
    rule->strategy = strategy_of(dub_json_str(r, "strategy"));
    rule->kinds = list_bits(json_object_get(match, "kind"), ASSIGNMENT_KIND);
    rule->categories = list_bits(json_object_get(match, "category"), ASSIGNMENT_CATEGORY);
    rule->severities = list_bits(json_object_get(match, "severity"), ASSIGNMENT_SEVERITY);
    const json_t *prefixes = json_object_get(match, "region_prefix");
    rule->nprefixes = json_array_size(prefixes);
    const char **p = dub_xcalloc(rule->nprefixes ? rule->nprefixes : 1, sizeof *p);
    for(size_t k = 0; k < rule->nprefixes; k++)
      p[k] = json_string_value(json_array_get(prefixes, k));
    rule->prefixes = p;
    rule->subjects =
        int_list(m->ids, json_object_get(match, "subject_unit"), &rule->nsubjects);
  }
  m->fallback_strategy = strategy_of(dub_json_str(rules, "fallback_strategy"));
  return unit_named(m, dub_json_str(rules, "fallback_unit"), "/fallback_unit",
                    &m->fallback_unit, why);
}

enum dub_err assignment_model_new(json_t *rules, json_t *directory,
                                  struct assignment_model **out, char **why)
{
  struct assignment_model *m = dub_xcalloc(1, sizeof *m);
  enum dub_err rc;
  *out = NULL;
  *why = NULL;
  m->rules_doc = json_incref(rules);
  m->directory_doc = json_incref(directory);
  m->ids = idmap_new();
  intern_all(m->ids, rules, directory);
  size_t n = m->ids->count ? m->ids->count : 1;
  m->unit_of_key = dub_xmalloc(n * sizeof *m->unit_of_key);
  m->officer_of_key = dub_xmalloc(n * sizeof *m->officer_of_key);
  for(size_t i = 0; i < n; i++)
    m->unit_of_key[i] = m->officer_of_key[i] = -1;
  rc = build_directory(m, directory, why);
  if(!rc)
    rc = build_rules(m, rules, why);
  if(rc) {
    assignment_model_free(m);
    return rc;
  }
  *out = m;
  return DUB_OK;
}

void assignment_model_free(struct assignment_model *m)
{
  if(!m)
    return;
  for(size_t i = 0; i < m->nofficers; i++)
    free((void *)m->officers[i].conflicts);
  for(size_t i = 0; i < m->nunits; i++) {
    free((void *)m->units[i].handlers);
    free((void *)m->units[i].heads);
    free((void *)m->units[i].members);
  }
  for(size_t i = 0; i < m->nrules; i++) {
    free((void *)m->rules[i].prefixes);
    free((void *)m->rules[i].subjects);
  }
  free(m->officers);
  free(m->units);
  free(m->rules);
  free(m->unit_of_key);
  free(m->officer_of_key);
  idmap_free(m->ids);
  json_decref(m->rules_doc);
  json_decref(m->directory_doc);
  free(m);
}

int assignment_model_id(const struct assignment_model *m, const char *s)
{
  return idmap_get(m->ids, s);
}

int assignment_model_unit(const struct assignment_model *m, const char *id)
{
  int key = idmap_get(m->ids, id);
  return key < 0 ? -1 : m->unit_of_key[key];
}

int assignment_model_officer(const struct assignment_model *m, const char *id)
{
  int key = idmap_get(m->ids, id);
  return key < 0 ? -1 : m->officer_of_key[key];
}
