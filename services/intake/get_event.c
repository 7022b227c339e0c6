/* get_event.c - GET /v1/events/{source}/{id}: what became of one event. */
#include "accept.h"
#include "intake.h"

#include "core/alloc.h"
#include "http/http.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <stdlib.h>

static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  const char *source = dub_http_request_param(req, "source");
  const char *id = dub_http_request_param(req, "id");
  json_t *rec = NULL;
  /* A publisher sees only the events of its own sources. */
  if(!dub_auth_client_may_use_source(dub_http_request_client(req), source))
    return DUB_ERR_FORBIDDEN;
  char *key = intake_event_key(source, id);
  enum dub_err rc = dub_runtime_cache_get_json(ctx, key, &rec);
  free(key);
  if(rc)
    return rc;
  json_object_set_new(rec, "source", json_string(source));
  json_object_set_new(rec, "id", json_string(id));
  dub_http_reply_json(reply, 200, rec);
  return DUB_OK;
}

const struct dub_http_route intake_route_get_event = {
    .method = "GET",
    .pattern = "/v1/events/{source}/{id}",
    .scope = "events:write",
    .handler = handle,
};
