/* clock.c - SLA moments (deadline, warning, escalation) and sla.json periods. */
#include "calendar/calendar.h"

#include "core/alloc.h"
#include "core/time.h"

#include <stdlib.h>
#include <string.h>

#define DAY_MS INT64_C(86400000)
#define OFFSET_MS ((int64_t)DUB_SHANGHAI_OFFSET_MIN * 60000)

int64_t dub_calendar_day_start_ms(int64_t day)
{
  return day * DAY_MS - OFFSET_MS;
}

int64_t dub_calendar_day_end_ms(int64_t day)
{
  return dub_calendar_day_start_ms(day) + DAY_MS - 1000;
}

static int64_t shanghai_day(int64_t ms)
{
  return dub_time_day_at(ms, DUB_SHANGHAI_OFFSET_MIN);
}

int64_t dub_calendar_deadline(const struct dub_calendar *cal, int64_t start_ms, int n,
                              bool working, bool *provisional)
{
  int64_t day = shanghai_day(start_ms);
  if(working)
    return dub_calendar_day_end_ms(
        dub_calendar_add_working_days(cal, day, n, provisional));
  if(provisional)
    *provisional = false;
  return dub_calendar_day_end_ms(day + n);
}

int64_t dub_calendar_warn_at(const struct dub_calendar *cal, int64_t due_ms, int m,
                             bool *provisional)
{
  int64_t day = dub_calendar_sub_working_days(cal, shanghai_day(due_ms), m, provisional);
  return dub_calendar_day_start_ms(day);
}

int64_t dub_calendar_after_due(const struct dub_calendar *cal, int64_t due_ms, int n,
                               bool *provisional)
{
  int64_t day = dub_calendar_add_working_days(cal, shanghai_day(due_ms), n, provisional);
  return dub_calendar_day_end_ms(day);
}

static void set_why(char **why, char *msg)
{
  if(why)
    *why = msg;
  else
    free(msg);
}

enum dub_err dub_calendar_period_parse(const json_t *json,
                                       struct dub_calendar_period *out, char **why)
{
  const char *key;
  const json_t *value;
  const json_t *found = NULL;
  bool working = false;

  if(!json_is_object(json)) {
    set_why(why, dub_xstrdup("period is not an object"));
    return DUB_ERR_CONFIG;
  }
  json_object_foreach((json_t *)json, key, value)
  {
    bool w;
    if(!strcmp(key, "working_days")) {
      w = true;
    } else if(!strcmp(key, "days")) {
      w = false;
    } else {
      set_why(why, dub_xasprintf("period has unknown member \"%.40s\"", key));
      return DUB_ERR_CONFIG;
    }
    if(found) {
      set_why(why, dub_xstrdup("period has both \"working_days\" and \"days\""));
      return DUB_ERR_CONFIG;
    }
    found = value;
    working = w;
  }
  if(!found) {
    set_why(why, dub_xstrdup("period needs \"working_days\" or \"days\""));
    return DUB_ERR_CONFIG;
  }
  const char *name = working ? "working_days" : "days";
  if(!json_is_integer(found) || json_integer_value(found) < 0 ||
     json_integer_value(found) > DUB_CALENDAR_PERIOD_MAX) {
    set_why(why, dub_xasprintf("period \"%s\" is not a whole number from 0 to %d", name,
                               DUB_CALENDAR_PERIOD_MAX));
    return DUB_ERR_CONFIG;
  }
  out->n = (int)json_integer_value(found);
  out->working = working;
  return DUB_OK;
}

int64_t dub_calendar_period_deadline(const struct dub_calendar *cal, int64_t start_ms,
                                     struct dub_calendar_period period, bool *provisional)
{
  return dub_calendar_deadline(cal, start_ms, period.n, period.working, provisional);
}
