/* post_events.c - POST /v1/events: one CloudEvent in, one case event out on duban.cases,
 * answered only after Kafka acknowledged it. */
#include "caseid.h"
#include "intake.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "crypto/crypto.h"
#include "http/http.h"
#include "json/json.h"
#include "kafka/cloudevent.h"
#include "runtime/runtime.h"
#include "schema/schema.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define CASES_TOPIC "duban.cases"
#define REPORTED_TYPE "duban.problem.reported"
/* How long intake remembers an event id for deduplication. */
#define DEDUP_TTL "7776000" /* 90 days */

/* One event between produce and its delivery report. */
struct inflight {
  struct intake *in;
  struct dub_http_pending *pending;
  char *dedup_key;
  char *case_key; /* set for new cases: marks the case as known to intake */
  char *case_id;
  char *event_id;
  char *client;
  char *type;
};

static void inflight_free(struct inflight *f)
{
  free(f->dedup_key);
  free(f->case_key);
  free(f->case_id);
  free(f->event_id);
  free(f->client);
  free(f->type);
  free(f);
}

static void count(struct intake *in, const char *client, const char *type,
                  const char *status)
{
  char *c = dub_metrics_label_escape(client ? client : "");
  char *t = dub_metrics_label_escape(type ? type : "");
  char *labels = dub_xasprintf("client=\"%s\",type=\"%s\",status=\"%s\"", c, t, status);
  dub_metrics_counter_add(dub_runtime_metrics(in->rt), "duban_intake_events_total",
                          "Inbound events by client, type and outcome.", labels, 1);
  free(labels);
  free(t);
  free(c);
}

/* The Redis key remembering an event: SHA-256 of source and id, so any source string is
 * safe in a key. */
static char *dedup_key(const char *source, const char *id)
{
  char hex[DUB_CRYPTO_SHA256_HEX_LEN];
  char *both = dub_xasprintf("%s\n%s", source, id);
  dub_crypto_sha256_hex(both, strlen(both), hex);
  free(both);
  return dub_xasprintf("duban:intake:event:%s", hex);
}

/* Prefixes every error pointer with 'prefix' (the validator reports pointers relative
 * to the instance it was given). */
static void prefix_pointers(json_t *errors, const char *prefix)
{
  size_t i;
  json_t *e;
  json_array_foreach(errors, i, e)
  {
    char *p = dub_xasprintf("%s%s", prefix,
                            dub_json_str(e, "pointer") ? dub_json_str(e, "pointer") : "");
    json_object_set_new(e, "pointer", json_string(p));
    free(p);
  }
}

static json_t *one_detail(const char *pointer, const char *message)
{
  return json_pack("[{s:s, s:s}]", "pointer", pointer, "message", message);
}

/* Replaces data.reporter by reporter_sealed (authenticated encryption bound to the case
 * id) and anonymous. The clear identity exists only in this request's memory. */
static enum dub_err seal_reporter(struct intake *in, json_t *data, const char *case_id)
{
  json_t *reporter = json_object_get(data, "reporter");
  bool anonymous = !reporter || dub_json_bool(reporter, "anonymous", false);
  enum dub_err rc = DUB_OK;
  if(!anonymous) {
    json_t *identity = json_deep_copy(reporter);
    json_object_del(identity, "anonymous");
    char *clear = dub_json_dump(identity);
    char *token = NULL;
    rc = dub_crypto_seal(in->keys, clear, strlen(clear), case_id, &token);
    OPENSSL_cleanse(clear, strlen(clear));
    free(clear);
    json_decref(identity);
    if(!rc)
      json_object_set_new(data, "reporter_sealed", json_string(token));
    free(token);
  }
  json_object_del(data, "reporter");
  json_object_set_new(data, "anonymous", json_boolean(anonymous));
  return rc;
}

/* Builds duban.case.received for a new problem. Returns a new event, or NULL with *err.
 */
static json_t *received_event(struct intake *in, json_t *inbound, const char *case_id,
                              enum dub_err *err)
{
  char now[DUB_TIME_LEN], start[DUB_TIME_LEN];
  int64_t received_ms = dub_time_now_ms(), reported_ms = -1;
  const char *time = dub_json_str(inbound, "time");
  if(time && dub_time_parse(time, &reported_ms, NULL))
    reported_ms = -1;
  int64_t clock_ms =
      reported_ms < 0 || reported_ms > received_ms ? received_ms : reported_ms;
  dub_time_format(received_ms, DUB_SHANGHAI_OFFSET_MIN, now);
  dub_time_format(clock_ms, DUB_SHANGHAI_OFFSET_MIN, start);

  json_t *data = json_deep_copy(json_object_get(inbound, "data"));
  *err = seal_reporter(in, data, case_id);
  if(*err) {
    json_decref(data);
    return NULL;
  }
  json_object_set_new(data, "case_id", json_string(case_id));
  json_object_set_new(data, "received_at", json_string(now));
  json_object_set_new(data, "clock_start", json_string(start));
  json_object_set_new(data, "origin",
                      json_pack("{s:O, s:O}", "source",
                                json_object_get(inbound, "source"), "id",
                                json_object_get(inbound, "id")));
  json_t *errors = NULL;
  if(dub_schema_validate(in->received, data, &errors)) {
    char *text = dub_json_dump(errors);
    dub_log_at(DUB_LOG_ERROR, case_id, NULL,
               "received event does not match its schema: %s", text);
    free(text);
    json_decref(errors);
    json_decref(data);
    *err = DUB_ERR_INTERNAL;
    return NULL;
  }
  char *id = dub_xasprintf("%s.received", case_id);
  json_t *event = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "specversion",
                            "1.0", "id", id, "source", in->conf.source, "type",
                            "duban.case.received", "subject", case_id, "time", now,
                            "datacontenttype", "application/json", "data", data);
  free(id);
  json_t *trace = json_object_get(inbound, "traceparent");
  if(trace)
    json_object_set(event, "traceparent", trace);
  return event;
}

/* Runs on the producer's poll thread once Kafka answered. */
static void delivered(void *opaque, enum dub_err err, int32_t partition, int64_t offset)
{
  struct inflight *f = opaque;
  struct dub_cache *cache = dub_runtime_cache(f->in->rt);
  (void)partition;
  (void)offset;
  if(err) {
    dub_log_at(DUB_LOG_WARN, f->case_id, NULL, "kafka did not acknowledge event: %s",
               dub_err_code(err));
    count(f->in, f->client, f->type, "unavailable");
    dub_http_pending_error(f->pending, DUB_ERR_UNAVAILABLE,
                           "kafka did not acknowledge the event; retry", NULL);
    inflight_free(f);
    return;
  }
  /* Kafka holds the event now: the answer is 202 whatever Redis says. */
  const char *set_dedup[] = {"SET", f->dedup_key, f->case_id, "EX", DEDUP_TTL};
  if(dub_cache_command(cache, NULL, 5, set_dedup, NULL))
    dub_log_at(DUB_LOG_WARN, f->case_id, NULL,
               "could not record event for deduplication");
  if(f->case_key) {
    const char *set_case[] = {"SET", f->case_key, "1"};
    if(dub_cache_command(cache, NULL, 3, set_case, NULL))
      dub_log_at(DUB_LOG_WARN, f->case_id, NULL, "could not record the new case");
  }
  dub_log_at(DUB_LOG_INFO, f->case_id, NULL, "accepted %s from %s", f->type, f->client);
  count(f->in, f->client, f->type, "accepted");
  dub_http_pending_json(f->pending, 202,
                        json_pack("{s:s, s:s, s:s}", "id", f->event_id, "case_id",
                                  f->case_id, "status", "accepted"));
  inflight_free(f);
}

/* GET on a Redis key: DUB_OK with *value (new string) or NULL when absent. */
static enum dub_err lookup(struct intake *in, const char *key, char **value)
{
  struct dub_cache_reply *reply = NULL;
  const char *argv[] = {"GET", key};
  *value = NULL;
  enum dub_err rc = dub_cache_command(dub_runtime_cache(in->rt), &reply, 2, argv, NULL);
  if(!rc && reply->type == DUB_CACHE_STRING)
    *value = dub_xstrndup(reply->str, reply->len);
  dub_cache_reply_free(reply);
  return rc == DUB_ERR_INTERNAL ? DUB_ERR_UNAVAILABLE : rc;
}

static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  struct intake *in = dub_runtime_service(ctx);
  const char *client = dub_auth_client_id(dub_http_request_client(req));
  json_t *event = NULL, *errors = NULL, *out = NULL;
  char *why = NULL, *key = NULL, *known = NULL;
  char case_id[INTAKE_CASEID_LEN + 1];
  enum dub_err rc;
  const char *type = NULL;
  size_t len;
  const char *body = dub_http_request_body(req, &len);

  rc = dub_json_parse(body, len, &event, &why);
  if(rc) {
    dub_http_reply_error(reply, rc, why, NULL);
    goto out;
  }
  rc = dub_schema_validate(in->envelope, event, &errors);
  if(rc) {
    dub_http_reply_error(reply, rc, "the event envelope does not match the schema",
                         errors);
    errors = NULL;
    goto out;
  }
  type = dub_json_str(event, "type");
  const char *source = dub_json_str(event, "source");
  const char *id = dub_json_str(event, "id");
  if(!dub_auth_client_may_use_source(dub_http_request_client(req), source)) {
    why = dub_xasprintf("client '%s' may not publish events of source '%s'", client,
                        source);
    rc = DUB_ERR_FORBIDDEN;
    dub_http_reply_error(reply, rc, why, NULL);
    goto out;
  }
  const struct intake_type *t = intake_type_find(in, type);
  if(!t) {
    rc = DUB_ERR_SCHEMA;
    dub_http_reply_error(reply, rc, "unknown event type",
                         one_detail("/type", "is not an inbound event type of duban"));
    goto out;
  }
  rc = dub_schema_validate(t->data,
                           json_object_get(event, "data") ? json_object_get(event, "data")
                                                          : json_null(),
                           &errors);
  if(rc) {
    prefix_pointers(errors, "/data");
    dub_http_reply_error(reply, rc, "the event data does not match the schema", errors);
    errors = NULL;
    goto out;
  }

  key = dedup_key(source, id);
  rc = lookup(in, key, &known);
  if(rc) {
    dub_http_reply_error(reply, rc, "redis is not reachable; retry", NULL);
    goto out;
  }
  if(known) {
    count(in, client, type, "duplicate");
    dub_http_reply_json(
        reply, 200,
        json_pack("{s:s, s:s, s:s}", "id", id, "case_id", known, "status", "duplicate"));
    goto out;
  }

  struct inflight *f = dub_xcalloc(1, sizeof *f);
  f->in = in;
  f->event_id = dub_xstrdup(id);
  f->client = dub_xstrdup(client);
  f->type = dub_xstrdup(type);
  f->dedup_key = key;
  key = NULL;
  if(strcmp(type, REPORTED_TYPE) == 0) {
    rc = intake_caseid_new(dub_time_now_ms(), case_id);
    if(!rc)
      out = received_event(in, event, case_id, &rc);
    f->case_key = dub_xasprintf("duban:intake:case:{%s}", case_id);
  } else {
    /* An action must name a case intake has seen. */
    const char *named = dub_json_str(json_object_get(event, "data"), "case_id");
    snprintf(case_id, sizeof case_id, "%s", named);
    char *case_key = dub_xasprintf("duban:intake:case:{%s}", named);
    rc = lookup(in, case_key, &known);
    free(case_key);
    if(!rc && !known) {
      rc = DUB_ERR_NOT_FOUND;
      why = dub_xasprintf("case '%s' does not exist", named);
    }
    out = json_incref(event);
  }
  if(rc) {
    dub_http_reply_error(reply, rc, why, NULL);
    inflight_free(f);
    goto out;
  }
  f->case_id = dub_xstrdup(case_id);
  f->pending = dub_http_reply_defer(reply);
  rc = dub_ce_produce(dub_runtime_producer(in->rt), CASES_TOPIC, case_id, out, delivered,
                      f);
  if(rc) {
    dub_http_pending_error(f->pending, rc == DUB_ERR_MALFORMED ? DUB_ERR_INTERNAL : rc,
                           "the event could not be queued for kafka; retry", NULL);
    inflight_free(f);
  }
  rc = DUB_OK;
out:
  if(rc && rc != DUB_ERR_UNAVAILABLE)
    count(in, client, type, dub_err_code(rc));
  json_decref(out);
  json_decref(errors);
  json_decref(event);
  free(known);
  free(key);
  free(why);
  return DUB_OK;
}

static const char *const media[] = {"application/cloudevents+json", "application/json",
                                    NULL};

const struct dub_http_route intake_route_post_events = {
    .method = "POST",
    .pattern = "/v1/events",
    .scope = "events:write",
    .media = media,
    .max_body = 0,
    .handler = handle,
};
