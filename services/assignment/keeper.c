/* keeper.c - keeps case states and workloads complete: a thread watches the complete
 * marker and, when Redis has lost it (a flush, a new Redis, a restore without it),
 * rebuilds every case state and workload counter from duban.cases before the service
 * acts again. One instance rebuilds, holding a lock key; the others wait for the
 * marker. Commits refuse to write while the marker is missing (see store.c). */
#include "assignment.h"
#include "casestate.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "http/http.h"
#include "json/json.h"
#include "kafka/kafka.h"
#include "runtime/rebuild.h"
#include "runtime/runtime.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CASES_TOPIC "duban.cases"
#define CHECK_MS 500
#define LOCK_MS 30000
#define RENEW_MS 5000
/* A commit made just before Redis lost the marker may still reach duban.cases until
 * the producer's delivery timeout (5 s, libs/runtime) has passed: a rebuild reads at
 * least this long, so that it sees every event whose commit it is replacing. */
#define GRACE_MS 6000
#define WRITE_BATCH 500

struct assignment_keeper {
  struct assignment *a;
  struct dub_cache *cache; /* its own connection */
  char *brokers;
  char *token; /* names this instance in the lock */
  pthread_t thread;
  atomic_bool stop, ready, poke, rebuilding;
};

static const char release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";
static const char renew_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

static bool lock_call(struct assignment_keeper *k, const char *script, const char *arg)
{
  struct dub_cache_reply *r = NULL;
  const char *argv[] = {"EVAL", script, "1", ASSIGNMENT_REBUILD_KEY, k->token, arg};
  bool ok = !dub_cache_command(k->cache, &r, arg ? 6 : 5, argv, NULL) &&
            r->type == DUB_CACHE_INT && r->integer == 1;
  dub_cache_reply_free(r);
  return ok;
}

static bool take_lock(struct assignment_keeper *k)
{
  struct dub_cache_reply *r = NULL;
  char ms[16];
  snprintf(ms, sizeof ms, "%d", LOCK_MS);
  const char *argv[] = {"SET", ASSIGNMENT_REBUILD_KEY, k->token, "NX", "PX", ms};
  bool ok =
      !dub_cache_command(k->cache, &r, 6, argv, NULL) && r->type == DUB_CACHE_STATUS;
  dub_cache_reply_free(r);
  return ok;
}

/* ---- reading duban.cases ----------------------------------------------------------- */

static json_t *state_of(json_t *states, const char *case_id, bool create)
{
  json_t *st = json_object_get(states, case_id);
  if(!st && create) {
    st = assignment_state_new(case_id);
    json_object_set_new(states, case_id, st);
  }
  return st;
}

/* What the consumer did with each event, replayed: facts of received cases, the
 * assignments it published, the cases closed. Events the consumer dead-letters change
 * nothing here either. */
static void replay(struct assignment *a, json_t *states, const struct dub_kafka_msg *msg)
{
  struct dub_case_event ev;
  char *why = NULL;
  if(dub_case_event_decode(msg, &ev, &why)) {
    free(why);
    return;
  }
  const char *source = dub_json_str(ev.event, "source");
  if(strcmp(ev.type, ASSIGNMENT_ASSIGNED) == 0 && source &&
     strcmp(source, ASSIGNMENT_SOURCE) == 0) {
    assignment_state_apply_assigned(state_of(states, ev.case_id, true), ev.event);
  } else if(!assignment_event_check(a, &ev, &why)) {
    if(strcmp(ev.type, ASSIGNMENT_RECEIVED) == 0)
      assignment_state_set_facts(state_of(states, ev.case_id, true), ev.data);
    else if((strcmp(ev.type, ASSIGNMENT_CLOSED) == 0 ||
             strcmp(ev.type, ASSIGNMENT_CANCELLED) == 0) &&
            state_of(states, ev.case_id, false))
      assignment_state_apply_closed(state_of(states, ev.case_id, false), source, ev.id);
  }
  free(why);
  dub_case_event_release(&ev);
}

/* What one rebuild gathers in memory before it writes it all. */
struct gathered {
  struct assignment_keeper *k;
  json_t *states; /* case id -> state */
  size_t events, open;
  int64_t renewed; /* when the lock was last renewed (monotonic ms) */
};

static void gather_begin(void *ctx)
{
  struct gathered *g = ctx;
  json_object_clear(g->states);
  g->events = 0;
}

/* Replays a batch into memory, renewing the lock when due; DUB_ERR_CONFLICT once the
 * lock is lost (another instance may be rebuilding). */
static enum dub_err gather(void *ctx, struct dub_cache *cache,
                           const struct dub_kafka_msg *msgs, size_t n)
{
  struct gathered *g = ctx;
  (void)cache;
  for(size_t i = 0; i < n; i++)
    replay(g->k->a, g->states, &msgs[i]);
  g->events += n;
  int64_t now = dub_time_mono_ms();
  if(now - g->renewed > RENEW_MS) {
    char ms[16];
    snprintf(ms, sizeof ms, "%d", LOCK_MS);
    if(!lock_call(g->k, renew_script, ms)) {
      dub_log_error("lost the rebuild lock; starting over");
      return DUB_ERR_CONFLICT;
    }
    g->renewed = now;
  }
  return DUB_OK;
}

/* ---- writing ----------------------------------------------------------------------- */

static enum dub_err flush(struct assignment_keeper *k, struct dub_cache_pipeline **p)
{
  struct dub_cache_reply **replies = NULL;
  size_t n = dub_cache_pipeline_count(*p);
  enum dub_err rc = n ? dub_cache_pipeline_exec(k->cache, *p, &replies) : DUB_OK;
  for(size_t i = 0; !rc && i < n; i++)
    if(replies[i]->type == DUB_CACHE_ERROR)
      rc = DUB_ERR_INTERNAL;
  if(replies)
    dub_cache_replies_free(replies, n);
  dub_cache_pipeline_free(*p);
  *p = dub_cache_pipeline_new();
  return rc;
}

/* Deletes every workload counter: the rebuilt ones replace them all. */
static enum dub_err clear_counters(struct assignment_keeper *k)
{
  char cursor[32] = "0";
  enum dub_err rc = DUB_OK;
  do {
    struct dub_cache_reply *r = NULL;
    const char *argv[] = {"SCAN",  cursor, "MATCH", ASSIGNMENT_WORKLOAD_PATTERN,
                          "COUNT", "1000"};
    rc = dub_cache_command(k->cache, &r, 6, argv, NULL);
    if(!rc && (r->type != DUB_CACHE_ARRAY || r->count != 2))
      rc = DUB_ERR_INTERNAL;
    if(!rc) {
      snprintf(cursor, sizeof cursor, "%s", r->elements[0]->str);
      const struct dub_cache_reply *keys = r->elements[1];
      if(keys->count) {
        const char **argv_del = dub_xcalloc(keys->count + 1, sizeof *argv_del);
        argv_del[0] = "DEL";
        for(size_t i = 0; i < keys->count; i++)
          argv_del[i + 1] = keys->elements[i]->str;
        rc = dub_cache_command(k->cache, NULL, (int)keys->count + 1, argv_del, NULL);
        free(argv_del);
      }
    }
    dub_cache_reply_free(r);
  } while(!rc && strcmp(cursor, "0") != 0);
  return rc;
}

static void add_count(json_t *counts, char *key)
{
  json_t *v = json_object_get(counts, key);
  json_object_set_new(counts, key, json_integer(v ? json_integer_value(v) + 1 : 1));
  free(key);
}

static enum dub_err write_all(struct assignment_keeper *k, json_t *states, size_t *open)
{
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  json_t *counts = json_object();
  const char *case_id;
  json_t *st;
  enum dub_err rc = clear_counters(k);
  json_object_foreach(states, case_id, st)
  {
    if(rc)
      break;
    char *key = assignment_state_key(case_id);
    char *doc = dub_json_dump(st);
    char published[24];
    snprintf(published, sizeof published, "%lld", assignment_state_attempt(st));
    const char *seq[] = {"HINCRBY", key, "seq", "1"};
    /* Every assignment it knows of, it read from duban.cases. */
    const char *set[] = {"HSET", key, "doc", doc, "published", published};
    dub_cache_pipeline_add(p, 4, seq, NULL);
    dub_cache_pipeline_add(p, 6, set, NULL);
    struct assignment_holder h;
    assignment_state_holder(st, &h);
    if(h.officer)
      add_count(counts, assignment_officer_key(h.officer));
    else if(h.unit)
      add_count(counts, assignment_manual_key(h.unit));
    *open += h.officer || h.unit;
    free(doc);
    free(key);
    if(dub_cache_pipeline_count(p) >= WRITE_BATCH)
      rc = flush(k, &p);
  }
  const char *key;
  json_t *v;
  json_object_foreach(counts, key, v)
  {
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)json_integer_value(v));
    const char *set[] = {"SET", key, n};
    dub_cache_pipeline_add(p, 3, set, NULL);
  }
  if(!rc)
    rc = flush(k, &p);
  dub_cache_pipeline_free(p);
  json_decref(counts);
  return rc;
}

/* Writes what was gathered; the marker comes after it (libs/runtime/rebuild.c). */
static enum dub_err gather_finish(void *ctx, struct dub_cache *cache)
{
  struct gathered *g = ctx;
  (void)cache;
  enum dub_err rc = write_all(g->k, g->states, &g->open);
  if(rc)
    dub_log_error("writing the rebuilt state to redis failed; starting over");
  return rc;
}

static void rebuild(struct assignment_keeper *k)
{
  struct gathered g = {.k = k, .states = json_object(), .renewed = dub_time_mono_ms()};
  const struct dub_rebuild_spec spec = {
      .what = "case states and workloads",
      .topic = CASES_TOPIC,
      .marker = ASSIGNMENT_COMPLETE_KEY,
      .batch = 1000,
      .settle_ms = GRACE_MS,
      .begin = gather_begin,
      .apply = gather,
      .finish = gather_finish,
      .ctx = &g,
  };
  struct dub_rebuild_stats st;
  atomic_store(&k->rebuilding, true);
  if(!dub_rebuild_run(k->brokers, k->cache, dub_runtime_metrics(k->a->rt), &spec,
                      &k->stop, &st)) {
    dub_metrics_counter_add(
        dub_runtime_metrics(k->a->rt), "duban_assignment_rebuilds_total",
        "Rebuilds of case states and workloads from duban.cases.", NULL, 1);
    dub_log_info("rebuilt from %s in %lld ms: %zu events, %zu cases, %zu open",
                 CASES_TOPIC, (long long)st.ms, g.events, json_object_size(g.states),
                 g.open);
  }
  lock_call(k, release_script, NULL);
  atomic_store(&k->rebuilding, false);
  json_decref(g.states);
}

/* ---- the thread -------------------------------------------------------------------- */

static void *run(void *arg)
{
  struct assignment_keeper *k = arg;
  while(!atomic_load(&k->stop)) {
    /* When Redis does not answer nothing is known to be lost: readiness says Redis. */
    bool rebuilt = false, needed = false;
    if(!dub_rebuild_needed(k->cache, ASSIGNMENT_COMPLETE_KEY, &needed)) {
      atomic_store(&k->ready, !needed);
      if(needed && take_lock(k)) {
        rebuild(k);
        rebuilt = true;
      }
    }
    if(rebuilt)
      continue; /* look at the marker again at once */
    for(int waited = 0;
        waited < CHECK_MS && !atomic_load(&k->stop) && !atomic_exchange(&k->poke, false);
        waited += 50) {
      struct timespec ts = {0, 50 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  return NULL;
}

enum dub_err assignment_keeper_start(struct assignment *a, char **why)
{
  struct assignment_keeper *k = dub_xcalloc(1, sizeof *k);
  const struct dub_runtime_env *env = dub_runtime_env(a->rt);
  enum dub_err rc = dub_cache_new(env->redis_url, 1000, 5000, &k->cache, why);
  if(rc) {
    free(k);
    return rc;
  }
  k->a = a;
  k->brokers = dub_xstrdup(env->brokers);
  k->token = dub_xasprintf("%ld-%lld", (long)getpid(), (long long)dub_time_now_ms());
  dub_xthread_create(&k->thread, run, k, "workload keeper");
  a->keeper = k;
  return DUB_OK;
}

void assignment_keeper_stop(struct assignment *a)
{
  struct assignment_keeper *k = a->keeper;
  if(!k)
    return;
  atomic_store(&k->stop, true);
  pthread_join(k->thread, NULL);
  dub_cache_free(k->cache);
  free(k->brokers);
  free(k->token);
  free(k);
  a->keeper = NULL;
}

bool assignment_keeper_ready(struct assignment *a, char **reason)
{
  struct assignment_keeper *k = a->keeper;
  if(k && atomic_load(&k->ready))
    return true;
  *reason = dub_xstrdup(k && atomic_load(&k->rebuilding)
                            ? "rebuilding case states and workloads from duban.cases"
                            : "case states and workloads are incomplete: waiting for "
                              "their rebuild from duban.cases");
  return false;
}

bool assignment_reply_unready(struct assignment *a, struct dub_http_reply *reply)
{
  char *reason = NULL;
  if(assignment_keeper_ready(a, &reason))
    return false;
  dub_http_reply_error(reply, DUB_ERR_UNAVAILABLE, reason, NULL);
  free(reason);
  return true;
}

void assignment_keeper_poke(struct assignment *a)
{
  if(a->keeper) {
    atomic_store(&a->keeper->ready, false);
    atomic_store(&a->keeper->poke, true);
  }
}
