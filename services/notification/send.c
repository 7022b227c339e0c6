/* send.c - the sender: consumes jobs from duban.notifications (its own thread and
 * consumer group) and sends each exactly once per idempotency key.
 *
 * A key is claimed in Redis before anything is sent (a Lua script: absent -> queued);
 * "sending" is stored before each request. A job seen again while its key is "sending"
 * was interrupted mid-send (crash): it becomes "unknown" and is reconciled after
 * DUBAN_NOTIFY_RECONCILE_S (a delivery report or the outbox file settles it; without
 * either it is sent again), never resent at once. Refusals are retried with exponential
 * backoff and jitter, bounded in count and age, then technical-failure, a duban.dlq
 * record and, for an SMS, its email fallback. Non-urgent SMS wait out quiet hours;
 * beyond the per-recipient limit they are folded into one digest at the end of the
 * window. Retries, held messages and digests wait in the sorted set duban:notify:due,
 * leased while handled. State records on duban.notifications let Redis be rebuilt. */
#include "notification.h"
#include "provider.h"
#include "render.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/time.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "kafka/kafka.h"
#include "runtime/rebuild.h"
#include "runtime/runtime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SENDER_GROUP "duban-notification-sender"
#define SENDER_MARK_KEY "duban:notify:sender"
#define DUE_POLL_MS 200
#define DUE_LEASE_MS 60000
#define DUE_BATCH 100
#define ACK_TIMEOUT_MS 10000
#define BREAKER_MIN_MS 500
#define BREAKER_MAX_MS 15000

/* The attempts the job had when this instance claimed or leased it ("sending" is a
 * compare-and-set against it). */
#define EXPECT_FIELD "expect_attempts"

static void expect_attempts(json_t *job, long long attempts)
{
  json_object_set_new(job, EXPECT_FIELD, json_integer((json_int_t)attempts));
}

/* Leases what is due: pushes each member's score DUE_LEASE_MS ahead, so another
 * instance leaves it alone unless this one dies. */
static const char lease_script[] =
    "local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, "
    "  ARGV[3]) "
    "for _, m in ipairs(items) do "
    "  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), m) end "
    "return items";

struct breaker {
  int64_t open_until; /* monotonic ms; 0 = closed */
  int64_t backoff_ms;
};

struct notification_sender {
  struct notification *n;
  struct dub_kafka_consumer *consumer;
  struct dub_cache *cache;
  struct notification_kannel *kannel;
  struct notification_smtp *smtp;
  pthread_t thread;
  bool started;
  atomic_bool stop;
  atomic_bool ready;
  int64_t due_at; /* monotonic ms of the next look at the due set */
  int64_t mark_checked_at;
  struct breaker breakers[2]; /* sms, email */
  unsigned seed;
  struct dub_metrics_series *latency[3]; /* kannel, smtp, outbox */
  struct notification_acks acks;
};

enum provider_kind { P_KANNEL, P_SMTP, P_OUTBOX };

static bool is_sms(const json_t *job)
{
  return strcmp(dub_json_str(job, "channel"), "sms") == 0;
}

static enum provider_kind provider_of(struct notification_sender *s, const json_t *job)
{
  if(is_sms(job))
    return s->kannel ? P_KANNEL : P_OUTBOX;
  return s->smtp ? P_SMTP : P_OUTBOX;
}

static double random01(struct notification_sender *s)
{
  return (double)rand_r(&s->seed) / ((double)RAND_MAX + 1.0);
}

static char *due_member(const json_t *job)
{
  return dub_xasprintf("m %s %s", dub_json_str(job, "tag"), dub_json_str(job, "key"));
}

/* Runs 'p' and frees it with its replies (for writes whose answers say nothing). */
static enum dub_err exec_free(struct dub_cache *cache, struct dub_cache_pipeline *p)
{
  struct dub_cache_reply **replies = NULL;
  enum dub_err rc = dub_cache_pipeline_exec(cache, p, &replies);
  if(!rc)
    dub_cache_replies_free(replies, dub_cache_pipeline_count(p));
  dub_cache_pipeline_free(p);
  return rc;
}

/* Puts the job in the due set at 'at' (epoch ms) and notes it in its hash. */
static enum dub_err schedule(struct notification_sender *s, const json_t *job, int64_t at)
{
  char at_s[24];
  snprintf(at_s, sizeof at_s, "%lld", (long long)at);
  char *member = due_member(job);
  char *mkey = notification_msg_key(dub_json_str(job, "tag"), dub_json_str(job, "key"));
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  const char *hset[] = {"HSET", mkey, "due", at_s};
  const char *zadd[] = {"ZADD", NOTIFY_DUE_KEY, at_s, member};
  dub_cache_pipeline_add(p, 4, hset, NULL);
  dub_cache_pipeline_add(p, 4, zadd, NULL);
  enum dub_err rc = exec_free(s->cache, p);
  free(member);
  free(mkey);
  return rc;
}

/* Takes the job out of the due set: it is settled. */
static void unschedule(struct notification_sender *s, const json_t *job)
{
  char *member = due_member(job);
  char *mkey = notification_msg_key(dub_json_str(job, "tag"), dub_json_str(job, "key"));
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  const char *zrem[] = {"ZREM", NOTIFY_DUE_KEY, member};
  const char *hdel[] = {"HDEL", mkey, "due"};
  dub_cache_pipeline_add(p, 3, zrem, NULL);
  dub_cache_pipeline_add(p, 3, hdel, NULL);
  exec_free(s->cache, p);
  free(member);
  free(mkey);
}

static json_t *extra_detail(const char *detail, int64_t due)
{
  json_t *extra = json_object();
  if(detail)
    json_object_set_new(extra, "detail", json_string(detail));
  if(due)
    json_object_set_new(extra, "due", json_integer((json_int_t)due));
  return extra;
}

static enum dub_err set_state(struct notification_sender *s, const json_t *job,
                              const char *state, const char *detail, int64_t due)
{
  json_t *extra = extra_detail(detail, due);
  enum dub_err rc =
      notification_state_set(s->n, s->cache, job, state, extra, &s->acks, NULL);
  json_decref(extra);
  return rc;
}

/* technical-failure or permanent-failure: the record, a dead letter with the job, and
 * the email fallback of an SMS. */
static void give_up(struct notification_sender *s, const json_t *job, const char *state,
                    const char *detail)
{
  set_state(s, job, state, detail, 0);
  unschedule(s, job);
  const char *kafka_key = dub_json_str(job, "kafka_key");
  json_t *copy = json_deep_copy(job);
  json_object_del(copy, "fallback");
  json_object_del(copy, EXPECT_FIELD); /* this instance's, not the job's */
  json_object_del(copy, "duplicate_in_batch");
  char *value = dub_json_dump(copy);
  json_decref(copy);
  const struct dub_kafka_msg msg = {.topic = NOTIFY_TOPIC,
                                    .partition = -1,
                                    .offset = -1,
                                    .key = kafka_key,
                                    .key_len = kafka_key ? strlen(kafka_key) : 0,
                                    .value = value,
                                    .value_len = strlen(value),
                                    .timestamp_ms = dub_time_now_ms()};
  if(dub_kafka_dlq_write(dub_runtime_producer(s->n->rt), NULL, &msg, state, detail))
    dub_log_at(DUB_LOG_ERROR, dub_json_str(job, "case_id"), NULL,
               "dead letter for %s not written", dub_json_str(job, "key"));
  free(value);
  const json_t *fallback = json_object_get(job, "fallback");
  if(fallback) {
    notification_produce(s->n, kafka_key, "job", fallback, &s->acks);
    dub_log_at(DUB_LOG_WARN, dub_json_str(job, "case_id"), NULL,
               "sms %s to %s: %s; email fallback queued", dub_json_str(job, "template"),
               dub_json_str(job, "recipient_id"), state);
  }
}

/* What the provider said, turned into the next state. */
static void settle(struct notification_sender *s, const json_t *job,
                   enum notification_result res, const char *detail, long long attempts)
{
  struct notification_conf *conf = &s->n->conf;
  int64_t now = dub_time_now_ms();
  long long created = 0;
  dub_json_int(job, "created_at", &created);
  switch(res) {
  case NOTIFY_SENT:
    set_state(s, job, "sent", detail, 0);
    unschedule(s, job);
    break;
  case NOTIFY_TEMPORARY: {
    int64_t due = now + notification_backoff_ms((int)attempts + 1, conf->retry_base_ms,
                                                conf->retry_max_ms, random01(s));
    if(notification_retries_end(attempts, conf->max_attempts, created, due,
                                conf->max_age_s * 1000)) {
      give_up(s, job, "technical-failure", detail);
    } else {
      set_state(s, job, "temporary-failure", detail, due);
      schedule(s, job, due);
    }
    break;
  }
  case NOTIFY_PERMANENT:
    give_up(s, job, "permanent-failure", detail);
    break;
  case NOTIFY_TECHNICAL:
    give_up(s, job, "technical-failure", detail);
    break;
  case NOTIFY_UNKNOWN: {
    int64_t due = now + conf->reconcile_s * 1000;
    set_state(s, job, "unknown", detail, due);
    schedule(s, job, due);
    break;
  }
  }
}

/* The address: in the job for officers, sealed in it for the reporter. New string or
 * NULL; never logged. */
static char *address(struct notification_sender *s, const json_t *job)
{
  const char *to = dub_json_str(job, "to");
  if(to)
    return dub_xstrdup(to);
  const char *sealed = dub_json_str(job, "to_sealed");
  char *plain = NULL, *why = NULL, *out = NULL;
  size_t len = 0;
  json_t *who = NULL;
  if(!sealed ||
     dub_crypto_open(s->n->keys, sealed, dub_json_str(job, "case_id"), &plain, &len))
    return NULL;
  if(!dub_json_parse(plain, len, &who, &why))
    out = dub_xstrdup(dub_json_str(who, is_sms(job) ? "phone" : "email"));
  free(why);
  json_decref(who);
  dub_crypto_plain_free(plain);
  return out;
}

static char *outbox_content(struct notification_sender *s, const json_t *job,
                            const char *to)
{
  if(is_sms(job)) {
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:O, s:O}", "key", dub_json_str(job, "key"), "case_id",
        dub_json_str(job, "case_id"), "template", dub_json_str(job, "template"), "to", to,
        "text", dub_json_str(job, "text"), "chars", json_object_get(job, "chars"),
        "parts", json_object_get(job, "parts"));
    char *text = dub_json_dump(doc);
    json_decref(doc);
    return text;
  }
  return notification_email_compose(
      s->n->conf.smtp_from, to, dub_json_str(job, "subject"), dub_json_str(job, "body"),
      dub_json_str(job, "key"), dub_time_now_ms());
}

static const char *outbox_ext(const json_t *job)
{
  return is_sms(job) ? "json" : "eml";
}

static void observe(struct notification_sender *s, enum provider_kind kind, int64_t t0)
{
  dub_metrics_series_observe(s->latency[kind],
                             (double)(dub_time_mono_ms() - t0) / 1000.0);
}

/* The URL Kannel reports deliveries of 'job' to: its key, tag and our MAC of the key. */
static char *dlr_url(struct notification_sender *s, const json_t *job)
{
  char mac[65];
  notification_dlr_mac(s->n, dub_json_str(job, "key"), mac);
  return dub_xasprintf("%s?k=%s&t=%s&m=%s", s->n->conf.dlr_url, dub_json_str(job, "key"),
                       dub_json_str(job, "tag"), mac);
}

/* Calls the provider for one job; the state is "sending" already. */
static enum notification_result call_provider(struct notification_sender *s,
                                              const json_t *job, char **detail)
{
  enum provider_kind kind = provider_of(s, job);
  char *to = address(s, job);
  enum notification_result res;
  int64_t t0 = dub_time_mono_ms();
  if(!to) {
    *detail = dub_xstrdup("no address for the recipient");
    return NOTIFY_PERMANENT;
  }
  if(kind == P_KANNEL) {
    char *dlr = dlr_url(s, job);
    res = notification_kannel_send(s->kannel, to, dub_json_str(job, "text"), dlr, detail);
    free(dlr);
  } else if(kind == P_SMTP) {
    char *message = notification_email_compose(
        s->n->conf.smtp_from, to, dub_json_str(job, "subject"), dub_json_str(job, "body"),
        dub_json_str(job, "key"), dub_time_now_ms());
    res = notification_smtp_send(s->smtp, to, message, detail);
    free(message);
  } else {
    char *content = outbox_content(s, job, to);
    bool written = false;
    const char *dir = s->n->conf.outbox_dir;
    res = notification_outbox_write(dir, dub_json_str(job, "channel"),
                                    dub_json_str(job, "key"), outbox_ext(job), content,
                                    &written) ||
                  notification_outbox_sync(dir)
              ? NOTIFY_TEMPORARY
              : NOTIFY_SENT;
    *detail =
        dub_xstrdup(res == NOTIFY_SENT ? "written to the outbox" : "outbox not writable");
    free(content);
  }
  observe(s, kind, t0);
  free(to);
  return res;
}

static struct breaker *breaker_of(struct notification_sender *s, const json_t *job)
{
  return &s->breakers[is_sms(job) ? 0 : 1];
}

/* The first half of a send: while the provider's breaker is open (it just timed out or
 * could not be reached) the job waits without an attempt; otherwise "sending" is stored
 * (durable before the request) and *go is set, with the attempt's number. */
static enum dub_err begin_send(struct notification_sender *s, const json_t *job, bool *go,
                               long long *attempts)
{
  struct breaker *b = breaker_of(s, job);
  int64_t mono = dub_time_mono_ms();
  *go = false;
  if(provider_of(s, job) != P_OUTBOX && b->open_until > mono) {
    int64_t due = dub_time_now_ms() + (b->open_until - mono) +
                  (int64_t)(random01(s) * (double)BREAKER_MIN_MS);
    return schedule(s, job, due);
  }
  long long expect = 0;
  dub_json_int(job, EXPECT_FIELD, &expect);
  char *stored = NULL;
  enum dub_err rc =
      notification_state_begin(s->n, s->cache, job, expect, &s->acks, &stored, attempts);
  if(rc)
    return rc;
  /* else a delivery report settled it, or another instance took it, meanwhile */
  *go = strcmp(stored, "sending") == 0;
  if(strcmp(stored, "taken") == 0)
    dub_log_info("%s %s: another instance is sending it", dub_json_str(job, "channel"),
                 dub_json_str(job, "key"));
  free(stored);
  return DUB_OK;
}

/* What a result says of the provider: -1 it failed in a way that opens the breaker (a
 * timeout, no connection), 1 it works, 0 neither (it answered with a refusal). */
static int verdict(struct notification_sender *s, const json_t *job,
                   enum notification_result res, const char *detail)
{
  if(res == NOTIFY_UNKNOWN ||
     (res == NOTIFY_TEMPORARY && provider_of(s, job) != P_OUTBOX &&
      strncmp(detail, "HTTP", 4) != 0))
    return -1;
  return res == NOTIFY_SENT ? 1 : 0;
}

static void breaker_tell(struct breaker *b, int v)
{
  if(v < 0) {
    b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : BREAKER_MIN_MS;
    if(b->backoff_ms > BREAKER_MAX_MS)
      b->backoff_ms = BREAKER_MAX_MS;
    b->open_until = dub_time_mono_ms() + b->backoff_ms;
  } else if(v > 0) {
    b->backoff_ms = 0;
    b->open_until = 0;
  }
}

/* The outcome of an attempt logged and settled. */
static void finish(struct notification_sender *s, const json_t *job,
                   enum notification_result res, const char *detail, long long attempts)
{
  dub_log_at(res == NOTIFY_SENT ? DUB_LOG_DEBUG : DUB_LOG_WARN,
             dub_json_str(job, "case_id"), NULL, "%s %s to %s (%s), attempt %lld: %s",
             dub_json_str(job, "channel"), dub_json_str(job, "template"),
             dub_json_str(job, "recipient_id"), dub_json_str(job, "masked"), attempts,
             detail);
  settle(s, job, res, detail, attempts);
}

/* Sends one job now. */
static enum dub_err send_now(struct notification_sender *s, const json_t *job)
{
  bool go = false;
  long long attempts = 1;
  enum dub_err rc = begin_send(s, job, &go, &attempts);
  if(rc || !go)
    return rc;
  char *detail = NULL;
  enum notification_result res = call_provider(s, job, &detail);
  breaker_tell(breaker_of(s, job), verdict(s, job, res, detail));
  finish(s, job, res, detail, attempts);
  free(detail);
  return DUB_OK;
}

/* Kannel-bound jobs of one batch, as a stream of SMS (notification_sms_stream). */
struct sms_batch {
  struct notification_sender *s;
  json_t *jobs;
  size_t next;
  enum dub_err rc; /* Redis failed a "sending" record: no more jobs */
};

/* One request's job and what its message borrows. */
struct sms_job {
  const json_t *job;
  long long attempts;
  char *to, *dlr;
};

static enum notification_sms_next sms_next(void *ctx, struct notification_sms *msg,
                                           size_t in_flight)
{
  struct sms_batch *b = ctx;
  struct notification_sender *s = b->s;
  /* After a fault that opened the breaker, one request at a time until one goes
   * through: the others would meet the same fault, each then to be retried or
   * reconciled. */
  if(in_flight && s->breakers[0].backoff_ms)
    return NOTIFY_SMS_WAIT;
  while(!b->rc && b->next < json_array_size(b->jobs)) {
    const json_t *job = json_array_get(b->jobs, b->next++);
    bool go = false;
    long long attempts = 1;
    b->rc = begin_send(s, job, &go, &attempts);
    if(b->rc || !go)
      continue;
    char *to = address(s, job);
    if(!to) {
      finish(s, job, NOTIFY_PERMANENT, "no address for the recipient", attempts);
      continue;
    }
    struct sms_job *sj = dub_xcalloc(1, sizeof *sj);
    *sj = (struct sms_job){
        .job = job, .attempts = attempts, .to = to, .dlr = dlr_url(s, job)};
    *msg = (struct notification_sms){.to = sj->to,
                                     .text = dub_json_str(job, "text"),
                                     .dlr_url = sj->dlr,
                                     .opaque = sj};
    return NOTIFY_SMS_READY;
  }
  return NOTIFY_SMS_END;
}

static void sms_done(void *ctx, struct notification_sms *msg)
{
  struct sms_batch *b = ctx;
  struct notification_sender *s = b->s;
  struct sms_job *sj = msg->opaque;
  struct breaker *br = breaker_of(s, sj->job);
  dub_metrics_series_observe(s->latency[P_KANNEL], msg->seconds);
  int v = verdict(s, sj->job, msg->result, msg->detail);
  /* Requests that were on their way together meet a fault together: it opens the
   * breaker once, not once for each of them. */
  if(v > 0 || (v < 0 && br->open_until <= dub_time_mono_ms()))
    breaker_tell(br, v);
  finish(s, sj->job, msg->result, msg->detail, sj->attempts);
  free(msg->detail);
  free(sj->to);
  free(sj->dlr);
  free(sj);
}

/* Sends a batch's Kannel-bound jobs with DUBAN_SMS_PARALLEL requests in flight: each
 * job's "sending" is stored as a request slot comes free, and its outcome settled as
 * soon as its answer comes. */
static enum dub_err kannel_batch(struct notification_sender *s, json_t *jobs)
{
  if(!json_array_size(jobs))
    return DUB_OK; /* also when SMS go to the outbox: there is no Kannel client */
  struct sms_batch b = {.s = s, .jobs = jobs};
  const struct notification_sms_stream st = {sms_next, sms_done, &b};
  notification_kannel_send_stream(s->kannel, &st);
  return b.rc;
}

/* ---- admission: quiet hours and rate limits ------------------------------------ */

/* Whether quiet hours and the per-recipient limit apply: non-urgent SMS but digests. */
static bool limited(const json_t *job)
{
  return is_sms(job) && !dub_json_bool(job, "urgent", false) &&
         !dub_json_bool(job, "digest", false);
}

/* Folds the job into the recipient's digest of this window. */
static enum dub_err fold(struct notification_sender *s, const json_t *job,
                         long long bucket)
{
  const char *rid = dub_json_str(job, "recipient_id");
  int64_t window_ms = s->n->conf.window_s * 1000;
  char *list = dub_xasprintf("duban:notify:digest:{%s}:%lld", rid, bucket);
  char *item = dub_xasprintf("%s %s", dub_json_str(job, "tag"), dub_json_str(job, "key"));
  char *member = dub_xasprintf("d %s %lld", rid, bucket);
  char at[24], ttl[24];
  snprintf(at, sizeof at, "%lld", (long long)((bucket + 1) * window_ms));
  snprintf(ttl, sizeof ttl, "%lld", (long long)(s->n->conf.window_s * 4 + 86400));
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  const char *rpush[] = {"RPUSH", list, item};
  const char *expire[] = {"EXPIRE", list, ttl};
  const char *zadd[] = {"ZADD", NOTIFY_DUE_KEY, "NX", at, member};
  dub_cache_pipeline_add(p, 3, rpush, NULL);
  dub_cache_pipeline_add(p, 3, expire, NULL);
  dub_cache_pipeline_add(p, 5, zadd, NULL);
  enum dub_err rc = exec_free(s->cache, p);
  if(!rc) {
    json_t *extra =
        json_pack("{s:s, s:I}", "digest_of", rid, "bucket", (json_int_t)bucket);
    rc = notification_state_set(s->n, s->cache, job, "folded", extra, &s->acks, NULL);
    json_decref(extra);
  }
  free(list);
  free(item);
  free(member);
  return rc;
}

/* Holds a non-urgent SMS until quiet hours end at 'until'. */
static enum dub_err hold(struct notification_sender *s, const json_t *job, int64_t until)
{
  json_t *extra =
      json_pack("{s:I, s:I}", "hold_until", (json_int_t)until, "due", (json_int_t)until);
  enum dub_err rc =
      notification_state_set(s->n, s->cache, job, "queued", extra, &s->acks, NULL);
  json_decref(extra);
  return rc ? rc : schedule(s, job, until);
}

static char *rate_key(const json_t *job, long long bucket)
{
  return dub_xasprintf("duban:notify:rate:{%s}:%lld", dub_json_str(job, "recipient_id"),
                       bucket);
}

/* ---- the outbox in batches -------------------------------------------------------- */

/* Sends outbox jobs together: "sending" for all in one round trip, the files, one
 * syncfs, the outcomes of those written in one round trip. A job that could not be
 * written (no address to unseal, a full or read-only disk, a failed sync) settles as
 * any provider's failure does: a retry with backoff, then technical-failure with its
 * dead letter and fallback; never left "queued" with nothing to take it up again. */
static enum dub_err outbox_batch(struct notification_sender *s, json_t *jobs)
{
  size_t n = json_array_size(jobs), i;
  json_t *job;
  if(!n)
    return DUB_OK;
  char now[24];
  snprintf(now, sizeof now, "%lld", (long long)dub_time_now_ms());
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  json_array_foreach(jobs, i, job)
  {
    char *mkey = notification_msg_key(dub_json_str(job, "tag"), dub_json_str(job, "key"));
    long long expect = 0;
    dub_json_int(job, EXPECT_FIELD, &expect);
    char expect_s[24];
    snprintf(expect_s, sizeof expect_s, "%lld", expect);
    const char *argv[] = {"EVAL",  notification_state_script, "1", mkey, "sending", now,
                          expect_s};
    dub_cache_pipeline_add(p, 7, argv, NULL);
    free(mkey);
  }
  struct dub_cache_reply **replies = NULL;
  enum dub_err rc = dub_cache_pipeline_exec(s->cache, p, &replies);
  dub_cache_pipeline_free(p);
  if(rc)
    return rc;
  enum outcome { SKIP, WRITTEN, NO_ADDRESS, NOT_WRITTEN };
  enum outcome *out = dub_xcalloc(n, sizeof *out);
  long long *attempts = dub_xcalloc(n, sizeof *attempts);
  int64_t t0 = dub_time_mono_ms();
  json_array_foreach(jobs, i, job)
  {
    struct dub_cache_reply *r = replies[i];
    if(r->type != DUB_CACHE_ARRAY || r->count != 2 ||
       strcmp(r->elements[0]->str, "sending") != 0)
      continue; /* delivered meanwhile: nothing to do */
    attempts[i] = r->elements[1]->integer;
    char *to = address(s, job);
    if(!to) {
      out[i] = NO_ADDRESS;
      continue;
    }
    char *content = outbox_content(s, job, to);
    bool written = false;
    out[i] = notification_outbox_write(
                 s->n->conf.outbox_dir, dub_json_str(job, "channel"),
                 dub_json_str(job, "key"), outbox_ext(job), content, &written)
                 ? NOT_WRITTEN
                 : WRITTEN;
    free(content);
    free(to);
  }
  dub_cache_replies_free(replies, n);
  bool synced = !notification_outbox_sync(s->n->conf.outbox_dir);
  observe(s, P_OUTBOX, t0);
  snprintf(now, sizeof now, "%lld", (long long)dub_time_now_ms());
  p = dub_cache_pipeline_new();
  size_t nsent = 0;
  json_array_foreach(jobs, i, job)
  {
    if(out[i] != WRITTEN || !synced)
      continue;
    char *mkey = notification_msg_key(dub_json_str(job, "tag"), dub_json_str(job, "key"));
    const char *argv[] = {"EVAL", notification_state_script, "1", mkey, "sent", now};
    dub_cache_pipeline_add(p, 6, argv, NULL);
    free(mkey);
    nsent++;
  }
  rc = nsent ? dub_cache_pipeline_exec(s->cache, p, &replies) : DUB_OK;
  dub_cache_pipeline_free(p);
  if(!rc && nsent) {
    json_t *extra = extra_detail("written to the outbox", 0);
    size_t k = 0;
    json_array_foreach(jobs, i, job)
    {
      if(out[i] != WRITTEN || !synced)
        continue;
      const struct dub_cache_reply *r = replies[k++];
      notification_state_note(s->n, job, "sent",
                              r->type == DUB_CACHE_ARRAY ? r->elements[1]->integer : -1,
                              extra, &s->acks);
    }
    json_decref(extra);
    dub_cache_replies_free(replies, nsent);
  }
  json_array_foreach(jobs, i, job)
  {
    if(out[i] == NO_ADDRESS)
      settle(s, job, NOTIFY_PERMANENT, "no address to write to", attempts[i]);
    else if(out[i] == NOT_WRITTEN || (out[i] == WRITTEN && !synced))
      settle(s, job, NOTIFY_TEMPORARY,
             out[i] == NOT_WRITTEN ? "outbox file not written" : "outbox not synced",
             attempts[i]);
  }
  free(out);
  free(attempts);
  return rc;
}

/* ---- the consumer ----------------------------------------------------------------- */

static bool is_job_record(const struct dub_kafka_msg *msg)
{
  const void *v = NULL;
  size_t len = 0;
  if(dub_kafka_msg_header(msg, NOTIFY_KIND_HEADER, &v, &len))
    return len == 3 && memcmp(v, "job", 3) == 0;
  return true; /* no header: parse it and look */
}

/* Claims and handles 'jobs' (each a job object): new ones are held for quiet hours,
 * folded beyond the recipient's limit, or sent now (outbox jobs together); one found
 * "sending" was interrupted by a crash and becomes unknown. */
static enum dub_err handle_jobs(struct notification_sender *s, json_t *jobs,
                                const struct dub_kafka_msg *const *raw)
{
  size_t n = json_array_size(jobs), i;
  json_t *job;
  int64_t now_ms = dub_time_now_ms();
  char now[24];
  snprintf(now, sizeof now, "%lld", (long long)now_ms);
  /* A key twice in one batch (a job planned again after a crash lands beside the first
   * copy) is claimed once: the claim answers "new" to both copies otherwise, as the
   * first is still queued. Keys of one recipient share a partition, so copies never
   * meet in two consumers at once. */
  json_t *seen = json_object();
  json_array_foreach(jobs, i, job)
  {
    if(json_object_get(seen, dub_json_str(job, "key")))
      json_object_set_new(job, "duplicate_in_batch", json_true());
    else
      json_object_set_new(seen, dub_json_str(job, "key"), json_true());
  }
  json_decref(seen);
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  json_array_foreach(jobs, i, job)
  {
    char *mkey = notification_msg_key(dub_json_str(job, "tag"), dub_json_str(job, "key"));
    char *kkey = notification_case_keys_key(dub_json_str(job, "tag"));
    /* The record's own bytes when there is one: no second serialisation. */
    char *text = raw ? NULL : dub_json_dump(job);
    const char *argv[] = {"EVAL",
                          notification_claim_script,
                          "2",
                          mkey,
                          kkey,
                          now,
                          raw ? raw[i]->value : text,
                          dub_json_str(job, "key")};
    size_t lens[] = {4,
                     strlen(notification_claim_script),
                     1,
                     strlen(mkey),
                     strlen(kkey),
                     strlen(now),
                     raw ? raw[i]->value_len : strlen(text),
                     strlen(argv[7])};
    dub_cache_pipeline_add(p, 8, argv, lens);
    free(mkey);
    free(kkey);
    free(text);
  }
  struct dub_cache_reply **replies = NULL;
  enum dub_err rc = n ? dub_cache_pipeline_exec(s->cache, p, &replies) : DUB_OK;
  dub_cache_pipeline_free(p);
  if(rc || !n)
    return rc;
  json_t *fresh = json_array();
  json_array_foreach(jobs, i, job)
  {
    const struct dub_cache_reply *r = replies[i];
    bool shaped = r->type == DUB_CACHE_ARRAY && r->count == 2 &&
                  r->elements[0]->type == DUB_CACHE_STRING &&
                  r->elements[1]->type == DUB_CACHE_INT;
    const char *claim = shaped ? r->elements[0]->str : "error";
    if(dub_json_bool(job, "duplicate_in_batch", false))
      continue;
    if(strcmp(claim, "new") == 0) {
      expect_attempts(job, r->elements[1]->integer);
      json_array_append(fresh, job);
    } else if(strcmp(claim, "sending") == 0)
      settle(s, job, NOTIFY_UNKNOWN, "interrupted while sending", 0);
    else if(strcmp(claim, "error") == 0)
      rc = DUB_ERR_UNAVAILABLE;
  }
  dub_cache_replies_free(replies, n);
  if(rc) {
    json_decref(fresh);
    return rc;
  }
  /* Per-recipient counts of this window, for every new limited SMS at once. */
  int64_t quiet_until = notification_quiet_until(&s->n->conf.quiet_hours, now_ms);
  long long bucket = now_ms / (s->n->conf.window_s * 1000);
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%ld", s->n->conf.window_s * 2);
  size_t nfresh = json_array_size(fresh), counted = 0;
  long long *counts = dub_xcalloc(nfresh ? nfresh : 1, sizeof *counts);
  p = dub_cache_pipeline_new();
  json_array_foreach(fresh, i, job)
  {
    if(!limited(job) || quiet_until ||
       strcmp(dub_json_str(job, "recipient_id"), "reporter") == 0)
      continue;
    char *key = rate_key(job, bucket);
    const char *incr[] = {"INCR", key};
    const char *expire[] = {"EXPIRE", key, ttl};
    dub_cache_pipeline_add(p, 2, incr, NULL);
    dub_cache_pipeline_add(p, 3, expire, NULL);
    free(key);
    counted++;
  }
  if(counted) {
    rc = dub_cache_pipeline_exec(s->cache, p, &replies);
    if(!rc) {
      size_t k = 0;
      json_array_foreach(fresh, i, job)
      {
        if(!limited(job) || quiet_until ||
           strcmp(dub_json_str(job, "recipient_id"), "reporter") == 0)
          continue;
        counts[i] = replies[2 * k]->integer;
        k++;
      }
      dub_cache_replies_free(replies, 2 * counted);
    }
  }
  dub_cache_pipeline_free(p);
  json_t *outbox = json_array(), *kannel = json_array();
  json_array_foreach(fresh, i, job)
  {
    if(rc)
      break;
    if(limited(job) && quiet_until)
      rc = hold(s, job, quiet_until);
    else if(counts[i] > s->n->conf.sms_per_window)
      rc = fold(s, job, bucket);
    else if(provider_of(s, job) == P_OUTBOX)
      json_array_append(outbox, job);
    else if(provider_of(s, job) == P_KANNEL)
      json_array_append(kannel, job);
    else
      rc = send_now(s, job);
  }
  if(!rc)
    rc = kannel_batch(s, kannel);
  if(!rc)
    rc = outbox_batch(s, outbox);
  json_decref(kannel);
  json_decref(outbox);
  json_decref(fresh);
  free(counts);
  return rc;
}

static void on_batch(void *ctx, const struct dub_kafka_msg *msgs, size_t n,
                     enum dub_err *results, char **whys)
{
  struct notification_sender *s = ctx;
  json_t *jobs = json_array();
  const struct dub_kafka_msg **raw = dub_xcalloc(n ? n : 1, sizeof *raw);
  for(size_t i = 0; i < n; i++) {
    results[i] = DUB_OK;
    if(!is_job_record(&msgs[i]))
      continue;
    json_t *job = NULL;
    char *why = NULL;
    if(dub_json_parse(msgs[i].value, msgs[i].value_len, &job, &why)) {
      results[i] = DUB_ERR_MALFORMED;
      whys[i] = why;
      continue;
    }
    const char *kind = dub_json_str(job, "kind");
    if(kind && strcmp(kind, "job") != 0) {
      json_decref(job);
      continue;
    }
    if(!dub_json_str(job, "key") || !dub_json_str(job, "tag") ||
       !dub_json_str(job, "channel") || !dub_json_str(job, "recipient_id") ||
       !dub_json_str(job, "template") || !dub_json_str(job, "kafka_key") ||
       (!dub_json_str(job, "to") && !dub_json_str(job, "to_sealed")) ||
       (is_sms(job) ? !dub_json_str(job, "text") : !dub_json_str(job, "body"))) {
      results[i] = DUB_ERR_SCHEMA;
      whys[i] = dub_xstrdup("not a notification job: a required member is missing");
      json_decref(job);
      continue;
    }
    raw[json_array_size(jobs)] = &msgs[i];
    json_array_append_new(jobs, job);
  }
  enum dub_err rc = handle_jobs(s, jobs, raw);
  free(raw);
  if(!rc)
    rc = notification_acks_wait(&s->acks, ACK_TIMEOUT_MS);
  notification_acks_end(&s->acks);
  if(rc) {
    /* Redis or Kafka away: the whole batch comes again; the claims make that safe. */
    for(size_t i = 0; i < n; i++)
      if(results[i] == DUB_OK)
        results[i] = DUB_ERR_UNAVAILABLE;
  }
  json_decref(jobs);
}

/* ---- what is due: retries, held messages, reconciliation, digests -------------------
 */

/* The job and its state, with the attempts made so far as its EXPECT_FIELD. */
static json_t *load_job(struct notification_sender *s, const char *tag, const char *key,
                        char **state)
{
  char *mkey = notification_msg_key(tag, key);
  struct dub_cache_reply *r = NULL;
  json_t *job = NULL;
  char *why = NULL;
  const char *argv[] = {"HMGET", mkey, "state", "job", "attempts"};
  *state = NULL;
  if(!dub_cache_command(s->cache, &r, 5, argv, NULL) && r->type == DUB_CACHE_ARRAY &&
     r->count == 3 && r->elements[0]->type == DUB_CACHE_STRING &&
     r->elements[1]->type == DUB_CACHE_STRING) {
    *state = dub_xstrdup(r->elements[0]->str);
    if(dub_json_parse(r->elements[1]->str, r->elements[1]->len, &job, &why))
      free(why);
    if(job)
      expect_attempts(job, r->elements[2]->type == DUB_CACHE_STRING
                               ? strtoll(r->elements[2]->str, NULL, 10)
                               : 0);
  }
  dub_cache_reply_free(r);
  free(mkey);
  return job;
}

static void due_message(struct notification_sender *s, const char *tag, const char *key,
                        const char *member)
{
  char *state = NULL;
  json_t *job = load_job(s, tag, key, &state);
  if(!job) {
    const char *argv[] = {"ZREM", NOTIFY_DUE_KEY, member};
    dub_cache_command(s->cache, NULL, 3, argv, NULL);
    free(state);
    return;
  }
  if(strcmp(state, "sending") == 0) {
    settle(s, job, NOTIFY_UNKNOWN, "interrupted while sending", 0);
  } else if(strcmp(state, "unknown") == 0 && provider_of(s, job) == P_OUTBOX &&
            notification_outbox_exists(s->n->conf.outbox_dir,
                                       dub_json_str(job, "channel"), key,
                                       outbox_ext(job))) {
    settle(s, job, NOTIFY_SENT, "reconciled: the outbox file is there", 0);
  } else if(strcmp(state, "queued") == 0 || strcmp(state, "temporary-failure") == 0 ||
            strcmp(state, "unknown") == 0) {
    /* An unknown SMS or email that no delivery report settled within the reconcile
     * window is sent again (it stays marked was_unknown). */
    send_now(s, job);
  } else {
    unschedule(s, job);
  }
  json_decref(job);
  free(state);
}

static void due_digest(struct notification_sender *s, const char *rid, const char *bucket,
                       const char *member)
{
  char *list = dub_xasprintf("duban:notify:digest:{%s}:%s", rid, bucket);
  struct dub_cache_reply *r = NULL;
  const char *argv[] = {"LRANGE", list, "0", "-1"};
  json_t *cases = json_array(), *first = NULL;
  long long count = 0;
  if(!dub_cache_command(s->cache, &r, 4, argv, NULL) && r->type == DUB_CACHE_ARRAY) {
    for(size_t i = 0; i < r->count; i++) {
      char tag[128], key[72], *state = NULL;
      if(sscanf(r->elements[i]->str, "%127s %71s", tag, key) != 2)
        continue;
      json_t *job = load_job(s, tag, key, &state);
      free(state);
      if(!job)
        continue;
      count++;
      const char *case_id = dub_json_str(job, "case_id");
      if(!dub_json_array_has_str(cases, case_id))
        json_array_append_new(cases, json_string(case_id));
      if(!first)
        first = job;
      else
        json_decref(job);
    }
  }
  dub_cache_reply_free(r);
  if(first) {
    char key[65];
    notification_job_key("digest", rid, bucket, "sms", key);
    char *text = notification_digest_text(cases, count);
    size_t chars = notification_utf8_chars(text);
    json_t *digest = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:I, s:i, s:b, "
        "s:b, "
        "s:I}",
        "kind", "job", "key", key, "tag", rid, "case_id", "digest", "cause", bucket,
        "event", "digest", "template", "digest.sms", "channel", "sms", "recipient_id",
        rid, "to", json_object_get(first, "to"), "masked", dub_json_str(first, "masked"),
        "text", text, "chars", (json_int_t)chars, "parts", notification_sms_parts(chars),
        "urgent", 1, "digest", 1, "created_at", (json_int_t)dub_time_now_ms());
    json_object_set(digest, "kafka_key", json_object_get(first, "kafka_key"));
    json_t *one = json_array();
    json_array_append_new(one, digest);
    if(!handle_jobs(s, one, NULL)) {
      const char *zrem[] = {"ZREM", NOTIFY_DUE_KEY, member};
      dub_cache_command(s->cache, NULL, 3, zrem, NULL);
    }
    json_decref(one);
    free(text);
    json_decref(first);
  } else {
    const char *zrem[] = {"ZREM", NOTIFY_DUE_KEY, member};
    dub_cache_command(s->cache, NULL, 3, zrem, NULL);
  }
  json_decref(cases);
  free(list);
}

static void run_due(struct notification_sender *s)
{
  char now[24], lease[24], limit[24];
  snprintf(now, sizeof now, "%lld", (long long)dub_time_now_ms());
  snprintf(lease, sizeof lease, "%d", DUE_LEASE_MS);
  snprintf(limit, sizeof limit, "%d", DUE_BATCH);
  struct dub_cache_reply *r = NULL;
  const char *argv[] = {"EVAL", lease_script, "1", NOTIFY_DUE_KEY, now, lease, limit};
  if(dub_cache_command(s->cache, &r, 7, argv, NULL) || r->type != DUB_CACHE_ARRAY) {
    dub_cache_reply_free(r);
    return;
  }
  for(size_t i = 0; i < r->count && !atomic_load(&s->stop); i++) {
    const char *member = r->elements[i]->str;
    char a[128], b[72];
    if(sscanf(member, "m %127s %71s", a, b) == 2)
      due_message(s, a, b, member);
    else if(sscanf(member, "d %127s %71s", a, b) == 2)
      due_digest(s, a, b, member);
  }
  dub_cache_reply_free(r);
  notification_acks_wait(&s->acks, ACK_TIMEOUT_MS);
}

/* ---- rebuilding Redis from duban.notifications ------------------------------------ */

static const char rebuild_job_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then "
    "  redis.call('HSET', KEYS[1], 'state', 'queued', 'attempts', 0, 'job', ARGV[1], "
    "    'created', ARGV[2], 'updated', ARGV[2]) "
    "  redis.call('SADD', KEYS[2], ARGV[3]) end "
    "return 1";

/* Applies one record of duban.notifications to Redis (jobs create their hash, state
 * records set the state, the attempts and what is due). */
static void rebuild_one(struct notification_sender *s, const struct dub_kafka_msg *msg,
                        struct dub_cache_pipeline *p)
{
  json_t *rec = NULL;
  char *why = NULL;
  if(dub_json_parse(msg->value, msg->value_len, &rec, &why)) {
    free(why);
    return;
  }
  const char *kind = dub_json_str(rec, "kind"), *tag = dub_json_str(rec, "tag"),
             *key = dub_json_str(rec, "key"), *state = dub_json_str(rec, "state");
  if(!kind || !tag || !key)
    goto out;
  char *mkey = notification_msg_key(tag, key);
  char at[24];
  long long ts = 0;
  dub_json_int(rec, strcmp(kind, "job") == 0 ? "created_at" : "at", &ts);
  snprintf(at, sizeof at, "%lld", ts);
  if(strcmp(kind, "job") == 0) {
    char *kkey = notification_case_keys_key(tag);
    char *text = dub_json_dump(rec);
    const char *argv[] = {"EVAL", rebuild_job_script, "2", mkey, kkey, text, at, key};
    dub_cache_pipeline_add(p, 8, argv, NULL);
    free(kkey);
    free(text);
  } else if(strcmp(kind, "state") == 0 && state) {
    const char *argv[] = {"EVAL", notification_state_script, "1", mkey, state, at};
    dub_cache_pipeline_add(p, 6, argv, NULL);
    long long attempts = 0, due = 0, bucket = 0;
    if(dub_json_int(rec, "attempts", &attempts))
      dub_cache_pipeline_addf(p, "HSET %s attempts %lld", mkey, attempts);
    char *member = dub_xasprintf("m %s %s", tag, key);
    if(dub_json_int(rec, "due", &due)) {
      dub_cache_pipeline_addf(p, "HSET %s due %lld", mkey, due);
      dub_cache_pipeline_addf(p, "ZADD %s %lld %s", NOTIFY_DUE_KEY, due, member);
    } else {
      dub_cache_pipeline_addf(p, "HDEL %s due", mkey);
      dub_cache_pipeline_addf(p, "ZREM %s %s", NOTIFY_DUE_KEY, member);
    }
    const char *rid = dub_json_str(rec, "digest_of");
    if(strcmp(state, "folded") == 0 && rid && dub_json_int(rec, "bucket", &bucket)) {
      char *list = dub_xasprintf("duban:notify:digest:{%s}:%lld", rid, bucket);
      char *item = dub_xasprintf("%s %s", tag, key);
      char *dmember = dub_xasprintf("d %s %lld", rid, bucket);
      /* Once, however often the record is applied again (rebuild.h). */
      const char *push[] = {"EVAL",
                            "if not redis.call('LPOS', KEYS[1], ARGV[1]) then "
                            "redis.call('RPUSH', KEYS[1], ARGV[1]) end return 1",
                            "1", list, item};
      dub_cache_pipeline_add(p, 5, push, NULL);
      dub_cache_pipeline_addf(p, "ZADD %s NX %lld %s", NOTIFY_DUE_KEY,
                              (bucket + 1) * s->n->conf.window_s * 1000, dmember);
      free(list);
      free(item);
      free(dmember);
    }
    free(member);
  }
  free(mkey);
out:
  json_decref(rec);
}

/* One batch of the rebuild of the message states, in one pipeline. */
static enum dub_err rebuild_batch(void *ctx, struct dub_cache *cache,
                                  const struct dub_kafka_msg *msgs, size_t n)
{
  struct notification_sender *s = ctx;
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  for(size_t i = 0; i < n; i++)
    rebuild_one(s, &msgs[i], p);
  if(!dub_cache_pipeline_count(p)) {
    dub_cache_pipeline_free(p);
    return DUB_OK;
  }
  return exec_free(cache, p);
}

/* Reads duban.notifications from its beginning to the end it had then, then sets the
 * mark that says Redis holds the message states. */
static enum dub_err rebuild(struct notification_sender *s)
{
  const struct dub_rebuild_spec spec = {.what = "message states",
                                        .topic = NOTIFY_TOPIC,
                                        .marker = SENDER_MARK_KEY,
                                        .batch = 500,
                                        .apply = rebuild_batch,
                                        .ctx = s};
  return dub_rebuild_run(dub_runtime_env(s->n->rt)->brokers, s->cache,
                         dub_runtime_metrics(s->n->rt), &spec, &s->stop, NULL);
}

/* Whether Redis holds the sender's states; rebuilds them when it does not. */
static enum dub_err ensure_states(struct notification_sender *s)
{
  int64_t now = dub_time_mono_ms();
  if(atomic_load(&s->ready) && now - s->mark_checked_at < 500)
    return DUB_OK;
  bool needed = false;
  enum dub_err rc = dub_rebuild_needed(s->cache, SENDER_MARK_KEY, &needed);
  if(!rc && needed) {
    atomic_store(&s->ready, false);
    rc = rebuild(s);
  }
  if(!rc) {
    s->mark_checked_at = now;
    atomic_store(&s->ready, true);
  }
  return rc;
}

static void *run(void *arg)
{
  struct notification_sender *s = arg;
  while(!atomic_load(&s->stop) && !dub_signals_stop_requested()) {
    if(ensure_states(s)) {
      struct timespec ts = {0, 500 * 1000000L};
      nanosleep(&ts, NULL);
      continue;
    }
    if(dub_kafka_consumer_poll(s->consumer, 100, NULL)) {
      dub_log_fatal("notification sender's consumer failed fatally; stopping");
      dub_signals_request_stop();
      break;
    }
    if(dub_time_mono_ms() >= s->due_at) {
      run_due(s);
      s->due_at = dub_time_mono_ms() + DUE_POLL_MS;
    }
  }
  return NULL;
}

enum dub_err notification_sender_start(struct notification *n, char **why)
{
  struct notification_sender *s = dub_xcalloc(1, sizeof *s);
  const struct dub_runtime_env *env = dub_runtime_env(n->rt);
  enum dub_err rc;
  s->n = n;
  s->seed = (unsigned)dub_time_now_ms() ^ (unsigned)(uintptr_t)s;
  n->sender = s;
  static const char *const names[] = {"kannel", "smtp", "outbox"};
  for(int i = 0; i < 3; i++) {
    char *labels = dub_xasprintf("provider=\"%s\"", names[i]);
    dub_metrics_histogram_series(dub_runtime_metrics(n->rt),
                                 "duban_notification_provider_seconds",
                                 "Time one provider call took.", labels, &s->latency[i]);
    free(labels);
  }
  rc = dub_cache_new(env->redis_url, 1000, 2000, &s->cache, why);
  if(!rc && n->conf.sms_url)
    rc = notification_kannel_new(n->conf.sms_url, n->conf.send_timeout_ms,
                                 (size_t)n->conf.sms_parallel, &s->kannel, why);
  if(!rc && n->conf.smtp_url)
    rc = notification_smtp_new(n->conf.smtp_url, n->conf.smtp_from,
                               n->conf.send_timeout_ms, &s->smtp, why);
  if(rc)
    return rc;
  static const char *const topics[] = {NOTIFY_TOPIC};
  const struct dub_kafka_consumer_conf cconf = {
      .brokers = env->brokers,
      .group_id = SENDER_GROUP,
      .topics = topics,
      .topic_count = 1,
      .client_id = SENDER_GROUP,
      .batch_handler = on_batch,
      .batch_max = 2000,
      .ctx = s,
      .dlq_producer = dub_runtime_producer(n->rt),
  };
  rc = dub_kafka_consumer_new(&cconf, &s->consumer, why);
  if(rc)
    return rc;
  if(pthread_create(&s->thread, NULL, run, s)) {
    *why = dub_xstrdup("cannot start the sender thread");
    return DUB_ERR_INTERNAL;
  }
  s->started = true;
  return DUB_OK;
}

void notification_sender_stop(struct notification *n)
{
  struct notification_sender *s = n->sender;
  if(!s)
    return;
  atomic_store(&s->ready, false);
  atomic_store(&s->stop, true);
  if(s->started)
    pthread_join(s->thread, NULL);
  s->started = false;
  if(s->consumer) {
    dub_kafka_consumer_close(s->consumer);
    dub_kafka_consumer_free(s->consumer);
    s->consumer = NULL;
  }
  notification_acks_wait(&s->acks, ACK_TIMEOUT_MS);
  notification_kannel_free(s->kannel);
  notification_smtp_free(s->smtp);
  dub_cache_free(s->cache);
  s->kannel = NULL;
  s->smtp = NULL;
  s->cache = NULL;
}

void notification_sender_free(struct notification *n)
{
  notification_sender_stop(n);
  free(n->sender);
  n->sender = NULL;
}

/* Runs on HTTP threads, from the sender's start until notification_sender_free(). */
bool notification_sender_ready(struct notification *n, char **reason)
{
  struct notification_sender *s = n->sender;
  if(s && atomic_load(&s->ready))
    return true;
  *reason = dub_xstrdup(s && atomic_load(&s->stop)
                            ? "stopping"
                            : "rebuilding message states from duban.notifications");
  return false;
}
