/* get_ledger.c - GET /v1/ledger: the ledger (台账) page by page, in case-id (that is,
 * time) order, filtered by unit, state, overdue, category and region. The cursor is the
 * last case id looked at; a page looks at a bounded number of cases, so a page may be
 * short and still have a next cursor. */
#include "deadline.h"
#include "lifecycle.h"

#include "cache/cache.h"
#include "core/alloc.h"
#include "core/env.h"
#include "http/http.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_LIMIT 50
#define MAX_LIMIT 500
#define SCAN_FACTOR 40 /* a page looks at up to SCAN_FACTOR * limit cases */
#define CHUNK 200

struct filter {
  const char *unit, *state, *category, *region;
  int overdue; /* -1 any, 0 not overdue, 1 overdue */
};

/* Ids and unit names go into Redis arguments as they are: letters, digits, . _ - only. */
static bool plain(const char *s)
{
  if(!s || !*s || strlen(s) > 128)
    return false;
  for(; *s; s++)
    if(!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
         (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
      return false;
  return true;
}

static enum dub_err bad(struct dub_http_reply *reply, const char *param, const char *what)
{
  char *pointer = dub_xasprintf("/%s", param);
  dub_http_reply_error(reply, DUB_ERR_SCHEMA, "invalid query parameter",
                       json_pack("[{s:s, s:s}]", "pointer", pointer, "message", what));
  free(pointer);
  return DUB_OK;
}

static bool matches(const json_t *doc, const struct filter *f)
{
  struct deadline_counts c;
  deadline_case_counts(doc, &c);
  if(f->state && (!c.state || strcmp(c.state, f->state) != 0))
    return false;
  if(f->unit && (!c.unit || strcmp(c.unit, f->unit) != 0))
    return false;
  if(f->category && (!c.category || strcmp(c.category, f->category) != 0))
    return false;
  if(f->region && (!c.region || strcmp(c.region, f->region) != 0))
    return false;
  return f->overdue < 0 || (f->overdue == 1) == c.overdue;
}

static json_t *row(const json_t *doc)
{
  static const char *const fields[] = {"case_id",
                                       "title",
                                       "kind",
                                       "category",
                                       "severity",
                                       "region",
                                       "subject_unit",
                                       "unit",
                                       "assignee",
                                       "needs_manual",
                                       "state",
                                       "accept_by",
                                       "due_at",
                                       "warn_at",
                                       "escalation_level",
                                       "calendar_provisional",
                                       "received_at",
                                       "closed_at",
                                       "closed_on_time"};
  struct deadline_counts c;
  json_t *out = json_object();
  for(size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    json_t *v = json_object_get(doc, fields[i]);
    if(v)
      json_object_set(out, fields[i], v);
  }
  deadline_case_counts(doc, &c);
  json_object_set_new(out, "overdue", json_boolean(c.overdue));
  return out;
}

/* Runs on an HTTP server thread. */
static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  struct deadline *d = dub_runtime_service(ctx);
  struct dub_cache *cache = dub_runtime_cache(d->rt);
  struct filter f = {
      .unit = dub_http_request_query(req, "unit"),
      .state = dub_http_request_query(req, "state"),
      .category = dub_http_request_query(req, "category"),
      .region = dub_http_request_query(req, "region"),
      .overdue = -1,
  };
  const char *overdue = dub_http_request_query(req, "overdue");
  const char *cursor = dub_http_request_query(req, "cursor");
  const char *limit_text = dub_http_request_query(req, "limit");
  long limit = DEFAULT_LIMIT;
  if(limit_text && !dub_parse_long(limit_text, 1, MAX_LIMIT, &limit))
    return bad(reply, "limit", "must be a whole number from 1 to 500");
  if(overdue && strcmp(overdue, "true") != 0 && strcmp(overdue, "false") != 0)
    return bad(reply, "overdue", "must be true or false");
  if(overdue)
    f.overdue = strcmp(overdue, "true") == 0;
  if(f.state && !deadline_state_known(f.state))
    return bad(reply, "state", "is not a state of the case lifecycle");
  if(f.unit && !plain(f.unit))
    return bad(reply, "unit", "is not a unit id");
  if(cursor && !plain(cursor))
    return bad(reply, "cursor", "is not a cursor of this ledger");
  if(f.category && !*f.category)
    f.category = NULL;
  if(f.region && !*f.region)
    f.region = NULL;

  char *index = f.unit ? dub_xasprintf("duban:ledger:unit:%s", f.unit)
                       : dub_xstrdup("duban:ledger");
  char *from = cursor ? dub_xasprintf("(%s", cursor) : dub_xstrdup("-");
  json_t *items = json_array();
  char *last = NULL;
  bool exhausted = false;
  long scanned = 0;
  enum dub_err rc = DUB_OK;
  while((long)json_array_size(items) < limit && scanned < SCAN_FACTOR * limit) {
    struct dub_cache_reply *ids = NULL;
    rc = dub_cache_commandf(cache, &ids, "ZRANGEBYLEX %s %s + LIMIT 0 %d", index, from,
                            CHUNK);
    if(rc)
      break;
    if(ids->type != DUB_CACHE_ARRAY || !ids->count) {
      exhausted = true;
      dub_cache_reply_free(ids);
      break;
    }
    struct dub_cache_pipeline *p = dub_cache_pipeline_new();
    struct dub_cache_reply **docs = NULL;
    for(size_t i = 0; i < ids->count; i++) {
      char *key = deadline_case_key(ids->elements[i]->str);
      dub_cache_pipeline_addf(p, "GET %s", key);
      free(key);
    }
    rc = dub_cache_pipeline_exec(cache, p, &docs);
    for(size_t i = 0; !rc && i < ids->count; i++) {
      json_t *doc = NULL;
      char *why = NULL;
      free(last);
      last = dub_xstrdup(ids->elements[i]->str);
      scanned++;
      if(docs[i]->type == DUB_CACHE_STRING &&
         !dub_json_parse(docs[i]->str, docs[i]->len, &doc, &why) && matches(doc, &f))
        json_array_append_new(items, row(doc));
      free(why);
      json_decref(doc);
      if((long)json_array_size(items) == limit) {
        exhausted = i + 1 == ids->count && ids->count < CHUNK;
        break;
      }
      if(i + 1 == ids->count && ids->count < CHUNK)
        exhausted = true;
    }
    if(!rc)
      dub_cache_replies_free(docs, ids->count);
    dub_cache_pipeline_free(p);
    dub_cache_reply_free(ids);
    if(rc || exhausted)
      break;
    free(from);
    from = dub_xasprintf("(%s", last);
  }
  if(!rc)
    dub_http_reply_json(reply, 200,
                        json_pack("{s:o, s:s?, s:i}", "items", json_incref(items),
                                  "next_cursor", exhausted ? NULL : last, "scanned",
                                  (int)scanned));
  json_decref(items);
  free(last);
  free(from);
  free(index);
  return rc;
}

const struct dub_http_route deadline_route_get_ledger = {
    .method = "GET",
    .pattern = "/v1/ledger",
    .scope = "ledger:read",
    .handler = handle,
};
