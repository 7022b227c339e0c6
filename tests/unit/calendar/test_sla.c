/* test_sla.c - SLA moments against DESIGN.md's worked example and the shipped calendar.
 */
#include "calendar/sla.h"

#include "calendar/calendar.h"
#include "core/time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The shipped defaults of DESIGN.md. */
static const char sla_text[] =
    "{\"accept\": {\"working_days\": 1}, \"resolve\": {\"urgent\": {\"working_days\": 2},"
    " \"high\": {\"working_days\": 5}, \"normal\": {\"working_days\": 15},"
    " \"low\": {\"days\": 30}}, \"warn_before\": {\"working_days\": 2},"
    " \"escalate\": [{\"level\": 3, \"after_overdue\": {\"working_days\": 5}},"
    " {\"level\": 4, \"after_overdue\": {\"working_days\": 10}}]}";

struct fixture {
  json_t *sla;
  struct dub_calendar *cal;
};

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof *f);
  char *why = NULL;
  f->sla = json_loads(sla_text, 0, NULL);
  assert_non_null(f->sla);
  assert_int_equal(dub_calendar_load_dir("deploy/config/calendar", &f->cal, &why),
                   DUB_OK);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  json_decref(f->sla);
  dub_calendar_free(f->cal);
  free(f);
  return 0;
}

static void assert_time(int64_t ms, const char *expected)
{
  char out[DUB_TIME_LEN];
  dub_time_format(ms, DUB_SHANGHAI_OFFSET_MIN, out);
  assert_string_equal(out, expected);
}

static int64_t at(const char *text)
{
  int64_t ms;
  assert_int_equal(dub_time_parse(text, &ms, NULL), DUB_OK);
  return ms;
}

static void test_design_example(void **state)
{
  struct fixture *f = *state;
  struct dub_sla_moments m;
  char *why = NULL;
  assert_int_equal(
      dub_sla_compute(f->sla, f->cal, "high", at("2026-09-29T10:00:00+08:00"), &m, &why),
      DUB_OK);
  assert_time(m.accept_by, "2026-09-30T23:59:59+08:00");
  assert_time(m.due_at, "2026-10-12T23:59:59+08:00");
  assert_time(m.warn_at, "2026-10-09T00:00:00+08:00");
  assert_int_equal(m.n_levels, 2);
  assert_int_equal(m.escalate[0].level, 3);
  assert_time(m.escalate[0].at, "2026-10-19T23:59:59+08:00");
  assert_int_equal(m.escalate[1].level, 4);
  assert_time(m.escalate[1].at, "2026-10-26T23:59:59+08:00");
  assert_false(m.provisional);
}

static void test_natural_days_and_provisional(void **state)
{
  struct fixture *f = *state;
  struct dub_sla_moments m;
  char *why = NULL;
  /* low: 30 natural days from the day after 2026-12-15 is 2027-01-14, a year without a
   * calendar file, so warn and escalation moments are provisional. */
  assert_int_equal(
      dub_sla_compute(f->sla, f->cal, "low", at("2026-12-15T08:00:00+08:00"), &m, &why),
      DUB_OK);
  assert_time(m.due_at, "2027-01-14T23:59:59+08:00");
  assert_true(m.provisional);
  /* A severity sla.json does not know is a configuration error that says which. */
  assert_int_equal(dub_sla_compute(f->sla, f->cal, "extreme",
                                   at("2026-12-15T08:00:00+08:00"), &m, &why),
                   DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "/resolve/extreme"));
  free(why);
}

static void test_clock_start(void **state)
{
  (void)state;
  assert_int_equal(dub_sla_clock_start(100, 200), 100); /* backlog keeps its time */
  assert_int_equal(dub_sla_clock_start(300, 200), 200); /* future: receipt time */
  assert_int_equal(dub_sla_clock_start(-1, 200), 200);  /* absent: receipt time */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_design_example),
      cmocka_unit_test(test_natural_days_and_provisional),
      cmocka_unit_test(test_clock_start),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
