/* on_case_event.c - computes a new case's SLA moments and keeps its document. */
#include "casedoc.h"
#include "deadline.h"

#include "calendar/sla.h"
#include "core/alloc.h"
#include "core/log.h"
#include "json/json.h"
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
  struct dub_sla_moments m;
  struct dub_config *config = dub_runtime_config(d->rt);
  enum dub_err rc = dub_sla_compute_case(config->sla, config->calendar, data, &m, why);
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
  struct dub_case_event ev;
  json_t *doc = NULL;
  enum dub_err rc = dub_case_event_decode(msg, &ev, why);
  if(rc)
    return rc;
  char *key = deadline_case_key(ev.case_id);
  rc = dub_runtime_cache_get_json(d->rt, key, &doc);
  if(rc == DUB_ERR_NOT_FOUND && strcmp(ev.type, "duban.case.received") == 0)
    rc = start_case(d, ev.data, &doc, why);
  else if(rc == DUB_ERR_NOT_FOUND)
    *why = dub_xasprintf("%s for a case deadline has not seen", ev.type);
  if(rc)
    goto out;
  if(deadline_casedoc_has_event(doc, ev.id))
    goto out; /* a redelivery: already applied */
  deadline_casedoc_apply(doc, ev.event);
  rc = dub_runtime_cache_set_json(d->rt, key, doc);
  if(!rc)
    dub_log_at(DUB_LOG_INFO, ev.case_id, ev.traceparent, "%s applied; state %s, due %s",
               ev.type, dub_json_str(doc, "state"), dub_json_str(doc, "due_at"));
out:
  json_decref(doc);
  dub_case_event_release(&ev);
  free(key);
  return rc;
}
