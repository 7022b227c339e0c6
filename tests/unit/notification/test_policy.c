/* test_policy.c - who hears what, the SMS allow-list, quiet hours, backoff, digests and
 * the composed email. */
#include "policy.h"
#include "render.h"

#include "core/time.h"
#include "json/json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_sms_allow_list(void **state)
{
  (void)state;
  char *why = NULL;
  assert_int_equal(notification_sms_template_check(
                       "【督办】{{case_id}}请于{{due_at}}前{{asked}}", &why),
                   DUB_OK);
  assert_null(why);
  const char *bad[] = {"{{title}}", "{{description}}", "{{officer_name}}", "{{name}}",
                       "【督办】{{case_id}}{{reporter}}"};
  for(size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(notification_sms_template_check(bad[i], &why), DUB_ERR_CONFIG);
    assert_non_null(strstr(why, "is not allowed in an SMS"));
    free(why);
  }
  assert_int_equal(notification_sms_template_check("{{case_id", &why), DUB_ERR_CONFIG);
  free(why);
  /* Email templates may use the title; SMS ones may not. */
  json_t *t =
      json_pack("{s:s, s:s}", "duban.case.assigned.email", "Subject: x\n\n{{title}}",
                "duban.case.assigned.sms", "{{case_id}}");
  assert_int_equal(notification_templates_check(t, &why), DUB_OK);
  json_object_set_new(t, "duban.case.warning.sms", json_string("【督办】{{title}}"));
  assert_int_equal(notification_templates_check(t, &why), DUB_ERR_CONFIG);
  assert_string_equal(why,
                      "templates/duban.case.warning.sms.txt: {{title}} is not allowed "
                      "in an SMS (allowed: case_id, asked, accept_by, due_at, deadline, "
                      "warn_at, unit_name, level)");
  free(why);
  json_decref(t);
}

static json_t *directory(void)
{
  json_t *d = NULL;
  char *why = NULL;
  assert_int_equal(dub_json_load_file("deploy/config/directory.json", &d, &why), DUB_OK);
  return d;
}

static json_t *routes(void)
{
  json_t *doc = NULL;
  char *why = NULL;
  assert_int_equal(dub_json_parse(notification_default_routes,
                                  strlen(notification_default_routes), &doc, &why),
                   DUB_OK);
  json_t *r = json_incref(json_object_get(doc, "routes"));
  json_decref(doc);
  return r;
}

static bool has(const json_t *officers, const char *id)
{
  size_t i;
  json_t *o;
  json_array_foreach(officers, i, o)
  {
    if(strcmp(dub_json_str(o, "id"), id) == 0)
      return true;
  }
  return false;
}

static void test_who_hears_what(void **state)
{
  (void)state;
  json_t *dir = directory(), *r = routes();
  json_t *recused = json_pack("[s]", "O-IG05-WANG");
  /* assigned: the officer only. */
  json_t *to =
      notification_recipients(notification_route_find(r, "duban.case.assigned", NULL, 0),
                              dir, "O-IG05-FENG", "U-IG-05", "U-STREET-07", recused);
  assert_int_equal(json_array_size(to), 1);
  assert_true(has(to, "O-IG05-FENG"));
  json_decref(to);
  /* overdue (either clock): officer and unit head. */
  to = notification_recipients(
      notification_route_find(r, "duban.case.overdue", "accept", 0), dir, "O-IG05-FENG",
      "U-IG-05", "U-STREET-07", recused);
  assert_int_equal(json_array_size(to), 2);
  assert_true(has(to, "O-IG05-ZHENG"));
  json_decref(to);
  /* level 3: plus supervisors; level 4: plus leaders. */
  to =
      notification_recipients(notification_route_find(r, "duban.case.escalated", NULL, 3),
                              dir, "O-IG05-FENG", "U-IG-05", "U-STREET-07", recused);
  assert_true(has(to, "O-CMO-ZHAO") && !has(to, "O-CMO-SUN"));
  json_decref(to);
  to =
      notification_recipients(notification_route_find(r, "duban.case.escalated", NULL, 4),
                              dir, "O-IG05-FENG", "U-IG-05", "U-STREET-07", recused);
  assert_true(has(to, "O-CMO-ZHAO") && has(to, "O-CMO-SUN"));
  json_decref(to);
  /* A recused officer is never told, whatever the event names. */
  to = notification_recipients(notification_route_find(r, "duban.case.warning", NULL, 0),
                               dir, "O-IG05-WANG", "U-IG-05", "U-STREET-07", recused);
  assert_int_equal(json_array_size(to), 0);
  json_decref(to);
  /* Nor is an officer of the subject unit (its head here), nor a declared conflict. */
  to =
      notification_recipients(notification_route_find(r, "duban.case.escalated", NULL, 4),
                              dir, "O-IG03-ZHOU", "U-CMO", "U-CMO", NULL);
  assert_false(has(to, "O-CMO-ZHAO") || has(to, "O-CMO-SUN"));
  assert_true(has(to, "O-IG03-ZHOU"));
  json_decref(to);
  to = notification_recipients(notification_route_find(r, "duban.case.warning", NULL, 0),
                               dir, "O-IG03-ZHOU", "U-IG-03", "U-BUREAU-MKT", NULL);
  assert_int_equal(json_array_size(to), 0);
  json_decref(to);
  /* The reporter hears of received and closed only; nobody of accepted. */
  assert_true(dub_json_array_has_str(
      json_object_get(notification_route_find(r, "duban.case.closed", NULL, 0), "to"),
      "reporter"));
  assert_null(notification_route_find(r, "duban.case.accepted", NULL, 0));
  json_decref(recused);
  json_decref(r);
  json_decref(dir);
}

static int64_t at(const char *rfc3339)
{
  int64_t ms = 0;
  assert_int_equal(dub_time_parse(rfc3339, &ms, NULL), DUB_OK);
  return ms;
}

static void test_quiet_hours(void **state)
{
  (void)state;
  struct notification_quiet q;
  assert_true(notification_quiet_parse("22:00-08:00", &q));
  assert_int_equal(notification_quiet_until(&q, at("2026-11-20T21:59:59+08:00")), 0);
  assert_int_equal(notification_quiet_until(&q, at("2026-11-20T22:00:00+08:00")),
                   at("2026-11-21T08:00:00+08:00"));
  assert_int_equal(notification_quiet_until(&q, at("2026-11-21T03:30:00+08:00")),
                   at("2026-11-21T08:00:00+08:00"));
  assert_int_equal(notification_quiet_until(&q, at("2026-11-21T08:00:00+08:00")), 0);
  /* The same instants written in UTC. */
  assert_int_equal(notification_quiet_until(&q, at("2026-11-20T14:00:00Z")),
                   at("2026-11-21T00:00:00Z"));
  assert_true(notification_quiet_parse("12:00:05-12:00:20", &q));
  assert_int_equal(notification_quiet_until(&q, at("2026-11-20T12:00:10+08:00")),
                   at("2026-11-20T12:00:20+08:00"));
  assert_true(notification_quiet_parse("off", &q));
  assert_int_equal(notification_quiet_until(&q, at("2026-11-20T23:00:00+08:00")), 0);
  const char *bad[] = {"22-08", "25:00-08:00", "22:00", "22:00-08:60", "x", "22:0-08:00"};
  for(size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_false(notification_quiet_parse(bad[i], &q));
}

static void test_backoff(void **state)
{
  (void)state;
  /* Equal jitter: between half and all of base * 2^(attempt - 2), capped. */
  assert_int_equal(notification_backoff_ms(2, 1000, 60000, 0.0), 500);
  assert_int_equal(notification_backoff_ms(2, 1000, 60000, 0.999999), 999);
  assert_int_equal(notification_backoff_ms(4, 1000, 60000, 0.0), 2000);
  assert_int_equal(notification_backoff_ms(30, 1000, 60000, 0.0), 30000);
  assert_true(notification_backoff_ms(30, 1000, 60000, 0.999999) <= 60000);
}

static void test_retries_end(void **state)
{
  (void)state;
  const int64_t created = 1790000000000, day = 86400000;
  /* Attempts: the third of three ends them, the second does not. */
  assert_false(notification_retries_end(2, 3, created, created + 1000, day));
  assert_true(notification_retries_end(3, 3, created, created + 1000, day));
  /* Age: a retry due exactly at the bound still goes; one due past it does not, however
   * many attempts are left. */
  assert_false(notification_retries_end(1, 100, created, created + day, day));
  assert_true(notification_retries_end(1, 100, created, created + day + 1, day));
  /* A message created in the future (clock skew between instances) is not old. */
  assert_false(notification_retries_end(1, 100, created, created - 5000, day));
}

static void test_digest_text(void **state)
{
  (void)state;
  json_t *cases = json_pack("[s, s, s]", "DB1", "DB2", "DB3");
  char *text = notification_digest_text(cases, 5);
  assert_string_equal(
      text, "【督办】您另有5条督办提醒，涉及事项DB1、DB2等，请登录督办系统查看。");
  free(text);
  json_decref(cases);
}

static void test_email(void **state)
{
  (void)state;
  /* Long subjects become several encoded words of at most 75 characters. */
  char *h = notification_encode_header(
      "【督办】督办事项 DB01 已交办，请及时签收，逾期将逐级督办");
  assert_non_null(strstr(h, "\r\n =?UTF-8?B?"));
  for(char *line = h; line;
      line = strstr(line, "\r\n") ? strstr(line, "\r\n") + 2 : NULL) {
    char *end = strstr(line, "\r\n");
    assert_true((end ? (size_t)(end - line) : strlen(line)) <= 76);
  }
  free(h);
  char *m = notification_email_compose("a@x", "b@y", "主题", "正文\n第二行", "k123",
                                       at("2026-11-20T09:00:00Z"));
  assert_non_null(strstr(m, "Subject: =?UTF-8?B?5Li76aKY?=\r\n"));
  assert_non_null(strstr(m, "Date: Fri, 20 Nov 2026 09:00:00 +0000\r\n"));
  assert_non_null(strstr(m, "Message-ID: <k123@duban>\r\n"));
  assert_non_null(strstr(m, "charset=UTF-8"));
  assert_non_null(strstr(m, "\r\n\r\n正文\r\n第二行\r\n"));
  free(m);
}

static void test_mask(void **state)
{
  (void)state;
  char *m = notification_mask("+8613812345678");
  assert_string_equal(m, "+86138****5678");
  free(m);
  m = notification_mask("whistle.blower@example.cn");
  assert_string_equal(m, "w***@example.cn");
  free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sms_allow_list), cmocka_unit_test(test_who_hears_what),
      cmocka_unit_test(test_quiet_hours),    cmocka_unit_test(test_backoff),
      cmocka_unit_test(test_retries_end),    cmocka_unit_test(test_digest_text),
      cmocka_unit_test(test_email),          cmocka_unit_test(test_mask),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
