/* test_writes.c - a poll's merged writes (services/deadline/writes.c) leave Redis as the
 * same commands sent one at a time do: a seeded random sequence of set, sorted-set,
 * counter and document writes, sent both ways to two databases of a real redis-server,
 * compares equal key by key. */
#include "cache/cache.h"
#include "json/json.h"
#include "redis_server.h"
#include "writes.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#define OPS 4000
#define MEMBERS 900 /* more than DEADLINE_WRITES_CHUNK in one key */

static struct dub_cache *open_db(const struct test_redis *s, int db)
{
  char url[96];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d/%d", s->port, db);
  struct dub_cache *cache = NULL;
  char *why = NULL;
  assert_int_equal(dub_cache_new(url, 500, 5000, &cache, &why), DUB_OK);
  return cache;
}

static void one(struct dub_cache *c, int argc, const char *a0, const char *a1,
                const char *a2, const char *a3)
{
  const char *argv[] = {a0, a1, a2, a3};
  struct dub_cache_reply *reply = NULL;
  assert_int_equal(dub_cache_command(c, &reply, argc, argv, NULL), DUB_OK);
  dub_cache_reply_free(reply);
}

/* The reply of a command, as text: strings, integers and arrays of them. */
static void text_of(const struct dub_cache_reply *r, char *out, size_t size)
{
  size_t len = strlen(out);
  if(r->type == DUB_CACHE_ARRAY) {
    for(size_t i = 0; i < r->count; i++)
      text_of(r->elements[i], out, size);
  } else if(r->type == DUB_CACHE_INT) {
    snprintf(out + len, size - len, "%lld,", r->integer);
  } else if(r->type == DUB_CACHE_NIL) {
    snprintf(out + len, size - len, "nil,");
  } else {
    snprintf(out + len, size - len, "%s,", r->str);
  }
}

static char *ask(struct dub_cache *c, const char *fmt, const char *key)
{
  struct dub_cache_reply *reply = NULL;
  assert_int_equal(dub_cache_commandf(c, &reply, fmt, key), DUB_OK);
  char *out = calloc(1, 1 << 16);
  assert_non_null(out);
  text_of(reply, out, 1 << 16);
  dub_cache_reply_free(reply);
  return out;
}

static void same(struct dub_cache *a, struct dub_cache *b, const char *fmt,
                 const char *key)
{
  char *x = ask(a, fmt, key), *y = ask(b, fmt, key);
  if(strcmp(x, y) != 0)
    fail_msg("%s on %s: one at a time %.200s; merged %.200s", fmt, key, x, y);
  free(x);
  free(y);
}

static void test_merged_equals_one_at_a_time(void **state)
{
  struct test_redis *s = *state;
  struct dub_cache *seq = open_db(s, 1), *merged = open_db(s, 2);
  one(seq, 1, "FLUSHALL", NULL, NULL, NULL);
  struct deadline_writes *w = deadline_writes_new();
  uint64_t x = 20261206;
  char member[16], key[16], num[24], text[32];
  int docs = 0;
  for(int i = 0; i < OPS; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    unsigned r = (unsigned)(x >> 33);
    int kind = (int)(r % 7), k = (int)((r >> 3) % 3);
    snprintf(member, sizeof member, "m%u", (r >> 5) % MEMBERS);
    long long score = (long long)((r >> 7) % 100000) - 50000;
    switch(kind) {
    case 0:
    case 1: /* more adds than removals: keys fill past a chunk */
      snprintf(key, sizeof key, "z%d", k);
      snprintf(num, sizeof num, "%lld", score);
      one(seq, 4, "ZADD", key, num, member);
      deadline_writes_zadd(w, key, score, member);
      break;
    case 2:
      snprintf(key, sizeof key, "z%d", k);
      one(seq, 3, "ZREM", key, member, NULL);
      deadline_writes_zrem(w, key, member);
      break;
    case 3:
      snprintf(key, sizeof key, "s%d", k);
      one(seq, 3, "SADD", key, member, NULL);
      deadline_writes_sadd(w, key, member);
      break;
    case 4:
      snprintf(key, sizeof key, "s%d", k);
      one(seq, 3, "SREM", key, member, NULL);
      deadline_writes_srem(w, key, member);
      break;
    case 5: /* a few fields, +1 and -1: many sums cancel out to 0 */
      snprintf(key, sizeof key, "h%d", k);
      snprintf(member, sizeof member, "f%u", (r >> 5) % 8);
      snprintf(num, sizeof num, "%d", (r >> 9) % 2 ? 1 : -1);
      one(seq, 4, "HINCRBY", key, member, num);
      deadline_writes_hincrby(w, key, member, (r >> 9) % 2 ? 1 : -1);
      break;
    default:
      snprintf(key, sizeof key, "d%u", (r >> 5) % 40);
      if(i % 2) {
        snprintf(text, sizeof text, "doc %d", i);
        one(seq, 3, "SET", key, text, NULL);
        deadline_writes_set(w, key, text);
      } else { /* a document given as JSON: SET as dub_json_dump() writes it */
        json_t *doc = json_pack("{s:i, s:s, s:[i, n]}", "n", i, "s", "督办\n", "a", i);
        char *dumped = dub_json_dump(doc);
        one(seq, 3, "SET", key, dumped, NULL);
        deadline_writes_set_json(w, key, doc);
        free(dumped);
        json_decref(doc);
      }
      docs++;
      break;
    }
  }
  assert_false(deadline_writes_empty(w));
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
  dub_cache_pipeline_add(p, 1, multi, NULL);
  deadline_writes_flush(w, p);
  dub_cache_pipeline_add(p, 1, exec, NULL);
  assert_true(deadline_writes_empty(w));
  /* Far fewer commands than writes: a SET per document given, and otherwise at most an
   * add and a remove per key and chunk (3 sorted sets, 3 sets: 2 chunks each at most)
   * and one per counter field (24), besides MULTI and EXEC. */
  size_t sent = dub_cache_pipeline_count(p);
  if(sent > (size_t)docs + 6 * 2 * 2 + 24 + 2)
    fail_msg("%zu commands for %d writes, %d of them documents", sent, OPS, docs);
  assert_int_equal(dub_cache_pipeline_exec(merged, p, NULL), DUB_OK);
  for(int k = 0; k < 3; k++) {
    snprintf(key, sizeof key, "z%d", k);
    same(seq, merged, "ZRANGE %s 0 -1 WITHSCORES", key);
    snprintf(key, sizeof key, "s%d", k);
    same(seq, merged, "SORT %s ALPHA", key);
    snprintf(key, sizeof key, "h%d", k);
    for(int f = 0; f < 8; f++) {
      char field[64];
      snprintf(field, sizeof field, "HGET %%s f%d", f);
      same(seq, merged, field, key);
    }
    same(seq, merged, "HLEN %s", key);
  }
  for(int d = 0; d < 40; d++) {
    snprintf(key, sizeof key, "d%d", d);
    same(seq, merged, "GET %s", key);
  }
  same(seq, merged, "DBSIZE", NULL);
  /* Flushed, it starts again empty: a second flush adds nothing. */
  dub_cache_pipeline_reset(p);
  deadline_writes_flush(w, p);
  assert_int_equal(dub_cache_pipeline_count(p), 0);
  dub_cache_pipeline_free(p);
  deadline_writes_free(w);
  dub_cache_free(seq);
  dub_cache_free(merged);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_merged_equals_one_at_a_time),
  };
  return cmocka_run_group_tests(tests, test_redis_setup, test_redis_teardown);
}
