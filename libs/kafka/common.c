/* common.c - error mapping, configuration and logging shared by producer and consumer. */
#include "kafka/internal.h"
#include "kafka/kafka.h"

#include "core/alloc.h"
#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum dub_err kafka_map_err(rd_kafka_resp_err_t err)
{
  switch(err) {
  case RD_KAFKA_RESP_ERR_NO_ERROR:
    return DUB_OK;
  case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
  case RD_KAFKA_RESP_ERR__TIMED_OUT:
  case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    return DUB_ERR_TIMEOUT;
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    return DUB_ERR_TOO_LARGE;
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    return DUB_ERR_NOT_FOUND;
  case RD_KAFKA_RESP_ERR__INVALID_ARG:
  case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    return DUB_ERR_INVALID;
  default:
    return DUB_ERR_UNAVAILABLE;
  }
}

enum dub_err kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                            char **why)
{
  char errstr[512];
  if(!value) {
    *why = dub_xasprintf("kafka property '%s' has no value", name);
    return DUB_ERR_CONFIG;
  }
  if(rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    *why = dub_xasprintf("kafka property '%s': %s", name, errstr);
    return DUB_ERR_CONFIG;
  }
  return DUB_OK;
}

enum dub_err kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *props, char **why)
{
  enum dub_err rc = DUB_OK;
  for(size_t i = 0; props && props[i]; i += 2) {
    rc = kafka_conf_set(conf, props[i], props[i + 1], why);
    if(rc)
      break;
  }
  return rc;
}

void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  /* syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug. */
  enum dub_log_level lvl = level <= 3   ? DUB_LOG_ERROR
                           : level == 4 ? DUB_LOG_WARN
                           : level <= 6 ? DUB_LOG_INFO
                                        : DUB_LOG_DEBUG;
  dub_log_at(lvl, NULL, NULL, "rdkafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

bool dub_kafka_msg_header(const struct dub_kafka_msg *msg, const char *name,
                          const void **value, size_t *len)
{
  for(size_t i = msg->header_count; i > 0; i--) {
    const struct dub_kafka_header *h = &msg->headers[i - 1];
    if(h->name && strcmp(h->name, name) == 0) {
      *value = h->value;
      *len = h->value ? h->len : 0;
      return true;
    }
  }
  return false;
}

char *kafka_base64(const void *buf, size_t len, size_t *out_len)
{
  static const char digits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = buf;
  char *out = dub_xmalloc(4 * ((len + 2) / 3) + 1);
  size_t o = 0;
  for(size_t i = 0; i < len; i += 3) {
    unsigned v = (unsigned)p[i] << 16;
    if(i + 1 < len)
      v |= (unsigned)p[i + 1] << 8;
    if(i + 2 < len)
      v |= p[i + 2];
    out[o++] = digits[(v >> 18) & 63];
    out[o++] = digits[(v >> 12) & 63];
    out[o++] = i + 1 < len ? digits[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < len ? digits[v & 63] : '=';
  }
  out[o] = '\0';
  *out_len = o;
  return out;
}

void kafka_msg_view(rd_kafka_message_t *rkm, struct dub_kafka_msg *msg,
                    struct dub_kafka_header **headers, size_t *cap)
{
  rd_kafka_headers_t *hdrs = NULL;
  *msg = (struct dub_kafka_msg){
      .topic = rd_kafka_topic_name(rkm->rkt),
      .partition = rkm->partition,
      .offset = rkm->offset,
      .key = rkm->key,
      .key_len = rkm->key ? rkm->key_len : 0,
      .value = rkm->payload,
      .value_len = rkm->payload ? rkm->len : 0,
      .timestamp_ms = rd_kafka_message_timestamp(rkm, NULL),
  };
  if(rd_kafka_message_headers(rkm, &hdrs) || !hdrs)
    return;
  size_t n = rd_kafka_header_cnt(hdrs);
  if(n > *cap) {
    *headers = dub_xrealloc(*headers, n * sizeof **headers);
    *cap = n;
  }
  size_t i = 0;
  const char *name;
  const void *value;
  size_t size;
  while(i < n && !rd_kafka_header_get_all(hdrs, i, &name, &value, &size)) {
    (*headers)[i].name = name;
    (*headers)[i].value = value;
    (*headers)[i].len = value ? size : 0;
    i++;
  }
  msg->headers = i ? *headers : NULL;
  msg->header_count = i;
}

/* ---- a bounded rd_kafka_destroy ---------------------------------------------------- */

static atomic_int destroy_bound_ms; /* 0 until a service sets it */
static atomic_int destroy_status;

void dub_kafka_set_destroy_bound(int bound_ms, int status)
{
  atomic_store(&destroy_bound_ms, bound_ms);
  atomic_store(&destroy_status, status);
}

struct watch {
  struct dub_kafka_acks *returned; /* one pending: rd_kafka_destroy */
  const char *what;
  int bound_ms;
};

static void *watch_destroy(void *arg)
{
  const struct watch *w = arg;
  if(dub_kafka_acks_wait(w->returned, w->bound_ms) == DUB_ERR_TIMEOUT) {
    int status = atomic_load(&destroy_status);
    dub_log_error(
        "librdkafka has not let the %s go %d ms after it was closed (librdkafka "
        "2.0 to 2.3 keep a partition's reference after a broker went down and "
        "came back, and rd_kafka_destroy waits for it for good: librdkafka "
        "issue #4674); what it had to commit and deliver is done, so the "
        "process ends now, status %d",
        w->what, w->bound_ms, status);
    _exit(status);
  }
  return NULL;
}

void kafka_destroy(rd_kafka_t *rk, const char *what)
{
  int bound_ms = atomic_load(&destroy_bound_ms);
  if(bound_ms <= 0) {
    rd_kafka_destroy(rk);
    return;
  }
  struct watch w = {dub_kafka_acks_new(), what, bound_ms};
  dub_kafka_acks_add(w.returned);
  pthread_t watcher;
  dub_xthread_create(&watcher, watch_destroy, &w, "the kafka destroy watchdog");
  rd_kafka_destroy(rk);
  dub_kafka_acks_report(w.returned, DUB_OK, 0, 0);
  pthread_join(watcher, NULL);
  dub_kafka_acks_release(w.returned);
}
