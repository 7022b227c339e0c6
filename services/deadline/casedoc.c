/* casedoc.c - the case document: identity, moments, assignee and history. */
#include "casedoc.h"

#include "calendar/sla.h"
#include "core/time.h"
#include "json/json.h"

#include <string.h>

static json_t *instant(int64_t ms)
{
  char text[DUB_TIME_LEN];
  dub_time_format(ms, DUB_SHANGHAI_OFFSET_MIN, text);
  return json_string(text);
}

json_t *deadline_casedoc_new(const json_t *received, const struct dub_sla_moments *m)
{
  static const char *const copied[] = {"case_id", "kind",   "category",    "severity",
                                       "title",   "region", "received_at", "clock_start"};
  json_t *doc = json_object();
  for(size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
    json_t *v = json_object_get(received, copied[i]);
    if(v)
      json_object_set(doc, copied[i], v);
  }
  json_object_set(doc, "subject_unit",
                  json_object_get(json_object_get(received, "subject"), "unit_id"));
  json_object_set_new(doc, "state", json_string("received"));
  json_object_set_new(doc, "unit", json_null());
  json_object_set_new(doc, "assignee", json_null());
  json_object_set_new(doc, "accept_by", instant(m->accept_by));
  json_object_set_new(doc, "due_at", instant(m->due_at));
  json_object_set_new(doc, "warn_at", instant(m->warn_at));
  json_t *levels = json_array();
  for(int i = 0; i < m->n_levels; i++)
    json_array_append_new(levels, json_pack("{s:i, s:o}", "level", m->escalate[i].level,
                                            "at", instant(m->escalate[i].at)));
  json_object_set_new(doc, "escalations", levels);
  json_object_set_new(doc, "escalation_level", json_integer(0));
  json_object_set_new(doc, "calendar_provisional", json_boolean(m->provisional));
  json_object_set_new(doc, "history", json_array());
  return doc;
}

bool deadline_casedoc_has_event(const json_t *doc, const char *event_id)
{
  size_t i;
  json_t *h;
  json_array_foreach(json_object_get(doc, "history"), i, h)
  {
    const char *id = dub_json_str(h, "id");
    if(id && event_id && strcmp(id, event_id) == 0)
      return true;
  }
  return false;
}

void deadline_casedoc_apply(json_t *doc, const json_t *event)
{
  const char *type = dub_json_str(event, "type");
  const json_t *data = json_object_get(event, "data");
  if(type && strcmp(type, "duban.case.assigned") == 0) {
    json_object_set(doc, "unit", json_object_get(data, "unit"));
    json_object_set(doc, "assignee", json_object_get(data, "officer"));
    json_object_set_new(doc, "needs_manual",
                        json_boolean(dub_json_bool(data, "needs_manual", false)));
    if(strcmp(dub_json_str(doc, "state"), "received") == 0)
      json_object_set_new(doc, "state", json_string("assigned"));
  }
  json_array_append_new(
      json_object_get(doc, "history"),
      json_pack("{s:O?, s:O?, s:O?, s:O?}", "type", json_object_get(event, "type"), "id",
                json_object_get(event, "id"), "source", json_object_get(event, "source"),
                "time", json_object_get(event, "time")));
}
