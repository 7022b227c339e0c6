/* test_rebuild.c - derived state rebuilt from a topic (libs/runtime/rebuild.c), on
 * librdkafka's mock cluster and a real redis-server: every record applied, done under
 * steady writes at the ends taken when it began (review C3), a Redis that refuses
 * writes waited out without a record skipped, and a prompt stop. */
#include "runtime/rebuild.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "core/time.h"
#include "redis_server.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <cmocka.h>

#define PARTITIONS 3
#define MARKER "t:rebuild:complete"

struct fixture {
  struct test_redis *redis;
  struct dub_cache *cache;
  rd_kafka_t *mock_rk, *producer;
  rd_kafka_mock_cluster_t *mock;
  const char *brokers;
  int topics;
};

static int setup(void **state)
{
  void *redis = NULL;
  test_redis_setup(&redis);
  struct fixture *f = dub_xcalloc(1, sizeof *f);
  f->redis = redis;
  char *why = NULL, errstr[256];
  assert_int_equal(dub_cache_new(f->redis->url, 1000, 2000, &f->cache, &why), DUB_OK);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  assert_non_null(f->mock_rk);
  f->mock = rd_kafka_mock_cluster_new(f->mock_rk, 1);
  assert_non_null(f->mock);
  f->brokers = rd_kafka_mock_cluster_bootstraps(f->mock);
  conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", f->brokers, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr);
  f->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  assert_non_null(f->producer);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  rd_kafka_destroy(f->producer);
  rd_kafka_mock_cluster_destroy(f->mock);
  rd_kafka_destroy(f->mock_rk);
  dub_cache_free(f->cache);
  void *redis = f->redis;
  test_redis_teardown(&redis);
  free(f);
  return 0;
}

/* A new topic of PARTITIONS partitions, and an empty Redis. */
static const char *new_topic(struct fixture *f)
{
  static char name[32];
  snprintf(name, sizeof name, "t.rebuild.%d", ++f->topics);
  assert_int_equal(rd_kafka_mock_topic_create(f->mock, name, PARTITIONS, 1), 0);
  assert_int_equal(
      dub_cache_command(f->cache, NULL, 1, (const char *[]){"FLUSHALL"}, NULL), DUB_OK);
  return name;
}

/* Writes values first .. first+n-1 ("v<i>"), spread over the partitions, and waits
 * until the broker has them all. */
static void produce(struct fixture *f, const char *topic, int first, int n)
{
  for(int i = first; i < first + n; i++) {
    char v[32];
    int len = snprintf(v, sizeof v, "v%d", i);
    rd_kafka_resp_err_t err;
    while((err = rd_kafka_producev(
               f->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(i % PARTITIONS),
               RD_KAFKA_V_VALUE(v, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
               RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(f->producer, 10);
    assert_int_equal(err, 0);
  }
  assert_int_equal(rd_kafka_flush(f->producer, 10000), 0);
}

/* What the service's side did, and how slow it is. */
struct applier {
  atomic_size_t applied;
  long delay_ms; /* per batch */
};

/* The service's side: each record becomes SET r:<value> <partition>:<offset>. */
static enum dub_err apply_sets(void *ctx, struct dub_cache *cache,
                               const struct dub_kafka_msg *msgs, size_t n)
{
  struct applier *a = ctx;
  if(a->delay_ms) {
    struct timespec ts = {0, a->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
  }
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  for(size_t i = 0; i < n; i++) {
    char where[48];
    snprintf(where, sizeof where, "%d:%lld", (int)msgs[i].partition,
             (long long)msgs[i].offset);
    dub_cache_pipeline_addf(p, "SET r:%b %s", msgs[i].value, msgs[i].value_len, where);
  }
  enum dub_err rc = dub_cache_pipeline_exec(cache, p, NULL);
  if(!rc)
    atomic_fetch_add(&a->applied, n);
  dub_cache_pipeline_free(p);
  return rc;
}

static long long redis_int(struct fixture *f, int argc, const char **argv)
{
  struct dub_cache_reply *r = NULL;
  assert_int_equal(dub_cache_command(f->cache, &r, argc, argv, NULL), DUB_OK);
  assert_int_equal(r->type, DUB_CACHE_INT);
  long long v = r->integer;
  dub_cache_reply_free(r);
  return v;
}

/* Whether every value first .. first+n-1 was applied. */
static void assert_applied(struct fixture *f, int first, int n)
{
  for(int i = first; i < first + n; i++) {
    char key[32];
    snprintf(key, sizeof key, "r:v%d", i);
    if(redis_int(f, 2, (const char *[]){"EXISTS", key}) != 1)
      fail_msg("record v%d was not applied", i);
  }
}

static struct dub_rebuild_spec spec_of(const char *topic, struct applier *applied)
{
  return (struct dub_rebuild_spec){.what = "test records",
                                   .topic = topic,
                                   .marker = MARKER,
                                   .batch = 100,
                                   .apply = apply_sets,
                                   .ctx = applied};
}

static void test_everything_applied_then_marked(void **state)
{
  struct fixture *f = *state;
  const char *topic = new_topic(f);
  produce(f, topic, 0, 3000);
  struct applier applied = {0};
  atomic_bool stop = false;
  struct dub_rebuild_spec spec = spec_of(topic, &applied);
  bool needed = false;
  assert_int_equal(dub_rebuild_needed(f->cache, MARKER, &needed), DUB_OK);
  assert_true(needed);
  struct dub_rebuild_stats st;
  assert_int_equal(dub_rebuild_run(f->brokers, f->cache, NULL, &spec, &stop, &st),
                   DUB_OK);
  assert_int_equal(st.records, 3000);
  assert_int_equal(st.retries, 0);
  assert_applied(f, 0, 3000);
  assert_int_equal(redis_int(f, 1, (const char *[]){"DBSIZE"}), 3001);
  assert_int_equal(dub_rebuild_needed(f->cache, MARKER, &needed), DUB_OK);
  assert_false(needed);
}

struct stopper {
  atomic_bool *stop;
  long after_ms;
};

static void *stop_later(void *arg)
{
  struct stopper *s = arg;
  struct timespec ts = {s->after_ms / 1000, (s->after_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  atomic_store(s->stop, true);
  return NULL;
}

/* A writer that keeps adding records while the rebuild runs. */
struct writer {
  struct fixture *f;
  const char *topic;
  atomic_bool stop;
  atomic_int written;
};

static void *keep_writing(void *arg)
{
  struct writer *w = arg;
  while(!atomic_load(&w->stop)) {
    produce(w->f, w->topic, 100000 + atomic_load(&w->written), 200);
    atomic_fetch_add(&w->written, 200);
  }
  return NULL;
}

/* Review C3: compared with the current end, a reader slower than the writers never
 * finished; the ends taken at the start let it. Here the rebuild applies 100 records
 * per 20 ms (5,000/s), and the writer writes faster than that. */
static void test_done_under_steady_writes(void **state)
{
  struct fixture *f = *state;
  const char *topic = new_topic(f);
  produce(f, topic, 0, 2000);
  struct writer w = {.f = f, .topic = topic};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, keep_writing, &w), 0);
  while(atomic_load(&w.written) < 200) /* writes under way before the rebuild begins */
    sched_yield();
  struct applier applied = {.delay_ms = 20};
  atomic_bool stop = false;
  struct stopper bound = {.stop = &stop, .after_ms = 20000}; /* a moving end: never */
  pthread_t b;
  assert_int_equal(pthread_create(&b, NULL, stop_later, &bound), 0);
  struct dub_rebuild_spec spec = spec_of(topic, &applied);
  struct dub_rebuild_stats st;
  enum dub_err rc = dub_rebuild_run(f->brokers, f->cache, NULL, &spec, &stop, &st);
  bool stopped = atomic_load(&stop);
  int during = atomic_load(&w.written);
  atomic_store(&w.stop, true);
  pthread_join(t, NULL);
  pthread_cancel(b);
  pthread_join(b, NULL);
  if(stopped)
    fail_msg("not done after 20 s of steady writes: %zu records applied, %d written",
             st.records, during);
  assert_int_equal(rc, DUB_OK);
  assert_applied(f, 0, 2000);
  assert_applied(f, 100000, 200);
  assert_true(st.records >= 2200);
  print_message("rebuild under steady writes: %zu records applied in %lld ms while %d "
                "more were written\n",
                st.records, (long long)st.ms, during);
}

/* Lifts a Redis fault after a while, from another thread. */
struct lifter {
  struct fixture *f;
  long after_ms;
  const char *const *argv;
  int argc;
};

static void *lift_later(void *arg)
{
  struct lifter *l = arg;
  struct timespec ts = {l->after_ms / 1000, (l->after_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  assert_int_equal(dub_cache_command(l->f->cache, NULL, l->argc, l->argv, NULL), DUB_OK);
  return NULL;
}

static void config_set(struct fixture *f, const char *name, const char *value)
{
  assert_int_equal(dub_cache_command(f->cache, NULL, 4,
                                     (const char *[]){"CONFIG", "SET", name, value},
                                     NULL),
                   DUB_OK);
}

/* Redis refuses writes (NOREPLICAS: min-replicas-to-write with no replica) for 1.5 s
 * in the middle of the rebuild: the batches are tried again, nothing is skipped. */
static void test_redis_refusing_writes_is_waited_out(void **state)
{
  struct fixture *f = *state;
  const char *topic = new_topic(f);
  produce(f, topic, 0, 3000);
  config_set(f, "min-replicas-to-write", "1");
  static const char *const lift[] = {"CONFIG", "SET", "min-replicas-to-write", "0"};
  struct lifter l = {.f = f, .after_ms = 1500, .argv = lift, .argc = 4};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, lift_later, &l), 0);
  struct applier applied = {0};
  atomic_bool stop = false;
  struct dub_rebuild_spec spec = spec_of(topic, &applied);
  struct dub_rebuild_stats st;
  int64_t t0 = dub_time_mono_ms();
  enum dub_err rc = dub_rebuild_run(f->brokers, f->cache, NULL, &spec, &stop, &st);
  int64_t took = dub_time_mono_ms() - t0;
  pthread_join(t, NULL);
  assert_int_equal(rc, DUB_OK);
  assert_true(st.retries >= 1);
  assert_true(took >= 1400);
  assert_applied(f, 0, 3000);
  assert_int_equal(redis_int(f, 2, (const char *[]){"EXISTS", MARKER}), 1);
  print_message("redis refusing writes for 1.5 s: %zu batches tried again, done in %lld "
                "ms\n",
                st.retries, (long long)took);
}

/* Asked to stop while Redis refuses: it returns within about a second, unmarked. */
static void test_stops_promptly(void **state)
{
  struct fixture *f = *state;
  const char *topic = new_topic(f);
  produce(f, topic, 0, 500);
  config_set(f, "min-replicas-to-write", "1");
  struct applier applied = {0};
  atomic_bool stop = false;
  struct stopper s = {.stop = &stop, .after_ms = 3000};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, stop_later, &s), 0);
  struct dub_rebuild_spec spec = spec_of(topic, &applied);
  int64_t t0 = dub_time_mono_ms();
  enum dub_err rc = dub_rebuild_run(f->brokers, f->cache, NULL, &spec, &stop, NULL);
  int64_t took = dub_time_mono_ms() - t0;
  pthread_join(t, NULL);
  config_set(f, "min-replicas-to-write", "0");
  assert_int_equal(rc, DUB_ERR_UNAVAILABLE);
  assert_true(took < 3000 + 1500);
  assert_int_equal(atomic_load(&applied.applied), 0);
  assert_int_equal(redis_int(f, 2, (const char *[]){"EXISTS", MARKER}), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_everything_applied_then_marked),
      cmocka_unit_test(test_done_under_steady_writes),
      cmocka_unit_test(test_redis_refusing_writes_is_waited_out),
      cmocka_unit_test(test_stops_promptly),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
