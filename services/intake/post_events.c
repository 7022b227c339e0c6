/* post_events.c - POST /v1/events: one CloudEvent, or a batch of them, answered only
 * after Kafka acknowledged what was accepted. */
#include "accept.h"
#include "intake.h"

#include "core/alloc.h"
#include "http/http.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BATCH_TYPE "application/cloudevents-batch+json"
#define BATCH_MAX_EVENTS 500
#define SINGLE_MAX_BODY (1024 * 1024)
#define BATCH_MAX_BODY (5 * 1024 * 1024)

/* A single event waiting for its result. */
struct single {
  struct dub_http_pending *pending;
  char *event_id;
};

/* Runs on the request's thread or the producer's poll thread. */
static void single_done(void *opaque, struct intake_result *r)
{
  struct single *s = opaque;
  if(r->err) {
    dub_http_pending_error(s->pending, r->err, r->message, r->details);
    r->details = NULL;
  } else {
    dub_http_pending_json(s->pending, r->duplicate ? 200 : 202,
                          intake_result_json(r, s->event_id));
  }
  free(s->event_id);
  free(s);
}

/* A batch waiting for the last of its results. */
struct batch {
  pthread_mutex_t lock;
  struct dub_http_pending *pending;
  json_t *results;
  size_t remaining;
};

struct batch_item {
  struct batch *batch;
  size_t index;
  char *event_id;
};

/* Runs on the request's thread or the producer's poll thread. */
static void item_done(void *opaque, struct intake_result *r)
{
  struct batch_item *item = opaque;
  struct batch *b = item->batch;
  json_t *res =
      json_pack("{s:I, s:s?}", "index", (json_int_t)item->index, "id", item->event_id);
  if(r->err) {
    json_object_set_new(res, "status", json_string("rejected"));
    json_t *body = intake_result_json(r, item->event_id);
    json_object_set(res, "error", json_object_get(body, "error"));
    json_decref(body);
  } else {
    json_object_set_new(res, "case_id", json_string(r->case_id));
    json_object_set_new(res, "status",
                        json_string(r->duplicate ? "duplicate" : "accepted"));
  }
  pthread_mutex_lock(&b->lock);
  json_array_set_new(b->results, item->index, res);
  bool last = --b->remaining == 0;
  pthread_mutex_unlock(&b->lock);
  free(item->event_id);
  free(item);
  if(last) {
    dub_http_pending_json(b->pending, 207, json_pack("{s:o}", "results", b->results));
    pthread_mutex_destroy(&b->lock);
    free(b);
  }
}

static enum dub_err post_batch(struct intake *in, struct dub_http_request *req,
                               struct dub_http_reply *reply, json_t *events)
{
  size_t n = json_array_size(events);
  if(!json_is_array(events)) {
    dub_http_reply_error(reply, DUB_ERR_MALFORMED, "a batch is a JSON array of events",
                         NULL);
    return DUB_OK;
  }
  if(n == 0 || n > BATCH_MAX_EVENTS) {
    char *msg =
        dub_xasprintf("a batch holds 1 to %d events, not %zu", BATCH_MAX_EVENTS, n);
    dub_http_reply_error(reply, n ? DUB_ERR_TOO_LARGE : DUB_ERR_SCHEMA, msg, NULL);
    free(msg);
    return DUB_OK;
  }
  struct batch *b = dub_xcalloc(1, sizeof *b);
  pthread_mutex_init(&b->lock, NULL);
  b->results = json_array();
  for(size_t i = 0; i < n; i++)
    json_array_append_new(b->results, json_null());
  b->remaining = n;
  b->pending = dub_http_reply_defer(reply);
  const struct dub_auth_client *client = dub_http_request_client(req);
  json_t **list = dub_xcalloc(n, sizeof *list);
  void **items = dub_xcalloc(n, sizeof *items);
  for(size_t i = 0; i < n; i++) {
    struct batch_item *item = dub_xcalloc(1, sizeof *item);
    list[i] = json_array_get(events, i);
    item->batch = b;
    item->index = i;
    item->event_id = dub_xstrdup(dub_json_str(list[i], "id"));
    items[i] = item;
  }
  /* After this call 'b' may be gone: the last result frees it. */
  intake_accept_many(in, list, n, client, dub_auth_client_id(client), item_done, items);
  free(items);
  free(list);
  return DUB_OK;
}

static bool is_batch(struct dub_http_request *req)
{
  const char *type = dub_http_request_header(req, "Content-Type");
  size_t len = strlen(BATCH_TYPE);
  return type && strncasecmp(type, BATCH_TYPE, len) == 0 &&
         (type[len] == '\0' || type[len] == ';' || type[len] == ' ');
}

static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  struct intake *in = dub_runtime_service(ctx);
  json_t *event = NULL;
  char *why = NULL;
  size_t len;
  const char *body = dub_http_request_body(req, &len);
  bool batch = is_batch(req);
  if(!batch && len > SINGLE_MAX_BODY) {
    dub_http_reply_error(reply, DUB_ERR_TOO_LARGE,
                         "a single event is at most 1 MiB; send "
                         "larger sets as a batch",
                         NULL);
    return DUB_OK;
  }
  if(dub_json_parse(body, len, &event, &why)) {
    dub_http_reply_error(reply, DUB_ERR_MALFORMED, why, NULL);
    free(why);
    return DUB_OK;
  }
  if(batch) {
    post_batch(in, req, reply, event);
  } else {
    struct single *s = dub_xcalloc(1, sizeof *s);
    s->event_id = dub_xstrdup(dub_json_str(event, "id"));
    s->pending = dub_http_reply_defer(reply);
    const struct dub_auth_client *client = dub_http_request_client(req);
    intake_accept(in, event, client, dub_auth_client_id(client), single_done, s);
  }
  json_decref(event);
  return DUB_OK;
}

static const char *const media[] = {"application/cloudevents+json", "application/json",
                                    BATCH_TYPE, NULL};

const struct dub_http_route intake_route_post_events = {
    .method = "POST",
    .pattern = "/v1/events",
    .scope = "events:write",
    .media = media,
    .max_body = BATCH_MAX_BODY,
    .handler = handle,
};
