/* get_notifications.c - GET /v1/notifications?case_id=: what was sent for a case. */
#include "notification.h"

#include "cache/cache.h"
#include "http/http.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <stdlib.h>

static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  struct dub_runtime *rt = ctx;
  const char *case_id = dub_http_request_query(req, "case_id");
  struct dub_cache_reply *r = NULL;
  if(!case_id || !*case_id) {
    dub_http_reply_error(reply, DUB_ERR_MALFORMED, "query parameter case_id is required",
                         NULL);
    return DUB_OK;
  }
  char *key = notification_records_key(case_id);
  const char *argv[] = {"LRANGE", key, "0", "-1"};
  enum dub_err rc = dub_cache_command(dub_runtime_cache(rt), &r, 4, argv, NULL);
  free(key);
  if(rc) {
    dub_cache_reply_free(r);
    return rc == DUB_ERR_INTERNAL ? DUB_ERR_INTERNAL : DUB_ERR_UNAVAILABLE;
  }
  json_t *items = json_array();
  for(size_t i = 0; r->type == DUB_CACHE_ARRAY && i < r->count; i++) {
    json_t *rec = NULL;
    char *why = NULL;
    if(dub_json_parse(r->elements[i]->str, r->elements[i]->len, &rec, &why) == DUB_OK)
      json_array_append_new(items, rec);
    free(why);
  }
  dub_cache_reply_free(r);
  dub_http_reply_json(
      reply, 200, json_pack("{s:s, s:o}", "case_id", case_id, "notifications", items));
  return DUB_OK;
}

const struct dub_http_route notification_route_list = {
    .method = "GET",
    .pattern = "/v1/notifications",
    .scope = "notifications:read",
    .handler = handle,
};
