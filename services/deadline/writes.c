/* writes.c - a poll's writes merged by key (see writes.h). The maps are Jansson
 * objects: members and fields are the keys, what happens to them the values. */
#include "writes.h"

#include "core/alloc.h"
#include "core/log.h"
#include "json/json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct deadline_writes {
  json_t *zsets;                   /* key -> {member -> score, or null: removed} */
  json_t *sets;                    /* key -> {member -> true: added, false: removed} */
  json_t *counts;                  /* key -> {field -> sum of the increments} */
  struct dub_cache_pipeline *docs; /* the SETs, in order */
  size_t ndocs;
  struct dub_buf text; /* a document as it is serialised, kept from one to the next */
};

/* Jansson returns NULL when memory runs out; so does nothing here. */
static void oom(void)
{
  dub_log_fatal("deadline: out of memory merging a poll's writes");
  abort();
}

struct deadline_writes *deadline_writes_new(void)
{
  struct deadline_writes *w = dub_xcalloc(1, sizeof *w);
  w->zsets = json_object();
  w->sets = json_object();
  w->counts = json_object();
  w->docs = dub_cache_pipeline_new();
  if(!w->zsets || !w->sets || !w->counts)
    oom();
  return w;
}

void deadline_writes_free(struct deadline_writes *w)
{
  if(!w)
    return;
  json_decref(w->zsets);
  json_decref(w->sets);
  json_decref(w->counts);
  dub_cache_pipeline_free(w->docs);
  dub_buf_release(&w->text);
  free(w);
}

/* The map of 'key' in 'maps', made when missing. */
static json_t *map_of(json_t *maps, const char *key)
{
  json_t *m = json_object_get(maps, key);
  if(!m) {
    m = json_object();
    if(!m || json_object_set_new_nocheck(maps, key, m))
      oom();
  }
  return m;
}

static void put(json_t *maps, const char *key, const char *member, json_t *value)
{
  if(!value || json_object_set_new_nocheck(map_of(maps, key), member, value))
    oom();
}

void deadline_writes_zadd(struct deadline_writes *w, const char *key, int64_t score,
                          const char *member)
{
  put(w->zsets, key, member, json_integer((json_int_t)score));
}

void deadline_writes_zrem(struct deadline_writes *w, const char *key, const char *member)
{
  put(w->zsets, key, member, json_null());
}

void deadline_writes_sadd(struct deadline_writes *w, const char *key, const char *member)
{
  put(w->sets, key, member, json_true());
}

void deadline_writes_srem(struct deadline_writes *w, const char *key, const char *member)
{
  put(w->sets, key, member, json_false());
}

void deadline_writes_hincrby(struct deadline_writes *w, const char *key,
                             const char *field, long long by)
{
  json_t *m = map_of(w->counts, key);
  json_t *sum = json_object_get(m, field);
  if(sum)
    json_integer_set(sum, json_integer_value(sum) + by);
  else
    put(w->counts, key, field, json_integer(by));
}

void deadline_writes_set(struct deadline_writes *w, const char *key, const char *text)
{
  const char *argv[] = {"SET", key, text};
  dub_cache_pipeline_add(w->docs, 3, argv, NULL);
  w->ndocs++;
}

void deadline_writes_set_json(struct deadline_writes *w, const char *key,
                              const json_t *doc)
{
  dub_buf_reset(&w->text);
  dub_json_dump_buf(doc, &w->text);
  const char *argv[] = {"SET", key, w->text.data};
  const size_t lens[] = {3, strlen(key), w->text.len};
  dub_cache_pipeline_add(w->docs, 3, argv, lens);
  w->ndocs++;
}

bool deadline_writes_empty(const struct deadline_writes *w)
{
  return w->ndocs == 0 && json_object_size(w->zsets) == 0 &&
         json_object_size(w->sets) == 0 && json_object_size(w->counts) == 0;
}

/* One command's arguments, gathered up to a chunk of members. */
struct command {
  const char *argv[2 + 2 * DEADLINE_WRITES_CHUNK];
  char scores[DEADLINE_WRITES_CHUNK][24];
  int argc, members;
};

static void start(struct command *c, const char *name, const char *key)
{
  c->argv[0] = name;
  c->argv[1] = key;
  c->argc = 2;
  c->members = 0;
}

static void finish(struct command *c, struct dub_cache_pipeline *p)
{
  if(c->members)
    dub_cache_pipeline_add(p, c->argc, c->argv, NULL);
  c->argc = 2;
  c->members = 0;
}

/* Adds 'member' (after its score, when 'score' is not NULL); sends a full chunk. */
static void member(struct command *c, struct dub_cache_pipeline *p, const json_t *score,
                   const char *name)
{
  if(score) {
    snprintf(c->scores[c->members], sizeof c->scores[0], "%lld",
             (long long)json_integer_value(score));
    c->argv[c->argc++] = c->scores[c->members];
  }
  c->argv[c->argc++] = name;
  if(++c->members == DEADLINE_WRITES_CHUNK)
    finish(c, p);
}

/* Sends 'name' 'key' with each member of 'm' whose value is of type 'want' (after its
 * score when 'want' is JSON_INTEGER), a chunk of them per command. */
static void send_members(struct command *c, struct dub_cache_pipeline *p,
                         const char *name, const char *key, json_t *m, json_type want)
{
  const char *member_name;
  json_t *v;
  start(c, name, key);
  json_object_foreach(m, member_name, v)
  {
    if(json_typeof(v) == want)
      member(c, p, want == JSON_INTEGER ? v : NULL, member_name);
  }
  finish(c, p);
}

void deadline_writes_flush(struct deadline_writes *w, struct dub_cache_pipeline *p)
{
  struct command *c = dub_xcalloc(1, sizeof *c);
  const char *key, *name;
  json_t *m, *v;
  json_object_foreach(w->zsets, key, m)
  {
    send_members(c, p, "ZADD", key, m, JSON_INTEGER);
    send_members(c, p, "ZREM", key, m, JSON_NULL);
  }
  json_object_foreach(w->sets, key, m)
  {
    send_members(c, p, "SADD", key, m, JSON_TRUE);
    send_members(c, p, "SREM", key, m, JSON_FALSE);
  }
  json_object_foreach(w->counts, key, m)
  {
    json_object_foreach(m, name, v)
    {
      /* Sent even when the poll's changes cancelled out: the field then exists with 0,
       * as after the commands one by one. */
      char by[24];
      snprintf(by, sizeof by, "%lld", (long long)json_integer_value(v));
      const char *argv[] = {"HINCRBY", key, name, by};
      dub_cache_pipeline_add(p, 4, argv, NULL);
    }
  }
  free(c);
  dub_cache_pipeline_append(p, w->docs);
  deadline_writes_clear(w);
}

void deadline_writes_clear(struct deadline_writes *w)
{
  dub_cache_pipeline_reset(w->docs);
  w->ndocs = 0;
  json_object_clear(w->zsets);
  json_object_clear(w->sets);
  json_object_clear(w->counts);
}
