/* on_case_event.c - computes a new case's SLA moments and keeps its document. */
#include "casedoc.h"
#include "deadline.h"

#include "calendar/sla.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "json/json.h"
#include "kafka/cloudevent.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

char *deadline_case_key(const char *case_id)
{
  return dub_xasprintf("duban:case:{%s}", case_id);
}

static enum dub_err start_case(struct deadline *d, const json_t *data, json_t **doc,
                               char **why)
{
  int64_t received_ms, start_ms;
  struct dub_sla_moments m;
  if(dub_time_parse(dub_json_str(data, "received_at"), &received_ms, NULL) ||
     dub_time_parse(dub_json_str(data, "clock_start"), &start_ms, NULL)) {
    *why = dub_xstrdup("received_at or clock_start is not an RFC 3339 time");
    return DUB_ERR_SCHEMA;
  }
  struct dub_config *config = dub_runtime_config(d->rt);
  enum dub_err rc =
      dub_sla_compute(config->sla, config->calendar, dub_json_str(data, "severity"),
                      dub_sla_clock_start(start_ms, received_ms), &m, why);
  dub_config_unref(config);
  if(rc)
    return rc;
  *doc = deadline_casedoc_new(data, &m);
  return DUB_OK;
}

enum dub_err deadline_on_case_event(void *ctx, const struct dub_kafka_msg *msg,
                                    char **why)
{
  struct deadline *d = ctx;
  json_t *event = NULL, *doc = NULL;
  char *key = NULL;
  enum dub_err rc = dub_ce_decode(msg, &event, why);
  if(rc)
    goto out;
  const char *type = dub_json_str(event, "type");
  const json_t *data = json_object_get(event, "data");
  const char *case_id = dub_json_str(data, "case_id");
  if(!case_id) {
    *why = dub_xasprintf("%s without data.case_id", type);
    rc = DUB_ERR_SCHEMA;
    goto out;
  }
  key = deadline_case_key(case_id);
  rc = dub_runtime_cache_get_json(d->rt, key, &doc);
  if(rc == DUB_ERR_NOT_FOUND && strcmp(type, "duban.case.received") == 0)
    rc = start_case(d, data, &doc, why);
  else if(rc == DUB_ERR_NOT_FOUND) {
    *why = dub_xasprintf("%s for a case deadline has not seen", type);
    rc = DUB_ERR_NOT_FOUND;
  }
  if(rc)
    goto out;
  if(deadline_casedoc_has_event(doc, dub_json_str(event, "id")))
    goto out; /* a redelivery: already applied */
  deadline_casedoc_apply(doc, event);
  rc = dub_runtime_cache_set_json(d->rt, key, doc);
  if(!rc)
    dub_log_at(DUB_LOG_INFO, case_id, dub_json_str(event, "traceparent"),
               "%s applied; state %s, due %s", type, dub_json_str(doc, "state"),
               dub_json_str(doc, "due_at"));
out:
  json_decref(doc);
  json_decref(event);
  free(key);
  return rc;
}
