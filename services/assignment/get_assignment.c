/* get_assignment.c - GET /v1/assignments/{case_id}: unit, officer, rule, recusals. */
#include "assignment.h"

#include "http/http.h"
#include "runtime/runtime.h"

#include <stdlib.h>

static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  char *reason = NULL;
  /* While a rebuild runs, a missing answer would be a wrong 404. */
  if(!assignment_keeper_ready(dub_runtime_service(ctx), &reason)) {
    dub_http_reply_error(reply, DUB_ERR_UNAVAILABLE, reason, NULL);
    free(reason);
    return DUB_OK;
  }
  char *key = assignment_key(dub_http_request_param(req, "case_id"));
  enum dub_err rc = dub_runtime_reply_cached(ctx, key, reply);
  free(key);
  return rc;
}

const struct dub_http_route assignment_route_get = {
    .method = "GET",
    .pattern = "/v1/assignments/{case_id}",
    .scope = "cases:read",
    .handler = handle,
};
