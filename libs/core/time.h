/* time.h - wall-clock milliseconds, RFC 3339 and civil dates. */
#ifndef DUB_CORE_TIME_H
#define DUB_CORE_TIME_H

#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Asia/Shanghai has kept UTC+08:00 without daylight saving since 1991. */
#define DUB_SHANGHAI_OFFSET_MIN 480
/* Big enough for "YYYY-MM-DDTHH:MM:SS.mmm+HH:MM" and the NUL. */
#define DUB_TIME_LEN 32

/* Milliseconds since the Unix epoch, from CLOCK_REALTIME. */
int64_t dub_time_now_ms(void);
/* Milliseconds from CLOCK_MONOTONIC, for durations. */
int64_t dub_time_mono_ms(void);
/* The CLOCK_MONOTONIC moment 'ms' from now, for pthread_cond_timedwait() on a condition
 * made with pthread_condattr_setclock(CLOCK_MONOTONIC): a step of the wall clock
 * neither ends such a wait early nor makes it longer. */
struct timespec dub_time_mono_after(int64_t ms);

/* Parses an RFC 3339 date-time ("2026-09-29T10:00:00+08:00", fraction optional, 'Z' or
 * an offset required). Gives the instant and, if offset_min is not NULL, the offset it
 * was written with. DUB_ERR_MALFORMED for anything else, including impossible dates. */
enum dub_err dub_time_parse(const char *s, int64_t *ms, int *offset_min);

/* Formats 'ms' at 'offset_min' ("Z" when 0); milliseconds only when not zero. */
void dub_time_format(int64_t ms, int offset_min, char out[DUB_TIME_LEN]);

/* A civil date in the proleptic Gregorian calendar. */
struct dub_date {
  int year;
  int month; /* 1..12 */
  int day;   /* 1..31 */
};

/* Days since 1970-01-01 of a date, and back. */
int64_t dub_date_to_days(struct dub_date date);
struct dub_date dub_date_from_days(int64_t days);
/* 0 = Sunday .. 6 = Saturday. */
int dub_date_weekday(int64_t days);
/* Number of days of the month, or 0 when month is out of range. */
int dub_date_days_in_month(int year, int month);
/* Parses "YYYY-MM-DD" strictly. */
bool dub_date_parse(const char *s, struct dub_date *out);
/* The day (days since epoch) on which instant 'ms' falls at 'offset_min'. */
int64_t dub_time_day_at(int64_t ms, int offset_min);

#endif
