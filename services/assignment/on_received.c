/* on_received.c - routes each new case and publishes duban.case.assigned. */
#include "assignment.h"
#include "rules.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "json/json.h"
#include "kafka/cloudevent.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

#define CASES_TOPIC "duban.cases"
#define SOURCE "/duban/assignment"
#define PRODUCE_TIMEOUT_MS 10000

char *assignment_key(const char *case_id)
{
  return dub_xasprintf("duban:assignment:{%s}", case_id);
}

static void count(struct assignment *a, const struct assignment_result *r)
{
  const char *outcome = r->needs_manual ? "needs_manual"
                        : r->fallback   ? "fallback"
                                        : "assigned";
  char *labels = dub_xasprintf("rule=\"%s\",unit=\"%s\",outcome=\"%s\"",
                               r->rule_id ? r->rule_id : "fallback",
                               r->unit ? r->unit : "", outcome);
  struct dub_metrics *m = dub_runtime_metrics(a->rt);
  dub_metrics_counter_add(m, "duban_assignment_total",
                          "Assignments by rule, unit and outcome.", labels, 1);
  dub_metrics_counter_add(m, "duban_assignment_recusals_total",
                          "Officers recused from a case.", NULL,
                          (double)json_array_size(r->recused));
  free(labels);
}

/* The data of duban.case.assigned for a first assignment. Returns a new object. */
static json_t *assigned_data(const char *case_id, const struct assignment_result *r,
                             const char *strategy)
{
  char now[DUB_TIME_LEN];
  dub_time_format(dub_time_now_ms(), DUB_SHANGHAI_OFFSET_MIN, now);
  json_t *data = json_pack("{s:s, s:s, s:s, s:O, s:b, s:i, s:s, s:s}", "case_id", case_id,
                           "unit", r->unit, "rule", r->rule_id ? r->rule_id : "fallback",
                           "recused", r->recused, "needs_manual", r->needs_manual,
                           "attempt", 1, "cause", "received", "assigned_at", now);
  json_object_set_new(data, "officer",
                      r->officer ? json_string(r->officer) : json_null());
  if(strategy)
    json_object_set_new(data, "strategy", json_string(strategy));
  return data;
}

static const char *rule_strategy(const json_t *rules, const char *rule_id)
{
  size_t i;
  json_t *rule;
  json_array_foreach(json_object_get(rules, "rules"), i, rule)
  {
    const char *id = dub_json_str(rule, "id");
    if(rule_id && id && strcmp(id, rule_id) == 0)
      return dub_json_str(rule, "strategy");
  }
  return NULL;
}

enum dub_err assignment_on_case_event(void *ctx, const struct dub_kafka_msg *msg,
                                      char **why)
{
  struct assignment *a = ctx;
  struct dub_case_event ev;
  json_t *out = NULL;
  struct dub_config *config = NULL;
  struct assignment_result r = {0};
  char *key = NULL, *id = NULL;
  enum dub_err rc = dub_case_event_decode(msg, &ev, why);
  if(rc)
    return rc;
  if(strcmp(ev.type, "duban.case.received") != 0)
    goto out; /* returns and manual reassignment come with the assignment issue */
  const json_t *data = ev.data;
  const char *case_id = ev.case_id;
  if(!json_is_object(json_object_get(data, "subject"))) {
    *why = dub_xstrdup("duban.case.received without subject");
    rc = DUB_ERR_SCHEMA;
    goto out;
  }
  config = dub_runtime_config(a->rt);
  assignment_choose(config->rules, config->directory, data, &r);
  if(!r.unit) {
    *why = dub_xstrdup("rules.json gives no unit and no fallback_unit");
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  json_t *adata = assigned_data(case_id, &r, rule_strategy(config->rules, r.rule_id));
  /* The same input always yields the same event id, so a redelivery is recognisable. */
  id = dub_xasprintf("%s.assigned.1", case_id);
  out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "specversion", "1.0", "id",
                  id, "source", SOURCE, "type", "duban.case.assigned", "subject", case_id,
                  "time", dub_json_str(adata, "assigned_at"), "datacontenttype",
                  "application/json", "data", adata);
  if(ev.traceparent)
    json_object_set_new(out, "traceparent", json_string(ev.traceparent));
  rc = dub_ce_produce_sync(dub_runtime_producer(a->rt), CASES_TOPIC, case_id, out,
                           PRODUCE_TIMEOUT_MS, NULL, NULL);
  if(rc) {
    json_decref(adata);
    rc = DUB_ERR_UNAVAILABLE; /* retried: the partition waits for Kafka */
    goto out;
  }
  key = assignment_key(case_id);
  rc = dub_runtime_cache_set_json(a->rt, key, adata);
  json_decref(adata);
  if(rc)
    goto out;
  count(a, &r);
  dub_log_at(DUB_LOG_INFO, case_id, ev.traceparent,
             "assigned to unit %s officer %s by rule %s", r.unit,
             r.officer ? r.officer : "(none: needs manual assignment)",
             r.rule_id ? r.rule_id : "fallback");
out:
  assignment_result_release(&r);
  dub_config_unref(config);
  json_decref(out);
  dub_case_event_release(&ev);
  free(key);
  free(id);
  return rc;
}
