/* sla.c - SLA moments: accept, resolve, warn and escalation levels. */
#include "calendar/sla.h"

#include "calendar/calendar.h"
#include "core/alloc.h"
#include "core/time.h"

#include <stdlib.h>
#include <string.h>

int64_t dub_sla_clock_start(int64_t reported_ms, int64_t received_ms)
{
  if(reported_ms < 0 || reported_ms > received_ms)
    return received_ms;
  return reported_ms;
}

static enum dub_err period(const json_t *obj, const char *what,
                           struct dub_calendar_period *out, char **why)
{
  char *inner = NULL;
  if(!obj) {
    *why = dub_xasprintf("sla.json: %s is missing", what);
    return DUB_ERR_CONFIG;
  }
  enum dub_err rc = dub_calendar_period_parse(obj, out, &inner);
  if(rc) {
    *why = dub_xasprintf("sla.json: %s: %s", what, inner ? inner : "invalid period");
    free(inner);
  }
  return rc;
}

enum dub_err dub_sla_compute_from_due(const json_t *sla, const struct dub_calendar *cal,
                                      int64_t due_ms, struct dub_sla_moments *out,
                                      char **why)
{
  struct dub_calendar_period warn;
  bool p = false;
  *why = NULL;
  enum dub_err rc =
      period(json_object_get(sla, "warn_before"), "/warn_before", &warn, why);
  if(rc)
    return rc;
  out->due_at = due_ms;
  /* warn_before counts working days back from the due day whatever its unit says:
   * DESIGN.md defines warn_at on working days only. */
  out->warn_at = dub_calendar_warn_at(cal, due_ms, warn.n, &p);
  out->provisional |= p;
  out->n_levels = 0;
  size_t i;
  json_t *level;
  json_array_foreach(json_object_get(sla, "escalate"), i, level)
  {
    struct dub_calendar_period after;
    if(out->n_levels == DUB_SLA_MAX_LEVELS)
      break;
    char *what = dub_xasprintf("/escalate/%zu/after_overdue", i);
    rc = period(json_object_get(level, "after_overdue"), what, &after, why);
    free(what);
    if(rc)
      return rc;
    long long lv = json_integer_value(json_object_get(level, "level"));
    out->escalate[out->n_levels].level = (int)lv;
    out->escalate[out->n_levels].at = dub_calendar_after_due(cal, due_ms, after.n, &p);
    out->provisional |= p;
    out->n_levels++;
  }
  return DUB_OK;
}

enum dub_err dub_sla_compute(const json_t *sla, const struct dub_calendar *cal,
                             const char *severity, int64_t start_ms,
                             struct dub_sla_moments *out, char **why)
{
  enum dub_err rc;
  struct dub_calendar_period accept, resolve;
  bool p = false;
  memset(out, 0, sizeof *out);
  *why = NULL;
  rc = period(json_object_get(sla, "accept"), "/accept", &accept, why);
  if(rc)
    return rc;
  char *what = dub_xasprintf("/resolve/%s", severity);
  rc = period(json_object_get(json_object_get(sla, "resolve"), severity), what, &resolve,
              why);
  free(what);
  if(rc)
    return rc;
  out->clock_start = start_ms;
  out->accept_by = dub_calendar_period_deadline(cal, start_ms, accept, &p);
  out->provisional |= p;
  int64_t due = dub_calendar_period_deadline(cal, start_ms, resolve, &p);
  out->provisional |= p;
  return dub_sla_compute_from_due(sla, cal, due, out, why);
}

enum dub_err dub_sla_compute_case(const json_t *sla, const struct dub_calendar *cal,
                                  const json_t *received, struct dub_sla_moments *out,
                                  char **why)
{
  int64_t start_ms, received_ms;
  const char *start = json_string_value(json_object_get(received, "clock_start"));
  const char *at = json_string_value(json_object_get(received, "received_at"));
  *why = NULL;
  if(!start || !at || dub_time_parse(start, &start_ms, NULL) ||
     dub_time_parse(at, &received_ms, NULL)) {
    *why = dub_xstrdup("clock_start or received_at is not an RFC 3339 time");
    return DUB_ERR_SCHEMA;
  }
  return dub_sla_compute(sla, cal,
                         json_string_value(json_object_get(received, "severity")),
                         dub_sla_clock_start(start_ms, received_ms), out, why);
}
