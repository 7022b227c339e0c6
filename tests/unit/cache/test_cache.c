/* test_cache.c - libs/cache against a redis-server the test starts on a free port. */
#include "cache/cache.h"

#include "core/alloc.h"
#include "core/time.h"
#include "redis_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

static struct dub_cache *open_cache(const char *url, int command_timeout_ms)
{
  struct dub_cache *cache = NULL;
  char *why = NULL;
  assert_int_equal(dub_cache_new(url, 500, command_timeout_ms, &cache, &why), DUB_OK);
  assert_null(why);
  return cache;
}

static void cmd(struct dub_cache *cache, struct dub_cache_reply **reply, const char *a0,
                const char *a1, const char *a2)
{
  const char *argv[] = {a0, a1, a2};
  int argc = a2 ? 3 : a1 ? 2 : 1;
  assert_int_equal(dub_cache_command(cache, reply, argc, argv, NULL), DUB_OK);
}

static void test_set_get(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *cache = open_cache(s->url, 1000);
  struct dub_cache_reply *reply = NULL;

  assert_true(dub_cache_connected(cache));
  assert_int_equal(dub_cache_ping(cache), DUB_OK);
  cmd(cache, &reply, "SET", "greeting", "你好");
  assert_int_equal(reply->type, DUB_CACHE_STATUS);
  assert_string_equal(reply->str, "OK");
  dub_cache_reply_free(reply);
  assert_int_equal(dub_cache_commandf(cache, &reply, "GET %s", "greeting"), DUB_OK);
  assert_int_equal(reply->type, DUB_CACHE_STRING);
  assert_int_equal(reply->len, strlen("你好"));
  assert_string_equal(reply->str, "你好");
  dub_cache_reply_free(reply);
  /* A reply nobody wants is freed inside. */
  assert_int_equal(dub_cache_commandf(cache, NULL, "DEL greeting"), DUB_OK);
  dub_cache_free(cache);
}

static void test_binary_safe(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *cache = open_cache(s->url, 1000);
  struct dub_cache_reply *reply = NULL;
  const char value[] = {'a',        '\0',       'b', '\r', '\n',
                        (char)0xff, (char)0xfe, ' ', '%',  's'};
  const char key[] = {'k', ' ', '\0', 'x'};
  const char *argv[] = {"SET", key, value};
  const size_t lens[] = {3, sizeof key, sizeof value};

  assert_int_equal(dub_cache_command(cache, &reply, 3, argv, lens), DUB_OK);
  assert_int_equal(reply->type, DUB_CACHE_STATUS);
  dub_cache_reply_free(reply);
  assert_int_equal(dub_cache_commandf(cache, &reply, "GET %b", key, sizeof key), DUB_OK);
  assert_int_equal(reply->type, DUB_CACHE_STRING);
  assert_int_equal(reply->len, sizeof value);
  assert_memory_equal(reply->str, value, sizeof value);
  dub_cache_reply_free(reply);
  /* A value with spaces substituted by %s stays one argument. */
  assert_int_equal(dub_cache_commandf(cache, NULL, "SET %s %s", "spaced", "a b c"),
                   DUB_OK);
  cmd(cache, &reply, "GET", "spaced", NULL);
  assert_string_equal(reply->str, "a b c");
  dub_cache_reply_free(reply);
  dub_cache_free(cache);
}

/* Pipelined commands are written as RESP by hand: Redis parses what was written, with
 * arguments that are empty, binary, long (a length of six digits) and as many as a
 * ZADD of a hundred members (an argument count of three digits). */
static void test_pipeline_framing(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *cache = open_cache(s->url, 1000);
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  const char value[] = {'a', '\0', '\r', '\n', '*', '3', '\r', '\n', '$', (char)0xff};
  size_t long_len = 123456;
  char *long_value = malloc(long_len);
  assert_non_null(long_value);
  for(size_t i = 0; i < long_len; i++)
    long_value[i] = (char)('a' + i % 26);
  const char *set_bin[] = {"SET", "frame:bin", value};
  const size_t bin_lens[] = {3, 9, sizeof value};
  dub_cache_pipeline_add(p, 3, set_bin, bin_lens);
  const char *set_empty[] = {"SET", "frame:empty", ""};
  dub_cache_pipeline_add(p, 3, set_empty, NULL);
  const char *set_long[] = {"SET", "frame:long", long_value};
  const size_t long_lens[] = {3, 10, long_len};
  dub_cache_pipeline_add(p, 3, set_long, long_lens);
  const char *zadd[2 + 2 * 100];
  char members[100][8];
  zadd[0] = "ZADD";
  zadd[1] = "frame:z";
  for(int i = 0; i < 100; i++) {
    snprintf(members[i], sizeof members[i], "m%d", i);
    zadd[2 + 2 * i] = "1";
    zadd[3 + 2 * i] = members[i];
  }
  dub_cache_pipeline_add(p, 2 + 2 * 100, zadd, NULL);
  const char *gets[][2] = {{"GET", "frame:bin"},
                           {"GET", "frame:empty"},
                           {"STRLEN", "frame:long"},
                           {"ZCARD", "frame:z"}};
  for(size_t i = 0; i < 4; i++)
    dub_cache_pipeline_add(p, 2, gets[i], NULL);
  assert_int_equal(dub_cache_pipeline_count(p), 8);
  assert_int_equal(dub_cache_pipeline_exec(cache, p, &replies), DUB_OK);
  assert_int_equal(replies[4]->type, DUB_CACHE_STRING);
  assert_int_equal(replies[4]->len, sizeof value);
  assert_memory_equal(replies[4]->str, value, sizeof value);
  assert_int_equal(replies[5]->type, DUB_CACHE_STRING);
  assert_int_equal(replies[5]->len, 0);
  assert_int_equal(replies[6]->integer, (long long)long_len);
  assert_int_equal(replies[7]->integer, 100);
  dub_cache_replies_free(replies, 8);
  free(long_value);
  dub_cache_pipeline_free(p);
  dub_cache_free(cache);
}

static void test_pipeline(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *cache = open_cache(s->url, 1000);
  struct dub_cache_pipeline *pipeline = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL, *reply = NULL;
  const char *del[] = {"DEL", "pipe:{c1}"};

  dub_cache_pipeline_add(pipeline, 2, del, NULL);
  for(int i = 0; i < 100; i++)
    assert_int_equal(dub_cache_pipeline_addf(pipeline, "INCR %s", "pipe:{c1}"), DUB_OK);
  assert_int_equal(dub_cache_pipeline_addf(pipeline, "HGET pipe:{c1} x"), DUB_OK);
  assert_int_equal(dub_cache_pipeline_count(pipeline), 102);
  assert_int_equal(dub_cache_pipeline_exec_each(cache, pipeline, &replies), DUB_OK);
  assert_int_equal(replies[0]->type, DUB_CACHE_INT);
  for(int i = 1; i <= 100; i++) {
    assert_int_equal(replies[i]->type, DUB_CACHE_INT);
    assert_int_equal(replies[i]->integer, i);
  }
  /* exec_each hands an error inside a pipeline over as a reply. */
  assert_int_equal(replies[101]->type, DUB_CACHE_ERROR);
  assert_non_null(strstr(replies[101]->str, "WRONGTYPE"));
  assert_false(dub_cache_reply_retriable(replies[101]));
  dub_cache_replies_free(replies, 102);
  /* Runs again: the counter goes on from 0 after DEL. exec fails as a whole on the
   * one error reply, though the other 101 commands ran. */
  assert_int_equal(dub_cache_pipeline_exec(cache, pipeline, &replies), DUB_ERR_INTERNAL);
  assert_null(replies);
  cmd(cache, &reply, "GET", "pipe:{c1}", NULL);
  assert_string_equal(reply->str, "100");
  dub_cache_reply_free(reply);
  dub_cache_pipeline_free(pipeline);
  dub_cache_free(cache);
}

/* Runs the pipeline SET k v; GET k and checks that it fails as a whole with
 * DUB_ERR_UNAVAILABLE, its reply naming 'word' under exec_each. */
static void expect_refused_pipeline(struct dub_cache *cache, const char *word)
{
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  assert_int_equal(dub_cache_pipeline_addf(p, "SET refused:k v"), DUB_OK);
  assert_int_equal(dub_cache_pipeline_addf(p, "GET refused:k"), DUB_OK);
  assert_int_equal(dub_cache_pipeline_exec(cache, p, &replies), DUB_ERR_UNAVAILABLE);
  assert_null(replies);
  assert_int_equal(dub_cache_pipeline_exec_each(cache, p, &replies), DUB_OK);
  assert_int_equal(replies[0]->type, DUB_CACHE_ERROR);
  assert_non_null(strstr(replies[0]->str, word));
  assert_true(dub_cache_reply_retriable(replies[0]));
  assert_false(dub_cache_reply_retriable(replies[1])); /* the GET answered */
  dub_cache_replies_free(replies, 2);
  dub_cache_pipeline_free(p);
  /* In a transaction the refusal comes at queueing and EXEC answers EXECABORT: the
   * call is still retriable, not an internal error. */
  p = dub_cache_pipeline_new();
  assert_int_equal(dub_cache_pipeline_addf(p, "MULTI"), DUB_OK);
  assert_int_equal(dub_cache_pipeline_addf(p, "SET refused:k v"), DUB_OK);
  assert_int_equal(dub_cache_pipeline_addf(p, "EXEC"), DUB_OK);
  assert_int_equal(dub_cache_pipeline_exec(cache, p, &replies), DUB_ERR_UNAVAILABLE);
  assert_null(replies);
  dub_cache_pipeline_free(p);
}

/* Redis answering but refusing writes for now (memory full with noeviction; made a
 * replica): a typed, retriable error from single commands, pipelines, transactions
 * and the readiness probe, never data or success; reads go on; all works again once
 * Redis takes writes. */
static void test_refusals_are_retriable(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *cache = open_cache(s->url, 1000);
  struct dub_cache_reply *reply = NULL;
  char *why = NULL;
  const char *set[] = {"SET", "refused:k", "v"};
  cmd(cache, NULL, "SET", "refused:k", "before");

  /* OOM */
  assert_int_equal(
      dub_cache_commandf(cache, NULL, "CONFIG SET maxmemory-policy noeviction"), DUB_OK);
  assert_int_equal(dub_cache_commandf(cache, NULL, "CONFIG SET maxmemory 1"), DUB_OK);
  assert_int_equal(dub_cache_command(cache, &reply, 3, set, NULL), DUB_ERR_UNAVAILABLE);
  assert_null(reply);
  cmd(cache, &reply, "GET", "refused:k", NULL);
  assert_string_equal(reply->str, "before");
  dub_cache_reply_free(reply);
  expect_refused_pipeline(cache, "OOM");
  assert_int_equal(dub_cache_probe_write(cache, "refused:probe", &why),
                   DUB_ERR_UNAVAILABLE);
  assert_non_null(strstr(why, "refuses writes: OOM"));
  free(why);
  assert_int_equal(dub_cache_ping(cache), DUB_OK); /* why a PING is no readiness probe */
  assert_int_equal(dub_cache_commandf(cache, NULL, "CONFIG SET maxmemory 0"), DUB_OK);
  assert_int_equal(dub_cache_probe_write(cache, "refused:probe", &why), DUB_OK);
  assert_null(why);

  /* READONLY: a replica of a master that does not answer keeps its data read-only. */
  char master[64];
  snprintf(master, sizeof master, "REPLICAOF 127.0.0.1 %d", test_redis_free_port());
  assert_int_equal(dub_cache_commandf(cache, NULL, master), DUB_OK);
  assert_int_equal(dub_cache_command(cache, &reply, 3, set, NULL), DUB_ERR_UNAVAILABLE);
  assert_null(reply);
  expect_refused_pipeline(cache, "READONLY");
  assert_int_equal(dub_cache_probe_write(cache, "refused:probe", &why),
                   DUB_ERR_UNAVAILABLE);
  assert_non_null(strstr(why, "refuses writes: READONLY"));
  free(why);
  /* Each READONLY dropped the connection; the next command reconnects at once. */
  assert_int_equal(dub_cache_commandf(cache, NULL, "REPLICAOF NO ONE"), DUB_OK);
  assert_int_equal(dub_cache_command(cache, NULL, 3, set, NULL), DUB_OK);
  cmd(cache, &reply, "GET", "refused:k", NULL);
  assert_string_equal(reply->str, "v");
  dub_cache_reply_free(reply);
  dub_cache_free(cache);
}

static void test_reply_types(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *cache = open_cache(s->url, 1000);
  struct dub_cache_reply *reply = NULL;

  cmd(cache, NULL, "DEL", "list", NULL);
  cmd(cache, &reply, "RPUSH", "list", "one");
  assert_int_equal(reply->type, DUB_CACHE_INT);
  assert_int_equal(reply->integer, 1);
  dub_cache_reply_free(reply);
  cmd(cache, NULL, "RPUSH", "list", "two");
  assert_int_equal(dub_cache_commandf(cache, &reply, "LRANGE list 0 -1"), DUB_OK);
  assert_int_equal(reply->type, DUB_CACHE_ARRAY);
  assert_int_equal(reply->count, 2);
  assert_int_equal(reply->elements[0]->type, DUB_CACHE_STRING);
  assert_string_equal(reply->elements[0]->str, "one");
  assert_string_equal(reply->elements[1]->str, "two");
  dub_cache_reply_free(reply);
  assert_int_equal(dub_cache_commandf(cache, &reply, "LRANGE nothing 0 -1"), DUB_OK);
  assert_int_equal(reply->type, DUB_CACHE_ARRAY);
  assert_int_equal(reply->count, 0);
  dub_cache_reply_free(reply);
  cmd(cache, &reply, "GET", "missing-key", NULL);
  assert_int_equal(reply->type, DUB_CACHE_NIL);
  dub_cache_reply_free(reply);
  /* An error reply fails the command but is handed over. */
  assert_int_equal(dub_cache_commandf(cache, &reply, "INCR list"), DUB_ERR_INTERNAL);
  assert_non_null(reply);
  assert_int_equal(reply->type, DUB_CACHE_ERROR);
  assert_non_null(strstr(reply->str, "WRONGTYPE"));
  dub_cache_reply_free(reply);
  assert_int_equal(dub_cache_commandf(cache, &reply, "NOSUCHCOMMAND"), DUB_ERR_INTERNAL);
  assert_int_equal(reply->type, DUB_CACHE_ERROR);
  dub_cache_reply_free(reply);
  /* The connection is still good after error replies. */
  assert_int_equal(dub_cache_ping(cache), DUB_OK);
  dub_cache_free(cache);
}

static void expect_url(const char *url, const char *host, int port, const char *path,
                       const char *user, const char *password, int db)
{
  struct dub_cache_url u;
  char *why = NULL;
  assert_int_equal(dub_cache_url_parse(url, &u, &why), DUB_OK);
  assert_null(why);
  if(host)
    assert_string_equal(u.host, host);
  else
    assert_null(u.host);
  if(path)
    assert_string_equal(u.path, path);
  else
    assert_null(u.path);
  if(user)
    assert_string_equal(u.user, user);
  else
    assert_null(u.user);
  if(password)
    assert_string_equal(u.password, password);
  else
    assert_null(u.password);
  if(host)
    assert_int_equal(u.port, port);
  assert_int_equal(u.db, db);
  dub_cache_url_release(&u);
}

static void expect_bad_url(const char *url, const char *mentions)
{
  struct dub_cache_url u;
  struct dub_cache *cache = (struct dub_cache *)&u; /* must be reset to NULL */
  char *why = NULL;
  assert_int_equal(dub_cache_url_parse(url, &u, &why), DUB_ERR_CONFIG);
  assert_non_null(why);
  assert_null(u.host);
  assert_null(u.password);
  if(mentions && !strstr(why, mentions))
    fail_msg("message for '%s' is '%s', expected to mention '%s'", url, why, mentions);
  assert_null(strstr(why, "s3cret"));
  free(why);
  why = NULL;
  assert_int_equal(dub_cache_new(url, 100, 100, &cache, &why), DUB_ERR_CONFIG);
  assert_null(cache);
  assert_null(strstr(why, "s3cret"));
  free(why);
}

static void test_url_parse(void **state)
{
  (void)state;
  expect_url("redis://127.0.0.1:6379/0", "127.0.0.1", 6379, NULL, NULL, NULL, 0);
  expect_url("redis://cache.local", "cache.local", 6379, NULL, NULL, NULL, 0);
  expect_url("redis://cache.local/", "cache.local", 6379, NULL, NULL, NULL, 0);
  expect_url("redis://:s3cret@redis:6380/2", "redis", 6380, NULL, NULL, "s3cret", 2);
  expect_url("redis://app:p%40ss%2Fw@redis:1/15", "redis", 1, NULL, "app", "p@ss/w", 15);
  expect_url("redis://[::1]:7000/1", "::1", 7000, NULL, NULL, NULL, 1);
  expect_url("unix:///run/redis/redis.sock", NULL, 0, "/run/redis/redis.sock", NULL, NULL,
             0);
  expect_url("unix:///tmp/r.sock?db=4", NULL, 0, "/tmp/r.sock", NULL, NULL, 4);
  expect_url("unix:///tmp/r.sock?password=s3cret&db=1", NULL, 0, "/tmp/r.sock", NULL,
             "s3cret", 1);

  expect_bad_url("", "empty");
  expect_bad_url("http://host:6379/0", "scheme");
  expect_bad_url("redis://", "host");
  expect_bad_url("redis://:6379/0", "host");
  expect_bad_url("redis://host:port/0", "port");
  expect_bad_url("redis://host:0/0", "port");
  expect_bad_url("redis://host:65536/0", "port");
  expect_bad_url("redis://host:/0", "port");
  expect_bad_url("redis://host:6379/x", "database");
  expect_bad_url("redis://host:6379/0/1", "database");
  expect_bad_url("redis://host:6379/-1", "database");
  expect_bad_url("redis://host:6379/0?db=1", "query");
  expect_bad_url("redis://s3cret@host:6379/0", "password");
  expect_bad_url("redis://:@host/0", "password is empty");
  expect_bad_url("redis://:s3cret%zz@host/0", "escape");
  expect_bad_url("redis://:s3cret@ho st:1/0", NULL);
  expect_bad_url("redis://:s3cret@host:99999/0", "port");
  expect_bad_url("redis://h*st/0", "host");
  expect_bad_url("redis://[::1/0", "ipv6");
  expect_bad_url("unix://relative.sock", "absolute");
  expect_bad_url("unix:///tmp/r.sock?db=abc", "database");
  expect_bad_url("unix:///tmp/r.sock?timeout=1", "unknown");
  expect_bad_url("unix:///tmp/r.sock?db=1&db=2", "twice");
  expect_bad_url("unix:///tmp/r.sock?password=s3cret&", "&");
}

static void test_unix_auth_select(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *admin = open_cache(s->url, 1000);
  struct dub_cache *cache = NULL;
  struct dub_cache_reply *reply = NULL;
  char *url = NULL;

  /* Database 3 over the Unix socket. */
  url = dub_xasprintf("unix://%s?db=3", s->sock);
  cache = open_cache(url, 1000);
  free(url);
  assert_int_equal(dub_cache_commandf(cache, NULL, "SET only-in-3 yes"), DUB_OK);
  dub_cache_free(cache);
  cmd(admin, &reply, "EXISTS", "only-in-3", NULL);
  assert_int_equal(reply->integer, 0);
  dub_cache_reply_free(reply);

  /* AUTH on every connect, with the password from the URL. */
  assert_int_equal(dub_cache_commandf(admin, NULL, "CONFIG SET requirepass s3cret"),
                   DUB_OK);
  url = dub_xasprintf("redis://:s3cret@127.0.0.1:%d/3", s->port);
  cache = open_cache(url, 1000);
  free(url);
  cmd(cache, &reply, "GET", "only-in-3", NULL);
  assert_string_equal(reply->str, "yes");
  dub_cache_reply_free(reply);
  assert_int_equal(dub_cache_commandf(cache, NULL, "CONFIG SET requirepass %s", ""),
                   DUB_OK);
  dub_cache_free(cache);

  /* A wrong password leaves the cache unready. */
  assert_int_equal(dub_cache_commandf(admin, NULL, "CONFIG SET requirepass s3cret"),
                   DUB_OK);
  url = dub_xasprintf("redis://:wrong@127.0.0.1:%d/0", s->port);
  cache = open_cache(url, 1000);
  free(url);
  assert_false(dub_cache_connected(cache));
  assert_int_equal(dub_cache_ping(cache), DUB_ERR_UNAVAILABLE);
  dub_cache_free(cache);
  url = dub_xasprintf("redis://:s3cret@127.0.0.1:%d/0", s->port);
  cache = open_cache(url, 1000);
  free(url);
  assert_int_equal(dub_cache_commandf(cache, NULL, "CONFIG SET requirepass %s", ""),
                   DUB_OK);
  dub_cache_free(cache);
  dub_cache_free(admin);
}

struct worker {
  struct dub_cache *cache;
  int failures;
};

static void *incr_many(void *arg)
{
  struct worker *w = arg;
  for(int i = 0; i < 500; i++) {
    struct dub_cache_reply *reply = NULL;
    if(dub_cache_commandf(w->cache, &reply, "INCR threads") ||
       reply->type != DUB_CACHE_INT)
      w->failures++;
    dub_cache_reply_free(reply);
  }
  return NULL;
}

static void test_threads(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *cache = open_cache(s->url, 1000);
  struct dub_cache_reply *reply = NULL;
  pthread_t threads[4];
  struct worker workers[4];

  cmd(cache, NULL, "DEL", "threads", NULL);
  for(int i = 0; i < 4; i++) {
    workers[i] = (struct worker){cache, 0};
    assert_int_equal(pthread_create(&threads[i], NULL, incr_many, &workers[i]), 0);
  }
  for(int i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
    assert_int_equal(workers[i].failures, 0);
  }
  cmd(cache, &reply, "GET", "threads", NULL);
  assert_string_equal(reply->str, "2000");
  dub_cache_reply_free(reply);
  dub_cache_free(cache);
}

/* Pings until it works, returning the milliseconds it took; fails after 'limit_ms'. */
static int64_t ping_until_ok(struct dub_cache *cache, int64_t limit_ms)
{
  int64_t start = dub_time_mono_ms();
  while(dub_cache_ping(cache) != DUB_OK) {
    assert_true(dub_time_mono_ms() - start < limit_ms);
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
  return dub_time_mono_ms() - start;
}

static void test_server_killed_and_restarted(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *cache = open_cache(s->url, 300);
  struct dub_cache_reply *reply = NULL;

  assert_int_equal(dub_cache_ping(cache), DUB_OK);
  test_redis_kill(s);
  int64_t start = dub_time_mono_ms();
  assert_int_equal(dub_cache_commandf(cache, &reply, "GET x"), DUB_ERR_UNAVAILABLE);
  assert_null(reply);
  /* The next one tries to reconnect, is refused, and starts the backoff. */
  assert_int_equal(dub_cache_commandf(cache, &reply, "GET x"), DUB_ERR_UNAVAILABLE);
  /* During the backoff calls fail at once without touching the network. */
  for(int i = 0; i < 100; i++)
    assert_int_equal(dub_cache_ping(cache), DUB_ERR_UNAVAILABLE);
  assert_true(dub_time_mono_ms() - start < 300);
  assert_false(dub_cache_connected(cache));

  test_redis_start(s);
  /* Backoff is at most DUB_CACHE_BACKOFF_MAX_MS, so it is back within that. */
  ping_until_ok(cache, DUB_CACHE_BACKOFF_MAX_MS + 1000);
  assert_int_equal(dub_cache_commandf(cache, NULL, "SET back yes"), DUB_OK);
  dub_cache_free(cache);
}

static void test_command_timeout(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *cache = open_cache(s->url, 200);

  assert_int_equal(dub_cache_ping(cache), DUB_OK);
  assert_int_equal(kill(s->pid, SIGSTOP), 0);
  int64_t start = dub_time_mono_ms();
  assert_int_equal(dub_cache_ping(cache), DUB_ERR_UNAVAILABLE);
  int64_t took = dub_time_mono_ms() - start;
  assert_true(took >= 150);
  assert_true(took < 1500);
  assert_false(dub_cache_connected(cache));
  assert_int_equal(kill(s->pid, SIGCONT), 0);
  ping_until_ok(cache, DUB_CACHE_BACKOFF_MAX_MS + 2000);
  dub_cache_free(cache);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_parse),
      cmocka_unit_test(test_set_get),
      cmocka_unit_test(test_binary_safe),
      cmocka_unit_test(test_pipeline),
      cmocka_unit_test(test_pipeline_framing),
      cmocka_unit_test(test_refusals_are_retriable),
      cmocka_unit_test(test_reply_types),
      cmocka_unit_test(test_unix_auth_select),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_command_timeout),
      cmocka_unit_test(test_server_killed_and_restarted),
  };
  return cmocka_run_group_tests(tests, test_redis_setup, test_redis_teardown);
}
