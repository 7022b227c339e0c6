/* producer.c - the idempotent producer, its background poll thread and sync produce. */
#include "kafka/kafka.h"

#include "kafka/internal.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dub_kafka_producer {
  rd_kafka_t *rk;
  pthread_t thread;
  bool thread_started;
  atomic_bool stop;
  atomic_bool fatal;
  int delivery_timeout_ms;
};

/* What a message carries to its delivery report; freed there. */
struct delivery {
  dub_kafka_delivery_fn cb;
  void *opaque;
};

/* Shared by dub_kafka_produce_sync() and the delivery report: the last one to let go
 * frees it, so a caller that timed out never leaves a dangling pointer behind. */
struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs;
  bool done;
  enum dub_err err;
  int32_t partition;
  int64_t offset;
};

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while(nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

/* Runs on the poll thread (or in flush on the freeing thread). */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
  (void)rk;
  (void)opaque;
  struct delivery *d = rkm->_private;
  enum dub_err err = kafka_map_err(rkm->err);
  /* Logged also for a message produced without a callback: nobody else would say it. */
  if(err)
    dub_log_warn("kafka delivery to '%s' failed: %s", rd_kafka_topic_name(rkm->rkt),
                 rd_kafka_err2str(rkm->err));
  if(!d)
    return;
  d->cb(d->opaque, err, err ? -1 : rkm->partition, err ? -1 : rkm->offset);
  free(d);
}

/* Runs on the poll thread. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  struct dub_kafka_producer *producer = opaque;
  if(err != RD_KAFKA_RESP_ERR__FATAL) {
    dub_log_warn("kafka producer error %s: %s", rd_kafka_err2name(err), reason);
    return;
  }
  char errstr[512];
  rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, errstr, sizeof errstr);
  dub_log_error("kafka producer fatal error %s: %s; the service must stop",
                rd_kafka_err2name(orig), errstr);
  atomic_store(&producer->fatal, true);
}

static void *poll_main(void *arg)
{
  struct dub_kafka_producer *producer = arg;
  while(!atomic_load(&producer->stop))
    rd_kafka_poll(producer->rk, 100);
  return NULL;
}

enum dub_err dub_kafka_producer_new(const struct dub_kafka_producer_conf *conf,
                                    struct dub_kafka_producer **producer, char **why)
{
  enum dub_err rc = DUB_OK;
  struct dub_kafka_producer *p = dub_xcalloc(1, sizeof *p);
  rd_kafka_conf_t *kconf = rd_kafka_conf_new();
  char errstr[512];
  char timeout[16];

  *producer = NULL;
  atomic_init(&p->stop, false);
  atomic_init(&p->fatal, false);
  p->delivery_timeout_ms =
      conf->delivery_timeout_ms > 0 ? conf->delivery_timeout_ms : 30000;
  snprintf(timeout, sizeof timeout, "%d", p->delivery_timeout_ms);
  if(!conf->brokers || !*conf->brokers) {
    *why = dub_xstrdup("kafka brokers are not set");
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  /* clang-format off */
  const char *const defaults[] = {
      "bootstrap.servers", conf->brokers,
      "client.id", conf->client_id ? conf->client_id : "duban",
      "enable.idempotence", "true",
      "acks", "all",
      "socket.nagle.disable", "true",
      "linger.ms", "5",
      "partitioner", "murmur2_random",
      "message.timeout.ms", timeout,
      NULL};
  /* clang-format on */
  rc = kafka_conf_apply(kconf, defaults, why);
  if(rc)
    goto out;
  rc = kafka_conf_apply(kconf, conf->props, why);
  if(rc)
    goto out;
  rd_kafka_conf_set_opaque(kconf, p);
  rd_kafka_conf_set_dr_msg_cb(kconf, dr_msg_cb);
  rd_kafka_conf_set_error_cb(kconf, error_cb);
  rd_kafka_conf_set_log_cb(kconf, kafka_log_cb);
  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof errstr);
  if(!p->rk) {
    *why = dub_xasprintf("cannot create kafka producer: %s", errstr);
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  kconf = NULL; /* owned by p->rk now */
  if(pthread_create(&p->thread, NULL, poll_main, p)) {
    *why = dub_xstrdup("cannot start the kafka producer poll thread");
    rc = DUB_ERR_INTERNAL;
    goto out;
  }
  p->thread_started = true;
  *producer = p;
  p = NULL;
out:
  if(kconf)
    rd_kafka_conf_destroy(kconf);
  dub_kafka_producer_free(p);
  return rc;
}

void dub_kafka_producer_free(struct dub_kafka_producer *producer)
{
  if(!producer)
    return;
  if(producer->rk) {
    rd_kafka_resp_err_t err = rd_kafka_flush(producer->rk, producer->delivery_timeout_ms);
    if(err) {
      dub_log_warn("kafka producer closing with %d undelivered messages",
                   rd_kafka_outq_len(producer->rk));
      /* Fail what is left so every callback still runs exactly once. */
      rd_kafka_purge(producer->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    }
  }
  if(producer->thread_started) {
    atomic_store(&producer->stop, true);
    pthread_join(producer->thread, NULL);
  }
  if(producer->rk) {
    rd_kafka_poll(producer->rk, 0);
    kafka_destroy(producer->rk, "producer");
  }
  free(producer);
}

bool dub_kafka_producer_fatal(const struct dub_kafka_producer *producer)
{
  return atomic_load(&producer->fatal);
}

int kafka_producer_delivery_timeout(const struct dub_kafka_producer *producer)
{
  return producer->delivery_timeout_ms;
}

enum dub_err dub_kafka_produce(struct dub_kafka_producer *producer, const char *topic,
                               const void *key, size_t key_len, const void *value,
                               size_t value_len, const struct dub_kafka_header *headers,
                               size_t header_count, dub_kafka_delivery_fn cb,
                               void *opaque)
{
  enum dub_err rc = DUB_OK;
  rd_kafka_headers_t *hdrs = NULL;
  struct delivery *d = NULL;
  int64_t give_up = dub_time_mono_ms() + 1000;

  if(!key)
    key_len = 0;
  if(!value)
    value_len = 0;
  if(!topic || !*topic || (header_count && !headers)) {
    rc = DUB_ERR_INVALID;
    goto out;
  }
  if(atomic_load(&producer->fatal)) {
    rc = DUB_ERR_UNAVAILABLE;
    goto out;
  }
  hdrs = rd_kafka_headers_new(header_count);
  for(size_t i = 0; i < header_count; i++) {
    if(!headers[i].name ||
       rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                           headers[i].value ? (ssize_t)headers[i].len : 0)) {
      rc = DUB_ERR_INVALID;
      goto out;
    }
  }
  if(cb) {
    d = dub_xmalloc(sizeof *d);
    d->cb = cb;
    d->opaque = opaque;
  }
  for(;;) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if(!err) {
      hdrs = NULL; /* owned by the message now */
      d = NULL;    /* freed by dr_msg_cb */
      break;
    }
    if(err == RD_KAFKA_RESP_ERR__QUEUE_FULL && dub_time_mono_ms() < give_up) {
      sleep_ms(10); /* the poll thread drains delivery reports meanwhile */
      continue;
    }
    dub_log_warn("kafka produce to '%s' failed: %s", topic, rd_kafka_err2str(err));
    rc = kafka_map_err(err);
    if(rc != DUB_ERR_TOO_LARGE && rc != DUB_ERR_INVALID)
      rc = DUB_ERR_UNAVAILABLE; /* queue full, fatal error, unknown topic */
    goto out;
  }
out:
  if(hdrs)
    rd_kafka_headers_destroy(hdrs);
  free(d);
  return rc;
}

static void waiter_unref(struct waiter *w)
{
  pthread_mutex_lock(&w->mu);
  bool last = --w->refs == 0;
  pthread_mutex_unlock(&w->mu);
  if(last) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
  }
}

/* Runs on the poll thread. */
static void sync_done(void *opaque, enum dub_err err, int32_t partition, int64_t offset)
{
  struct waiter *w = opaque;
  pthread_mutex_lock(&w->mu);
  w->done = true;
  w->err = err;
  w->partition = partition;
  w->offset = offset;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  waiter_unref(w);
}

enum dub_err dub_kafka_produce_sync(struct dub_kafka_producer *producer,
                                    const char *topic, const void *key, size_t key_len,
                                    const void *value, size_t value_len,
                                    const struct dub_kafka_header *headers,
                                    size_t header_count, int timeout_ms,
                                    int32_t *partition, int64_t *offset)
{
  enum dub_err rc;
  struct waiter *w = dub_xcalloc(1, sizeof *w);
  pthread_condattr_t attr;
  struct timespec deadline;

  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &attr);
  pthread_condattr_destroy(&attr);
  w->refs = 2;
  rc = dub_kafka_produce(producer, topic, key, key_len, value, value_len, headers,
                         header_count, sync_done, w);
  if(rc) {
    w->refs = 1; /* the callback will never run */
    goto out;
  }
  deadline = dub_time_mono_after(timeout_ms);
  pthread_mutex_lock(&w->mu);
  while(!w->done) {
    if(pthread_cond_timedwait(&w->cv, &w->mu, &deadline) == ETIMEDOUT)
      break;
  }
  rc = w->done ? w->err : DUB_ERR_TIMEOUT;
  if(w->done && partition)
    *partition = w->partition;
  if(w->done && offset)
    *offset = w->offset;
  pthread_mutex_unlock(&w->mu);
out:
  waiter_unref(w);
  return rc;
}

enum dub_err dub_kafka_producer_ping(struct dub_kafka_producer *producer, int timeout_ms)
{
  const struct rd_kafka_metadata *md = NULL;
  enum dub_err rc = DUB_OK;
  if(atomic_load(&producer->fatal))
    return DUB_ERR_UNAVAILABLE;
  rd_kafka_resp_err_t err = rd_kafka_metadata(producer->rk, 0, NULL, &md, timeout_ms);
  if(err) {
    rc = kafka_map_err(err) == DUB_ERR_TIMEOUT ? DUB_ERR_TIMEOUT : DUB_ERR_UNAVAILABLE;
    goto out;
  }
  if(md->broker_cnt < 1)
    rc = DUB_ERR_UNAVAILABLE;
out:
  if(md)
    rd_kafka_metadata_destroy(md);
  return rc;
}
