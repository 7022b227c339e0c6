/* on_inbound.c - events that publishers write straight to duban.inbound take the same
 * path as POST /v1/events, many at a time; what cannot be accepted goes to duban.dlq
 * with its reason. */
#include "accept.h"
#include "intake.h"

#include "core/alloc.h"
#include "kafka/cloudevent.h"
#include "kafka/kafka.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The results of one batch, filled from whichever thread settles each event. */
struct waiter {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  size_t remaining;
};

struct slot {
  struct waiter *w;
  enum dub_err *result;
  char **why;
};

/* Runs on the consumer's thread or the producer's poll thread. */
static void done(void *opaque, struct intake_result *r)
{
  struct slot *s = opaque;
  enum dub_err rc = r->err;
  /* Another writer holding the event's claim settles soon: come back to it. */
  if(rc == DUB_ERR_CONFLICT)
    rc = DUB_ERR_UNAVAILABLE;
  *s->result = rc;
  if(rc && rc != DUB_ERR_UNAVAILABLE)
    *s->why = dub_xstrdup(r->message ? r->message : dub_err_message(rc));
  pthread_mutex_lock(&s->w->lock);
  if(--s->w->remaining == 0)
    pthread_cond_signal(&s->w->cond);
  pthread_mutex_unlock(&s->w->lock);
}

void intake_on_inbound(void *ctx, const struct dub_kafka_msg *msgs, size_t n,
                       enum dub_err *results, char **whys)
{
  struct intake *in = ctx;
  struct waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER,
                     .cond = PTHREAD_COND_INITIALIZER,
                     .remaining = n};
  struct slot *slots = dub_xcalloc(n, sizeof *slots);
  json_t **events = dub_xcalloc(n, sizeof *events);
  void **opaques = dub_xcalloc(n, sizeof *opaques);
  size_t m = 0;
  for(size_t i = 0; i < n; i++) {
    json_t *event = NULL;
    slots[i] = (struct slot){&w, &results[i], &whys[i]};
    results[i] = dub_ce_decode(&msgs[i], &event, &whys[i]);
    if(results[i]) {
      pthread_mutex_lock(&w.lock);
      w.remaining--;
      pthread_mutex_unlock(&w.lock);
      continue; /* dead-lettered with the decoder's reason */
    }
    events[m] = event;
    opaques[m++] = &slots[i];
  }
  if(m)
    intake_accept_many(in, events, m, NULL, NULL, done, opaques);
  for(size_t i = 0; i < m; i++)
    json_decref(events[i]);
  free(opaques);
  free(events);
  /* Every write is in flight together; wait for the last acknowledgement. */
  pthread_mutex_lock(&w.lock);
  while(w.remaining)
    pthread_cond_wait(&w.cond, &w.lock);
  pthread_mutex_unlock(&w.lock);
  pthread_cond_destroy(&w.cond);
  pthread_mutex_destroy(&w.lock);
  free(slots);
}
