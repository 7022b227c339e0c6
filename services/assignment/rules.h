/* rules.h - routing a case to a unit and choosing its officer (no I/O). */
#ifndef ASSIGNMENT_RULES_H
#define ASSIGNMENT_RULES_H

#include <jansson.h>
#include <stdbool.h>

/* The outcome of one assignment. Strings are borrowed from the rules and directory
 * documents passed in and live as long as they do; 'recused' is a new JSON array
 * [{"officer", "reason"}] owned by the struct (release with assignment_result_release).
 */
struct assignment_result {
  const char *unit;
  const char *rule_id; /* NULL when the fallback unit was used */
  const char *officer; /* NULL when nobody is eligible: needs_manual */
  bool fallback;
  bool needs_manual;
  json_t *recused;
};

/* True when the rule's "match" fits the problem data: each listed field must contain
 * the case's value; an empty or absent list matches anything. */
bool assignment_rule_matches(const json_t *rule, const json_t *problem);

/* Why an officer may never handle a case about 'subject_unit': "subject_unit" when the
 * officer belongs to it, "conflict" when it is in the officer's conflicts,
 * NULL when there is no conflict. */
const char *assignment_conflict(const json_t *officer, const char *subject_unit);

/* Routes 'problem' (the data of duban.problem.reported) with 'rules' and chooses an
 * officer from 'directory', never one with a conflict. The first matching rule gives
 * the unit; no match, or a unit that is itself the subject unit, gives fallback_unit.
 * Within the unit the first eligible handler (active, role handler) is chosen, a head
 * as a last resort. */
void assignment_choose(const json_t *rules, const json_t *directory,
                       const json_t *problem, struct assignment_result *out);

void assignment_result_release(struct assignment_result *result);

#endif
