/* rebuild.h - derived state rebuilt from a topic: the one way a service does it
 * (review C3 and its section 2.2 item 2).
 *
 * A marker key in Redis says that the state is complete. When it is missing, the topic
 * is read from its beginning (or from a checkpoint the service keeps) up to the high
 * watermarks it had when the reading began (records written meanwhile are the consumer's
 * to handle, so steady writes cannot keep the rebuild from finishing), in batches that
 * the service turns into Redis writes; then the service's finish step runs and the marker
 * is set. A batch whose write fails (Redis away, OOM, READONLY, LOADING, ...) is read and
 * applied again after a pause, so the service's work must be idempotent; nothing is
 * skipped.
 *
 * Used by intake (its deduplication index: from its checkpoint, or the beginning after
 * a loss), assignment (case states and workloads, gathered in memory under a lock) and
 * notification (case notes; message states). Deadline keeps its own per-partition
 * rebuild on its consumer (partitions.c): a partition's documents must change in the
 * order of its events, live ones included, and only its owner may write them, so the
 * rebuild is the owner reading its partition from the beginning, with the same rule for
 * the end (the high watermark at assignment) and the timers armed only then. */
#ifndef DUB_RUNTIME_REBUILD_H
#define DUB_RUNTIME_REBUILD_H

#include "cache/cache.h"
#include "core/err.h"
#include "kafka/kafka.h"
#include "metrics/metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Applies one batch of messages (in offset order within each partition) to Redis
 * through 'cache'. DUB_OK once written; the error of the write otherwise (then the
 * batch comes again); DUB_ERR_CONFLICT ends the rebuild at once with that error (the
 * service lost the right to rebuild, say its lock). */
typedef enum dub_err (*dub_rebuild_batch_fn)(void *ctx, struct dub_cache *cache,
                                             const struct dub_kafka_msg *msgs, size_t n);

struct dub_rebuild_spec {
  const char *what;  /* "case notes": in log lines and as the metrics' label */
  const char *topic; /* read from its beginning */
  /* The key whose presence says the state is complete, set to "1" at the end; NULL
   * for a service whose finish step writes its own (intake's checkpoint). */
  const char *marker;
  size_t batch; /* messages per batch at most; 0 for 1000 */
  /* How long failed writes are waited out before the rebuild gives up with
   * DUB_ERR_UNAVAILABLE (for a caller that must not block longer, such as a consumer's
   * handler); 0 waits as long as it takes. */
  long patience_ms;
  /* The ends are the high watermarks the topic has this long after the start, not at
   * it: for records that may still land from before the rebuild began (a write whose
   * delivery was under way). 0: the ends at the start. */
  long settle_ms;
  /* Optional: where to start reading, per partition (n of them): a service that keeps
   * a checkpoint resumes there. Untouched entries start at the beginning. DUB_OK, or
   * an error that is waited out like a failed write. */
  enum dub_err (*start_at)(void *ctx, struct dub_cache *cache, int64_t *from, int32_t n);
  /* Optional: runs before each read from the beginning (a service that gathers the
   * state in memory empties it here: a failed finish step means a second read). */
  void (*begin)(void *ctx);
  dub_rebuild_batch_fn apply;
  /* Optional: runs once every batch is written, before the marker is set (a service
   * that gathered the state in memory writes it here). DUB_OK, DUB_ERR_CONFLICT as for
   * apply, or another error after which the rebuild starts again from the beginning. */
  enum dub_err (*finish)(void *ctx, struct dub_cache *cache);
  void *ctx;
};

/* What a rebuild did. */
struct dub_rebuild_stats {
  size_t records; /* messages read and applied, counting those applied again */
  size_t retries; /* batches applied again after a failed write */
  int64_t ms;     /* from the start to the marker, monotonic */
};

/* Whether the marker (not NULL) is missing. DUB_OK with *needed, or DUB_ERR_UNAVAILABLE
 * when Redis does not say (a typed error such as LOADING included). */
enum dub_err dub_rebuild_needed(struct dub_cache *cache, const char *marker,
                                bool *needed);

/* Rebuilds. Blocks until the marker is set (DUB_OK), *stop becomes true or SIGTERM or
 * SIGINT came (dub_signals_stop_requested(); within about a second; 'stop' may be
 * NULL), or Kafka cannot be read (DUB_ERR_UNAVAILABLE for both: the caller knows
 * whether it asked to stop, and otherwise tries again later), or apply or finish said
 * DUB_ERR_CONFLICT (returned). Redis failures are waited
 * out: while Redis refuses, the batch is tried again with backoff up to 2 s (for as long
 * as spec->patience_ms allows). 'metrics' may be NULL; otherwise
 * duban_rebuild_records_total, duban_rebuild_retries_total and duban_rebuild_seconds (the
 * last completed run) carry what="<spec->what>". 'stats' may be NULL. Logs when it
 * starts, every 10 s while it runs and when it ends, with the rate. */
enum dub_err dub_rebuild_run(const char *brokers, struct dub_cache *cache,
                             struct dub_metrics *metrics,
                             const struct dub_rebuild_spec *spec, const atomic_bool *stop,
                             struct dub_rebuild_stats *stats);

#endif
