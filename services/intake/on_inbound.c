/* on_inbound.c - events that publishers write straight to duban.inbound take the same
 * path as POST /v1/events; what cannot be accepted goes to duban.dlq with its reason. */
#include "accept.h"
#include "intake.h"

#include "core/alloc.h"
#include "kafka/cloudevent.h"
#include "kafka/kafka.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The result of one event, handed from whichever thread settles it. */
struct waiter {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool done;
  enum dub_err err;
  char *message;
};

/* Runs on the consumer's thread or the producer's poll thread. */
static void done(void *opaque, struct intake_result *r)
{
  struct waiter *w = opaque;
  pthread_mutex_lock(&w->lock);
  w->err = r->err;
  w->message = r->message ? dub_xstrdup(r->message) : NULL;
  w->done = true;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

enum dub_err intake_on_inbound(void *ctx, const struct dub_kafka_msg *msg, char **why)
{
  struct intake *in = ctx;
  json_t *event = NULL;
  enum dub_err rc = dub_ce_decode(msg, &event, why);
  if(rc)
    return rc; /* dead-lettered with the decoder's reason */
  struct waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  intake_accept(in, event, NULL, NULL, done, &w);
  pthread_mutex_lock(&w.lock);
  while(!w.done)
    pthread_cond_wait(&w.cond, &w.lock);
  pthread_mutex_unlock(&w.lock);
  json_decref(event);
  rc = w.err;
  /* Another writer holding the event's claim settles soon: come back to it. */
  if(rc == DUB_ERR_CONFLICT)
    rc = DUB_ERR_UNAVAILABLE;
  if(rc && rc != DUB_ERR_UNAVAILABLE)
    *why = w.message ? w.message : dub_xstrdup(dub_err_message(rc));
  else
    free(w.message);
  pthread_cond_destroy(&w.cond);
  pthread_mutex_destroy(&w.lock);
  return rc;
}
