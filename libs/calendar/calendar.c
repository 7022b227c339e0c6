/* calendar.c - building the calendar from holiday-cn year documents, and day queries. */
#include "calendar/calendar.h"

#include "core/alloc.h"
#include "core/time.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* One listed day. */
struct listed {
  int64_t day;
  bool off;
};

struct dub_calendar {
  struct listed *days; /* sorted by day, no duplicates */
  size_t ndays;
  int *years; /* years with a document, sorted */
  size_t nyears;
};

/* A listed day while building, with the document year that listed it. */
struct pending {
  int64_t day;
  bool off;
  int year;
};

#define YEAR_MIN 1970
#define YEAR_MAX 9999

static int cmp_pending(const void *a, const void *b)
{
  const struct pending *x = a, *y = b;
  if(x->day != y->day)
    return x->day < y->day ? -1 : 1;
  return x->year < y->year ? -1 : x->year > y->year;
}

static int cmp_int(const void *a, const void *b)
{
  int x = *(const int *)a, y = *(const int *)b;
  return x < y ? -1 : x > y;
}

static void set_why(char **why, char *msg)
{
  if(why)
    *why = msg;
  else
    free(msg);
}

/* Reads the "year" member of document number 'i'. */
static enum dub_err doc_year(const json_t *doc, size_t i, int *year, char **why)
{
  if(!json_is_object(doc)) {
    set_why(why, dub_xasprintf("calendar document %zu: not a JSON object", i));
    return DUB_ERR_CONFIG;
  }
  const json_t *y = json_object_get(doc, "year");
  if(!json_is_integer(y) || json_integer_value(y) < YEAR_MIN ||
     json_integer_value(y) > YEAR_MAX) {
    set_why(why, dub_xasprintf("calendar document %zu: \"year\" is not a year from %d "
                               "to %d",
                               i, YEAR_MIN, YEAR_MAX));
    return DUB_ERR_CONFIG;
  }
  *year = (int)json_integer_value(y);
  return DUB_OK;
}

/* Checks "papers" (optional, an array of strings). */
static enum dub_err doc_papers(const json_t *doc, int year, char **why)
{
  const json_t *papers = json_object_get(doc, "papers");
  size_t i;
  const json_t *p;
  if(!papers)
    return DUB_OK;
  if(!json_is_array(papers)) {
    set_why(why, dub_xasprintf("calendar %d: \"papers\" is not an array", year));
    return DUB_ERR_CONFIG;
  }
  json_array_foreach(papers, i, p)
  {
    if(!json_is_string(p)) {
      set_why(why, dub_xasprintf("calendar %d: papers[%zu] is not a string", year, i));
      return DUB_ERR_CONFIG;
    }
  }
  return DUB_OK;
}

/* Appends the "days" of one document to 'acc' after checking every entry. */
static enum dub_err doc_days(const json_t *doc, int year, struct pending **acc, size_t *n,
                             size_t *cap, char **why)
{
  const json_t *days = json_object_get(doc, "days");
  size_t i;
  const json_t *e;
  if(!json_is_array(days)) {
    set_why(why, dub_xasprintf("calendar %d: \"days\" is missing or not an array", year));
    return DUB_ERR_CONFIG;
  }
  json_array_foreach(days, i, e)
  {
    if(!json_is_object(e)) {
      set_why(why, dub_xasprintf("calendar %d: days[%zu] is not an object", year, i));
      return DUB_ERR_CONFIG;
    }
    const json_t *name = json_object_get(e, "name");
    const json_t *date = json_object_get(e, "date");
    const json_t *off = json_object_get(e, "isOffDay");
    if(!json_is_string(name)) {
      set_why(why, dub_xasprintf("calendar %d: days[%zu]: \"name\" is missing or not a "
                                 "string",
                                 year, i));
      return DUB_ERR_CONFIG;
    }
    if(!json_is_string(date)) {
      set_why(why, dub_xasprintf("calendar %d: days[%zu]: \"date\" is missing or not a "
                                 "string",
                                 year, i));
      return DUB_ERR_CONFIG;
    }
    const char *s = json_string_value(date);
    struct dub_date d;
    if(!dub_date_parse(s, &d)) {
      set_why(why, dub_xasprintf("calendar %d: days[%zu]: date \"%.40s\" is not a valid "
                                 "YYYY-MM-DD date",
                                 year, i, s));
      return DUB_ERR_CONFIG;
    }
    if(d.year < year - 1 || d.year > year + 1) {
      set_why(why, dub_xasprintf("calendar %d: days[%zu]: date %s is too far from %d",
                                 year, i, s, year));
      return DUB_ERR_CONFIG;
    }
    if(!json_is_boolean(off)) {
      set_why(why, dub_xasprintf("calendar %d: days[%zu] (%s): \"isOffDay\" is missing "
                                 "or not a boolean",
                                 year, i, s));
      return DUB_ERR_CONFIG;
    }
    if(*n == *cap) {
      *cap = *cap ? *cap * 2 : 64;
      *acc = dub_xrealloc(*acc, *cap * sizeof **acc);
    }
    (*acc)[*n].day = dub_date_to_days(d);
    (*acc)[*n].off = json_is_true(off);
    (*acc)[*n].year = year;
    (*n)++;
  }
  return DUB_OK;
}

/* Fills the sorted, duplicate-free day list of 'cal' from 'acc'. */
static enum dub_err merge_days(struct dub_calendar *cal, struct pending *acc, size_t n,
                               char **why)
{
  if(n)
    qsort(acc, n, sizeof *acc, cmp_pending);
  cal->days = dub_xcalloc(n ? n : 1, sizeof *cal->days);
  for(size_t i = 0; i < n; i++) {
    if(i > 0 && acc[i].day == acc[i - 1].day) {
      struct dub_date d = dub_date_from_days(acc[i].day);
      if(acc[i].year == acc[i - 1].year)
        set_why(why, dub_xasprintf("calendar %d: date %04d-%02d-%02d is listed twice",
                                   acc[i].year, d.year, d.month, d.day));
      else
        set_why(why, dub_xasprintf("calendar %d: date %04d-%02d-%02d is also listed by "
                                   "calendar %d",
                                   acc[i].year, d.year, d.month, d.day, acc[i - 1].year));
      return DUB_ERR_CONFIG;
    }
    cal->days[cal->ndays].day = acc[i].day;
    cal->days[cal->ndays].off = acc[i].off;
    cal->ndays++;
  }
  return DUB_OK;
}

enum dub_err dub_calendar_new(const json_t *const *docs, size_t n,
                              struct dub_calendar **out, char **why)
{
  enum dub_err rc = DUB_OK;
  struct dub_calendar *cal = dub_xcalloc(1, sizeof *cal);
  struct pending *acc = NULL;
  size_t nacc = 0, cap = 0;

  *out = NULL;
  cal->years = dub_xcalloc(n ? n : 1, sizeof *cal->years);
  for(size_t i = 0; i < n; i++) {
    int year;
    rc = doc_year(docs[i], i, &year, why);
    if(rc)
      goto out;
    for(size_t j = 0; j < cal->nyears; j++) {
      if(cal->years[j] == year) {
        set_why(why,
                dub_xasprintf("calendar %d: more than one document for the year", year));
        rc = DUB_ERR_CONFIG;
        goto out;
      }
    }
    rc = doc_papers(docs[i], year, why);
    if(rc)
      goto out;
    rc = doc_days(docs[i], year, &acc, &nacc, &cap, why);
    if(rc)
      goto out;
    cal->years[cal->nyears++] = year;
  }
  qsort(cal->years, cal->nyears, sizeof *cal->years, cmp_int);
  rc = merge_days(cal, acc, nacc, why);
  if(rc)
    goto out;
  *out = cal;
  cal = NULL;
out:
  free(acc);
  dub_calendar_free(cal);
  return rc;
}

void dub_calendar_free(struct dub_calendar *cal)
{
  if(!cal)
    return;
  free(cal->days);
  free(cal->years);
  free(cal);
}

bool dub_calendar_has_year(const struct dub_calendar *cal, int year)
{
  return bsearch(&year, cal->years, cal->nyears, sizeof *cal->years, cmp_int) != NULL;
}

static const struct listed *find_day(const struct dub_calendar *cal, int64_t day)
{
  size_t lo = 0, hi = cal->ndays;
  while(lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if(cal->days[mid].day == day)
      return &cal->days[mid];
    if(cal->days[mid].day < day)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

bool dub_calendar_is_working_day(const struct dub_calendar *cal, int64_t day,
                                 bool *provisional)
{
  if(provisional)
    *provisional = !dub_calendar_has_year(cal, dub_date_from_days(day).year);
  const struct listed *l = find_day(cal, day);
  if(l)
    return !l->off;
  int wd = dub_date_weekday(day);
  return wd != 0 && wd != 6;
}

/* Steps one day at a time in direction 'step' until 'n' working days have passed. */
static int64_t walk(const struct dub_calendar *cal, int64_t day, int n, int step,
                    bool *provisional)
{
  bool any = false;
  for(int count = 0; count < n;) {
    bool p;
    day += step;
    if(dub_calendar_is_working_day(cal, day, &p))
      count++;
    any = any || p;
  }
  if(provisional)
    *provisional = any;
  return day;
}

static int magnitude(int n)
{
  return n == INT_MIN ? INT_MAX : (n < 0 ? -n : n);
}

int64_t dub_calendar_add_working_days(const struct dub_calendar *cal, int64_t day, int n,
                                      bool *provisional)
{
  return walk(cal, day, magnitude(n), n < 0 ? -1 : 1, provisional);
}

int64_t dub_calendar_sub_working_days(const struct dub_calendar *cal, int64_t day, int m,
                                      bool *provisional)
{
  return walk(cal, day, magnitude(m), m < 0 ? 1 : -1, provisional);
}
