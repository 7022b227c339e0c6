/* test_caseid.c - case ids: shape, time order, uniqueness. */
#include "caseid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int cmp(const void *a, const void *b)
{
  return strcmp(a, b);
}

static void test_shape_order_unique(void **state)
{
  (void)state;
  enum { N = 20000 };
  char(*ids)[INTAKE_CASEID_LEN + 1] = calloc(N, sizeof *ids);
  int64_t base = 1790000000000; /* 2026 */
  for(int i = 0; i < N; i++) {
    /* Ten ids per millisecond. */
    assert_int_equal(intake_caseid_new(base + i / 10, ids[i]), DUB_OK);
    assert_true(intake_caseid_valid(ids[i]));
    assert_int_equal(strlen(ids[i]), INTAKE_CASEID_LEN);
    if(i >= 10)
      assert_true(strcmp(ids[i - 10], ids[i]) < 0); /* a later millisecond sorts after */
  }
  qsort(ids, N, sizeof *ids, cmp);
  for(int i = 1; i < N; i++)
    assert_string_not_equal(ids[i - 1], ids[i]);
  free(ids);
}

static void test_valid(void **state)
{
  (void)state;
  assert_false(intake_caseid_valid(NULL));
  assert_false(intake_caseid_valid(""));
  assert_false(intake_caseid_valid("DB01JD0000000000000000000000X"));
  assert_false(intake_caseid_valid("XX01JD000000000000000000000"));
  assert_false(
      intake_caseid_valid("DB01JD00000000000000000000I")); /* I is not Crockford */
  assert_false(intake_caseid_valid("DB81JD0000000000000000000000")); /* time overflow */
  assert_true(intake_caseid_valid("DB01JD0000000000000000000000"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shape_order_unique),
      cmocka_unit_test(test_valid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
