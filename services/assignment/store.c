/* store.c - Redis keys and round trips of the assignment consumer. */
#include "store.h"

#include "assignment.h"

#include "core/alloc.h"
#include "core/log.h"
#include "json/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *assignment_state_key(const char *case_id)
{
  return dub_xasprintf("duban:assignment:state:{%s}", case_id);
}

char *assignment_officer_key(const char *officer)
{
  return dub_xasprintf("duban:workload:officer:{%s}", officer);
}

char *assignment_manual_key(const char *unit)
{
  return dub_xasprintf("duban:workload:manual:{%s}", unit);
}

static char *rr_key(const char *unit)
{
  return dub_xasprintf("duban:assignment:rr:{%s}", unit);
}

/* KEYS: the complete marker, the case's state hash, then up to two workload counters.
 * ARGV: the expected seq, the new state, then one delta per counter. Refuses (-2) while
 * the marker is missing, so nothing is written into a keyspace that a rebuild is about
 * to replace, and (-1) when another writer moved the state on; otherwise returns the
 * new seq. Touches one case's keys and the counters of the officers or units that hold
 * it. */
static const char commit_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end\n"
    "local seq = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')\n"
    "if seq ~= tonumber(ARGV[1]) then return -1 end\n"
    "redis.call('HSET', KEYS[2], 'seq', seq + 1, 'doc', ARGV[2])\n"
    "for i = 3, #KEYS do redis.call('INCRBY', KEYS[i], ARGV[i]) end\n"
    "return seq + 1\n";

enum dub_err assignment_store_load_script(struct dub_cache *cache, char *sha)
{
  struct dub_cache_reply *r = NULL;
  const char *argv[] = {"SCRIPT", "LOAD", commit_script};
  enum dub_err rc = dub_cache_command(cache, &r, 3, argv, NULL);
  if(!rc && (r->type != DUB_CACHE_STRING || r->len > 40))
    rc = DUB_ERR_INTERNAL;
  if(!rc)
    memcpy(sha, r->str, r->len + 1);
  dub_cache_reply_free(r);
  return rc;
}

static bool parse_ll(const struct dub_cache_reply *r, long long *out)
{
  char *end = NULL;
  if(!r || r->type != DUB_CACHE_STRING)
    return false;
  *out = strtoll(r->str, &end, 10);
  return end && *end == '\0' && end != r->str;
}

enum dub_err assignment_store_load(struct dub_cache *cache, const char *const *case_ids,
                                   size_t n, struct assignment_stored *out)
{
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  enum dub_err rc = DUB_OK;
  memset(out, 0, n * sizeof *out);
  for(size_t i = 0; i < n; i++) {
    char *key = assignment_state_key(case_ids[i]);
    const char *argv[] = {"HMGET", key, "seq", "doc", "published"};
    dub_cache_pipeline_add(p, 5, argv, NULL);
    free(key);
  }
  if(n)
    rc = dub_cache_pipeline_exec(cache, p, &replies);
  for(size_t i = 0; !rc && i < n; i++) {
    const struct dub_cache_reply *r = replies[i];
    char *why = NULL;
    if(r->type != DUB_CACHE_ARRAY || r->count != 3) {
      rc = r->type == DUB_CACHE_ERROR ? DUB_ERR_UNAVAILABLE : DUB_ERR_INTERNAL;
      break;
    }
    if(r->elements[1]->type != DUB_CACHE_STRING)
      continue; /* no state yet */
    if(!parse_ll(r->elements[2], &out[i].published))
      out[i].published = 0;
    if(!parse_ll(r->elements[0], &out[i].seq) ||
       dub_json_parse(r->elements[1]->str, r->elements[1]->len, &out[i].state, &why)) {
      dub_log_at(DUB_LOG_ERROR, case_ids[i], NULL,
                 "stored assignment state is broken: %s", why ? why : "bad seq");
      free(why);
      rc = DUB_ERR_INTERNAL;
    }
  }
  if(replies)
    dub_cache_replies_free(replies, n);
  dub_cache_pipeline_free(p);
  if(rc) {
    for(size_t i = 0; i < n; i++) {
      json_decref(out[i].state);
      out[i].state = NULL;
    }
  }
  return rc;
}

enum dub_err assignment_store_prepare(struct dub_cache *cache,
                                      const struct assignment_model *m, const bool *want,
                                      const unsigned *count, long long *load,
                                      unsigned long long *first)
{
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  enum dub_err rc = DUB_OK;
  for(size_t u = 0; u < m->nunits; u++) {
    const struct assignment_unit *unit = &m->units[u];
    if(want[u] && unit->nmembers) {
      const char **argv = dub_xcalloc(unit->nmembers + 1, sizeof *argv);
      argv[0] = "MGET";
      for(size_t k = 0; k < unit->nmembers; k++)
        argv[k + 1] = assignment_officer_key(m->officers[unit->members[k]].id);
      dub_cache_pipeline_add(p, (int)unit->nmembers + 1, argv, NULL);
      for(size_t k = 0; k < unit->nmembers; k++)
        free((char *)argv[k + 1]);
      free(argv);
    }
    if(count[u]) {
      char *key = rr_key(unit->id);
      char by[24];
      snprintf(by, sizeof by, "%u", count[u]);
      const char *argv[] = {"INCRBY", key, by};
      dub_cache_pipeline_add(p, 3, argv, NULL);
      free(key);
    }
  }
  size_t n = dub_cache_pipeline_count(p);
  if(!n) {
    dub_cache_pipeline_free(p);
    return DUB_OK; /* everything was there already */
  }
  rc = dub_cache_pipeline_exec(cache, p, &replies);
  for(size_t u = 0, i = 0; !rc && u < m->nunits; u++) {
    const struct assignment_unit *unit = &m->units[u];
    if(want[u] && unit->nmembers) {
      const struct dub_cache_reply *r = replies[i++];
      if(r->type != DUB_CACHE_ARRAY || r->count != unit->nmembers) {
        rc = DUB_ERR_UNAVAILABLE;
        break;
      }
      for(size_t k = 0; k < unit->nmembers; k++) {
        long long v = 0;
        load[unit->members[k]] = parse_ll(r->elements[k], &v) ? v : 0;
      }
    }
    if(count[u]) {
      const struct dub_cache_reply *r = replies[i++];
      if(r->type != DUB_CACHE_INT) {
        rc = DUB_ERR_UNAVAILABLE;
        break;
      }
      first[u] = (unsigned long long)(r->integer - (long long)count[u]);
    }
  }
  if(replies)
    dub_cache_replies_free(replies, n);
  dub_cache_pipeline_free(p);
  return rc;
}

void assignment_store_commit_add(struct dub_cache_pipeline *pipeline, const char *sha,
                                 const struct assignment_commit *c)
{
  char *state_key = assignment_state_key(c->case_id);
  char *state = dub_json_dump(c->state);
  char nkeys[8], seq[24], deltas[2][24];
  snprintf(nkeys, sizeof nkeys, "%zu", 2 + c->ncounters);
  snprintf(seq, sizeof seq, "%lld", c->seq);
  const char *argv[11] = {"EVALSHA", sha, nkeys, ASSIGNMENT_COMPLETE_KEY, state_key};
  int argc = 5;
  for(size_t i = 0; i < c->ncounters; i++)
    argv[argc++] = c->keys[i];
  argv[argc++] = seq;
  argv[argc++] = state;
  for(size_t i = 0; i < c->ncounters; i++) {
    snprintf(deltas[i], sizeof deltas[i], "%lld", c->deltas[i]);
    argv[argc++] = deltas[i];
  }
  dub_cache_pipeline_add(pipeline, argc, argv, NULL);
  free(state_key);
  free(state);
}

void assignment_store_published_add(struct dub_cache_pipeline *pipeline,
                                    const char *case_id, long long attempt)
{
  char *key = assignment_state_key(case_id);
  char n[24];
  snprintf(n, sizeof n, "%lld", attempt);
  const char *argv[] = {"HSET", key, "published", n};
  dub_cache_pipeline_add(pipeline, 4, argv, NULL);
  free(key);
}

enum dub_err assignment_store_commit_result(const struct dub_cache_reply *r,
                                            bool *rebuild, bool *noscript)
{
  if(r->type == DUB_CACHE_INT && r->integer > 0)
    return DUB_OK;
  if(r->type == DUB_CACHE_INT && r->integer == -1)
    return DUB_ERR_CONFLICT;
  if(r->type == DUB_CACHE_INT && r->integer == -2)
    *rebuild = true;
  else if(r->type == DUB_CACHE_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
    *noscript = true;
  else
    dub_log_error("assignment commit failed: %s",
                  r->type == DUB_CACHE_ERROR ? r->str : "unexpected reply");
  return DUB_ERR_UNAVAILABLE;
}
