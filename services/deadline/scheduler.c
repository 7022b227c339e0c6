/* scheduler.c - the thread that fires the timers of the partitions this instance owns,
 * and recomputes the moments of open cases when the calendar changed.
 *
 * Each round looks up, per armed partition, the cases whose earliest timer is due
 * (duban:deadline:timers:<p>), reads their documents, publishes every due timer event
 * not already in flight to the case's partition, and waits for Kafka's acknowledgement.
 * The documents change only when the consumer reads the events back
 * (on_case_event.c): one writer per document. */
#include "deadline.h"
#include "lifecycle.h"

#include "cache/cache.h"
#include "config/config.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "json/json.h"
#include "kafka/cloudevent.h"
#include "metrics/metrics.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIRE_BATCH 2000     /* cases looked at per partition and round */
#define RECOMPUTE_BATCH 500 /* open cases recomputed per partition and round */
#define ACK_NAG_MS 10000 /* how often a wait for delivery reports says it still waits */
#define GAUGE_EVERY_MS 2000

/* One published event awaiting its acknowledgement. */
struct fire {
  struct round *round;
  char id[128];
  char kind[32];
  int64_t at_ms; /* its moment; -1 for recomputations */
  enum dub_err err;
};

/* The events of one round, counted down by the delivery reports. */
struct round {
  pthread_mutex_t m;
  pthread_cond_t c;
  size_t pending;
};

struct deadline_scheduler {
  struct deadline *d;
  struct dub_cache *cache; /* its own connection: long pipelines block nobody */
  struct dub_config *seen; /* the configuration whose calendar was last applied */
  int64_t gauges_at;
};

/* Runs on the producer's poll thread. */
static void on_delivered(void *opaque, enum dub_err err, int32_t partition,
                         int64_t offset)
{
  struct fire *f = opaque;
  (void)partition;
  (void)offset;
  pthread_mutex_lock(&f->round->m);
  f->err = err;
  f->round->pending--;
  pthread_cond_signal(&f->round->c);
  pthread_mutex_unlock(&f->round->m);
}

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while(nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

/* Reads the documents of 'n' cases; docs[i] is NULL when absent or unreadable. */
static enum dub_err read_docs(struct dub_cache *cache, const char *const *ids, size_t n,
                              json_t **docs)
{
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  for(size_t i = 0; i < n; i++) {
    char *key = deadline_case_key(ids[i]);
    dub_cache_pipeline_addf(p, "GET %s", key);
    free(key);
  }
  enum dub_err rc = dub_cache_pipeline_exec(cache, p, &replies);
  for(size_t i = 0; !rc && i < n; i++) {
    char *why = NULL;
    docs[i] = NULL;
    if(replies[i]->type == DUB_CACHE_STRING &&
       dub_json_parse(replies[i]->str, replies[i]->len, &docs[i], &why))
      free(why);
  }
  if(!rc)
    dub_cache_replies_free(replies, n);
  dub_cache_pipeline_free(p);
  return rc;
}

static json_t *event_of(const char *id, const char *type, const char *case_id,
                        int64_t now, json_t *data)
{
  char time[DUB_TIME_LEN];
  dub_time_format(now, DUB_SHANGHAI_OFFSET_MIN, time);
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id",
                   id, "source", DEADLINE_SOURCE, "type", type, "subject", case_id,
                   "time", time, "datacontenttype", "application/json", "data", data);
}

/* Publishes one event of the round; false (nothing pending) when it cannot be queued. */
static bool publish(struct deadline *d, struct round *round, struct fire *f,
                    const char *case_id, json_t *event)
{
  f->round = round;
  f->err = DUB_OK;
  pthread_mutex_lock(&round->m);
  round->pending++;
  pthread_mutex_unlock(&round->m);
  enum dub_err rc = dub_ce_produce(dub_runtime_producer(d->rt), DEADLINE_CASES_TOPIC,
                                   case_id, event, on_delivered, f);
  json_decref(event);
  if(rc) {
    pthread_mutex_lock(&round->m);
    round->pending--;
    pthread_mutex_unlock(&round->m);
    deadline_inflight_remove(d, f->id);
    dub_log_warn("timer event %s not queued: %s", f->id, dub_err_code(rc));
    return false;
  }
  return true;
}

/* Waits for every delivery report of the round. Without a bound, on purpose: the
 * reports write into the round and its fires, which live in the caller's frame, so
 * giving up would leave them writing into freed memory (review C1); and each report
 * does come, since the producer fails a message at its delivery timeout (5 s). The
 * wait is on the monotonic clock and says every ACK_NAG_MS that it still waits, so a
 * step of the wall clock neither ends it nor hides a stuck producer. */
static void wait_round(struct round *round)
{
  int64_t since = dub_time_mono_ms();
  pthread_mutex_lock(&round->m);
  while(round->pending > 0) {
    const struct timespec until = dub_time_mono_after(ACK_NAG_MS);
    if(pthread_cond_timedwait(&round->c, &round->m, &until) == ETIMEDOUT)
      dub_log_warn("still waiting for %zu delivery report(s) of timer events, after "
                   "%lld ms",
                   round->pending, (long long)(dub_time_mono_ms() - since));
  }
  pthread_mutex_unlock(&round->m);
}

/* Counts what fired and forgets what did not (it is tried again next round). */
static void settle(struct deadline *d, struct fire *fires, size_t n)
{
  struct dub_metrics *m = dub_runtime_metrics(d->rt);
  int64_t now = deadline_now(d);
  for(size_t i = 0; i < n; i++) {
    struct fire *f = &fires[i];
    if(f->err) {
      deadline_inflight_remove(d, f->id);
      dub_log_warn("timer event %s not acknowledged (%s): tried again", f->id,
                   dub_err_code(f->err));
      continue;
    }
    char *labels = dub_xasprintf("kind=\"%s\"", f->kind);
    dub_metrics_counter_add(m, "duban_deadline_timers_fired_total",
                            "Timer events published, by kind.", labels, 1);
    free(labels);
    if(f->at_ms >= 0)
      dub_metrics_histogram_observe(m, "duban_deadline_fire_lag_seconds",
                                    "From a timer's moment to Kafka's acknowledgement "
                                    "of its event.",
                                    NULL, (double)(now - f->at_ms) / 1000.0);
  }
}

static void kind_of(const struct deadline_due *due, char out[32])
{
  if(due->level)
    snprintf(out, 32, "escalated_%d", due->level);
  else if(strcmp(due->type, "duban.case.warning") == 0)
    snprintf(out, 32, "warning");
  else
    snprintf(out, 32, "overdue_%s", due->clock);
}

/* The cases of one round, their documents and the events published for them. */
struct batch {
  size_t count;
  const char **case_ids; /* borrowed from the replies that listed them */
  int32_t *partition;
  json_t **docs; /* NULL where absent or unreadable */
  struct fire *fires;
  size_t nfires;
  struct round round;
};

/* Room for 'count' cases; fill case_ids and partition, then batch_read(). */
static void batch_open(struct batch *b, size_t count, size_t fires_per_case)
{
  size_t n = count ? count : 1;
  b->count = count;
  b->case_ids = dub_xcalloc(n, sizeof *b->case_ids);
  b->partition = dub_xcalloc(n, sizeof *b->partition);
  b->docs = dub_xcalloc(n, sizeof *b->docs);
  b->fires = dub_xcalloc(n * fires_per_case, sizeof *b->fires);
  b->nfires = 0;
  b->round.pending = 0;
  pthread_mutex_init(&b->round.m, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* wait_round() measures on it */
  pthread_cond_init(&b->round.c, &attr);
  pthread_condattr_destroy(&attr);
}

/* Reads the documents; false when Redis does not answer. */
static bool batch_read(struct deadline_scheduler *s, struct batch *b)
{
  return !b->count || !read_docs(s->cache, b->case_ids, b->count, b->docs);
}

/* Waits for the acknowledgements, counts them and frees the batch. */
static void batch_close(struct deadline *d, struct batch *b)
{
  wait_round(&b->round);
  settle(d, b->fires, b->nfires);
  for(size_t i = 0; i < b->count; i++)
    json_decref(b->docs[i]);
  pthread_cond_destroy(&b->round.c);
  pthread_mutex_destroy(&b->round.m);
  free(b->fires);
  free(b->docs);
  free(b->partition);
  free(b->case_ids);
}

/* Publishes 'event' (taken; its subject is the case) under f's id, unless in flight. */
static void batch_publish(struct deadline *d, struct batch *b, int32_t p, struct fire *f,
                          json_t *event)
{
  const char *case_id = dub_json_str(event, "subject");
  if(!deadline_inflight_add(d, f->id, p)) {
    json_decref(event); /* published, not read back yet */
    return;
  }
  if(publish(d, &b->round, f, case_id, event))
    b->nfires++;
}

/* Fires what is due in every armed partition: one round trip for the due cases, one
 * for their documents, then every event published before waiting for any
 * acknowledgement. */
static void fire_all(struct deadline_scheduler *s, const bool *armed)
{
  struct deadline *d = s->d;
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  int32_t which[DEADLINE_MAX_PARTITIONS];
  size_t nparts = 0, total = 0;
  int64_t now = deadline_now(d);
  char upto[24];
  snprintf(upto, sizeof upto, "%lld", (long long)now);
  for(int32_t i = 0; i < DEADLINE_MAX_PARTITIONS; i++) {
    if(!armed[i])
      continue;
    char *key = deadline_timers_key(i);
    dub_cache_pipeline_addf(p, "ZRANGEBYSCORE %s -inf %s LIMIT 0 %d", key, upto,
                            FIRE_BATCH);
    free(key);
    which[nparts++] = i;
  }
  if(!nparts || dub_cache_pipeline_exec(s->cache, p, &replies)) {
    dub_cache_pipeline_free(p);
    return;
  }
  for(size_t k = 0; k < nparts; k++)
    if(replies[k]->type == DUB_CACHE_ARRAY)
      total += replies[k]->count;
  if(total) {
    struct batch b;
    size_t n = 0;
    batch_open(&b, total, DEADLINE_MAX_DUE);
    for(size_t k = 0; k < nparts; k++)
      for(size_t i = 0; replies[k]->type == DUB_CACHE_ARRAY && i < replies[k]->count;
          i++) {
        b.case_ids[n] = replies[k]->elements[i]->str;
        b.partition[n++] = which[k];
      }
    bool read = batch_read(s, &b);
    for(size_t i = 0; read && i < b.count; i++) {
      struct deadline_due due[DEADLINE_MAX_DUE];
      size_t ndue = b.docs[i] ? deadline_case_due(b.docs[i], now, due) : 0;
      for(size_t k = 0; k < ndue; k++) {
        struct fire *f = &b.fires[b.nfires];
        memcpy(f->id, due[k].id, sizeof f->id);
        kind_of(&due[k], f->kind);
        f->at_ms = due[k].at_ms;
        batch_publish(d, &b, b.partition[i], f,
                      event_of(due[k].id, due[k].type, b.case_ids[i], now,
                               deadline_case_timer_data(b.docs[i], &due[k])));
      }
    }
    batch_close(d, &b);
  }
  dub_cache_replies_free(replies, nparts);
  dub_cache_pipeline_free(p);
}

/* Recomputes a slice of partition p's open cases on the current calendar. */
static void recompute_partition(struct deadline_scheduler *s, int32_t p,
                                const struct dub_calendar *cal)
{
  struct deadline *d = s->d;
  struct dub_cache_reply *r = NULL;
  struct batch b;
  char cursor[32];
  pthread_mutex_lock(&d->lock);
  snprintf(cursor, sizeof cursor, "%s", d->parts[p].scan);
  pthread_mutex_unlock(&d->lock);
  char *key = deadline_open_key(p);
  enum dub_err rc = dub_cache_commandf(s->cache, &r, "SSCAN %s %s COUNT %d", key, cursor,
                                       RECOMPUTE_BATCH);
  free(key);
  if(rc || r->type != DUB_CACHE_ARRAY || r->count != 2 ||
     r->elements[1]->type != DUB_CACHE_ARRAY) {
    dub_cache_reply_free(r);
    return;
  }
  const struct dub_cache_reply *ids = r->elements[1];
  batch_open(&b, ids->count, 1);
  for(size_t i = 0; i < ids->count; i++) {
    b.case_ids[i] = ids->elements[i]->str;
    b.partition[i] = p;
  }
  bool read = batch_read(s, &b);
  for(size_t i = 0; read && i < ids->count; i++) {
    json_t *changed = NULL;
    if(!b.docs[i] || !deadline_case_recompute(b.docs[i], cal, &changed))
      continue;
    long long gen = 0;
    dub_json_int(changed, "generation", &gen);
    struct fire *f = &b.fires[b.nfires];
    snprintf(f->id, sizeof f->id, "%.96s.deadline_changed.%lld", b.case_ids[i], gen);
    snprintf(f->kind, sizeof f->kind, "deadline_changed");
    f->at_ms = -1;
    batch_publish(d, &b, p, f,
                  event_of(f->id, "duban.case.deadline_changed", b.case_ids[i],
                           deadline_now(d), changed));
  }
  batch_close(d, &b);
  if(read) {
    pthread_mutex_lock(&d->lock);
    snprintf(d->parts[p].scan, sizeof d->parts[p].scan, "%s", r->elements[0]->str);
    if(strcmp(r->elements[0]->str, "0") == 0)
      d->parts[p].recompute = false;
    pthread_mutex_unlock(&d->lock);
  }
  dub_cache_reply_free(r);
}

/* After a reload with another calendar, every owned partition is recomputed. */
static void notice_calendar(struct deadline_scheduler *s, struct dub_config *config)
{
  struct deadline *d = s->d;
  if(s->seen && s->seen->calendar == config->calendar)
    return;
  if(s->seen) {
    dub_log_info("calendar changed: recomputing the moments of open cases");
    pthread_mutex_lock(&d->lock);
    for(int32_t p = 0; p < DEADLINE_MAX_PARTITIONS; p++)
      if(d->parts[p].owned) {
        d->parts[p].recompute = true;
        snprintf(d->parts[p].scan, sizeof d->parts[p].scan, "0");
      }
    pthread_mutex_unlock(&d->lock);
  }
  dub_config_unref(s->seen);
  s->seen = dub_config_ref(config);
}

/* Partitions whose state Redis lost (flushed, or a new empty Redis) are rebuilt. */
static void check_markers(struct deadline_scheduler *s, const bool *armed)
{
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  int32_t which[DEADLINE_MAX_PARTITIONS];
  size_t n = 0;
  for(int32_t i = 0; i < DEADLINE_MAX_PARTITIONS; i++) {
    if(!armed[i])
      continue;
    char *key = deadline_marker_key(i);
    dub_cache_pipeline_addf(p, "EXISTS %s", key);
    free(key);
    which[n++] = i;
  }
  if(n && !dub_cache_pipeline_exec(s->cache, p, &replies)) {
    for(size_t k = 0; k < n; k++)
      if(replies[k]->type == DUB_CACHE_INT && replies[k]->integer == 0)
        deadline_partition_lost(s->d, which[k]);
    dub_cache_replies_free(replies, n);
  }
  dub_cache_pipeline_free(p);
}

/* Active timers and cases by state, over the partitions this instance owns. */
static void update_gauges(struct deadline_scheduler *s, const bool *owned)
{
  struct deadline *d = s->d;
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  for(int32_t i = 0; i < DEADLINE_MAX_PARTITIONS; i++) {
    if(!owned[i])
      continue;
    char *timers = deadline_timers_key(i), *stats = deadline_stats_key(i);
    dub_cache_pipeline_addf(p, "ZCARD %s", timers);
    dub_cache_pipeline_addf(p, "HGETALL %s", stats);
    free(stats);
    free(timers);
  }
  size_t n = dub_cache_pipeline_count(p);
  if(n && !dub_cache_pipeline_exec(s->cache, p, &replies)) {
    double active = 0;
    json_t *states = json_object();
    for(size_t i = 0; i + 1 < n; i += 2) {
      if(replies[i]->type == DUB_CACHE_INT)
        active += (double)replies[i]->integer;
      const struct dub_cache_reply *h = replies[i + 1];
      for(size_t k = 0; h->type == DUB_CACHE_ARRAY && k + 1 < h->count; k += 2) {
        const char *field = h->elements[k]->str;
        if(strncmp(field, "state/", 6) != 0)
          continue;
        long long v = strtoll(h->elements[k + 1]->str, NULL, 10);
        json_t *old = json_object_get(states, field + 6);
        json_object_set_new(states, field + 6,
                            json_integer(v + (old ? json_integer_value(old) : 0)));
      }
    }
    struct dub_metrics *m = dub_runtime_metrics(d->rt);
    dub_metrics_gauge_set(m, "duban_deadline_timers_active",
                          "Cases with a timer left in the partitions this instance owns.",
                          NULL, active);
    const char *state;
    json_t *v;
    json_object_foreach(states, state, v)
    {
      char *labels = dub_xasprintf("state=\"%s\"", state);
      dub_metrics_gauge_set(m, "duban_deadline_cases",
                            "Cases by state in the partitions this instance owns.",
                            labels, (double)json_integer_value(v));
      free(labels);
    }
    json_decref(states);
    dub_cache_replies_free(replies, n);
  }
  dub_cache_pipeline_free(p);
}

static void *run(void *arg)
{
  struct deadline_scheduler *s = arg;
  struct deadline *d = s->d;
  while(!atomic_load(&d->stop)) {
    bool armed[DEADLINE_MAX_PARTITIONS], recompute[DEADLINE_MAX_PARTITIONS];
    struct dub_config *config = dub_runtime_config(d->rt);
    notice_calendar(s, config);
    pthread_mutex_lock(&d->fire_lock);
    pthread_mutex_lock(&d->lock);
    for(int32_t p = 0; p < DEADLINE_MAX_PARTITIONS; p++) {
      armed[p] = d->parts[p].owned && d->parts[p].armed;
      recompute[p] = armed[p] && d->parts[p].recompute;
    }
    pthread_mutex_unlock(&d->lock);
    deadline_inflight_purge(d); /* before any document of this round is read */
    fire_all(s, armed);
    for(int32_t p = 0; p < DEADLINE_MAX_PARTITIONS && !atomic_load(&d->stop); p++)
      if(recompute[p])
        recompute_partition(s, p, config->calendar);
    pthread_mutex_unlock(&d->fire_lock);
    dub_config_unref(config);
    if(dub_time_mono_ms() - s->gauges_at >= GAUGE_EVERY_MS) {
      check_markers(s, armed);
      update_gauges(s, armed);
      s->gauges_at = dub_time_mono_ms();
    }
    sleep_ms(d->conf.tick_ms);
  }
  return NULL;
}

enum dub_err deadline_scheduler_start(struct deadline *d, char **why)
{
  struct deadline_scheduler *s = dub_xcalloc(1, sizeof *s);
  s->d = d;
  enum dub_err rc =
      dub_cache_new(dub_runtime_env(d->rt)->redis_url, 1000, 5000, &s->cache, why);
  if(!rc && pthread_create(&d->scheduler, NULL, run, s)) {
    dub_cache_free(s->cache);
    *why = dub_xstrdup("cannot start the scheduler thread");
    rc = DUB_ERR_INTERNAL;
  }
  if(rc) {
    free(s);
    return rc;
  }
  d->sched = s;
  return DUB_OK;
}

void deadline_scheduler_stop(struct deadline *d)
{
  struct deadline_scheduler *s = d->sched;
  if(!s)
    return;
  atomic_store(&d->stop, true);
  pthread_join(d->scheduler, NULL);
  dub_config_unref(s->seen);
  dub_cache_free(s->cache);
  free(s);
  d->sched = NULL;
}
