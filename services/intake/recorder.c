/* recorder.c - writes "accepted" records to Redis off the Kafka delivery thread, many
 * per round trip, on a connection of its own, and tells each record's writer when its
 * round trip is over. What it cannot write (Redis away for long) the deduplication
 * index writes from duban.cases later. */
#include "intake.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "core/log.h"
#include "runtime/runtime.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_QUEUED 100000
#define MAX_BATCH 1000

struct record {
  struct record *next;
  char *key;
  char *value; /* NULL: DEL key */
  char *ttl;
  char *case_key;            /* NULL unless a new case */
  bool if_absent;            /* SET ... NX */
  intake_written_fn written; /* NULL once told */
  void *opaque;
};

struct intake_recorder {
  struct dub_cache *cache;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct record *head, *tail;
  size_t queued;
  bool stop;
};

static void record_free(struct record *r)
{
  free(r->key);
  free(r->value);
  free(r->ttl);
  free(r->case_key);
  free(r);
}

/* Tells the writers of a chain that its round trip is over. */
static void tell(struct record *chain)
{
  for(struct record *r = chain; r; r = r->next) {
    if(r->written)
      r->written(r->opaque);
    r->written = NULL;
  }
}

/* Writes a chain of records in one pipeline; DUB_OK or why not. */
static enum dub_err write_chain(struct intake_recorder *rec, struct record *chain)
{
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  for(struct record *r = chain; r; r = r->next) {
    const char *set[] = {"SET", r->key, r->value, "EX", r->ttl};
    const char *set_nx[] = {"SET", r->key, r->value, "NX", "EX", r->ttl};
    const char *del[] = {"DEL", r->key};
    if(r->value && r->if_absent)
      dub_cache_pipeline_add(p, 6, set_nx, NULL);
    else if(r->value)
      dub_cache_pipeline_add(p, 5, set, NULL);
    else
      dub_cache_pipeline_add(p, 2, del, NULL);
    if(r->case_key) {
      const char *mark[] = {"SET", r->case_key, "1"};
      dub_cache_pipeline_add(p, 3, mark, NULL);
    }
  }
  enum dub_err rc = dub_cache_pipeline_exec(rec->cache, p, &replies);
  if(!rc)
    dub_cache_replies_free(replies, dub_cache_pipeline_count(p));
  dub_cache_pipeline_free(p);
  return rc;
}

static void *run(void *arg)
{
  struct intake_recorder *rec = arg;
  pthread_mutex_lock(&rec->lock);
  for(;;) {
    while(!rec->head && !rec->stop)
      pthread_cond_wait(&rec->cond, &rec->lock);
    if(!rec->head && rec->stop)
      break;
    /* Take up to MAX_BATCH records off the queue. */
    struct record *chain = rec->head, *last = chain;
    size_t n = 1;
    while(last->next && n < MAX_BATCH) {
      last = last->next;
      n++;
    }
    rec->head = last->next;
    if(!rec->head)
      rec->tail = NULL;
    last->next = NULL;
    rec->queued -= n;
    bool stopping = rec->stop;
    pthread_mutex_unlock(&rec->lock);

    enum dub_err rc = write_chain(rec, chain);
    /* Written or not, the answers go now: a failed write is retried without them. */
    tell(chain);
    if(rc && !stopping) {
      /* Redis away: put them back in front and wait a little. */
      pthread_mutex_lock(&rec->lock);
      last->next = rec->head;
      rec->head = chain;
      if(!rec->tail)
        rec->tail = last;
      rec->queued += n;
      pthread_mutex_unlock(&rec->lock);
      struct timespec ts = {0, 200 * 1000000L};
      nanosleep(&ts, NULL);
      chain = NULL;
    }
    while(chain) {
      struct record *next = chain->next;
      record_free(chain);
      chain = next;
    }
    pthread_mutex_lock(&rec->lock);
  }
  pthread_mutex_unlock(&rec->lock);
  return NULL;
}

enum dub_err intake_recorder_start(struct intake *in, const char *redis_url, char **why)
{
  struct intake_recorder *rec = dub_xcalloc(1, sizeof *rec);
  enum dub_err rc = dub_cache_new(redis_url, 1000, 1000, &rec->cache, why);
  if(rc) {
    free(rec);
    return rc;
  }
  pthread_mutex_init(&rec->lock, NULL);
  pthread_cond_init(&rec->cond, NULL);
  dub_xthread_create(&rec->thread, run, rec, "recorder");
  in->recorder = rec;
  return DUB_OK;
}

void intake_recorder_stop(struct intake *in)
{
  struct intake_recorder *rec = in->recorder;
  if(!rec)
    return;
  pthread_mutex_lock(&rec->lock);
  rec->stop = true;
  pthread_cond_signal(&rec->cond);
  pthread_mutex_unlock(&rec->lock);
  pthread_join(rec->thread, NULL);
  tell(rec->head);
  while(rec->head) {
    struct record *next = rec->head->next;
    record_free(rec->head);
    rec->head = next;
  }
  dub_cache_free(rec->cache);
  pthread_cond_destroy(&rec->cond);
  pthread_mutex_destroy(&rec->lock);
  free(rec);
  in->recorder = NULL;
}

static struct record *record_new(const char *key, const char *value, const char *ttl,
                                 const char *case_key, intake_written_fn written,
                                 void *opaque)
{
  struct record *r = dub_xcalloc(1, sizeof *r);
  r->key = dub_xstrdup(key);
  r->value = dub_xstrdup(value);
  r->ttl = dub_xstrdup(ttl ? ttl : "0");
  r->case_key = dub_xstrdup(case_key);
  r->written = written;
  r->opaque = opaque;
  return r;
}

static void enqueue(struct intake_recorder *rec, struct record *r);

void intake_recorder_add(struct intake *in, const char *key, const char *value,
                         const char *ttl, const char *case_key, intake_written_fn written,
                         void *opaque)
{
  enqueue(in->recorder, record_new(key, value, ttl, case_key, written, opaque));
}

void intake_recorder_add_if_absent(struct intake *in, const char *key, const char *value,
                                   const char *ttl)
{
  struct record *r = record_new(key, value, ttl, NULL, NULL, NULL);
  r->if_absent = true;
  enqueue(in->recorder, r);
}

static void enqueue(struct intake_recorder *rec, struct record *r)
{
  pthread_mutex_lock(&rec->lock);
  if(rec->queued >= MAX_QUEUED) {
    pthread_mutex_unlock(&rec->lock);
    tell(r);
    /* An accepted record is written by the index from duban.cases; a rejection is
     * not kept (GET /v1/events answers 404 for it). */
    dub_log_warn("record queue full: %s", r->if_absent
                                              ? "a rejection not kept"
                                              : "left to the deduplication index");
    record_free(r);
    return;
  }
  if(rec->tail)
    rec->tail->next = r;
  else
    rec->head = r;
  rec->tail = r;
  rec->queued++;
  pthread_cond_signal(&rec->cond);
  pthread_mutex_unlock(&rec->lock);
}
