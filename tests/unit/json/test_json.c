/* test_json.c - strict parsing, pointers and getters. */
#include "json/json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void expect_malformed(const char *text, size_t len, const char *needle)
{
  json_t *v = NULL;
  char *why = NULL;
  assert_int_equal(dub_json_parse(text, len, &v, &why), DUB_ERR_MALFORMED);
  assert_null(v);
  assert_non_null(why);
  if(needle && !strstr(why, needle))
    fail_msg("'%s' does not mention '%s'", why, needle);
  free(why);
}

static void test_parse_strict(void **state)
{
  (void)state;
  json_t *v = NULL;
  char *why = NULL;
  const char ok[] = "{\"a\": [1, 2.5, \"中文\"], \"b\": {\"c\": null}}";
  assert_int_equal(dub_json_parse(ok, strlen(ok), &v, &why), DUB_OK);
  assert_null(why);
  json_decref(v);
  expect_malformed("{\"a\":1,\"a\":2}", 13, "duplicate");
  expect_malformed("{\"a\":", 5, NULL);
  expect_malformed("\"\xff\xfe\"", 4, "UTF-8");
  expect_malformed("\"a\\u0000b\"", 10, NULL);
  expect_malformed("{} {}", 5, NULL);
  expect_malformed("", 0, NULL);
  /* Deep nesting is refused, not a stack overflow. */
  size_t depth = 10000;
  char *deep = malloc(depth * 2);
  memset(deep, '[', depth);
  memset(deep + depth, ']', depth);
  expect_malformed(deep, depth * 2, "depth");
  free(deep);
  /* Scalars at top level are values too. */
  assert_int_equal(dub_json_parse("42", 2, &v, &why), DUB_OK);
  assert_true(json_is_integer(v));
  json_decref(v);
}

static void test_getters_and_pointer(void **state)
{
  (void)state;
  json_t *v = NULL;
  char *why = NULL;
  const char text[] = "{\"s\":\"x\",\"i\":7,\"f\":1.5,\"t\":true,\"arr\":[\"p\",\"q\"],"
                      "\"a/b\":{\"m~n\":[10,20]}}";
  assert_int_equal(dub_json_parse(text, strlen(text), &v, &why), DUB_OK);
  assert_string_equal(dub_json_str(v, "s"), "x");
  assert_null(dub_json_str(v, "i"));
  long long n = 0;
  assert_true(dub_json_int(v, "i", &n));
  assert_int_equal(n, 7);
  assert_false(dub_json_int(v, "f", &n));
  assert_true(dub_json_bool(v, "t", false));
  assert_false(dub_json_bool(v, "missing", false));
  assert_true(dub_json_array_has_str(json_object_get(v, "arr"), "q"));
  assert_false(dub_json_array_has_str(json_object_get(v, "arr"), "z"));
  assert_ptr_equal(dub_json_pointer(v, ""), v);
  assert_int_equal(json_integer_value(dub_json_pointer(v, "/a~1b/m~0n/1")), 20);
  assert_null(dub_json_pointer(v, "/a~1b/m~0n/2"));
  assert_null(dub_json_pointer(v, "/a~1b/m~0n/01"));
  assert_null(dub_json_pointer(v, "s"));
  char *dumped = dub_json_dump(json_object_get(v, "arr"));
  assert_string_equal(dumped, "[\"p\",\"q\"]");
  free(dumped);
  json_decref(v);
}

static void test_load_file(void **state)
{
  (void)state;
  json_t *v = NULL;
  char *why = NULL;
  assert_int_equal(dub_json_load_file("/nonexistent/x.json", &v, &why), DUB_ERR_IO);
  assert_non_null(strstr(why, "/nonexistent/x.json"));
  free(why);
  char path[] = "/tmp/dub-json-XXXXXX";
  int fd = mkstemp(path);
  FILE *fp = fdopen(fd, "w");
  fputs("{\"x\": 1,\n \"x\": 2}", fp);
  fclose(fp);
  assert_int_equal(dub_json_load_file(path, &v, &why), DUB_ERR_MALFORMED);
  assert_non_null(strstr(why, path));
  assert_non_null(strstr(why, "line 2"));
  free(why);
  unlink(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_strict),
      cmocka_unit_test(test_getters_and_pointer),
      cmocka_unit_test(test_load_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
