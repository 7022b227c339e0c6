/* test_casestate.c - one case's state through receipt, assignment, returns and closing;
 * the events it gives match their schema; replaying those events (as the rebuild from
 * duban.cases does) arrives at the same state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "casestate.h"
#include "helpers.h"
#include "json/json.h"
#include "schema/schema.h"

#define NOW 1795000000000LL /* 2026-11-18 */

static const char rules[] =
    "{'rules': [{'id': 'R-ALL', 'unit': 'G1', 'strategy': 'least_loaded'}],"
    " 'fallback_unit': 'G0'}";
static const char dir[] = "{'units': [{'id': 'G0', 'name': 'n', 'kind': 'commission'},"
                          " {'id': 'G1', 'name': 'n', 'kind': 'inspection_group'},"
                          " {'id': 'U-S1', 'name': 'n', 'kind': 'street_office'}],"
                          " 'officers': ["
                          " {'id': 'a', 'name': 'n', 'unit': 'G1', 'roles': ['handler']},"
                          " {'id': 'b', 'name': 'n', 'unit': 'G1', 'roles': ['handler']},"
                          " {'id': 'c', 'name': 'n', 'unit': 'G1', 'roles': ['handler'], "
                          "'conflicts': ['U-S1']},"
                          " {'id': 'h', 'name': 'n', 'unit': 'G1', 'roles': ['head']}]}";
static const char received[] =
    "{'case_id': 'DB1', 'kind': 'complaint', 'category': 'work_style',"
    " 'severity': 'high', 'title': 't', 'region': '320102',"
    " 'subject': {'unit_id': 'U-S1', 'person': {'name': 'x'}}, 'anonymous': true}";

struct fixture {
  struct assignment_model *m;
  struct dub_schema *schema;
  json_t *data;
};

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof *f);
  char *why = NULL;
  f->m = model_of(rules, dir);
  assert_non_null(f->m);
  if(dub_schema_load_file("schemas/events/duban.case.assigned.json", &f->schema, &why))
    fail_msg("%s", why);
  f->data = jq(received);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  assignment_model_free(f->m);
  dub_schema_free(f->schema);
  json_decref(f->data);
  free(f);
  return 0;
}

static void assert_valid(const struct fixture *f, const json_t *event)
{
  json_t *errors = NULL;
  if(dub_schema_validate(f->schema, json_object_get(event, "data"), &errors)) {
    char *text = json_dumps(errors, 0);
    fail_msg("duban.case.assigned data does not match its schema: %s", text);
  }
}

/* Decides the way the consumer does: route the stored facts, choose with 'load', and
 * build the event answering 'in'. Returns a new event. */
static json_t *assign(const struct fixture *f, const json_t *st,
                      const struct assignment_input *in, const long long *load,
                      const json_t *excluded, long long returns, bool no_officer)
{
  struct assignment_facts facts;
  struct assignment_route route;
  struct assignment_result r;
  bool ex[4] = {false};
  size_t i;
  json_t *v;
  json_array_foreach(excluded, i, v) ex[officer(f->m, json_string_value(v))] = true;
  assignment_facts_read(f->m, assignment_state_facts(st), &facts);
  assignment_route(f->m, &facts, &route);
  struct assignment_ask ask = {.facts = &facts,
                               .route = &route,
                               .load = load,
                               .excluded = ex,
                               .no_officer = no_officer};
  assignment_choose(f->m, &ask, &r);
  json_t *event = assignment_event_new(f->m, st, in, &route, &r, excluded, returns, NOW);
  assignment_result_release(&r);
  return event;
}

static const struct assignment_input receipt = {
    .type = ASSIGNMENT_RECEIVED,
    .source = "/duban/intake",
    .id = "DB1.received",
    .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"};

static void test_first_assignment(void **state)
{
  struct fixture *f = *state;
  long long load[4] = {2, 1, 0, 0};
  json_t *st = assignment_state_new("DB1");
  assignment_state_set_facts(st, f->data);
  assert_false(assignment_state_applied(st, receipt.source, receipt.id));
  /* Only routing facts are kept: no title, no person. */
  assert_null(json_object_get(assignment_state_facts(st), "title"));
  assert_null(
      json_object_get(json_object_get(assignment_state_facts(st), "subject"), "person"));

  json_t *event = assign(f, st, &receipt, load, assignment_state_excluded(st), 0, false);
  assert_valid(f, event);
  assert_string_equal(dub_json_str(event, "id"), "DB1.assigned.1");
  assert_string_equal(dub_json_str(event, "source"), "/duban/assignment");
  assert_string_equal(dub_json_str(event, "traceparent"), receipt.traceparent);
  const json_t *data = json_object_get(event, "data");
  /* c has the least load but a conflict with U-S1; b is next. */
  assert_string_equal(dub_json_str(data, "officer"), "b");
  assert_string_equal(dub_json_str(data, "rule"), "R-ALL");
  assert_string_equal(dub_json_str(data, "cause"), "received");
  assert_string_equal(dub_json_str(json_object_get(data, "input"), "id"), "DB1.received");
  assert_int_equal(json_array_size(json_object_get(data, "recused")), 1);
  assert_null(json_object_get(data, "previous"));
  assert_null(json_object_get(data, "excluded"));

  assignment_state_apply_assigned(st, event);
  assert_true(assignment_state_applied(st, receipt.source, receipt.id));
  const json_t *recorded = assignment_state_output(st, receipt.source, receipt.id);
  assert_true(json_equal(recorded, json_object_get(event, "data")));
  /* The whole event follows from the recorded data and the input's traceparent. */
  json_t *again = assignment_event_wrap(recorded, receipt.traceparent);
  assert_true(json_equal(again, event));
  json_decref(again);
  assert_int_equal(assignment_state_attempt(st), 1);
  struct assignment_holder h;
  assignment_state_holder(st, &h);
  assert_string_equal(h.officer, "b");
  /* The same event again (a redelivery read back) changes nothing. */
  json_t *before = json_deep_copy(st);
  assignment_state_apply_assigned(st, event);
  assert_true(json_equal(st, before));

  json_t *pub = assignment_state_public(st);
  assert_string_equal(dub_json_str(pub, "event_id"), "DB1.assigned.1");
  assert_string_equal(dub_json_str(pub, "officer"), "b");
  assert_true(dub_json_bool(pub, "open", false));
  json_decref(pub);
  json_decref(before);
  json_decref(event);
  json_decref(st);
}

/* Runs a case through receipt, 'n' returns and a close as the consumer would; gives the
 * state and, in 'events', every event the topic would hold in order. */
static json_t *life(const struct fixture *f, int n, json_t *events)
{
  long long load[4] = {0};
  json_t *st = assignment_state_new("DB1");
  assignment_state_set_facts(st, f->data);
  json_array_append_new(events, json_pack("{s:s, s:s, s:s, s:O}", "type",
                                          ASSIGNMENT_RECEIVED, "source", receipt.source,
                                          "id", receipt.id, "data", f->data));
  json_t *e = assign(f, st, &receipt, load, assignment_state_excluded(st), 0, false);
  assignment_state_apply_assigned(st, e);
  json_array_append_new(events, e);
  for(int k = 1; k <= n; k++) {
    char id[32];
    snprintf(id, sizeof id, "oa-%d", k);
    struct assignment_input ret = {.type = ASSIGNMENT_RETURNED,
                                   .source = "/gov/unit-oa",
                                   .id = id,
                                   .reason_code = "wrong_unit"};
    /* The consumer excludes the current officer and any earlier returner. */
    json_t *excluded = json_deep_copy(assignment_state_excluded(st));
    if(!excluded)
      excluded = json_array();
    struct assignment_holder h;
    assignment_state_holder(st, &h);
    if(h.officer)
      json_array_append_new(excluded, json_string(h.officer));
    long long returns = assignment_state_returns(st) + 1;
    json_array_append_new(events,
                          json_pack("{s:s, s:s, s:s}", "type", ASSIGNMENT_RETURNED,
                                    "source", ret.source, "id", id));
    e = assign(f, st, &ret, load, excluded, returns, returns >= ASSIGNMENT_MAX_RETURNS);
    assert_valid(f, e);
    assignment_state_apply_assigned(st, e);
    json_array_append_new(events, e);
    json_decref(excluded);
  }
  assignment_state_apply_closed(st, "/gov/unit-oa", "oa-close");
  json_array_append_new(events, json_pack("{s:s, s:s, s:s}", "type", ASSIGNMENT_CLOSED,
                                          "source", "/gov/unit-oa", "id", "oa-close"));
  return st;
}

static void test_returns_exclude_and_third_needs_manual(void **state)
{
  struct fixture *f = *state;
  json_t *events = json_array();
  json_t *st = life(f, 3, events);
  /* received, assigned, (returned, assigned) x3, closed */
  assert_int_equal(json_array_size(events), 9);
  const json_t *second = json_object_get(json_array_get(events, 3), "data");
  const json_t *third = json_object_get(json_array_get(events, 5), "data");
  const json_t *fourth = json_object_get(json_array_get(events, 7), "data");
  /* a, then b (a returned it), then h, the head (a and b returned it; c conflicts). */
  assert_string_equal(
      dub_json_str(json_object_get(json_array_get(events, 1), "data"), "officer"), "a");
  assert_string_equal(dub_json_str(second, "officer"), "b");
  assert_string_equal(dub_json_str(second, "cause"), "returned");
  assert_string_equal(dub_json_str(second, "reason_code"), "wrong_unit");
  assert_string_equal(dub_json_str(json_object_get(second, "previous"), "officer"), "a");
  assert_string_equal(dub_json_str(json_array_get(events, 3), "id"), "DB1.assigned.2");
  assert_string_equal(dub_json_str(third, "officer"), "h");
  assert_int_equal(json_array_size(json_object_get(third, "excluded")), 2);
  /* The third return: nobody, needs_manual, with the unit kept. */
  assert_true(json_is_null(json_object_get(fourth, "officer")));
  assert_true(dub_json_bool(fourth, "needs_manual", false));
  assert_string_equal(dub_json_str(fourth, "unit"), "G1");
  long long returns = 0;
  assert_true(dub_json_int(fourth, "returns", &returns));
  assert_int_equal(returns, 3);
  assert_int_equal(assignment_state_attempt(st), 4);
  struct assignment_holder h;
  assignment_state_holder(st, &h);
  assert_null(h.officer);
  assert_null(h.unit); /* closed: nobody holds it */
  assert_false(assignment_state_open(st));
  json_decref(st);
  json_decref(events);
}

static void test_holder_of_a_case_needing_manual_assignment(void **state)
{
  struct fixture *f = *state;
  long long load[4] = {0};
  json_t *st = assignment_state_new("DB1");
  assignment_state_set_facts(st, f->data);
  json_t *e = assign(f, st, &receipt, load, assignment_state_excluded(st), 0, true);
  assert_valid(f, e);
  assignment_state_apply_assigned(st, e);
  struct assignment_holder h;
  assignment_state_holder(st, &h);
  assert_null(h.officer);
  assert_string_equal(h.unit, "G1");
  json_t *pub = assignment_state_public(st);
  assert_true(dub_json_bool(pub, "needs_manual", false));
  json_decref(pub);
  json_decref(e);
  json_decref(st);
}

static void test_closing_twice_and_acks(void **state)
{
  (void)state;
  json_t *st = assignment_state_new("DB2");
  assert_null(assignment_state_public(st)); /* not assigned: nothing to show */
  assignment_state_apply_closed(st, "/gov/unit-oa", "x");
  assert_false(assignment_state_open(st));
  json_t *before = json_deep_copy(st);
  assignment_state_apply_closed(st, "/gov/unit-oa", "x");
  assert_true(json_equal(st, before));
  assignment_state_apply_ack(st, "/duban/intake", "DB2.received");
  assert_true(assignment_state_applied(st, "/duban/intake", "DB2.received"));
  /* The same id from another source is another event. */
  assert_false(assignment_state_applied(st, "/gov/other", "x"));
  json_decref(before);
  json_decref(st);
}

/* What the rebuild does with each event of duban.cases, in topic order. */
static void replay(json_t *states, const json_t *event)
{
  const char *type = dub_json_str(event, "type");
  const char *case_id = "DB1";
  json_t *st = json_object_get(states, case_id);
  if(strcmp(type, ASSIGNMENT_RECEIVED) == 0) {
    if(!st) {
      st = assignment_state_new(case_id);
      json_object_set_new(states, case_id, st);
    }
    assignment_state_set_facts(st, json_object_get(event, "data"));
  } else if(strcmp(type, ASSIGNMENT_ASSIGNED) == 0) {
    assignment_state_apply_assigned(st, event);
  } else if(strcmp(type, ASSIGNMENT_CLOSED) == 0) {
    assignment_state_apply_closed(st, dub_json_str(event, "source"),
                                  dub_json_str(event, "id"));
  }
}

static void test_replaying_the_topic_gives_the_same_state(void **state)
{
  struct fixture *f = *state;
  for(int n = 0; n <= 4; n++) {
    json_t *events = json_array();
    json_t *live = life(f, n, events);
    json_t *states = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) replay(states, e);
    assert_true(json_equal(json_object_get(states, "DB1"), live));
    /* Redelivered copies of every event (at least once) change nothing. */
    json_array_foreach(events, i, e) replay(states, e);
    assert_true(json_equal(json_object_get(states, "DB1"), live));
    json_decref(states);
    json_decref(live);
    json_decref(events);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_assignment),
      cmocka_unit_test(test_returns_exclude_and_third_needs_manual),
      cmocka_unit_test(test_holder_of_a_case_needing_manual_assignment),
      cmocka_unit_test(test_closing_twice_and_acks),
      cmocka_unit_test(test_replaying_the_topic_gives_the_same_state),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
