/* test_suite.c - runs the official JSON-Schema-Test-Suite (draft 7) against libs/schema.
 *
 * Every file of a keyword the validator supports is run, and every case's "valid" flag
 * must match. The suite is the Debian package json-schema-test-suite; set
 * DUBAN_SCHEMA_TEST_SUITE to another tests/draft7 directory to use a different copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "schema/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SUITE "/usr/share/json-schema-test-suite/tests/draft7"

/* A test group not run, and why. With 'unsupported' the group's schema must instead be
 * refused with DUB_ERR_UNSUPPORTED, as the API promises for remote references. */
struct skip {
  const char *group;
  const char *why;
  bool unsupported;
};

struct suite_file {
  const char *name;
  size_t decode_flags;
  struct skip skips[4];
  const char *skip_all; /* every group is skipped for this reason, as 'unsupported' */
};

struct totals {
  int run, passed, skipped;
};

struct file_test {
  const struct suite_file *file;
  struct totals *totals;
};

static const char REMOTE[] = "needs a remote document (or the draft-07 metaschema); only "
                             "references within the schema are supported";

/* The files run, in the suite's order. Files and groups not run, and why:
 *  - refRemote.json is listed but not run: every group needs documents from
 *    http://localhost:1234/ and the validator resolves $ref only within the schema, so
 *    each of its schemas must be refused with DUB_ERR_UNSUPPORTED instead.
 *  - optional/content.json: contentMediaType and contentEncoding are annotations here.
 *  - optional/ecmascript-regex.json: format "regex" is an annotation here (not checked).
 *  - optional/format/ other than date-time, date, email and uri: those formats are
 *    annotations here (the spec allows it), so their "invalid" cases would pass. */
static const struct suite_file files[] = {
    {"additionalItems.json", 0, {{0}}, NULL},
    {"additionalProperties.json", 0, {{0}}, NULL},
    {"allOf.json", 0, {{0}}, NULL},
    {"anyOf.json", 0, {{0}}, NULL},
    {"boolean_schema.json", 0, {{0}}, NULL},
    {"const.json", 0, {{0}}, NULL},
    {"contains.json", 0, {{0}}, NULL},
    {"default.json", 0, {{0}}, NULL},
    {"definitions.json",
     0,
     {{"valid definition", REMOTE, true}, {"invalid definition", REMOTE, true}},
     NULL},
    {"dependencies.json", 0, {{0}}, NULL},
    {"enum.json", 0, {{0}}, NULL},
    {"exclusiveMaximum.json", 0, {{0}}, NULL},
    {"exclusiveMinimum.json", 0, {{0}}, NULL},
    {"if-then-else.json", 0, {{0}}, NULL},
    {"items.json", 0, {{0}}, NULL},
    {"maxItems.json", 0, {{0}}, NULL},
    {"maxLength.json", 0, {{0}}, NULL},
    {"maxProperties.json", 0, {{0}}, NULL},
    {"maximum.json", 0, {{0}}, NULL},
    {"minItems.json", 0, {{0}}, NULL},
    {"minLength.json", 0, {{0}}, NULL},
    {"minProperties.json", 0, {{0}}, NULL},
    {"minimum.json", 0, {{0}}, NULL},
    {"multipleOf.json", 0, {{0}}, NULL},
    {"not.json", 0, {{0}}, NULL},
    {"oneOf.json", 0, {{0}}, NULL},
    {"pattern.json", 0, {{0}}, NULL},
    {"patternProperties.json", 0, {{0}}, NULL},
    {"properties.json", 0, {{0}}, NULL},
    {"propertyNames.json", 0, {{0}}, NULL},
    {"ref.json", 0, {{"remote ref, containing refs itself", REMOTE, true}}, NULL},
    {"refRemote.json", 0, {{0}}, REMOTE},
    {"required.json", 0, {{0}}, NULL},
    {"type.json", 0, {{0}}, NULL},
    {"uniqueItems.json", 0, {{0}}, NULL},
    /* Jansson refuses integers beyond 64 bits unless they are decoded as reals. */
    {"optional/bignum.json", JSON_DECODE_INT_AS_REAL, {{0}}, NULL},
    {"optional/zeroTerminatedFloats.json", 0, {{0}}, NULL},
    {"optional/format/date-time.json", 0, {{0}}, NULL},
    {"optional/format/date.json", 0, {{0}}, NULL},
    {"optional/format/email.json", 0, {{0}}, NULL},
    {"optional/format/uri.json", 0, {{0}}, NULL},
};

static const struct skip *find_skip(const struct suite_file *file, const char *group)
{
  static const struct skip all = {NULL, NULL, true};
  if(file->skip_all)
    return &all;
  for(size_t i = 0; i < sizeof file->skips / sizeof file->skips[0]; i++)
    if(file->skips[i].group && !strcmp(file->skips[i].group, group))
      return &file->skips[i];
  return NULL;
}

/* Runs one case; true when the verdict matches and the error list agrees with it. */
static bool run_case(const struct dub_schema *schema, const json_t *test)
{
  json_t *errors = NULL;
  const json_t *data = json_object_get(test, "data");
  bool want = json_is_true(json_object_get(test, "valid"));
  enum dub_err quick = dub_schema_validate(schema, data, NULL);
  enum dub_err full = dub_schema_validate(schema, data, &errors);
  bool ok = quick == full && (want ? quick == DUB_OK : quick == DUB_ERR_SCHEMA) &&
            (want ? errors == NULL : json_array_size(errors) > 0);
  json_decref(errors);
  return ok;
}

static void test_file(void **state)
{
  const struct file_test *ft = *state;
  const char *dir = getenv("DUBAN_SCHEMA_TEST_SUITE");
  char path[1024];
  json_error_t error;
  int failed = 0;
  snprintf(path, sizeof path, "%s/%s", dir ? dir : DEFAULT_SUITE, ft->file->name);
  json_t *groups = json_load_file(path, ft->file->decode_flags, &error);
  if(!groups)
    fail_msg("%s: %s", path, error.text);
  for(size_t g = 0; g < json_array_size(groups); g++) {
    json_t *group = json_array_get(groups, g);
    const char *name = json_string_value(json_object_get(group, "description"));
    json_t *tests = json_object_get(group, "tests");
    struct dub_schema *schema = NULL;
    char *why = NULL;
    enum dub_err rc = dub_schema_compile(json_object_get(group, "schema"), &schema, &why);
    const struct skip *skip = find_skip(ft->file, name);
    if(skip) {
      ft->totals->skipped += (int)json_array_size(tests);
      if(skip->unsupported && rc != DUB_ERR_UNSUPPORTED) {
        printf("FAIL %s / %s: expected DUB_ERR_UNSUPPORTED, got %d\n", ft->file->name,
               name, (int)rc);
        failed++;
      }
    } else if(rc) {
      printf("FAIL %s / %s: schema refused: %s\n", ft->file->name, name, why);
      ft->totals->run += (int)json_array_size(tests);
      failed += (int)json_array_size(tests);
    } else {
      for(size_t t = 0; t < json_array_size(tests); t++) {
        json_t *test = json_array_get(tests, t);
        ft->totals->run++;
        if(run_case(schema, test)) {
          ft->totals->passed++;
          continue;
        }
        failed++;
        printf("FAIL %s / %s / %s\n", ft->file->name, name,
               json_string_value(json_object_get(test, "description")));
      }
    }
    free(why);
    dub_schema_free(schema);
  }
  json_decref(groups);
  assert_int_equal(failed, 0);
}

int main(void)
{
  enum { N = sizeof files / sizeof files[0] };
  struct totals totals = {0, 0, 0};
  struct file_test states[N];
  struct CMUnitTest tests[N];
  for(size_t i = 0; i < N; i++) {
    states[i].file = &files[i];
    states[i].totals = &totals;
    tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(test_file, &states[i]);
    tests[i].name = files[i].name;
  }
  int rc = _cmocka_run_group_tests("json_schema_test_suite_draft7", tests, N, NULL, NULL);
  printf("json-schema-test-suite draft7: %d cases run, %d passed, %d skipped\n",
         totals.run, totals.passed, totals.skipped);
  return rc;
}
