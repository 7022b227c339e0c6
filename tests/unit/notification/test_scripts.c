/* test_scripts.c - the message-state scripts (scripts.c) run by a real redis-server:
 * two instances that claim the same job, as the old and the new owner of a partition
 * do after a rebalance (review C5), send it once. */
#include "scripts.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "redis_server.h"

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#define MKEY "duban:notify:msg:{t1}:k1"
#define KKEY "duban:notify:case:{t1}"

struct fixture {
  struct test_redis *redis;
  struct dub_cache *cache;
};

static int setup(void **state)
{
  void *redis = NULL;
  test_redis_setup(&redis);
  struct fixture *f = dub_xcalloc(1, sizeof *f);
  f->redis = redis;
  char *why = NULL;
  assert_int_equal(dub_cache_new(f->redis->url, 1000, 1000, &f->cache, &why), DUB_OK);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  dub_cache_free(f->cache);
  void *redis = f->redis;
  test_redis_teardown(&redis);
  free(f);
  return 0;
}

/* The answer {word, n} of a script. */
struct answer {
  char word[32];
  long long n;
};

static struct answer eval(struct fixture *f, int argc, const char **argv)
{
  struct dub_cache_reply *r = NULL;
  assert_int_equal(dub_cache_command(f->cache, &r, argc, argv, NULL), DUB_OK);
  assert_int_equal(r->type, DUB_CACHE_ARRAY);
  assert_int_equal(r->count, 2);
  struct answer a = {.n = r->elements[1]->integer};
  snprintf(a.word, sizeof a.word, "%s", r->elements[0]->str);
  dub_cache_reply_free(r);
  return a;
}

static struct answer claim(struct fixture *f)
{
  const char *argv[] = {"EVAL", notification_claim_script, "2", MKEY, KKEY,
                        "1000", "{\"key\":\"k1\"}",        "k1"};
  return eval(f, 8, argv);
}

static struct answer set_state(struct fixture *f, const char *state, const char *expect)
{
  const char *argv[] = {"EVAL", notification_state_script, "1", MKEY, state, "2000",
                        expect};
  return eval(f, expect ? 7 : 6, argv);
}

static void flush(struct fixture *f)
{
  const char *argv[] = {"FLUSHALL"};
  assert_int_equal(dub_cache_command(f->cache, NULL, 1, argv, NULL), DUB_OK);
}

/* A job claimed by two instances before either began sending: both are told "new"
 * (the second cannot tell the first from a crash before its attempt), and the first
 * "sending" wins; the second finds the job taken and sends nothing. */
static void test_two_claims_one_attempt(void **state)
{
  struct fixture *f = *state;
  flush(f);
  struct answer a = claim(f), b = claim(f);
  assert_string_equal(a.word, "new");
  assert_int_equal(a.n, 0);
  assert_string_equal(b.word, "new");
  assert_int_equal(b.n, 0);
  struct answer first = set_state(f, "sending", "0");
  assert_string_equal(first.word, "sending");
  assert_int_equal(first.n, 1);
  struct answer second = set_state(f, "sending", "0");
  assert_string_equal(second.word, "taken");
  /* After the outcome, a later claim sees it. */
  assert_string_equal(set_state(f, "sent", NULL).word, "sent");
  struct answer later = claim(f);
  assert_string_equal(later.word, "sent");
  assert_int_equal(later.n, 1);
}

/* A retry leased by two instances (a lease that ran out under a slow gateway): both
 * read one attempt made; one begins the second attempt, the other finds it taken. */
static void test_two_leases_one_retry(void **state)
{
  struct fixture *f = *state;
  flush(f);
  claim(f);
  assert_string_equal(set_state(f, "sending", "0").word, "sending");
  assert_string_equal(set_state(f, "temporary-failure", NULL).word, "temporary-failure");
  struct answer retry = set_state(f, "sending", "1");
  assert_string_equal(retry.word, "sending");
  assert_int_equal(retry.n, 2);
  assert_string_equal(set_state(f, "sending", "1").word, "taken");
}

/* What the compare-and-set leaves as it was: a delivery report's outcome is never
 * overwritten by "sending", and "sending" without an expected count (the rebuild from
 * state records) is stored as before. */
static void test_reports_and_rebuild_unchanged(void **state)
{
  struct fixture *f = *state;
  flush(f);
  claim(f);
  assert_string_equal(set_state(f, "sending", "0").word, "sending");
  assert_string_equal(set_state(f, "delivered", NULL).word, "delivered");
  assert_string_equal(set_state(f, "sending", "1").word, "delivered");
  assert_string_equal(set_state(f, "sent", NULL).word, "delivered");
  flush(f);
  claim(f);
  assert_string_equal(set_state(f, "sending", NULL).word, "sending");
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_claims_one_attempt),
      cmocka_unit_test(test_two_leases_one_retry),
      cmocka_unit_test(test_reports_and_rebuild_unchanged),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
