/* kafka.h - idempotent producer, at-least-once consumer and dead letters (librdkafka). */
#ifndef DUB_KAFKA_KAFKA_H
#define DUB_KAFKA_KAFKA_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The dead-letter topic of DESIGN.md. */
#define DUB_KAFKA_DLQ_TOPIC "duban.dlq"

/* One Kafka header. 'value' may be NULL (a null header), then 'len' is 0. */
struct dub_kafka_header {
  const char *name;
  const void *value;
  size_t len;
};

/* A message as handlers see it. Every pointer is borrowed from the consumer until the
 * handler returns (copy what you keep). Tests and HTTP paths may fill one themselves;
 * key and value may be NULL with length 0. */
struct dub_kafka_msg {
  const char *topic;
  int32_t partition;
  int64_t offset;
  const void *key;
  size_t key_len;
  const void *value;
  size_t value_len;
  int64_t timestamp_ms; /* -1 when the broker gave none */
  const struct dub_kafka_header *headers;
  size_t header_count;
};

/* Finds the last header called 'name' (exact, case-sensitive match). On success sets
 * *value and *len (borrowed like the message) and returns true. */
bool dub_kafka_msg_header(const struct dub_kafka_msg *msg, const char *name,
                          const void **value, size_t *len);

/* ---- producer ---------------------------------------------------------------------- */

struct dub_kafka_producer;

struct dub_kafka_producer_conf {
  const char *brokers;     /* bootstrap.servers; required */
  const char *client_id;   /* NULL = "duban" */
  int delivery_timeout_ms; /* message.timeout.ms; 0 = 30000 */
  /* Extra librdkafka properties as NULL-terminated name, value pairs (may be NULL);
   * applied last, so they override the defaults above. */
  const char *const *props;
};

/* Delivery report for one message: err is DUB_OK when the broker acknowledged the write
 * (acks=all), else DUB_ERR_TIMEOUT (not acknowledged within delivery_timeout_ms),
 * DUB_ERR_TOO_LARGE, DUB_ERR_NOT_FOUND (unknown topic) or DUB_ERR_UNAVAILABLE. partition
 * and offset are -1 when unknown. Runs on the producer's background poll thread, exactly
 * once per message that dub_kafka_produce() accepted: keep it short, never block on the
 * producer in it. */
typedef void (*dub_kafka_delivery_fn)(void *opaque, enum dub_err err, int32_t partition,
                                      int64_t offset);

/* An ack group: a count of produced messages whose delivery reports a caller waits for.
 * Reference counted: the caller holds one reference, each counted message another until
 * its report, so a caller that stops waiting (a timeout, a stop) and releases its
 * reference never leaves a late report writing into freed memory. Thread-safe. Use:
 *   dub_kafka_acks_add(a); produce with dub_kafka_acks_report as the callback and 'a'
 *   as its opaque; if the produce call fails, dub_kafka_acks_cancel(a) instead. */
struct dub_kafka_acks;

/* A new group, with the caller's reference; end it with dub_kafka_acks_release(). */
struct dub_kafka_acks *dub_kafka_acks_new(void);
/* Counts one message about to be produced (takes a reference for its report). */
void dub_kafka_acks_add(struct dub_kafka_acks *acks);
/* A dub_kafka_delivery_fn: the report of one counted message ('opaque' is the group). */
void dub_kafka_acks_report(void *opaque, enum dub_err err, int32_t partition,
                           int64_t offset);
/* The produce call of a counted message failed: no report will come; counts it failed. */
void dub_kafka_acks_cancel(struct dub_kafka_acks *acks);
/* Waits, on the monotonic clock, until every counted message was reported or
 * timeout_ms passed. DUB_OK when all were reported and none failed; DUB_ERR_TIMEOUT
 * when some are still out; DUB_ERR_UNAVAILABLE when one failed. */
enum dub_err dub_kafka_acks_wait(struct dub_kafka_acks *acks, int timeout_ms);
/* Drops the caller's reference: the group goes once the last report came. NULL is a
 * no-op. */
void dub_kafka_acks_release(struct dub_kafka_acks *acks);

/* Creates an idempotent producer (enable.idempotence=true, acks=all, nagle off, linger 5
 * ms, partitioner murmur2_random as Java clients use, so keys land on the same partition
 * whoever writes them) and starts its background poll thread. DUB_ERR_CONFIG with a new
 * message in *why (free with free()) when a property is refused. Returns a new object;
 * free with dub_kafka_producer_free(). Connects lazily: use dub_kafka_producer_ping() to
 * see whether Kafka answers. */
enum dub_err dub_kafka_producer_new(const struct dub_kafka_producer_conf *conf,
                                    struct dub_kafka_producer **producer, char **why);

/* Flushes (waits up to delivery_timeout_ms for outstanding delivery reports; messages
 * still undelivered then are failed with DUB_ERR_UNAVAILABLE, so every callback runs
 * exactly once, some of them on the calling thread), stops the poll thread and frees.
 * NULL is a no-op. */
void dub_kafka_producer_free(struct dub_kafka_producer *producer);

/* Enqueues one message; key, value and headers are copied. 'headers' may be NULL when
 * 'header_count' is 0. 'cb' (may be NULL) gets the delivery report with 'opaque' on the
 * poll thread. Returns DUB_OK when enqueued (the callback will run), DUB_ERR_UNAVAILABLE
 * when the local queue stayed full for a second, the topic is unknown or the producer hit
 * a fatal error (then 'cb' will not run), DUB_ERR_TOO_LARGE, DUB_ERR_INVALID for bad
 * arguments (an empty topic, a header without a name). */
enum dub_err dub_kafka_produce(struct dub_kafka_producer *producer, const char *topic,
                               const void *key, size_t key_len, const void *value,
                               size_t value_len, const struct dub_kafka_header *headers,
                               size_t header_count, dub_kafka_delivery_fn cb,
                               void *opaque);

/* Like dub_kafka_produce() but waits up to timeout_ms for the acknowledgement and gives
 * the delivery result; partition and offset may be NULL. DUB_ERR_TIMEOUT when no report
 * came in time: the message may still be written later (at least once; retry with the
 * same key and let consumers deduplicate). */
enum dub_err dub_kafka_produce_sync(struct dub_kafka_producer *producer,
                                    const char *topic, const void *key, size_t key_len,
                                    const void *value, size_t value_len,
                                    const struct dub_kafka_header *headers,
                                    size_t header_count, int timeout_ms,
                                    int32_t *partition, int64_t *offset);

/* True once librdkafka raised a fatal error (RD_KAFKA_RESP_ERR__FATAL, e.g. the
 * idempotence guarantee broke). It has been logged; the producer accepts no more
 * messages: stop the service cleanly and restart it. Thread-safe. */
bool dub_kafka_producer_fatal(const struct dub_kafka_producer *producer);

/* Readiness probe: one metadata round trip to any broker, bounded by timeout_ms.
 * DUB_OK, DUB_ERR_UNAVAILABLE (no broker answered or fatal error) or DUB_ERR_TIMEOUT.
 * Thread-safe. */
enum dub_err dub_kafka_producer_ping(struct dub_kafka_producer *producer, int timeout_ms);

/* ---- dead letters ------------------------------------------------------------------ */

/* Writes 'msg' to 'dlq_topic' (NULL = DUB_KAFKA_DLQ_TOPIC) and waits for the
 * acknowledgement (up to the producer's delivery timeout). The record's key is the
 * original key; its value is JSON:
 *   {"reason": reason_code, "detail": detail,
 *    "origin": {"topic", "partition", "offset", "timestamp"},
 *    "original": {"key_b64", "value_b64", "headers": {name: value, ...},
 *                 "headers_b64": {name: base64, ...}},
 *    "time": RFC 3339 UTC}
 * key_b64/value_b64 are null when the original had none. Header values that are valid
 * UTF-8 go under "headers", others under "headers_b64"; a repeated name keeps its last
 * value. 'detail' may be NULL (then ""); invalid UTF-8 in it or in 'reason_code' is
 * replaced. Returns the delivery error: when not DUB_OK the caller must not store the
 * original's offset. */
enum dub_err dub_kafka_dlq_write(struct dub_kafka_producer *producer,
                                 const char *dlq_topic, const struct dub_kafka_msg *msg,
                                 const char *reason_code, const char *detail);

/* ---- consumer ---------------------------------------------------------------------- */

struct dub_kafka_consumer;

/* Handles one message; runs on the thread that calls dub_kafka_consumer_poll(). Return:
 *  DUB_OK                                   done: the offset is stored (and committed);
 *  DUB_ERR_UNAVAILABLE or DUB_ERR_TIMEOUT   a dependency is down: the partition is
 *                                           rewound to this message, which comes again
 *                                           after a backoff;
 *  anything else                            the message cannot be processed: it goes to
 *                                           the DLQ with reason dub_err_code(err) and
 *                                           detail *why, and the partition moves on.
 * *why starts NULL; the handler may set it to a new string (the consumer frees it). */
typedef enum dub_err (*dub_kafka_handler_fn)(void *ctx, const struct dub_kafka_msg *msg,
                                             char **why);

/* Handles 'n' messages at once, for handlers that gain from overlapping their work
 * (e.g. many Kafka writes in flight). Messages of one partition come in order. Sets
 * results[i] as a handler's return for msgs[i] and may set whys[i] to a new string. Runs
 * on the thread that calls dub_kafka_consumer_poll(). */
typedef void (*dub_kafka_batch_handler_fn)(void *ctx, const struct dub_kafka_msg *msgs,
                                           size_t n, enum dub_err *results, char **whys);

/* A topic partition in a rebalance notice; topic borrowed for the callback's duration. */
struct dub_kafka_partition {
  const char *topic;
  int32_t partition;
};

/* A partition about to be assigned, for dub_kafka_assign_fn. */
struct dub_kafka_assignment {
  const char *topic; /* borrowed for the callback's duration */
  int32_t partition;
  int64_t committed; /* the group's committed offset; -1 when none or unknown */
  int64_t high;      /* the high watermark when assigned; -1 when unknown */
  /* Where reading starts: DUB_KAFKA_OFFSET_STORED (the committed offset, or the
   * beginning without one). The callback may set DUB_KAFKA_OFFSET_BEGINNING, e.g. to
   * rebuild derived state it found lost. */
  int64_t start;
};
#define DUB_KAFKA_OFFSET_STORED (-1000)

/* Told before partitions are assigned, with their committed offsets and high
 * watermarks (asked of the broker, a few seconds at most), so that a service knows when
 * it has caught up with what was written before it took a partition over. Also told of
 * an empty assignment (count 0: the group has more members than partitions). Runs on
 * the thread that calls dub_kafka_consumer_poll(). */
typedef void (*dub_kafka_assign_fn)(void *ctx, struct dub_kafka_assignment *parts,
                                    size_t count);

/* Told after partitions were assigned (assigned = true) or before they are given up
 * (false; stored offsets are committed right after it returns). Runs on the thread that
 * calls dub_kafka_consumer_poll() or dub_kafka_consumer_close(). */
typedef void (*dub_kafka_rebalance_fn)(void *ctx, bool assigned,
                                       const struct dub_kafka_partition *partitions,
                                       size_t count);

struct dub_kafka_consumer_conf {
  const char *brokers;       /* required */
  const char *group_id;      /* required */
  const char *const *topics; /* required, 'topic_count' names */
  size_t topic_count;
  const char *client_id;        /* NULL = "duban" */
  int session_timeout_ms;       /* 0 = 10000 (librdkafka: 45000) */
  dub_kafka_handler_fn handler; /* required unless batch_handler is set */
  /* When set, dub_kafka_consumer_poll() takes up to batch_max messages (0 = 500) that
   * are ready at once and hands them over together; outcomes are as for 'handler', per
   * message: after a retriable failure the partition is rewound to that message and the
   * later messages of that partition in the batch are not stored (they come again). */
  dub_kafka_batch_handler_fn batch_handler;
  size_t batch_max;
  dub_kafka_rebalance_fn rebalance; /* optional */
  dub_kafka_assign_fn on_assign;    /* optional */
  void *ctx;                        /* passed to handler, rebalance and on_assign */
  /* Where rejected messages go; borrowed, must outlive the consumer. Required. */
  struct dub_kafka_producer *dlq_producer;
  const char *dlq_topic;    /* NULL = DUB_KAFKA_DLQ_TOPIC */
  int retry_backoff_ms;     /* first wait after a retriable failure; 0 = 100 */
  int retry_max_backoff_ms; /* doubling stops here; 0 = 5000 */
  const char *const *props; /* extra librdkafka properties, as for the producer */
};

/* What one dub_kafka_consumer_poll() call did. */
enum dub_kafka_outcome {
  DUB_KAFKA_IDLE,  /* no message within the timeout (or still backing off) */
  DUB_KAFKA_DONE,  /* handler returned DUB_OK; offset stored */
  DUB_KAFKA_DLQ,   /* handler rejected it; dead-lettered, offset stored */
  DUB_KAFKA_RETRY, /* retriable failure (or the DLQ write failed): rewound, backing
                      off; nothing stored */
  DUB_KAFKA_ERROR, /* a transient consumer error was logged; librdkafka recovers */
};

/* Creates the consumer (enable.auto.offset.store=false, enable.auto.commit=true,
 * auto.offset.reset=earliest) and subscribes. DUB_ERR_CONFIG with *why (free with
 * free()) for bad configuration. Returns a new object; close with
 * dub_kafka_consumer_close(), then free with dub_kafka_consumer_free(). */
enum dub_err dub_kafka_consumer_new(const struct dub_kafka_consumer_conf *conf,
                                    struct dub_kafka_consumer **consumer, char **why);

/* Waits up to timeout_ms for one message and handles it synchronously, so order per
 * partition holds; rebalance callbacks also run in here. While backing off after a
 * retriable failure it sleeps (at most timeout_ms) instead of fetching: the backoff
 * starts at retry_backoff_ms, doubles up to retry_max_backoff_ms and resets after a
 * message is done. A message that needs the DLQ while the DLQ producer cannot write is
 * retried the same way (check dub_kafka_producer_fatal() in the service loop). Sets
 * *outcome (may be NULL). Returns DUB_OK, or DUB_ERR_UNAVAILABLE once the consumer hit a
 * fatal error (logged; nothing more will be consumed: stop the service) or was closed. */
enum dub_err dub_kafka_consumer_poll(struct dub_kafka_consumer *consumer, int timeout_ms,
                                     enum dub_kafka_outcome *outcome);

/* True once the consumer hit a fatal error. */
bool dub_kafka_consumer_fatal(const struct dub_kafka_consumer *consumer);

/* Asks for partition 'partition' of 'topic' to be put to the on_assign callback again,
 * as if just assigned, at the next dub_kafka_consumer_poll(); if the callback sets its
 * start to DUB_KAFKA_OFFSET_BEGINNING, the partition is read again from the beginning
 * (e.g. after the service found its derived state lost). Ignored when the partition is
 * no longer assigned by then. Thread-safe. */
void dub_kafka_consumer_reassess(struct dub_kafka_consumer *consumer, const char *topic,
                                 int32_t partition);

/* Commits stored offsets and leaves the group (the revoke callback runs). Idempotent.
 * DUB_ERR_UNAVAILABLE when librdkafka reported an error while closing. */
enum dub_err dub_kafka_consumer_close(struct dub_kafka_consumer *consumer);

/* Closes if not yet closed, then frees. NULL is a no-op. */
void dub_kafka_consumer_free(struct dub_kafka_consumer *consumer);

/* The frees of this library end with rd_kafka_destroy(), after the consumer was closed
 * (its offsets committed) and the producer flushed. librdkafka 2.0 can then wait for good
 * (issue #4674: after a broker restart). When rd_kafka_destroy has not returned after
 * 'bound_ms' (0: wait for ever), the process logs why and exits with 'status': there is
 * nothing left for it to lose. Until it is called there is no bound (a test binary must
 * not end early with a status of its own); a service's runtime sets
 * DUB_KAFKA_DESTROY_BOUND_MS and the status it would end with. */
void dub_kafka_set_destroy_bound(int bound_ms, int status);
#define DUB_KAFKA_DESTROY_BOUND_MS 5000

/* ---- reader ------------------------------------------------------------------------ */

/* Reads every partition of one topic without a consumer group, from offsets the caller
 * keeps: for rebuilding derived state from a whole topic. One thread uses it. */
struct dub_kafka_reader;

/* Start from the first offset a partition still holds. */
#define DUB_KAFKA_OFFSET_BEGINNING (-2)

/* Connects, learns the topic's partitions (bounded by timeout_ms) and reads nothing yet.
 * DUB_ERR_UNAVAILABLE when the metadata cannot be had, DUB_ERR_NOT_FOUND for an unknown
 * topic, DUB_ERR_CONFIG with *why for a bad property. Returns a new object; free with
 * dub_kafka_reader_free(). */
enum dub_err dub_kafka_reader_new(const char *brokers, const char *topic, int timeout_ms,
                                  struct dub_kafka_reader **reader, char **why);
void dub_kafka_reader_free(struct dub_kafka_reader *reader);

/* Number of partitions of the topic. */
int32_t dub_kafka_reader_partitions(const struct dub_kafka_reader *reader);

/* (Re)starts reading partition i at offsets[i] (DUB_KAFKA_OFFSET_BEGINNING allowed), for
 * every partition, and takes the partitions' high watermarks as the end the reading
 * must reach (see dub_kafka_reader_caught_up). */
enum dub_err dub_kafka_reader_start(struct dub_kafka_reader *reader,
                                    const int64_t *offsets);

/* Waits up to timeout_ms for one message (dub_kafka_reader_poll_batch() of one). DUB_OK
 * with *msg set (borrowed until the next call), DUB_OK with *msg NULL when none came,
 * DUB_ERR_UNAVAILABLE on a fatal error. */
enum dub_err dub_kafka_reader_poll(struct dub_kafka_reader *reader, int timeout_ms,
                                   const struct dub_kafka_msg **msg);

/* Waits up to timeout_ms for a first message, then takes up to max - 1 more of those
 * already fetched, without waiting; an error from librdkafka (logged) ends the batch.
 * DUB_OK with *msgs[0..*count) (borrowed until the next call of any poll, start, rewind
 * or free; *count may be 0), DUB_ERR_UNAVAILABLE on a fatal error (with what came before
 * it). */
enum dub_err dub_kafka_reader_poll_batch(struct dub_kafka_reader *reader, int timeout_ms,
                                         size_t max, const struct dub_kafka_msg **msgs,
                                         size_t *count);

/* Reads partition i again from offsets[i] on, for every partition, keeping the ends the
 * last dub_kafka_reader_start() took: a rebuild that must read a batch again after a
 * failed write still finishes where it meant to. */
enum dub_err dub_kafka_reader_rewind(struct dub_kafka_reader *reader,
                                     const int64_t *offsets);

/* Forgets the ends the last start took: the next dub_kafka_reader_caught_up() takes the
 * high watermarks the partitions have then. */
void dub_kafka_reader_forget_ends(struct dub_kafka_reader *reader);

/* The next offset to read of partition i: the one after the last message polled, or the
 * start offset (DUB_KAFKA_OFFSET_BEGINNING when nothing was read since the start). */
int64_t dub_kafka_reader_position(const struct dub_kafka_reader *reader, int32_t i);

/* Whether every partition has been read up to the high watermark it had when reading
 * (re)started: a fixed end, so that records written meanwhile do not move it (review
 * C3; a reader compared with the current end never finishes under steady writes).
 * Cheap once the ends are known; an end the start could not learn is asked for here,
 * bounded by timeout_ms. DUB_ERR_UNAVAILABLE when it cannot tell. */
enum dub_err dub_kafka_reader_caught_up(struct dub_kafka_reader *reader, int timeout_ms,
                                        bool *caught_up);

#endif
