/* test_kafka.c - producer, consumer and dead letters on librdkafka's mock cluster. */
#include "kafka/cloudevent.h"
#include "kafka/kafka.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/time.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#define WAIT_MS 30000

struct fixture {
  rd_kafka_t *mock_rk;
  rd_kafka_mock_cluster_t *mock;
  const char *brokers;
  struct dub_kafka_producer *producer;
};

static const char *const topics[] = {
    "t.callback", "t.sync",  "t.orders", "t.src",  DUB_KAFKA_DLQ_TOPIC, "t.ce", "t.ce.h",
    "t.fatal",    "t.batch", "t.assign", "t.seek", "t.revoke"};

static int group_setup(void **state)
{
  struct fixture *f = dub_xcalloc(1, sizeof *f);
  char errstr[256];
  char *why = NULL;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();

  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  assert_non_null(f->mock_rk);
  f->mock = rd_kafka_mock_cluster_new(f->mock_rk, 1);
  assert_non_null(f->mock);
  f->brokers = rd_kafka_mock_cluster_bootstraps(f->mock);
  for(size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
    assert_int_equal(rd_kafka_mock_topic_create(f->mock, topics[i], 1, 1), 0);
  struct dub_kafka_producer_conf pconf = {.brokers = f->brokers};
  assert_int_equal(dub_kafka_producer_new(&pconf, &f->producer, &why), DUB_OK);
  *state = f;
  return 0;
}

static int group_teardown(void **state)
{
  struct fixture *f = *state;
  dub_kafka_producer_free(f->producer);
  rd_kafka_mock_cluster_destroy(f->mock);
  rd_kafka_destroy(f->mock_rk);
  free(f);
  return 0;
}

/* Seeks of t.seek fail while 'seek_failures' is above 0 (one failure each). The test
 * binary is linked with --wrap=rd_kafka_seek_partitions (CMakeLists.txt): the mock
 * cluster has no way to make a seek fail, and a failed seek is what review C12d is
 * about. */
static atomic_int seek_failures;
static atomic_int seeks_failed;

rd_kafka_error_t *__real_rd_kafka_seek_partitions(rd_kafka_t *rk,
                                                  rd_kafka_topic_partition_list_t *parts,
                                                  int timeout_ms);
rd_kafka_error_t *__wrap_rd_kafka_seek_partitions(rd_kafka_t *rk,
                                                  rd_kafka_topic_partition_list_t *parts,
                                                  int timeout_ms);

rd_kafka_error_t *__wrap_rd_kafka_seek_partitions(rd_kafka_t *rk,
                                                  rd_kafka_topic_partition_list_t *parts,
                                                  int timeout_ms)
{
  if(parts->cnt == 1 && strcmp(parts->elems[0].topic, "t.seek") == 0 &&
     atomic_load(&seek_failures) > 0) {
    atomic_fetch_sub(&seek_failures, 1);
    atomic_fetch_add(&seeks_failed, 1);
    return rd_kafka_error_new(RD_KAFKA_RESP_ERR__TIMED_OUT, "seek failure injected");
  }
  return __real_rd_kafka_seek_partitions(rk, parts, timeout_ms);
}

/* ---- producer -------------------------------------------------------------------- */

struct reports {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int n;
  enum dub_err err[8];
  int32_t partition[8];
  int64_t offset[8];
  bool on_main_thread;
  pthread_t main;
};

static void on_delivery(void *opaque, enum dub_err err, int32_t partition, int64_t offset)
{
  struct reports *r = opaque;
  pthread_mutex_lock(&r->mu);
  if(pthread_equal(pthread_self(), r->main))
    r->on_main_thread = true;
  r->err[r->n] = err;
  r->partition[r->n] = partition;
  r->offset[r->n] = offset;
  r->n++;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Waits until 'n' delivery reports came. */
static void wait_reports(struct reports *r, int n)
{
  pthread_mutex_lock(&r->mu);
  while(r->n < n)
    pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
}

static void test_produce_callback(void **state)
{
  struct fixture *f = *state;
  struct reports r = {.mu = PTHREAD_MUTEX_INITIALIZER,
                      .cv = PTHREAD_COND_INITIALIZER,
                      .main = pthread_self()};
  const struct dub_kafka_header headers[] = {{"trace", "t-1", 3}, {"empty", NULL, 0}};

  for(int i = 0; i < 3; i++) {
    char value[16];
    snprintf(value, sizeof value, "v%d", i);
    assert_int_equal(dub_kafka_produce(f->producer, "t.callback", "key", 3, value,
                                       strlen(value), headers, 2, on_delivery, &r),
                     DUB_OK);
  }
  wait_reports(&r, 3);
  assert_false(r.on_main_thread);
  for(int i = 0; i < 3; i++) {
    assert_int_equal(r.err[i], DUB_OK);
    assert_int_equal(r.partition[i], 0);
    assert_int_equal(r.offset[i], i);
  }
  assert_int_equal(
      dub_kafka_produce(f->producer, "", "k", 1, "v", 1, NULL, 0, NULL, NULL),
      DUB_ERR_INVALID);
}

static void test_produce_sync_and_ping(void **state)
{
  struct fixture *f = *state;
  int32_t partition = -2;
  int64_t offset = -2;

  assert_int_equal(dub_kafka_producer_ping(f->producer, 5000), DUB_OK);
  assert_false(dub_kafka_producer_fatal(f->producer));
  for(int i = 0; i < 2; i++) {
    assert_int_equal(dub_kafka_produce_sync(f->producer, "t.sync", "k", 1, "v", 1, NULL,
                                            0, 5000, &partition, &offset),
                     DUB_OK);
    assert_int_equal(partition, 0);
    assert_int_equal(offset, i);
  }
}

static void test_dead_broker(void **state)
{
  (void)state;
  struct dub_kafka_producer *producer = NULL;
  char *why = NULL;
  struct dub_kafka_producer_conf conf = {.brokers = "127.0.0.1:1",
                                         .delivery_timeout_ms = 300};
  const char *const bad_props[] = {"no.such.property", "1", NULL};
  struct dub_kafka_producer_conf bad = {.brokers = "127.0.0.1:1", .props = bad_props};

  assert_int_equal(dub_kafka_producer_new(&bad, &producer, &why), DUB_ERR_CONFIG);
  assert_null(producer);
  assert_non_null(strstr(why, "no.such.property"));
  free(why);
  why = NULL;

  assert_int_equal(dub_kafka_producer_new(&conf, &producer, &why), DUB_OK);
  int64_t start = dub_time_mono_ms();
  assert_int_not_equal(dub_kafka_producer_ping(producer, 300), DUB_OK);
  assert_int_equal(dub_kafka_produce_sync(producer, "t.sync", NULL, 0, "v", 1, NULL, 0,
                                          5000, NULL, NULL),
                   DUB_ERR_TIMEOUT);
  assert_true(dub_time_mono_ms() - start < 4000);
  dub_kafka_producer_free(producer);
}

static void test_producer_fatal(void **state)
{
  struct fixture *f = *state;
  struct dub_kafka_producer *producer = NULL;
  char *why = NULL;
  struct dub_kafka_producer_conf conf = {.brokers = f->brokers,
                                         .delivery_timeout_ms = 5000};

  assert_int_equal(dub_kafka_producer_new(&conf, &producer, &why), DUB_OK);
  assert_int_equal(dub_kafka_produce_sync(producer, "t.fatal", "k", 1, "v", 1, NULL, 0,
                                          5000, NULL, NULL),
                   DUB_OK);
  /* The broker says the idempotent sequence broke: the producer cannot go on. */
  rd_kafka_mock_push_request_errors(f->mock, 0 /* Produce */, 1,
                                    RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
  assert_int_not_equal(dub_kafka_produce_sync(producer, "t.fatal", "k", 1, "v", 1, NULL,
                                              0, 5000, NULL, NULL),
                       DUB_OK);
  int64_t deadline = dub_time_mono_ms() + 5000;
  while(!dub_kafka_producer_fatal(producer)) {
    assert_true(dub_time_mono_ms() < deadline);
    usleep(5000);
  }
  assert_int_equal(
      dub_kafka_produce(producer, "t.fatal", "k", 1, "v", 1, NULL, 0, NULL, NULL),
      DUB_ERR_UNAVAILABLE);
  assert_int_equal(dub_kafka_producer_ping(producer, 1000), DUB_ERR_UNAVAILABLE);
  dub_kafka_producer_free(producer);
}

/* ---- consumer -------------------------------------------------------------------- */

struct seen {
  int n;
  char values[32][32];
  enum dub_kafka_outcome outcomes[32];
  bool retried;       /* "retry-once" failed once already */
  const char *refuse; /* this value always fails with DUB_ERR_UNAVAILABLE */
  bool refused;
  int assigned;
  int revoked;
  json_t *events;  /* decoded CloudEvents, when set */
  char *dlq_value; /* for the DLQ reader */
  char *dlq_key;
  int dlq_records;
};

static enum dub_err record(void *ctx, const struct dub_kafka_msg *msg, char **why)
{
  struct seen *s = ctx;
  char value[32];
  snprintf(value, sizeof value, "%.*s", (int)(msg->value_len < 31 ? msg->value_len : 31),
           (const char *)msg->value);
  assert_true(s->n < 32);
  snprintf(s->values[s->n++], sizeof s->values[0], "%s", value);
  if(s->refuse && strcmp(value, s->refuse) == 0) {
    s->refused = true;
    return DUB_ERR_UNAVAILABLE;
  }
  if(strcmp(value, "retry-once") == 0 && !s->retried) {
    s->retried = true;
    return DUB_ERR_TIMEOUT;
  }
  if(strncmp(value, "bad", 3) == 0) {
    *why = dub_xstrdup("field x is wrong");
    return DUB_ERR_SCHEMA;
  }
  if(s->events) {
    json_t *event = NULL;
    char *reason = NULL;
    assert_int_equal(dub_ce_decode(msg, &event, &reason), DUB_OK);
    json_array_append_new(s->events, event);
  }
  return DUB_OK;
}

static enum dub_err read_dlq(void *ctx, const struct dub_kafka_msg *msg, char **why)
{
  (void)why;
  struct seen *s = ctx;
  s->dlq_records++;
  s->n++;
  free(s->dlq_value);
  free(s->dlq_key);
  s->dlq_value = dub_xstrndup(msg->value, msg->value_len);
  s->dlq_key = dub_xstrndup(msg->key, msg->key_len);
  return DUB_OK;
}

static void on_rebalance(void *ctx, bool assigned,
                         const struct dub_kafka_partition *parts, size_t count)
{
  struct seen *s = ctx;
  if(assigned)
    s->assigned += (int)count;
  else
    s->revoked += (int)count;
  for(size_t i = 0; i < count; i++)
    assert_non_null(parts[i].topic);
}

/* The consumer configuration the tests share: quick joins, short backoffs. 'topic' must
 * outlive the consumer's creation. */
static struct dub_kafka_consumer_conf test_conf(struct fixture *f, const char *group,
                                                const char *const *topic, void *ctx)
{
  /* clang-format off */
  static const char *const props[] = {
      "heartbeat.interval.ms", "300",
      "fetch.wait.max.ms", "50",
      "log_level", "4",
      NULL};
  /* clang-format on */
  return (struct dub_kafka_consumer_conf){
      .brokers = f->brokers,
      .group_id = group,
      .topics = topic,
      .topic_count = 1,
      /* The mock cluster holds a first JoinGroup for 3 s and expires members after a
       * session without activity, so the session must outlast it. */
      .session_timeout_ms = 4000,
      .ctx = ctx,
      .dlq_producer = f->producer,
      .retry_backoff_ms = 20,
      .retry_max_backoff_ms = 100,
      .props = props,
  };
}

static struct dub_kafka_consumer *open_conf(const struct dub_kafka_consumer_conf *conf)
{
  struct dub_kafka_consumer *consumer = NULL;
  char *why = NULL;
  assert_int_equal(dub_kafka_consumer_new(conf, &consumer, &why), DUB_OK);
  return consumer;
}

static struct dub_kafka_consumer *consumer_open(struct fixture *f, const char *group,
                                                const char *topic,
                                                dub_kafka_handler_fn fn, struct seen *s)
{
  const char *const list[] = {topic};
  struct dub_kafka_consumer_conf conf = test_conf(f, group, list, s);
  conf.handler = fn;
  conf.rebalance = on_rebalance;
  return open_conf(&conf);
}

/* Polls until 'count' handler calls were made (or fails after WAIT_MS). */
static void poll_until(struct dub_kafka_consumer *consumer, struct seen *s, int count)
{
  int64_t deadline = dub_time_mono_ms() + WAIT_MS;
  while(s->n < count) {
    enum dub_kafka_outcome outcome;
    int before = s->n;
    if(dub_time_mono_ms() >= deadline) {
      char got[32 * 34] = "";
      for(int i = 0; i < s->n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), " %s", s->values[i]);
      fail_msg("%d handler calls after %d ms, %d wanted; values:%s", s->n, WAIT_MS, count,
               got);
    }
    assert_int_equal(dub_kafka_consumer_poll(consumer, 100, &outcome), DUB_OK);
    if(s->n > before)
      s->outcomes[before] = outcome;
  }
}

/* Polls for 'ms' and fails if the handler is called. */
static void poll_nothing(struct dub_kafka_consumer *consumer, struct seen *s, int ms)
{
  int before = s->n;
  int64_t end = dub_time_mono_ms() + ms;
  while(dub_time_mono_ms() < end)
    assert_int_equal(dub_kafka_consumer_poll(consumer, 50, NULL), DUB_OK);
  assert_int_equal(s->n, before);
}

static void produce_values(struct fixture *f, const char *topic, int n, ...)
{
  va_list ap;
  va_start(ap, n);
  for(int i = 0; i < n; i++) {
    const char *v = va_arg(ap, const char *);
    assert_int_equal(dub_kafka_produce_sync(f->producer, topic, "k", 1, v, strlen(v),
                                            NULL, 0, 5000, NULL, NULL),
                     DUB_OK);
  }
  va_end(ap);
}

/* What on_assign saw, and whether it asks for a start from the beginning. */
struct assign_probe {
  struct seen seen;
  int calls;
  int64_t committed, high;
  bool rewind;
};

static void probe_assign(void *ctx, struct dub_kafka_assignment *parts, size_t count)
{
  struct assign_probe *p = ctx;
  assert_int_equal(count, 1);
  assert_string_equal(parts[0].topic, "t.assign");
  assert_int_equal(parts[0].start, DUB_KAFKA_OFFSET_STORED);
  p->calls++;
  p->committed = parts[0].committed;
  p->high = parts[0].high;
  if(p->rewind)
    parts[0].start = DUB_KAFKA_OFFSET_BEGINNING;
}

static enum dub_err probe_record(void *ctx, const struct dub_kafka_msg *msg, char **why)
{
  struct assign_probe *p = ctx;
  return record(&p->seen, msg, why);
}

static struct dub_kafka_consumer *probe_open(struct fixture *f, const char *group,
                                             struct assign_probe *p)
{
  const char *const list[] = {"t.assign"};
  struct dub_kafka_consumer_conf conf = test_conf(f, group, list, p);
  conf.handler = probe_record;
  conf.on_assign = probe_assign;
  return open_conf(&conf);
}

static void test_on_assign_tells_offsets_and_may_rewind(void **state)
{
  struct fixture *f = *state;
  char group[64];
  snprintf(group, sizeof group, "g-assign-%d", (int)getpid());
  produce_values(f, "t.assign", 3, "a0", "a1", "a2");

  /* A fresh group: nothing committed, three records written. */
  struct assign_probe p1 = {0};
  struct dub_kafka_consumer *c = probe_open(f, group, &p1);
  poll_until(c, &p1.seen, 3);
  dub_kafka_consumer_free(c); /* closes: commits 3 */
  assert_int_equal(p1.calls, 1);
  assert_int_equal(p1.committed, -1);
  assert_int_equal(p1.high, 3);

  /* Next member: told 3 of 3 are done; asks to start over and gets all three again. */
  struct assign_probe p2 = {.rewind = true};
  c = probe_open(f, group, &p2);
  poll_until(c, &p2.seen, 3);
  assert_string_equal(p2.seen.values[0], "a0");
  assert_string_equal(p2.seen.values[2], "a2");
  dub_kafka_consumer_free(c);
  assert_int_equal(p2.committed, 3);
  assert_int_equal(p2.high, 3);

  /* Without the rewind, nothing is read again. */
  struct assign_probe p3 = {0};
  c = probe_open(f, group, &p3);
  int64_t deadline = dub_time_mono_ms() + WAIT_MS;
  while(!p3.calls && dub_time_mono_ms() < deadline)
    assert_int_equal(dub_kafka_consumer_poll(c, 50, NULL), DUB_OK);
  poll_nothing(c, &p3.seen, 1000);
  assert_int_equal(p3.calls, 1);
  assert_int_equal(p3.committed, 3);

  /* Asked again while running (the service lost its state): read from the start. */
  p3.rewind = true;
  dub_kafka_consumer_reassess(c, "t.assign", 0);
  dub_kafka_consumer_reassess(c, "t.unknown", 0); /* not assigned: ignored */
  poll_until(c, &p3.seen, 3);
  assert_int_equal(p3.calls, 2);
  assert_string_equal(p3.seen.values[0], "a0");
  assert_string_equal(p3.seen.values[2], "a2");
  dub_kafka_consumer_free(c);
}

static void test_consume_in_order_and_resume(void **state)
{
  struct fixture *f = *state;
  char group[64];
  snprintf(group, sizeof group, "g-orders-%d", (int)getpid());
  produce_values(f, "t.orders", 5, "m0", "m1", "retry-once", "m3", "m4");

  /* First member: m3 keeps failing, so it is never stored. */
  struct seen s1 = {.refuse = "m3"};
  struct dub_kafka_consumer *c = consumer_open(f, group, "t.orders", record, &s1);
  poll_until(c, &s1, 5);
  assert_string_equal(s1.values[0], "m0");
  assert_string_equal(s1.values[1], "m1");
  assert_string_equal(s1.values[2], "retry-once");
  assert_int_equal(s1.outcomes[2], DUB_KAFKA_RETRY);
  assert_string_equal(s1.values[3], "retry-once"); /* redelivered, not skipped */
  assert_int_equal(s1.outcomes[3], DUB_KAFKA_DONE);
  assert_string_equal(s1.values[4], "m3");
  assert_int_equal(s1.outcomes[4], DUB_KAFKA_RETRY);
  /* The partition does not move on while m3 fails. */
  poll_until(c, &s1, 7);
  assert_string_equal(s1.values[5], "m3");
  assert_string_equal(s1.values[6], "m3");
  assert_int_equal(dub_kafka_consumer_close(c), DUB_OK);
  assert_int_equal(dub_kafka_consumer_poll(c, 10, NULL), DUB_ERR_UNAVAILABLE);
  dub_kafka_consumer_free(c);
  assert_int_equal(s1.assigned, 1);
  assert_int_equal(s1.revoked, 1);

  /* Second member of the same group continues at m3, the first message not done. */
  struct seen s2 = {0};
  c = consumer_open(f, group, "t.orders", record, &s2);
  poll_until(c, &s2, 2);
  assert_string_equal(s2.values[0], "m3");
  assert_string_equal(s2.values[1], "m4");
  assert_int_equal(s2.outcomes[1], DUB_KAFKA_DONE);
  dub_kafka_consumer_free(c); /* closes */

  /* Third: everything was done, only new messages arrive. */
  struct seen s3 = {0};
  c = consumer_open(f, group, "t.orders", record, &s3);
  produce_values(f, "t.orders", 1, "m5");
  poll_until(c, &s3, 1);
  assert_string_equal(s3.values[0], "m5");
  poll_nothing(c, &s3, 300);
  dub_kafka_consumer_free(c);
}

/* Review C12d: a message whose handler asks for a retry comes again even when the seek
 * back to it fails. The partition waits (paused) and is sought again at each poll; the
 * messages after it are not handled first, and their offsets are not stored past it. */
static void test_failed_seek_holds_the_partition(void **state)
{
  struct fixture *f = *state;
  char group[64];
  snprintf(group, sizeof group, "g-seek-%d", (int)getpid());
  produce_values(f, "t.seek", 4, "m0", "retry-once", "m2", "m3");

  struct seen s = {0};
  struct dub_kafka_consumer *c = consumer_open(f, group, "t.seek", record, &s);
  poll_until(c, &s, 1);
  atomic_store(&seeks_failed, 0);
  atomic_store(&seek_failures, 3);
  poll_until(c, &s, 5);
  assert_int_equal(atomic_load(&seeks_failed), 3); /* the failures did happen */
  assert_string_equal(s.values[0], "m0");
  assert_string_equal(s.values[1], "retry-once");
  assert_int_equal(s.outcomes[1], DUB_KAFKA_RETRY);
  assert_string_equal(s.values[2], "retry-once"); /* came again, not skipped */
  assert_int_equal(s.outcomes[2], DUB_KAFKA_DONE);
  assert_string_equal(s.values[3], "m2");
  assert_string_equal(s.values[4], "m3");
  poll_nothing(c, &s, 300);
  dub_kafka_consumer_free(c);

  /* What was stored is what was done: a new member of the group reads nothing again. */
  struct seen s2 = {0};
  c = consumer_open(f, group, "t.seek", record, &s2);
  produce_values(f, "t.seek", 1, "m4");
  poll_until(c, &s2, 1);
  assert_string_equal(s2.values[0], "m4");
  dub_kafka_consumer_free(c);
}

static void test_dead_letter(void **state)
{
  struct fixture *f = *state;
  char group[64];
  const char bad_value[] = "bad\xff\xfe";
  const struct dub_kafka_header headers[] = {
      {"trace", "abc", 3}, {"bin", "\xff\x00", 2}, {"none", NULL, 0}};

  assert_int_equal(dub_kafka_produce_sync(f->producer, "t.src", "case-1", 6, bad_value,
                                          sizeof bad_value - 1, headers, 3, 5000, NULL,
                                          NULL),
                   DUB_OK);
  produce_values(f, "t.src", 1, "good");

  snprintf(group, sizeof group, "g-src-%d", (int)getpid());
  struct seen s = {0};
  struct dub_kafka_consumer *c = consumer_open(f, group, "t.src", record, &s);
  poll_until(c, &s, 2);
  assert_int_equal(s.outcomes[0], DUB_KAFKA_DLQ);
  assert_string_equal(s.values[1], "good"); /* the partition moved on */
  assert_int_equal(s.outcomes[1], DUB_KAFKA_DONE);
  dub_kafka_consumer_free(c);

  snprintf(group, sizeof group, "g-dlq-%d", (int)getpid());
  struct seen d = {0};
  c = consumer_open(f, group, DUB_KAFKA_DLQ_TOPIC, read_dlq, &d);
  poll_until(c, &d, 1);
  poll_nothing(c, &d, 300);
  dub_kafka_consumer_free(c);
  assert_int_equal(d.dlq_records, 1);
  assert_string_equal(d.dlq_key, "case-1");

  json_error_t jerr;
  json_t *rec = json_loads(d.dlq_value, JSON_REJECT_DUPLICATES, &jerr);
  assert_non_null(rec);
  const char *reason, *detail, *topic, *key_b64, *value_b64, *trace, *bin, *time;
  int partition;
  json_int_t offset;
  json_t *none = NULL;
  assert_int_equal(json_unpack_ex(rec, &jerr, JSON_STRICT,
                                  "{s:s, s:s, s:{s:s, s:i, s:I, s:o}, "
                                  "s:{s:s, s:s, s:{s:s, s:o}, s:{s:s}}, s:s}",
                                  "reason", &reason, "detail", &detail, "origin", "topic",
                                  &topic, "partition", &partition, "offset", &offset,
                                  "timestamp", &none, "original", "key_b64", &key_b64,
                                  "value_b64", &value_b64, "headers", "trace", &trace,
                                  "none", &none, "headers_b64", "bin", &bin, "time",
                                  &time),
                   0);
  assert_string_equal(reason, dub_err_code(DUB_ERR_SCHEMA));
  assert_string_equal(detail, "field x is wrong");
  assert_string_equal(topic, "t.src");
  assert_int_equal(partition, 0);
  assert_int_equal(offset, 0);
  assert_string_equal(key_b64, "Y2FzZS0x");   /* "case-1" */
  assert_string_equal(value_b64, "YmFk//4="); /* "bad\xff\xfe" */
  assert_string_equal(trace, "abc");
  assert_true(json_is_null(none));
  assert_string_equal(bin, "/wA=");
  int64_t ms;
  assert_int_equal(dub_time_parse(time, &ms, NULL), DUB_OK);
  json_decref(rec);
  free(d.dlq_value);
  free(d.dlq_key);
}

/* Keeps each message's headers as one JSON object {name: value} in s->events. */
static enum dub_err record_headers(void *ctx, const struct dub_kafka_msg *msg, char **why)
{
  struct seen *s = ctx;
  json_t *h = json_object();
  (void)why;
  for(size_t i = 0; i < msg->header_count; i++)
    json_object_set_new(h, msg->headers[i].name,
                        json_stringn(msg->headers[i].value, msg->headers[i].len));
  json_array_append_new(s->events, h);
  s->n++;
  return DUB_OK;
}

static void note_delivery(void *opaque, enum dub_err err, int32_t partition,
                          int64_t offset)
{
  (void)partition;
  (void)offset;
  atomic_store((atomic_int *)opaque, err ? -1 : 1);
}

static void test_cloudevent_headers(void **state)
{
  struct fixture *f = *state;
  char group[64];
  json_t *event = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "specversion", "1.0", "id",
                            "h-1", "source", "/gov/oa", "type", "duban.case.accepted",
                            "data", "case_id", "C-1");
  assert_int_equal(
      dub_ce_produce_sync(f->producer, "t.ce.h", "C-1", event, 5000, NULL, NULL), DUB_OK);
  const struct dub_kafka_header extra[] = {{"origin", "/gov/oa", 7}, {"n", "2", 1}};
  atomic_int delivered = 0;
  assert_int_equal(dub_ce_produce_with(f->producer, "t.ce.h", "C-1", event, extra, 2,
                                       note_delivery, &delivered),
                   DUB_OK);
  int64_t deadline = dub_time_mono_ms() + WAIT_MS;
  while(!atomic_load(&delivered) && dub_time_mono_ms() < deadline)
    usleep(1000);
  assert_int_equal(atomic_load(&delivered), 1);
  const struct dub_kafka_header seven[7] = {{"a", "1", 1}};
  assert_int_equal(
      dub_ce_produce_with(f->producer, "t.ce.h", "C-1", event, seven, 7, NULL, NULL),
      DUB_ERR_INVALID);

  snprintf(group, sizeof group, "g-ce-h-%d", (int)getpid());
  struct seen s = {.events = json_array()};
  struct dub_kafka_consumer *c = consumer_open(f, group, "t.ce.h", record_headers, &s);
  poll_until(c, &s, 2);
  dub_kafka_consumer_free(c);
  json_t *plain = json_array_get(s.events, 0), *more = json_array_get(s.events, 1);
  assert_int_equal(json_object_size(plain), 2);
  assert_string_equal(json_string_value(json_object_get(plain, DUB_CE_TYPE_HEADER)),
                      "duban.case.accepted");
  assert_string_equal(json_string_value(json_object_get(plain, "content-type")),
                      DUB_CE_CONTENT_TYPE);
  assert_int_equal(json_object_size(more), 4);
  assert_string_equal(json_string_value(json_object_get(more, DUB_CE_TYPE_HEADER)),
                      "duban.case.accepted");
  assert_string_equal(json_string_value(json_object_get(more, "origin")), "/gov/oa");
  assert_string_equal(json_string_value(json_object_get(more, "n")), "2");
  json_decref(s.events);
  json_decref(event);
}

static void test_cloudevents_roundtrip(void **state)
{
  struct fixture *f = *state;
  char group[64];
  json_error_t jerr;
  json_t *structured = json_loads(
      "{\"specversion\":\"1.0\",\"id\":\"e-1\",\"source\":\"/gov/hotline-12345\","
      "\"type\":\"duban.problem.reported\",\"time\":\"2026-09-29T10:00:00+08:00\","
      "\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\","
      "\"data\":{\"title\":\"某街道便民服务窗口推诿扯皮\",\"severity\":\"high\"}}",
      0, &jerr);
  assert_non_null(structured);
  assert_int_equal(
      dub_ce_produce_sync(f->producer, "t.ce", "e-1", structured, 5000, NULL, NULL),
      DUB_OK);
  const char data[] = "{\"case_id\":\"C-1\"}";
  const struct dub_kafka_header headers[] = {
      {"ce_specversion", "1.0", 3},
      {"ce_id", "e-2", 3},
      {"ce_source", "/gov/oa", 7},
      {"ce_type", "duban.case.accepted", 19},
      {"content-type", "application/json", 16},
  };
  assert_int_equal(dub_kafka_produce_sync(f->producer, "t.ce", "e-2", 3, data,
                                          sizeof data - 1, headers, 5, 5000, NULL, NULL),
                   DUB_OK);
  json_t *bad = json_pack("{s:s, s:s}", "specversion", "1.0", "id", "x");
  assert_int_equal(dub_ce_produce_sync(f->producer, "t.ce", "x", bad, 5000, NULL, NULL),
                   DUB_ERR_MALFORMED);
  json_decref(bad);

  snprintf(group, sizeof group, "g-ce-%d", (int)getpid());
  struct seen s = {.events = json_array()};
  struct dub_kafka_consumer *c = consumer_open(f, group, "t.ce", record, &s);
  poll_until(c, &s, 2);
  dub_kafka_consumer_free(c);
  assert_int_equal(json_array_size(s.events), 2);
  assert_true(json_equal(json_array_get(s.events, 0), structured));
  json_t *binary = json_array_get(s.events, 1);
  assert_string_equal(json_string_value(json_object_get(binary, "id")), "e-2");
  assert_string_equal(json_string_value(json_object_get(binary, "datacontenttype")),
                      "application/json");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(binary, "data"), "case_id")),
      "C-1");
  json_decref(s.events);
  json_decref(structured);
}

/* What the batch handler was given, in order. */
struct batch_seen {
  char values[64][16];
  int n;
  int batches;
  bool retried;
};

static void batch_handler(void *ctx, const struct dub_kafka_msg *msgs, size_t n,
                          enum dub_err *results, char **whys)
{
  struct batch_seen *b = ctx;
  b->batches++;
  for(size_t i = 0; i < n; i++) {
    char v[16];
    snprintf(v, sizeof v, "%.*s", (int)msgs[i].value_len, (const char *)msgs[i].value);
    assert_true(b->n < 64);
    snprintf(b->values[b->n++], sizeof b->values[0], "%s", v);
    results[i] = DUB_OK;
    if(strcmp(v, "retry") == 0 && !b->retried) {
      b->retried = true;
      results[i] = DUB_ERR_UNAVAILABLE;
    } else if(strcmp(v, "bad") == 0) {
      results[i] = DUB_ERR_SCHEMA;
      whys[i] = dub_xstrdup("bad is bad");
    }
  }
}

static int times_seen(const struct batch_seen *b, const char *v)
{
  int k = 0;
  for(int i = 0; i < b->n; i++)
    k += strcmp(b->values[i], v) == 0;
  return k;
}

static struct dub_kafka_consumer *batch_open(struct fixture *f, struct batch_seen *b)
{
  const char *const list[] = {"t.batch"};
  struct dub_kafka_consumer_conf conf = test_conf(f, "g.batch", list, b);
  conf.batch_handler = batch_handler;
  conf.batch_max = 4;
  return open_conf(&conf);
}

/* A retriable failure inside a batch rewinds its partition to that message: what came
 * before it is stored once, it and what follows come again, and a dead letter in the
 * second pass moves on. */
static void test_batch_handler(void **state)
{
  struct fixture *f = *state;
  struct batch_seen b = {0};
  produce_values(f, "t.batch", 7, "a", "b", "retry", "c", "bad", "d", "e");
  struct dub_kafka_consumer *consumer = batch_open(f, &b);
  int64_t deadline = dub_time_mono_ms() + WAIT_MS;
  while(times_seen(&b, "e") < 1 || times_seen(&b, "retry") < 2) {
    assert_true(dub_time_mono_ms() < deadline);
    assert_int_equal(dub_kafka_consumer_poll(consumer, 100, NULL), DUB_OK);
  }
  assert_int_equal(times_seen(&b, "a"), 1);
  assert_int_equal(times_seen(&b, "b"), 1);
  assert_int_equal(times_seen(&b, "retry"), 2);
  assert_true(b.batches >= 2);
  assert_int_equal(dub_kafka_consumer_close(consumer), DUB_OK);
  dub_kafka_consumer_free(consumer);

  /* Everything was stored: the same group gets only what is written next. */
  struct batch_seen again = {0};
  consumer = batch_open(f, &again);
  produce_values(f, "t.batch", 1, "f");
  deadline = dub_time_mono_ms() + WAIT_MS;
  while(times_seen(&again, "f") < 1) {
    assert_true(dub_time_mono_ms() < deadline);
    assert_int_equal(dub_kafka_consumer_poll(consumer, 100, NULL), DUB_OK);
  }
  assert_int_equal(again.n, 1);
  dub_kafka_consumer_free(consumer);
}

/* What the two members of g.revoke handled, under a lock (the second polls in a
 * thread of its own). */
static struct revoke_record {
  pthread_mutex_t mu;
  char values[64][16];
  int n;
  atomic_int first_revoked;
  atomic_int assigned_after; /* assignments of t.revoke[0] after that revoke */
  atomic_bool stop;
  atomic_int second_failures; /* calls of the second member that failed */
  pthread_t second;
  struct fixture *f;
} revoke_rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct revoke_member {
  int who;
};

static void revoke_batch(void *ctx, const struct dub_kafka_msg *msgs, size_t n,
                         enum dub_err *results, char **whys)
{
  (void)ctx;
  (void)whys;
  pthread_mutex_lock(&revoke_rec.mu);
  for(size_t i = 0; i < n && revoke_rec.n < 64; i++) {
    snprintf(revoke_rec.values[revoke_rec.n], sizeof revoke_rec.values[0], "%.*s",
             (int)msgs[i].value_len, (const char *)msgs[i].value);
    revoke_rec.n++;
    results[i] = DUB_OK;
  }
  pthread_mutex_unlock(&revoke_rec.mu);
}

static void revoke_rebalance(void *ctx, bool assigned,
                             const struct dub_kafka_partition *parts, size_t count)
{
  (void)parts;
  const struct revoke_member *m = ctx;
  if(!assigned && m->who == 0 && count)
    atomic_fetch_add(&revoke_rec.first_revoked, 1);
  if(assigned && count && atomic_load(&revoke_rec.first_revoked))
    atomic_fetch_add(&revoke_rec.assigned_after, 1);
}

/* 'list' must outlive the consumer's creation. */
static struct dub_kafka_consumer_conf revoke_conf(struct revoke_member *m,
                                                  const char *const *list)
{
  struct dub_kafka_consumer_conf conf = test_conf(revoke_rec.f, "g.revoke", list, m);
  conf.batch_handler = revoke_batch;
  conf.batch_max = 8;
  conf.rebalance = revoke_rebalance;
  return conf;
}

/* The second member, in a thread of its own: cmocka's asserts belong to the main
 * thread, so what fails here is counted and asserted there. */
static void *second_member(void *arg)
{
  (void)arg;
  struct revoke_member m = {1};
  const char *const list[] = {"t.revoke"};
  struct dub_kafka_consumer_conf conf = revoke_conf(&m, list);
  struct dub_kafka_consumer *c = NULL;
  char *why = NULL;
  if(dub_kafka_consumer_new(&conf, &c, &why) != DUB_OK) {
    atomic_fetch_add(&revoke_rec.second_failures, 1);
    free(why);
    return NULL;
  }
  while(!atomic_load(&revoke_rec.stop))
    if(dub_kafka_consumer_poll(c, 50, NULL) != DUB_OK)
      atomic_fetch_add(&revoke_rec.second_failures, 1);
  if(dub_kafka_consumer_close(c) != DUB_OK)
    atomic_fetch_add(&revoke_rec.second_failures, 1);
  dub_kafka_consumer_free(c);
  return NULL;
}

static void start_second(void)
{
  assert_int_equal(pthread_create(&revoke_rec.second, NULL, second_member, NULL), 0);
}

static bool first_revoked(void)
{
  return atomic_load(&revoke_rec.first_revoked) > 0;
}

static int revoke_handled(const char *v)
{
  int k = 0;
  pthread_mutex_lock(&revoke_rec.mu);
  for(int i = 0; i < revoke_rec.n; i++)
    k += strcmp(revoke_rec.values[i], v) == 0;
  pthread_mutex_unlock(&revoke_rec.mu);
  return k;
}

/* While 'revoke_armed' is set, the first poll that finds nothing more to gather (timeout
 * 0, no message) disarms it, starts a second member of the group and goes on polling
 * until the rebalance that takes the first member's partition away has run, then says "no
 * message": the batch was gathered before its partition was revoked (review C5). Only the
 * first member polls while it is armed. The binary is linked with
 * --wrap=rd_kafka_consumer_poll. */
static atomic_bool revoke_armed;

rd_kafka_message_t *__real_rd_kafka_consumer_poll(rd_kafka_t *rk, int timeout_ms);
rd_kafka_message_t *__wrap_rd_kafka_consumer_poll(rd_kafka_t *rk, int timeout_ms);

rd_kafka_message_t *__wrap_rd_kafka_consumer_poll(rd_kafka_t *rk, int timeout_ms)
{
  rd_kafka_message_t *rkm = __real_rd_kafka_consumer_poll(rk, timeout_ms);
  if(rkm || timeout_ms != 0 || !atomic_exchange(&revoke_armed, false))
    return rkm;
  start_second();
  int64_t deadline = dub_time_mono_ms() + WAIT_MS;
  while(!first_revoked()) {
    if(dub_time_mono_ms() >= deadline)
      fail_msg("no revoke %d ms after a second member joined", WAIT_MS);
    /* Anything fetched meanwhile is not this batch's: this partition is still ours
     * until the revoke, and what comes after it is fetched again by its next owner. */
    rd_kafka_message_t *more = __real_rd_kafka_consumer_poll(rk, 100);
    if(more)
      rd_kafka_message_destroy(more);
  }
  return NULL;
}

/* Review C5: a batch whose partition is revoked while it is gathered is not handed to
 * the handler (the partition's next owner reads it again from the committed offset):
 * each message is handled once by the group, not once by each member. */
static void test_batch_drops_what_a_revoke_took(void **state)
{
  static const char *const values[] = {"r1", "r2", "r3", "r4", "r5", "r6"};
  const size_t nvalues = sizeof values / sizeof values[0];
  revoke_rec.f = *state;
  /* Written together (one message set, one fetch), so that the batch is several. */
  struct reports r = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  for(size_t i = 0; i < nvalues; i++)
    assert_int_equal(dub_kafka_produce(revoke_rec.f->producer, "t.revoke", "k", 1,
                                       values[i], strlen(values[i]), NULL, 0, on_delivery,
                                       &r),
                     DUB_OK);
  wait_reports(&r, (int)nvalues);
  for(size_t i = 0; i < nvalues; i++)
    assert_int_equal(r.err[i], DUB_OK);
  struct revoke_member first = {0};
  atomic_store(&revoke_armed, true);
  const char *const list[] = {"t.revoke"};
  struct dub_kafka_consumer_conf conf = revoke_conf(&first, list);
  struct dub_kafka_consumer *c = open_conf(&conf);
  int64_t deadline = dub_time_mono_ms() + WAIT_MS;
  size_t all = 0;
  /* Until the partition has its next owner, and every value was handled. */
  while(all < nvalues || !atomic_load(&revoke_rec.assigned_after)) {
    if(dub_time_mono_ms() >= deadline)
      fail_msg("%zu of %zu values handled after %d ms (revoke %s, %d assignments since)",
               all, nvalues, WAIT_MS, first_revoked() ? "seen" : "not seen",
               atomic_load(&revoke_rec.assigned_after));
    assert_int_equal(dub_kafka_consumer_poll(c, 50, NULL), DUB_OK);
    all = 0;
    for(size_t i = 0; i < nvalues; i++)
      all += revoke_handled(values[i]) > 0;
  }
  assert_false(atomic_load(&revoke_armed)); /* the revoke came inside a gathered batch */
  assert_true(first_revoked());
  /* Both members go on polling for a while: a copy read again by the next owner from
   * the committed offset would show by now. */
  int64_t end = dub_time_mono_ms() + 2000;
  while(dub_time_mono_ms() < end)
    assert_int_equal(dub_kafka_consumer_poll(c, 50, NULL), DUB_OK);
  atomic_store(&revoke_rec.stop, true);
  assert_int_equal(pthread_join(revoke_rec.second, NULL), 0);
  assert_int_equal(atomic_load(&revoke_rec.second_failures), 0);
  assert_int_equal(dub_kafka_consumer_close(c), DUB_OK);
  dub_kafka_consumer_free(c);
  for(size_t i = 0; i < nvalues; i++)
    if(revoke_handled(values[i]) != 1)
      fail_msg("%s handled %d times (%d handler calls in all)", values[i],
               revoke_handled(values[i]), revoke_rec.n);
}

/* Events in flight together, each with its own result, awaited together. */
static void test_produce_batch(void **state)
{
  struct fixture *f = *state;
  json_t *events[3] = {
      json_pack("{s:s, s:s, s:s, s:s}", "specversion", "1.0", "id", "a-1", "source", "/t",
                "type", "t.one"),
      json_pack("{s:s, s:s}", "specversion", "1.0", "id", "a-2"), /* no source, type */
      json_pack("{s:s, s:s, s:s, s:s}", "specversion", "1.0", "id", "a-3", "source", "/t",
                "type", "t.one"),
  };
  enum dub_err results[3] = {DUB_ERR_INTERNAL, DUB_ERR_INTERNAL, DUB_ERR_INTERNAL};
  assert_int_equal(rd_kafka_mock_topic_create(f->mock, "t.all", 1, 1), 0);
  struct dub_ce_batch *b = dub_ce_batch_new(f->producer);
  for(size_t i = 0; i < 3; i++)
    dub_ce_batch_add(b, "t.all", "k", events[i], &results[i]);
  dub_ce_batch_wait(b);
  assert_int_equal(results[0], DUB_OK);
  assert_int_equal(results[1], DUB_ERR_MALFORMED);
  assert_int_equal(results[2], DUB_OK);
  dub_ce_batch_wait(dub_ce_batch_new(f->producer)); /* nothing to wait for */

  char group[64];
  snprintf(group, sizeof group, "g-all-%d", (int)getpid());
  struct seen s = {.events = json_array()};
  struct dub_kafka_consumer *c = consumer_open(f, group, "t.all", record, &s);
  poll_until(c, &s, 2);
  dub_kafka_consumer_free(c);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(s.events, 0), "id")), "a-1");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(s.events, 1), "id")), "a-3");
  json_decref(s.events);
  for(size_t i = 0; i < 3; i++)
    json_decref(events[i]);
}

/* Review C1: a waiter that gives up must not leave delivery reports writing into
 * memory it freed. Three messages to a dead broker: the wait times out at 50 ms and
 * the caller drops the group at once; the reports (failures, at the 300 ms delivery
 * timeout) still land in the group, which lives until the last of them (ASan and TSan
 * builds check that). Then: a failed report makes the wait fail, and acknowledged
 * writes make it succeed. */
static void test_ack_group_outlives_its_waiter(void **state)
{
  struct fixture *f = *state;
  struct dub_kafka_producer *producer = NULL;
  char *why = NULL;
  struct dub_kafka_producer_conf dead = {.brokers = "127.0.0.1:1",
                                         .delivery_timeout_ms = 300};
  assert_int_equal(dub_kafka_producer_new(&dead, &producer, &why), DUB_OK);
  struct dub_kafka_acks *acks = dub_kafka_acks_new();
  for(int i = 0; i < 3; i++) {
    dub_kafka_acks_add(acks);
    assert_int_equal(dub_kafka_produce(producer, "t.acks", "k", 1, "v", 1, NULL, 0,
                                       dub_kafka_acks_report, acks),
                     DUB_OK);
  }
  int64_t start = dub_time_mono_ms();
  assert_int_equal(dub_kafka_acks_wait(acks, 50), DUB_ERR_TIMEOUT);
  assert_true(dub_time_mono_ms() - start < 250);
  dub_kafka_acks_release(acks);
  dub_kafka_producer_free(producer); /* waits for the three reports */

  acks = dub_kafka_acks_new();
  dub_kafka_acks_add(acks);
  dub_kafka_acks_report(acks, DUB_ERR_TIMEOUT, -1, -1);
  dub_kafka_acks_add(acks);
  dub_kafka_acks_cancel(acks); /* a produce call that failed */
  assert_int_equal(dub_kafka_acks_wait(acks, 1000), DUB_ERR_UNAVAILABLE);
  dub_kafka_acks_release(acks);

  struct dub_kafka_producer_conf live = {.brokers = f->brokers,
                                         .delivery_timeout_ms = 5000};
  assert_int_equal(dub_kafka_producer_new(&live, &producer, &why), DUB_OK);
  acks = dub_kafka_acks_new();
  assert_int_equal(dub_kafka_acks_wait(acks, 0), DUB_OK); /* nothing counted */
  for(int i = 0; i < 2; i++) {
    dub_kafka_acks_add(acks);
    assert_int_equal(dub_kafka_produce(producer, "t.acks", "k", 1, "v", 1, NULL, 0,
                                       dub_kafka_acks_report, acks),
                     DUB_OK);
  }
  assert_int_equal(dub_kafka_acks_wait(acks, 5000), DUB_OK);
  dub_kafka_acks_release(acks);
  dub_kafka_producer_free(producer);
}

/* Polls until the reader says it is caught up (fails after WAIT_MS); returns how many
 * messages it read on the way. */
static int read_until_caught_up(struct dub_kafka_reader *reader)
{
  int got = 0;
  bool done = false;
  int64_t deadline = dub_time_mono_ms() + WAIT_MS;
  for(;;) {
    assert_int_equal(dub_kafka_reader_caught_up(reader, 5000, &done), DUB_OK);
    if(done)
      return got;
    assert_true(dub_time_mono_ms() < deadline);
    const struct dub_kafka_msg *msg = NULL;
    assert_int_equal(dub_kafka_reader_poll(reader, 100, &msg), DUB_OK);
    got += msg != NULL;
  }
}

/* Review C3: a reader is done at the end the topic had when reading started. Three
 * records, the reader started, two more written: it reports caught up once it has read
 * the three, although the topic has grown since (compared with the current end, as
 * before, it would not be until it read the five, and under steady writes never). A
 * restart takes the new end. */
static void test_reader_done_at_the_end_it_started_with(void **state)
{
  struct fixture *f = *state;
  char *why = NULL;
  struct dub_kafka_reader *reader = NULL;
  assert_int_equal(rd_kafka_mock_topic_create(f->mock, "t.reader", 1, 1), 0);
  produce_values(f, "t.reader", 3, "a", "b", "c");
  assert_int_equal(dub_kafka_reader_new(f->brokers, "t.reader", 5000, &reader, &why),
                   DUB_OK);
  int64_t from[1] = {DUB_KAFKA_OFFSET_BEGINNING};
  assert_int_equal(dub_kafka_reader_start(reader, from), DUB_OK);
  produce_values(f, "t.reader", 2, "d", "e");
  bool done = true;
  assert_int_equal(dub_kafka_reader_caught_up(reader, 5000, &done), DUB_OK);
  assert_false(done); /* nothing read yet */
  assert_int_equal(read_until_caught_up(reader), 3);
  assert_int_equal(dub_kafka_reader_position(reader, 0), 3);
  /* Started again from where it is: the end is now 5. */
  from[0] = 3;
  assert_int_equal(dub_kafka_reader_start(reader, from), DUB_OK);
  assert_int_equal(dub_kafka_reader_caught_up(reader, 5000, &done), DUB_OK);
  assert_false(done);
  assert_int_equal(read_until_caught_up(reader), 2);
  dub_kafka_reader_free(reader);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_produce_callback),
      cmocka_unit_test(test_produce_sync_and_ping),
      cmocka_unit_test(test_dead_broker),
      cmocka_unit_test(test_ack_group_outlives_its_waiter),
      cmocka_unit_test(test_producer_fatal),
      cmocka_unit_test(test_consume_in_order_and_resume),
      cmocka_unit_test(test_on_assign_tells_offsets_and_may_rewind),
      cmocka_unit_test(test_failed_seek_holds_the_partition),
      cmocka_unit_test(test_dead_letter),
      cmocka_unit_test(test_cloudevents_roundtrip),
      cmocka_unit_test(test_cloudevent_headers),
      cmocka_unit_test(test_batch_handler),
      cmocka_unit_test(test_batch_drops_what_a_revoke_took),
      cmocka_unit_test(test_produce_batch),
      cmocka_unit_test(test_reader_done_at_the_end_it_started_with),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
