/* rules.h - routing a case to a unit and choosing its officer, over the compiled model
 * (pure: no I/O; workloads and the round-robin ticket are passed in). */
#ifndef ASSIGNMENT_RULES_H
#define ASSIGNMENT_RULES_H

#include "model.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* What routing looks at in one case. Strings are borrowed from the data read. */
struct assignment_facts {
  unsigned kind, category, severity; /* bits of assignment_model_bit(); 0 = unknown */
  const char *region;                /* NULL when absent */
  const char *subject;               /* subject unit id; NULL when absent */
  int subject_key;  /* interned subject id; -1 when the configuration never names it */
  int subject_unit; /* the subject as a unit of the directory, or -1 */
};

/* Reads kind, category, severity, region and subject.unit_id from 'data' (the data of
 * duban.case.received, or facts stored in that shape). Borrows from 'data'. */
void assignment_facts_read(const struct assignment_model *model, const json_t *data,
                           struct assignment_facts *out);

struct assignment_route {
  int unit;                          /* the unit that gets the case */
  int rule;                          /* index of the rule that matched; -1 = fallback */
  enum assignment_strategy strategy; /* the rule's, or fallback_strategy */
  bool fallback;                     /* no rule matched, or its unit was the subject */
  int recused_unit; /* the matching rule's unit when it was the subject unit, else -1 */
};

/* True when every listed field of the rule's "match" fits; an empty list fits all. */
bool assignment_rule_matches(const struct assignment_rule *rule,
                             const struct assignment_facts *facts);

/* The first matching rule gives the unit; no match, or a unit that is itself the
 * subject unit, gives fallback_unit. */
void assignment_route(const struct assignment_model *model,
                      const struct assignment_facts *facts, struct assignment_route *out);

/* Why officer 'officer' may never handle the case: "subject_unit" when their unit is
 * the subject unit, "conflict" when their conflicts list it, NULL otherwise. */
const char *assignment_conflict(const struct assignment_model *model, int officer,
                                const struct assignment_facts *facts);

/* The inputs of one choice besides the model. All borrowed for the call. */
struct assignment_ask {
  const struct assignment_facts *facts;
  const struct assignment_route *route;
  const long long *load;     /* open cases per officer, indexed like model->officers */
  const bool *excluded;      /* per officer: returned this case before (NULL = none) */
  unsigned long long ticket; /* round_robin: the case's place in the unit's rotation */
  bool no_officer;           /* choose nobody (e.g. returned too often): needs manual */
};

struct assignment_recusal {
  int officer;
  const char *reason; /* "subject_unit" or "conflict" (static strings) */
};

struct assignment_result {
  int officer; /* -1 when nobody is eligible: the case needs manual assignment */
  /* Every officer of the routed units with a conflict, each once: those of the
   * matching rule's unit when it was the subject unit, then those of the unit that got
   * the case, each by id. Owned; free with assignment_result_release(). */
  struct assignment_recusal *recused;
  size_t nrecused;
};

/* Chooses the officer within ask->route->unit. Eligible: active, not excluded, no
 * conflict, fewer open cases than max_open. Officers with the handler role are chosen;
 * those with only the head role as a last resort. least_loaded takes the eligible
 * officer with the fewest open cases, ties to the smallest id; round_robin takes the
 * eligible officer at position ticket (mod their number) in id order. Nobody eligible:
 * officer -1. */
void assignment_choose(const struct assignment_model *model,
                       const struct assignment_ask *ask, struct assignment_result *out);

void assignment_result_release(struct assignment_result *result);

#endif
