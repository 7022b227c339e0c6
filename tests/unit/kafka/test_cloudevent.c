/* test_cloudevent.c - CloudEvents decode and encode on hand-built messages, no broker. */
#include "kafka/cloudevent.h"

#include "core/alloc.h"

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#define HDR(name, text)                                                                  \
  {                                                                                      \
    name, text, sizeof text - 1                                                          \
  }

static const struct dub_kafka_header structured_ct[] = {
    HDR("content-type", "application/cloudevents+json; charset=utf-8")};

static struct dub_kafka_msg message(const char *value, size_t len,
                                    const struct dub_kafka_header *headers, size_t n)
{
  struct dub_kafka_msg msg = {.topic = "duban.inbound",
                              .partition = 0,
                              .offset = 7,
                              .value = value,
                              .value_len = len,
                              .timestamp_ms = -1,
                              .headers = headers,
                              .header_count = n};
  return msg;
}

static json_t *decode_ok(const struct dub_kafka_msg *msg)
{
  json_t *event = NULL;
  char *why = NULL;
  enum dub_err rc = dub_ce_decode(msg, &event, &why);
  if(rc)
    fail_msg("decode failed: %s", why);
  assert_non_null(event);
  return event;
}

static void expect_malformed(const struct dub_kafka_msg *msg, const char *mentions)
{
  json_t *event = NULL;
  char *why = NULL;
  assert_int_equal(dub_ce_decode(msg, &event, &why), DUB_ERR_MALFORMED);
  assert_null(event);
  assert_non_null(why);
  if(!strstr(why, mentions))
    fail_msg("message '%s' does not mention '%s'", why, mentions);
  free(why);
}

static void expect_structured_malformed(const char *value, size_t len,
                                        const char *mentions)
{
  struct dub_kafka_msg msg = message(value, len, structured_ct, 1);
  expect_malformed(&msg, mentions);
}

#define EVENT_JSON                                                                       \
  "{\"specversion\":\"1.0\",\"id\":\"e-1\",\"source\":\"/gov/hotline-12345\","           \
  "\"type\":\"duban.problem.reported\",\"time\":\"2026-09-29T10:00:00+08:00\","          \
  "\"data\":{\"title\":\"窗口推诿\"}}"

static void test_structured(void **state)
{
  (void)state;
  const char value[] = EVENT_JSON;
  struct dub_kafka_msg msg = message(value, sizeof value - 1, structured_ct, 1);
  json_t *event = decode_ok(&msg);
  assert_string_equal(json_string_value(json_object_get(event, "id")), "e-1");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(event, "data"), "title")),
      "窗口推诿");
  json_decref(event);

  /* The content type is matched without regard to case. */
  const struct dub_kafka_header upper[] = {
      HDR("content-type", "Application/CloudEvents+JSON")};
  msg = message(value, sizeof value - 1, upper, 1);
  event = decode_ok(&msg);
  json_decref(event);

  /* No ce_ headers: binary mode is impossible, the value is the event. */
  const struct dub_kafka_header plain[] = {HDR("content-type", "application/json")};
  msg = message(value, sizeof value - 1, plain, 1);
  event = decode_ok(&msg);
  assert_string_equal(json_string_value(json_object_get(event, "type")),
                      "duban.problem.reported");
  json_decref(event);
  msg = message(value, sizeof value - 1, NULL, 0);
  event = decode_ok(&msg);
  json_decref(event);
}

static void test_binary(void **state)
{
  (void)state;
  const char data[] = "{\"case_id\":\"C-1\",\"passed\":true}";
  const struct dub_kafka_header headers[] = {
      HDR("ce_specversion", "1.0"),
      HDR("ce_id", "e-9"),
      HDR("ce_source", "/gov/oa"),
      HDR("ce_type", "duban.case.verified"),
      HDR("ce_time", "2026-10-01T08:00:00Z"),
      HDR("ce_traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
      HDR("content-type", "application/json"),
      HDR("unrelated", "ignored"),
  };
  struct dub_kafka_msg msg = message(data, sizeof data - 1, headers, 8);
  json_t *event = decode_ok(&msg);
  json_t *want = json_loads(
      "{\"specversion\":\"1.0\",\"id\":\"e-9\",\"source\":\"/gov/oa\","
      "\"type\":\"duban.case.verified\",\"time\":\"2026-10-01T08:00:00Z\","
      "\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\","
      "\"datacontenttype\":\"application/json\","
      "\"data\":{\"case_id\":\"C-1\",\"passed\":true}}",
      0, NULL);
  assert_true(json_equal(event, want));
  json_decref(want);
  json_decref(event);

  /* No content type: JSON is implied. No value: no data. */
  msg = message(data, sizeof data - 1, headers, 6);
  event = decode_ok(&msg);
  assert_true(json_is_true(json_object_get(json_object_get(event, "data"), "passed")));
  assert_null(json_object_get(event, "datacontenttype"));
  json_decref(event);
  msg = message(NULL, 0, headers, 6);
  event = decode_ok(&msg);
  assert_null(json_object_get(event, "data"));
  json_decref(event);

  /* Text stays a string; bytes become data_base64. */
  struct dub_kafka_header text_headers[7];
  memcpy(text_headers, headers, 6 * sizeof headers[0]);
  text_headers[6] = (struct dub_kafka_header)HDR("content-type", "text/plain");
  msg = message("你好", strlen("你好"), text_headers, 7);
  event = decode_ok(&msg);
  assert_string_equal(json_string_value(json_object_get(event, "data")), "你好");
  json_decref(event);
  text_headers[6] =
      (struct dub_kafka_header)HDR("content-type", "application/octet-stream");
  msg = message("\xff\x00\x01", 3, text_headers, 7);
  event = decode_ok(&msg);
  assert_string_equal(json_string_value(json_object_get(event, "data_base64")), "/wAB");
  assert_null(json_object_get(event, "data"));
  json_decref(event);
}

static void test_structured_malformed(void **state)
{
  (void)state;
  expect_structured_malformed("{\"specversion\":", 15, "not valid json");
  expect_structured_malformed("", 0, "empty");
  /* Invalid UTF-8 inside a string. */
  const char bad_utf8[] =
      "{\"specversion\":\"1.0\",\"id\":\"\xc3\x28\",\"source\":\"/s\","
      "\"type\":\"t\"}";
  expect_structured_malformed(bad_utf8, sizeof bad_utf8 - 1, "not valid json");
  const char dup[] =
      "{\"specversion\":\"1.0\",\"id\":\"a\",\"id\":\"b\",\"source\":\"/s\","
      "\"type\":\"t\"}";
  expect_structured_malformed(dup, sizeof dup - 1, "duplicate");
  const char no_id[] = "{\"specversion\":\"1.0\",\"source\":\"/s\",\"type\":\"t\"}";
  expect_structured_malformed(no_id, sizeof no_id - 1, "'id' is missing");
  const char no_source[] = "{\"specversion\":\"1.0\",\"id\":\"a\",\"type\":\"t\"}";
  expect_structured_malformed(no_source, sizeof no_source - 1, "'source' is missing");
  const char no_type[] = "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"/s\"}";
  expect_structured_malformed(no_type, sizeof no_type - 1, "'type' is missing");
  const char no_version[] = "{\"id\":\"a\",\"source\":\"/s\",\"type\":\"t\"}";
  expect_structured_malformed(no_version, sizeof no_version - 1,
                              "'specversion' is missing");
  const char old[] =
      "{\"specversion\":\"0.3\",\"id\":\"a\",\"source\":\"/s\",\"type\":\"t\"}";
  expect_structured_malformed(old, sizeof old - 1, "specversion");
  const char empty_id[] = "{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/s\","
                          "\"type\":\"t\"}";
  expect_structured_malformed(empty_id, sizeof empty_id - 1, "'id' is empty");
  const char num_id[] =
      "{\"specversion\":\"1.0\",\"id\":5,\"source\":\"/s\",\"type\":\"t\"}";
  expect_structured_malformed(num_id, sizeof num_id - 1, "'id' is not a string");
  const char bad_time[] = "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"/s\","
                          "\"type\":\"t\",\"time\":\"yesterday\"}";
  expect_structured_malformed(bad_time, sizeof bad_time - 1, "'time'");
  expect_structured_malformed("[1,2]", 5, "not a json object");
  /* The top level must be an object. */
  expect_structured_malformed("\"s\"", 3, "not a json object");

  const struct dub_kafka_header batch[] = {
      HDR("content-type", "application/cloudevents-batch+json")};
  struct dub_kafka_msg msg = message("[]", 2, batch, 1);
  expect_malformed(&msg, "batch");
}

static void test_binary_malformed(void **state)
{
  (void)state;
  const struct dub_kafka_header missing_type[] = {
      HDR("ce_specversion", "1.0"), HDR("ce_id", "a"), HDR("ce_source", "/s")};
  struct dub_kafka_msg msg = message(NULL, 0, missing_type, 3);
  expect_malformed(&msg, "'type' is missing");

  const struct dub_kafka_header bad_utf8[] = {
      HDR("ce_specversion", "1.0"), HDR("ce_id", "\xff"), HDR("ce_source", "/s"),
      HDR("ce_type", "t")};
  msg = message(NULL, 0, bad_utf8, 4);
  expect_malformed(&msg, "not valid utf-8");

  const struct dub_kafka_header repeated[] = {
      HDR("ce_specversion", "1.0"), HDR("ce_id", "a"), HDR("ce_id", "b"),
      HDR("ce_source", "/s"), HDR("ce_type", "t")};
  msg = message(NULL, 0, repeated, 5);
  expect_malformed(&msg, "repeated");

  const struct dub_kafka_header bad_name[] = {
      HDR("ce_specversion", "1.0"), HDR("ce_id", "a"), HDR("ce_source", "/s"),
      HDR("ce_type", "t"), HDR("ce_Bad-Name", "x")};
  msg = message(NULL, 0, bad_name, 5);
  expect_malformed(&msg, "valid attribute");

  const struct dub_kafka_header json_ct[] = {
      HDR("ce_specversion", "1.0"), HDR("ce_id", "a"), HDR("ce_source", "/s"),
      HDR("ce_type", "t"), HDR("content-type", "application/vnd.duban+json")};
  msg = message("{\"a\":1,\"a\":2}", 13, json_ct, 5);
  expect_malformed(&msg, "duplicate");
  msg = message("{\"a\":\"\xc3\x28\"}", 10, json_ct, 5);
  expect_malformed(&msg, "data is not valid json");
}

static void test_encode(void **state)
{
  (void)state;
  json_t *event = json_loads(EVENT_JSON, 0, NULL);
  char *out = NULL;
  size_t len = 0;
  char *why = NULL;

  assert_int_equal(dub_ce_encode(event, &out, &len, &why), DUB_OK);
  assert_int_equal(len, strlen(out));
  assert_null(strchr(out, '\n'));
  assert_non_null(strstr(out, "\"id\":\"e-1\""));
  /* What we encode, we decode to the same event. */
  struct dub_kafka_msg msg = message(out, len, structured_ct, 1);
  json_t *back = decode_ok(&msg);
  assert_true(json_equal(back, event));
  json_decref(back);
  free(out);

  json_object_del(event, "type");
  assert_int_equal(dub_ce_encode(event, &out, &len, &why), DUB_ERR_MALFORMED);
  assert_null(out);
  assert_non_null(strstr(why, "'type'"));
  free(why);
  json_decref(event);
}

static void test_header_lookup(void **state)
{
  (void)state;
  const struct dub_kafka_header headers[] = {
      HDR("a", "1"), HDR("b", "2"), HDR("a", "3"), {"n", NULL, 0}};
  struct dub_kafka_msg msg = message(NULL, 0, headers, 4);
  const void *value = NULL;
  size_t len = 9;
  assert_true(dub_kafka_msg_header(&msg, "a", &value, &len));
  assert_int_equal(len, 1);
  assert_memory_equal(value, "3", 1); /* the last one wins */
  assert_true(dub_kafka_msg_header(&msg, "n", &value, &len));
  assert_null(value);
  assert_int_equal(len, 0);
  assert_false(dub_kafka_msg_header(&msg, "A", &value, &len));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_structured),
      cmocka_unit_test(test_binary),
      cmocka_unit_test(test_structured_malformed),
      cmocka_unit_test(test_binary_malformed),
      cmocka_unit_test(test_encode),
      cmocka_unit_test(test_header_lookup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
