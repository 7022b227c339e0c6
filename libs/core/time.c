/* time.c - clocks, RFC 3339 parsing and formatting, civil-date arithmetic. */
#include "core/time.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t dub_time_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dub_time_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec dub_time_mono_after(int64_t ms)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += (time_t)(ms / 1000);
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if(ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

static bool is_leap(int y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int dub_date_days_in_month(int year, int month)
{
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if(month < 1 || month > 12)
    return 0;
  return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Civil-date conversion counts in 400-year eras of 146097 days starting on 1 March,
 * so that the leap day is the last day of each shifted year. */
int64_t dub_date_to_days(struct dub_date date)
{
  int64_t y = date.year - (date.month <= 2);
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t mp = (date.month + 9) % 12; /* March = 0 */
  int64_t doy = (153 * mp + 2) / 5 + date.day - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct dub_date dub_date_from_days(int64_t days)
{
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  int64_t doe = days - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  struct dub_date d;
  d.day = (int)(doy - (153 * mp + 2) / 5 + 1);
  d.month = (int)(mp < 10 ? mp + 3 : mp - 9);
  d.year = (int)(yoe + era * 400 + (d.month <= 2));
  return d;
}

int dub_date_weekday(int64_t days)
{
  /* 1970-01-01 was a Thursday (4). */
  int64_t w = (days + 4) % 7;
  return (int)(w < 0 ? w + 7 : w);
}

static int floor_div(int64_t a, int64_t b, int64_t *q)
{
  *q = a / b;
  int64_t r = a % b;
  if(r < 0) {
    *q -= 1;
    r += b;
  }
  return (int)r;
}

int64_t dub_time_day_at(int64_t ms, int offset_min)
{
  int64_t day;
  floor_div(ms + (int64_t)offset_min * 60000, 86400000, &day);
  return day;
}

/* Reads exactly 'n' digits. */
static bool digits(const char **p, int n, int *out)
{
  int v = 0;
  for(int i = 0; i < n; i++) {
    char c = (*p)[i];
    if(c < '0' || c > '9')
      return false;
    v = v * 10 + (c - '0');
  }
  *p += n;
  *out = v;
  return true;
}

static bool expect(const char **p, char c)
{
  if(**p != c)
    return false;
  (*p)++;
  return true;
}

bool dub_date_parse(const char *s, struct dub_date *out)
{
  const char *p = s;
  struct dub_date d;
  if(!digits(&p, 4, &d.year) || !expect(&p, '-') || !digits(&p, 2, &d.month) ||
     !expect(&p, '-') || !digits(&p, 2, &d.day) || *p)
    return false;
  if(d.day < 1 || d.day > dub_date_days_in_month(d.year, d.month))
    return false;
  *out = d;
  return true;
}

enum dub_err dub_time_parse(const char *s, int64_t *ms, int *offset_min)
{
  const char *p = s;
  struct dub_date d;
  int hh, mm, ss, frac_ms = 0, off = 0;
  if(!s || !digits(&p, 4, &d.year) || !expect(&p, '-') || !digits(&p, 2, &d.month) ||
     !expect(&p, '-') || !digits(&p, 2, &d.day))
    return DUB_ERR_MALFORMED;
  if(*p != 'T' && *p != 't')
    return DUB_ERR_MALFORMED;
  p++;
  if(!digits(&p, 2, &hh) || !expect(&p, ':') || !digits(&p, 2, &mm) || !expect(&p, ':') ||
     !digits(&p, 2, &ss))
    return DUB_ERR_MALFORMED;
  if(*p == '.') {
    p++;
    int n = 0, scale = 100;
    while(*p >= '0' && *p <= '9') {
      frac_ms += (*p - '0') * scale;
      scale /= 10;
      p++;
      n++;
    }
    if(n == 0)
      return DUB_ERR_MALFORMED;
  }
  if(*p == 'Z' || *p == 'z') {
    p++;
  } else if(*p == '+' || *p == '-') {
    int sign = *p == '-' ? -1 : 1, oh, om;
    p++;
    if(!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 ||
       om > 59)
      return DUB_ERR_MALFORMED;
    off = sign * (oh * 60 + om);
  } else {
    return DUB_ERR_MALFORMED;
  }
  if(*p)
    return DUB_ERR_MALFORMED;
  if(d.day < 1 || d.day > dub_date_days_in_month(d.year, d.month) || hh > 23 || mm > 59 ||
     ss > 60)
    return DUB_ERR_MALFORMED;
  int64_t secs =
      dub_date_to_days(d) * 86400 + hh * 3600 + mm * 60 + ss - (int64_t)off * 60;
  if(ss == 60) {
    /* A leap second exists only as 23:59:60 UTC; it counts as the next second. */
    int64_t in_day;
    floor_div(secs - 1, 86400, &in_day);
    if((secs - 1) - in_day * 86400 != 86399)
      return DUB_ERR_MALFORMED;
  }
  *ms = secs * 1000 + frac_ms;
  if(offset_min)
    *offset_min = off;
  return DUB_OK;
}

/* Writes 'n' as 'width' digits (n >= 0) and returns the end. */
static char *put_digits(char *p, int n, int width)
{
  for(int i = width - 1; i >= 0; i--, n /= 10)
    p[i] = (char)('0' + n % 10);
  return p + width;
}

/* By hand rather than with snprintf: deadline formats a dozen moments per event, and
 * snprintf's format parsing was a twentieth of its rebuild's time (issue 12). */
void dub_time_format(int64_t ms, int offset_min, char out[DUB_TIME_LEN])
{
  int64_t local = ms + (int64_t)offset_min * 60000, day;
  int rem = floor_div(local, 86400000, &day);
  struct dub_date d = dub_date_from_days(day);
  int millis = rem % 1000, secs = rem / 1000;
  int year = d.year % 10000;
  char *p = put_digits(out, year < 0 ? 0 : year, 4);
  *p++ = '-';
  p = put_digits(p, d.month, 2);
  *p++ = '-';
  p = put_digits(p, d.day, 2);
  *p++ = 'T';
  p = put_digits(p, secs / 3600, 2);
  *p++ = ':';
  p = put_digits(p, secs / 60 % 60, 2);
  *p++ = ':';
  p = put_digits(p, secs % 60, 2);
  if(millis) {
    *p++ = '.';
    p = put_digits(p, millis, 3);
  }
  if(offset_min) {
    int a = (offset_min < 0 ? -offset_min : offset_min) % (24 * 60);
    *p++ = offset_min < 0 ? '-' : '+';
    p = put_digits(p, a / 60, 2);
    *p++ = ':';
    p = put_digits(p, a % 60, 2);
  } else {
    *p++ = 'Z';
  }
  *p = '\0';
}
