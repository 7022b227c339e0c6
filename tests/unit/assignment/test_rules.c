/* test_rules.c - routing, recusal and officer choice without a broker. */
#include "rules.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char rules_text[] =
    "{\"rules\": ["
    " {\"id\": \"r-urgent-violation\", \"match\": {\"category\": [\"violation\"],"
    "  \"severity\": [\"urgent\"]}, \"unit\": \"G1\", \"strategy\": \"least_loaded\"},"
    " {\"id\": \"r-region\", \"match\": {\"region_prefix\": [\"3201\"], \"kind\": []},"
    "  \"unit\": \"G2\", \"strategy\": \"round_robin\"},"
    " {\"id\": \"r-street\", \"match\": {\"subject_unit\": [\"U-STREET-07\"],"
    "  \"kind\": [\"complaint\"]}, \"unit\": \"U-STREET-07\", \"strategy\": "
    "\"round_robin\"}"
    "], \"fallback_unit\": \"G0\"}";

static const char dir_text[] =
    "{\"units\": [], \"officers\": ["
    " {\"id\": \"o1\", \"unit\": \"G1\", \"roles\": [\"handler\"], \"active\": true,"
    "  \"conflicts\": [\"U-BUREAU\"]},"
    " {\"id\": \"o2\", \"unit\": \"G1\", \"roles\": [\"handler\"], \"active\": false},"
    " {\"id\": \"o3\", \"unit\": \"G1\", \"roles\": [\"handler\"], \"active\": true},"
    " {\"id\": \"h1\", \"unit\": \"G1\", \"roles\": [\"head\"], \"active\": true},"
    " {\"id\": \"o4\", \"unit\": \"G2\", \"roles\": [\"handler\"], \"active\": true,"
    "  \"conflicts\": [\"U-STREET-07\"]},"
    " {\"id\": \"h2\", \"unit\": \"G2\", \"roles\": [\"head\", \"handler\"], \"active\": "
    "true,"
    "  \"conflicts\": [\"U-STREET-07\"]},"
    " {\"id\": \"s1\", \"unit\": \"U-STREET-07\", \"roles\": [\"handler\"], \"active\": "
    "true},"
    " {\"id\": \"z1\", \"unit\": \"G0\", \"roles\": [\"handler\"], \"active\": true}"
    "]}";

struct fixture {
  json_t *rules, *dir;
};

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof *f);
  f->rules = json_loads(rules_text, 0, NULL);
  f->dir = json_loads(dir_text, 0, NULL);
  assert_non_null(f->rules);
  assert_non_null(f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  json_decref(f->rules);
  json_decref(f->dir);
  free(f);
  return 0;
}

static json_t *problem(const char *kind, const char *category, const char *severity,
                       const char *region, const char *subject)
{
  json_t *p =
      json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "kind", kind, "category", category,
                "severity", severity, "title", "t", "subject", "unit_id", subject);
  if(region)
    json_object_set_new(p, "region", json_string(region));
  return p;
}

static void test_first_match_and_officer(void **state)
{
  struct fixture *f = *state;
  struct assignment_result r;
  json_t *p = problem("clue", "violation", "urgent", "320102", "U-BUREAU");
  assignment_choose(f->rules, f->dir, p, &r);
  /* Both the first and second rule fit; the first wins. */
  assert_string_equal(r.unit, "G1");
  assert_string_equal(r.rule_id, "r-urgent-violation");
  /* o1 declared a conflict with U-BUREAU, o2 is inactive: o3. */
  assert_string_equal(r.officer, "o3");
  assert_false(r.needs_manual);
  assert_int_equal(json_array_size(r.recused), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(r.recused, 0), "officer")), "o1");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(r.recused, 0), "reason")),
      "conflict");
  assignment_result_release(&r);
  json_decref(p);
}

static void test_region_and_fallback(void **state)
{
  struct fixture *f = *state;
  struct assignment_result r;
  json_t *p = problem("finding", "work_style", "normal", "320102", "U-BUREAU");
  assignment_choose(f->rules, f->dir, p, &r);
  assert_string_equal(r.unit, "G2");
  assert_string_equal(r.rule_id, "r-region");
  assert_string_equal(r.officer, "o4");
  assignment_result_release(&r);
  json_decref(p);

  p = problem("finding", "work_style", "normal", "110101", "U-BUREAU");
  assignment_choose(f->rules, f->dir, p, &r);
  assert_string_equal(r.unit, "G0");
  assert_null(r.rule_id);
  assert_true(r.fallback);
  assert_string_equal(r.officer, "z1");
  assignment_result_release(&r);
  json_decref(p);

  /* No region: a rule with region_prefix does not fit. */
  p = problem("finding", "work_style", "normal", NULL, "U-BUREAU");
  assignment_choose(f->rules, f->dir, p, &r);
  assert_string_equal(r.unit, "G0");
  assignment_result_release(&r);
  json_decref(p);
}

static void test_unit_is_subject_goes_to_fallback(void **state)
{
  struct fixture *f = *state;
  struct assignment_result r;
  /* r-street routes complaints about U-STREET-07 to U-STREET-07 itself: never allowed. */
  json_t *p = problem("complaint", "work_style", "low", "110101", "U-STREET-07");
  assignment_choose(f->rules, f->dir, p, &r);
  assert_string_equal(r.unit, "G0");
  assert_true(r.fallback);
  assert_string_equal(r.officer, "z1");
  assignment_result_release(&r);
  json_decref(p);
}

static void test_everyone_recused_needs_manual(void **state)
{
  struct fixture *f = *state;
  struct assignment_result r;
  /* G2 by region; both its officers declared U-STREET-07 a conflict. */
  json_t *p = problem("clue", "work_style", "low", "320105", "U-STREET-07");
  assignment_choose(f->rules, f->dir, p, &r);
  assert_string_equal(r.unit, "G2");
  assert_null(r.officer);
  assert_true(r.needs_manual);
  /* Each recused officer is listed once, h2 although it has two roles. */
  assert_int_equal(json_array_size(r.recused), 2);
  assignment_result_release(&r);
  json_decref(p);
}

static void test_head_as_last_resort(void **state)
{
  (void)state;
  json_t *rules = json_loads("{\"rules\": [], \"fallback_unit\": \"G1\"}", 0, NULL);
  json_t *dir = json_loads("{\"units\": [], \"officers\": ["
                           " {\"id\": \"a\", \"unit\": \"G1\", \"roles\": [\"handler\"],"
                           "  \"active\": false},"
                           " {\"id\": \"h\", \"unit\": \"G1\", \"roles\": [\"head\"],"
                           "  \"active\": true}]}",
                           0, NULL);
  struct assignment_result r;
  json_t *p = problem("clue", "work_style", "low", NULL, "U-X");
  assignment_choose(rules, dir, p, &r);
  assert_string_equal(r.officer, "h");
  assignment_result_release(&r);
  json_decref(p);
  json_decref(rules);
  json_decref(dir);
}

static void test_conflict_reasons(void **state)
{
  (void)state;
  json_t *o =
      json_loads("{\"id\": \"x\", \"unit\": \"A\", \"conflicts\": [\"B\"]}", 0, NULL);
  assert_string_equal(assignment_conflict(o, "A"), "subject_unit");
  assert_string_equal(assignment_conflict(o, "B"), "conflict");
  assert_null(assignment_conflict(o, "C"));
  json_decref(o);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_match_and_officer),
      cmocka_unit_test(test_region_and_fallback),
      cmocka_unit_test(test_unit_is_subject_goes_to_fallback),
      cmocka_unit_test(test_everyone_recused_needs_manual),
      cmocka_unit_test(test_head_as_last_resort),
      cmocka_unit_test(test_conflict_reasons),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
