/* runtime.h - what every Duban service does the same way: the common environment,
 * logger, configuration, Kafka producer and consumer, Redis, the HTTP server, the
 * consume loop with reload on SIGHUP, and a bounded drain on SIGTERM. */
#ifndef DUB_RUNTIME_RUNTIME_H
#define DUB_RUNTIME_RUNTIME_H

#include "cache/cache.h"
#include "config/config.h"
#include "core/err.h"
#include "core/log.h"
#include "http/http.h"
#include "kafka/kafka.h"
#include "metrics/metrics.h"

#include <stdbool.h>
#include <stddef.h>

/* The environment every service reads (DESIGN.md), with its defaults. */
struct dub_runtime_env {
  char *brokers;     /* DUBAN_KAFKA_BROKERS [127.0.0.1:9092] */
  char *redis_url;   /* DUBAN_REDIS_URL [redis://127.0.0.1:6379/0] */
  char *config_dir;  /* DUBAN_CONFIG_DIR [deploy/config] */
  char *schema_dir;  /* DUBAN_SCHEMA_DIR [schemas] */
  char *bind;        /* DUBAN_BIND [0.0.0.0] */
  long port;         /* DUBAN_<SERVICE>_PORT [the service's default] */
  long http_threads; /* DUBAN_HTTP_THREADS [2] */
  long drain_ms;     /* DUBAN_DRAIN_MS [3000]: wait for requests in flight on stop */
  long linger_ms;    /* DUBAN_KAFKA_LINGER_MS [5]: producer batching delay, 0..1000 */
  enum dub_log_level log_level; /* DUBAN_LOG_LEVEL [info] */
};

/* How a service plugs into the runtime. Everything is borrowed for the runtime's life. */
struct dub_runtime_spec {
  const char *service; /* "intake": log name, DUBAN_INTAKE_PORT, consumer group suffix */
  long default_port;
  unsigned config_parts; /* enum dub_config_part bits */
  /* Checks a configuration beyond its schemas, at start and before a reload replaces
   * the running one (NULL = none); called with 'ctx'. See dub_config_check_fn. */
  dub_config_check_fn check_config;
  const struct dub_http_route *routes;
  size_t nroutes;
  /* Topics to consume (none = no consumer); group id is "duban-<service>". */
  const char *const *topics;
  size_t ntopics;
  dub_kafka_handler_fn handler;
  dub_kafka_batch_handler_fn batch_handler; /* instead of handler, see libs/kafka */
  dub_kafka_rebalance_fn rebalance;
  dub_kafka_assign_fn on_assign; /* optional: see dub_kafka_assign_fn */
  /* Readiness beyond Kafka and Redis (NULL = none): false with a new *reason while the
   * service cannot do its work. Runs on an HTTP server thread. */
  bool (*ready)(void *ctx, char **reason);
  /* Passed to the Kafka handler and rebalance callback. HTTP handlers receive the
   * runtime as their ctx instead: they get this back with dub_runtime_service(). */
  void *ctx;
};

struct dub_runtime;

/* Reads the common environment for 'spec' into 'env' (strings are new copies; release
 * with dub_runtime_env_release). DUB_ERR_CONFIG with *why naming the variable. */
enum dub_err dub_runtime_env_load(const struct dub_runtime_spec *spec,
                                  struct dub_runtime_env *env, char **why);
void dub_runtime_env_release(struct dub_runtime_env *env);

/* Sets up the logger, loads and validates the configuration, creates the Kafka
 * producer and the Redis connection (neither needs to be reachable yet: readiness says
 * when they are). 'env' is borrowed for the runtime's life. Returns a new runtime in
 * *out; free with dub_runtime_close(). On failure *why is a new message. */
enum dub_err dub_runtime_open(const struct dub_runtime_spec *spec,
                              const struct dub_runtime_env *env, struct dub_runtime **out,
                              char **why);

/* Starts the HTTP server and the consumer, then loops until SIGTERM/SIGINT or a fatal
 * Kafka error. A SIGHUP reloads the configuration on a thread of its own, within about
 * 100 ms even while a handler is busy (an invalid one is refused and the running one
 * stays); handlers see the new one at their next dub_runtime_config(). Returns 0 after
 * a requested stop, 1 after a fatal error. */
int dub_runtime_run(struct dub_runtime *rt);

/* Drains and frees: stops HTTP (requests in flight finish, bounded by drain_ms), closes
 * the consumer (commits processed offsets), flushes the producer. NULL is a no-op. */
void dub_runtime_close(struct dub_runtime *rt);

/* The spec's ctx, from the ctx an HTTP handler receives. */
void *dub_runtime_service(void *http_ctx);

/* Borrowed until dub_runtime_close(). */
struct dub_kafka_producer *dub_runtime_producer(struct dub_runtime *rt);
struct dub_cache *dub_runtime_cache(struct dub_runtime *rt);
struct dub_metrics *dub_runtime_metrics(struct dub_runtime *rt);
const struct dub_runtime_env *dub_runtime_env(struct dub_runtime *rt);
/* The current configuration snapshot with a new reference: release with
 * dub_config_unref(). */
struct dub_config *dub_runtime_config(struct dub_runtime *rt);

/* dub_kafka_consumer_reassess() on the service's consumer (no-op without one). */
void dub_runtime_reassess(struct dub_runtime *rt, const char *topic, int32_t partition);

/* Reads a JSON document stored at Redis key 'key'. DUB_ERR_NOT_FOUND when absent,
 * DUB_ERR_UNAVAILABLE when Redis is not reachable, DUB_ERR_INTERNAL when the value is
 * not JSON. *out is a new reference. */
enum dub_err dub_runtime_cache_get_json(struct dub_runtime *rt, const char *key,
                                        json_t **out);
/* The JSON document in one reply to GET 'key' (a pipeline's, say), read as
 * dub_runtime_cache_get_json() reads it: DUB_ERR_NOT_FOUND for nil, DUB_ERR_INTERNAL
 * (logged, naming 'key') for anything but valid JSON. */
enum dub_err dub_runtime_reply_json(const struct dub_cache_reply *reply, const char *key,
                                    json_t **out);
/* Stores 'doc' (borrowed) as compact JSON at 'key'. */
enum dub_err dub_runtime_cache_set_json(struct dub_runtime *rt, const char *key,
                                        const json_t *doc);

/* Answers GET of a cached document: 200 with the JSON stored at 'key', or the error
 * (404 when absent, 503 when Redis does not answer). For handlers of /v1 queries. */
enum dub_err dub_runtime_reply_cached(struct dub_runtime *rt, const char *key,
                                      struct dub_http_reply *reply);

/* An event of duban.cases, decoded (structured or binary mode) with the members every
 * consumer needs. Pointers are borrowed from 'event'. */
struct dub_case_event {
  json_t *event;
  const char *type;
  const char *id;
  const char *traceparent; /* NULL when absent */
  const json_t *data;
  const char *case_id;
};

/* Decodes 'msg' into 'out'. DUB_ERR_MALFORMED or DUB_ERR_SCHEMA (no data.case_id) with
 * *why, so the consumer dead-letters it. Release with dub_case_event_release(). */
enum dub_err dub_case_event_decode(const struct dub_kafka_msg *msg,
                                   struct dub_case_event *out, char **why);
void dub_case_event_release(struct dub_case_event *ev);

#endif
