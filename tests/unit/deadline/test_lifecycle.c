/* test_lifecycle.c - the case lifecycle of services/deadline without a broker: every
 * allowed and every forbidden transition, both clocks, the timers and their order,
 * extensions, reopening, and recomputation when a calendar file arrives. */
#include "lifecycle.h"

#include "calendar/calendar.h"
#include "core/time.h"
#include "json/json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CASE "DB01TEST0000000000000000000001"

struct fixture {
  json_t *sla;
  struct dub_calendar *cal;
};

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof *f);
  char *why = NULL;
  assert_int_equal(dub_json_load_file("deploy/config/sla.json", &f->sla, &why), DUB_OK);
  assert_int_equal(dub_calendar_load_dir("deploy/config/calendar", &f->cal, &why),
                   DUB_OK);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  json_decref(f->sla);
  dub_calendar_free(f->cal);
  free(f);
  return 0;
}

static int64_t at(const char *text)
{
  int64_t ms = 0;
  assert_int_equal(dub_time_parse(text, &ms, NULL), DUB_OK);
  return ms;
}

/* The data of duban.case.received for a case reported at 'reported'. */
static json_t *received(const char *severity, const char *reported)
{
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:b, s:s, s:s}", "case_id",
                   CASE, "kind", "complaint", "category", "work_style", "severity",
                   severity, "title", "窗口推诿", "region", "320102", "subject",
                   "unit_id", "U-STREET-07", "anonymous", false, "received_at", reported,
                   "clock_start", reported);
}

static json_t *new_case(struct fixture *f, const char *severity, const char *reported)
{
  enum dub_err err;
  char *why = NULL;
  json_t *data = received(severity, reported);
  json_t *doc = deadline_case_new(data, f->sla, f->cal, &err, &why);
  json_decref(data);
  assert_non_null(doc);
  return doc;
}

static json_t *event(const char *type, const char *id, json_t *data)
{
  json_object_set_new(data, "case_id", json_string(CASE));
  return json_pack("{s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", id, "source",
                   "/gov/unit-oa", "type", type, "data", data);
}

/* Applies an event of 'type' with 'data' (taken) at 'when'; returns the outcome. */
static enum dub_err apply_at(struct fixture *f, json_t *doc, const char *type,
                             json_t *data, int64_t when)
{
  static int n;
  char id[64], *why = NULL;
  snprintf(id, sizeof id, "e-%d", ++n);
  json_t *ev = event(type, id, data);
  enum dub_err rc = deadline_case_apply(doc, ev, when, f->cal, &why);
  if(rc)
    assert_non_null(why);
  free(why);
  json_decref(ev);
  return rc;
}

static const char *state(const json_t *doc)
{
  return dub_json_str(doc, "state");
}

static void assert_member(const json_t *doc, const char *key, const char *want)
{
  const char *got = dub_json_str(doc, key);
  assert_non_null(got);
  assert_string_equal(got, want);
}

/* ---- building a case in each state --------------------------------------------------
 */

#define T_REPORTED "2026-11-02T10:00:00+08:00" /* high: due 2026-11-09 */
#define T_EARLY "2026-11-03T09:00:00+08:00"    /* before every moment */

static json_t *assigned_data(int attempt, const char *officer)
{
  return json_pack("{s:s, s:s, s:i, s:b}", "unit", "U-IG-05", "officer", officer,
                   "attempt", attempt, "needs_manual", false);
}

struct step_spec {
  const char *type;
  json_t *data;
};

static json_t *in_state(struct fixture *f, const char *wanted)
{
  json_t *doc = new_case(f, "high", T_REPORTED);
  int64_t t = at(T_EARLY);
  struct step_spec steps[6];
  size_t n = 0;
  if(strcmp(wanted, "received") == 0)
    return doc;
  if(strcmp(wanted, "cancelled") == 0) {
    steps[n++] = (struct step_spec){"duban.case.cancelled", json_object()};
  } else {
    steps[n++] = (struct step_spec){"duban.case.assigned", assigned_data(1, "O-A")};
    if(strcmp(wanted, "returned") == 0)
      steps[n++] = (struct step_spec){
          "duban.case.returned",
          json_pack("{s:s, s:s}", "reason_code", "wrong_unit", "reason", "不属本单位")};
    else if(strcmp(wanted, "assigned") != 0) {
      steps[n++] = (struct step_spec){"duban.case.accepted", json_object()};
      if(strcmp(wanted, "in_progress") == 0)
        steps[n++] = (struct step_spec){"duban.case.progressed", json_object()};
      else if(strcmp(wanted, "accepted") != 0) {
        steps[n++] = (struct step_spec){"duban.case.rectified", json_object()};
        if(strcmp(wanted, "rectified") != 0) {
          bool pass = strcmp(wanted, "reopened") != 0;
          steps[n++] = (struct step_spec){"duban.case.verified",
                                          json_pack("{s:b}", "passed", pass)};
          if(strcmp(wanted, "closed") == 0)
            steps[n++] = (struct step_spec){"duban.case.closed", json_object()};
        }
      }
    }
  }
  for(size_t i = 0; i < n; i++)
    assert_int_equal(
        apply_at(f, doc, steps[i].type, steps[i].data, t + (int64_t)i * 1000), DUB_OK);
  assert_string_equal(state(doc), wanted);
  return doc;
}

/* ---- the transition matrix ----------------------------------------------------------
 */

static const char *const states[] = {"received", "assigned",  "accepted", "in_progress",
                                     "returned", "rectified", "verified", "reopened",
                                     "closed",   "cancelled"};
#define NSTATES (sizeof states / sizeof states[0])

/* Written from DESIGN.md's lifecycle, independently of the code's table: 1 allowed. */
static const struct {
  const char *type;
  int allowed[NSTATES]; /* in the order of 'states' */
  const char *to;       /* NULL: the state stays */
} matrix[] = {
    /*                      rcv asg acc inp ret rec ver reo clo can */
    {"duban.case.received", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, NULL},
    {"duban.case.assigned", {1, 1, 0, 0, 1, 0, 0, 0, 0, 0}, "assigned"},
    {"duban.case.accepted", {0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, "accepted"},
    {"duban.case.progressed", {0, 0, 1, 1, 0, 0, 0, 1, 0, 0}, "in_progress"},
    {"duban.case.extension_requested", {0, 1, 1, 1, 0, 0, 0, 1, 0, 0}, NULL},
    {"duban.case.rectified", {0, 0, 1, 1, 0, 0, 0, 1, 0, 0}, "rectified"},
    {"duban.case.verified", {0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, "verified"},
    {"duban.case.returned", {0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, "returned"},
    {"duban.case.closed", {0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, "closed"},
    {"duban.case.cancelled", {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, "cancelled"},
};

static json_t *data_for(const char *type)
{
  if(strcmp(type, "duban.case.assigned") == 0)
    return assigned_data(2, "O-B");
  if(strcmp(type, "duban.case.extension_requested") == 0)
    return json_pack("{s:s, s:s}", "new_due", "2026-11-20T23:59:59+08:00", "reason",
                     "材料多");
  if(strcmp(type, "duban.case.verified") == 0)
    return json_pack("{s:b}", "passed", true);
  if(strcmp(type, "duban.case.returned") == 0)
    return json_pack("{s:s, s:s}", "reason_code", "other", "reason", "x");
  if(strcmp(type, "duban.case.received") == 0)
    return received("high", T_REPORTED);
  return json_object();
}

static void test_every_transition(void **state_)
{
  struct fixture *f = *state_;
  int allowed = 0, refused = 0;
  for(size_t m = 0; m < sizeof matrix / sizeof matrix[0]; m++)
    for(size_t s = 0; s < NSTATES; s++) {
      json_t *doc = in_state(f, states[s]);
      json_t *before = json_deep_copy(doc);
      /* Effects work on a shallow copy: whether allowed or refused, no value nested in
       * the document is changed in place (a copy of its top level still equals it). */
      json_t *top = json_copy(doc);
      enum dub_err rc =
          apply_at(f, doc, matrix[m].type, data_for(matrix[m].type), at(T_EARLY) + 60000);
      if(!json_equal(top, before))
        fail_msg("%s in %s changed a nested value in place", matrix[m].type, states[s]);
      json_decref(top);
      if(matrix[m].allowed[s]) {
        if(rc)
          fail_msg("%s in %s was refused", matrix[m].type, states[s]);
        assert_string_equal(state(doc), matrix[m].to ? matrix[m].to : states[s]);
        allowed++;
      } else {
        if(rc != DUB_ERR_INVALID_TRANSITION)
          fail_msg("%s in %s was not refused", matrix[m].type, states[s]);
        assert_true(json_equal(doc, before)); /* a refusal changes nothing */
        refused++;
      }
      json_decref(before);
      json_decref(doc);
    }
  assert_int_equal(allowed + refused, 100);
  assert_int_equal(allowed, 27);
}

/* extension_decided needs a pending request; where one can be pending it is allowed. */
static void test_extension_decided_in_every_state(void **state_)
{
  struct fixture *f = *state_;
  /* Requested in the state itself, or before the case moved there. */
  static const struct {
    const char *state, *then;
  } ok[] = {{"assigned", NULL},
            {"accepted", NULL},
            {"in_progress", NULL},
            {"reopened", NULL},
            {"accepted", "duban.case.returned"},
            {"accepted", "duban.case.rectified"}};
  for(size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    json_t *doc = in_state(f, ok[i].state);
    assert_int_equal(apply_at(f, doc, "duban.case.extension_requested",
                              data_for("duban.case.extension_requested"), at(T_EARLY)),
                     DUB_OK);
    if(ok[i].then)
      assert_int_equal(apply_at(f, doc, ok[i].then, data_for(ok[i].then), at(T_EARLY)),
                       DUB_OK);
    assert_int_equal(
        apply_at(f, doc, "duban.case.extension_decided",
                 json_pack("{s:b, s:s}", "approved", true, "approver", "L-1"),
                 at(T_EARLY) + 1000),
        DUB_OK);
    assert_member(doc, "due_at", "2026-11-20T23:59:59+08:00");
    json_decref(doc);
  }
  /* Nothing pending, or a state where it may not be decided. */
  for(size_t s = 0; s < NSTATES; s++) {
    json_t *doc = in_state(f, states[s]);
    assert_int_equal(
        apply_at(f, doc, "duban.case.extension_decided",
                 json_pack("{s:b, s:s}", "approved", true, "approver", "L-1"),
                 at(T_EARLY)),
        DUB_ERR_INVALID_TRANSITION);
    json_decref(doc);
  }
}

/* ---- moments and clocks ------------------------------------------------------------ */

static void test_design_example(void **state_)
{
  struct fixture *f = *state_;
  json_t *doc = new_case(f, "high", "2026-09-29T10:00:00+08:00");
  assert_member(doc, "state", "received");
  assert_member(doc, "accept_by", "2026-09-30T23:59:59+08:00");
  assert_member(doc, "due_at", "2026-10-12T23:59:59+08:00");
  assert_member(doc, "warn_at", "2026-10-09T00:00:00+08:00");
  json_t *levels = json_object_get(doc, "escalations");
  assert_int_equal(json_array_size(levels), 2);
  assert_member(json_array_get(levels, 0), "at", "2026-10-19T23:59:59+08:00");
  assert_member(json_array_get(levels, 1), "at", "2026-10-26T23:59:59+08:00");
  assert_false(dub_json_bool(doc, "calendar_provisional", true));
  assert_null(json_object_get(doc, "reporter"));
  json_decref(doc);
}

/* Applies the timer events that are due, as the consumer would read them back. */
static size_t fire_all(struct fixture *f, json_t *doc, int64_t now,
                       struct deadline_due *out)
{
  size_t n = deadline_case_due(doc, now, out);
  for(size_t i = 0; i < n; i++) {
    char *why = NULL;
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id",
                           out[i].id, "source", "/duban/deadline", "type", out[i].type,
                           "data", deadline_case_timer_data(doc, &out[i]));
    json_t *top = json_copy(doc), *before = json_deep_copy(doc);
    assert_int_equal(deadline_case_apply(doc, ev, now, f->cal, &why), DUB_OK);
    assert_true(json_equal(top, before)); /* nothing nested changed in place */
    json_decref(before);
    json_decref(top);
    json_decref(ev);
  }
  return n;
}

static void test_backdated_case_fires_each_timer_once_in_order(void **state_)
{
  struct fixture *f = *state_;
  json_t *doc = new_case(f, "high", "2026-09-29T10:00:00+08:00");
  struct deadline_due due[DEADLINE_MAX_DUE];
  size_t n = fire_all(f, doc, at("2026-11-29T12:00:00+08:00"), due);
  assert_int_equal(n, 5);
  const char *kinds[] = {"overdue", "warning", "overdue", "escalated", "escalated"};
  const char *ids[] = {
      CASE ".overdue.accept.20260930T235959", CASE ".warning.20261009T000000",
      CASE ".overdue.resolve.20261012T235959", CASE ".escalated.3.20261019T235959",
      CASE ".escalated.4.20261026T235959"};
  for(size_t i = 0; i < n; i++) {
    assert_non_null(strstr(due[i].type, kinds[i]));
    assert_string_equal(due[i].id, ids[i]);
    if(i)
      assert_true(due[i - 1].at_ms <= due[i].at_ms);
  }
  assert_string_equal(due[0].clock, "accept");
  assert_string_equal(due[2].clock, "resolve");
  assert_int_equal(due[4].level, 4);
  /* Read back: each fired once, nothing left, the flags set. */
  assert_int_equal(deadline_case_due(doc, at("2026-12-31T12:00:00+08:00"), due), 0);
  assert_int_equal(deadline_case_next(doc), -1);
  long long level = 0;
  assert_true(dub_json_int(doc, "escalation_level", &level));
  assert_int_equal(level, 4);
  struct deadline_counts c;
  deadline_case_counts(doc, &c);
  assert_true(c.open && c.overdue);
  json_t *data = deadline_case_timer_data(doc, &due[4]);
  assert_member(data, "escalate_at", "2026-10-26T23:59:59+08:00");
  /* The unit the case is about rides along, for notification's recusal check. */
  assert_member(data, "subject_unit", "U-STREET-07");
  json_decref(data);
  json_decref(doc);
}

static void test_never_early(void **state_)
{
  struct fixture *f = *state_;
  json_t *doc = new_case(f, "high", "2026-09-29T10:00:00+08:00");
  struct deadline_due due[DEADLINE_MAX_DUE];
  int64_t accept_by = at("2026-09-30T23:59:59+08:00");
  assert_int_equal(deadline_case_due(doc, accept_by - 1, due), 0);
  assert_int_equal(deadline_case_next(doc), accept_by);
  assert_int_equal(deadline_case_due(doc, accept_by, due), 1);
  assert_string_equal(due[0].clock, "accept");
  json_decref(doc);
}

static void test_accept_clock_stops_when_accepted(void **state_)
{
  struct fixture *f = *state_;
  json_t *doc = new_case(f, "high", "2026-09-29T10:00:00+08:00");
  int64_t t = at("2026-09-30T09:00:00+08:00");
  assert_int_equal(apply_at(f, doc, "duban.case.assigned", assigned_data(1, "O-A"), t),
                   DUB_OK);
  assert_int_equal(apply_at(f, doc, "duban.case.accepted", json_object(), t + 1000),
                   DUB_OK);
  assert_member(doc, "accepted_at", "2026-09-30T09:00:01+08:00");
  struct deadline_due due[DEADLINE_MAX_DUE];
  assert_int_equal(deadline_case_due(doc, at("2026-10-01T12:00:00+08:00"), due), 0);
  assert_int_equal(deadline_case_next(doc), at("2026-10-09T00:00:00+08:00"));
  json_decref(doc);
}

static void
test_return_keeps_resolve_clock_and_reassignment_restarts_accept(void **state_)
{
  struct fixture *f = *state_;
  json_t *doc = new_case(f, "high", "2026-09-29T10:00:00+08:00");
  int64_t t = at("2026-09-30T09:00:00+08:00");
  apply_at(f, doc, "duban.case.assigned", assigned_data(1, "O-A"), t);
  assert_int_equal(
      apply_at(f, doc, "duban.case.returned",
               json_pack("{s:s, s:s}", "reason_code", "wrong_unit", "reason", "x"),
               t + 1000),
      DUB_OK);
  assert_member(doc, "returned_by", "O-A");
  assert_true(json_is_null(json_object_get(doc, "assignee")));
  /* Returned: the resolve clock still runs. */
  struct deadline_due due[DEADLINE_MAX_DUE];
  assert_int_equal(deadline_case_due(doc, at("2026-10-13T00:00:00+08:00"), due), 2);
  assert_string_equal(due[1].clock, "resolve");
  /* Reassigned on 2026-10-08: the new officer has one working day to accept. */
  assert_int_equal(apply_at(f, doc, "duban.case.assigned", assigned_data(2, "O-B"),
                            at("2026-10-08T10:00:00+08:00")),
                   DUB_OK);
  assert_member(doc, "accept_by", "2026-10-09T23:59:59+08:00");
  assert_member(doc, "due_at", "2026-10-12T23:59:59+08:00");
  assert_member(doc, "assignee", "O-B");
  json_decref(doc);
}

static void test_rectified_stops_resolve_clock_and_close_counts_on_time(void **state_)
{
  struct fixture *f = *state_;
  json_t *doc = in_state(f, "rectified"); /* rectified before its due, 2026-11-09 */
  struct deadline_due due[DEADLINE_MAX_DUE];
  assert_int_equal(deadline_case_due(doc, at("2026-12-31T12:00:00+08:00"), due), 0);
  assert_int_equal(deadline_case_next(doc), -1);
  apply_at(f, doc, "duban.case.verified", json_pack("{s:b}", "passed", true),
           at("2026-12-01T10:00:00+08:00"));
  apply_at(f, doc, "duban.case.closed", json_object(), at("2026-12-01T11:00:00+08:00"));
  struct deadline_counts c;
  deadline_case_counts(doc, &c);
  assert_false(c.open);
  assert_true(c.closed_on_time);
  assert_false(c.closed_late);
  json_decref(doc);
}

static void test_extension(void **state_)
{
  struct fixture *f = *state_;
  json_t *doc = in_state(f, "accepted"); /* due 2026-11-09, warn 2026-11-05 */
  assert_member(doc, "due_at", "2026-11-09T23:59:59+08:00");
  struct deadline_due due[DEADLINE_MAX_DUE];
  /* The warning fired; then an extension is requested before the due moment. */
  assert_int_equal(fire_all(f, doc, at("2026-11-05T00:00:01+08:00"), due), 1);
  assert_int_equal(apply_at(f, doc, "duban.case.extension_requested",
                            json_pack("{s:s, s:s}", "new_due",
                                      "2026-11-20T23:59:59+08:00", "reason", "x"),
                            at("2026-11-06T10:00:00+08:00")),
                   DUB_OK);
  /* A second request while one is pending, and a later due than asked: refused. */
  assert_int_equal(apply_at(f, doc, "duban.case.extension_requested",
                            json_pack("{s:s, s:s}", "new_due",
                                      "2026-11-27T23:59:59+08:00", "reason", "x"),
                            at("2026-11-06T11:00:00+08:00")),
                   DUB_ERR_INVALID_TRANSITION);
  /* Decided after the old due moment passed (the overdue fired meanwhile). */
  assert_int_equal(fire_all(f, doc, at("2026-11-10T00:00:00+08:00"), due), 1);
  assert_true(dub_json_bool(json_object_get(doc, "overdue"), "resolve", false));
  assert_int_equal(apply_at(f, doc, "duban.case.extension_decided",
                            json_pack("{s:b, s:s}", "approved", true, "approver", "L-1"),
                            at("2026-11-10T09:00:00+08:00")),
                   DUB_OK);
  assert_member(doc, "due_at", "2026-11-20T23:59:59+08:00");
  assert_member(doc, "warn_at", "2026-11-18T00:00:00+08:00");
  assert_member(json_array_get(json_object_get(doc, "escalations"), 0), "at",
                "2026-11-27T23:59:59+08:00");
  assert_false(dub_json_bool(json_object_get(doc, "overdue"), "resolve", true));
  /* The moved moments are new timers: the warning comes again, at its new moment. */
  assert_int_equal(deadline_case_next(doc), at("2026-11-18T00:00:00+08:00"));
  assert_int_equal(fire_all(f, doc, at("2026-11-18T00:00:00+08:00"), due), 1);
  assert_string_equal(due[0].id, CASE ".warning.20261118T000000");
  json_decref(doc);
}

static void test_extension_after_due_and_rejection(void **state_)
{
  struct fixture *f = *state_;
  json_t *doc = in_state(f, "accepted");
  json_t *req =
      json_pack("{s:s, s:s}", "new_due", "2026-11-20T23:59:59+08:00", "reason", "x");
  assert_int_equal(apply_at(f, doc, "duban.case.extension_requested", json_deep_copy(req),
                            at("2026-11-10T00:00:00+08:00")),
                   DUB_ERR_INVALID_TRANSITION);
  assert_int_equal(apply_at(f, doc, "duban.case.extension_requested", json_deep_copy(req),
                            at("2026-11-09T23:59:58+08:00")),
                   DUB_OK);
  assert_int_equal(apply_at(f, doc, "duban.case.extension_decided",
                            json_pack("{s:b, s:s}", "approved", false, "approver", "L-1"),
                            at("2026-11-10T09:00:00+08:00")),
                   DUB_OK);
  assert_member(doc, "due_at", "2026-11-09T23:59:59+08:00");
  assert_true(json_is_null(json_object_get(doc, "extension")));
  json_decref(req);
  json_decref(doc);
}

static void test_failed_verification_reopens_from_its_time(void **state_)
{
  struct fixture *f = *state_;
  json_t *doc = in_state(f, "rectified");
  assert_int_equal(apply_at(f, doc, "duban.case.verified",
                            json_pack("{s:b}", "passed", false),
                            at("2026-12-01T10:00:00+08:00")),
                   DUB_OK);
  assert_member(doc, "state", "reopened");
  /* high: five working days from the day after 2026-12-01 */
  assert_member(doc, "due_at", "2026-12-08T23:59:59+08:00");
  assert_member(doc, "warn_at", "2026-12-04T00:00:00+08:00");
  assert_true(json_is_null(json_object_get(doc, "rectified_at")));
  assert_int_equal(deadline_case_next(doc), at("2026-12-04T00:00:00+08:00"));
  json_decref(doc);
}

static void test_provisional_year_is_recomputed(void **state_)
{
  struct fixture *f = *state_;
  enum dub_err err;
  char *why = NULL;
  /* Due in 2027, for which no calendar file is shipped: weekdays, provisional. */
  json_t *data = received("normal", "2026-12-25T10:00:00+08:00");
  json_t *doc = deadline_case_new(data, f->sla, f->cal, &err, &why);
  assert_non_null(doc);
  assert_true(dub_json_bool(doc, "calendar_provisional", false));
  /* Fifteen weekdays from 2026-12-28, with 2027-01-01 taken as a working day. */
  assert_member(doc, "due_at", "2027-01-15T23:59:59+08:00");
  json_t *changed = NULL;
  assert_false(deadline_case_recompute(doc, f->cal, &changed));

  /* The 2027 notice arrives: New Year's Day off, Sunday 2027-01-10 worked (a made-up
   * notice for the test). */
  json_t *y2026 = NULL, *y2025 = NULL;
  assert_int_equal(dub_json_load_file("deploy/config/calendar/2026.json", &y2026, &why),
                   DUB_OK);
  assert_int_equal(dub_json_load_file("deploy/config/calendar/2025.json", &y2025, &why),
                   DUB_OK);
  json_t *y2027 =
      json_pack("{s:i, s:[], s:[{s:s, s:s, s:b}, {s:s, s:s, s:b}]}", "year", 2027,
                "papers", "days", "name", "元旦", "date", "2027-01-01", "isOffDay", true,
                "name", "调休", "date", "2027-01-10", "isOffDay", false);
  const json_t *docs[] = {y2025, y2026, y2027};
  struct dub_calendar *cal = NULL;
  assert_int_equal(dub_calendar_new(docs, 3, &cal, &why), DUB_OK);
  assert_true(deadline_case_recompute(doc, cal, &changed));
  assert_member(changed, "reason", "calendar");
  assert_false(dub_json_bool(changed, "calendar_provisional", true));
  /* One day lost to the holiday, one gained on the Sunday: still 2027-01-15. Warn and
   * escalations count working days too. */
  assert_member(changed, "due_at", "2027-01-15T23:59:59+08:00");
  long long gen = 0;
  assert_true(dub_json_int(changed, "generation", &gen));
  assert_int_equal(gen, 2);
  /* Read back, the event moves the document onto the new calendar. */
  char *w = NULL;
  json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:O}", "specversion", "1.0", "id",
                         CASE ".deadline_changed.2", "source", "/duban/deadline", "type",
                         "duban.case.deadline_changed", "data", changed);
  assert_int_equal(deadline_case_apply(doc, ev, at("2026-12-26T00:00:00+08:00"), cal, &w),
                   DUB_OK);
  assert_false(dub_json_bool(doc, "calendar_provisional", true));
  assert_true(dub_json_int(doc, "generation", &gen));
  assert_int_equal(gen, 2);
  json_t *again = NULL;
  assert_false(deadline_case_recompute(doc, cal, &again));
  json_decref(ev);
  json_decref(changed);
  dub_calendar_free(cal);
  json_decref(y2027);
  json_decref(y2026);
  json_decref(y2025);
  json_decref(data);
  json_decref(doc);
}

static void test_unknown_type_is_ignored_and_redelivery_detected(void **state_)
{
  struct fixture *f = *state_;
  json_t *doc = new_case(f, "high", T_REPORTED);
  json_t *before = json_deep_copy(doc);
  assert_int_equal(
      apply_at(f, doc, "duban.notification.sent", json_object(), at(T_EARLY)), DUB_OK);
  assert_true(json_equal(doc, before));
  char *why = NULL;
  json_t *ev = event("duban.case.assigned", "a-1", assigned_data(1, "O-A"));
  assert_false(deadline_case_has_event(doc, "a-1"));
  assert_int_equal(deadline_case_apply(doc, ev, at(T_EARLY), f->cal, &why), DUB_OK);
  assert_true(deadline_case_has_event(doc, "a-1"));
  json_decref(ev);
  json_decref(before);
  json_decref(doc);
}

/* Review C6: a partition whose high watermark is unknown was armed at once, so after a
 * broker restart a rebuild from the beginning fired timers whose fired events it had
 * not re-read yet. Unknown is now "ask again", never "nothing to read". */
static void test_takeover_arms_only_what_is_known_to_be_read(void **state)
{
  (void)state;
  struct deadline_takeover t = deadline_takeover_decide(-1, 500, true);
  assert_false(t.known);
  assert_false(t.armed);
  assert_false(t.rebuild);
  t = deadline_takeover_decide(-1, -1, false); /* no marker either: still nothing */
  assert_false(t.armed);
  assert_false(t.rebuild);
  t = deadline_takeover_decide(0, -1, false); /* an empty partition */
  assert_true(t.known && t.armed && !t.rebuild);
  t = deadline_takeover_decide(500, 500, true); /* read to the end by the group */
  assert_true(t.armed && !t.rebuild);
  t = deadline_takeover_decide(500, 499, true); /* a record left to read */
  assert_false(t.armed);
  assert_false(t.rebuild);
  t = deadline_takeover_decide(500, -1, true); /* never committed */
  assert_false(t.armed);
  t = deadline_takeover_decide(500, 500, false); /* Redis lost it: read it all again */
  assert_true(t.rebuild);
  assert_false(t.armed);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_design_example),
      cmocka_unit_test(test_every_transition),
      cmocka_unit_test(test_extension_decided_in_every_state),
      cmocka_unit_test(test_backdated_case_fires_each_timer_once_in_order),
      cmocka_unit_test(test_never_early),
      cmocka_unit_test(test_accept_clock_stops_when_accepted),
      cmocka_unit_test(test_return_keeps_resolve_clock_and_reassignment_restarts_accept),
      cmocka_unit_test(test_rectified_stops_resolve_clock_and_close_counts_on_time),
      cmocka_unit_test(test_extension),
      cmocka_unit_test(test_extension_after_due_and_rejection),
      cmocka_unit_test(test_failed_verification_reopens_from_its_time),
      cmocka_unit_test(test_provisional_year_is_recomputed),
      cmocka_unit_test(test_unknown_type_is_ignored_and_redelivery_detected),
      cmocka_unit_test(test_takeover_arms_only_what_is_known_to_be_read),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
