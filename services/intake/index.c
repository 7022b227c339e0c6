/* index.c - the deduplication index, rebuilt from duban.cases: every event intake wrote
 * there is recorded in Redis as accepted, so that deduplication survives a crash between
 * Kafka's acknowledgement and the Redis write, a restart, and a flushed Redis. A
 * background thread reads all partitions from a checkpoint kept in Redis; the checkpoint
 * key doubles as the sign that the index is complete. */
#include "accept.h"
#include "intake.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "json/json.h"
#include "kafka/cloudevent.h"
#include "kafka/kafka.h"
#include "runtime/rebuild.h"
#include "runtime/runtime.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CASES_TOPIC "duban.cases"
#define BATCH 500
#define CHECKPOINT_MS 1000
#define ACCEPTED_TTL_S (90LL * 24 * 3600)

struct intake_index {
  struct intake *in;
  struct dub_kafka_reader *reader;
  struct dub_cache *cache; /* its own connection: pipelines never wait for requests */
  pthread_t thread;
  atomic_bool stop;
  atomic_bool ready;   /* complete: caught up once since the last (re)start */
  atomic_bool rebuild; /* asked to start over from the beginning */
  bool from_beginning; /* the next catch-up is a rebuild (the index thread's own) */
  int64_t *committed;  /* positions whose records are in Redis */
  int64_t checkpoint_at;
};

/* What one record of duban.cases tells the index: the publisher's event it came from
 * and its case. Strings are borrowed from the record or from '*event'. */
struct origin {
  char *source, *id, *case_id;
  bool received; /* a new case (duban.case.received) rather than an action */
};

/* A header as a new string, or NULL when absent. */
static char *header_dup(const struct dub_kafka_msg *msg, const char *name)
{
  const void *value = NULL;
  size_t len = 0;
  if(!dub_kafka_msg_header(msg, name, &value, &len) || !value)
    return NULL;
  return dub_xstrndup(value, len);
}

/* Reads the origin from the headers intake writes; a record with the type header but
 * no origin is another service's event. Records without the type header (written
 * before intake set them) are parsed. False when the record implies nothing. */
static bool origin_of(const struct dub_kafka_msg *msg, struct origin *o)
{
  const void *type = NULL;
  size_t type_len = 0;
  if(dub_kafka_msg_header(msg, DUB_CE_TYPE_HEADER, &type, &type_len)) {
    o->source = header_dup(msg, INTAKE_ORIGIN_SOURCE_HEADER);
    o->id = header_dup(msg, INTAKE_ORIGIN_ID_HEADER);
    o->case_id = msg->key_len ? dub_xstrndup(msg->key, msg->key_len) : NULL;
    o->received = type && type_len == strlen("duban.case.received") &&
                  memcmp(type, "duban.case.received", type_len) == 0;
    return o->source && o->id && o->case_id;
  }
  json_t *event = NULL;
  char *why = NULL;
  if(dub_ce_decode(msg, &event, &why)) {
    free(why);
    return false;
  }
  const char *t = dub_json_str(event, "type");
  const char *source = dub_json_str(event, "source");
  const json_t *data = json_object_get(event, "data");
  const char *src = NULL, *id = NULL;
  o->received = t && strcmp(t, "duban.case.received") == 0;
  if(o->received) {
    src = dub_json_str(json_object_get(data, "origin"), "source");
    id = dub_json_str(json_object_get(data, "origin"), "id");
  } else if(source && strncmp(source, "/duban/", 7) != 0) {
    src = source; /* a publisher's action, passed through unchanged */
    id = dub_json_str(event, "id");
  }
  const char *case_id = dub_json_str(data, "case_id");
  o->source = src ? dub_xstrdup(src) : NULL;
  o->id = id ? dub_xstrdup(id) : NULL;
  o->case_id = case_id ? dub_xstrdup(case_id) : NULL;
  json_decref(event);
  return o->source && o->id && o->case_id;
}

/* Adds the records one event of duban.cases implies to 'p'; false when it implies none
 * (events of other services, or too old to be remembered). */
static bool index_one(const struct dub_kafka_msg *msg, struct dub_cache_pipeline *p)
{
  struct origin o = {0};
  long long age_s =
      msg->timestamp_ms > 0 ? (dub_time_now_ms() - msg->timestamp_ms) / 1000 : 0;
  bool added = age_s < ACCEPTED_TTL_S && origin_of(msg, &o);
  if(added) {
    char at[DUB_TIME_LEN], ttl[24];
    dub_time_format(msg->timestamp_ms > 0 ? msg->timestamp_ms : dub_time_now_ms(),
                    DUB_SHANGHAI_OFFSET_MIN, at);
    snprintf(ttl, sizeof ttl, "%lld", ACCEPTED_TTL_S - age_s);
    char *key = intake_event_key(o.source, o.id);
    json_t *rec = json_pack("{s:s, s:s, s:s}", "status", "accepted", "case_id", o.case_id,
                            "time", at);
    char *text = dub_json_dump(rec);
    const char *set[] = {"SET", key, text, "EX", ttl};
    dub_cache_pipeline_add(p, 5, set, NULL);
    if(o.received) {
      char *case_key = dub_xasprintf("duban:intake:case:{%s}", o.case_id);
      const char *mark[] = {"SET", case_key, "1"};
      dub_cache_pipeline_add(p, 3, mark, NULL);
      free(case_key);
    }
    free(text);
    json_decref(rec);
    free(key);
  }
  free(o.source);
  free(o.id);
  free(o.case_id);
  return added;
}

/* Writes the committed positions; creating the key marks the index complete. */
static enum dub_err checkpoint(struct intake_index *x)
{
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  int32_t n = dub_kafka_reader_partitions(x->reader);
  dub_cache_pipeline_addf(p, "HSET %s v 1", INTAKE_INDEX_KEY);
  for(int32_t i = 0; i < n; i++)
    dub_cache_pipeline_addf(p, "HSET %s p%d %lld", INTAKE_INDEX_KEY, (int)i,
                            (long long)x->committed[i]);
  enum dub_err rc = dub_cache_pipeline_exec(x->cache, p, &replies);
  if(!rc)
    dub_cache_replies_free(replies, dub_cache_pipeline_count(p));
  dub_cache_pipeline_free(p);
  x->checkpoint_at = dub_time_mono_ms();
  return rc;
}

/* (Re)starts the following reader at x->committed, until it is started or the index
 * stops. Review C12h: a reader whose start failed keeps reading where it was, past the
 * events it was to read again, or reads nothing. */
static void start_reading(struct intake_index *x)
{
  while(dub_kafka_reader_start(x->reader, x->committed) && !atomic_load(&x->stop)) {
    dub_log_warn("deduplication index: cannot start reading %s, trying again",
                 CASES_TOPIC);
    struct timespec ts = {0, 500 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* ---- catching up: libs/runtime/rebuild.c from the checkpoint or the beginning -------
 */

/* Where the catch-up starts: the checkpoint's positions, unless it is a rebuild. */
static enum dub_err catch_up_from(void *ctx, struct dub_cache *cache, int64_t *from,
                                  int32_t n)
{
  struct intake_index *x = ctx;
  struct dub_cache_reply *r = NULL;
  if(!x->from_beginning) {
    /* Redis loading or away: wait for the checkpoint (the error is waited out) rather
     * than read all of the topic again for want of it. */
    enum dub_err rc = dub_cache_commandf(cache, &r, "HGETALL %s", INTAKE_INDEX_KEY);
    if(rc == DUB_ERR_UNAVAILABLE)
      return rc;
    for(size_t k = 0; !rc && r->type == DUB_CACHE_ARRAY && k + 1 < r->count; k += 2) {
      int part = 0;
      long long off = 0;
      if(sscanf(r->elements[k]->str, "p%d", &part) == 1 && part >= 0 && part < n &&
         sscanf(r->elements[k + 1]->str, "%lld", &off) == 1)
        from[part] = off;
    }
    dub_cache_reply_free(r);
  }
  memcpy(x->committed, from, (size_t)n * sizeof *from);
  dub_log_info("deduplication index: reading %s %s", CASES_TOPIC,
               x->from_beginning ? "from the beginning" : "from its checkpoint");
  return DUB_OK;
}

/* Indexes a batch in one pipeline; the positions count once it is written. */
static enum dub_err index_batch(void *ctx, struct dub_cache *cache,
                                const struct dub_kafka_msg *msgs, size_t n)
{
  struct intake_index *x = ctx;
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  for(size_t i = 0; i < n; i++)
    index_one(&msgs[i], p);
  enum dub_err rc =
      dub_cache_pipeline_count(p) ? dub_cache_pipeline_exec(cache, p, NULL) : DUB_OK;
  dub_cache_pipeline_free(p);
  for(size_t i = 0; !rc && i < n; i++)
    x->committed[msgs[i].partition] = msgs[i].offset + 1;
  return rc;
}

/* The checkpoint at the end of the catch-up creates the key: the index is complete. */
static enum dub_err catch_up_done(void *ctx, struct dub_cache *cache)
{
  (void)cache;
  return checkpoint(ctx);
}

/* Reads duban.cases from the checkpoint (or, for a rebuild, the beginning) up to the
 * ends it had when the reading began; true once the index is complete. */
static bool catch_up(struct intake_index *x)
{
  const struct dub_rebuild_spec spec = {.what = "deduplication index",
                                        .topic = CASES_TOPIC,
                                        .marker = NULL, /* the checkpoint is */
                                        .batch = BATCH,
                                        .start_at = catch_up_from,
                                        .apply = index_batch,
                                        .finish = catch_up_done,
                                        .ctx = x};
  atomic_store(&x->ready, false);
  const struct dub_runtime_env *env = dub_runtime_env(x->in->rt);
  return !dub_rebuild_run(env->brokers, x->cache, dub_runtime_metrics(x->in->rt), &spec,
                          &x->stop, NULL);
}

static bool index_key_exists(struct intake_index *x)
{
  bool needed = false; /* when Redis does not answer, nothing is known to be lost */
  return dub_rebuild_needed(x->cache, INTAKE_INDEX_KEY, &needed) || !needed;
}

/* Follows duban.cases once the index is complete, until it is lost or a rebuild is
 * asked for (true) or the index stops (false). */
static bool follow(struct intake_index *x)
{
  start_reading(x);
  while(!atomic_load(&x->stop)) {
    if(atomic_exchange(&x->rebuild, false) || !index_key_exists(x))
      return true;
    const struct dub_kafka_msg *msgs = NULL;
    size_t got = 0;
    dub_kafka_reader_poll_batch(x->reader, 100, BATCH, &msgs, &got);
    if(!got)
      continue;
    if(index_batch(x, x->cache, msgs, got)) {
      /* Redis is away: read these events again once it answers. */
      dub_kafka_reader_rewind(x->reader, x->committed);
      struct timespec ts = {0, 500 * 1000000L};
      nanosleep(&ts, NULL);
      continue;
    }
    if(dub_time_mono_ms() - x->checkpoint_at > CHECKPOINT_MS)
      checkpoint(x);
  }
  return false;
}

static void *run(void *arg)
{
  struct intake_index *x = arg;
  x->from_beginning = false;
  while(!atomic_load(&x->stop)) {
    if(!catch_up(x)) {
      struct timespec ts = {0, 500 * 1000000L}; /* kafka away: try again */
      nanosleep(&ts, NULL);
      continue;
    }
    x->from_beginning = false;
    atomic_store(&x->ready, true);
    dub_log_info("deduplication index complete");
    if(!follow(x))
      break;
    atomic_store(&x->ready, false);
    dub_log_warn("deduplication index lost from redis: rebuilding from %s", CASES_TOPIC);
    x->from_beginning = true;
  }
  if(atomic_load(&x->ready))
    checkpoint(x);
  return NULL;
}

enum dub_err intake_index_start(struct intake *in, char **why)
{
  struct intake_index *x = dub_xcalloc(1, sizeof *x);
  x->in = in;
  const struct dub_runtime_env *env = dub_runtime_env(in->rt);
  enum dub_err rc = dub_cache_new(env->redis_url, 1000, 1000, &x->cache, why);
  if(!rc)
    rc = dub_kafka_reader_new(env->brokers, CASES_TOPIC, 10000, &x->reader, why);
  if(rc) {
    dub_cache_free(x->cache);
    free(x);
    return rc;
  }
  x->committed =
      dub_xcalloc((size_t)dub_kafka_reader_partitions(x->reader), sizeof *x->committed);
  dub_xthread_create(&x->thread, run, x, "deduplication index");
  in->index = x;
  return DUB_OK;
}

void intake_index_stop(struct intake *in)
{
  struct intake_index *x = in->index;
  if(!x || atomic_load(&x->stop))
    return;
  atomic_store(&x->ready, false);
  atomic_store(&x->stop, true);
  pthread_join(x->thread, NULL);
  dub_kafka_reader_free(x->reader);
  dub_cache_free(x->cache);
  free(x->committed);
  x->reader = NULL;
  x->cache = NULL;
  x->committed = NULL;
}

void intake_index_free(struct intake *in)
{
  intake_index_stop(in);
  free(in->index);
  in->index = NULL;
}

bool intake_index_ready(struct intake *in)
{
  return in->index && atomic_load(&in->index->ready);
}

void intake_index_rebuild(struct intake *in)
{
  if(in->index)
    atomic_store(&in->index->rebuild, true);
}
