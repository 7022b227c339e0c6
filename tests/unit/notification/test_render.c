/* test_render.c - templates and SMS length accounting. */
#include "render.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_render(void **state)
{
  (void)state;
  json_t *vars = json_pack("{s:s, s:s}", "case_id", "DB01", "due_at", "2026-10-12");
  char *out = NULL, *why = NULL;
  assert_int_equal(
      notification_render("【督办】{{case_id}}请于{{due_at}}前办结", vars, &out, &why),
      DUB_OK);
  assert_string_equal(out, "【督办】DB01请于2026-10-12前办结");
  free(out);
  assert_int_equal(notification_render("{{title}}", vars, &out, &why), DUB_ERR_CONFIG);
  assert_null(out);
  assert_non_null(strstr(why, "{{title}}"));
  free(why);
  assert_int_equal(notification_render("x {{case_id", vars, &out, &why), DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "not closed"));
  free(why);
  assert_int_equal(notification_render("", vars, &out, &why), DUB_OK);
  assert_string_equal(out, "");
  free(out);
  json_decref(vars);
}

static void test_sms_parts(void **state)
{
  (void)state;
  assert_int_equal(notification_utf8_chars("【督办】ab"), 6);
  assert_int_equal(notification_sms_parts(70), 1);
  assert_int_equal(notification_sms_parts(71), 2);
  assert_int_equal(notification_sms_parts(134), 2);
  assert_int_equal(notification_sms_parts(135), 3);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_render),
      cmocka_unit_test(test_sms_parts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
