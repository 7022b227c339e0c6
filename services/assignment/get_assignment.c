/* get_assignment.c - GET /v1/assignments/{case_id}: unit, officer, rule, recusals. */
#include "assignment.h"
#include "casestate.h"

#include "cache/cache.h"
#include "core/log.h"
#include "http/http.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <stdlib.h>

/* The answer from the case's state (casestate.h); DUB_ERR_NOT_FOUND when the case is
 * unknown or not assigned yet. */
static enum dub_err answer(struct dub_runtime *rt, const char *case_id, json_t **out)
{
  struct dub_cache_reply *r = NULL;
  json_t *state = NULL;
  char *why = NULL;
  char *key = assignment_state_key(case_id);
  const char *argv[] = {"HGET", key, "doc"};
  enum dub_err rc = dub_cache_command(dub_runtime_cache(rt), &r, 3, argv, NULL);
  if(!rc && r->type != DUB_CACHE_STRING)
    rc = DUB_ERR_NOT_FOUND;
  if(!rc && dub_json_parse(r->str, r->len, &state, &why)) {
    dub_log_at(DUB_LOG_ERROR, case_id, NULL, "stored assignment state is broken: %s",
               why);
    rc = DUB_ERR_INTERNAL;
  }
  if(!rc && !(*out = assignment_state_public(state)))
    rc = DUB_ERR_NOT_FOUND;
  json_decref(state);
  dub_cache_reply_free(r);
  free(why);
  free(key);
  return rc;
}

static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  json_t *body = NULL;
  if(assignment_reply_unready(dub_runtime_service(ctx), reply))
    return DUB_OK;
  enum dub_err rc = answer(ctx, dub_http_request_param(req, "case_id"), &body);
  if(!rc)
    dub_http_reply_json(reply, 200, body);
  return rc;
}

const struct dub_http_route assignment_route_get = {
    .method = "GET",
    .pattern = "/v1/assignments/{case_id}",
    .scope = "cases:read",
    .handler = handle,
};
