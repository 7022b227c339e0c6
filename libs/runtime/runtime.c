/* runtime.c - open, run, drain: the life of a service. */
#include "runtime/runtime.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/signals.h"
#include "core/time.h"
#include "json/json.h"
#include "kafka/cloudevent.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PING_TIMEOUT_MS 1000
#define DELIVERY_TIMEOUT_MS 5000
#define POLL_MS 200
/* How often the reloader looks for a SIGHUP: the bound on how late a reload applies. */
#define RELOAD_POLL_MS 100

struct dub_runtime {
  const struct dub_runtime_spec *spec;
  const struct dub_runtime_env *env;
  struct dub_config_holder *config;
  struct dub_metrics *metrics;
  struct dub_kafka_producer *producer;
  struct dub_kafka_consumer *consumer;
  struct dub_cache *cache;
  struct dub_http_server *http;
  struct dub_auth *auth; /* written by the reloader thread only, once it runs */
  char *group_id;
  char *probe_key; /* what /readyz writes to see that Redis takes writes */
  pthread_t reloader;
  atomic_bool run_over; /* tells the reloader to end with the run */
};

enum dub_err dub_runtime_env_load(const struct dub_runtime_spec *spec,
                                  struct dub_runtime_env *env, char **why)
{
  char port_var[64], port_def[16];
  snprintf(port_var, sizeof port_var, "DUBAN_%s_PORT", spec->service);
  for(char *p = port_var; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  snprintf(port_def, sizeof port_def, "%ld", spec->default_port);
  const struct dub_env_spec table[] = {
      {"DUBAN_KAFKA_BROKERS", DUB_ENV_STR, "127.0.0.1:9092",
       offsetof(struct dub_runtime_env, brokers), 0, 0, false},
      {"DUBAN_REDIS_URL", DUB_ENV_STR, "redis://127.0.0.1:6379/0",
       offsetof(struct dub_runtime_env, redis_url), 0, 0, false},
      {"DUBAN_CONFIG_DIR", DUB_ENV_STR, "deploy/config",
       offsetof(struct dub_runtime_env, config_dir), 0, 0, false},
      {"DUBAN_SCHEMA_DIR", DUB_ENV_STR, "schemas",
       offsetof(struct dub_runtime_env, schema_dir), 0, 0, false},
      {"DUBAN_BIND", DUB_ENV_STR, "0.0.0.0", offsetof(struct dub_runtime_env, bind), 0, 0,
       false},
      {port_var, DUB_ENV_PORT, port_def, offsetof(struct dub_runtime_env, port), 0, 0,
       false},
      {"DUBAN_HTTP_THREADS", DUB_ENV_LONG, "2",
       offsetof(struct dub_runtime_env, http_threads), 1, 64, false},
      {"DUBAN_DRAIN_MS", DUB_ENV_LONG, "3000", offsetof(struct dub_runtime_env, drain_ms),
       0, 60000, false},
      {"DUBAN_KAFKA_LINGER_MS", DUB_ENV_LONG, "5",
       offsetof(struct dub_runtime_env, linger_ms), 0, 1000, false},
      {"DUBAN_LOG_LEVEL", DUB_ENV_LEVEL, "info",
       offsetof(struct dub_runtime_env, log_level), 0, 0, false},
  };
  memset(env, 0, sizeof *env);
  enum dub_err rc = dub_env_load(table, sizeof table / sizeof table[0], env, why);
  if(rc)
    dub_runtime_env_release(env);
  return rc;
}

void dub_runtime_env_release(struct dub_runtime_env *env)
{
  free(env->brokers);
  free(env->redis_url);
  free(env->config_dir);
  free(env->schema_dir);
  free(env->bind);
  memset(env, 0, sizeof *env);
}

/* GET /readyz: Kafka answers a metadata request and Redis takes a write. Runs on an
 * HTTP server thread. */
static bool ready(void *ctx, char **reason)
{
  struct dub_runtime *rt = ctx;
  if(dub_kafka_producer_ping(rt->producer, PING_TIMEOUT_MS)) {
    *reason = dub_xstrdup("kafka is not reachable");
    return false;
  }
  if(rt->consumer && dub_kafka_consumer_fatal(rt->consumer)) {
    *reason = dub_xstrdup("kafka consumer hit a fatal error");
    return false;
  }
  /* A write, not a PING: a Redis that is loading, full (OOM) or a replica (READONLY)
   * answers PING but refuses what every service must write. */
  if(dub_cache_probe_write(rt->cache, rt->probe_key, reason))
    return false;
  return !rt->spec->ready || rt->spec->ready(rt->spec->ctx, reason);
}

static enum dub_err build_auth(struct dub_runtime *rt, struct dub_auth **out, char **why)
{
  struct dub_config *config = dub_config_holder_get(rt->config);
  char *inner = NULL;
  enum dub_err rc = dub_auth_new(config->clients, out, &inner);
  if(rc) {
    *why = dub_xasprintf("clients.json: %s", inner);
    free(inner);
  }
  dub_config_unref(config);
  return rc;
}

enum dub_err dub_runtime_open(const struct dub_runtime_spec *spec,
                              const struct dub_runtime_env *env, struct dub_runtime **out,
                              char **why)
{
  enum dub_err rc;
  struct dub_runtime *rt = dub_xcalloc(1, sizeof *rt);
  *out = NULL;
  *why = NULL;
  rt->spec = spec;
  rt->env = env;
  dub_log_setup(spec->service, env->log_level);
  rt->metrics = dub_metrics_new();
  rt->group_id = dub_xasprintf("duban-%s", spec->service);
  rt->probe_key = dub_xasprintf("duban:readyz:%s", spec->service);

  rc = dub_config_holder_new(env->config_dir, env->schema_dir, spec->config_parts,
                             &rt->config, why);
  if(rc)
    goto out;
  if(spec->check_config) {
    rc = dub_config_holder_set_check(rt->config, spec->check_config, spec->ctx, why);
    if(rc)
      goto out;
  }
  rc = build_auth(rt, &rt->auth, why);
  if(rc)
    goto out;
  char client_id[64];
  snprintf(client_id, sizeof client_id, "duban-%s", spec->service);
  /* 5 ms of linger: measured with tests/bench/intake.sh, 1 ms cost a fifth of the
   * throughput (more, smaller produce requests for the broker) for no latency gain. */
  char linger[24];
  snprintf(linger, sizeof linger, "%ld", env->linger_ms);
  const char *const props[] = {"linger.ms", linger, NULL};
  const struct dub_kafka_producer_conf pconf = {
      .brokers = env->brokers,
      .client_id = client_id,
      .delivery_timeout_ms = DELIVERY_TIMEOUT_MS,
      .props = props,
  };
  rc = dub_kafka_producer_new(&pconf, &rt->producer, why);
  if(rc)
    goto out;
  rc = dub_cache_new(env->redis_url, 1000, 1000, &rt->cache, why);
  if(rc)
    goto out;
out:
  if(rc) {
    dub_runtime_close(rt);
    return rc;
  }
  *out = rt;
  return DUB_OK;
}

static enum dub_err start(struct dub_runtime *rt, char **why)
{
  enum dub_err rc;
  const struct dub_runtime_spec *spec = rt->spec;
  const struct dub_http_opts hopts = {
      .bind = rt->env->bind,
      .port = (unsigned)rt->env->port,
      .threads = (unsigned)rt->env->http_threads,
      .routes = spec->routes,
      .nroutes = spec->nroutes,
      .ctx = rt,
      .ready = ready,
      .metrics = rt->metrics,
      .auth = rt->auth,
      .drain_ms = (unsigned)rt->env->drain_ms,
  };
  if(spec->ntopics) {
    const struct dub_kafka_consumer_conf cconf = {
        .brokers = rt->env->brokers,
        .group_id = rt->group_id,
        .topics = spec->topics,
        .topic_count = spec->ntopics,
        .client_id = rt->group_id,
        .handler = spec->handler,
        .batch_handler = spec->batch_handler,
        .rebalance = spec->rebalance,
        .on_assign = spec->on_assign,
        .ctx = spec->ctx,
        .dlq_producer = rt->producer,
    };
    rc = dub_kafka_consumer_new(&cconf, &rt->consumer, why);
    if(rc)
      return rc;
  }
  /* HTTP last: its threads read rt->consumer (readiness), which is set by now. */
  rc = dub_http_start(&hopts, &rt->http);
  if(rc) {
    *why = dub_xasprintf("cannot listen on %s:%ld", rt->env->bind, rt->env->port);
    return rc;
  }
  return DUB_OK;
}

static void reload(struct dub_runtime *rt)
{
  char *why = NULL;
  struct dub_auth *auth = NULL;
  enum dub_err rc = dub_config_holder_reload(rt->config, &why);
  if(!rc)
    rc = build_auth(rt, &auth, &why);
  if(rc) {
    dub_log_error("configuration reload refused, keeping the running one: %s", why);
    free(why);
    return;
  }
  dub_http_set_auth(rt->http, auth);
  dub_auth_unref(rt->auth);
  rt->auth = auth;
  dub_log_info("configuration reloaded from %s", rt->env->config_dir);
}

/* The reloader thread: applies a SIGHUP within RELOAD_POLL_MS, whatever the consume
 * loop is doing (a service's handler may spend minutes rebuilding its Redis state from
 * a topic, and a reload must not wait for that). Services read the configuration
 * through refcounted snapshots, so a swap under a running handler is safe. */
static void *reloader(void *arg)
{
  struct dub_runtime *rt = arg;
  while(!atomic_load(&rt->run_over)) {
    if(dub_signals_take_reload())
      reload(rt);
    struct timespec ts = {0, RELOAD_POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

int dub_runtime_run(struct dub_runtime *rt)
{
  char *why = NULL;
  if(start(rt, &why)) {
    dub_log_fatal("cannot start: %s", why ? why : "unknown error");
    free(why);
    return 1;
  }
  dub_log_info("%s listening on %s:%ld", rt->spec->service, rt->env->bind, rt->env->port);
  int code = 0;
  int err = pthread_create(&rt->reloader, NULL, reloader, rt);
  if(err) {
    dub_log_fatal("cannot start the reload thread: %s", strerror(err));
    return 1;
  }
  while(!dub_signals_stop_requested()) {
    if(rt->consumer) {
      if(dub_kafka_consumer_poll(rt->consumer, POLL_MS, NULL)) {
        dub_log_fatal("kafka consumer failed fatally; stopping");
        code = 1;
        break;
      }
    } else {
      struct timespec ts = {0, POLL_MS * 1000000L};
      nanosleep(&ts, NULL);
    }
    if(dub_kafka_producer_fatal(rt->producer)) {
      dub_log_fatal("kafka producer failed fatally; stopping");
      code = 1;
      break;
    }
  }
  atomic_store(&rt->run_over, true);
  pthread_join(rt->reloader, NULL);
  dub_log_info("%s stopping", rt->spec->service);
  /* What dub_runtime_close() commits and flushes is bounded by librdkafka's own timeouts;
   * the rd_kafka_destroy after it is not (librdkafka issue #4674). */
  dub_kafka_set_destroy_bound(DUB_KAFKA_DESTROY_BOUND_MS, code);
  return code;
}

void dub_runtime_close(struct dub_runtime *rt)
{
  if(!rt)
    return;
  /* Order matters: no new requests, then no new messages, then everything written. */
  dub_http_stop(rt->http);
  if(rt->consumer) {
    dub_kafka_consumer_close(rt->consumer);
    dub_kafka_consumer_free(rt->consumer);
  }
  dub_kafka_producer_free(rt->producer);
  dub_cache_free(rt->cache);
  dub_auth_unref(rt->auth);
  dub_config_holder_free(rt->config);
  dub_metrics_free(rt->metrics);
  free(rt->group_id);
  free(rt->probe_key);
  free(rt);
}

void *dub_runtime_service(void *http_ctx)
{
  return ((struct dub_runtime *)http_ctx)->spec->ctx;
}

void dub_runtime_reassess(struct dub_runtime *rt, const char *topic, int32_t partition)
{
  if(rt->consumer)
    dub_kafka_consumer_reassess(rt->consumer, topic, partition);
}

struct dub_kafka_producer *dub_runtime_producer(struct dub_runtime *rt)
{
  return rt->producer;
}

struct dub_cache *dub_runtime_cache(struct dub_runtime *rt)
{
  return rt->cache;
}

struct dub_metrics *dub_runtime_metrics(struct dub_runtime *rt)
{
  return rt->metrics;
}

const struct dub_runtime_env *dub_runtime_env(struct dub_runtime *rt)
{
  return rt->env;
}

struct dub_config *dub_runtime_config(struct dub_runtime *rt)
{
  return dub_config_holder_get(rt->config);
}

enum dub_err dub_runtime_reply_json(const struct dub_cache_reply *reply, const char *key,
                                    json_t **out)
{
  char *why = NULL;
  *out = NULL;
  if(reply->type == DUB_CACHE_NIL)
    return DUB_ERR_NOT_FOUND;
  if(reply->type != DUB_CACHE_STRING) {
    dub_log_error("redis answered GET %s with a reply of type %d", key, (int)reply->type);
    return DUB_ERR_INTERNAL;
  }
  if(dub_json_parse(reply->str, reply->len, out, &why)) {
    dub_log_error("redis key %s holds no valid JSON: %s", key, why);
    free(why);
    return DUB_ERR_INTERNAL;
  }
  return DUB_OK;
}

enum dub_err dub_runtime_cache_get_json(struct dub_runtime *rt, const char *key,
                                        json_t **out)
{
  struct dub_cache_reply *reply = NULL;
  const char *argv[] = {"GET", key};
  *out = NULL;
  enum dub_err rc = dub_cache_command(rt->cache, &reply, 2, argv, NULL);
  if(!rc)
    rc = dub_runtime_reply_json(reply, key, out);
  dub_cache_reply_free(reply);
  return rc;
}

enum dub_err dub_runtime_cache_set_json(struct dub_runtime *rt, const char *key,
                                        const json_t *doc)
{
  char *text = dub_json_dump(doc);
  const char *argv[] = {"SET", key, text};
  enum dub_err rc = dub_cache_command(rt->cache, NULL, 3, argv, NULL);
  free(text);
  return rc;
}

enum dub_err dub_runtime_reply_cached(struct dub_runtime *rt, const char *key,
                                      struct dub_http_reply *reply)
{
  json_t *doc = NULL;
  enum dub_err rc = dub_runtime_cache_get_json(rt, key, &doc);
  if(!rc)
    dub_http_reply_json(reply, 200, doc);
  return rc;
}

enum dub_err dub_case_event_decode(const struct dub_kafka_msg *msg,
                                   struct dub_case_event *out, char **why)
{
  memset(out, 0, sizeof *out);
  enum dub_err rc = dub_ce_decode(msg, &out->event, why);
  if(rc)
    return rc;
  out->type = dub_json_str(out->event, "type");
  out->id = dub_json_str(out->event, "id");
  out->traceparent = dub_json_str(out->event, "traceparent");
  out->data = json_object_get(out->event, "data");
  out->case_id = dub_json_str(out->data, "case_id");
  if(!out->case_id) {
    *why = dub_xasprintf("%s without data.case_id", out->type);
    dub_case_event_release(out);
    return DUB_ERR_SCHEMA;
  }
  return DUB_OK;
}

void dub_case_event_release(struct dub_case_event *ev)
{
  json_decref(ev->event);
  memset(ev, 0, sizeof *ev);
}
