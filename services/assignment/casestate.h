/* casestate.h - what assignment remembers of one case and how each event of
 * duban.cases changes it (pure: no I/O). The live consumer and the rebuild from
 * duban.cases apply the same functions, so both arrive at the same state.
 *
 * A state is a JSON object:
 *   {"case_id", "facts": {kind, category, severity, region, subject: {unit_id}},
 *    "open": bool, "applied": ["<source> <id>" of every input applied],
 *    "outputs": [{"input": "<source> <id>", "data": the data of the
 *                 duban.case.assigned it gave}]}
 * The latest output is the current assignment; its attempt, returns and excluded are
 * the case's. An output's whole event follows from its data and the input's
 * traceparent (assignment_event_wrap), so a redelivery rebuilds it byte for byte.
 */
#ifndef ASSIGNMENT_CASESTATE_H
#define ASSIGNMENT_CASESTATE_H

#include "rules.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The source of the events assignment writes. */
#define ASSIGNMENT_SOURCE "/duban/assignment"
#define ASSIGNMENT_ASSIGNED "duban.case.assigned"
#define ASSIGNMENT_RECEIVED "duban.case.received"
#define ASSIGNMENT_RETURNED "duban.case.returned"
#define ASSIGNMENT_CLOSED "duban.case.closed"
#define ASSIGNMENT_CANCELLED "duban.case.cancelled"
/* The return that marks a case needs_manual instead of reassigning it. */
#define ASSIGNMENT_MAX_RETURNS 3

/* Returns a new, open state that has applied nothing. */
json_t *assignment_state_new(const char *case_id);

/* Keeps the routing facts of the data of duban.case.received (kind, category,
 * severity, region, subject.unit_id), unless the state has them already. */
void assignment_state_set_facts(json_t *state, const json_t *received_data);
/* The facts in the shape of received data (for assignment_facts_read), or NULL. */
const json_t *assignment_state_facts(const json_t *state);

/* Whether the event 'source' + 'id' has been applied to the state. */
bool assignment_state_applied(const json_t *state, const char *source, const char *id);
/* The data of the duban.case.assigned that answered the event 'source' + 'id', or
 * NULL. Borrowed from 'state'. */
const json_t *assignment_state_output(const json_t *state, const char *source,
                                      const char *id);

/* The data of the latest assignment, or NULL. Borrowed. */
const json_t *assignment_state_current(const json_t *state);
bool assignment_state_open(const json_t *state);
long long assignment_state_attempt(const json_t *state);
long long assignment_state_returns(const json_t *state);
/* The officers who returned the case (a JSON array of ids), NULL when none. Borrowed. */
const json_t *assignment_state_excluded(const json_t *state);

/* Who holds an open, assigned case: the officer, or the unit when it waits for manual
 * assignment (officer NULL). Both NULL when the case is closed or not assigned. */
struct assignment_holder {
  const char *officer;
  const char *unit;
};
void assignment_state_holder(const json_t *state, struct assignment_holder *out);

/* Applies a duban.case.assigned event (one made now, or read back from duban.cases):
 * it becomes current, and the input it answers counts as applied. An event whose input
 * is applied already changes nothing. The state takes a reference to the event's data,
 * which nobody may change afterwards. */
void assignment_state_apply_assigned(json_t *state, const json_t *event);
/* Applies duban.case.closed or duban.case.cancelled: the case is no longer open. */
void assignment_state_apply_closed(json_t *state, const char *source, const char *id);
/* Records an input as applied with no other effect. */
void assignment_state_apply_ack(json_t *state, const char *source, const char *id);

/* The answer of GET /v1/assignments/{case_id}: the data of the latest assignment with
 * the event id, "open" and "returns"; NULL when the case is not assigned. Returns a
 * new reference. */
json_t *assignment_state_public(const json_t *state);

/* The event being answered by an assignment. Strings borrowed. */
struct assignment_input {
  const char *type; /* duban.case.received or duban.case.returned */
  const char *source;
  const char *id;
  const char *traceparent; /* NULL = none */
  const char *reason_code; /* of a return */
  const char *actor;       /* of a return, NULL when not given */
};

/* The whole duban.case.assigned event of assignment 'data' (borrowed; the event takes
 * a reference): id "<case>.assigned.<attempt>", time = assigned_at, and 'traceparent'
 * (the input's; NULL = none). Returns a new reference. */
json_t *assignment_event_wrap(const json_t *data, const char *traceparent);

/* Builds the duban.case.assigned event that answers 'input' for the case in 'state':
 * id "<case>.assigned.<attempt>", attempt one more than the state's, data with the
 * unit, officer, rule, strategy, recusals, needs_manual, cause, input, previous (on a
 * return), excluded and returns as 'excluded' and 'returns' say, and assigned_at =
 * time = 'now_ms'. Returns a new reference. */
json_t *assignment_event_new(const struct assignment_model *model, const json_t *state,
                             const struct assignment_input *input,
                             const struct assignment_route *route,
                             const struct assignment_result *result,
                             const json_t *excluded, long long returns, int64_t now_ms);

#endif
