/* get_stats.c - GET /v1/stats?group_by=unit|category|region: open, overdue, closed on
 * time and closed late per group, and the on-time rate (closed on time over closed),
 * summed over the per-partition counts the consumer keeps. */
#include "deadline.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "http/http.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

static const char *const measures[] = {"open", "overdue", "closed_on_time",
                                       "closed_late"};
#define N_MEASURES (sizeof measures / sizeof measures[0])

/* Adds one hash's fields "<group_by>/<key>/<measure>" to 'groups' {key: {measure: n}}. */
static void add_hash(json_t *groups, const char *group_by,
                     const struct dub_cache_reply *h)
{
  size_t plen = strlen(group_by);
  for(size_t k = 0; h->type == DUB_CACHE_ARRAY && k + 1 < h->count; k += 2) {
    const char *field = h->elements[k]->str;
    if(strncmp(field, group_by, plen) != 0 || field[plen] != '/')
      continue;
    const char *key = field + plen + 1, *slash = strrchr(key, '/');
    if(!slash || slash == key)
      continue;
    char *name = dub_xstrndup(key, (size_t)(slash - key));
    json_t *g = json_object_get(groups, name);
    if(!g) {
      g = json_object();
      for(size_t m = 0; m < N_MEASURES; m++)
        json_object_set_new(g, measures[m], json_integer(0));
      json_object_set_new(groups, name, g);
    }
    json_t *old = json_object_get(g, slash + 1);
    if(old)
      json_integer_set(old, json_integer_value(old) +
                                strtoll(h->elements[k + 1]->str, NULL, 10));
    free(name);
  }
}

/* Runs on an HTTP server thread. */
static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  struct deadline *d = dub_runtime_service(ctx);
  struct dub_cache *cache = dub_runtime_cache(d->rt);
  const char *group_by = dub_http_request_query(req, "group_by");
  if(!group_by)
    group_by = "unit";
  if(strcmp(group_by, "unit") != 0 && strcmp(group_by, "category") != 0 &&
     strcmp(group_by, "region") != 0) {
    dub_http_reply_error(reply, DUB_ERR_SCHEMA, "invalid query parameter",
                         json_pack("[{s:s, s:s}]", "pointer", "/group_by", "message",
                                   "must be unit, category or region"));
    return DUB_OK;
  }
  struct dub_cache_reply *keys = NULL;
  enum dub_err rc = dub_cache_commandf(cache, &keys, "SMEMBERS duban:deadline:stats");
  if(rc)
    return rc;
  json_t *groups = json_object();
  if(keys->type == DUB_CACHE_ARRAY && keys->count) {
    struct dub_cache_pipeline *p = dub_cache_pipeline_new();
    struct dub_cache_reply **hashes = NULL;
    for(size_t i = 0; i < keys->count; i++)
      dub_cache_pipeline_addf(p, "HGETALL %s", keys->elements[i]->str);
    rc = dub_cache_pipeline_exec(cache, p, &hashes);
    for(size_t i = 0; !rc && i < keys->count; i++)
      add_hash(groups, group_by, hashes[i]);
    if(!rc)
      dub_cache_replies_free(hashes, keys->count);
    dub_cache_pipeline_free(p);
  }
  dub_cache_reply_free(keys);
  if(rc) {
    json_decref(groups);
    return rc;
  }
  json_t *list = json_array();
  const char *name;
  json_t *g;
  json_object_foreach(groups, name, g)
  {
    long long on_time = json_integer_value(json_object_get(g, "closed_on_time"));
    long long late = json_integer_value(json_object_get(g, "closed_late"));
    json_t *item = json_pack("{s:s}", "key", name);
    json_object_update(item, g);
    json_object_set_new(item, "on_time_rate",
                        on_time + late
                            ? json_real((double)on_time / (double)(on_time + late))
                            : json_null());
    json_array_append_new(list, item);
  }
  json_decref(groups);
  dub_http_reply_json(reply, 200,
                      json_pack("{s:s, s:o}", "group_by", group_by, "groups", list));
  return DUB_OK;
}

const struct dub_http_route deadline_route_get_stats = {
    .method = "GET",
    .pattern = "/v1/stats",
    .scope = "ledger:read",
    .handler = handle,
};
