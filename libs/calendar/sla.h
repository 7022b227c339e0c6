/* sla.h - a case's SLA moments from sla.json and the working-day calendar (no I/O). */
#ifndef DUB_CALENDAR_SLA_H
#define DUB_CALENDAR_SLA_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct dub_calendar;

#define DUB_SLA_MAX_LEVELS 4

/* Every moment of one case, as instants in milliseconds since the epoch. */
struct dub_sla_moments {
  int64_t clock_start; /* the reported time, or the receipt time (see DESIGN.md Clocks) */
  int64_t accept_by;   /* 签收 deadline */
  int64_t due_at;      /* 办理 deadline */
  int64_t warn_at;     /* 预警 */
  int n_levels;
  struct {
    int level;
    int64_t at;
  } escalate[DUB_SLA_MAX_LEVELS];
  bool provisional; /* some day consulted lies in a year without a calendar file */
};

/* The clock starts at 'reported_ms' unless it is absent (< 0) or later than
 * 'received_ms', in which case it starts at 'received_ms'. */
int64_t dub_sla_clock_start(int64_t reported_ms, int64_t received_ms);

/* Computes the moments of a case of 'severity' whose clock starts at 'start_ms', per
 * the validated sla.json document 'sla' (borrowed). DUB_ERR_CONFIG with *why (new
 * string) when sla.json lacks the severity or a period is unusable. */
enum dub_err dub_sla_compute(const json_t *sla, const struct dub_calendar *cal,
                             const char *severity, int64_t start_ms,
                             struct dub_sla_moments *out, char **why);

/* The moments that follow from a due moment fixed otherwise (an approved extension):
 * sets out->due_at, warn_at and the escalation levels, ORs the provisional flag into
 * out->provisional and leaves clock_start and accept_by as they are. Errors as
 * dub_sla_compute. */
enum dub_err dub_sla_compute_from_due(const json_t *sla, const struct dub_calendar *cal,
                                      int64_t due_ms, struct dub_sla_moments *out,
                                      char **why);

/* dub_sla_compute for a case described by 'received' (borrowed): an object with the
 * members "severity", "clock_start" and "received_at" (RFC 3339), as in the data of
 * duban.case.received. DUB_ERR_SCHEMA with *why when a time does not parse. */
enum dub_err dub_sla_compute_case(const json_t *sla, const struct dub_calendar *cal,
                                  const json_t *received, struct dub_sla_moments *out,
                                  char **why);

#endif
