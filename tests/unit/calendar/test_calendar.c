/* test_calendar.c - the shipped 2025/2026 calendars against the State Council notices,
 * deadline arithmetic of DESIGN.md "Clocks", provisional years and load errors. */
#include "calendar/calendar.h"
#include "core/time.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define CAL_DIR "deploy/config/calendar"

static int64_t day_of(const char *s)
{
  struct dub_date d;
  if(!dub_date_parse(s, &d))
    fail_msg("bad test date %s", s);
  return dub_date_to_days(d);
}

static int64_t ms_of(const char *s)
{
  int64_t ms;
  if(dub_time_parse(s, &ms, NULL))
    fail_msg("bad test time %s", s);
  return ms;
}

/* Asserts an instant, printing both in +08:00 on mismatch. */
#define assert_instant(ms, want)                                                         \
  do {                                                                                   \
    char got_[DUB_TIME_LEN];                                                             \
    dub_time_format((ms), DUB_SHANGHAI_OFFSET_MIN, got_);                                \
    assert_string_equal(got_, (want));                                                   \
  } while(0)

static struct dub_calendar *load_shipped(void)
{
  struct dub_calendar *cal = NULL;
  char *why = NULL;
  enum dub_err rc = dub_calendar_load_dir(CAL_DIR, &cal, &why);
  if(rc)
    fail_msg("loading %s: %s", CAL_DIR, why ? why : "?");
  return cal;
}

static int setup(void **state)
{
  *state = load_shipped();
  return 0;
}

static int teardown(void **state)
{
  dub_calendar_free(*state);
  return 0;
}

/* One holiday block of a notice: off from 'first' to 'last', the working day before
 * and the working day after, and its adjusted working weekend days. */
struct block {
  const char *name;
  const char *before, *first, *last, *after;
  const char *adjusted[3];
};

/* FACTS.md, from gov.cn/zhengce/zhengceku/202411/content_6986383.htm. */
static const struct block y2025[] = {
    {"元旦", "2024-12-31", "2025-01-01", "2025-01-01", "2025-01-02", {NULL}},
    {"春节",
     "2025-01-27",
     "2025-01-28",
     "2025-02-04",
     "2025-02-05",
     {"2025-01-26", "2025-02-08", NULL}},
    {"清明节", "2025-04-03", "2025-04-04", "2025-04-06", "2025-04-07", {NULL}},
    {"劳动节",
     "2025-04-30",
     "2025-05-01",
     "2025-05-05",
     "2025-05-06",
     {"2025-04-27", NULL}},
    {"端午节", "2025-05-30", "2025-05-31", "2025-06-02", "2025-06-03", {NULL}},
    {"国庆节、中秋节",
     "2025-09-30",
     "2025-10-01",
     "2025-10-08",
     "2025-10-09",
     {"2025-09-28", "2025-10-11", NULL}},
};

/* FACTS.md, from gov.cn/zhengce/zhengceku/202511/content_7047091.htm. */
static const struct block y2026[] = {
    {"元旦",
     "2025-12-31",
     "2026-01-01",
     "2026-01-03",
     "2026-01-04",
     {"2026-01-04", NULL}},
    {"春节",
     "2026-02-14",
     "2026-02-15",
     "2026-02-23",
     "2026-02-24",
     {"2026-02-14", "2026-02-28", NULL}},
    {"清明节", "2026-04-03", "2026-04-04", "2026-04-06", "2026-04-07", {NULL}},
    {"劳动节",
     "2026-04-30",
     "2026-05-01",
     "2026-05-05",
     "2026-05-06",
     {"2026-05-09", NULL}},
    {"端午节", "2026-06-18", "2026-06-19", "2026-06-21", "2026-06-22", {NULL}},
    {"中秋节", "2026-09-24", "2026-09-25", "2026-09-27", "2026-09-28", {NULL}},
    {"国庆节",
     "2026-09-30",
     "2026-10-01",
     "2026-10-07",
     "2026-10-08",
     {"2026-09-20", "2026-10-10", NULL}},
};

static void check_blocks(const struct dub_calendar *cal, const struct block *b, size_t n)
{
  for(size_t i = 0; i < n; i++) {
    bool prov = true;
    print_message("checking %s %s..%s\n", b[i].name, b[i].first, b[i].last);
    assert_true(dub_calendar_is_working_day(cal, day_of(b[i].before), NULL));
    for(int64_t d = day_of(b[i].first); d <= day_of(b[i].last); d++) {
      assert_false(dub_calendar_is_working_day(cal, d, &prov));
      assert_false(prov);
    }
    assert_true(dub_calendar_is_working_day(cal, day_of(b[i].after), &prov));
    assert_false(prov);
    for(size_t k = 0; k < 3 && b[i].adjusted[k]; k++) {
      int64_t d = day_of(b[i].adjusted[k]);
      int wd = dub_date_weekday(d);
      assert_true(wd == 0 || wd == 6); /* only a weekend can be adjusted to work */
      assert_true(dub_calendar_is_working_day(cal, d, &prov));
      assert_false(prov);
    }
  }
}

/* Every day of 'year' is a working day exactly when the notice says so. */
static void check_year(const struct dub_calendar *cal, int year, const struct block *b,
                       size_t n)
{
  int64_t first = dub_date_to_days((struct dub_date){year, 1, 1});
  int64_t last = dub_date_to_days((struct dub_date){year, 12, 31});
  int working = 0;
  for(int64_t d = first; d <= last; d++) {
    int wd = dub_date_weekday(d);
    bool want = wd != 0 && wd != 6, prov = true;
    for(size_t i = 0; i < n; i++) {
      if(d >= day_of(b[i].first) && d <= day_of(b[i].last))
        want = false;
      for(size_t k = 0; k < 3 && b[i].adjusted[k]; k++) {
        if(d == day_of(b[i].adjusted[k]))
          want = true;
      }
    }
    assert_int_equal(dub_calendar_is_working_day(cal, d, &prov), want);
    assert_false(prov);
    working += want;
  }
  print_message("%d: %d working days\n", year, working);
}

static void test_2025_blocks(void **state)
{
  check_blocks(*state, y2025, sizeof y2025 / sizeof y2025[0]);
  check_year(*state, 2025, y2025, sizeof y2025 / sizeof y2025[0]);
}

static void test_2026_blocks(void **state)
{
  check_blocks(*state, y2026, sizeof y2026 / sizeof y2026[0]);
  check_year(*state, 2026, y2026, sizeof y2026 / sizeof y2026[0]);
}

/* The shipped files carry the notice URLs and Chinese holiday names. */
static void test_shipped_files(void **state)
{
  struct dub_calendar *cal = *state;
  const char *paper[] = {
      "https://www.gov.cn/zhengce/zhengceku/202411/content_6986383.htm",
      "https://www.gov.cn/zhengce/zhengceku/202511/content_7047091.htm"};
  size_t want_days[] = {33, 39};
  assert_true(dub_calendar_has_year(cal, 2025));
  assert_true(dub_calendar_has_year(cal, 2026));
  assert_false(dub_calendar_has_year(cal, 2027));
  for(int i = 0; i < 2; i++) {
    char path[64];
    snprintf(path, sizeof path, CAL_DIR "/%d.json", 2025 + i);
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "year")), 2025 + i);
    json_t *papers = json_object_get(doc, "papers");
    assert_int_equal(json_array_size(papers), 1);
    assert_string_equal(json_string_value(json_array_get(papers, 0)), paper[i]);
    json_t *days = json_object_get(doc, "days");
    assert_int_equal(json_array_size(days), want_days[i]);
    size_t k;
    json_t *e;
    json_array_foreach(days, k, e)
    {
      const char *name = json_string_value(json_object_get(e, "name"));
      assert_non_null(name);
      assert_true((unsigned char)name[0] >= 0x80); /* a Chinese name */
    }
    json_decref(doc);
  }
}

static void test_weekend_rule(void **state)
{
  struct dub_calendar *cal = *state;
  bool prov = true;
  assert_false(dub_calendar_is_working_day(cal, day_of("2026-03-07"), &prov));
  assert_false(prov);
  assert_false(dub_calendar_is_working_day(cal, day_of("2026-03-08"), NULL));
  assert_true(dub_calendar_is_working_day(cal, day_of("2026-03-09"), NULL));
  /* A weekend merely next to a holiday is off without being listed. */
  assert_false(dub_calendar_is_working_day(cal, day_of("2025-01-25"), NULL));
}

/* DESIGN.md "Clocks", with the shipped sla.json defaults. */
static void test_design_example(void **state)
{
  struct dub_calendar *cal = *state;
  bool prov = true;
  int64_t start = ms_of("2026-09-29T10:00:00+08:00");

  int64_t accept_by = dub_calendar_deadline(cal, start, 1, true, &prov);
  assert_false(prov);
  assert_int_equal(accept_by, ms_of("2026-09-30T23:59:59+08:00"));

  int64_t due = dub_calendar_deadline(cal, start, 5, true, &prov);
  assert_false(prov);
  assert_int_equal(due, ms_of("2026-10-12T23:59:59+08:00"));

  prov = true;
  int64_t warn = dub_calendar_warn_at(cal, due, 2, &prov);
  assert_false(prov);
  assert_int_equal(warn, ms_of("2026-10-09T00:00:00+08:00"));

  prov = true;
  int64_t level3 = dub_calendar_after_due(cal, due, 5, &prov);
  assert_false(prov);
  assert_int_equal(level3, ms_of("2026-10-19T23:59:59+08:00"));

  prov = true;
  int64_t level4 = dub_calendar_after_due(cal, due, 10, &prov);
  assert_false(prov);
  assert_int_equal(level4, ms_of("2026-10-26T23:59:59+08:00"));
  assert_instant(level4, "2026-10-26T23:59:59+08:00");

  /* The same through sla.json periods. */
  json_t *sla = json_loads(
      "{\"accept\": {\"working_days\": 1}, \"high\": {\"working_days\": 5}}", 0, NULL);
  struct dub_calendar_period accept, high;
  assert_int_equal(
      dub_calendar_period_parse(json_object_get(sla, "accept"), &accept, NULL), DUB_OK);
  assert_int_equal(dub_calendar_period_parse(json_object_get(sla, "high"), &high, NULL),
                   DUB_OK);
  assert_int_equal(dub_calendar_period_deadline(cal, start, accept, &prov), accept_by);
  assert_int_equal(dub_calendar_period_deadline(cal, start, high, &prov), due);
  json_decref(sla);

  /* Day-level counterparts. */
  assert_int_equal(dub_calendar_add_working_days(cal, day_of("2026-09-29"), 5, NULL),
                   day_of("2026-10-12"));
  assert_int_equal(dub_calendar_sub_working_days(cal, day_of("2026-10-12"), 2, NULL),
                   day_of("2026-10-09"));
  assert_int_equal(dub_calendar_add_working_days(cal, day_of("2026-10-12"), -2, NULL),
                   day_of("2026-10-09"));
  assert_int_equal(dub_calendar_sub_working_days(cal, day_of("2026-10-09"), -2, NULL),
                   day_of("2026-10-12"));
  assert_int_equal(dub_calendar_add_working_days(cal, day_of("2026-10-03"), 0, NULL),
                   day_of("2026-10-03"));
  /* Spring Festival 2026: a start on the adjusted Saturday skips the nine days off. */
  assert_int_equal(dub_calendar_add_working_days(cal, day_of("2026-02-13"), 1, NULL),
                   day_of("2026-02-14"));
  assert_int_equal(dub_calendar_add_working_days(cal, day_of("2026-02-14"), 1, NULL),
                   day_of("2026-02-24"));
  assert_int_equal(dub_calendar_add_working_days(cal, day_of("2026-02-24"), 4, NULL),
                   day_of("2026-02-28"));
}

/* The clock starts on the Shanghai date, not the UTC one. */
static void test_shanghai_date(void **state)
{
  struct dub_calendar *cal = *state;
  bool prov;
  /* 16:30 UTC on 28 September is 00:30 on 29 September in Shanghai. */
  int64_t start = ms_of("2026-09-28T16:30:00Z");
  assert_instant(dub_calendar_deadline(cal, start, 1, true, &prov),
                 "2026-09-30T23:59:59+08:00");
  assert_instant(dub_calendar_deadline(cal, start, 1, false, &prov),
                 "2026-09-30T23:59:59+08:00");
  /* One second earlier it is still the 28th in Shanghai too (23:59:59). */
  assert_instant(
      dub_calendar_deadline(cal, ms_of("2026-09-28T15:59:59Z"), 1, true, &prov),
      "2026-09-29T23:59:59+08:00");
  /* Friday 16:00 UTC is Saturday 10 October 00:00, an adjusted working day: the next
   * working day is Monday. */
  assert_instant(
      dub_calendar_deadline(cal, ms_of("2026-10-09T16:00:00Z"), 1, true, &prov),
      "2026-10-12T23:59:59+08:00");
  /* warn_at and escalation take the Shanghai date of the due instant too. */
  assert_instant(dub_calendar_warn_at(cal, ms_of("2026-10-11T16:00:00Z"), 2, &prov),
                 "2026-10-09T00:00:00+08:00");
  assert_instant(dub_calendar_after_due(cal, ms_of("2026-10-11T16:00:00Z"), 1, &prov),
                 "2026-10-13T23:59:59+08:00");
  assert_int_equal(dub_calendar_day_start_ms(day_of("2026-10-01")),
                   ms_of("2026-09-30T16:00:00Z"));
  assert_int_equal(dub_calendar_day_end_ms(day_of("2026-10-01")),
                   ms_of("2026-10-01T15:59:59Z"));
}

static void test_natural_days(void **state)
{
  struct dub_calendar *cal = *state;
  bool prov = true;
  int64_t start = ms_of("2026-01-31T10:00:00+08:00");
  assert_instant(dub_calendar_deadline(cal, start, 1, false, &prov),
                 "2026-02-01T23:59:59+08:00");
  assert_false(prov);
  assert_instant(dub_calendar_deadline(cal, start, 30, false, &prov),
                 "2026-03-02T23:59:59+08:00");
  /* Holidays are not skipped. */
  assert_instant(
      dub_calendar_deadline(cal, ms_of("2026-09-30T09:00:00+08:00"), 3, false, &prov),
      "2026-10-03T23:59:59+08:00");
  /* Leap day 2028 (no calendar needed, so never provisional). */
  start = ms_of("2028-02-28T09:00:00+08:00");
  prov = true;
  assert_instant(dub_calendar_deadline(cal, start, 1, false, &prov),
                 "2028-02-29T23:59:59+08:00");
  assert_false(prov);
  assert_instant(dub_calendar_deadline(cal, start, 2, false, &prov),
                 "2028-03-01T23:59:59+08:00");
  assert_instant(
      dub_calendar_deadline(cal, ms_of("2027-02-28T09:00:00+08:00"), 1, false, &prov),
      "2027-03-01T23:59:59+08:00");
  /* Year end, and the shipped low period of 30 days. */
  assert_instant(
      dub_calendar_deadline(cal, ms_of("2026-12-31T23:00:00+08:00"), 1, false, &prov),
      "2027-01-01T23:59:59+08:00");
  assert_instant(
      dub_calendar_deadline(cal, ms_of("2026-12-15T08:00:00+08:00"), 30, false, &prov),
      "2027-01-14T23:59:59+08:00");
  /* 30 April + 1 natural day crosses a 30-day month end. */
  assert_instant(
      dub_calendar_deadline(cal, ms_of("2026-04-30T08:00:00+08:00"), 1, false, &prov),
      "2026-05-01T23:59:59+08:00");
}

static const char doc2027[] =
    "{\"year\": 2027, \"papers\": [\"test only, not a notice\"], \"days\": ["
    "{\"name\": \"元旦\", \"date\": \"2027-01-01\", \"isOffDay\": true},"
    "{\"name\": \"元旦\", \"date\": \"2027-01-02\", \"isOffDay\": true},"
    "{\"name\": \"元旦\", \"date\": \"2027-01-03\", \"isOffDay\": true},"
    "{\"name\": \"元旦\", \"date\": \"2027-01-09\", \"isOffDay\": false}]}";

/* 2027 has no file: weekdays, marked provisional; with a document the answers change. */
static void test_provisional_year(void **state)
{
  struct dub_calendar *shipped = *state, *cal = NULL;
  json_t *docs[3] = {NULL, NULL, NULL};
  char *why = NULL;
  bool prov = false;
  int64_t start = ms_of("2026-12-30T10:00:00+08:00");

  assert_true(dub_calendar_is_working_day(shipped, day_of("2027-01-01"), &prov));
  assert_true(prov);
  assert_false(dub_calendar_is_working_day(shipped, day_of("2027-01-09"), &prov));
  assert_true(prov);
  prov = false;
  assert_instant(dub_calendar_deadline(shipped, start, 2, true, &prov),
                 "2027-01-01T23:59:59+08:00");
  assert_true(prov);
  /* Only 31 December consulted: not provisional. */
  assert_instant(dub_calendar_deadline(shipped, start, 1, true, &prov),
                 "2026-12-31T23:59:59+08:00");
  assert_false(prov);
  prov = false;
  assert_instant(
      dub_calendar_warn_at(shipped, ms_of("2027-01-05T23:59:59+08:00"), 2, &prov),
      "2027-01-01T00:00:00+08:00");
  assert_true(prov);

  /* The answer lies in 2026, but days of 2027 were consulted on the way. */
  prov = false;
  assert_int_equal(dub_calendar_sub_working_days(shipped, day_of("2027-01-04"), 2, &prov),
                   day_of("2026-12-31"));
  assert_true(prov);

  docs[0] = json_load_file(CAL_DIR "/2025.json", 0, NULL);
  docs[1] = json_load_file(CAL_DIR "/2026.json", 0, NULL);
  docs[2] = json_loads(doc2027, 0, NULL);
  assert_non_null(docs[0]);
  assert_non_null(docs[1]);
  assert_non_null(docs[2]);
  assert_int_equal(dub_calendar_new((const json_t *const *)docs, 3, &cal, &why), DUB_OK);
  assert_null(why);
  assert_true(dub_calendar_has_year(cal, 2027));

  prov = true;
  assert_false(dub_calendar_is_working_day(cal, day_of("2027-01-01"), &prov));
  assert_false(prov);
  assert_true(dub_calendar_is_working_day(cal, day_of("2027-01-09"), &prov));
  assert_false(prov);
  prov = true;
  assert_instant(dub_calendar_deadline(cal, start, 2, true, &prov),
                 "2027-01-04T23:59:59+08:00");
  assert_false(prov);
  prov = true;
  assert_instant(dub_calendar_warn_at(cal, ms_of("2027-01-05T23:59:59+08:00"), 2, &prov),
                 "2026-12-31T00:00:00+08:00");
  assert_false(prov);
  /* 2028 is still unknown. */
  assert_true(dub_calendar_is_working_day(cal, day_of("2028-01-03"), &prov));
  assert_true(prov);
  /* The 2026 answers are unchanged. */
  check_year(cal, 2026, y2026, sizeof y2026 / sizeof y2026[0]);

  dub_calendar_free(cal);
  for(int i = 0; i < 3; i++)
    json_decref(docs[i]);
}

/* Builds from one or two documents written as JSON text; expects DUB_ERR_CONFIG and a
 * message containing each of the 'needles'. */
static void expect_build_error(const char *a, const char *b, const char *needle1,
                               const char *needle2)
{
  json_t *docs[2] = {json_loads(a, 0, NULL), b ? json_loads(b, 0, NULL) : NULL};
  struct dub_calendar *cal = (struct dub_calendar *)1;
  char *why = NULL;
  assert_non_null(docs[0]);
  assert_int_equal(dub_calendar_new((const json_t *const *)docs, b ? 2 : 1, &cal, &why),
                   DUB_ERR_CONFIG);
  assert_null(cal);
  assert_non_null(why);
  print_message("error: %s\n", why);
  assert_non_null(strstr(why, needle1));
  if(needle2)
    assert_non_null(strstr(why, needle2));
  free(why);
  json_decref(docs[0]);
  json_decref(docs[1]);
}

static void test_build_errors(void **state)
{
  (void)state;
  expect_build_error(
      "{\"year\": 2025, \"days\": [{\"name\": \"x\", \"date\": \"2025-02-30\","
      " \"isOffDay\": true}]}",
      NULL, "2025", "2025-02-30");
  expect_build_error(
      "{\"year\": 2025, \"days\": [{\"name\": \"x\", \"date\": \"2025/10/01\","
      " \"isOffDay\": true}]}",
      NULL, "calendar 2025", "2025/10/01");
  expect_build_error(
      "{\"year\": 2025, \"days\": [{\"name\": \"x\", \"date\": \"2025-10-01\","
      " \"isOffDay\": \"yes\"}]}",
      NULL, "2025-10-01", "isOffDay");
  expect_build_error("{\"year\": 2025, \"days\": [{\"name\": \"x\", \"date\": 20251001,"
                     " \"isOffDay\": true}]}",
                     NULL, "calendar 2025: days[0]", "date");
  expect_build_error("{\"year\": 2025, \"days\": [{\"name\": 7, \"date\": \"2025-10-01\","
                     " \"isOffDay\": true}]}",
                     NULL, "calendar 2025", "name");
  expect_build_error("{\"year\": \"2025\", \"days\": []}", NULL, "year", NULL);
  expect_build_error("{\"year\": 2025, \"days\": {}}", NULL, "calendar 2025", "days");
  expect_build_error("{\"year\": 2025, \"days\": [\"2025-10-01\"]}", NULL,
                     "calendar 2025: days[0]", NULL);
  expect_build_error("{\"year\": 2025, \"papers\": [1], \"days\": []}", NULL, "2025",
                     "papers");
  expect_build_error("[2025]", NULL, "document 0", NULL);
  expect_build_error(
      "{\"year\": 2025, \"days\": [{\"name\": \"x\", \"date\": \"2027-10-01\","
      " \"isOffDay\": true}]}",
      NULL, "2025", "2027-10-01");
  expect_build_error("{\"year\": 2025, \"days\": ["
                     "{\"name\": \"x\", \"date\": \"2025-10-01\", \"isOffDay\": true},"
                     "{\"name\": \"x\", \"date\": \"2025-10-01\", \"isOffDay\": false}]}",
                     NULL, "2025-10-01", "twice");
  expect_build_error("{\"year\": 2025, \"days\": []}", "{\"year\": 2025, \"days\": []}",
                     "2025", "more than one");
  expect_build_error("{\"year\": 2025, \"days\": ["
                     "{\"name\": \"x\", \"date\": \"2026-01-01\", \"isOffDay\": true}]}",
                     "{\"year\": 2026, \"days\": ["
                     "{\"name\": \"x\", \"date\": \"2026-01-01\", \"isOffDay\": true}]}",
                     "2026-01-01", "also listed");
}

static void write_file(const char *dir, const char *name, const char *text)
{
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void remove_file(const char *dir, const char *name)
{
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
}

static void test_load_dir_errors(void **state)
{
  (void)state;
  char dir[] = "/tmp/dub-calendar-XXXXXX";
  struct dub_calendar *cal = NULL;
  char *why = NULL;
  bool prov = false;
  assert_non_null(mkdtemp(dir));

  /* Empty directory: an empty calendar, every day provisional. */
  assert_int_equal(dub_calendar_load_dir(dir, &cal, &why), DUB_OK);
  assert_true(dub_calendar_is_working_day(cal, day_of("2026-10-01"), &prov));
  assert_true(prov);
  dub_calendar_free(cal);

  /* Other names are ignored. */
  write_file(dir, "README.txt", "not json");
  write_file(dir, "20301.json", "not json");
  write_file(dir, "2030.json.bak", "not json");
  write_file(dir, "2030.json", "{\"year\": 2030, \"papers\": [], \"days\": []}");
  assert_int_equal(dub_calendar_load_dir(dir, &cal, &why), DUB_OK);
  assert_true(dub_calendar_has_year(cal, 2030));
  assert_false(dub_calendar_has_year(cal, 2031));
  dub_calendar_free(cal);

  /* The year must match the file name. */
  write_file(dir, "2031.json", "{\"year\": 2030, \"days\": []}");
  assert_int_equal(dub_calendar_load_dir(dir, &cal, &why), DUB_ERR_CONFIG);
  assert_null(cal);
  assert_non_null(strstr(why, "2031.json"));
  free(why);
  why = NULL;

  /* Bad JSON names the file and line. */
  write_file(dir, "2031.json", "{\"year\": 2031,\n \"days\": [}");
  assert_int_equal(dub_calendar_load_dir(dir, &cal, &why), DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "2031.json: line 2"));
  free(why);
  why = NULL;

  /* A bad entry names the year and the date. */
  write_file(dir, "2031.json",
             "{\"year\": 2031, \"days\": [{\"name\": \"元旦\", "
             "\"date\": \"2031-13-01\", \"isOffDay\": true}]}");
  assert_int_equal(dub_calendar_load_dir(dir, &cal, &why), DUB_ERR_CONFIG);
  print_message("error: %s\n", why);
  assert_non_null(strstr(why, "calendar 2031"));
  assert_non_null(strstr(why, "2031-13-01"));
  free(why);
  why = NULL;

  remove_file(dir, "2031.json");
  remove_file(dir, "2030.json");
  remove_file(dir, "2030.json.bak");
  remove_file(dir, "20301.json");
  remove_file(dir, "README.txt");
  assert_int_equal(rmdir(dir), 0);

  /* A missing directory is an I/O error. */
  assert_int_equal(dub_calendar_load_dir(dir, &cal, &why), DUB_ERR_IO);
  assert_non_null(strstr(why, dir));
  free(why);
}

static void expect_period_error(const char *text, const char *needle)
{
  json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
  struct dub_calendar_period p = {-1, true};
  char *why = NULL;
  assert_non_null(j);
  assert_int_equal(dub_calendar_period_parse(j, &p, &why), DUB_ERR_CONFIG);
  assert_non_null(why);
  assert_non_null(strstr(why, needle));
  assert_int_equal(p.n, -1);
  free(why);
  json_decref(j);
}

static void test_period_parse(void **state)
{
  (void)state;
  struct dub_calendar_period p;
  json_t *j = json_loads("{\"working_days\": 15}", 0, NULL);
  assert_int_equal(dub_calendar_period_parse(j, &p, NULL), DUB_OK);
  assert_int_equal(p.n, 15);
  assert_true(p.working);
  json_decref(j);
  j = json_loads("{\"days\": 30}", 0, NULL);
  assert_int_equal(dub_calendar_period_parse(j, &p, NULL), DUB_OK);
  assert_int_equal(p.n, 30);
  assert_false(p.working);
  json_decref(j);

  expect_period_error("{}", "needs");
  expect_period_error("{\"working_days\": 1, \"days\": 2}", "both");
  expect_period_error("{\"working_days\": -1}", "working_days");
  expect_period_error("{\"days\": 99999}", "days");
  expect_period_error("{\"working_days\": \"5\"}", "working_days");
  expect_period_error("{\"working_days\": 1.5}", "working_days");
  expect_period_error("{\"weeks\": 1}", "weeks");
  expect_period_error("[1]", "not an object");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shipped_files),  cmocka_unit_test(test_2025_blocks),
      cmocka_unit_test(test_2026_blocks),    cmocka_unit_test(test_weekend_rule),
      cmocka_unit_test(test_design_example), cmocka_unit_test(test_shanghai_date),
      cmocka_unit_test(test_natural_days),   cmocka_unit_test(test_provisional_year),
      cmocka_unit_test(test_build_errors),   cmocka_unit_test(test_load_dir_errors),
      cmocka_unit_test(test_period_parse),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
