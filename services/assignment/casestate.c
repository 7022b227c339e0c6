/* casestate.c - one case's assignment state and its transitions. */
#include "casestate.h"

#include "core/alloc.h"
#include "core/time.h"
#include "json/json.h"

#include <stdlib.h>
#include <string.h>

/* "<source> <id>": a source holds no white space, so the pair is unambiguous. */
static char *input_key(const char *source, const char *id)
{
  return dub_xasprintf("%s %s", source ? source : "", id ? id : "");
}

json_t *assignment_state_new(const char *case_id)
{
  return json_pack("{s:s, s:b, s:[], s:[]}", "case_id", case_id, "open", 1, "applied",
                   "outputs");
}

void assignment_state_set_facts(json_t *state, const json_t *data)
{
  if(json_object_get(state, "facts"))
    return;
  json_t *facts = json_object();
  const char *const fields[] = {"kind", "category", "severity", "region"};
  for(size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    const char *v = dub_json_str(data, fields[i]);
    if(v)
      json_object_set_new(facts, fields[i], json_string(v));
  }
  const char *subject = dub_json_str(json_object_get(data, "subject"), "unit_id");
  if(subject)
    json_object_set_new(facts, "subject", json_pack("{s:s}", "unit_id", subject));
  json_object_set_new(state, "facts", facts);
}

const json_t *assignment_state_facts(const json_t *state)
{
  return json_object_get(state, "facts");
}

bool assignment_state_applied(const json_t *state, const char *source, const char *id)
{
  char *key = input_key(source, id);
  bool found = dub_json_array_has_str(json_object_get(state, "applied"), key);
  free(key);
  return found;
}

const json_t *assignment_state_output(const json_t *state, const char *source,
                                      const char *id)
{
  char *key = input_key(source, id);
  const json_t *found = NULL;
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(state, "outputs"), i, o)
  {
    const char *input = dub_json_str(o, "input");
    if(input && strcmp(input, key) == 0) {
      found = json_object_get(o, "data");
      break;
    }
  }
  free(key);
  return found;
}

const json_t *assignment_state_current(const json_t *state)
{
  const json_t *outputs = json_object_get(state, "outputs");
  size_t n = json_array_size(outputs);
  return n ? json_object_get(json_array_get(outputs, n - 1), "data") : NULL;
}

bool assignment_state_open(const json_t *state)
{
  return dub_json_bool(state, "open", true);
}

static long long int_member(const json_t *obj, const char *name)
{
  long long v = 0;
  return dub_json_int(obj, name, &v) ? v : 0;
}

long long assignment_state_attempt(const json_t *state)
{
  return int_member(assignment_state_current(state), "attempt");
}

long long assignment_state_returns(const json_t *state)
{
  return int_member(assignment_state_current(state), "returns");
}

const json_t *assignment_state_excluded(const json_t *state)
{
  return json_object_get(assignment_state_current(state), "excluded");
}

void assignment_state_holder(const json_t *state, struct assignment_holder *out)
{
  const json_t *current = assignment_state_current(state);
  out->officer = out->unit = NULL;
  if(!current || !assignment_state_open(state))
    return;
  out->officer = dub_json_str(current, "officer");
  if(!out->officer)
    out->unit = dub_json_str(current, "unit");
}

static void mark_applied(json_t *state, const char *key)
{
  json_array_append_new(json_object_get(state, "applied"), json_string(key));
}

void assignment_state_apply_assigned(json_t *state, const json_t *event)
{
  const json_t *data = json_object_get(event, "data");
  const json_t *input = json_object_get(data, "input");
  char *key = input_key(dub_json_str(input, "source"), dub_json_str(input, "id"));
  if(dub_json_array_has_str(json_object_get(state, "applied"), key)) {
    free(key);
    return;
  }
  mark_applied(state, key);
  json_array_append_new(json_object_get(state, "outputs"),
                        json_pack("{s:s, s:O}", "input", key, "data", data));
  free(key);
}

void assignment_state_apply_closed(json_t *state, const char *source, const char *id)
{
  char *key = input_key(source, id);
  if(!dub_json_array_has_str(json_object_get(state, "applied"), key)) {
    json_object_set_new(state, "open", json_false());
    mark_applied(state, key);
  }
  free(key);
}

void assignment_state_apply_ack(json_t *state, const char *source, const char *id)
{
  char *key = input_key(source, id);
  if(!dub_json_array_has_str(json_object_get(state, "applied"), key))
    mark_applied(state, key);
  free(key);
}

json_t *assignment_state_public(const json_t *state)
{
  const json_t *current = assignment_state_current(state);
  if(!current)
    return NULL;
  /* Shallow: a new top level over the same (never changed) members. */
  json_t *doc = json_copy((json_t *)current);
  char *id = dub_xasprintf("%s.assigned.%lld", dub_json_str(current, "case_id"),
                           assignment_state_attempt(state));
  json_object_set_new(doc, "event_id", json_string(id));
  free(id);
  json_object_set_new(doc, "open", json_boolean(assignment_state_open(state)));
  json_object_set_new(doc, "returns", json_integer(assignment_state_returns(state)));
  return doc;
}

static json_t *recused_json(const struct assignment_model *m,
                            const struct assignment_result *r)
{
  json_t *list = json_array();
  for(size_t i = 0; i < r->nrecused; i++)
    json_array_append_new(list, json_pack("{s:s, s:s}", "officer",
                                          m->officers[r->recused[i].officer].id, "reason",
                                          r->recused[i].reason));
  return list;
}

json_t *assignment_event_new(const struct assignment_model *m, const json_t *state,
                             const struct assignment_input *in,
                             const struct assignment_route *route,
                             const struct assignment_result *r, const json_t *excluded,
                             long long returns, int64_t now_ms)
{
  const char *case_id = dub_json_str(state, "case_id");
  long long attempt = assignment_state_attempt(state) + 1;
  bool returned = in->type && strcmp(in->type, ASSIGNMENT_RETURNED) == 0;
  char now[DUB_TIME_LEN];
  dub_time_format(now_ms, DUB_SHANGHAI_OFFSET_MIN, now);
  json_t *data =
      json_pack("{s:s, s:s, s:n, s:s, s:s, s:o, s:b, s:I, s:s, s:{s:s, s:s, s:s}}",
                "case_id", case_id, "unit", m->units[route->unit].id, "officer", "rule",
                route->rule >= 0 ? m->rules[route->rule].id : "fallback", "strategy",
                assignment_strategy_name(route->strategy), "recused", recused_json(m, r),
                "needs_manual", r->officer < 0, "attempt", attempt, "cause",
                returned ? "returned" : "received", "input", "type", in->type, "source",
                in->source, "id", in->id);
  if(r->officer >= 0)
    json_object_set_new(data, "officer", json_string(m->officers[r->officer].id));
  const json_t *current = assignment_state_current(state);
  if(returned && current)
    json_object_set_new(data, "previous",
                        json_pack("{s:O, s:O}", "unit", json_object_get(current, "unit"),
                                  "officer", json_object_get(current, "officer")));
  if(returned && in->reason_code)
    json_object_set_new(data, "reason_code", json_string(in->reason_code));
  if(json_array_size(excluded))
    json_object_set_new(data, "excluded", json_deep_copy(excluded));
  if(returns)
    json_object_set_new(data, "returns", json_integer(returns));
  json_object_set_new(data, "assigned_at", json_string(now));
  json_t *event = assignment_event_wrap(data, in->traceparent);
  json_decref(data);
  return event;
}

json_t *assignment_event_wrap(const json_t *data, const char *traceparent)
{
  const char *case_id = dub_json_str(data, "case_id");
  char *id = dub_xasprintf("%s.assigned.%lld", case_id, int_member(data, "attempt"));
  json_t *event = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:O, s:s}", "specversion", "1.0", "id", id, "source",
      ASSIGNMENT_SOURCE, "type", ASSIGNMENT_ASSIGNED, "subject", case_id, "time",
      json_object_get(data, "assigned_at"), "datacontenttype", "application/json");
  free(id);
  if(traceparent)
    json_object_set_new(event, "traceparent", json_string(traceparent));
  json_object_set(event, "data", (json_t *)data);
  return event;
}
