/* lifecycle.h - a case's document: its state machine, its two clocks and the timers that
 * fall due on them (no I/O, so unit tests need no broker).
 *
 * States: received → assigned → accepted → in_progress → rectified → verified → closed;
 * returned (back to assignment, reassigned), reopened (a failed verification), and
 * cancelled from any open state. The accept clock (签收) runs from the clock start, or
 * from a reassignment, until the case is accepted; the resolve clock (办理) runs until
 * the case is rectified, and a return does not stop it. A timer event's id is made of
 * the case, the clock or level and the moment, so it fires once however often it is
 * computed, and moving a moment (an approved extension, a reopening, a calendar change)
 * makes a new timer. */
#ifndef DEADLINE_LIFECYCLE_H
#define DEADLINE_LIFECYCLE_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct dub_calendar;

/* Starts a case's document from the data of its duban.case.received event, with the
 * SLA moments of sla.json ('sla', whose parts for the case are copied into the document
 * so that later changes to sla.json do not move its deadlines) on 'cal'. Never copies
 * the reporter, not even sealed. Returns a new object, or NULL with DUB_ERR_CONFIG or
 * DUB_ERR_SCHEMA in *err and *why (new string). */
json_t *deadline_case_new(const json_t *received, const json_t *sla,
                          const struct dub_calendar *cal, enum dub_err *err, char **why);

/* Whether the event with this id is already in the document's history (a redelivery). */
bool deadline_case_has_event(const json_t *doc, const char *event_id);

/* Applies one event of duban.cases ('event' the whole CloudEvent) that happened at
 * 'at_ms' (when Duban wrote it) to 'doc', and records it in the history. An event the
 * lifecycle does not allow in the current state gives DUB_ERR_INVALID_TRANSITION with
 * *why (new string) and leaves 'doc' as it was. 'cal' computes moved moments. */
enum dub_err deadline_case_apply(json_t *doc, const json_t *event, int64_t at_ms,
                                 const struct dub_calendar *cal, char **why);

/* One timer of a case that has fallen due. */
struct deadline_due {
  char id[128];      /* the event id: "<case>.<kind>[.<clock|level>].<moment>" */
  const char *type;  /* duban.case.warning, .overdue or .escalated */
  const char *clock; /* "accept" or "resolve"; NULL for escalations */
  int level;         /* 3 or 4 for escalations, else 0 */
  int64_t at_ms;     /* its moment */
};

#define DEADLINE_MAX_DUE 8

/* The timers of 'doc' due at 'now_ms' (moment <= now) that have not fired, in the order
 * of their moments; returns how many were written to 'out' (at most DEADLINE_MAX_DUE). */
size_t deadline_case_due(const json_t *doc, int64_t now_ms, struct deadline_due *out);

/* The earliest moment of a timer that has not fired (due or not), or -1 when none is
 * left (a closed case, or every timer of the current generation fired). */
int64_t deadline_case_next(const json_t *doc);

/* The data of the event a due timer publishes. Returns a new object. */
json_t *deadline_case_timer_data(const json_t *doc, const struct deadline_due *due);

/* Recomputes the moments of an open case on calendar 'cal' (a calendar file appeared or
 * changed). When they differ from the document's, gives the data of
 * duban.case.deadline_changed in *changed (new object) and returns true; the document
 * is not modified (applying the event does that). */
bool deadline_case_recompute(const json_t *doc, const struct dub_calendar *cal,
                             json_t **changed);

/* Whether 'state' names a state of the lifecycle. */
bool deadline_state_known(const char *state);

/* What /v1/stats counts of one case. Strings are borrowed from 'doc'. */
struct deadline_counts {
  const char *state, *unit, *category, *region;
  bool open, overdue, closed_on_time, closed_late;
};

void deadline_case_counts(const json_t *doc, struct deadline_counts *out);

/* Whether the case is overdue at 'now_ms': open and past its due moment (resolve) or
 * not accepted past its accept moment. */
bool deadline_case_overdue(const json_t *doc, int64_t now_ms);

/* What a partition of duban.cases needs when this instance takes it over. */
struct deadline_takeover {
  bool known;   /* its high watermark is known; if not, ask again (and arm nothing) */
  bool rebuild; /* read it from the beginning: Redis lacks its state */
  bool armed;   /* its timers may fire now: nothing is left to read */
};

/* Decides from the partition's high watermark ('high', -1 when the broker did not say),
 * the group's committed offset ('committed', -1 when none) and whether Redis holds the
 * partition's state ('state_present', looked at only when high > 0). A partition is
 * armed only when it is known that nothing written before the takeover is left to read:
 * an unknown watermark is not "nothing to read". */
struct deadline_takeover deadline_takeover_decide(int64_t high, int64_t committed,
                                                  bool state_present);

#endif
