/* state.c - message states: in Redis for queries and claims, as state records on
 * duban.notifications for the record (and to rebuild Redis from), and in the metrics. */
#include "notification.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "json/json.h"
#include "kafka/kafka.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void notification_count(struct notification *n, const char *channel,
                        const char *template_name, const char *state)
{
  char *labels = dub_xasprintf("channel=\"%s\",template=\"%s\",state=\"%s\"", channel,
                               template_name, state);
  dub_metrics_counter_add(dub_runtime_metrics(n->rt), "duban_notifications_total",
                          "Notifications by channel, template and state reached.", labels,
                          1);
  free(labels);
}

enum dub_err notification_produce(struct notification *n, const char *recipient,
                                  const char *kind, const json_t *value,
                                  struct notification_acks *acks)
{
  char *text = dub_json_dump(value);
  const struct dub_kafka_header h = {NOTIFY_KIND_HEADER, kind, strlen(kind)};
  if(!acks->group)
    acks->group = dub_kafka_acks_new();
  dub_kafka_acks_add(acks->group);
  enum dub_err rc = dub_kafka_produce(dub_runtime_producer(n->rt), NOTIFY_TOPIC,
                                      recipient, strlen(recipient), text, strlen(text),
                                      &h, 1, dub_kafka_acks_report, acks->group);
  if(rc)
    dub_kafka_acks_cancel(acks->group);
  free(text);
  return rc;
}

enum dub_err notification_acks_wait(struct notification_acks *acks, int timeout_ms)
{
  enum dub_err rc = acks->group ? dub_kafka_acks_wait(acks->group, timeout_ms) : DUB_OK;
  notification_acks_end(acks);
  return rc ? DUB_ERR_UNAVAILABLE : DUB_OK;
}

void notification_acks_end(struct notification_acks *acks)
{
  dub_kafka_acks_release(acks->group);
  acks->group = NULL;
}

void notification_state_note(struct notification *n, const json_t *job, const char *state,
                             long long attempts, const json_t *extra,
                             struct notification_acks *acks)
{
  notification_count(n, dub_json_str(job, "channel"), dub_json_str(job, "template"),
                     state);
  if(strcmp(state, "sending") == 0)
    return; /* in Redis only: the outcome record follows */
  json_t *rec =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "kind", "state", "key",
                dub_json_str(job, "key"), "tag", dub_json_str(job, "tag"), "case_id",
                dub_json_str(job, "case_id"), "channel", dub_json_str(job, "channel"),
                "state", state, "at", (json_int_t)dub_time_now_ms());
  if(attempts >= 0)
    json_object_set_new(rec, "attempts", json_integer(attempts));
  if(extra)
    json_object_update(rec, (json_t *)extra);
  notification_produce(n, dub_json_str(job, "kafka_key"), "state", rec, acks);
  json_decref(rec);
}

/* Stores 'state' (with 'expect' >= 0: as a compare-and-set of "sending") and notes it
 * if it was stored; *stored (if asked) gets the state the message is in now and
 * *attempts (if asked) the attempts made. */
static enum dub_err state_store(struct notification *n, struct dub_cache *cache,
                                const json_t *job, const char *state, long long expect,
                                const json_t *extra, struct notification_acks *acks,
                                char **stored, long long *attempts_out)
{
  const char *tag = dub_json_str(job, "tag");
  const char *key = dub_json_str(job, "key");
  char now[24], expect_s[24];
  int64_t now_ms = dub_time_now_ms();
  snprintf(now, sizeof now, "%lld", (long long)now_ms);
  snprintf(expect_s, sizeof expect_s, "%lld", expect);
  char *mkey = notification_msg_key(tag, key);
  struct dub_cache_reply *r = NULL;
  const char *argv[] = {"EVAL",  notification_state_script, "1", mkey, state, now,
                        expect_s};
  enum dub_err rc = dub_cache_command(cache, &r, expect >= 0 ? 7 : 6, argv, NULL);
  free(mkey);
  if(rc) {
    dub_cache_reply_free(r);
    return rc;
  }
  const char *now_state = state;
  long long attempts = -1;
  if(r->type == DUB_CACHE_ARRAY && r->count == 2) {
    now_state = r->elements[0]->str;
    attempts = r->elements[1]->integer;
  }
  if(stored)
    *stored = dub_xstrdup(now_state);
  if(attempts_out)
    *attempts_out = attempts;
  if(strcmp(now_state, state) == 0)
    notification_state_note(n, job, state, attempts, extra, acks);
  dub_cache_reply_free(r);
  return DUB_OK;
}

enum dub_err notification_state_set(struct notification *n, struct dub_cache *cache,
                                    const json_t *job, const char *state,
                                    const json_t *extra, struct notification_acks *acks,
                                    char **stored)
{
  return state_store(n, cache, job, state, -1, extra, acks, stored, NULL);
}

enum dub_err notification_state_begin(struct notification *n, struct dub_cache *cache,
                                      const json_t *job, long long expect,
                                      struct notification_acks *acks, char **stored,
                                      long long *attempts)
{
  return state_store(n, cache, job, "sending", expect, NULL, acks, stored, attempts);
}
