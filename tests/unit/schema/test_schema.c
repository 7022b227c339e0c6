/* test_schema.c - libs/schema beyond the official suite: refusals, error shape, limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "schema/schema.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Compiles 'text'; returns the code and, through 'why', the message (caller frees). */
static enum dub_err compile_text(const char *text, struct dub_schema **schema, char **why)
{
  json_error_t error;
  json_t *doc = json_loads(text, 0, &error);
  if(!doc)
    fail_msg("bad test schema: %s", error.text);
  enum dub_err rc = dub_schema_compile(doc, schema, why);
  json_decref(doc); /* the schema keeps its own reference */
  return rc;
}

static struct dub_schema *must_compile(const char *text)
{
  struct dub_schema *schema = NULL;
  char *why = NULL;
  enum dub_err rc = compile_text(text, &schema, &why);
  if(rc)
    fail_msg("schema refused: %s", why);
  return schema;
}

/* Validates the JSON text 'instance'; gives the error array (caller frees) or NULL. */
static enum dub_err check(const struct dub_schema *schema, const char *instance,
                          json_t **errors)
{
  json_error_t error;
  json_t *inst = json_loads(instance, JSON_DECODE_ANY, &error);
  if(!inst)
    fail_msg("bad test instance: %s", error.text);
  enum dub_err rc = dub_schema_validate(schema, inst, errors);
  json_decref(inst);
  return rc;
}

static void assert_error(const json_t *errors, size_t i, const char *pointer,
                         const char *keyword, const char *message)
{
  const json_t *e = json_array_get(errors, i);
  assert_non_null(e);
  assert_string_equal(json_string_value(json_object_get(e, "pointer")), pointer);
  assert_string_equal(json_string_value(json_object_get(e, "keyword")), keyword);
  assert_string_equal(json_string_value(json_object_get(e, "message")), message);
}

static void expect_refusal(const char *text, enum dub_err want, const char *needle1,
                           const char *needle2)
{
  struct dub_schema *schema = NULL;
  char *why = NULL;
  enum dub_err rc = compile_text(text, &schema, &why);
  if(rc != want || !why || !strstr(why, needle1) || (needle2 && !strstr(why, needle2)))
    fail_msg("%s: got %d \"%s\"", text, (int)rc, why ? why : "(null)");
  assert_null(schema);
  free(why);
}

static void test_unsupported_keyword(void **state)
{
  (void)state;
  expect_refusal("{\"properties\": {\"a\": {\"type\": \"string\", \"$defs\": {}}}}",
                 DUB_ERR_UNSUPPORTED, "\"$defs\"", "/properties/a/$defs");
  expect_refusal("{\"type\": \"object\", \"requird\": [\"a\"]}", DUB_ERR_UNSUPPORTED,
                 "\"requird\"", "at /requird");
  expect_refusal("{\"items\": [{}, {\"unevaluatedItems\": false}]}", DUB_ERR_UNSUPPORTED,
                 "\"unevaluatedItems\"", "/items/1/unevaluatedItems");
  /* Beside $ref other keywords are ignored, but an unknown one is still refused. */
  expect_refusal(
      "{\"definitions\": {\"a\": {}}, \"$ref\": \"#/definitions/a\", \"x\": 1}",
      DUB_ERR_UNSUPPORTED, "\"x\"", NULL);
  expect_refusal("{\"$ref\": \"https://example.com/other.json\"}", DUB_ERR_UNSUPPORTED,
                 "https://example.com/other.json", "another document");
  /* A member that a $ref points into holds schemas: it is accepted. */
  struct dub_schema *schema =
      must_compile("{\"$defs\": {\"n\": {\"type\": \"integer\"}}, "
                   "\"properties\": {\"a\": {\"$ref\": \"#/$defs/n\"}}}");
  assert_int_equal(check(schema, "{\"a\": 1}", NULL), DUB_OK);
  assert_int_equal(check(schema, "{\"a\": \"x\"}", NULL), DUB_ERR_SCHEMA);
  dub_schema_free(schema);
}

static void test_invalid_schema(void **state)
{
  (void)state;
  expect_refusal("{\"minLength\": -1}", DUB_ERR_CONFIG, "/minLength", NULL);
  expect_refusal("{\"pattern\": \"(\"}", DUB_ERR_CONFIG, "does not compile", NULL);
  expect_refusal("{\"patternProperties\": {\"[\": {}}}", DUB_ERR_CONFIG,
                 "does not compile", NULL);
  expect_refusal("{\"type\": \"strin\"}", DUB_ERR_CONFIG, "/type", NULL);
  expect_refusal("{\"required\": [1]}", DUB_ERR_CONFIG, "/required", NULL);
  expect_refusal("{\"multipleOf\": 0}", DUB_ERR_CONFIG, "/multipleOf", NULL);
  expect_refusal("{\"anyOf\": []}", DUB_ERR_CONFIG, "/anyOf", NULL);
  expect_refusal("{\"properties\": {\"a\": 5}}", DUB_ERR_CONFIG, "/properties/a", NULL);
  expect_refusal("{\"$ref\": \"#/definitions/missing\"}", DUB_ERR_CONFIG,
                 "does not resolve", NULL);
  /* Loops that never descend into the instance would never end. */
  expect_refusal("{\"$ref\": \"#\"}", DUB_ERR_CONFIG, "refers back to itself", NULL);
  expect_refusal("{\"definitions\": {\"a\": {\"$ref\": \"#/definitions/b\"}, "
                 "\"b\": {\"allOf\": [{\"$ref\": \"#/definitions/a\"}]}}, "
                 "\"not\": {\"$ref\": \"#/definitions/a\"}}",
                 DUB_ERR_CONFIG, "refers back to itself", NULL);
  /* Recursion through a child is fine. */
  struct dub_schema *schema = must_compile(
      "{\"properties\": {\"next\": {\"$ref\": \"#\"}}, \"required\": [\"v\"]}");
  assert_int_equal(
      check(schema, "{\"v\": 1, \"next\": {\"v\": 2, \"next\": {\"v\": 3}}}", NULL),
      DUB_OK);
  assert_int_equal(check(schema, "{\"v\": 1, \"next\": {\"next\": {\"v\": 3}}}", NULL),
                   DUB_ERR_SCHEMA);
  dub_schema_free(schema);
  assert_int_equal(dub_schema_compile(NULL, &schema, NULL), DUB_ERR_INVALID);
}

static const char EVENT_SCHEMA[] =
    "{\"type\": \"object\", \"required\": [\"id\", \"data\"],"
    " \"properties\": {\"id\": {\"type\": \"string\"},"
    "  \"data\": {\"type\": \"object\", \"additionalProperties\": false,"
    "   \"required\": [\"severity\", \"subject\"],"
    "   \"properties\": {"
    "    \"severity\": {\"enum\": [\"low\", \"normal\", \"high\", \"urgent\"]},"
    "    \"description\": {\"type\": \"string\", \"maxLength\": 20000},"
    "    \"occurred_at\": {\"type\": \"string\", \"format\": \"date-time\"},"
    "    \"count\": {\"type\": \"integer\", \"minimum\": 1},"
    "    \"subject\": {\"type\": \"object\", \"required\": [\"unit_id\"],"
    "     \"properties\": {\"unit_id\": {\"type\": \"string\", \"pattern\": "
    "\"^U-\"}}}}}}}";

static void test_error_pointer_and_message(void **state)
{
  (void)state;
  struct dub_schema *schema = must_compile(EVENT_SCHEMA);
  json_t *errors = NULL;
  assert_int_equal(check(schema,
                         "{\"id\": \"1\", \"data\": {\"severity\": \"low\", "
                         "\"subject\": {\"unit_id\": \"U-7\"}}}",
                         &errors),
                   DUB_OK);
  assert_null(errors);
  assert_int_equal(check(schema,
                         "{\"id\": \"1\", \"data\": {\"severity\": \"low\", "
                         "\"subject\": {}}}",
                         &errors),
                   DUB_ERR_SCHEMA);
  assert_int_equal(json_array_size(errors), 1);
  assert_error(errors, 0, "/data/subject/unit_id", "required", "is required");
  json_decref(errors);
  /* Keys with '/' and '~' are escaped in pointers. */
  assert_int_equal(check(schema,
                         "{\"id\": \"1\", \"data\": {\"severity\": \"low\", "
                         "\"subject\": {\"unit_id\": \"U-1\"}, \"a/b~c\": 1}}",
                         &errors),
                   DUB_ERR_SCHEMA);
  assert_int_equal(json_array_size(errors), 1);
  assert_error(errors, 0, "/data/a~1b~0c", "additionalProperties", "is not allowed");
  json_decref(errors);
  assert_int_equal(check(schema, "[]", &errors), DUB_ERR_SCHEMA);
  assert_error(errors, 0, "", "type", "must be of type object");
  json_decref(errors);
  dub_schema_free(schema);

  schema = must_compile("{\"type\": [\"string\", \"null\"]}");
  assert_int_equal(check(schema, "1", &errors), DUB_ERR_SCHEMA);
  assert_error(errors, 0, "", "type", "must be of type null or string");
  json_decref(errors);
  dub_schema_free(schema);
}

static void test_collects_all_violations(void **state)
{
  (void)state;
  struct dub_schema *schema = must_compile(EVENT_SCHEMA);
  json_t *errors = NULL;
  assert_int_equal(check(schema,
                         "{\"data\": {\"severity\": \"grave\", \"count\": 0.5,"
                         " \"occurred_at\": \"2026-11-20 09:00\","
                         " \"subject\": {\"unit_id\": \"X-1\"}}}",
                         &errors),
                   DUB_ERR_SCHEMA);
  assert_int_equal(json_array_size(errors), 6);
  assert_error(errors, 0, "/id", "required", "is required");
  assert_error(errors, 1, "/data/severity", "enum",
               "must be one of \"low\", \"normal\", \"high\", \"urgent\"");
  assert_error(errors, 2, "/data/count", "type", "must be of type integer");
  assert_error(errors, 3, "/data/count", "minimum", "must be at least 1");
  assert_error(errors, 4, "/data/occurred_at", "format", "must be a valid date-time");
  assert_error(errors, 5, "/data/subject/unit_id", "pattern",
               "must match the pattern \"^U-\"");
  json_decref(errors);
  /* Without an error list the verdict is the same. */
  assert_int_equal(check(schema, "{\"data\": {}}", NULL), DUB_ERR_SCHEMA);
  dub_schema_free(schema);
}

static void test_length_in_code_points(void **state)
{
  (void)state;
  struct dub_schema *schema = must_compile("{\"minLength\": 2, \"maxLength\": 5}");
  json_t *errors = NULL;
  /* Five characters, fifteen bytes. */
  assert_int_equal(check(schema, "\"某街道便民\"", NULL), DUB_OK);
  assert_int_equal(check(schema, "\"某街道便民服\"", &errors), DUB_ERR_SCHEMA);
  assert_error(errors, 0, "", "maxLength", "must be at most 5 characters");
  json_decref(errors);
  assert_int_equal(check(schema, "\"窗\"", &errors), DUB_ERR_SCHEMA);
  assert_error(errors, 0, "", "minLength", "must be at least 2 characters");
  json_decref(errors);
  /* A character outside the BMP is one code point (two UTF-16 units in ECMAScript). */
  assert_int_equal(check(schema, "\"\\ud83d\\ude00\\ud83d\\ude00\"", NULL), DUB_OK);
  dub_schema_free(schema);

  schema = must_compile("{\"pattern\": \"街道\"}");
  assert_int_equal(check(schema, "\"某街道便民服务窗口\"", NULL), DUB_OK);
  assert_int_equal(check(schema, "\"某社区\"", NULL), DUB_ERR_SCHEMA);
  dub_schema_free(schema);
  schema = must_compile("{\"pattern\": \"^.{3}$\"}");
  assert_int_equal(check(schema, "\"某街道\"", NULL), DUB_OK);
  assert_int_equal(check(schema, "\"abc\\n\"", NULL), DUB_ERR_SCHEMA); /* ECMA $ */
  dub_schema_free(schema);
}

static void test_ecma_regex(void **state)
{
  (void)state;
  /* \S must not accept a title of ideographic spaces (U+3000), as in ECMA-262. */
  struct dub_schema *schema = must_compile("{\"pattern\": \"\\\\S\"}");
  assert_int_equal(check(schema, "\"\u3000\u3000\"", NULL), DUB_ERR_SCHEMA);
  assert_int_equal(check(schema, "\" \\t\\u00a0\\ufeff\"", NULL), DUB_ERR_SCHEMA);
  assert_int_equal(check(schema, "\"\u3000\u8857\"", NULL), DUB_OK);
  dub_schema_free(schema);
  schema = must_compile("{\"pattern\": \"^[\\\\s,]+$\"}");
  assert_int_equal(check(schema, "\", \u3000,\\n\"", NULL), DUB_OK);
  assert_int_equal(check(schema, "\",a\"", NULL), DUB_ERR_SCHEMA);
  dub_schema_free(schema);
  /* \d and \w stay ASCII (U+FF11 is a full-width digit); \u escapes work. */
  schema = must_compile("{\"pattern\": \"^\\\\d\\\\w\\\\u8857$\"}");
  assert_int_equal(check(schema, "\"1a\u8857\"", NULL), DUB_OK);
  assert_int_equal(check(schema, "\"\uff11a\u8857\"", NULL), DUB_ERR_SCHEMA);
  dub_schema_free(schema);
}

static void test_error_cap(void **state)
{
  (void)state;
  struct dub_schema *schema = must_compile("{\"items\": {\"type\": \"string\"}}");
  json_t *inst = json_array(), *errors = NULL;
  for(int i = 0; i < 250; i++)
    json_array_append_new(inst, json_integer(i));
  assert_int_equal(dub_schema_validate(schema, inst, &errors), DUB_ERR_SCHEMA);
  assert_int_equal(json_array_size(errors), DUB_SCHEMA_MAX_ERRORS);
  assert_error(errors, 0, "/0", "type", "must be of type string");
  assert_error(errors, 99, "/99", "type", "must be of type string");
  json_decref(errors);
  json_decref(inst);
  dub_schema_free(schema);
}

/* An array nested 'depth' deep, built without the parser's depth limit. */
static json_t *deep_array(int depth)
{
  json_t *inst = json_array();
  for(int i = 1; i < depth; i++) {
    json_t *outer = json_array();
    json_array_append_new(outer, inst);
    inst = outer;
  }
  return inst;
}

static void test_deep_instance(void **state)
{
  (void)state;
  json_t *errors = NULL;
  json_t *inst = deep_array(10000);
  struct dub_schema *schema =
      must_compile("{\"type\": \"array\", \"items\": {\"$ref\": \"#\"}}");
  assert_int_equal(dub_schema_validate(schema, inst, &errors), DUB_ERR_SCHEMA);
  assert_int_equal(json_array_size(errors), 1);
  const char *pointer =
      json_string_value(json_object_get(json_array_get(errors, 0), "pointer"));
  assert_int_equal(strlen(pointer), 2 * (DUB_SCHEMA_MAX_DEPTH + 1)); /* "/0" per level */
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(errors, 0), "keyword")), "depth");
  json_decref(errors);
  assert_int_equal(dub_schema_validate(schema, inst, NULL), DUB_ERR_SCHEMA);
  /* Inside anyOf and not, too. */
  dub_schema_free(schema);
  schema =
      must_compile("{\"anyOf\": [{\"items\": {\"$ref\": \"#\"}}], \"not\": {\"items\": "
                   "{\"$ref\": \"#/not\"}}}");
  assert_int_equal(dub_schema_validate(schema, inst, NULL), DUB_ERR_SCHEMA);
  dub_schema_free(schema);
  /* Equality of deep values (uniqueItems, const) neither crashes nor guesses. */
  schema = must_compile("{\"uniqueItems\": true}");
  json_t *pair = json_array();
  json_array_append_new(pair, deep_array(10000));
  json_array_append_new(pair, deep_array(10000));
  assert_int_equal(dub_schema_validate(schema, pair, &errors), DUB_ERR_SCHEMA);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(errors, 0), "keyword")), "depth");
  json_decref(errors);
  json_decref(pair);
  dub_schema_free(schema);
  schema = must_compile("{\"const\": [[[]]]}");
  assert_int_equal(dub_schema_validate(schema, inst, NULL), DUB_ERR_SCHEMA);
  dub_schema_free(schema);
  /* A schema that does not descend accepts it. */
  schema = must_compile("{\"type\": \"array\"}");
  assert_int_equal(dub_schema_validate(schema, inst, NULL), DUB_OK);
  dub_schema_free(schema);
  /* Just under the limit passes. */
  schema = must_compile("{\"items\": {\"$ref\": \"#\"}}");
  json_t *shallow = deep_array(DUB_SCHEMA_MAX_DEPTH + 1);
  assert_int_equal(dub_schema_validate(schema, shallow, NULL), DUB_OK);
  json_decref(shallow);
  dub_schema_free(schema);
  json_decref(inst);
}

static void test_deep_schema(void **state)
{
  (void)state;
  struct dub_schema *schema = NULL;
  char *why = NULL;
  json_t *doc = json_object();
  for(int i = 0; i < 10000; i++)
    doc = json_pack("{s:o}", "not", doc);
  assert_int_equal(dub_schema_compile(doc, &schema, &why), DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "nests deeper"));
  assert_null(schema);
  free(why);
  json_decref(doc);
  /* A long chain of $ref that stays on one instance value is refused as well. */
  doc = json_pack("{s:s, s:{}}", "$ref", "#/definitions/d0", "definitions");
  json_t *defs = json_object_get(doc, "definitions");
  for(int i = 0; i < 1000; i++) {
    char name[16], ref[32];
    snprintf(name, sizeof name, "d%d", i);
    snprintf(ref, sizeof ref, "#/definitions/d%d", i + 1);
    json_object_set_new(defs, name,
                        i == 999 ? json_true() : json_pack("{s:s}", "$ref", ref));
  }
  assert_int_equal(dub_schema_compile(doc, &schema, &why), DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "chains more than"));
  free(why);
  json_decref(doc);
}

static void test_numbers_and_equality(void **state)
{
  (void)state;
  struct dub_schema *schema = must_compile("{\"type\": \"integer\", \"multipleOf\": 2}");
  assert_int_equal(check(schema, "4.0", NULL), DUB_OK);
  assert_int_equal(check(schema, "4.5", NULL), DUB_ERR_SCHEMA);
  assert_int_equal(check(schema, "9223372036854775806", NULL), DUB_OK);
  dub_schema_free(schema);
  schema = must_compile("{\"const\": {\"a\": [1, 2.0]}}");
  assert_int_equal(check(schema, "{\"a\": [1.0, 2]}", NULL), DUB_OK);
  assert_int_equal(check(schema, "{\"a\": [1, 2], \"b\": 1}", NULL), DUB_ERR_SCHEMA);
  dub_schema_free(schema);
  schema = must_compile("{\"exclusiveMaximum\": 0.1, \"minimum\": -9007199254740993}");
  json_t *errors = NULL;
  assert_int_equal(check(schema, "0.1", &errors), DUB_ERR_SCHEMA);
  assert_error(errors, 0, "", "exclusiveMaximum", "must be less than 0.1");
  json_decref(errors);
  /* Integers compare exactly, also beyond 2^53. */
  assert_int_equal(check(schema, "-9007199254740994", NULL), DUB_ERR_SCHEMA);
  assert_int_equal(check(schema, "-9007199254740993", NULL), DUB_OK);
  dub_schema_free(schema);
}

static void test_formats(void **state)
{
  (void)state;
  struct dub_schema *schema = must_compile(
      "{\"properties\": {\"t\": {\"format\": \"date-time\"}, \"d\": {\"format\": "
      "\"date\"}, \"e\": {\"format\": \"email\"}, \"u\": {\"format\": \"uri\"},"
      " \"h\": {\"format\": \"hostname\"}}}");
  assert_int_equal(check(schema,
                         "{\"t\": \"2026-11-20T09:00:00+08:00\", \"d\": \"2026-02-28\","
                         " \"e\": \"a.b@example.cn\", \"u\": \"https://x.cn/a?b#c\","
                         " \"h\": \"not checked!\"}",
                         NULL),
                   DUB_OK);
  assert_int_equal(check(schema, "{\"t\": \"2026-02-30T09:00:00Z\"}", NULL),
                   DUB_ERR_SCHEMA);
  assert_int_equal(check(schema, "{\"d\": \"2026-02-29\"}", NULL), DUB_ERR_SCHEMA);
  assert_int_equal(check(schema, "{\"e\": \"a b@example.cn\"}", NULL), DUB_ERR_SCHEMA);
  assert_int_equal(check(schema, "{\"u\": \"/relative\"}", NULL), DUB_ERR_SCHEMA);
  assert_int_equal(check(schema, "{\"t\": 5}", NULL),
                   DUB_OK); /* formats apply to strings */
  dub_schema_free(schema);
}

static void test_load_file(void **state)
{
  (void)state;
  struct dub_schema *schema = NULL;
  char *why = NULL;
  char path[] = "/tmp/duban-schema-test-XXXXXX";
  assert_int_equal(dub_schema_load_file("/nonexistent/x.json", &schema, &why),
                   DUB_ERR_IO);
  assert_non_null(strstr(why, "/nonexistent/x.json"));
  free(why);
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs("{\"type\": \"string\", \"maxlength\": 3}", f);
  fclose(f);
  assert_int_equal(dub_schema_load_file(path, &schema, &why), DUB_ERR_UNSUPPORTED);
  assert_true(!strncmp(why, path, strlen(path)));
  assert_non_null(strstr(why, "\"maxlength\""));
  free(why);
  f = fopen(path, "w");
  fputs("{\"type\": \"string\", \"type\": \"number\"}", f);
  fclose(f);
  assert_int_equal(dub_schema_load_file(path, &schema, &why), DUB_ERR_MALFORMED);
  free(why);
  f = fopen(path, "w");
  fputs("{\"type\": \"string\", \"maxLength\": 3}", f);
  fclose(f);
  assert_int_equal(dub_schema_load_file(path, &schema, &why), DUB_OK);
  assert_null(why);
  assert_int_equal(check(schema, "\"abc\"", NULL), DUB_OK);
  dub_schema_free(schema);
  unlink(path);
  dub_schema_free(NULL);
}

/* Every schema the project ships compiles (tests run from the source root). */
static void compile_dir(const char *dir, int *count)
{
  DIR *d = opendir(dir);
  struct dirent *entry;
  if(!d)
    return;
  while((entry = readdir(d))) {
    char path[1024];
    struct dub_schema *schema = NULL;
    char *why = NULL;
    if(entry->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
    size_t len = strlen(path);
    if(len > 5 && !strcmp(path + len - 5, ".json")) {
      if(dub_schema_load_file(path, &schema, &why))
        fail_msg("%s", why);
      dub_schema_free(schema);
      (*count)++;
    } else if(!strchr(entry->d_name, '.')) {
      compile_dir(path, count);
    }
  }
  closedir(d);
}

static void test_project_schemas(void **state)
{
  (void)state;
  int count = 0;
  compile_dir("schemas", &count);
  if(!count)
    skip();
}

struct thread_arg {
  const struct dub_schema *schema;
  int failures;
};

static void *validate_many(void *p)
{
  struct thread_arg *arg = p;
  json_t *good = json_pack("{s:s, s:{s:s, s:{s:s}}}", "id", "1", "data", "severity",
                           "high", "subject", "unit_id", "U-1");
  json_t *bad =
      json_pack("{s:{s:s, s:{s:s}}}", "data", "severity", "x", "subject", "unit_id", "X");
  for(int i = 0; i < 2000; i++) {
    json_t *errors = NULL;
    if(dub_schema_validate(arg->schema, good, NULL) != DUB_OK)
      arg->failures++;
    if(dub_schema_validate(arg->schema, bad, &errors) != DUB_ERR_SCHEMA ||
       json_array_size(errors) != 3)
      arg->failures++;
    json_decref(errors);
  }
  json_decref(good);
  json_decref(bad);
  return NULL;
}

static void test_threads(void **state)
{
  (void)state;
  struct dub_schema *schema = must_compile(EVENT_SCHEMA);
  pthread_t threads[4];
  struct thread_arg args[4];
  for(int i = 0; i < 4; i++) {
    args[i].schema = schema;
    args[i].failures = 0;
    assert_int_equal(pthread_create(&threads[i], NULL, validate_many, &args[i]), 0);
  }
  for(int i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
    assert_int_equal(args[i].failures, 0);
  }
  dub_schema_free(schema);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unsupported_keyword),
      cmocka_unit_test(test_invalid_schema),
      cmocka_unit_test(test_error_pointer_and_message),
      cmocka_unit_test(test_collects_all_violations),
      cmocka_unit_test(test_length_in_code_points),
      cmocka_unit_test(test_ecma_regex),
      cmocka_unit_test(test_error_cap),
      cmocka_unit_test(test_deep_instance),
      cmocka_unit_test(test_deep_schema),
      cmocka_unit_test(test_numbers_and_equality),
      cmocka_unit_test(test_formats),
      cmocka_unit_test(test_load_file),
      cmocka_unit_test(test_project_schemas),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
