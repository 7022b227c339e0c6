/* accept.c - one inbound event from validation to its acknowledged write on duban.cases.
 */
#include "accept.h"
#include "caseid.h"
#include "intake.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "crypto/crypto.h"
#include "http/auth.h"
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
/* How long intake remembers an accepted event, a rejected one, and a claim on one that
 * is being written (a claim outlives any Kafka delivery timeout). */
#define ACCEPTED_TTL "7776000" /* 90 days */
#define REJECTED_TTL "86400"
#define CLAIM_TTL_MS "10000"

/* One event between its claim and Kafka's answer. */
struct job {
  struct intake *in;
  intake_done_fn done;
  void *opaque;
  char *key;      /* intake_event_key() */
  char *case_key; /* set for a new case */
  char *client;
  char *type;
  char case_id[72];
  int64_t started_ms;
};

static void job_free(struct job *j)
{
  free(j->key);
  free(j->case_key);
  free(j->client);
  free(j->type);
  free(j);
}

void intake_result_release(struct intake_result *result)
{
  free(result->message);
  json_decref(result->details);
  result->message = NULL;
  result->details = NULL;
}

json_t *intake_result_json(struct intake_result *result, const char *event_id)
{
  json_t *out;
  if(result->err) {
    out = dub_http_error_body(result->err, result->message, result->details);
    result->details = NULL;
  } else {
    out = json_pack("{s:s?, s:s, s:s}", "id", event_id, "case_id", result->case_id,
                    "status", result->duplicate ? "duplicate" : "accepted");
  }
  intake_result_release(result);
  return out;
}

char *intake_event_key(const char *source, const char *id)
{
  char hex[DUB_CRYPTO_SHA256_HEX_LEN];
  char *both = dub_xasprintf("%s\n%s", source, id);
  dub_crypto_sha256_hex(both, strlen(both), hex);
  free(both);
  return dub_xasprintf("duban:intake:event:%s", hex);
}

static void count(struct intake *in, const char *client, const char *type,
                  const char *status)
{
  char *c = dub_metrics_label_escape(client ? client : "");
  char *t = dub_metrics_label_escape(type ? type : "");
  char *labels = dub_xasprintf("client=\"%s\",type=\"%s\",status=\"%s\"", c, t, status);
  dub_metrics_counter_add(
      dub_runtime_metrics(in->rt), "duban_intake_events_total",
      "Inbound events by client, type and outcome (accepted, duplicate "
      "or the error code).",
      labels, 1);
  free(labels);
  free(t);
  free(c);
}

/* Settles an event without Kafka: counts it and tells 'done'. */
static void settle(struct intake *in, const char *client, const char *type,
                   struct intake_result *r, intake_done_fn done, void *opaque)
{
  count(in, client, type, r->err ? dub_err_code(r->err) : "duplicate");
  done(opaque, r);
  intake_result_release(r);
}

static void reject(struct intake_result *r, enum dub_err err, char *message,
                   json_t *details)
{
  r->err = err;
  r->message = message;
  r->details = details;
}

static json_t *one_detail(const char *pointer, const char *message)
{
  return json_pack("[{s:s, s:s}]", "pointer", pointer, "message", message);
}

static void prefix_pointers(json_t *errors, const char *prefix)
{
  size_t i;
  json_t *e;
  json_array_foreach(errors, i, e)
  {
    const char *p = dub_json_str(e, "pointer");
    char *full = dub_xasprintf("%s%s", prefix, p ? p : "");
    json_object_set_new(e, "pointer", json_string(full));
    free(full);
  }
}

/* A source may be used by an HTTP client that lists it, and on duban.inbound by any
 * client of clients.json that lists it. */
static bool source_allowed(struct intake *in, const struct dub_auth_client *client,
                           const char *source)
{
  if(client)
    return dub_auth_client_may_use_source(client, source);
  struct dub_config *config = dub_runtime_config(in->rt);
  bool ok = false;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(config->clients, "clients"), i, c)
  {
    if(dub_json_array_has_str(json_object_get(c, "sources"), source))
      ok = true;
  }
  dub_config_unref(config);
  return ok;
}

/* Remembers a rejection for GET /v1/events, unless the key holds something already (an
 * accepted event stays accepted). */
static void record_rejection(struct intake *in, const json_t *event,
                             const struct intake_result *r)
{
  const char *source = dub_json_str(event, "source"), *id = dub_json_str(event, "id");
  if(!source || !id)
    return;
  char *key = intake_event_key(source, id);
  json_t *rec = json_pack("{s:s, s:{s:s, s:s}}", "status", "rejected", "error", "code",
                          dub_err_code(r->err), "message",
                          r->message ? r->message : dub_err_message(r->err));
  char *text = dub_json_dump(rec);
  const char *argv[] = {"SET", key, text, "NX", "EX", REJECTED_TTL};
  dub_cache_command(dub_runtime_cache(in->rt), NULL, 6, argv, NULL);
  free(text);
  json_decref(rec);
  free(key);
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
static json_t *received_event(struct intake *in, const json_t *inbound,
                              const char *case_id, enum dub_err *err)
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

/* Redis GET as a new string, NULL when absent. Any failure is DUB_ERR_UNAVAILABLE. */
static enum dub_err lookup(struct intake *in, const char *key, char **value)
{
  struct dub_cache_reply *reply = NULL;
  const char *argv[] = {"GET", key};
  *value = NULL;
  enum dub_err rc = dub_cache_command(dub_runtime_cache(in->rt), &reply, 2, argv, NULL);
  if(!rc && reply->type == DUB_CACHE_STRING)
    *value = dub_xstrndup(reply->str, reply->len);
  dub_cache_reply_free(reply);
  return rc ? DUB_ERR_UNAVAILABLE : DUB_OK;
}

/* Claims the event's key for this writer. DUB_OK when claimed; otherwise *r says why
 * not: a duplicate (with the first case id), 409 while another writer holds the claim,
 * or 503 when Redis does not answer or the deduplication index is incomplete. */
static enum dub_err claim(struct intake *in, const char *key, const char *case_id,
                          const char *case_key, struct intake_result *r)
{
  struct dub_cache *cache = dub_runtime_cache(in->rt);
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  char *pending = dub_xasprintf("{\"status\":\"pending\",\"case_id\":\"%s\"}", case_id);
  char *known = NULL, *why = NULL;
  json_t *rec = NULL;
  enum dub_err rc = DUB_ERR_UNAVAILABLE;
  if(!intake_index_ready(in)) {
    reject(r, DUB_ERR_UNAVAILABLE,
           dub_xstrdup("rebuilding the deduplication index from duban.cases; retry"),
           NULL);
    goto out;
  }
  /* The index key and the claim in one round trip: if Redis lost the index since it was
   * last looked at, a duplicate could pass the claim unseen. */
  const char *exists[] = {"EXISTS", INTAKE_INDEX_KEY};
  const char *set[] = {"SET", key, pending, "NX", "PX", CLAIM_TTL_MS};
  dub_cache_pipeline_add(p, 2, exists, NULL);
  dub_cache_pipeline_add(p, 6, set, NULL);
  if(case_key) {
    /* A new case is known before its 202: the publisher learns its id only from that
     * answer and may act on it at once. Until the recorder makes it lasting after Kafka's
     * acknowledgement, the mark expires, so a duplicate or a failed write leaves no
     * lasting trace (nobody can name an id that was never answered). */
    const char *mark[] = {"SET", case_key, "1", "PX", CLAIM_TTL_MS};
    dub_cache_pipeline_add(p, 5, mark, NULL);
  }
  if(dub_cache_pipeline_exec(cache, p, &replies))
    goto unavailable;
  bool index_ok = replies[0]->type == DUB_CACHE_INT && replies[0]->integer == 1;
  bool claimed = replies[1]->type == DUB_CACHE_STATUS;
  dub_cache_replies_free(replies, dub_cache_pipeline_count(p));
  if(!index_ok) {
    if(claimed) {
      const char *del[] = {"DEL", key};
      dub_cache_command(cache, NULL, 2, del, NULL);
    }
    intake_index_rebuild(in);
    reject(r, DUB_ERR_UNAVAILABLE,
           dub_xstrdup("rebuilding the deduplication index from duban.cases; retry"),
           NULL);
    goto out;
  }
  if(claimed) {
    rc = DUB_OK;
    goto out;
  }
  if(lookup(in, key, &known))
    goto unavailable;
  if(known && dub_json_parse(known, strlen(known), &rec, &why) == DUB_OK) {
    const char *status = dub_json_str(rec, "status");
    const char *first = dub_json_str(rec, "case_id");
    if(status && strcmp(status, "accepted") == 0 && first) {
      r->duplicate = true;
      snprintf(r->case_id, sizeof r->case_id, "%s", first);
      rc = DUB_ERR_CONFLICT; /* not claimed; r says duplicate */
      goto out;
    }
    if(status && strcmp(status, "pending") == 0) {
      reject(r, DUB_ERR_CONFLICT,
             dub_xstrdup("the same event is being accepted right now; retry in a moment"),
             NULL);
      rc = DUB_ERR_CONFLICT;
      goto out;
    }
  }
  /* Absent again, or an earlier rejection: this writer takes it. */
  const char *take[] = {"SET", key, pending, "PX", CLAIM_TTL_MS};
  if(dub_cache_command(cache, NULL, 5, take, NULL))
    goto unavailable;
  rc = DUB_OK;
  goto out;
unavailable:
  reject(r, DUB_ERR_UNAVAILABLE, dub_xstrdup("redis is not reachable; retry"), NULL);
  rc = DUB_ERR_UNAVAILABLE;
out:
  free(why);
  json_decref(rec);
  free(known);
  dub_cache_pipeline_free(p);
  free(pending);
  return rc;
}

/* Runs on the producer's poll thread once Kafka answered. */
static void delivered(void *opaque, enum dub_err err, int32_t partition, int64_t offset)
{
  struct job *j = opaque;
  struct intake *in = j->in;
  struct dub_cache *cache = dub_runtime_cache(in->rt);
  struct intake_result r = {0};
  (void)partition;
  (void)offset;
  snprintf(r.case_id, sizeof r.case_id, "%s", j->case_id);
  dub_metrics_histogram_observe(dub_runtime_metrics(in->rt),
                                "duban_intake_kafka_delivery_seconds",
                                "Time from produce to Kafka's acknowledgement.", NULL,
                                (double)(dub_time_mono_ms() - j->started_ms) / 1000.0);
  if(err) {
    /* Not written: free the claim so that the publisher's retry is taken. After a
     * timeout the write may still land (a frozen broker catching up): the claim then
     * stays until it expires, and the index marks the event accepted if it does land. */
    if(err != DUB_ERR_TIMEOUT) {
      const char *del[] = {"DEL", j->key};
      dub_cache_command(cache, NULL, 2, del, NULL);
    }
    dub_log_at(DUB_LOG_WARN, j->case_id, NULL, "kafka did not acknowledge event: %s",
               dub_err_code(err));
    reject(&r, DUB_ERR_UNAVAILABLE,
           dub_xstrdup("kafka did not acknowledge the event; retry"), NULL);
  } else {
    /* Kafka holds the event now: accepted, whatever Redis says next (the recorder
     * writes the record in the background; the index catches up from duban.cases if
     * that write is lost). */
    char now[DUB_TIME_LEN];
    dub_time_format(dub_time_now_ms(), DUB_SHANGHAI_OFFSET_MIN, now);
    char *rec = dub_xasprintf(
        "{\"status\":\"accepted\",\"case_id\":\"%s\",\"time\":\"%s\"}", j->case_id, now);
    intake_recorder_add(in, j->key, rec, ACCEPTED_TTL, j->case_key);
    free(rec);
  }
  count(in, j->client, j->type, err ? "unavailable" : "accepted");
  j->done(j->opaque, &r);
  intake_result_release(&r);
  job_free(j);
}

void intake_accept(struct intake *in, const json_t *event,
                   const struct dub_auth_client *client, const char *client_id,
                   intake_done_fn done, void *opaque)
{
  struct intake_result r = {0};
  json_t *errors = NULL, *out = NULL;
  const char *type = dub_json_str(event, "type");
  struct job *j = NULL;

  if(dub_schema_validate(in->envelope, event, &errors)) {
    reject(&r, DUB_ERR_SCHEMA,
           dub_xstrdup("the event envelope does not match the schema"), errors);
    goto settle;
  }
  const char *source = dub_json_str(event, "source");
  const char *id = dub_json_str(event, "id");
  if(!source_allowed(in, client, source)) {
    reject(&r, DUB_ERR_FORBIDDEN,
           dub_xasprintf("client '%s' may not publish events of source '%s'",
                         client_id ? client_id : "(kafka)", source),
           NULL);
    goto settle;
  }
  const struct intake_type *t = intake_type_find(in, type);
  if(!t) {
    reject(&r, DUB_ERR_SCHEMA, dub_xstrdup("unknown event type"),
           one_detail("/type", "is not an inbound event type of duban"));
    goto settle;
  }
  json_t *data = json_object_get(event, "data");
  if(dub_schema_validate(t->data, data ? data : json_null(), &errors)) {
    prefix_pointers(errors, "/data");
    reject(&r, DUB_ERR_SCHEMA, dub_xstrdup("the event data does not match the schema"),
           errors);
    goto settle;
  }

  j = dub_xcalloc(1, sizeof *j);
  j->in = in;
  j->done = done;
  j->opaque = opaque;
  j->client = dub_xstrdup(client_id ? client_id : "kafka");
  j->type = dub_xstrdup(type);
  j->key = intake_event_key(source, id);
  bool reported = strcmp(type, REPORTED_TYPE) == 0;
  if(reported) {
    if(intake_caseid_new(dub_time_now_ms(), j->case_id)) {
      reject(&r, DUB_ERR_INTERNAL, dub_xstrdup("no randomness for a case id"), NULL);
      goto settle;
    }
    j->case_key = dub_xasprintf("duban:intake:case:{%s}", j->case_id);
  } else {
    /* An action must name a case intake has accepted. */
    snprintf(j->case_id, sizeof j->case_id, "%s", dub_json_str(data, "case_id"));
    char *case_key = dub_xasprintf("duban:intake:case:{%s}", j->case_id);
    char *known = NULL;
    enum dub_err rc = lookup(in, case_key, &known);
    bool exists = known != NULL;
    free(case_key);
    free(known);
    if(rc) {
      reject(&r, rc, dub_xstrdup("redis is not reachable; retry"), NULL);
      goto settle;
    }
    if(!exists) {
      reject(&r, DUB_ERR_NOT_FOUND, dub_xasprintf("case '%s' does not exist", j->case_id),
             one_detail("/data/case_id", "names no case"));
      goto settle;
    }
  }
  if(claim(in, j->key, j->case_id, j->case_key, &r))
    goto settle; /* duplicate, in flight elsewhere, or Redis down */

  enum dub_err err = DUB_OK;
  out = reported ? received_event(in, event, j->case_id, &err)
                 : json_incref((json_t *)event);
  if(err) {
    reject(&r, err, NULL, NULL);
    goto unclaim;
  }
  j->started_ms = dub_time_mono_ms();
  err = dub_ce_produce(dub_runtime_producer(in->rt), CASES_TOPIC, j->case_id, out,
                       delivered, j);
  json_decref(out);
  if(err) {
    reject(&r, err == DUB_ERR_MALFORMED ? DUB_ERR_INTERNAL : DUB_ERR_UNAVAILABLE,
           dub_xstrdup("the event could not be queued for kafka; retry"), NULL);
    goto unclaim;
  }
  return; /* delivered() settles it */
unclaim : {
  const char *del[] = {"DEL", j->key};
  dub_cache_command(dub_runtime_cache(in->rt), NULL, 2, del, NULL);
}
settle:
  if(r.err && r.err != DUB_ERR_UNAVAILABLE && r.err != DUB_ERR_CONFLICT)
    record_rejection(in, event, &r);
  settle(in, client_id ? client_id : "kafka", type, &r, done, opaque);
  if(j)
    job_free(j);
}
