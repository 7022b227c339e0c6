/* dlq.c - dead letters: the original bytes, where they came from and why, as JSON. */
#include "kafka/kafka.h"

#include "kafka/internal.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Returns a new JSON string of the base64 of buf. */
static json_t *base64(const void *buf, size_t len)
{
  size_t n;
  char *out = kafka_base64(buf, len, &n);
  json_t *s = json_stringn(out, n);
  free(out);
  return s;
}

/* A JSON string of 's', or of a placeholder when 's' is not valid UTF-8. */
static json_t *text(const char *s)
{
  json_t *j = json_string(s ? s : "");
  return j ? j : json_string("(invalid utf-8)");
}

static json_t *build_record(const struct dub_kafka_msg *msg, const char *reason_code,
                            const char *detail)
{
  char now[DUB_TIME_LEN];
  json_t *headers = json_object();
  json_t *headers_b64 = json_object();
  dub_time_format(dub_time_now_ms(), 0, now);

  for(size_t i = 0; i < msg->header_count; i++) {
    const struct dub_kafka_header *h = &msg->headers[i];
    if(!h->name)
      continue;
    json_t *v = h->value ? json_stringn(h->value, h->len) : json_null();
    if(v) {
      if(json_object_set_new(headers, h->name, v))
        dub_log_warn("dead letter: header name is not valid utf-8, dropped");
      else
        json_object_del(headers_b64, h->name);
    } else {
      if(json_object_set_new(headers_b64, h->name, base64(h->value, h->len)))
        dub_log_warn("dead letter: header name is not valid utf-8, dropped");
      else
        json_object_del(headers, h->name);
    }
  }
  json_t *original = json_pack(
      "{s:o, s:o, s:o}", "key_b64",
      msg->key ? base64(msg->key, msg->key_len) : json_null(), "value_b64",
      msg->value ? base64(msg->value, msg->value_len) : json_null(), "headers", headers);
  if(original && json_object_size(headers_b64))
    json_object_set(original, "headers_b64", headers_b64);
  json_decref(headers_b64);
  json_t *origin =
      json_pack("{s:s?, s:i, s:I, s:o}", "topic", msg->topic, "partition",
                (int)msg->partition, "offset", (json_int_t)msg->offset, "timestamp",
                msg->timestamp_ms >= 0 ? json_integer(msg->timestamp_ms) : json_null());
  return json_pack("{s:o, s:o, s:o?, s:o?, s:s}", "reason", text(reason_code), "detail",
                   text(detail), "origin", origin, "original", original, "time", now);
}

enum dub_err dub_kafka_dlq_write(struct dub_kafka_producer *producer,
                                 const char *dlq_topic, const struct dub_kafka_msg *msg,
                                 const char *reason_code, const char *detail)
{
  enum dub_err rc = DUB_OK;
  char *value = NULL;
  json_t *record = build_record(msg, reason_code, detail);
  static const struct dub_kafka_header content_type = {"content-type", "application/json",
                                                       16};

  if(!record || !json_is_object(json_object_get(record, "origin")) ||
     !json_is_object(json_object_get(record, "original"))) {
    dub_log_error("dead letter: cannot build the record");
    rc = DUB_ERR_INTERNAL;
    goto out;
  }
  value = json_dumps(record, JSON_COMPACT);
  if(!value) {
    rc = DUB_ERR_INTERNAL;
    goto out;
  }
  rc = dub_kafka_produce_sync(producer, dlq_topic ? dlq_topic : DUB_KAFKA_DLQ_TOPIC,
                              msg->key, msg->key_len, value, strlen(value), &content_type,
                              1, kafka_producer_delivery_timeout(producer) + 1000, NULL,
                              NULL);
out:
  free(value);
  json_decref(record);
  return rc;
}
