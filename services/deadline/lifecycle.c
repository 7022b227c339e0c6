/* lifecycle.c - the case document: states, transitions, moments and timers. */
#include "lifecycle.h"

#include "calendar/calendar.h"
#include "calendar/sla.h"
#include "core/alloc.h"
#include "core/time.h"
#include "json/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  S_RECEIVED = 1u << 0,
  S_ASSIGNED = 1u << 1,
  S_ACCEPTED = 1u << 2,
  S_IN_PROGRESS = 1u << 3,
  S_RETURNED = 1u << 4,
  S_RECTIFIED = 1u << 5,
  S_VERIFIED = 1u << 6,
  S_REOPENED = 1u << 7,
  S_CLOSED = 1u << 8,
  S_CANCELLED = 1u << 9,
  S_ANY = (1u << 10) - 1,
  S_OPEN = S_ANY & ~(S_CLOSED | S_CANCELLED),
  /* The resolve clock runs until the case is rectified, also while it is returned. */
  S_RESOLVING =
      S_RECEIVED | S_ASSIGNED | S_ACCEPTED | S_IN_PROGRESS | S_RETURNED | S_REOPENED,
  /* The accept clock runs until the assigned officer accepts. */
  S_ACCEPTING = S_RECEIVED | S_ASSIGNED,
  /* Where the assignee works on the case. */
  S_WORKING = S_ACCEPTED | S_IN_PROGRESS | S_REOPENED,
};

static const char *const state_names[] = {
    "received",  "assigned", "accepted", "in_progress", "returned",
    "rectified", "verified", "reopened", "closed",      "cancelled",
};

static unsigned state_bit(const json_t *doc)
{
  const char *s = dub_json_str(doc, "state");
  for(size_t i = 0; s && i < sizeof state_names / sizeof state_names[0]; i++)
    if(strcmp(s, state_names[i]) == 0)
      return 1u << i;
  return 0;
}

/* The members a change of calendar may move. */
static const char *const moved_fields[] = {"accept_by", "due_at", "warn_at",
                                           "escalations", "calendar_provisional"};
#define N_MOVED (sizeof moved_fields / sizeof moved_fields[0])

bool deadline_state_known(const char *state)
{
  for(size_t i = 0; state && i < sizeof state_names / sizeof state_names[0]; i++)
    if(strcmp(state, state_names[i]) == 0)
      return true;
  return false;
}

/* ---- times ---------------------------------------------------------------------------
 */

static int64_t ms_of(const json_t *obj, const char *key)
{
  int64_t ms;
  const char *s = dub_json_str(obj, key);
  if(!s || dub_time_parse(s, &ms, NULL))
    return -1;
  return ms;
}

static json_t *instant(int64_t ms)
{
  char text[DUB_TIME_LEN];
  dub_time_format(ms, DUB_SHANGHAI_OFFSET_MIN, text);
  return json_string(text);
}

/* The moment in an event id: its Asia/Shanghai time as YYYYMMDDThhmmss. */
static void compact(int64_t ms, char out[20])
{
  char text[DUB_TIME_LEN];
  dub_time_format(ms, DUB_SHANGHAI_OFFSET_MIN, text);
  /* "2026-10-12T23:59:59+08:00" (a fraction only when ms has one; moments have none) */
  snprintf(out, 20, "%.4s%.2s%.2sT%.2s%.2s%.2s", text, text + 5, text + 8, text + 11,
           text + 14, text + 17);
}

/* ---- moments
 * --------------------------------------------------------------------------- */

static void set_resolve_moments(json_t *doc, const struct dub_sla_moments *m)
{
  json_object_set_new(doc, "due_at", instant(m->due_at));
  json_object_set_new(doc, "warn_at", instant(m->warn_at));
  json_t *levels = json_array();
  for(int i = 0; i < m->n_levels; i++)
    json_array_append_new(levels, json_pack("{s:i, s:o}", "level", m->escalate[i].level,
                                            "at", instant(m->escalate[i].at)));
  json_object_set_new(doc, "escalations", levels);
}

static void timer_id(const json_t *doc, const char *kind, const char *sub, int64_t at,
                     char out[128])
{
  char when[20];
  compact(at, when);
  if(sub)
    snprintf(out, 128, "%s.%s.%s.%s", dub_json_str(doc, "case_id"), kind, sub, when);
  else
    snprintf(out, 128, "%s.%s.%s", dub_json_str(doc, "case_id"), kind, when);
}

static bool fired(const json_t *doc, const char *id)
{
  return dub_json_array_has_str(json_object_get(doc, "fired"), id);
}

/* Every timer of the current moments that applies in the current state, unsorted;
 * ids only when 'ids' (formatting them is most of the work, and a document that fired
 * nothing yet needs none to tell what is pending). */
static size_t timers_of(const json_t *doc, struct deadline_due *out, bool ids)
{
  unsigned s = state_bit(doc);
  size_t n = 0;
  if(s & S_ACCEPTING) {
    int64_t at = ms_of(doc, "accept_by");
    if(at >= 0) {
      out[n] = (struct deadline_due){
          .type = "duban.case.overdue", .clock = "accept", .at_ms = at};
      if(ids)
        timer_id(doc, "overdue", "accept", at, out[n].id);
      n++;
    }
  }
  if(s & S_RESOLVING) {
    int64_t warn = ms_of(doc, "warn_at"), due = ms_of(doc, "due_at");
    if(warn >= 0) {
      out[n] = (struct deadline_due){
          .type = "duban.case.warning", .clock = "resolve", .at_ms = warn};
      if(ids)
        timer_id(doc, "warning", NULL, warn, out[n].id);
      n++;
    }
    if(due >= 0) {
      out[n] = (struct deadline_due){
          .type = "duban.case.overdue", .clock = "resolve", .at_ms = due};
      if(ids)
        timer_id(doc, "overdue", "resolve", due, out[n].id);
      n++;
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "escalations"), i, e)
    {
      long long level = 0;
      int64_t at = ms_of(e, "at");
      if(n == DEADLINE_MAX_DUE || at < 0 || !dub_json_int(e, "level", &level))
        continue;
      out[n] = (struct deadline_due){
          .type = "duban.case.escalated", .level = (int)level, .at_ms = at};
      if(ids) {
        char sub[16];
        snprintf(sub, sizeof sub, "%lld", level);
        timer_id(doc, "escalated", sub, at, out[n].id);
      }
      n++;
    }
  }
  return n;
}

static size_t timers(const json_t *doc, struct deadline_due *out)
{
  return timers_of(doc, out, true);
}

/* Whether any timer of the document fired (else no id needs comparing). */
static bool any_fired(const json_t *doc)
{
  return json_array_size(json_object_get(doc, "fired")) > 0;
}

/* Orders timers by moment; at one moment the accept clock, the warning, the overdue
 * and the escalations by level, as they are listed. */
static int by_moment(const void *a, const void *b)
{
  const struct deadline_due *x = a, *y = b;
  if(x->at_ms != y->at_ms)
    return x->at_ms < y->at_ms ? -1 : 1;
  return 0;
}

size_t deadline_case_due(const json_t *doc, int64_t now_ms, struct deadline_due *out)
{
  struct deadline_due all[DEADLINE_MAX_DUE];
  size_t n = timers(doc, all), k = 0;
  for(size_t i = 0; i < n; i++)
    if(all[i].at_ms <= now_ms && !fired(doc, all[i].id))
      out[k++] = all[i];
  /* insertion order is the tie-break, so a stable sort */
  for(size_t i = 1; i < k; i++)
    for(size_t j = i; j > 0 && by_moment(&out[j - 1], &out[j]) > 0; j--) {
      struct deadline_due t = out[j];
      out[j] = out[j - 1];
      out[j - 1] = t;
    }
  return k;
}

int64_t deadline_case_next(const json_t *doc)
{
  struct deadline_due all[DEADLINE_MAX_DUE];
  bool some = any_fired(doc);
  size_t n = timers_of(doc, all, some);
  int64_t next = -1;
  for(size_t i = 0; i < n; i++)
    if(!(some && fired(doc, all[i].id)) && (next < 0 || all[i].at_ms < next))
      next = all[i].at_ms;
  return next;
}

/* Sets the flags that follow from which timers of the current moments fired. */
static void refresh_flags(json_t *doc)
{
  struct deadline_due all[DEADLINE_MAX_DUE];
  bool some = any_fired(doc);
  size_t n = some ? timers(doc, all) : 0; /* nothing fired: no flag set */
  bool accept = false, resolve = false;
  long long level = 0;
  for(size_t i = 0; i < n; i++) {
    if(!fired(doc, all[i].id))
      continue;
    if(all[i].level > level)
      level = all[i].level;
    else if(all[i].clock && strcmp(all[i].type, "duban.case.overdue") == 0)
      *(strcmp(all[i].clock, "accept") == 0 ? &accept : &resolve) = true;
  }
  json_object_set_new(doc, "overdue",
                      json_pack("{s:b, s:b}", "accept", accept, "resolve", resolve));
  json_object_set_new(doc, "escalation_level", json_integer(level));
}

/* ---- creation
 * --------------------------------------------------------------------------- */

json_t *deadline_case_new(const json_t *received, const json_t *sla,
                          const struct dub_calendar *cal, enum dub_err *err, char **why)
{
  static const char *const copied[] = {"case_id", "kind",   "category",    "severity",
                                       "title",   "region", "received_at", "clock_start"};
  const char *severity = dub_json_str(received, "severity");
  const json_t *resolve = json_object_get(json_object_get(sla, "resolve"), severity);
  struct dub_sla_moments m;
  *why = NULL;
  if(!severity || !resolve) {
    *err = DUB_ERR_CONFIG;
    *why = dub_xasprintf("sla.json has no resolve period for severity '%s'",
                         severity ? severity : "(none)");
    return NULL;
  }
  /* The case keeps the SLA it was received under. */
  json_t *own = json_pack("{s:O, s:{s:O}, s:O, s:O}", "accept",
                          json_object_get(sla, "accept"), "resolve", severity, resolve,
                          "warn_before", json_object_get(sla, "warn_before"), "escalate",
                          json_object_get(sla, "escalate"));
  if(!own) {
    *err = DUB_ERR_CONFIG;
    *why = dub_xstrdup("sla.json lacks accept, warn_before or escalate");
    return NULL;
  }
  *err = dub_sla_compute_case(own, cal, received, &m, why);
  if(*err) {
    json_decref(own);
    return NULL;
  }
  json_t *doc = json_object();
  for(size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
    json_t *v = json_object_get(received, copied[i]);
    if(v)
      json_object_set(doc, copied[i], v);
  }
  json_object_set(doc, "subject_unit",
                  json_object_get(json_object_get(received, "subject"), "unit_id"));
  json_object_set_new(doc, "clock_start", instant(m.clock_start));
  json_object_set_new(doc, "state", json_string("received"));
  json_object_set_new(doc, "unit", json_null());
  json_object_set_new(doc, "assignee", json_null());
  json_object_set_new(doc, "needs_manual", json_false());
  json_object_set_new(doc, "attempt", json_integer(0));
  json_object_set_new(doc, "returns", json_integer(0));
  json_object_set_new(doc, "sla", own);
  json_object_set_new(doc, "accept_start", instant(m.clock_start));
  json_object_set_new(doc, "accept_by", instant(m.accept_by));
  set_resolve_moments(doc, &m);
  json_object_set_new(doc, "calendar_provisional", json_boolean(m.provisional));
  json_object_set_new(doc, "generation", json_integer(1));
  json_object_set_new(
      doc, "basis",
      json_pack("{s:s, s:o}", "kind", "received", "at", instant(m.clock_start)));
  json_object_set_new(doc, "extension", json_null());
  json_object_set_new(doc, "fired", json_array());
  refresh_flags(doc);
  json_object_set_new(doc, "history", json_array());
  return doc;
}

bool deadline_case_has_event(const json_t *doc, const char *event_id)
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

/* ---- moving the moments ------------------------------------------------------------ */

static void bump_generation(json_t *doc)
{
  long long g = 1;
  dub_json_int(doc, "generation", &g);
  json_object_set_new(doc, "generation", json_integer(g + 1));
}

/* The resolve moments of a clock (re)started at 'start_ms' under the case's own SLA. */
static enum dub_err restart_resolve(json_t *doc, int64_t start_ms,
                                    const struct dub_calendar *cal, char **why)
{
  struct dub_sla_moments m;
  enum dub_err rc = dub_sla_compute(json_object_get(doc, "sla"), cal,
                                    dub_json_str(doc, "severity"), start_ms, &m, why);
  if(rc)
    return rc;
  set_resolve_moments(doc, &m);
  json_object_set_new(doc, "calendar_provisional", json_boolean(m.provisional));
  return DUB_OK;
}

static enum dub_err move_due(json_t *doc, int64_t due_ms, const struct dub_calendar *cal,
                             char **why)
{
  struct dub_sla_moments m = {0};
  enum dub_err rc =
      dub_sla_compute_from_due(json_object_get(doc, "sla"), cal, due_ms, &m, why);
  if(rc)
    return rc;
  set_resolve_moments(doc, &m);
  json_object_set_new(doc, "calendar_provisional", json_boolean(m.provisional));
  return DUB_OK;
}

static enum dub_err restart_accept(json_t *doc, int64_t start_ms,
                                   const struct dub_calendar *cal, char **why)
{
  struct dub_calendar_period p;
  bool provisional = false;
  enum dub_err rc = dub_calendar_period_parse(
      json_object_get(json_object_get(doc, "sla"), "accept"), &p, why);
  if(rc)
    return rc;
  json_object_set_new(doc, "accept_start", instant(start_ms));
  json_object_set_new(
      doc, "accept_by",
      instant(dub_calendar_period_deadline(cal, start_ms, p, &provisional)));
  if(provisional)
    json_object_set_new(doc, "calendar_provisional", json_true());
  return DUB_OK;
}

/* ---- transitions ------------------------------------------------------------------ */

/* What an effect works on. 'doc' is a shallow copy of the case's document, its values
 * shared with the document: an effect replaces top-level members and never changes a
 * nested value in place (so that a refusal leaves the document as it was, without a
 * deep copy per event). */
struct step {
  json_t *doc;
  const json_t *data;
  const char *event_id;
  int64_t at_ms;
  const struct dub_calendar *cal;
  char **why;
};

typedef enum dub_err (*effect_fn)(struct step *st);

/* Takes ownership of 'message'. */
static enum dub_err refuse(struct step *st, char *message)
{
  *st->why = message;
  return DUB_ERR_INVALID_TRANSITION;
}

static enum dub_err on_assigned(struct step *st)
{
  json_t *doc = st->doc;
  long long attempt = 0, before = 0;
  dub_json_int(doc, "attempt", &before);
  if(!dub_json_int(st->data, "attempt", &attempt))
    attempt = before + 1;
  json_object_set(doc, "unit", json_object_get(st->data, "unit"));
  json_t *officer = json_object_get(st->data, "officer");
  json_object_set(doc, "assignee", officer ? officer : json_null());
  json_object_set_new(doc, "needs_manual",
                      json_boolean(dub_json_bool(st->data, "needs_manual", false)));
  json_object_set_new(doc, "attempt", json_integer(attempt));
  /* A reassignment gives the new officer a full accept period of their own. */
  if(before > 0 && attempt != before)
    return restart_accept(doc, st->at_ms, st->cal, st->why);
  return DUB_OK;
}

static enum dub_err on_accepted(struct step *st)
{
  json_object_set_new(st->doc, "accepted_at", instant(st->at_ms));
  return DUB_OK;
}

static enum dub_err on_extension_requested(struct step *st)
{
  json_t *doc = st->doc;
  int64_t due = ms_of(doc, "due_at"), wanted = ms_of(st->data, "new_due");
  if(!json_is_null(json_object_get(doc, "extension")))
    return refuse(st, dub_xstrdup("an extension is already pending"));
  if(st->at_ms >= due)
    return refuse(st,
                  dub_xasprintf("an extension must be requested before the due moment %s",
                                dub_json_str(doc, "due_at")));
  if(wanted <= due)
    return refuse(
        st, dub_xasprintf("the requested due moment is not after the current one %s",
                          dub_json_str(doc, "due_at")));
  json_object_set_new(doc, "extension",
                      json_pack("{s:O, s:o, s:s}", "new_due",
                                json_object_get(st->data, "new_due"), "requested_at",
                                instant(st->at_ms), "event", st->event_id));
  return DUB_OK;
}

static enum dub_err on_extension_decided(struct step *st)
{
  json_t *doc = st->doc;
  const json_t *ext = json_object_get(doc, "extension");
  if(!json_is_object(ext))
    return refuse(st, dub_xstrdup("no extension is pending"));
  enum dub_err rc = DUB_OK;
  if(dub_json_bool(st->data, "approved", false)) {
    int64_t due = ms_of(st->data, "new_due");
    if(due < 0)
      due = ms_of(ext, "new_due");
    if(due <= ms_of(doc, "due_at"))
      return refuse(
          st, dub_xasprintf("the approved due moment is not after the current one %s",
                            dub_json_str(doc, "due_at")));
    rc = move_due(doc, due, st->cal, st->why);
    if(rc)
      return rc;
    json_object_set_new(
        doc, "basis", json_pack("{s:s, s:o}", "kind", "extension", "due", instant(due)));
    bump_generation(doc);
  }
  json_object_set_new(doc, "extension", json_null());
  return rc;
}

static enum dub_err on_rectified(struct step *st)
{
  json_object_set_new(st->doc, "rectified_at", instant(st->at_ms));
  return DUB_OK;
}

/* A failed verification reopens the case with a new resolve period from now. */
static enum dub_err on_verified(struct step *st)
{
  json_t *doc = st->doc;
  json_object_set_new(doc, "verified_at", instant(st->at_ms));
  if(dub_json_bool(st->data, "passed", false))
    return DUB_OK;
  json_object_set_new(doc, "state", json_string("reopened"));
  json_object_set_new(doc, "rectified_at", json_null());
  json_object_set_new(doc, "reopened_at", instant(st->at_ms));
  enum dub_err rc = restart_resolve(doc, st->at_ms, st->cal, st->why);
  if(rc)
    return rc;
  json_object_set_new(
      doc, "basis",
      json_pack("{s:s, s:o}", "kind", "reopened", "at", instant(st->at_ms)));
  bump_generation(doc);
  return DUB_OK;
}

static enum dub_err on_returned(struct step *st)
{
  long long returns = 0;
  dub_json_int(st->doc, "returns", &returns);
  json_object_set_new(st->doc, "returns", json_integer(returns + 1));
  json_object_set(st->doc, "returned_by", json_object_get(st->doc, "assignee"));
  json_object_set_new(st->doc, "assignee", json_null());
  return DUB_OK;
}

static enum dub_err on_closed(struct step *st)
{
  json_t *doc = st->doc;
  int64_t rectified = ms_of(doc, "rectified_at"), due = ms_of(doc, "due_at");
  json_object_set_new(doc, "closed_at", instant(st->at_ms));
  json_object_set_new(doc, "closed_on_time",
                      json_boolean(rectified >= 0 && rectified <= due));
  return DUB_OK;
}

static enum dub_err on_cancelled(struct step *st)
{
  json_object_set_new(st->doc, "cancelled_at", instant(st->at_ms));
  return DUB_OK;
}

/* A timer event this service published, read back: remembered as fired. */
static enum dub_err on_timer(struct step *st)
{
  json_t *list = json_object_get(st->doc, "fired");
  if(!dub_json_array_has_str(list, st->event_id)) {
    json_t *more = json_is_array(list) ? json_copy(list) : json_array();
    json_array_append_new(more, json_string(st->event_id));
    json_object_set_new(st->doc, "fired", more);
  }
  return DUB_OK;
}

/* A calendar change: the moments are recomputed on the calendar in force when the event
 * is read (the one that caused it, or a newer one), so a late event cannot bring back
 * older moments. */
static enum dub_err on_deadline_changed(struct step *st)
{
  json_t *changed = NULL;
  if(!deadline_case_recompute(st->doc, st->cal, &changed))
    return DUB_OK;
  for(size_t i = 0; i < N_MOVED; i++)
    json_object_set(st->doc, moved_fields[i], json_object_get(changed, moved_fields[i]));
  json_decref(changed);
  bump_generation(st->doc);
  return DUB_OK;
}

struct transition {
  const char *type;
  unsigned from;  /* states it is allowed in */
  const char *to; /* NULL: the state stays */
  effect_fn effect;
};

static const struct transition transitions[] = {
    {"duban.case.assigned", S_RECEIVED | S_RETURNED | S_ASSIGNED, "assigned",
     on_assigned},
    {"duban.case.accepted", S_ASSIGNED, "accepted", on_accepted},
    {"duban.case.progressed", S_WORKING, "in_progress", NULL},
    {"duban.case.extension_requested", S_ASSIGNED | S_WORKING, NULL,
     on_extension_requested},
    {"duban.case.extension_decided", S_ASSIGNED | S_WORKING | S_RETURNED | S_RECTIFIED,
     NULL, on_extension_decided},
    {"duban.case.rectified", S_WORKING, "rectified", on_rectified},
    {"duban.case.verified", S_RECTIFIED, "verified", on_verified},
    {"duban.case.returned", S_ASSIGNED | S_ACCEPTED | S_IN_PROGRESS, "returned",
     on_returned},
    {"duban.case.closed", S_VERIFIED, "closed", on_closed},
    {"duban.case.cancelled", S_OPEN, "cancelled", on_cancelled},
    {"duban.case.warning", S_ANY, NULL, on_timer},
    {"duban.case.overdue", S_ANY, NULL, on_timer},
    {"duban.case.escalated", S_ANY, NULL, on_timer},
    {"duban.case.deadline_changed", S_ANY, NULL, on_deadline_changed},
    /* A second received for an existing case is never allowed (its id differs, or it
     * would be a redelivery). */
    {"duban.case.received", 0, NULL, NULL},
};

enum dub_err deadline_case_apply(json_t *doc, const json_t *event, int64_t at_ms,
                                 const struct dub_calendar *cal, char **why)
{
  const char *type = dub_json_str(event, "type");
  const struct transition *t = NULL;
  *why = NULL;
  for(size_t i = 0; type && i < sizeof transitions / sizeof transitions[0]; i++)
    if(strcmp(transitions[i].type, type) == 0)
      t = &transitions[i];
  if(!t)
    return DUB_OK; /* another service's event type: not part of the lifecycle */
  const char *state = dub_json_str(doc, "state");
  if(!(state_bit(doc) & t->from)) {
    *why = dub_xasprintf("%s is not allowed in state %s", type, state ? state : "(none)");
    return DUB_ERR_INVALID_TRANSITION;
  }
  /* Effects work on a shallow copy (struct step), so that a refusal leaves the document
   * as it was. */
  json_t *work = json_copy(doc);
  struct step st = {.doc = work,
                    .data = json_object_get(event, "data"),
                    .event_id = dub_json_str(event, "id"),
                    .at_ms = at_ms,
                    .cal = cal,
                    .why = why};
  if(t->to)
    json_object_set_new(work, "state", json_string(t->to));
  enum dub_err rc = t->effect ? t->effect(&st) : DUB_OK;
  if(rc) {
    json_decref(work);
    return rc;
  }
  refresh_flags(work);
  json_t *history = json_object_get(work, "history");
  history = json_is_array(history) ? json_copy(history) : json_array();
  json_object_set_new(work, "history", history);
  json_array_append_new(history, json_pack("{s:O?, s:O?, s:O?, s:O?, s:o}", "type",
                                           json_object_get(event, "type"), "id",
                                           json_object_get(event, "id"), "source",
                                           json_object_get(event, "source"), "time",
                                           json_object_get(event, "time"), "applied_at",
                                           instant(at_ms)));
  json_object_update(doc, work);
  json_decref(work);
  return DUB_OK;
}

/* ---- timer events and recomputation ------------------------------------------------ */

json_t *deadline_case_timer_data(const json_t *doc, const struct deadline_due *due)
{
  json_t *data = json_pack(
      "{s:O, s:O, s:O, s:O}", "case_id", json_object_get(doc, "case_id"), "unit",
      json_object_get(doc, "unit"), "officer", json_object_get(doc, "assignee"),
      "calendar_provisional", json_object_get(doc, "calendar_provisional"));
  if(json_is_null(json_object_get(data, "unit")))
    json_object_del(data, "unit");
  /* For notification's recusal check, which must not depend on a summary in Redis. */
  if(json_is_string(json_object_get(doc, "subject_unit")))
    json_object_set(data, "subject_unit", json_object_get(doc, "subject_unit"));
  if(strcmp(due->type, "duban.case.escalated") == 0) {
    json_object_set_new(data, "level", json_integer(due->level));
    json_object_set(data, "due_at", json_object_get(doc, "due_at"));
    json_object_set_new(data, "escalate_at", instant(due->at_ms));
  } else {
    json_object_set_new(data, "clock", json_string(due->clock));
    if(strcmp(due->clock, "accept") == 0) {
      json_object_set(data, "due_at", json_object_get(doc, "accept_by"));
    } else {
      json_object_set(data, "due_at", json_object_get(doc, "due_at"));
      if(strcmp(due->type, "duban.case.warning") == 0)
        json_object_set_new(data, "warn_at", instant(due->at_ms));
    }
  }
  return data;
}

bool deadline_case_recompute(const json_t *doc, const struct dub_calendar *cal,
                             json_t **changed)
{
  *changed = NULL;
  if(!(state_bit(doc) & S_OPEN))
    return false;
  json_t *work = json_deep_copy(doc);
  const json_t *basis = json_object_get(doc, "basis");
  const char *kind = dub_json_str(basis, "kind");
  char *why = NULL;
  enum dub_err rc;
  if(kind && strcmp(kind, "extension") == 0)
    rc = move_due(work, ms_of(basis, "due"), cal, &why);
  else
    rc = restart_resolve(work, ms_of(basis, "at"), cal, &why);
  if(!rc)
    rc = restart_accept(work, ms_of(doc, "accept_start"), cal, &why);
  free(why);
  bool differs = false;
  for(size_t i = 0; !rc && i < N_MOVED; i++)
    differs |= !json_equal(json_object_get(work, moved_fields[i]),
                           json_object_get(doc, moved_fields[i]));
  if(!rc && differs) {
    long long gen = 1;
    dub_json_int(doc, "generation", &gen);
    *changed = json_pack("{s:O, s:s, s:I}", "case_id", json_object_get(doc, "case_id"),
                         "reason", "calendar", "generation", (json_int_t)(gen + 1));
    for(size_t i = 0; i < N_MOVED; i++)
      json_object_set(*changed, moved_fields[i], json_object_get(work, moved_fields[i]));
  }
  json_decref(work);
  return *changed != NULL;
}

/* ---- what queries count ------------------------------------------------------------ */

void deadline_case_counts(const json_t *doc, struct deadline_counts *out)
{
  unsigned s = state_bit(doc);
  const json_t *overdue = json_object_get(doc, "overdue");
  out->state = dub_json_str(doc, "state");
  out->unit = dub_json_str(doc, "unit");
  out->category = dub_json_str(doc, "category");
  out->region = dub_json_str(doc, "region");
  out->open = (s & S_OPEN) != 0;
  out->overdue =
      out->open && (((s & S_RESOLVING) && dub_json_bool(overdue, "resolve", false)) ||
                    ((s & S_ACCEPTING) && dub_json_bool(overdue, "accept", false)));
  bool closed = (s & S_CLOSED) != 0;
  bool on_time = dub_json_bool(doc, "closed_on_time", false);
  out->closed_on_time = closed && on_time;
  out->closed_late = closed && !on_time;
}

bool deadline_case_overdue(const json_t *doc, int64_t now_ms)
{
  unsigned s = state_bit(doc);
  return ((s & S_RESOLVING) && now_ms > ms_of(doc, "due_at")) ||
         ((s & S_ACCEPTING) && now_ms > ms_of(doc, "accept_by"));
}

struct deadline_takeover deadline_takeover_decide(int64_t high, int64_t committed,
                                                  bool state_present)
{
  struct deadline_takeover t = {.known = high >= 0};
  if(!t.known)
    return t;
  t.rebuild = high > 0 && !state_present;
  t.armed = high == 0 || (!t.rebuild && committed >= high);
  return t;
}
