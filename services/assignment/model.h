/* model.h - rules.json and directory.json compiled for routing (no I/O): ids interned to
 * indices, match lists to bit sets, each unit's officers sorted by id, and the
 * cross-references the schemas cannot check. */
#ifndef ASSIGNMENT_MODEL_H
#define ASSIGNMENT_MODEL_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum assignment_strategy {
  ASSIGNMENT_LEAST_LOADED,
  ASSIGNMENT_ROUND_ROBIN,
};

/* Roles of an officer, as bits. */
#define ASSIGNMENT_ROLE_HANDLER 1u
#define ASSIGNMENT_ROLE_HEAD 2u

struct assignment_officer {
  const char *id;
  int unit;             /* index of the officer's unit */
  unsigned roles;       /* ASSIGNMENT_ROLE_* bits */
  bool active;          /* "active", default true */
  long long max_open;   /* 0 = no limit */
  const int *conflicts; /* ids (interned, see assignment_model_id) of conflict units */
  size_t nconflicts;
};

struct assignment_unit {
  const char *id;
  int key;             /* interned id */
  const int *handlers; /* officers with the handler role, sorted by id */
  size_t nhandlers;
  const int *heads; /* officers with the head role and not the handler role, by id */
  size_t nheads;
  const int *members; /* every officer of the unit, sorted by id */
  size_t nmembers;
};

struct assignment_rule {
  const char *id;
  int unit;
  enum assignment_strategy strategy;
  unsigned kinds, categories, severities; /* bit sets; 0 = any */
  const char *const *prefixes;            /* region prefixes; none = any */
  size_t nprefixes;
  const int *subjects; /* interned subject unit ids; none = any */
  size_t nsubjects;
};

/* The compiled configuration. Immutable once built: any thread may read it. Strings
 * are borrowed from the JSON documents, which the model holds a reference to. */
struct assignment_model {
  struct assignment_officer *officers; /* directory order */
  size_t nofficers;
  struct assignment_unit *units; /* directory order */
  size_t nunits;
  struct assignment_rule *rules; /* rules.json order */
  size_t nrules;
  int fallback_unit;
  enum assignment_strategy fallback_strategy;
  struct assignment_idmap *ids; /* every id named anywhere -> interned id */
  int *unit_of_key;             /* interned id -> unit index, or -1 */
  int *officer_of_key;          /* interned id -> officer index, or -1 */
  json_t *rules_doc, *directory_doc;
};

/* Compiles documents that passed schemas/config/{rules,directory}.json, and checks what
 * the schemas cannot: ids are unique (units, officers, rules); officer.unit,
 * unit.head, unit.parent, conflicts, rule units and fallback_unit name what exists.
 * The model takes references to both documents. Returns a new model in *out (free with
 * assignment_model_free), or DUB_ERR_CONFIG with *why a new message naming the file,
 * the JSON pointer and the problem ("rules.json: /rules/2/unit: no unit 'U-X' in
 * directory.json"). */
enum dub_err assignment_model_new(json_t *rules, json_t *directory,
                                  struct assignment_model **out, char **why);
void assignment_model_free(struct assignment_model *model);

/* The interned id of 's', or -1 when the configuration never names it. */
int assignment_model_id(const struct assignment_model *model, const char *s);
/* Index of the unit / officer called 'id', or -1. */
int assignment_model_unit(const struct assignment_model *model, const char *id);
int assignment_model_officer(const struct assignment_model *model, const char *id);

enum assignment_field {
  ASSIGNMENT_KIND,
  ASSIGNMENT_CATEGORY,
  ASSIGNMENT_SEVERITY,
};

/* The bit of 'value' among the kinds, categories or severities of the schemas, as rule
 * lists are compiled; 0 for a value the schemas do not list (or NULL). */
unsigned assignment_model_bit(enum assignment_field field, const char *value);

/* "least_loaded" or "round_robin". */
const char *assignment_strategy_name(enum assignment_strategy strategy);

#endif
