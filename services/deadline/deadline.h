/* deadline.h - the deadline service's context, shared by its files.
 *
 * Redis keys (the case's own carry its id as a hash tag):
 *   duban:case:{<case>}              the case's document (lifecycle.h)
 *   duban:deadline:timers:<p>        sorted set: the cases of partition p with a timer
 *                                    left, scored by its earliest moment (ms)
 *   duban:deadline:open:<p>          set: the open cases of partition p
 *   duban:deadline:partition:<p>     "complete" once partition p was read to its end:
 *                                    absent means Redis lost it, rebuild from Kafka
 *   duban:deadline:stats:<p>         hash: counts of partition p for /v1/stats and the
 *                                    cases-by-state gauge ("unit/<id>/open", ...)
 *   duban:deadline:stats             set of those hash names
 *   duban:ledger, duban:ledger:unit:<unit>
 *                                    sorted sets (score 0) of case ids, the ledger's
 *                                    index in case-id (that is, time) order
 */
#ifndef DEADLINE_DEADLINE_H
#define DEADLINE_DEADLINE_H

#include "core/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dub_runtime;
struct dub_kafka_msg;
struct dub_kafka_assignment;
struct dub_kafka_partition;
struct dub_http_route;
struct dub_cache;
struct deadline_inflight;
struct deadline_scheduler;

#define DEADLINE_MAX_PARTITIONS 1024
#define DEADLINE_SOURCE "/duban/deadline"
#define DEADLINE_CASES_TOPIC "duban.cases"

struct deadline_conf {
  long clock_offset_ms; /* DUBAN_DEADLINE_CLOCK_OFFSET_MS [0]: for drills and tests */
  long tick_ms;         /* DUBAN_DEADLINE_TICK_MS [200]: how often timers are looked at */
};

/* What this instance knows of one partition of duban.cases. */
struct deadline_partition {
  bool owned;      /* assigned to this instance */
  bool armed;      /* read up to 'target': its timers may fire */
  bool rebuilding; /* read from the beginning because Redis lost its state */
  bool recompute;  /* moments of its open cases are to be recomputed */
  int64_t target;  /* the high watermark when it was assigned */
  char scan[32];   /* SSCAN cursor of the recompute pass; "0" when it starts */
};

struct deadline {
  struct dub_runtime *rt;
  struct deadline_conf conf;
  /* Guards 'parts' and 'inflight'. The scheduler holds 'fire_lock' for one round of
   * firing; a revoke takes it too, so that nothing fires for a partition after it was
   * given up. Lock order: fire_lock, then lock. */
  pthread_mutex_t lock;
  pthread_mutex_t fire_lock;
  struct deadline_partition parts[DEADLINE_MAX_PARTITIONS];
  bool assigned_once; /* the group gave this instance its share at least once */
  struct deadline_inflight *inflight;
  pthread_t scheduler;
  struct deadline_scheduler *sched; /* NULL until started */
  atomic_bool stop;
  /* The consumer's pipeline of writes, kept from poll to poll (on_case_event.c):
   * freeing its megabytes after every poll had glibc consolidate the heap each time. */
  struct dub_cache_pipeline *writes;
  struct deadline_writes *merged; /* and what a poll changed, merged (writes.h) */
};

/* config.c: the environment (DUBAN_DEADLINE_*). *why on failure. */
enum dub_err deadline_conf_load(struct deadline_conf *conf, char **why);
/* The service's clock: now, moved by DUBAN_DEADLINE_CLOCK_OFFSET_MS. */
int64_t deadline_now(const struct deadline *d);

/* Redis keys. Return new strings. */
char *deadline_case_key(const char *case_id);
char *deadline_timers_key(int32_t partition);
char *deadline_open_key(int32_t partition);
char *deadline_stats_key(int32_t partition);
char *deadline_marker_key(int32_t partition);

/* partitions.c: ownership, catching up, and timers in flight. */
void deadline_partitions_init(struct deadline *d);
void deadline_partitions_release(struct deadline *d);
/* dub_kafka_assign_fn and dub_kafka_rebalance_fn of the consumer (consumer thread). */
void deadline_on_assign(void *ctx, struct dub_kafka_assignment *parts, size_t count);
void deadline_on_rebalance(void *ctx, bool assigned,
                           const struct dub_kafka_partition *parts, size_t count);
/* Called by the handler after each message of partition p: arms the partition once it
 * has read what was there when it was assigned. */
void deadline_partition_progress(struct deadline *d, int32_t p, int64_t offset);
/* Whether partition p is being read from the beginning to rebuild its state. */
bool deadline_partition_rebuilding(struct deadline *d, int32_t p);
/* Whether Redis still holds partition p's state (its marker; true when Redis does not
 * answer). */
bool deadline_partition_complete(struct deadline *d, int32_t p);
/* Partition p's state is gone from Redis: stop firing its timers and have the consumer
 * read it again from the beginning (unless it is being rebuilt already). */
void deadline_partition_lost(struct deadline *d, int32_t p);
/* Timer events published but not read back yet, so that they are not published twice.
 * 'add' returns false when the id is in flight already; 'remove' forgets one that was
 * not published after all. Once the consumer has written an event to its document it
 * marks it 'applied'; the scheduler purges applied entries at the start of a round,
 * before it reads any document, so that a document read before the write was done can
 * never make it publish the event again. */
bool deadline_inflight_add(struct deadline *d, const char *event_id, int32_t p);
void deadline_inflight_remove(struct deadline *d, const char *event_id);
void deadline_inflight_applied(struct deadline *d, const char *event_id);
void deadline_inflight_purge(struct deadline *d);
/* Whether every partition this instance owns is armed (readiness). */
bool deadline_partitions_ready(struct deadline *d, char **reason);

/* scheduler.c: the thread that fires timers and recomputes moments. */
enum dub_err deadline_scheduler_start(struct deadline *d, char **why);
void deadline_scheduler_stop(struct deadline *d);

/* on_case_event.c: applies each event of duban.cases to its case's document, a poll
 * at a time (dub_kafka_batch_handler_fn). */
void deadline_on_case_events(void *ctx, const struct dub_kafka_msg *msgs, size_t n,
                             enum dub_err *results, char **whys);

/* Queries: get_case.c, get_ledger.c, get_stats.c. */
extern const struct dub_http_route deadline_route_get_case;
extern const struct dub_http_route deadline_route_get_ledger;
extern const struct dub_http_route deadline_route_get_stats;

#endif
