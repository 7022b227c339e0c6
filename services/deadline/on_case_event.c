/* on_case_event.c - applies each event of duban.cases to its case's document and keeps
 * what is derived from it (timers, open cases, ledger index, counts) in one pipeline. */
#include "deadline.h"
#include "lifecycle.h"

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

/* Adds HINCRBY commands for the difference between two counts of one case. */
static void count_delta(struct dub_cache_pipeline *p, const char *key,
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
  const char *dims[3][2] = {{"unit", NULL}, {"category", NULL}, {"region", NULL}};
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
        dub_cache_pipeline_addf(p, "HINCRBY %s %s/%s/%s -1", key, dims[k][0], a,
                                items[i].name);
      if(items[i].is)
        dub_cache_pipeline_addf(p, "HINCRBY %s %s/%s/%s 1", key, dims[k][0], b,
                                items[i].name);
    }
  const char *s0 = before ? before->state : NULL, *s1 = after->state;
  if(!s0 || strcmp(s0, s1) != 0) {
    if(s0)
      dub_cache_pipeline_addf(p, "HINCRBY %s state/%s -1", key, s0);
    dub_cache_pipeline_addf(p, "HINCRBY %s state/%s 1", key, s1);
  }
}

/* Writes the document and what follows from it; the document last, so that a redelivery
 * finds it unwritten unless everything before it was done. */
static enum dub_err store(struct deadline *d, int32_t partition, const char *case_id,
                          const json_t *doc, const char *old_unit,
                          const struct deadline_counts *before)
{
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  struct deadline_counts after;
  char *timers = deadline_timers_key(partition), *open = deadline_open_key(partition),
       *stats = deadline_stats_key(partition), *key = deadline_case_key(case_id);
  char score[24];
  deadline_case_counts(doc, &after);
  int64_t next = deadline_case_next(doc);
  if(next >= 0) {
    snprintf(score, sizeof score, "%lld", (long long)next);
    dub_cache_pipeline_addf(p, "ZADD %s %s %s", timers, score, case_id);
  } else {
    dub_cache_pipeline_addf(p, "ZREM %s %s", timers, case_id);
  }
  dub_cache_pipeline_addf(p, after.open ? "SADD %s %s" : "SREM %s %s", open, case_id);
  if(!before)
    dub_cache_pipeline_addf(p, "ZADD duban:ledger 0 %s", case_id);
  const char *unit = after.unit;
  if(old_unit && (!unit || strcmp(old_unit, unit) != 0))
    dub_cache_pipeline_addf(p, "ZREM duban:ledger:unit:%s %s", old_unit, case_id);
  if(unit && (!old_unit || strcmp(old_unit, unit) != 0))
    dub_cache_pipeline_addf(p, "ZADD duban:ledger:unit:%s 0 %s", unit, case_id);
  count_delta(p, stats, before, &after);
  dub_cache_pipeline_addf(p, "SADD duban:deadline:stats %s", stats);
  char *text = dub_json_dump(doc);
  const char *set[] = {"SET", key, text};
  dub_cache_pipeline_add(p, 3, set, NULL);
  enum dub_err rc = dub_cache_pipeline_exec(dub_runtime_cache(d->rt), p, &replies);
  if(!rc)
    dub_cache_replies_free(replies, dub_cache_pipeline_count(p));
  free(text);
  dub_cache_pipeline_free(p);
  free(key);
  free(stats);
  free(open);
  free(timers);
  return rc;
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

enum dub_err deadline_on_case_event(void *ctx, const struct dub_kafka_msg *msg,
                                    char **why)
{
  struct deadline *d = ctx;
  struct dub_case_event ev;
  struct dub_config *config = NULL;
  json_t *doc = NULL;
  struct kept_counts before = {0};
  bool had = false;
  enum dub_err rc = dub_case_event_decode(msg, &ev, why);
  if(rc)
    goto done; /* dead-lettered: the partition moves on */
  /* When Duban wrote it, on this service's clock. */
  int64_t at_ms = (msg->timestamp_ms > 0 ? msg->timestamp_ms : dub_time_now_ms()) +
                  d->conf.clock_offset_ms;
  bool received = strcmp(ev.type, "duban.case.received") == 0;
  char *key = deadline_case_key(ev.case_id);
  rc = dub_runtime_cache_get_json(d->rt, key, &doc);
  free(key);
  /* Rebuilding: every document starts again at its received event. */
  if(!rc && received && deadline_partition_rebuilding(d, msg->partition)) {
    json_decref(doc);
    doc = NULL;
    rc = DUB_ERR_NOT_FOUND;
  }
  config = dub_runtime_config(d->rt);
  if(rc == DUB_ERR_NOT_FOUND && received) {
    doc = deadline_case_new(ev.data, config->sla, config->calendar, &rc, why);
    if(rc)
      goto out;
    json_array_append_new(json_object_get(doc, "history"),
                          json_pack("{s:s, s:s, s:O?, s:O?}", "type", ev.type, "id",
                                    ev.id, "source", json_object_get(ev.event, "source"),
                                    "time", json_object_get(ev.event, "time")));
  } else if(rc == DUB_ERR_NOT_FOUND &&
            !deadline_partition_rebuilding(d, msg->partition) &&
            !deadline_partition_complete(d, msg->partition)) {
    /* Redis lost the partition's state: rebuild it, then this event comes again. */
    deadline_partition_lost(d, msg->partition);
    rc = DUB_ERR_UNAVAILABLE;
    goto out;
  } else if(rc == DUB_ERR_NOT_FOUND) {
    *why = dub_xasprintf("%s for case '%s', which deadline has not seen", ev.type,
                         ev.case_id);
    goto out;
  } else if(rc) {
    goto out; /* Redis: retried */
  } else if(deadline_case_has_event(doc, ev.id)) {
    goto out; /* a redelivery: applied already */
  } else {
    keep_counts(doc, &before);
    had = true;
    rc = deadline_case_apply(doc, ev.event, at_ms, config->calendar, why);
    if(rc == DUB_ERR_INVALID_TRANSITION) {
      count_invalid(d, ev.type);
      dub_log_at(DUB_LOG_WARN, ev.case_id, ev.traceparent, "%s", *why);
    }
    if(rc)
      goto out;
  }
  rc = store(d, msg->partition, ev.case_id, doc, had ? before.c.unit : NULL,
             had ? &before.c : NULL);
  if(!rc)
    dub_log_at(DUB_LOG_INFO, ev.case_id, ev.traceparent, "%s applied; state %s, due %s",
               ev.type, dub_json_str(doc, "state"), dub_json_str(doc, "due_at"));
out:
  if(!rc && published_here(ev.type))
    deadline_inflight_applied(d, ev.id);
  release_counts(&before);
  dub_config_unref(config);
  json_decref(doc);
  dub_case_event_release(&ev);
done:
  /* Processed, or dead-lettered: either way the partition moved past it. */
  if(rc != DUB_ERR_UNAVAILABLE && rc != DUB_ERR_TIMEOUT)
    deadline_partition_progress(d, msg->partition, msg->offset);
  return rc;
}
