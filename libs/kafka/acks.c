/* acks.c - ack groups: waiting for delivery reports without outliving them. */
#include "kafka/kafka.h"

#include "core/alloc.h"
#include "core/time.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct dub_kafka_acks {
  pthread_mutex_t m;
  pthread_cond_t c; /* on CLOCK_MONOTONIC */
  size_t refs;      /* the caller's and one per counted message still out */
  size_t pending;   /* counted messages still out */
  bool failed;
};

struct dub_kafka_acks *dub_kafka_acks_new(void)
{
  struct dub_kafka_acks *a = dub_xcalloc(1, sizeof *a);
  pthread_condattr_t attr;
  pthread_mutex_init(&a->m, NULL);
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&a->c, &attr);
  pthread_condattr_destroy(&attr);
  a->refs = 1;
  return a;
}

static void unref_unlock(struct dub_kafka_acks *a)
{
  bool last = --a->refs == 0;
  pthread_mutex_unlock(&a->m);
  if(last) {
    pthread_cond_destroy(&a->c);
    pthread_mutex_destroy(&a->m);
    free(a);
  }
}

void dub_kafka_acks_add(struct dub_kafka_acks *a)
{
  pthread_mutex_lock(&a->m);
  a->refs++;
  a->pending++;
  pthread_mutex_unlock(&a->m);
}

static void settle(struct dub_kafka_acks *a, bool failed)
{
  pthread_mutex_lock(&a->m);
  a->pending--;
  a->failed |= failed;
  if(!a->pending)
    pthread_cond_broadcast(&a->c);
  unref_unlock(a);
}

void dub_kafka_acks_report(void *opaque, enum dub_err err, int32_t partition,
                           int64_t offset)
{
  (void)partition;
  (void)offset;
  settle(opaque, err != DUB_OK);
}

void dub_kafka_acks_cancel(struct dub_kafka_acks *a)
{
  settle(a, true);
}

enum dub_err dub_kafka_acks_wait(struct dub_kafka_acks *a, int timeout_ms)
{
  const struct timespec until = dub_time_mono_after(timeout_ms);
  pthread_mutex_lock(&a->m);
  while(a->pending && pthread_cond_timedwait(&a->c, &a->m, &until) != ETIMEDOUT)
    ;
  enum dub_err rc = a->pending  ? DUB_ERR_TIMEOUT
                    : a->failed ? DUB_ERR_UNAVAILABLE
                                : DUB_OK;
  pthread_mutex_unlock(&a->m);
  return rc;
}

void dub_kafka_acks_release(struct dub_kafka_acks *a)
{
  if(!a)
    return;
  pthread_mutex_lock(&a->m);
  unref_unlock(a);
}
