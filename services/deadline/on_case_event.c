/* on_case_event.c - applies each event of duban.cases to its case's document and keeps
 * what is derived from it (timers, open cases, ledger index, counts) in one pipeline. */
#include "deadline.h"
#include "lifecycle.h"
#include "writes.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "json/json.h"
#include "kafka/kafka.h"
#include "metrics/metrics.h"
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE "(none)"

/* The types the scheduler publishes: in flight until read back here. */
static bool published_here(const char *type)
{
  return strcmp(type, "duban.case.warning") == 0 ||
         strcmp(type, "duban.case.overdue") == 0 ||
         strcmp(type, "duban.case.escalated") == 0 ||
         strcmp(type, "duban.case.deadline_changed") == 0;
}

/* Adds HINCRBY 'key' <a>/<b>[/<c>] 'by' to the poll's counters. */
static void hincrby(struct deadline_writes *w, const char *key, const char *a,
                    const char *b, const char *c, long long by)
{
  char small[256];
  int n = c ? snprintf(small, sizeof small, "%s/%s/%s", a, b, c)
            : snprintf(small, sizeof small, "%s/%s", a, b);
  char *field = n >= 0 && (size_t)n < sizeof small ? small
                : c                                ? dub_xasprintf("%s/%s/%s", a, b, c)
                                                   : dub_xasprintf("%s/%s", a, b);
  deadline_writes_hincrby(w, key, field, by);
  if(field != small)
    free(field);
}

/* Adds HINCRBY commands for the difference between two counts of one case. */
static void count_delta(struct deadline_writes *p, const char *key,
                        const struct deadline_counts *before,
                        const struct deadline_counts *after)
{
  struct item {
    const char *name;
    bool was, is;
  } items[] = {
      {"open", before && before->open, after->open},
      {"overdue", before && before->overdue, after->overdue},
      {"closed_on_time", before && before->closed_on_time, after->closed_on_time},
      {"closed_late", before && before->closed_late, after->closed_late},
  };
  const char *dims[3] = {"unit", "category", "region"};
  const char *was_v[3] = {before ? before->unit : NULL, before ? before->category : NULL,
                          before ? before->region : NULL};
  const char *is_v[3] = {after->unit, after->category, after->region};
  for(size_t k = 0; k < 3; k++)
    for(size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
      const char *a = was_v[k] ? was_v[k] : NONE, *b = is_v[k] ? is_v[k] : NONE;
      bool same = strcmp(a, b) == 0;
      if(same && items[i].was == items[i].is)
        continue;
      if(items[i].was)
        hincrby(p, key, dims[k], a, items[i].name, -1);
      if(items[i].is)
        hincrby(p, key, dims[k], b, items[i].name, 1);
    }
  const char *s0 = before ? before->state : NULL, *s1 = after->state;
  if(!s0 || strcmp(s0, s1) != 0) {
    if(s0)
      hincrby(p, key, "state", s0, NULL, -1);
    hincrby(p, key, "state", s1, NULL, 1);
  }
}

/* Adds to 'w' the writes of one applied event: the document and what follows from it
 * (the document is written after the rest, so that a redelivery finds it unwritten
 * unless everything else was done). */
static void store(struct deadline_writes *w, int32_t partition, const char *case_id,
                  const json_t *doc, const char *old_unit,
                  const struct deadline_counts *before)
{
  struct deadline_counts after;
  char *timers = deadline_timers_key(partition), *open = deadline_open_key(partition),
       *stats = deadline_stats_key(partition), *key = deadline_case_key(case_id);
  deadline_case_counts(doc, &after);
  int64_t next = deadline_case_next(doc);
  if(next >= 0)
    deadline_writes_zadd(w, timers, next, case_id);
  else
    deadline_writes_zrem(w, timers, case_id);
  (after.open ? deadline_writes_sadd : deadline_writes_srem)(w, open, case_id);
  if(!before)
    deadline_writes_zadd(w, "duban:ledger", 0, case_id);
  const char *unit = after.unit;
  if(old_unit && (!unit || strcmp(old_unit, unit) != 0)) {
    char *unit_key = dub_xasprintf("duban:ledger:unit:%s", old_unit);
    deadline_writes_zrem(w, unit_key, case_id);
    free(unit_key);
  }
  if(unit && (!old_unit || strcmp(old_unit, unit) != 0)) {
    char *unit_key = dub_xasprintf("duban:ledger:unit:%s", unit);
    deadline_writes_zadd(w, unit_key, 0, case_id);
    free(unit_key);
  }
  count_delta(w, stats, before, &after);
  deadline_writes_sadd(w, "duban:deadline:stats", stats);
  deadline_writes_set_json(w, key, doc);
  free(key);
  free(stats);
  free(open);
  free(timers);
}

static void count_invalid(struct deadline *d, const char *type)
{
  char *t = dub_metrics_label_escape(type);
  char *labels = dub_xasprintf("type=\"%s\"", t);
  dub_metrics_counter_add(
      dub_runtime_metrics(d->rt), "duban_deadline_invalid_transitions_total",
      "Case events the lifecycle did not allow (sent to duban.dlq).", labels, 1);
  free(labels);
  free(t);
}

/* A case's counts with their strings copied, to compare after the document changed. */
struct kept_counts {
  struct deadline_counts c;
  char *strings[4];
};

static void keep_counts(const json_t *doc, struct kept_counts *k)
{
  deadline_case_counts(doc, &k->c);
  const char **fields[4] = {&k->c.state, &k->c.unit, &k->c.category, &k->c.region};
  for(size_t i = 0; i < 4; i++) {
    k->strings[i] = *fields[i] ? dub_xstrdup(*fields[i]) : NULL;
    *fields[i] = k->strings[i];
  }
}

static void release_counts(struct kept_counts *k)
{
  for(size_t i = 0; i < 4; i++)
    free(k->strings[i]);
}

/* One case of a poll: its document as read from Redis, then as the poll's earlier
 * events left it. Its writes go to the pipeline once, after the poll's last event
 * (a document per case and poll, not per event). */
struct slot {
  json_t *doc;               /* owned; NULL unless rc is DUB_OK */
  enum dub_err rc;           /* DUB_OK, DUB_ERR_NOT_FOUND, or why the read failed */
  bool dirty;                /* an event of the poll changed doc: it is to be written */
  bool had;                  /* and there was a document before the first of them */
  struct kept_counts before; /* its counts then (when had) */
  int32_t partition;
  const char *case_id; /* borrowed from the first event that changed it */
};

/* What one poll works with. */
struct poll {
  struct deadline *d;
  const struct dub_config *config;
  struct dub_case_event *evs; /* per message; decoded unless results[i] says otherwise */
  size_t *slot_of;            /* per message: its case's slot */
  struct slot *slots;
  size_t nslots;
  char **applied;            /* per message: the log line once it was applied */
  struct deadline_writes *w; /* the writes of every applied event, merged */
};

/* Reads the documents of every case of the poll in one round trip. */
static enum dub_err fetch(struct deadline *d, struct slot *slots, size_t nslots,
                          const struct dub_case_event *evs, const size_t *first_of)
{
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  char **keys = dub_xcalloc(nslots, sizeof *keys);
  for(size_t k = 0; k < nslots; k++) {
    keys[k] = deadline_case_key(evs[first_of[k]].case_id);
    const char *argv[] = {"GET", keys[k]};
    dub_cache_pipeline_add(p, 2, argv, NULL);
  }
  enum dub_err rc = dub_cache_pipeline_exec(dub_runtime_cache(d->rt), p, &replies);
  for(size_t k = 0; !rc && k < nslots; k++)
    slots[k].rc = dub_runtime_reply_json(replies[k], keys[k], &slots[k].doc);
  if(!rc)
    dub_cache_replies_free(replies, nslots);
  for(size_t k = 0; k < nslots; k++)
    free(keys[k]);
  free(keys);
  dub_cache_pipeline_free(p);
  return rc;
}

/* Whether 'doc' started from received event 'id' at an offset before 'offset': read
 * earlier in this partition, so the message at 'offset' is a copy of it. */
static bool received_earlier(const json_t *doc, const char *id, int64_t offset)
{
  const json_t *first = json_array_get(json_object_get(doc, "history"), 0);
  const char *type = dub_json_str(first, "type"), *first_id = dub_json_str(first, "id");
  const json_t *at = json_object_get(first, "offset");
  return type && strcmp(type, "duban.case.received") == 0 && first_id &&
         strcmp(first_id, id) == 0 && json_is_integer(at) &&
         json_integer_value(at) < offset;
}

/* Adds the slot's writes (its document as it is now) to the pipeline. */
static void flush_slot(struct deadline_writes *out, struct slot *slot)
{
  store(out, slot->partition, slot->case_id, slot->doc,
        slot->had ? slot->before.c.unit : NULL, slot->had ? &slot->before.c : NULL);
  release_counts(&slot->before);
  memset(&slot->before, 0, sizeof slot->before);
  slot->dirty = false;
}

/* Applies message i to its case's working document; its slot is written after the
 * poll's last event. Returns as a handler does; *why for the DLQ. */
static enum dub_err apply(struct poll *pl, const struct dub_kafka_msg *msg, size_t i,
                          char **why)
{
  struct deadline *d = pl->d;
  struct dub_case_event *ev = &pl->evs[i];
  struct slot *slot = &pl->slots[pl->slot_of[i]];
  struct kept_counts before = {0};
  bool had = false;
  /* When Duban wrote it, on this service's clock. */
  int64_t at_ms = (msg->timestamp_ms > 0 ? msg->timestamp_ms : dub_time_now_ms()) +
                  d->conf.clock_offset_ms;
  bool received = strcmp(ev->type, "duban.case.received") == 0;
  bool rebuilding = deadline_partition_rebuilding(d, msg->partition);
  enum dub_err rc = slot->rc;
  /* Rebuilding: every document starts again at its received event, unless this is a
   * second copy of the one it started from in this read (intake derives case ids from
   * the publisher's event, so a retry it took after the claim expired writes the same
   * received event again: review C12j). */
  if(!rc && received && rebuilding && !received_earlier(slot->doc, ev->id, msg->offset))
    rc = DUB_ERR_NOT_FOUND;
  if(rc == DUB_ERR_NOT_FOUND && received) {
    json_t *doc =
        deadline_case_new(ev->data, pl->config->sla, pl->config->calendar, &rc, why);
    if(rc)
      return rc;
    json_array_append_new(
        json_object_get(doc, "history"),
        json_pack("{s:s, s:s, s:O?, s:O?, s:I}", "type", ev->type, "id", ev->id, "source",
                  json_object_get(ev->event, "source"), "time",
                  json_object_get(ev->event, "time"), "offset", (json_int_t)msg->offset));
    if(slot->dirty) /* an earlier event of the poll changed the old one: written first */
      flush_slot(pl->w, slot);
    json_decref(slot->doc);
    slot->doc = doc;
    slot->rc = DUB_OK;
  } else if(rc == DUB_ERR_NOT_FOUND && !rebuilding &&
            !deadline_partition_complete(d, msg->partition)) {
    /* Redis lost the partition's state: rebuild it, then this event comes again. */
    deadline_partition_lost(d, msg->partition);
    return DUB_ERR_UNAVAILABLE;
  } else if(rc == DUB_ERR_NOT_FOUND) {
    *why = dub_xasprintf("%s for case '%s', which deadline has not seen", ev->type,
                         ev->case_id);
    return rc;
  } else if(rc) {
    return rc;
  } else if(deadline_case_has_event(slot->doc, ev->id)) {
    return DUB_OK; /* a redelivery: applied already */
  } else {
    keep_counts(slot->doc, &before);
    had = true;
    /* On failure the document is left as it was, for the poll's later events. */
    rc = deadline_case_apply(slot->doc, ev->event, at_ms, pl->config->calendar, why);
    if(rc == DUB_ERR_INVALID_TRANSITION) {
      count_invalid(d, ev->type);
      dub_log_at(DUB_LOG_WARN, ev->case_id, ev->traceparent, "%s", *why);
    }
    if(rc) {
      release_counts(&before);
      return rc;
    }
  }
  if(!slot->dirty) {
    slot->dirty = true;
    slot->had = had;
    slot->before = before; /* its strings now the slot's */
    memset(&before, 0, sizeof before);
    slot->partition = msg->partition;
    slot->case_id = ev->case_id;
  }
  /* A line per event as it happens; while a partition is rebuilt, its replayed events
   * say nothing unless asked (debug), sparing a JSON line and a write(2) each. */
  if(dub_log_enabled(rebuilding ? DUB_LOG_DEBUG : DUB_LOG_INFO))
    pl->applied[i] = dub_xasprintf("%s applied; state %s, due %s", ev->type,
                                   dub_json_str(slot->doc, "state"),
                                   dub_json_str(slot->doc, "due_at"));
  release_counts(&before);
  return DUB_OK;
}

/* Whether an earlier message of the poll from msgs[i]'s partition is to come again: then
 * msgs[i] must wait too, or its case would see events out of order. */
static bool held_back(const struct dub_kafka_msg *msgs, const enum dub_err *results,
                      size_t i)
{
  for(size_t j = 0; j < i; j++)
    if(msgs[j].partition == msgs[i].partition &&
       (results[j] == DUB_ERR_UNAVAILABLE || results[j] == DUB_ERR_TIMEOUT))
      return true;
  return false;
}

/* Marks every message that was applied, or was to be, for another delivery. */
static void retry_all(size_t n, enum dub_err *results, char **whys, enum dub_err rc)
{
  for(size_t i = 0; i < n; i++) {
    if(results[i] == DUB_OK) {
      results[i] = rc;
      free(whys[i]);
      whys[i] = NULL;
    }
  }
}

/* dub_kafka_batch_handler_fn for duban.cases: a poll's documents are read in one round
 * trip and everything its events change is written in another (one round trip per event
 * held the rebuild of a filled topic to a few thousand events a second). */
void deadline_on_case_events(void *ctx, const struct dub_kafka_msg *msgs, size_t n,
                             enum dub_err *results, char **whys)
{
  struct deadline *d = ctx;
  struct dub_config *config = dub_runtime_config(d->rt);
  struct poll pl = {.d = d,
                    .config = config,
                    .evs = dub_xcalloc(n, sizeof *pl.evs),
                    .slot_of = dub_xcalloc(n, sizeof *pl.slot_of),
                    .slots = dub_xcalloc(n, sizeof *pl.slots),
                    .applied = dub_xcalloc(n, sizeof *pl.applied),
                    .w = d->merged ? d->merged : deadline_writes_new()};
  d->merged = NULL; /* the poll's until it ends */
  struct dub_cache_pipeline *out = d->writes ? d->writes : dub_cache_pipeline_new();
  d->writes = NULL;
  size_t *first_of = dub_xcalloc(n, sizeof *first_of); /* per slot: its first message */
  json_t *index = json_object();                       /* case id -> slot */
  /* The poll's writes are one transaction: Redis refusing some of them (OOM once its
   * memory crosses maxmemory half-way, READONLY after a failover) must not leave a
   * document that lists an event whose timers were never written, since a redelivery
   * finds the event in the history and skips it. */
  bool any_retry = false;
  for(size_t i = 0; i < n; i++) {
    results[i] = dub_case_event_decode(&msgs[i], &pl.evs[i], &whys[i]);
    if(results[i])
      continue; /* dead-lettered: the partition moves on */
    json_t *k = json_object_get(index, pl.evs[i].case_id);
    if(k) {
      pl.slot_of[i] = (size_t)json_integer_value(k);
    } else {
      pl.slot_of[i] = pl.nslots;
      first_of[pl.nslots] = i;
      json_object_set_new(index, pl.evs[i].case_id,
                          json_integer((json_int_t)pl.nslots++));
    }
  }
  enum dub_err rc = pl.nslots ? fetch(d, pl.slots, pl.nslots, pl.evs, first_of) : DUB_OK;
  if(rc)
    retry_all(n, results, whys, rc); /* Redis: retried */
  for(size_t i = 0; !rc && i < n; i++) {
    if(results[i])
      continue;
    if(any_retry && held_back(msgs, results, i)) {
      results[i] = DUB_ERR_UNAVAILABLE;
      continue;
    }
    results[i] = apply(&pl, &msgs[i], i, &whys[i]);
    any_retry |= results[i] == DUB_ERR_UNAVAILABLE || results[i] == DUB_ERR_TIMEOUT;
  }
  for(size_t k = 0; !rc && k < pl.nslots; k++)
    if(pl.slots[k].dirty)
      flush_slot(pl.w, &pl.slots[k]);
  if(!rc && !deadline_writes_empty(pl.w)) {
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    dub_cache_pipeline_add(out, 1, multi, NULL);
    deadline_writes_flush(pl.w, out);
    dub_cache_pipeline_add(out, 1, exec, NULL);
    rc = dub_cache_pipeline_exec(dub_runtime_cache(d->rt), out, NULL);
    if(rc)
      retry_all(n, results, whys, rc); /* written or not, each comes again */
  }
  any_retry = false;
  for(size_t i = 0; i < n; i++)
    any_retry |= results[i] == DUB_ERR_UNAVAILABLE || results[i] == DUB_ERR_TIMEOUT;
  for(size_t i = 0; i < n; i++) {
    const struct dub_case_event *ev = &pl.evs[i];
    bool retried = results[i] == DUB_ERR_UNAVAILABLE || results[i] == DUB_ERR_TIMEOUT;
    /* Processed, or dead-lettered: either way the partition moved past it, unless an
     * earlier message of the partition comes again (the consumer stores neither). */
    if(!retried && !(any_retry && held_back(msgs, results, i))) {
      if(results[i] == DUB_OK && pl.applied[i])
        dub_log_at(deadline_partition_rebuilding(d, msgs[i].partition) ? DUB_LOG_DEBUG
                                                                       : DUB_LOG_INFO,
                   ev->case_id, ev->traceparent, "%s", pl.applied[i]);
      if(results[i] == DUB_OK && published_here(ev->type))
        deadline_inflight_applied(d, ev->id);
      deadline_partition_progress(d, msgs[i].partition, msgs[i].offset);
    }
    free(pl.applied[i]);
    dub_case_event_release(&pl.evs[i]);
  }
  for(size_t k = 0; k < pl.nslots; k++) {
    release_counts(&pl.slots[k].before);
    json_decref(pl.slots[k].doc);
  }
  json_decref(index);
  deadline_writes_clear(pl.w);
  d->merged = pl.w;
  dub_cache_pipeline_reset(out);
  d->writes = out;
  free(first_of);
  free(pl.applied);
  free(pl.slots);
  free(pl.slot_of);
  free(pl.evs);
  dub_config_unref(config);
}
