/* get_case.c - GET /v1/cases/{case_id}: state, assignee, every moment, escalation
 * level, calendar_provisional and the history of events. */
#include "deadline.h"
#include "lifecycle.h"

#include "http/http.h"
#include "runtime/runtime.h"

#include <stdlib.h>

/* Runs on an HTTP server thread. */
static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  struct deadline *d = dub_runtime_service(ctx);
  json_t *doc = NULL;
  char *key = deadline_case_key(dub_http_request_param(req, "case_id"));
  enum dub_err rc = dub_runtime_cache_get_json(d->rt, key, &doc);
  free(key);
  if(rc == DUB_ERR_NOT_FOUND) {
    dub_http_reply_error(reply, rc, "no case with this id", NULL);
    return DUB_OK;
  }
  if(rc)
    return rc;
  /* The SLA the case keeps and the ids of fired timers are internals. */
  json_object_del(doc, "sla");
  json_object_del(doc, "basis");
  json_object_set_new(doc, "overdue_now",
                      json_boolean(deadline_case_overdue(doc, deadline_now(d))));
  dub_http_reply_json(reply, 200, doc);
  return DUB_OK;
}

const struct dub_http_route deadline_route_get_case = {
    .method = "GET",
    .pattern = "/v1/cases/{case_id}",
    .scope = "cases:read",
    .handler = handle,
};
