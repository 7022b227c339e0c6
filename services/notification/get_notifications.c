/* get_notifications.c - GET /v1/notifications?case_id=: what became of every message
 * about a case, recipients masked. */
#include "notification.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "http/http.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

static json_t *item(const char *key, struct dub_cache_reply *r)
{
  json_t *job = NULL;
  char *why = NULL;
  if(r->type != DUB_CACHE_ARRAY || r->count != 5 ||
     r->elements[4]->type != DUB_CACHE_STRING ||
     dub_json_parse(r->elements[4]->str, r->elements[4]->len, &job, &why)) {
    free(why);
    return NULL;
  }
  const char *state = r->elements[0]->type == DUB_CACHE_STRING ? r->elements[0]->str : "";
  long long attempts = r->elements[1]->type == DUB_CACHE_STRING
                           ? strtoll(r->elements[1]->str, NULL, 10)
                           : 0;
  long long updated = r->elements[2]->type == DUB_CACHE_STRING
                          ? strtoll(r->elements[2]->str, NULL, 10)
                          : 0;
  json_t *out = json_pack(
      "{s:s, s:O, s:O, s:O, s:O, s:O, s:O, s:s, s:I, s:b, s:I, s:O}", "key", key,
      "channel", json_object_get(job, "channel"), "recipient",
      json_object_get(job, "masked"), "recipient_id",
      json_object_get(job, "recipient_id"), "template", json_object_get(job, "template"),
      "event", json_object_get(job, "event"), "cause", json_object_get(job, "cause"),
      "status", state, "attempts", (json_int_t)attempts, "was_unknown",
      r->elements[3]->type == DUB_CACHE_STRING, "updated_ms", (json_int_t)updated,
      "created_ms", json_object_get(job, "created_at"));
  if(json_object_get(job, "chars")) {
    json_object_set(out, "chars", json_object_get(job, "chars"));
    json_object_set(out, "parts", json_object_get(job, "parts"));
  }
  json_decref(job);
  return out;
}

static int by_created(const void *a, const void *b)
{
  json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "created_ms"));
  json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "created_ms"));
  return x < y ? -1 : x > y;
}

static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  struct dub_runtime *rt = ctx;
  const char *case_id = dub_http_request_query(req, "case_id");
  struct dub_cache_reply *r = NULL, **replies = NULL;
  if(!case_id || !*case_id || strchr(case_id, '{') || strchr(case_id, '}')) {
    dub_http_reply_error(reply, DUB_ERR_MALFORMED, "query parameter case_id is required",
                         NULL);
    return DUB_OK;
  }
  char *kkey = notification_case_keys_key(case_id);
  const char *argv[] = {"SMEMBERS", kkey};
  enum dub_err rc = dub_cache_command(dub_runtime_cache(rt), &r, 2, argv, NULL);
  free(kkey);
  if(rc) {
    dub_cache_reply_free(r);
    return rc == DUB_ERR_INTERNAL ? DUB_ERR_INTERNAL : DUB_ERR_UNAVAILABLE;
  }
  size_t n = r->type == DUB_CACHE_ARRAY ? r->count : 0;
  struct dub_cache_pipeline *p = dub_cache_pipeline_new();
  for(size_t i = 0; i < n; i++) {
    char *mkey = notification_msg_key(case_id, r->elements[i]->str);
    const char *hm[] = {"HMGET",   mkey,          "state", "attempts",
                        "updated", "was_unknown", "job"};
    dub_cache_pipeline_add(p, 7, hm, NULL);
    free(mkey);
  }
  rc = n ? dub_cache_pipeline_exec(dub_runtime_cache(rt), p, &replies) : DUB_OK;
  dub_cache_pipeline_free(p);
  if(rc) {
    dub_cache_reply_free(r);
    return DUB_ERR_UNAVAILABLE;
  }
  json_t **items = dub_xcalloc(n ? n : 1, sizeof *items);
  size_t m = 0;
  for(size_t i = 0; i < n; i++) {
    json_t *it = item(r->elements[i]->str, replies[i]);
    if(it)
      items[m++] = it;
  }
  qsort(items, m, sizeof *items, by_created);
  json_t *arr = json_array();
  for(size_t i = 0; i < m; i++)
    json_array_append_new(arr, items[i]);
  free(items);
  if(n)
    dub_cache_replies_free(replies, n);
  dub_cache_reply_free(r);
  dub_http_reply_json(reply, 200,
                      json_pack("{s:s, s:o}", "case_id", case_id, "notifications", arr));
  return DUB_OK;
}

const struct dub_http_route notification_route_list = {
    .method = "GET",
    .pattern = "/v1/notifications",
    .scope = "notifications:read",
    .handler = handle,
};
