/* consumer.c - at-least-once consumer: offsets stored after the handler, rewind on
 * retriable failures, dead letters for the rest. */
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

struct dub_kafka_consumer {
  rd_kafka_t *rk;
  dub_kafka_handler_fn handler;
  dub_kafka_batch_handler_fn batch_handler;
  size_t batch_max;
  dub_kafka_rebalance_fn rebalance;
  dub_kafka_assign_fn on_assign;
  void *ctx;
  struct dub_kafka_producer *dlq_producer;
  char *dlq_topic;
  int backoff_min_ms;
  int backoff_max_ms;
  int backoff_ms;   /* next wait after a retriable failure */
  int64_t retry_at; /* monotonic ms until which polling pauses; 0 = none */
  bool closed;
  atomic_bool fatal;
  struct dub_kafka_header *headers; /* reused for each message */
  size_t header_cap;
  /* Review C5: while a batch is gathered, each partition revoked meanwhile with how
   * many messages were gathered before its revocation; those messages belong to the
   * partition's next owner (which reads them again from the committed offset), so
   * they are dropped from the batch, never handled here as well. */
  bool gathering;
  size_t gathered;
  struct revoked {
    char *topic;
    int32_t partition;
    size_t before; /* messages [0, before) of the batch are stale if on it */
  } * revoked;
  size_t nrevoked, revoked_cap;
  /* Review C12d: rewinds whose seek failed. The partition is paused (nothing after the
   * message is handled) until a seek to it succeeds, tried again at every poll. */
  struct unsought {
    char *topic;
    int32_t partition;
    int64_t offset;
  } * unsought;
  size_t nunsought;
  /* Partitions to put to on_assign again at the next poll (any thread adds). */
  pthread_mutex_t reassess_lock;
  struct dub_kafka_partition *reassess; /* topics are copies */
  size_t nreassess;
  /* A batch's arrays (batch_max long), kept from batch to batch: allocating them for
   * each batch made glibc consolidate its free lists every time (6% of a batch
   * handler's CPU, measured with the assignment benchmark). */
  struct {
    rd_kafka_message_t **rkms;
    struct dub_kafka_msg *msgs;
    struct dub_kafka_header **hdrs; /* each message's headers, grown as needed */
    size_t *caps;
    enum dub_err *results;
    enum dub_kafka_outcome *outs;
    char **whys;
  } batch;
};

static void sleep_ms(int64_t ms)
{
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while(nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

static void set_fatal(struct dub_kafka_consumer *consumer)
{
  char errstr[512];
  if(atomic_exchange(&consumer->fatal, true))
    return;
  rd_kafka_resp_err_t orig = rd_kafka_fatal_error(consumer->rk, errstr, sizeof errstr);
  dub_log_error("kafka consumer fatal error %s: %s; the service must stop",
                rd_kafka_err2name(orig), errstr);
}

/* Runs on a librdkafka thread or in dub_kafka_consumer_poll(). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  (void)rk;
  struct dub_kafka_consumer *consumer = opaque;
  if(err == RD_KAFKA_RESP_ERR__FATAL)
    set_fatal(consumer);
  else
    dub_log_warn("kafka consumer error %s: %s", rd_kafka_err2name(err), reason);
}

static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *parts)
{
  char line[1024];
  size_t used = 0;
  line[0] = '\0';
  for(int i = 0; i < parts->cnt && used < sizeof line; i++) {
    int n = snprintf(line + used, sizeof line - used, "%s%s[%d]", i ? " " : "",
                     parts->elems[i].topic, (int)parts->elems[i].partition);
    if(n < 0)
      break;
    used += (size_t)n;
  }
  dub_log_info("kafka partitions %s: %s", what, parts->cnt ? line : "(none)");
}

static void tell_service(struct dub_kafka_consumer *consumer, bool assigned,
                         const rd_kafka_topic_partition_list_t *parts)
{
  if(!consumer->rebalance)
    return;
  size_t n = parts->cnt > 0 ? (size_t)parts->cnt : 0;
  struct dub_kafka_partition *list = dub_xcalloc(n ? n : 1, sizeof *list);
  for(size_t i = 0; i < n; i++) {
    list[i].topic = parts->elems[i].topic;
    list[i].partition = parts->elems[i].partition;
  }
  consumer->rebalance(consumer->ctx, assigned, list, n);
  free(list);
}

#define WATERMARK_TIMEOUT_MS 5000

#define COMMITTED_TRIES_MS 15000
#define COMMITTED_PAUSE_MS 250

/* The group's committed offsets of 'parts', into a copy of it; NULL if the coordinator
 * would not tell within COMMITTED_TRIES_MS (asked again every COMMITTED_PAUSE_MS: after
 * a broker stall or restart it answers "not coordinator" until the group has settled). */
static rd_kafka_topic_partition_list_t *
fetch_committed(struct dub_kafka_consumer *consumer,
                const rd_kafka_topic_partition_list_t *parts)
{
  int64_t until = dub_time_mono_ms() + COMMITTED_TRIES_MS;
  for(;;) {
    rd_kafka_topic_partition_list_t *committed =
        rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err =
        rd_kafka_committed(consumer->rk, committed, WATERMARK_TIMEOUT_MS);
    for(int i = 0; !err && i < committed->cnt; i++)
      err = committed->elems[i].err;
    if(!err)
      return committed;
    rd_kafka_topic_partition_list_destroy(committed);
    /* Closing: an assignment served now is given up at once, so no waiting (an
     * instance stopped with SIGTERM must exit within its grace period). */
    if(consumer->closed || dub_time_mono_ms() >= until) {
      dub_log_error("kafka committed offsets unknown: %s", rd_kafka_err2str(err));
      return NULL;
    }
    dub_log_warn("kafka committed offsets not known yet (%s), asking again",
                 rd_kafka_err2str(err));
    sleep_ms(COMMITTED_PAUSE_MS);
  }
}

/* Asks the service where the partitions about to be assigned start, telling it their
 * committed offsets ('committed', or asked for here when NULL) and high watermarks. */
static void ask_service(struct dub_kafka_consumer *consumer,
                        rd_kafka_topic_partition_list_t *parts,
                        const rd_kafka_topic_partition_list_t *known)
{
  if(!consumer->on_assign)
    return;
  size_t n = parts->cnt > 0 ? (size_t)parts->cnt : 0;
  struct dub_kafka_assignment *list = dub_xcalloc(n ? n : 1, sizeof *list);
  rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
  rd_kafka_resp_err_t cerr = RD_KAFKA_RESP_ERR_NO_ERROR;
  if(known) {
    for(int i = 0; i < committed->cnt; i++)
      committed->elems[i].offset = known->elems[i].offset;
  } else {
    cerr = rd_kafka_committed(consumer->rk, committed, WATERMARK_TIMEOUT_MS);
    if(cerr)
      dub_log_warn("kafka committed offsets unknown: %s", rd_kafka_err2str(cerr));
  }
  for(size_t i = 0; i < n; i++) {
    rd_kafka_topic_partition_t *p = &parts->elems[i];
    int64_t low = -1, high = -1;
    if(rd_kafka_query_watermark_offsets(consumer->rk, p->topic, p->partition, &low, &high,
                                        WATERMARK_TIMEOUT_MS)) {
      high = -1;
      dub_log_warn("kafka high watermark of %s[%d] unknown", p->topic, (int)p->partition);
    }
    list[i].topic = p->topic;
    list[i].partition = p->partition;
    list[i].committed =
        !cerr && committed->elems[i].offset >= 0 ? committed->elems[i].offset : -1;
    list[i].high = high;
    list[i].start = DUB_KAFKA_OFFSET_STORED;
  }
  consumer->on_assign(consumer->ctx, list, n);
  for(size_t i = 0; i < n; i++)
    if(list[i].start == DUB_KAFKA_OFFSET_BEGINNING)
      parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_topic_partition_list_destroy(committed);
  free(list);
}

static void note_revoked(struct dub_kafka_consumer *consumer,
                         const rd_kafka_topic_partition_list_t *parts)
{
  for(int i = 0; i < parts->cnt; i++) {
    if(consumer->nrevoked == consumer->revoked_cap) {
      consumer->revoked_cap = consumer->revoked_cap ? 2 * consumer->revoked_cap : 16;
      consumer->revoked = dub_xrealloc(consumer->revoked,
                                       consumer->revoked_cap * sizeof *consumer->revoked);
    }
    consumer->revoked[consumer->nrevoked++] =
        (struct revoked){dub_xstrdup(parts->elems[i].topic), parts->elems[i].partition,
                         consumer->gathered};
  }
}

static void forget_revoked(struct dub_kafka_consumer *consumer)
{
  for(size_t i = 0; i < consumer->nrevoked; i++)
    free(consumer->revoked[i].topic);
  consumer->nrevoked = 0;
}

/* Whether message i of the batch was gathered before its partition was revoked. */
static bool stale(const struct dub_kafka_consumer *consumer,
                  const rd_kafka_message_t *rkm, size_t i)
{
  for(size_t j = 0; j < consumer->nrevoked; j++) {
    const struct revoked *r = &consumer->revoked[j];
    if(i < r->before && r->partition == rkm->partition &&
       strcmp(r->topic, rd_kafka_topic_name(rkm->rkt)) == 0)
      return true;
  }
  return false;
}

static void forget_unsought(struct dub_kafka_consumer *consumer,
                            const rd_kafka_topic_partition_list_t *parts);

/* Runs in dub_kafka_consumer_poll() or dub_kafka_consumer_close(). */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
  struct dub_kafka_consumer *consumer = opaque;
  bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  rd_kafka_error_t *error = NULL;
  rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

  if(err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    log_partitions("assigned", parts);
    /* Each partition is assigned at an offset of its own, never "the stored one":
     * librdkafka 2.0 then asks the coordinator itself, and when that request fails as
     * a whole (NOT_COORDINATOR with no partitions, as after a broker stall) it never
     * asks again and never starts fetching (librdkafka issue #5586); the consumer sat
     * idle for good with its partitions assigned. */
    rd_kafka_topic_partition_list_t *committed = fetch_committed(consumer, parts);
    for(int i = 0; committed && i < parts->cnt; i++)
      parts->elems[i].offset = committed->elems[i].offset >= 0
                                   ? committed->elems[i].offset
                                   : RD_KAFKA_OFFSET_BEGINNING;
    ask_service(consumer, parts, committed);
    if(committed)
      rd_kafka_topic_partition_list_destroy(committed);
    if(cooperative)
      error = rd_kafka_incremental_assign(rk, parts);
    else
      aerr = rd_kafka_assign(rk, parts);
    /* A partition paused for a failed seek before it was revoked is ours again from
     * its committed offset: nothing is to wait for. */
    rd_kafka_resume_partitions(rk, parts);
    tell_service(consumer, true, parts);
  } else {
    if(err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
      log_partitions("revoked", parts);
    else
      dub_log_warn("kafka rebalance error: %s", rd_kafka_err2str(err));
    tell_service(consumer, false, parts);
    if(consumer->gathering)
      note_revoked(consumer, parts);
    forget_unsought(consumer, parts);
    if(!rd_kafka_assignment_lost(rk)) {
      rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
      if(cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
        dub_log_warn("kafka commit on revoke failed: %s", rd_kafka_err2str(cerr));
    }
    if(cooperative)
      error = rd_kafka_incremental_unassign(rk, parts);
    else
      aerr = rd_kafka_assign(rk, NULL);
    consumer->retry_at = 0; /* a rewound partition may be gone */
  }
  if(error) {
    dub_log_error("kafka assignment failed: %s", rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else if(aerr) {
    dub_log_error("kafka assignment failed: %s", rd_kafka_err2str(aerr));
  }
}

enum dub_err dub_kafka_consumer_new(const struct dub_kafka_consumer_conf *conf,
                                    struct dub_kafka_consumer **consumer, char **why)
{
  enum dub_err rc = DUB_OK;
  struct dub_kafka_consumer *c = dub_xcalloc(1, sizeof *c);
  rd_kafka_conf_t *kconf = rd_kafka_conf_new();
  rd_kafka_topic_partition_list_t *topics = NULL;
  char errstr[512];
  char session[16];

  *consumer = NULL;
  atomic_init(&c->fatal, false);
  pthread_mutex_init(&c->reassess_lock, NULL);
  c->closed = true; /* nothing to close until subscribed */
  if(!conf->brokers || !*conf->brokers || !conf->group_id || !*conf->group_id ||
     !conf->topic_count || !conf->topics || (!conf->handler && !conf->batch_handler) ||
     !conf->dlq_producer) {
    *why = dub_xstrdup("kafka consumer needs brokers, group id, topics, a handler and a "
                       "dead-letter producer");
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  c->handler = conf->handler;
  c->batch_handler = conf->batch_handler;
  c->batch_max = conf->batch_max ? conf->batch_max : 500;
  if(c->batch_handler) {
    c->batch.rkms = dub_xcalloc(c->batch_max, sizeof *c->batch.rkms);
    c->batch.msgs = dub_xcalloc(c->batch_max, sizeof *c->batch.msgs);
    c->batch.hdrs = dub_xcalloc(c->batch_max, sizeof *c->batch.hdrs);
    c->batch.caps = dub_xcalloc(c->batch_max, sizeof *c->batch.caps);
    c->batch.results = dub_xcalloc(c->batch_max, sizeof *c->batch.results);
    c->batch.outs = dub_xcalloc(c->batch_max, sizeof *c->batch.outs);
    c->batch.whys = dub_xcalloc(c->batch_max, sizeof *c->batch.whys);
  }
  c->rebalance = conf->rebalance;
  c->on_assign = conf->on_assign;
  c->ctx = conf->ctx;
  c->dlq_producer = conf->dlq_producer;
  c->dlq_topic = dub_xstrdup(conf->dlq_topic ? conf->dlq_topic : DUB_KAFKA_DLQ_TOPIC);
  c->backoff_min_ms = conf->retry_backoff_ms > 0 ? conf->retry_backoff_ms : 100;
  c->backoff_max_ms = conf->retry_max_backoff_ms > 0 ? conf->retry_max_backoff_ms : 5000;
  if(c->backoff_max_ms < c->backoff_min_ms)
    c->backoff_max_ms = c->backoff_min_ms;
  c->backoff_ms = c->backoff_min_ms;
  snprintf(session, sizeof session, "%d",
           conf->session_timeout_ms > 0 ? conf->session_timeout_ms : 10000);
  /* clang-format off */
  const char *const defaults[] = {
      "bootstrap.servers", conf->brokers,
      "group.id", conf->group_id,
      "client.id", conf->client_id ? conf->client_id : "duban",
      "enable.auto.offset.store", "false",
      "enable.auto.commit", "true",
      "auto.offset.reset", "earliest",
      "session.timeout.ms", session,
      "socket.nagle.disable", "true",
      NULL};
  /* clang-format on */
  rc = kafka_conf_apply(kconf, defaults, why);
  if(rc)
    goto out;
  rc = kafka_conf_apply(kconf, conf->props, why);
  if(rc)
    goto out;
  rd_kafka_conf_set_opaque(kconf, c);
  rd_kafka_conf_set_error_cb(kconf, error_cb);
  rd_kafka_conf_set_log_cb(kconf, kafka_log_cb);
  rd_kafka_conf_set_rebalance_cb(kconf, rebalance_cb);
  c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, sizeof errstr);
  if(!c->rk) {
    *why = dub_xasprintf("cannot create kafka consumer: %s", errstr);
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  kconf = NULL; /* owned by c->rk now */
  rd_kafka_poll_set_consumer(c->rk);
  topics = rd_kafka_topic_partition_list_new((int)conf->topic_count);
  for(size_t i = 0; i < conf->topic_count; i++)
    rd_kafka_topic_partition_list_add(topics, conf->topics[i], RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, topics);
  if(err) {
    *why = dub_xasprintf("cannot subscribe: %s", rd_kafka_err2str(err));
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  c->closed = false;
  *consumer = c;
  c = NULL;
out:
  if(topics)
    rd_kafka_topic_partition_list_destroy(topics);
  if(kconf)
    rd_kafka_conf_destroy(kconf);
  dub_kafka_consumer_free(c);
  return rc;
}

bool dub_kafka_consumer_fatal(const struct dub_kafka_consumer *consumer)
{
  return atomic_load(&consumer->fatal);
}

/* Points consumer->headers at the message's headers (borrowed from rkm). */
static void store_offset(struct dub_kafka_consumer *consumer,
                         const struct dub_kafka_msg *msg)
{
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, msg->topic, msg->partition)->offset =
      msg->offset + 1;
  rd_kafka_resp_err_t err = rd_kafka_offsets_store(consumer->rk, list);
  if(!err)
    err = list->elems[0].err;
  if(err)
    dub_log_warn("kafka offset store %s[%d]@%lld failed: %s", msg->topic,
                 (int)msg->partition, (long long)msg->offset, rd_kafka_err2str(err));
  rd_kafka_topic_partition_list_destroy(list);
}

/* Seeks one partition; whether it worked (else logged). */
static bool seek_one(struct dub_kafka_consumer *consumer, const char *topic,
                     int32_t partition, int64_t offset)
{
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
  rd_kafka_error_t *error = rd_kafka_seek_partitions(consumer->rk, list, 5000);
  bool ok = !error && !list->elems[0].err;
  if(error) {
    dub_log_warn("kafka seek %s[%d]@%lld failed: %s", topic, (int)partition,
                 (long long)offset, rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else if(list->elems[0].err) {
    dub_log_warn("kafka seek %s[%d]@%lld failed: %s", topic, (int)partition,
                 (long long)offset, rd_kafka_err2str(list->elems[0].err));
  }
  rd_kafka_topic_partition_list_destroy(list);
  return ok;
}

static void pause_resume(struct dub_kafka_consumer *consumer, const char *topic,
                         int32_t partition, bool pause)
{
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic, partition);
  rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(consumer->rk, list)
                                  : rd_kafka_resume_partitions(consumer->rk, list);
  if(err || list->elems[0].err)
    dub_log_error("kafka %s %s[%d] failed: %s", pause ? "pause" : "resume", topic,
                  (int)partition, rd_kafka_err2str(err ? err : list->elems[0].err));
  rd_kafka_topic_partition_list_destroy(list);
}

/* Seeks again what could not be sought; resumes each partition that now could. */
static void seek_unsought(struct dub_kafka_consumer *consumer)
{
  size_t kept = 0;
  for(size_t i = 0; i < consumer->nunsought; i++) {
    struct unsought *u = &consumer->unsought[i];
    if(seek_one(consumer, u->topic, u->partition, u->offset)) {
      pause_resume(consumer, u->topic, u->partition, false);
      dub_log_info("kafka %s[%d] sought to %lld at last, resumed", u->topic,
                   (int)u->partition, (long long)u->offset);
      free(u->topic);
    } else {
      consumer->unsought[kept++] = *u;
    }
  }
  consumer->nunsought = kept;
}

/* Forgets the failed seeks of revoked partitions (their next owner starts at the
 * committed offset, which is at most the message that was to come again). */
static void forget_unsought(struct dub_kafka_consumer *consumer,
                            const rd_kafka_topic_partition_list_t *parts)
{
  size_t kept = 0;
  for(size_t i = 0; i < consumer->nunsought; i++) {
    struct unsought *u = &consumer->unsought[i];
    if(!parts || rd_kafka_topic_partition_list_find(parts, u->topic, u->partition))
      free(u->topic);
    else
      consumer->unsought[kept++] = *u;
  }
  consumer->nunsought = kept;
}

/* Rewinds the partition to this message and pauses polling for a backoff. When the
 * seek fails the partition is paused until a seek succeeds: going on would handle the
 * messages after this one and store offsets past it, so that it would be neither
 * retried nor dead-lettered (review C12d). */
static void rewind_to(struct dub_kafka_consumer *consumer,
                      const struct dub_kafka_msg *msg)
{
  if(!seek_one(consumer, msg->topic, msg->partition, msg->offset)) {
    pause_resume(consumer, msg->topic, msg->partition, true);
    consumer->unsought = dub_xrealloc(consumer->unsought, (consumer->nunsought + 1) *
                                                              sizeof *consumer->unsought);
    consumer->unsought[consumer->nunsought++] =
        (struct unsought){dub_xstrdup(msg->topic), msg->partition, msg->offset};
  }
  consumer->retry_at = dub_time_mono_ms() + consumer->backoff_ms;
  dub_log_info("kafka %s[%d]@%lld will be retried in %d ms", msg->topic,
               (int)msg->partition, (long long)msg->offset, consumer->backoff_ms);
  consumer->backoff_ms = consumer->backoff_ms >= consumer->backoff_max_ms / 2
                             ? consumer->backoff_max_ms
                             : consumer->backoff_ms * 2;
}

/* Acts on a handler's verdict on one message: store, rewind or dead-letter. */
static enum dub_kafka_outcome settle(struct dub_kafka_consumer *consumer,
                                     const struct dub_kafka_msg *msg, enum dub_err rc,
                                     const char *why)
{
  if(!rc) {
    store_offset(consumer, msg);
    consumer->backoff_ms = consumer->backoff_min_ms;
    return DUB_KAFKA_DONE;
  }
  if(rc == DUB_ERR_UNAVAILABLE || rc == DUB_ERR_TIMEOUT) {
    dub_log_warn("kafka %s[%d]@%lld not processed (%s), will retry", msg->topic,
                 (int)msg->partition, (long long)msg->offset, dub_err_code(rc));
    rewind_to(consumer, msg);
    return DUB_KAFKA_RETRY;
  }
  /* The detail may quote the input: it goes to the DLQ record, not to the log. */
  enum dub_err drc =
      dub_kafka_dlq_write(consumer->dlq_producer, consumer->dlq_topic, msg,
                          dub_err_code(rc), why ? why : dub_err_message(rc));
  if(drc) {
    dub_log_error("kafka %s[%d]@%lld: dead-letter write failed (%s), will retry",
                  msg->topic, (int)msg->partition, (long long)msg->offset,
                  dub_err_code(drc));
    rewind_to(consumer, msg);
    return DUB_KAFKA_RETRY;
  }
  dub_log_warn("kafka %s[%d]@%lld dead-lettered to '%s': %s", msg->topic,
               (int)msg->partition, (long long)msg->offset, consumer->dlq_topic,
               dub_err_code(rc));
  store_offset(consumer, msg);
  consumer->backoff_ms = consumer->backoff_min_ms;
  return DUB_KAFKA_DLQ;
}

static enum dub_kafka_outcome handle(struct dub_kafka_consumer *consumer,
                                     rd_kafka_message_t *rkm)
{
  char *why = NULL;
  struct dub_kafka_msg msg;
  kafka_msg_view(rkm, &msg, &consumer->headers, &consumer->header_cap);
  enum dub_err rc = consumer->handler(consumer->ctx, &msg, &why);
  enum dub_kafka_outcome outcome = settle(consumer, &msg, rc, why);
  free(why);
  return outcome;
}

/* Whether an earlier message of this batch rewound msg's partition. */
static bool rewound(const struct dub_kafka_msg *msgs, const enum dub_kafka_outcome *outs,
                    size_t i)
{
  for(size_t j = 0; j < i; j++)
    if(outs[j] == DUB_KAFKA_RETRY && msgs[j].partition == msgs[i].partition &&
       strcmp(msgs[j].topic, msgs[i].topic) == 0)
      return true;
  return false;
}

/* Takes 'first' and whatever else is ready at once, up to batch_max, and hands them to
 * the batch handler. */
static enum dub_kafka_outcome handle_batch(struct dub_kafka_consumer *consumer,
                                           rd_kafka_message_t *first)
{
  size_t max = consumer->batch_max, n = 0;
  rd_kafka_message_t **rkms = consumer->batch.rkms;
  struct dub_kafka_msg *msgs = consumer->batch.msgs;
  enum dub_err *results = consumer->batch.results;
  enum dub_kafka_outcome *outs = consumer->batch.outs;
  char **whys = consumer->batch.whys;
  enum dub_kafka_outcome outcome = DUB_KAFKA_IDLE;
  rkms[n++] = first;
  consumer->gathering = true;
  while(n < max) {
    consumer->gathered = n;
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(consumer->rk, 0);
    if(!rkm)
      break;
    if(rkm->err) {
      if(rkm->err == RD_KAFKA_RESP_ERR__FATAL)
        set_fatal(consumer);
      else if(rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        dub_log_warn("kafka consumer error: %s", rd_kafka_message_errstr(rkm));
      rd_kafka_message_destroy(rkm);
      break;
    }
    rkms[n++] = rkm;
  }
  consumer->gathering = false;
  bool first_kept = true;
  if(consumer->nrevoked) {
    size_t kept = 0;
    for(size_t i = 0; i < n; i++) {
      if(!stale(consumer, rkms[i], i))
        rkms[kept++] = rkms[i];
      else if(i)
        rd_kafka_message_destroy(rkms[i]);
      else
        first_kept = false; /* the caller's: it destroys it */
    }
    if(kept < n)
      dub_log_info("kafka batch: %zu of %zu messages dropped, their partitions revoked "
                   "while the batch was gathered",
                   n - kept, n);
    forget_revoked(consumer);
    n = kept;
    if(!n)
      return DUB_KAFKA_IDLE;
  }
  memset(results, 0, n * sizeof *results);
  memset(outs, 0, n * sizeof *outs);
  memset(whys, 0, n * sizeof *whys);
  for(size_t i = 0; i < n; i++)
    kafka_msg_view(rkms[i], &msgs[i], &consumer->batch.hdrs[i], &consumer->batch.caps[i]);
  consumer->batch_handler(consumer->ctx, msgs, n, results, whys);
  for(size_t i = 0; i < n; i++) {
    outs[i] = rewound(msgs, outs, i) ? DUB_KAFKA_IDLE
                                     : settle(consumer, &msgs[i], results[i], whys[i]);
    if(outs[i] == DUB_KAFKA_IDLE)
      outs[i] = DUB_KAFKA_RETRY; /* not stored: it comes again after the rewind */
    if(outcome == DUB_KAFKA_IDLE || outs[i] == DUB_KAFKA_RETRY)
      outcome = outs[i];
  }
  for(size_t i = 0; i < n; i++) {
    free(whys[i]);
    whys[i] = NULL;
    if(i || !first_kept)
      rd_kafka_message_destroy(rkms[i]); /* the first is the caller's */
  }
  return outcome;
}

void dub_kafka_consumer_reassess(struct dub_kafka_consumer *consumer, const char *topic,
                                 int32_t partition)
{
  pthread_mutex_lock(&consumer->reassess_lock);
  consumer->reassess = dub_xrealloc(consumer->reassess, (consumer->nreassess + 1) *
                                                            sizeof *consumer->reassess);
  consumer->reassess[consumer->nreassess++] =
      (struct dub_kafka_partition){dub_xstrdup(topic), partition};
  pthread_mutex_unlock(&consumer->reassess_lock);
}

/* Puts the partitions asked for by dub_kafka_consumer_reassess() that are still assigned
 * to on_assign, and seeks those it wants read again to the beginning. */
static void reassess_pending(struct dub_kafka_consumer *consumer)
{
  pthread_mutex_lock(&consumer->reassess_lock);
  struct dub_kafka_partition *list = consumer->reassess;
  size_t n = consumer->nreassess;
  consumer->reassess = NULL;
  consumer->nreassess = 0;
  pthread_mutex_unlock(&consumer->reassess_lock);
  if(!n)
    return;
  rd_kafka_topic_partition_list_t *assigned = NULL, *parts = NULL, *seek = NULL;
  if(!rd_kafka_assignment(consumer->rk, &assigned)) {
    parts = rd_kafka_topic_partition_list_new((int)n);
    for(size_t i = 0; i < n; i++)
      if(rd_kafka_topic_partition_list_find(assigned, list[i].topic, list[i].partition) &&
         !rd_kafka_topic_partition_list_find(parts, list[i].topic, list[i].partition))
        rd_kafka_topic_partition_list_add(parts, list[i].topic, list[i].partition)
            ->offset = RD_KAFKA_OFFSET_INVALID;
    if(parts->cnt)
      ask_service(consumer, parts, NULL);
    seek = rd_kafka_topic_partition_list_new(parts->cnt ? parts->cnt : 1);
    for(int i = 0; i < parts->cnt; i++)
      if(parts->elems[i].offset == RD_KAFKA_OFFSET_BEGINNING)
        rd_kafka_topic_partition_list_add(seek, parts->elems[i].topic,
                                          parts->elems[i].partition)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
    if(seek->cnt) {
      rd_kafka_error_t *error = rd_kafka_seek_partitions(consumer->rk, seek, 5000);
      if(error) {
        dub_log_warn("kafka seek to the beginning failed: %s",
                     rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
      }
      consumer->retry_at = 0;
    }
  }
  if(seek)
    rd_kafka_topic_partition_list_destroy(seek);
  if(parts)
    rd_kafka_topic_partition_list_destroy(parts);
  if(assigned)
    rd_kafka_topic_partition_list_destroy(assigned);
  for(size_t i = 0; i < n; i++)
    free((char *)list[i].topic);
  free(list);
}

enum dub_err dub_kafka_consumer_poll(struct dub_kafka_consumer *consumer, int timeout_ms,
                                     enum dub_kafka_outcome *outcome)
{
  enum dub_kafka_outcome out = DUB_KAFKA_IDLE;
  enum dub_err rc = DUB_OK;
  rd_kafka_message_t *rkm = NULL;

  if(atomic_load(&consumer->fatal) || consumer->closed) {
    rc = DUB_ERR_UNAVAILABLE;
    goto out;
  }
  reassess_pending(consumer);
  if(consumer->nunsought)
    seek_unsought(consumer);
  if(consumer->retry_at) {
    int64_t wait = consumer->retry_at - dub_time_mono_ms();
    if(wait > 0) {
      sleep_ms(wait < timeout_ms ? wait : (timeout_ms > 0 ? timeout_ms : 0));
      if(consumer->retry_at - dub_time_mono_ms() > 0)
        goto out;
    }
    consumer->retry_at = 0;
  }
  rkm = rd_kafka_consumer_poll(consumer->rk, timeout_ms);
  if(atomic_load(&consumer->fatal)) {
    rc = DUB_ERR_UNAVAILABLE;
    goto out;
  }
  if(!rkm)
    goto out;
  if(rkm->err) {
    if(rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
      set_fatal(consumer);
      rc = DUB_ERR_UNAVAILABLE;
    } else if(rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      dub_log_warn("kafka consumer error: %s", rd_kafka_message_errstr(rkm));
      out = DUB_KAFKA_ERROR;
    }
    goto out;
  }
  out = consumer->batch_handler ? handle_batch(consumer, rkm) : handle(consumer, rkm);
out:
  if(rkm)
    rd_kafka_message_destroy(rkm);
  if(outcome)
    *outcome = out;
  return rc;
}

enum dub_err dub_kafka_consumer_close(struct dub_kafka_consumer *consumer)
{
  if(consumer->closed)
    return DUB_OK;
  consumer->closed = true;
  rd_kafka_resp_err_t err = rd_kafka_consumer_close(consumer->rk);
  if(err) {
    dub_log_warn("kafka consumer close: %s", rd_kafka_err2str(err));
    return DUB_ERR_UNAVAILABLE;
  }
  return DUB_OK;
}

void dub_kafka_consumer_free(struct dub_kafka_consumer *consumer)
{
  if(!consumer)
    return;
  if(consumer->rk) {
    dub_kafka_consumer_close(consumer);
    kafka_destroy(consumer->rk, "consumer");
  }
  for(size_t i = 0; i < consumer->nreassess; i++)
    free((char *)consumer->reassess[i].topic);
  free(consumer->reassess);
  forget_revoked(consumer);
  free(consumer->revoked);
  forget_unsought(consumer, NULL);
  free(consumer->unsought);
  pthread_mutex_destroy(&consumer->reassess_lock);
  for(size_t i = 0; consumer->batch.hdrs && i < consumer->batch_max; i++)
    free(consumer->batch.hdrs[i]);
  free(consumer->batch.rkms);
  free(consumer->batch.msgs);
  free(consumer->batch.hdrs);
  free(consumer->batch.caps);
  free(consumer->batch.results);
  free(consumer->batch.outs);
  free(consumer->batch.whys);
  free(consumer->headers);
  free(consumer->dlq_topic);
  free(consumer);
}
