/* get_workload.c - GET /v1/units/{unit_id}/workload: open cases per officer of a unit,
 * and those of the unit that wait for manual assignment. */
#include "assignment.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "http/http.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

static long long count_of(const struct dub_cache_reply *r)
{
  char *end = NULL;
  if(!r || r->type != DUB_CACHE_STRING)
    return 0;
  long long v = strtoll(r->str, &end, 10);
  return end && *end == '\0' ? v : 0;
}

/* The answer for 'unit' from the directory and one MGET; *out a new object. */
static enum dub_err workload(struct dub_runtime *rt, const json_t *directory,
                             const char *unit, json_t **out)
{
  const json_t *officers = json_object_get(directory, "officers");
  size_t i, n = 0;
  json_t *o;
  const char **argv = dub_xcalloc(json_array_size(officers) + 2, sizeof *argv);
  json_t *mine = json_array();
  struct dub_cache_reply *r = NULL;
  argv[n++] = "MGET";
  argv[n++] = assignment_manual_key(unit);
  json_array_foreach(officers, i, o)
  {
    const char *home = dub_json_str(o, "unit");
    if(home && strcmp(home, unit) == 0) {
      argv[n++] = assignment_officer_key(dub_json_str(o, "id"));
      json_array_append(mine, o);
    }
  }
  enum dub_err rc = dub_cache_command(dub_runtime_cache(rt), &r, (int)n, argv, NULL);
  if(!rc && (r->type != DUB_CACHE_ARRAY || r->count != n - 1))
    rc = DUB_ERR_UNAVAILABLE;
  if(!rc) {
    json_t *list = json_array();
    long long total = 0;
    json_array_foreach(mine, i, o)
    {
      long long open = count_of(r->elements[i + 1]);
      json_t *entry =
          json_pack("{s:s, s:I, s:O, s:b}", "officer", dub_json_str(o, "id"), "open",
                    (json_int_t)open, "roles", json_object_get(o, "roles"), "active",
                    dub_json_bool(o, "active", true));
      long long cap = 0;
      if(dub_json_int(o, "max_open", &cap))
        json_object_set_new(entry, "max_open", json_integer(cap));
      json_array_append_new(list, entry);
      total += open;
    }
    *out =
        json_pack("{s:s, s:I, s:I, s:o}", "unit", unit, "open", (json_int_t)total,
                  "needs_manual", (json_int_t)count_of(r->elements[0]), "officers", list);
  }
  dub_cache_reply_free(r);
  for(size_t k = 1; k < n; k++)
    free((char *)argv[k]);
  free(argv);
  json_decref(mine);
  return rc;
}

static bool unit_exists(const json_t *directory, const char *unit)
{
  size_t i;
  json_t *u;
  json_array_foreach(json_object_get(directory, "units"), i, u)
  {
    const char *id = dub_json_str(u, "id");
    if(id && strcmp(id, unit) == 0)
      return true;
  }
  return false;
}

static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  const char *unit = dub_http_request_param(req, "unit_id");
  json_t *body = NULL;
  if(assignment_reply_unready(dub_runtime_service(ctx), reply))
    return DUB_OK;
  struct dub_config *config = dub_runtime_config(ctx);
  enum dub_err rc = DUB_ERR_NOT_FOUND;
  if(unit_exists(config->directory, unit))
    rc = workload(ctx, config->directory, unit, &body);
  else
    dub_http_reply_error(reply, DUB_ERR_NOT_FOUND, "no such unit in directory.json",
                         NULL);
  dub_config_unref(config);
  if(!rc)
    dub_http_reply_json(reply, 200, body);
  return rc == DUB_ERR_NOT_FOUND ? DUB_OK : rc;
}

const struct dub_http_route assignment_route_workload = {
    .method = "GET",
    .pattern = "/v1/units/{unit_id}/workload",
    .scope = "cases:read",
    .handler = handle,
};
