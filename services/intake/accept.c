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
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define CASES_TOPIC "duban.cases"
#define REPORTED_TYPE "duban.problem.reported"
/* How long intake remembers an accepted event, a rejected one, and a claim on one that
 * is being written (a claim outlives any Kafka delivery timeout). */
#define ACCEPTED_TTL "7776000" /* 90 days */
#define REJECTED_TTL "86400"
#define CLAIM_TTL_MS "10000"

/* One event from its checks to Kafka's answer. */
struct job {
  struct job *next; /* in the claimer's queue */
  json_t *event;    /* the claimer's own copy, shared with no other thread */
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
  if(!j)
    return;
  json_decref(j->event);
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

/* Counts one outcome. The type label is the event's type only when it is one of
 * Duban's inbound types, else "other": a publisher, or anyone who can write to
 * duban.inbound, must not be able to make a new series with every string it sends
 * (series live as long as the process). */
static void count(struct intake *in, const char *client, const char *type,
                  const char *status)
{
  char *c = dub_metrics_label_escape(client ? client : "");
  char *t = dub_metrics_label_escape(type && intake_type_find(in, type) ? type : "other");
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
 * accepted event stays accepted). Through the recorder (review C9): an HTTP thread
 * never waits for Redis, also not for a batch of 500 invalid events. */
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
  intake_recorder_add_if_absent(in, key, text, REJECTED_TTL);
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

  /* The inbound event is this request's own: its data is sealed in place, not copied. */
  json_t *data = json_incref(json_object_get(inbound, "data"));
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

/* The parts of one event's claim in a pipeline: where its replies are. */
struct claim_slot {
  struct job *job;
  size_t case_reply;  /* GET of the named case (actions), or SIZE_MAX */
  size_t claim_reply; /* SET key pending NX */
  bool claimed;
};

static bool json_status(const struct dub_cache_reply *reply, const char *want,
                        char *case_id, size_t case_id_len)
{
  json_t *rec = NULL;
  char *why = NULL;
  bool match = false;
  if(reply->type == DUB_CACHE_STRING &&
     dub_json_parse(reply->str, reply->len, &rec, &why) == DUB_OK) {
    const char *status = dub_json_str(rec, "status");
    const char *first = dub_json_str(rec, "case_id");
    match = status && strcmp(status, want) == 0 && first;
    if(match && case_id)
      snprintf(case_id, case_id_len, "%s", first);
  }
  free(why);
  json_decref(rec);
  return match;
}

static void reject_all(struct claim_slot *slots, size_t n, struct intake_result *results,
                       enum dub_err err, const char *message)
{
  for(size_t i = 0; i < n; i++)
    if(slots[i].job && !results[i].err && !results[i].duplicate)
      reject(&results[i], err, dub_xstrdup(message), NULL);
}

/* Claims the keys of 'n' events for this writer in as few round trips as there are
 * outcomes to tell apart (one when every claim is new). For each slot: claimed, or
 * results[i] says why not: a duplicate (with the first case id), 404 for an action on
 * an unknown case, 409 while another writer holds the claim, or 503 when Redis does not
 * answer or the deduplication index is incomplete. */
static void claim_many(struct intake *in, struct claim_slot *slots, size_t n,
                       struct intake_result *results)
{
  struct dub_cache *cache = dub_runtime_cache(in->rt);
  struct dub_cache_pipeline *p = dub_cache_pipeline_new(), *p2 = NULL, *p3 = NULL;
  struct dub_cache_reply **replies = NULL, **replies2 = NULL;
  size_t nreplies = 0, *second = dub_xcalloc(n, sizeof *second), jobs = 0;
  for(size_t i = 0; i < n; i++)
    jobs += slots[i].job != NULL;
  if(!jobs)
    goto out; /* all rejected already: nothing to claim */
  if(!intake_index_ready(in)) {
    reject_all(slots, n, results, DUB_ERR_UNAVAILABLE,
               "rebuilding the deduplication index from duban.cases; retry");
    goto out;
  }
  /* The index key with the claims: if Redis lost the index since it was last looked
   * at, a duplicate could pass its claim unseen. */
  dub_cache_pipeline_addf(p, "EXISTS %s", INTAKE_INDEX_KEY);
  for(size_t i = 0; i < n; i++) {
    struct job *j = slots[i].job;
    slots[i].case_reply = SIZE_MAX;
    if(!j)
      continue;
    char *pending =
        dub_xasprintf("{\"status\":\"pending\",\"case_id\":\"%s\"}", j->case_id);
    if(!j->case_key) {
      char *named = dub_xasprintf("duban:intake:case:{%s}", j->case_id);
      slots[i].case_reply = dub_cache_pipeline_count(p);
      dub_cache_pipeline_addf(p, "GET %s", named);
      free(named);
    }
    slots[i].claim_reply = dub_cache_pipeline_count(p);
    dub_cache_pipeline_addf(p, "SET %s %s NX PX %s", j->key, pending, CLAIM_TTL_MS);
    if(j->case_key)
      /* A new case is known before its 202: the publisher learns its id only from that
       * answer and may act on it at once. Until the recorder makes it lasting after
       * Kafka's acknowledgement the mark expires, so a duplicate or a failed write
       * leaves no lasting trace. */
      dub_cache_pipeline_addf(p, "SET %s 1 PX %s", j->case_key, CLAIM_TTL_MS);
    free(pending);
  }
  nreplies = dub_cache_pipeline_count(p);
  if(dub_cache_pipeline_exec(cache, p, &replies)) {
    reject_all(slots, n, results, DUB_ERR_UNAVAILABLE, "redis is not reachable; retry");
    goto out;
  }
  bool index_ok = replies[0]->type == DUB_CACHE_INT && replies[0]->integer == 1;
  p2 = dub_cache_pipeline_new(); /* GETs of keys claimed by someone else */
  p3 = dub_cache_pipeline_new(); /* claims to release or take over */
  for(size_t i = 0; i < n; i++) {
    struct job *j = slots[i].job;
    if(!j)
      continue;
    slots[i].claimed = replies[slots[i].claim_reply]->type == DUB_CACHE_STATUS;
    bool unknown_case = slots[i].case_reply != SIZE_MAX &&
                        replies[slots[i].case_reply]->type != DUB_CACHE_STRING;
    if(!index_ok || unknown_case) {
      if(slots[i].claimed)
        dub_cache_pipeline_addf(p3, "DEL %s", j->key);
      slots[i].claimed = false;
      if(!index_ok)
        reject(&results[i], DUB_ERR_UNAVAILABLE,
               dub_xstrdup("rebuilding the deduplication index from duban.cases; retry"),
               NULL);
      else
        reject(&results[i], DUB_ERR_NOT_FOUND,
               dub_xasprintf("case '%s' does not exist", j->case_id),
               one_detail("/data/case_id", "names no case"));
    } else if(!slots[i].claimed) {
      second[i] = dub_cache_pipeline_count(p2) + 1;
      dub_cache_pipeline_addf(p2, "GET %s", j->key);
    }
  }
  if(!index_ok)
    intake_index_rebuild(in);
  if(dub_cache_pipeline_count(p2) && dub_cache_pipeline_exec(cache, p2, &replies2)) {
    for(size_t i = 0; i < n; i++)
      if(second[i])
        reject(&results[i], DUB_ERR_UNAVAILABLE,
               dub_xstrdup("redis is not reachable; retry"), NULL);
    goto release;
  }
  for(size_t i = 0; i < n; i++) {
    struct job *j = slots[i].job;
    if(!second[i])
      continue;
    const struct dub_cache_reply *got = replies2[second[i] - 1];
    if(json_status(got, "accepted", results[i].case_id, sizeof results[i].case_id)) {
      results[i].duplicate = true;
    } else if(json_status(got, "pending", NULL, 0)) {
      reject(&results[i], DUB_ERR_CONFLICT,
             dub_xstrdup("the same event is being accepted right now; retry in a moment"),
             NULL);
    } else {
      /* Gone meanwhile, or an earlier rejection: this writer takes it. */
      char *pending =
          dub_xasprintf("{\"status\":\"pending\",\"case_id\":\"%s\"}", j->case_id);
      dub_cache_pipeline_addf(p3, "SET %s %s PX %s", j->key, pending, CLAIM_TTL_MS);
      free(pending);
      slots[i].claimed = true;
    }
  }
release:
  if(dub_cache_pipeline_count(p3)) {
    struct dub_cache_reply **replies3 = NULL;
    if(dub_cache_pipeline_exec(cache, p3, &replies3)) {
      /* Take-overs may not have happened: give those up. */
      for(size_t i = 0; i < n; i++)
        if(second[i] && slots[i].claimed) {
          slots[i].claimed = false;
          reject(&results[i], DUB_ERR_UNAVAILABLE,
                 dub_xstrdup("redis is not reachable; retry"), NULL);
        }
    } else {
      dub_cache_replies_free(replies3, dub_cache_pipeline_count(p3));
    }
  }
out:
  if(replies)
    dub_cache_replies_free(replies, nreplies);
  if(replies2)
    dub_cache_replies_free(replies2, dub_cache_pipeline_count(p2));
  dub_cache_pipeline_free(p);
  dub_cache_pipeline_free(p2);
  dub_cache_pipeline_free(p3);
  free(second);
}

/* The answer of an event Kafka holds, once its record is in Redis (or Redis failed it):
 * runs on the recorder's thread. */
static void answer_accepted(void *opaque)
{
  struct job *j = opaque;
  struct intake_result r = {0};
  snprintf(r.case_id, sizeof r.case_id, "%s", j->case_id);
  j->done(j->opaque, &r);
  intake_result_release(&r);
  job_free(j);
}

static void answer_unavailable(void *opaque);

/* Runs on the producer's poll thread once Kafka answered. */
static void delivered(void *opaque, enum dub_err err, int32_t partition, int64_t offset)
{
  struct job *j = opaque;
  struct intake *in = j->in;
  (void)partition;
  (void)offset;
  dub_metrics_histogram_observe(dub_runtime_metrics(in->rt),
                                "duban_intake_kafka_delivery_seconds",
                                "Time from produce to Kafka's acknowledgement.", NULL,
                                (double)(dub_time_mono_ms() - j->started_ms) / 1000.0);
  count(in, j->client, j->type, err ? "unavailable" : "accepted");
  if(!err) {
    /* Kafka holds the event now: accepted, whatever Redis says next. The answer waits
     * for the recorder's write (pipelined with others), so that GET /v1/events/... on
     * any replica says accepted once the publisher has its 202; if that write fails,
     * the answer goes anyway and the index catches up from duban.cases. */
    char now[DUB_TIME_LEN];
    dub_time_format(dub_time_now_ms(), DUB_SHANGHAI_OFFSET_MIN, now);
    char *rec = dub_xasprintf(
        "{\"status\":\"accepted\",\"case_id\":\"%s\",\"time\":\"%s\"}", j->case_id, now);
    intake_recorder_add(in, j->key, rec, ACCEPTED_TTL, j->case_key, answer_accepted, j);
    free(rec);
    return;
  }
  dub_log_at(DUB_LOG_WARN, j->case_id, NULL, "kafka did not acknowledge event: %s",
             dub_err_code(err));
  /* Not written: free the claim so that the publisher's retry is taken, through the
   * recorder (this is librdkafka's poll thread, which a Redis round trip would hold up
   * for every other delivery report); the 503 goes once the claim is gone. After a
   * timeout the write may still land (a frozen broker catching up): the claim then
   * stays until it expires, and the index marks the event accepted if it does land. */
  if(err != DUB_ERR_TIMEOUT) {
    intake_recorder_add(in, j->key, NULL, NULL, NULL, answer_unavailable, j);
    return;
  }
  answer_unavailable(j);
}

/* The 503 of an event Kafka did not take: runs on the recorder's thread, or on the
 * producer's poll thread after a timeout. */
static void answer_unavailable(void *opaque)
{
  struct job *j = opaque;
  struct intake_result r = {0};
  snprintf(r.case_id, sizeof r.case_id, "%s", j->case_id);
  reject(&r, DUB_ERR_UNAVAILABLE,
         dub_xstrdup("kafka did not acknowledge the event; retry"), NULL);
  j->done(j->opaque, &r);
  intake_result_release(&r);
  job_free(j);
}

/* Checks one event and makes its job; NULL with *r set when it is rejected. */
static struct job *prepare(struct intake *in, const json_t *event,
                           const struct dub_auth_client *client, const char *client_id,
                           intake_done_fn done, void *opaque, struct intake_result *r)
{
  json_t *errors = NULL;
  const char *type = dub_json_str(event, "type");
  if(dub_schema_validate(in->envelope, event, &errors)) {
    reject(r, DUB_ERR_SCHEMA, dub_xstrdup("the event envelope does not match the schema"),
           errors);
    return NULL;
  }
  const char *source = dub_json_str(event, "source");
  if(!source_allowed(in, client, source)) {
    reject(r, DUB_ERR_FORBIDDEN,
           dub_xasprintf("client '%s' may not publish events of source '%s'",
                         client_id ? client_id : "(kafka)", source),
           NULL);
    return NULL;
  }
  const struct intake_type *t = intake_type_find(in, type);
  if(!t) {
    reject(r, DUB_ERR_SCHEMA, dub_xstrdup("unknown event type"),
           one_detail("/type", "is not an inbound event type of duban"));
    return NULL;
  }
  json_t *data = json_object_get(event, "data");
  if(dub_schema_validate(t->data, data ? data : json_null(), &errors)) {
    prefix_pointers(errors, "/data");
    reject(r, DUB_ERR_SCHEMA, dub_xstrdup("the event data does not match the schema"),
           errors);
    return NULL;
  }
  struct job *j = dub_xcalloc(1, sizeof *j);
  j->in = in;
  j->done = done;
  j->opaque = opaque;
  j->client = dub_xstrdup(client_id ? client_id : "kafka");
  j->type = dub_xstrdup(type);
  j->key = intake_event_key(source, dub_json_str(event, "id"));
  if(strcmp(type, REPORTED_TYPE) == 0) {
    /* The case id comes from the event, so that a retry of it, even one taken after its
     * claim expired, names the same case (review C12j); its time part is the event's
     * "time" when it has one, as a retry has the same. */
    int64_t ms = 0;
    const char *when = dub_json_str(event, "time");
    if(!when || dub_time_parse(when, &ms, NULL) || ms < 0)
      ms = dub_time_now_ms();
    if(intake_caseid_derive(in->keys, ms, source, dub_json_str(event, "id"),
                            j->case_id)) {
      reject(r, DUB_ERR_INTERNAL, dub_xstrdup("no key to derive a case id"), NULL);
      job_free(j);
      return NULL;
    }
    j->case_key = dub_xasprintf("duban:intake:case:{%s}", j->case_id);
  } else {
    /* An action must name a case intake has accepted; claim_many() checks it. */
    snprintf(j->case_id, sizeof j->case_id, "%s", dub_json_str(data, "case_id"));
  }
  return j;
}

/* Writes one claimed event to duban.cases; false with *r set when it cannot. */
static bool produce(struct intake *in, json_t *event, struct job *j,
                    struct intake_result *r)
{
  enum dub_err err = DUB_OK;
  json_t *out =
      j->case_key ? received_event(in, event, j->case_id, &err) : json_incref(event);
  if(err) {
    reject(r, err, NULL, NULL);
    return false;
  }
  /* The publisher's dedup key rides along as headers, so that the index reads it
   * without parsing the event (index.c). */
  const char *source = dub_json_str(event, "source"), *id = dub_json_str(event, "id");
  const struct dub_kafka_header origin[] = {
      {INTAKE_ORIGIN_SOURCE_HEADER, source, strlen(source)},
      {INTAKE_ORIGIN_ID_HEADER, id, strlen(id)},
  };
  j->started_ms = dub_time_mono_ms();
  err = dub_ce_produce_with(dub_runtime_producer(in->rt), CASES_TOPIC, j->case_id, out,
                            origin, 2, delivered, j);
  json_decref(out);
  if(err) {
    reject(r, err == DUB_ERR_MALFORMED ? DUB_ERR_INTERNAL : DUB_ERR_UNAVAILABLE,
           dub_xstrdup("the event could not be queued for kafka; retry"), NULL);
    return false;
  }
  return true; /* delivered() settles it */
}

/* The claimer: one thread takes every event waiting for its claim, claims them all in
 * one pipeline and writes them to Kafka, so that concurrent requests share their Redis
 * round trips (group commit) and no HTTP thread waits for Redis. */
struct intake_claimer {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct job *head, *tail;
  bool stop;
  bool stopped; /* no more jobs are taken */
};

#define CLAIM_BATCH 1000

/* Claims and writes 'n' queued jobs; settles those that are not written. */
static void claim_and_produce(struct intake *in, struct job **jobs, size_t n)
{
  struct intake_result *results = dub_xcalloc(n, sizeof *results);
  struct claim_slot *slots = dub_xcalloc(n, sizeof *slots);
  for(size_t i = 0; i < n; i++)
    slots[i].job = jobs[i];
  claim_many(in, slots, n, results);
  for(size_t i = 0; i < n; i++) {
    struct job *j = jobs[i];
    json_t *event = json_incref(j->event);
    if(slots[i].claimed) {
      json_decref(j->event);
      j->event = NULL; /* delivered() frees the job without it */
      if(produce(in, event, j, &results[i])) {
        json_decref(event);
        continue;
      }
      const char *del[] = {"DEL", j->key};
      dub_cache_command(dub_runtime_cache(in->rt), NULL, 2, del, NULL);
    }
    struct intake_result *r = &results[i];
    if(r->err && r->err != DUB_ERR_UNAVAILABLE && r->err != DUB_ERR_CONFLICT)
      record_rejection(in, event, r);
    settle(in, j->client, j->type, r, j->done, j->opaque);
    json_decref(event);
    job_free(j);
  }
  free(slots);
  free(results);
}

static void *claimer_main(void *arg)
{
  struct intake *in = arg;
  struct intake_claimer *c = in->claimer;
  struct job **jobs = dub_xcalloc(CLAIM_BATCH, sizeof *jobs);
  pthread_mutex_lock(&c->lock);
  for(;;) {
    while(!c->head && !c->stop)
      pthread_cond_wait(&c->cond, &c->lock);
    if(!c->head) {
      c->stopped = true;
      break;
    }
    size_t n = 0;
    while(c->head && n < CLAIM_BATCH) {
      jobs[n++] = c->head;
      c->head = c->head->next;
    }
    if(!c->head)
      c->tail = NULL;
    pthread_mutex_unlock(&c->lock);
    claim_and_produce(in, jobs, n);
    pthread_mutex_lock(&c->lock);
  }
  pthread_mutex_unlock(&c->lock);
  free(jobs);
  return NULL;
}

void intake_claimer_start(struct intake *in)
{
  struct intake_claimer *c = dub_xcalloc(1, sizeof *c);
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->cond, NULL);
  in->claimer = c;
  dub_xthread_create(&c->thread, claimer_main, in, "claimer");
}

void intake_claimer_stop(struct intake *in)
{
  struct intake_claimer *c = in->claimer;
  if(!c)
    return;
  pthread_mutex_lock(&c->lock);
  c->stop = true;
  pthread_cond_signal(&c->cond);
  pthread_mutex_unlock(&c->lock);
  pthread_join(c->thread, NULL); /* what was queued is claimed and written first */
}

void intake_claimer_free(struct intake *in)
{
  struct intake_claimer *c = in->claimer;
  if(!c)
    return;
  pthread_cond_destroy(&c->cond);
  pthread_mutex_destroy(&c->lock);
  free(c);
  in->claimer = NULL;
}

void intake_accept_many(struct intake *in, json_t *const *events, size_t n,
                        const struct dub_auth_client *client, const char *client_id,
                        intake_done_fn done, void *const *opaques)
{
  struct intake_claimer *c = in->claimer;
  const char *who = client_id ? client_id : "kafka";
  struct job *first = NULL, *last = NULL;
  for(size_t i = 0; i < n; i++) {
    struct intake_result r = {0};
    struct job *j = prepare(in, events[i], client, client_id, done, opaques[i], &r);
    if(!j) {
      record_rejection(in, events[i], &r);
      settle(in, who, dub_json_str(events[i], "type"), &r, done, opaques[i]);
      continue;
    }
    /* A copy, not a reference: Jansson's json_decref releases without acquiring, so
     * when two threads hold references to one value, the one whose decref frees it is
     * not ordered after the other's reads (a data race under the C11 memory model that
     * weakly ordered CPUs can act on, and that ThreadSanitizer reports). The caller
     * keeps its value; the claimer, then Kafka's callback, own this one alone. */
    j->event = json_deep_copy(events[i]);
    if(!j->event) {
      reject(&r, DUB_ERR_INTERNAL, dub_xstrdup("out of memory copying the event"), NULL);
      settle(in, who, j->type, &r, done, opaques[i]);
      job_free(j);
      continue;
    }
    if(last)
      last->next = j;
    else
      first = j;
    last = j;
  }
  if(!first)
    return;
  pthread_mutex_lock(&c->lock);
  bool taken = !c->stopped && !c->stop;
  if(taken) {
    if(c->tail)
      c->tail->next = first;
    else
      c->head = first;
    c->tail = last;
    pthread_cond_signal(&c->cond);
  }
  pthread_mutex_unlock(&c->lock);
  while(!taken && first) {
    /* Stopping: nothing new is written. */
    struct job *j = first;
    struct intake_result r = {0};
    first = j->next;
    reject(&r, DUB_ERR_UNAVAILABLE, dub_xstrdup("intake is stopping; retry"), NULL);
    settle(in, j->client, j->type, &r, j->done, j->opaque);
    job_free(j);
  }
}

void intake_accept(struct intake *in, json_t *event, const struct dub_auth_client *client,
                   const char *client_id, intake_done_fn done, void *opaque)
{
  json_t *const events[] = {event};
  void *const opaques[] = {opaque};
  intake_accept_many(in, events, 1, client, client_id, done, opaques);
}
