/* test_config.c - the shipped configuration loads; bad files are refused with the file,
 * the JSON pointer and the problem; a reload keeps the running snapshot when invalid. */
#include "config/config.h"

#include "calendar/calendar.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define ALL                                                                              \
  (DUB_CONFIG_DIRECTORY | DUB_CONFIG_RULES | DUB_CONFIG_SLA | DUB_CONFIG_CALENDAR |      \
   DUB_CONFIG_TEMPLATES)

static void test_shipped_config_loads(void **state)
{
  (void)state;
  struct dub_config *c = NULL;
  char *why = NULL;
  enum dub_err rc = dub_config_load("deploy/config", "schemas", ALL, &c, &why);
  if(rc)
    fail_msg("%s", why);
  assert_non_null(c->directory);
  assert_non_null(c->rules);
  assert_non_null(c->sla);
  assert_non_null(c->clients);
  assert_true(dub_calendar_has_year(c->calendar, 2025));
  assert_true(dub_calendar_has_year(c->calendar, 2026));
  assert_int_equal(c->calendar_years, 2);
  assert_non_null(json_object_get(c->templates, "duban.case.assigned.sms"));
  /* References keep a snapshot alive. */
  struct dub_config *again = dub_config_ref(c);
  dub_config_unref(c);
  assert_non_null(again->rules);
  dub_config_unref(again);
}

/* A scratch copy of deploy/config in which a test may break one file. */
static char *scratch_copy(void)
{
  char tmpl[] = "/tmp/dub-config-XXXXXX";
  char *dir = strdup(mkdtemp(tmpl));
  char cmd[512];
  snprintf(cmd, sizeof cmd, "cp -r deploy/config/. '%s'/", dir);
  assert_int_equal(system(cmd), 0);
  return dir;
}

static void write_file(const char *dir, const char *name, const char *text)
{
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static void remove_dir(char *dir)
{
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  free(dir);
}

static void expect_refused(const char *file, const char *text, const char *needle)
{
  char *dir = scratch_copy();
  struct dub_config *c = NULL;
  char *why = NULL;
  write_file(dir, file, text);
  assert_int_not_equal(dub_config_load(dir, "schemas", ALL, &c, &why), DUB_OK);
  assert_null(c);
  assert_non_null(why);
  if(!strstr(why, needle))
    fail_msg("'%s' does not mention '%s'", why, needle);
  free(why);
  remove_dir(dir);
}

static void test_bad_files_are_named(void **state)
{
  (void)state;
  expect_refused("rules.json",
                 "{\"rules\": [{\"id\": \"r\", \"match\": {}, \"unit\": \"U-CMO\","
                 " \"strategy\": \"fastest\"}], \"fallback_unit\": \"U-CMO\"}",
                 "rules.json: /rules/0/strategy");
  expect_refused("sla.json", "{\"accept\": ", "sla.json");
  expect_refused("clients.json", "{\"clients\": [{\"id\": \"x\"}]}", "clients.json");
  expect_refused("calendar/2026.json",
                 "{\"year\": 2026, \"papers\": [], \"days\": [{\"name\": \"x\","
                 " \"date\": \"2026-13-01\", \"isOffDay\": true}]}",
                 "calendar/2026.json");
}

static void test_reload_keeps_running_snapshot(void **state)
{
  (void)state;
  char *dir = scratch_copy();
  struct dub_config_holder *h = NULL;
  char *why = NULL;
  assert_int_equal(dub_config_holder_new(dir, "schemas", ALL, &h, &why), DUB_OK);
  struct dub_config *before = dub_config_holder_get(h);

  write_file(dir, "rules.json", "{\"rules\": \"not a list\"}");
  assert_int_not_equal(dub_config_holder_reload(h, &why), DUB_OK);
  assert_non_null(strstr(why, "rules.json"));
  free(why);
  struct dub_config *same = dub_config_holder_get(h);
  assert_ptr_equal(same, before);
  dub_config_unref(same);

  write_file(dir, "rules.json", "{\"rules\": [], \"fallback_unit\": \"U-IG-03\"}");
  assert_int_equal(dub_config_holder_reload(h, &why), DUB_OK);
  struct dub_config *after = dub_config_holder_get(h);
  assert_ptr_not_equal(after, before);
  assert_string_equal(json_string_value(json_object_get(after->rules, "fallback_unit")),
                      "U-IG-03");
  /* The old snapshot stays usable for whoever still holds it. */
  assert_string_equal(json_string_value(json_object_get(before->rules, "fallback_unit")),
                      "U-CMO");
  dub_config_unref(after);
  dub_config_unref(before);
  dub_config_holder_free(h);
  remove_dir(dir);
}

/* Refuses any rules.json whose fallback_unit is "U-BAD". */
static enum dub_err no_bad_fallback(void *ctx, const struct dub_config *config,
                                    char **why)
{
  int *calls = ctx;
  (*calls)++;
  const char *fallback =
      json_string_value(json_object_get(config->rules, "fallback_unit"));
  if(fallback && strcmp(fallback, "U-BAD") == 0) {
    *why = strdup("rules.json: /fallback_unit: no unit 'U-BAD'");
    return DUB_ERR_CONFIG;
  }
  return DUB_OK;
}

static void test_check_guards_start_and_reload(void **state)
{
  (void)state;
  char *dir = scratch_copy();
  struct dub_config_holder *h = NULL;
  char *why = NULL;
  int calls = 0;
  assert_int_equal(dub_config_holder_new(dir, "schemas", ALL, &h, &why), DUB_OK);
  /* The running snapshot is checked when the check is set. */
  assert_int_equal(dub_config_holder_set_check(h, no_bad_fallback, &calls, &why), DUB_OK);
  assert_int_equal(calls, 1);
  struct dub_config *before = dub_config_holder_get(h);

  /* Valid for the schema, refused by the check: the running snapshot stays. */
  write_file(dir, "rules.json", "{\"rules\": [], \"fallback_unit\": \"U-BAD\"}");
  assert_int_equal(dub_config_holder_reload(h, &why), DUB_ERR_CONFIG);
  assert_string_equal(why, "rules.json: /fallback_unit: no unit 'U-BAD'");
  free(why);
  assert_int_equal(calls, 2);
  struct dub_config *same = dub_config_holder_get(h);
  assert_ptr_equal(same, before);
  dub_config_unref(same);

  /* A snapshot the schemas refuse never reaches the check. */
  write_file(dir, "rules.json", "{\"rules\": 1}");
  assert_int_not_equal(dub_config_holder_reload(h, &why), DUB_OK);
  free(why);
  assert_int_equal(calls, 2);

  write_file(dir, "rules.json", "{\"rules\": [], \"fallback_unit\": \"U-IG-03\"}");
  assert_int_equal(dub_config_holder_reload(h, &why), DUB_OK);
  assert_int_equal(calls, 3);
  struct dub_config *after = dub_config_holder_get(h);
  assert_ptr_not_equal(after, before);
  dub_config_unref(after);

  /* Setting a check on a running snapshot it refuses says so. */
  write_file(dir, "rules.json", "{\"rules\": [], \"fallback_unit\": \"U-BAD\"}");
  assert_int_equal(dub_config_holder_set_check(h, NULL, NULL, &why), DUB_OK);
  assert_int_equal(dub_config_holder_reload(h, &why), DUB_OK);
  assert_int_equal(dub_config_holder_set_check(h, no_bad_fallback, &calls, &why),
                   DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "U-BAD"));
  free(why);
  dub_config_unref(before);
  dub_config_holder_free(h);
  remove_dir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shipped_config_loads),
      cmocka_unit_test(test_bad_files_are_named),
      cmocka_unit_test(test_reload_keeps_running_snapshot),
      cmocka_unit_test(test_check_guards_start_and_reload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
