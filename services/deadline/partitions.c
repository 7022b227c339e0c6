/* partitions.c - which partitions of duban.cases this instance owns, when their timers
 * may fire, and the timer events in flight.
 *
 * Firing exactly once rests on three rules. A timer event goes to the case's own
 * partition, so whoever owns the partition next reads it before firing anything: a
 * partition's timers are armed only once it has been read up to its high watermark at
 * assignment. While an event is between its acknowledgement and being read back, its id
 * is in flight and is not published again. And a revoke waits for the scheduler's round,
 * so nothing fires for a partition after it was given up. */
#include "deadline.h"
#include "writes.h"
#include "lifecycle.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "core/log.h"
#include "kafka/kafka.h"
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the in-flight set: a chained hash table of event ids ---------------------------
 */

struct entry {
  struct entry *next;
  int32_t partition;
  bool applied; /* read back and written to its document */
  char id[];
};

struct deadline_inflight {
  struct entry **buckets;
  size_t nbuckets, count;
};

static uint64_t hash(const char *s)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for(; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static void grow(struct deadline_inflight *f)
{
  size_t n = f->nbuckets ? f->nbuckets * 2 : 1024;
  struct entry **b = dub_xcalloc(n, sizeof *b);
  for(size_t i = 0; i < f->nbuckets; i++)
    for(struct entry *e = f->buckets[i], *next; e; e = next) {
      next = e->next;
      size_t k = hash(e->id) & (n - 1);
      e->next = b[k];
      b[k] = e;
    }
  free(f->buckets);
  f->buckets = b;
  f->nbuckets = n;
}

static struct entry **find(struct deadline_inflight *f, const char *id)
{
  struct entry **at = &f->buckets[hash(id) & (f->nbuckets - 1)];
  while(*at && strcmp((*at)->id, id) != 0)
    at = &(*at)->next;
  return at;
}

bool deadline_inflight_add(struct deadline *d, const char *event_id, int32_t p)
{
  struct deadline_inflight *f = d->inflight;
  bool added = false;
  pthread_mutex_lock(&d->lock);
  if(f->count >= f->nbuckets)
    grow(f);
  struct entry **at = find(f, event_id);
  if(!*at) {
    size_t len = strlen(event_id) + 1;
    struct entry *e = dub_xmalloc(sizeof *e + len);
    memcpy(e->id, event_id, len);
    e->partition = p;
    e->applied = false;
    e->next = NULL;
    *at = e;
    f->count++;
    added = true;
  }
  pthread_mutex_unlock(&d->lock);
  return added;
}

void deadline_inflight_remove(struct deadline *d, const char *event_id)
{
  struct deadline_inflight *f = d->inflight;
  pthread_mutex_lock(&d->lock);
  struct entry **at = find(f, event_id);
  if(*at) {
    struct entry *e = *at;
    *at = e->next;
    free(e);
    f->count--;
  }
  pthread_mutex_unlock(&d->lock);
}

void deadline_inflight_applied(struct deadline *d, const char *event_id)
{
  pthread_mutex_lock(&d->lock);
  struct entry **at = find(d->inflight, event_id);
  if(*at)
    (*at)->applied = true;
  pthread_mutex_unlock(&d->lock);
}

void deadline_inflight_purge(struct deadline *d)
{
  struct deadline_inflight *f = d->inflight;
  pthread_mutex_lock(&d->lock);
  for(size_t i = 0; i < f->nbuckets; i++)
    for(struct entry **at = &f->buckets[i]; *at;) {
      if((*at)->applied) {
        struct entry *e = *at;
        *at = e->next;
        free(e);
        f->count--;
      } else {
        at = &(*at)->next;
      }
    }
  pthread_mutex_unlock(&d->lock);
}

/* Forgets the events in flight of partition p. Called with d->lock held. */
static void inflight_drop_partition(struct deadline_inflight *f, int32_t p)
{
  for(size_t i = 0; i < f->nbuckets; i++)
    for(struct entry **at = &f->buckets[i]; *at;) {
      if((*at)->partition == p) {
        struct entry *e = *at;
        *at = e->next;
        free(e);
        f->count--;
      } else {
        at = &(*at)->next;
      }
    }
}

void deadline_partitions_init(struct deadline *d)
{
  pthread_mutex_init(&d->lock, NULL);
  pthread_mutex_init(&d->fire_lock, NULL);
  d->inflight = dub_xcalloc(1, sizeof *d->inflight);
  grow(d->inflight);
}

void deadline_partitions_release(struct deadline *d)
{
  struct deadline_inflight *f = d->inflight;
  if(!f)
    return;
  for(size_t i = 0; i < f->nbuckets; i++)
    for(struct entry *e = f->buckets[i], *next; e; e = next) {
      next = e->next;
      free(e);
    }
  free(f->buckets);
  free(f);
  d->inflight = NULL;
  dub_cache_pipeline_free(d->writes);
  d->writes = NULL;
  deadline_writes_free(d->merged);
  d->merged = NULL;
  pthread_mutex_destroy(&d->fire_lock);
  pthread_mutex_destroy(&d->lock);
}

/* ---- ownership ----------------------------------------------------------------------
 */

static bool in_range(int32_t p)
{
  return p >= 0 && p < DEADLINE_MAX_PARTITIONS;
}

/* Whether partition p's state is complete in Redis; true when Redis cannot tell (the
 * handler then waits for it anyway). */
static bool marker_present(struct deadline *d, int32_t p)
{
  struct dub_cache_reply *r = NULL;
  char *key = deadline_marker_key(p);
  bool present = true;
  if(!dub_cache_commandf(dub_runtime_cache(d->rt), &r, "EXISTS %s", key))
    present = r->type == DUB_CACHE_INT && r->integer == 1;
  else
    dub_log_warn("redis did not answer whether partition %d is complete", (int)p);
  dub_cache_reply_free(r);
  free(key);
  return present;
}

/* Forgets what Redis holds of partition p that a read from the beginning rebuilds. */
static void forget(struct deadline *d, int32_t p)
{
  char *timers = deadline_timers_key(p), *open = deadline_open_key(p),
       *stats = deadline_stats_key(p);
  if(dub_cache_commandf(dub_runtime_cache(d->rt), NULL, "DEL %s %s %s", timers, open,
                        stats))
    dub_log_warn("could not clear partition %d before rebuilding it", (int)p);
  free(stats);
  free(open);
  free(timers);
}

static void mark_complete(struct deadline *d, int32_t p)
{
  char *key = deadline_marker_key(p);
  if(dub_cache_commandf(dub_runtime_cache(d->rt), NULL, "SET %s complete", key))
    dub_log_warn("could not mark partition %d complete", (int)p);
  free(key);
}

void deadline_on_assign(void *ctx, struct dub_kafka_assignment *parts, size_t count)
{
  struct deadline *d = ctx;
  pthread_mutex_lock(&d->lock);
  d->assigned_once = true;
  pthread_mutex_unlock(&d->lock);
  for(size_t i = 0; i < count; i++) {
    int32_t p = parts[i].partition;
    if(!in_range(p) || strcmp(parts[i].topic, DEADLINE_CASES_TOPIC) != 0)
      continue;
    /* Records there, but no sign that Redis holds what they imply: read them all. An
     * unknown high watermark (the broker did not answer in time, as when its restart
     * caused this rebalance) decides nothing: the partition is read as it is, its
     * timers stay unarmed, and the consumer asks again at its next poll. */
    const struct deadline_takeover t = deadline_takeover_decide(
        parts[i].high, parts[i].committed, parts[i].high <= 0 || marker_present(d, p));
    bool rebuild = t.rebuild, armed = t.armed;
    if(!t.known) {
      dub_log_warn("partition %d: high watermark unknown; timers stay unarmed, asking "
                   "again",
                   (int)p);
      dub_runtime_reassess(d->rt, DEADLINE_CASES_TOPIC, p);
    }
    if(rebuild) {
      dub_log_warn("partition %d of %s is not complete in redis: rebuilding it from the "
                   "beginning",
                   (int)p, DEADLINE_CASES_TOPIC);
      forget(d, p);
      parts[i].start = DUB_KAFKA_OFFSET_BEGINNING;
    }
    pthread_mutex_lock(&d->lock);
    struct deadline_partition *dp = &d->parts[p];
    dp->owned = true;
    dp->armed = armed;
    dp->rebuilding = rebuild;
    dp->target = parts[i].high;
    dp->recompute = armed;
    snprintf(dp->scan, sizeof dp->scan, "0");
    pthread_mutex_unlock(&d->lock);
    if(armed)
      mark_complete(d, p);
    dub_log_info("partition %d: committed %lld, high watermark %lld%s", (int)p,
                 (long long)parts[i].committed, (long long)parts[i].high,
                 armed ? ", timers armed" : ", timers armed once read up to it");
  }
}

void deadline_partition_lost(struct deadline *d, int32_t p)
{
  if(!in_range(p))
    return;
  pthread_mutex_lock(&d->lock);
  bool act = d->parts[p].owned && !d->parts[p].rebuilding;
  if(act)
    d->parts[p].armed = false; /* nothing fires from documents that are gone */
  pthread_mutex_unlock(&d->lock);
  if(!act)
    return;
  dub_log_warn("the state of partition %d is gone from redis: rebuilding it from %s",
               (int)p, DEADLINE_CASES_TOPIC);
  dub_runtime_reassess(d->rt, DEADLINE_CASES_TOPIC, p);
}

bool deadline_partition_complete(struct deadline *d, int32_t p)
{
  return marker_present(d, p);
}

void deadline_on_rebalance(void *ctx, bool assigned,
                           const struct dub_kafka_partition *parts, size_t count)
{
  struct deadline *d = ctx;
  if(assigned)
    return;                          /* deadline_on_assign did the work */
  pthread_mutex_lock(&d->fire_lock); /* the scheduler's round ends first */
  pthread_mutex_lock(&d->lock);
  for(size_t i = 0; i < count; i++) {
    int32_t p = parts[i].partition;
    if(!in_range(p) || strcmp(parts[i].topic, DEADLINE_CASES_TOPIC) != 0)
      continue;
    d->parts[p].owned = false;
    d->parts[p].armed = false;
    d->parts[p].rebuilding = false;
    inflight_drop_partition(d->inflight, p);
  }
  pthread_mutex_unlock(&d->lock);
  pthread_mutex_unlock(&d->fire_lock);
}

bool deadline_partition_rebuilding(struct deadline *d, int32_t p)
{
  if(!in_range(p))
    return false;
  pthread_mutex_lock(&d->lock);
  bool r = d->parts[p].rebuilding;
  pthread_mutex_unlock(&d->lock);
  return r;
}

void deadline_partition_progress(struct deadline *d, int32_t p, int64_t offset)
{
  if(!in_range(p))
    return;
  bool armed_now = false;
  pthread_mutex_lock(&d->lock);
  struct deadline_partition *dp = &d->parts[p];
  if(dp->owned && !dp->armed && dp->target >= 0 && offset + 1 >= dp->target) {
    dp->armed = true;
    dp->rebuilding = false;
    dp->recompute = true;
    armed_now = true;
  }
  pthread_mutex_unlock(&d->lock);
  if(armed_now) {
    mark_complete(d, p);
    dub_log_info("partition %d read up to its high watermark: timers armed", (int)p);
  }
}

bool deadline_partitions_ready(struct deadline *d, char **reason)
{
  int waiting = 0;
  pthread_mutex_lock(&d->lock);
  bool assigned = d->assigned_once;
  for(int32_t p = 0; p < DEADLINE_MAX_PARTITIONS; p++)
    waiting += d->parts[p].owned && !d->parts[p].armed;
  pthread_mutex_unlock(&d->lock);
  if(!assigned) {
    *reason = dub_xasprintf("waiting for partitions of %s from the consumer group",
                            DEADLINE_CASES_TOPIC);
    return false;
  }
  if(waiting)
    *reason = dub_xasprintf("catching up with %d partition(s) of %s", waiting,
                            DEADLINE_CASES_TOPIC);
  return waiting == 0;
}
