/* get_case.c - GET /v1/cases/{case_id}: state, assignee, moments, history. */
#include "deadline.h"

#include "http/http.h"
#include "runtime/runtime.h"

#include <stdlib.h>

static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  char *key = deadline_case_key(dub_http_request_param(req, "case_id"));
  enum dub_err rc = dub_runtime_reply_cached(ctx, key, reply);
  free(key);
  return rc;
}

const struct dub_http_route deadline_route_get_case = {
    .method = "GET",
    .pattern = "/v1/cases/{case_id}",
    .scope = "cases:read",
    .handler = handle,
};
