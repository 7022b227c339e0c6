/* calendar.h - the official working-day calendar (State Council notices) and SLA
 * deadline arithmetic on Asia/Shanghai dates. */
#ifndef DUB_CALENDAR_CALENDAR_H
#define DUB_CALENDAR_CALENDAR_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An immutable calendar: the days listed by zero or more year documents. Once built it
 * is never changed, so any number of threads may query it at the same time. Days are
 * counted since 1970-01-01 (see core/time.h) and are Asia/Shanghai dates. */
struct dub_calendar;

/* Builds a calendar from 'n' year documents in the holiday-cn format
 * {"year": 2026, "papers": ["<notice URL>"], "days": [{"name": "国庆节",
 * "date": "2026-10-01", "isOffDay": true}]}. Borrows 'docs' for the call only.
 * A listed date must lie in the document's year or an adjacent one (old notices moved
 * weekends across New Year); a date listed twice, or two documents of one year, are
 * errors. On success '*out' is a new calendar (free with dub_calendar_free). On
 * failure gives DUB_ERR_CONFIG and, if 'why' is not NULL, a new message naming the year
 * and the entry (free with free()). Zero documents give an empty calendar. */
enum dub_err dub_calendar_new(const json_t *const *docs, size_t n,
                              struct dub_calendar **out, char **why);

/* Reads '<dir>/<YYYY>.json' for every such file in 'dir' (other names are ignored; the
 * "year" member must match the file name) and builds a calendar as dub_calendar_new.
 * DUB_ERR_IO when the directory or a file cannot be read, DUB_ERR_CONFIG when a file is
 * not valid; '*why' names the file. */
enum dub_err dub_calendar_load_dir(const char *dir, struct dub_calendar **out,
                                   char **why);

/* Frees the calendar. NULL is a no-op. */
void dub_calendar_free(struct dub_calendar *cal);

/* True when a document for 'year' was loaded. */
bool dub_calendar_has_year(const struct dub_calendar *cal, int year);

/* A day listed with isOffDay true is off, one listed with false is a working day
 * (调休), any other day is a working day from Monday to Friday. If 'provisional' is not
 * NULL it is set: true when the day's year has no document (the answer is the weekday
 * rule, to be recomputed when the notice arrives). */
bool dub_calendar_is_working_day(const struct dub_calendar *cal, int64_t day,
                                 bool *provisional);

/* The day on which 'n' working days, counted from the day after 'day', are complete
 * (n = 0 gives 'day'; a negative n counts backwards like dub_calendar_sub_working_days).
 * If 'provisional' is not NULL it is set: true when any day consulted lies in a year
 * without a document. */
int64_t dub_calendar_add_working_days(const struct dub_calendar *cal, int64_t day, int n,
                                      bool *provisional);

/* The working day 'm' working days before 'day' (m = 0 gives 'day'; a negative m counts
 * forwards). 'provisional' as in dub_calendar_add_working_days. */
int64_t dub_calendar_sub_working_days(const struct dub_calendar *cal, int64_t day, int m,
                                      bool *provisional);

/* Instants are milliseconds since the epoch. Each helper takes the Asia/Shanghai date
 * of its argument; 'provisional' is set as in dub_calendar_add_working_days (always
 * false for natural days, which consult no calendar). */

/* The deadline for a clock started at 'start_ms': 23:59:59+08:00 on the day 'n' working
 * days (working true) or 'n' natural days (working false) after the start day. */
int64_t dub_calendar_deadline(const struct dub_calendar *cal, int64_t start_ms, int n,
                              bool working, bool *provisional);

/* The warning moment for a case due at 'due_ms': 00:00:00+08:00 of the working day 'm'
 * working days before the due day. */
int64_t dub_calendar_warn_at(const struct dub_calendar *cal, int64_t due_ms, int m,
                             bool *provisional);

/* The escalation moment 'n' working days after a case due at 'due_ms': 23:59:59+08:00
 * of the nth working day after the due day. */
int64_t dub_calendar_after_due(const struct dub_calendar *cal, int64_t due_ms, int n,
                               bool *provisional);

/* 23:59:59+08:00 and 00:00:00+08:00 of a day, as instants. */
int64_t dub_calendar_day_end_ms(int64_t day);
int64_t dub_calendar_day_start_ms(int64_t day);

/* One SLA period of sla.json: {"working_days": N} or {"days": N}. */
struct dub_calendar_period {
  int n;        /* 0..DUB_CALENDAR_PERIOD_MAX */
  bool working; /* true for working days, false for natural days */
};
#define DUB_CALENDAR_PERIOD_MAX 3660

/* Parses a period object with exactly one of the two members, a whole number in range.
 * Borrows 'json'. DUB_ERR_CONFIG with a new message in '*why' (if not NULL; free with
 * free()) when the object does not fit. */
enum dub_err dub_calendar_period_parse(const json_t *json,
                                       struct dub_calendar_period *out, char **why);

/* dub_calendar_deadline for a parsed period. */
int64_t dub_calendar_period_deadline(const struct dub_calendar *cal, int64_t start_ms,
                                     struct dub_calendar_period period,
                                     bool *provisional);

#endif
