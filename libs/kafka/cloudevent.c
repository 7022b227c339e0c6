/* cloudevent.c - CloudEvents 1.0 decode (structured and binary mode) and encode. */
#include "kafka/cloudevent.h"

#include "kafka/internal.h"

#include "core/alloc.h"
#include "json/json.h"
#include "core/log.h"
#include "core/time.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum dub_err malformed(char **why, char *msg)
{
  *why = msg;
  return DUB_ERR_MALFORMED;
}

static bool starts_with_ci(const char *s, size_t len, const char *prefix)
{
  size_t n = strlen(prefix);
  return len >= n && strncasecmp(s, prefix, n) == 0;
}

/* True for JSON media types: application/json, text/json, anything with a "+json"
 * suffix, parameters (";charset=utf-8") ignored. */
static bool json_media_type(const char *ct, size_t len)
{
  size_t end = 0;
  while(end < len && ct[end] != ';')
    end++;
  while(end > 0 && isspace((unsigned char)ct[end - 1]))
    end--;
  if((end == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
     (end == 9 && strncasecmp(ct, "text/json", 9) == 0))
    return true;
  return end >= 5 && strncasecmp(ct + end - 5, "+json", 5) == 0;
}

static bool attr_name_ok(const char *name)
{
  if(!*name)
    return false;
  for(const char *p = name; *p; p++) {
    if(!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
      return false;
  }
  return true;
}

static enum dub_err require_string(const json_t *event, const char *name, bool nonempty,
                                   char **why)
{
  const json_t *v = json_object_get(event, name);
  if(!v)
    return malformed(why, dub_xasprintf("cloudevent attribute '%s' is missing", name));
  if(!json_is_string(v))
    return malformed(why,
                     dub_xasprintf("cloudevent attribute '%s' is not a string", name));
  if(nonempty && json_string_length(v) == 0)
    return malformed(why, dub_xasprintf("cloudevent attribute '%s' is empty", name));
  return DUB_OK;
}

enum dub_err dub_ce_validate(const json_t *event, char **why)
{
  enum dub_err rc = DUB_OK;
  static const char *const required[] = {"specversion", "id", "source", "type"};
  static const char *const optional[] = {"subject", "datacontenttype", "dataschema",
                                         "time"};

  if(!json_is_object(event))
    return malformed(why, dub_xstrdup("cloudevent is not a json object"));
  for(size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
    rc = require_string(event, required[i], true, why);
    if(rc)
      return rc;
  }
  if(strcmp(json_string_value(json_object_get(event, "specversion")), "1.0") != 0)
    return malformed(why, dub_xstrdup("cloudevent specversion is not \"1.0\""));
  for(size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
    if(json_object_get(event, optional[i])) {
      rc = require_string(event, optional[i], false, why);
      if(rc)
        return rc;
    }
  }
  const json_t *time = json_object_get(event, "time");
  int64_t ms;
  if(time && dub_time_parse(json_string_value(time), &ms, NULL))
    return malformed(why, dub_xstrdup("cloudevent attribute 'time' is not rfc 3339"));
  if(json_object_get(event, "data") && json_object_get(event, "data_base64"))
    return malformed(why, dub_xstrdup("cloudevent has both 'data' and 'data_base64'"));
  const json_t *b64 = json_object_get(event, "data_base64");
  if(b64 && !json_is_string(b64))
    return malformed(why,
                     dub_xstrdup("cloudevent attribute 'data_base64' is not a string"));
  return DUB_OK;
}

enum dub_err dub_ce_parse(const void *buf, size_t len, json_t **event, char **why)
{
  enum dub_err rc = DUB_OK;
  json_t *ev = NULL;
  char *inner = NULL;

  *event = NULL;
  if(!buf || !len)
    return malformed(why, dub_xstrdup("cloudevent is empty"));
  if(dub_json_parse(buf, len, &ev, &inner)) {
    rc = malformed(why, dub_xasprintf("cloudevent is not valid json: %s", inner));
    goto out;
  }
  rc = dub_ce_validate(ev, why);
  if(rc)
    goto out;
  *event = ev;
  ev = NULL;
out:
  free(inner);
  json_decref(ev);
  return rc;
}

/* Puts the message value into 'event' as data or data_base64. */
static enum dub_err set_data(json_t *event, const struct dub_kafka_msg *msg,
                             const char *ct, size_t ct_len, char **why)
{
  json_t *data = NULL;
  bool is_json = !ct || json_media_type(ct, ct_len);

  if(!msg->value || !msg->value_len)
    return DUB_OK;
  if(is_json) {
    char *inner = NULL;
    if(dub_json_parse(msg->value, msg->value_len, &data, &inner)) {
      enum dub_err rc =
          malformed(why, dub_xasprintf("cloudevent data is not valid json: %s", inner));
      free(inner);
      return rc;
    }
    json_object_set_new(event, "data", data);
    return DUB_OK;
  }
  if(starts_with_ci(ct, ct_len, "text/")) {
    data = json_stringn(msg->value, msg->value_len);
    if(data) {
      json_object_set_new(event, "data", data);
      return DUB_OK;
    }
  }
  /* Binary payload: base64 it the way the JSON event format prescribes. */
  size_t n;
  char *out = kafka_base64(msg->value, msg->value_len, &n);
  json_object_set_new(event, "data_base64", json_stringn(out, n));
  free(out);
  return DUB_OK;
}

static enum dub_err decode_binary(const struct dub_kafka_msg *msg, const char *ct,
                                  size_t ct_len, json_t **event, char **why)
{
  enum dub_err rc = DUB_OK;
  json_t *ev = json_object();

  for(size_t i = 0; i < msg->header_count; i++) {
    const struct dub_kafka_header *h = &msg->headers[i];
    if(!h->name || strncmp(h->name, "ce_", 3) != 0)
      continue;
    const char *attr = h->name + 3;
    if(!attr_name_ok(attr)) {
      rc = malformed(why, dub_xasprintf("cloudevent header '%s' does not name a valid "
                                        "attribute",
                                        h->name));
      goto out;
    }
    if(json_object_get(ev, attr)) {
      rc = malformed(why, dub_xasprintf("cloudevent header '%s' is repeated", h->name));
      goto out;
    }
    json_t *v = json_stringn(h->value ? h->value : "", h->value ? h->len : 0);
    if(!v) {
      rc = malformed(why,
                     dub_xasprintf("cloudevent header '%s' is not valid utf-8", h->name));
      goto out;
    }
    json_object_set_new(ev, attr, v);
  }
  if(ct) {
    json_t *v = json_stringn(ct, ct_len);
    if(!v) {
      rc = malformed(why, dub_xstrdup("content-type header is not valid utf-8"));
      goto out;
    }
    json_object_set_new(ev, "datacontenttype", v);
  }
  rc = set_data(ev, msg, ct, ct_len, why);
  if(rc)
    goto out;
  rc = dub_ce_validate(ev, why);
  if(rc)
    goto out;
  *event = ev;
  ev = NULL;
out:
  json_decref(ev);
  return rc;
}

enum dub_err dub_ce_decode(const struct dub_kafka_msg *msg, json_t **event, char **why)
{
  const void *ctv = NULL;
  size_t ct_len = 0;

  *event = NULL;
  if(!dub_kafka_msg_header(msg, "content-type", &ctv, &ct_len))
    ctv = NULL;
  const char *ct = ctv;
  bool has_ce_headers = false;
  for(size_t i = 0; i < msg->header_count; i++) {
    if(msg->headers[i].name && strncmp(msg->headers[i].name, "ce_", 3) == 0)
      has_ce_headers = true;
  }
  /* Without any ce_ header binary mode cannot be meant: read the value as the event. */
  if(!has_ce_headers || (ct && starts_with_ci(ct, ct_len, "application/cloudevents"))) {
    if(ct && starts_with_ci(ct, ct_len, "application/cloudevents-batch"))
      return malformed(why, dub_xstrdup("cloudevents batch mode is not supported on "
                                        "kafka"));
    return dub_ce_parse(msg->value, msg->value_len, event, why);
  }
  return decode_binary(msg, ct, ct_len, event, why);
}

enum dub_err dub_ce_encode(const json_t *event, char **out, size_t *len, char **why)
{
  enum dub_err rc = dub_ce_validate(event, why);
  *out = NULL;
  if(rc)
    return rc;
  char *text = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if(!text) {
    *why = dub_xstrdup("cloudevent cannot be serialised");
    return DUB_ERR_INTERNAL;
  }
  *out = text;
  *len = strlen(text);
  return DUB_OK;
}

static const struct dub_kafka_header ce_header = {"content-type", DUB_CE_CONTENT_TYPE,
                                                  sizeof DUB_CE_CONTENT_TYPE - 1};

static enum dub_err encode_logged(const json_t *event, char **value, size_t *len)
{
  char *why = NULL;
  enum dub_err rc = dub_ce_encode(event, value, len, &why);
  if(rc)
    dub_log_error("cloudevent not produced: %s", why);
  free(why);
  return rc;
}

#define MAX_EXTRA_HEADERS 6

/* The headers of one produced event: content-type, the type header, then 'extra'. */
static size_t event_headers(const json_t *event, const struct dub_kafka_header *extra,
                            size_t extra_count, struct dub_kafka_header *out)
{
  const char *type = json_string_value(json_object_get(event, "type"));
  size_t n = 0;
  out[n++] = ce_header;
  out[n++] = (struct dub_kafka_header){DUB_CE_TYPE_HEADER, type, type ? strlen(type) : 0};
  for(size_t i = 0; i < extra_count; i++)
    out[n++] = extra[i];
  return n;
}

enum dub_err dub_ce_produce_with(struct dub_kafka_producer *producer, const char *topic,
                                 const char *key, const json_t *event,
                                 const struct dub_kafka_header *extra, size_t extra_count,
                                 dub_kafka_delivery_fn cb, void *opaque)
{
  struct dub_kafka_header headers[2 + MAX_EXTRA_HEADERS];
  char *value = NULL;
  size_t len = 0;
  if(extra_count > MAX_EXTRA_HEADERS)
    return DUB_ERR_INVALID;
  enum dub_err rc = encode_logged(event, &value, &len);
  if(rc)
    return rc;
  size_t n = event_headers(event, extra, extra_count, headers);
  rc = dub_kafka_produce(producer, topic, key, key ? strlen(key) : 0, value, len, headers,
                         n, cb, opaque);
  free(value);
  return rc;
}

enum dub_err dub_ce_produce(struct dub_kafka_producer *producer, const char *topic,
                            const char *key, const json_t *event,
                            dub_kafka_delivery_fn cb, void *opaque)
{
  return dub_ce_produce_with(producer, topic, key, event, NULL, 0, cb, opaque);
}

enum dub_err dub_ce_produce_sync(struct dub_kafka_producer *producer, const char *topic,
                                 const char *key, const json_t *event, int timeout_ms,
                                 int32_t *partition, int64_t *offset)
{
  char *value = NULL;
  size_t len = 0;
  enum dub_err rc = encode_logged(event, &value, &len);
  if(rc)
    goto out;
  struct dub_kafka_header headers[2];
  size_t n = event_headers(event, NULL, 0, headers);
  rc = dub_kafka_produce_sync(producer, topic, key, key ? strlen(key) : 0, value, len,
                              headers, n, timeout_ms, partition, offset);
out:
  free(value);
  return rc;
}

struct dub_ce_batch {
  struct dub_kafka_producer *producer;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  size_t remaining;
};

/* One event's report, freed by whoever receives it. */
struct batch_slot {
  struct dub_ce_batch *batch;
  enum dub_err *result;
};

/* Runs on the producer's poll thread, or on the caller's for a flush at free. */
static void batch_delivered(void *opaque, enum dub_err err, int32_t partition,
                            int64_t offset)
{
  struct batch_slot *s = opaque;
  struct dub_ce_batch *b = s->batch;
  (void)partition;
  (void)offset;
  *s->result = err;
  free(s);
  pthread_mutex_lock(&b->lock);
  if(--b->remaining == 0)
    pthread_cond_signal(&b->cond);
  pthread_mutex_unlock(&b->lock);
}

struct dub_ce_batch *dub_ce_batch_new(struct dub_kafka_producer *producer)
{
  struct dub_ce_batch *b = dub_xcalloc(1, sizeof *b);
  b->producer = producer;
  pthread_mutex_init(&b->lock, NULL);
  pthread_cond_init(&b->cond, NULL);
  return b;
}

void dub_ce_batch_add(struct dub_ce_batch *b, const char *topic, const char *key,
                      const json_t *event, enum dub_err *result)
{
  struct batch_slot *s = dub_xmalloc(sizeof *s);
  *s = (struct batch_slot){b, result};
  pthread_mutex_lock(&b->lock);
  b->remaining++;
  pthread_mutex_unlock(&b->lock);
  enum dub_err rc = dub_ce_produce(b->producer, topic, key, event, batch_delivered, s);
  if(rc) {
    /* Not enqueued: no report will come. */
    free(s);
    *result = rc;
    pthread_mutex_lock(&b->lock);
    b->remaining--;
    pthread_mutex_unlock(&b->lock);
  }
}

void dub_ce_batch_wait(struct dub_ce_batch *b)
{
  if(!b)
    return;
  pthread_mutex_lock(&b->lock);
  while(b->remaining)
    pthread_cond_wait(&b->cond, &b->lock);
  pthread_mutex_unlock(&b->lock);
  pthread_cond_destroy(&b->cond);
  pthread_mutex_destroy(&b->lock);
  free(b);
}
