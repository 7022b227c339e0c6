/* plan.c - the planner: each case event on duban.cases becomes jobs on
 * duban.notifications, one per recipient and channel, rendered and keyed for
 * idempotency. Who hears what comes from the routes (notify.json or the defaults); a
 * recused officer never hears of the case; an SMS never carries a title or names (its
 * templates are checked against an allow-list when they load). The latest assignment
 * of each case and what later messages need are kept in Redis and rebuilt from
 * duban.cases when Redis lost them. */
#include "notification.h"
#include "render.h"

#include "calendar/sla.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "kafka/cloudevent.h"
#include "runtime/rebuild.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

#define CASES_TOPIC "duban.cases"
#define PLANNER_MARK_KEY "duban:notify:planner"
#define MARK_CHECK_MS 500
#define ACK_TIMEOUT_MS 10000

/* The configuration to plan with: the current one when its templates and routes pass
 * the checks, else the last one that did (a refused reload is logged once). *routes_out
 * is set to the routes that go with it, borrowed like the configuration until the next
 * call: a call that takes a new configuration frees the previous routes. */
static struct dub_config *good_config(struct notification *n, const json_t **routes_out)
{
  struct dub_config *config = dub_runtime_config(n->rt);
  *routes_out = n->routes;
  if(config == n->good || config == n->refused) {
    dub_config_unref(config);
    return n->good;
  }
  json_t *routes = NULL;
  char *why = NULL;
  const struct dub_runtime_env *env = dub_runtime_env(n->rt);
  if(notification_config_check(config, env->config_dir, env->schema_dir, &routes, &why)) {
    dub_log_error("configuration refused, notification keeps the previous one: %s", why);
    free(why);
    notification_count(n, "any", "config", "refused");
    dub_config_unref(n->refused);
    n->refused = config; /* not checked again until the next reload */
    return n->good;
  }
  dub_config_unref(n->good);
  json_decref(n->routes);
  n->good = config;
  n->routes = routes;
  *routes_out = routes;
  return n->good;
}

/* "2026-09-30 23:59" in Asia/Shanghai, as messages show deadlines. */
static json_t *shown(int64_t ms)
{
  char text[DUB_TIME_LEN];
  dub_time_format(ms, DUB_SHANGHAI_OFFSET_MIN, text);
  text[10] = ' ';
  text[16] = '\0';
  return json_string(text);
}

static json_t *shown_rfc3339(const char *s)
{
  int64_t ms = 0;
  if(!s || dub_time_parse(s, &ms, NULL))
    return NULL;
  return shown(ms);
}

/* The reporter block, opened; NULL when anonymous or unreadable. Free with
 * json_decref; never log it. */
static json_t *reporter_open(struct notification *n, const json_t *info,
                             const char *case_id)
{
  const char *sealed = dub_json_str(info, "reporter_sealed");
  char *plain = NULL, *why = NULL;
  size_t len = 0;
  json_t *who = NULL;
  if(dub_json_bool(info, "anonymous", true) || !sealed)
    return NULL;
  if(dub_crypto_open(n->keys, sealed, case_id, &plain, &len)) {
    dub_log_at(DUB_LOG_ERROR, case_id, NULL, "reporter block cannot be opened");
    return NULL;
  }
  if(dub_json_parse(plain, len, &who, &why)) {
    dub_log_at(DUB_LOG_ERROR, case_id, NULL, "reporter block is not JSON");
    free(why);
  }
  dub_crypto_plain_free(plain);
  return who;
}

struct plan {
  struct notification *n;
  const struct dub_config *config;
  const struct dub_case_event *ev;
  const json_t *info;
  json_t *vars;
  bool urgent;
  json_t *jobs; /* array of job objects */
};

/* Renders '<type>.<channel>' for one recipient. NULL when there is no such template or
 * it cannot be filled (logged: a configuration problem, not a reason to stall). */
static json_t *make_job(struct plan *p, const char *channel, const char *recipient_id,
                        const char *to, const char *to_sealed, const char *masked)
{
  const char *type = p->ev->type, *case_id = p->ev->case_id;
  char *name = dub_xasprintf("%s.%s", type, channel);
  const char *tpl = json_string_value(json_object_get(p->config->templates, name));
  char *text = NULL, *subject = NULL, *body = NULL, *why = NULL;
  json_t *job = NULL;
  char key[65];
  if(!tpl)
    goto out;
  if(strcmp(channel, "email") == 0) {
    char *subject_tpl = NULL, *body_tpl = NULL;
    enum dub_err rc = notification_split_email(tpl, &subject_tpl, &body_tpl);
    if(rc)
      why = dub_xstrdup("the first line is not a Subject: line");
    if(!rc)
      rc = notification_render(subject_tpl, p->vars, &subject, &why);
    if(!rc)
      rc = notification_render(body_tpl, p->vars, &body, &why);
    free(subject_tpl);
    free(body_tpl);
    if(rc)
      goto fail;
  } else {
    if(notification_sms_template_check(tpl, &why) ||
       notification_render(tpl, p->vars, &text, &why))
      goto fail;
    /* An editor's final newline is not part of an SMS: it would count as a character. */
    for(size_t len = strlen(text);
        len && (text[len - 1] == '\n' || text[len - 1] == '\r'); len--)
      text[len - 1] = '\0';
  }
  notification_job_key(case_id, p->ev->id, recipient_id, channel, key);
  job = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I}", "kind",
                  "job", "key", key, "tag", case_id, "case_id", case_id, "cause",
                  p->ev->id, "event", type, "template", name, "channel", channel,
                  "recipient_id", recipient_id, "urgent", p->urgent, "created_at",
                  (json_int_t)dub_time_now_ms());
  json_object_set_new(job, "masked", json_string(masked));
  if(to)
    json_object_set_new(job, "to", json_string(to));
  else
    json_object_set_new(job, "to_sealed", json_string(to_sealed));
  if(text) {
    size_t chars = notification_utf8_chars(text);
    json_object_set_new(job, "text", json_string(text));
    json_object_set_new(job, "chars", json_integer((json_int_t)chars));
    json_object_set_new(job, "parts", json_integer(notification_sms_parts(chars)));
  } else {
    json_object_set_new(job, "subject", json_string(subject));
    json_object_set_new(job, "body", json_string(body));
  }
  goto out;
fail:
  dub_log_at(DUB_LOG_ERROR, case_id, NULL, "template %s: %s", name, why);
  notification_count(p->n, channel, name, "template-error");
out:
  free(name);
  free(text);
  free(subject);
  free(body);
  free(why);
  return job;
}

/* Jobs for one recipient over the route's channels; an SMS carries its email fallback
 * when the recipient has an address and the event an email template. */
static void plan_recipient(struct plan *p, const json_t *channels, const char *rid,
                           const char *phone, const char *email, bool sealed,
                           const char *masked_phone, const char *masked_email)
{
  const char *token = sealed ? dub_json_str(p->info, "reporter_sealed") : NULL;
  /* duban.notifications is keyed by recipient; each reporter is one of a kind. */
  json_t *kafka_key = strcmp(rid, "reporter") == 0
                          ? json_sprintf("reporter-%s", p->ev->case_id)
                          : json_string(rid);
  json_t *email_job = NULL;
  if(email)
    email_job = make_job(p, "email", rid, sealed ? NULL : email, token, masked_email);
  if(email_job)
    json_object_set(email_job, "kafka_key", kafka_key);
  if(phone && dub_json_array_has_str(channels, "sms")) {
    json_t *sms = make_job(p, "sms", rid, sealed ? NULL : phone, token, masked_phone);
    if(sms)
      json_object_set(sms, "kafka_key", kafka_key);
    if(sms && email_job)
      json_object_set(sms, "fallback", email_job);
    if(sms)
      json_array_append_new(p->jobs, sms);
  }
  if(email_job && dub_json_array_has_str(channels, "email"))
    json_array_append(p->jobs, email_job);
  json_decref(email_job);
  json_decref(kafka_key);
}

/* Plans the jobs of one event and writes them, counted in 'acks' (the caller waits).
 * DUB_ERR_NOT_FOUND with *why, and nothing sent, when the route names officers by role
 * (unit head, supervisors, leaders) and the case's subject unit is unknown: recusals
 * cannot be checked then, and no message is better than one to a recused officer. The
 * assigned officer alone needs no check: assignment never assigns one in conflict. */
static enum dub_err plan_event(struct notification *n, const struct dub_config *config,
                               const json_t *routes, const struct dub_case_event *ev,
                               const json_t *info, struct notification_acks *acks,
                               char **why)
{
  const json_t *data = ev->data;
  const char *clock = dub_json_str(data, "clock");
  long long level = 0;
  dub_json_int(data, "level", &level);
  const json_t *route = notification_route_find(routes, ev->type, clock, (int)level);
  if(!route)
    return DUB_OK;
  /* Deadline's timer events carry it; the case's summary in Redis has it otherwise. */
  const char *subject_unit = dub_json_str(data, "subject_unit");
  if(!subject_unit)
    subject_unit = dub_json_str(info, "subject_unit");
  const json_t *to = json_object_get(route, "to");
  if(!subject_unit && (dub_json_array_has_str(to, NOTIFY_ROLE_UNIT_HEAD) ||
                       dub_json_array_has_str(to, NOTIFY_ROLE_SUPERVISORS) ||
                       dub_json_array_has_str(to, NOTIFY_ROLE_LEADERS))) {
    *why = dub_xasprintf("%s for case '%s': the case's subject unit is unknown (not in "
                         "the event, no summary of the case in redis), so recusals "
                         "cannot be checked; nothing sent",
                         ev->type, ev->case_id);
    return DUB_ERR_NOT_FOUND;
  }
  const char *officer_id = dub_json_str(data, "officer");
  if(!officer_id)
    officer_id = dub_json_str(info, "officer");
  const char *unit_id = dub_json_str(data, "unit");
  if(!unit_id)
    unit_id = dub_json_str(info, "unit");
  const json_t *unit =
      notification_find_by_id(json_object_get(config->directory, "units"), unit_id);
  const char *severity = dub_json_str(info, "severity");
  struct plan p = {
      .n = n, .config = config, .ev = ev, .info = info, .jobs = json_array()};
  p.urgent = dub_json_bool(route, "urgent", false) ||
             (severity && strcmp(severity, "urgent") == 0);
  p.vars = json_pack("{s:s, s:s}", "case_id", ev->case_id, "asked",
                     clock && strcmp(clock, "resolve") == 0 ? "办结" : "签收");
  json_object_set_new(p.vars, "title",
                      json_string(dub_json_str(info, "title")
                                      ? dub_json_str(info, "title")
                                      : "（见督办系统）"));
  if(dub_json_str(unit, "name"))
    json_object_set_new(p.vars, "unit_name", json_string(dub_json_str(unit, "name")));
  if(level)
    json_object_set_new(p.vars, "level", json_sprintf("%lld", level));
  struct dub_sla_moments m;
  char *inner = NULL;
  if(dub_json_str(info, "severity") &&
     !dub_sla_compute_case(config->sla, config->calendar, info, &m, &inner)) {
    json_object_set_new(p.vars, "accept_by", shown(m.accept_by));
    json_object_set_new(p.vars, "due_at", shown(m.due_at));
  }
  free(inner);
  json_t *warn = shown_rfc3339(dub_json_str(data, "warn_at"));
  if(warn)
    json_object_set_new(p.vars, "warn_at", warn);
  json_t *due = shown_rfc3339(dub_json_str(data, "due_at"));
  if(due) {
    json_object_set(p.vars, "deadline", due);
    if(!clock || strcmp(clock, "accept") != 0)
      json_object_set(p.vars, "due_at", due);
    else
      json_object_set(p.vars, "accept_by", due);
    json_decref(due);
  } else if(json_object_get(p.vars, "due_at")) {
    json_object_set(p.vars, "deadline", json_object_get(p.vars, "due_at"));
  }

  const json_t *channels = json_object_get(route, "channels");
  if(dub_json_array_has_str(json_object_get(route, "to"), NOTIFY_ROLE_REPORTER)) {
    json_t *who = reporter_open(n, info, ev->case_id);
    const char *phone = dub_json_str(who, "phone");
    const char *email = dub_json_str(who, "email");
    char *mp = phone ? notification_mask(phone) : NULL;
    char *me = email ? notification_mask(email) : NULL;
    if(who)
      plan_recipient(&p, channels, "reporter", phone, email, true, mp, me);
    free(mp);
    free(me);
    json_decref(who);
  }
  json_t *officers =
      notification_recipients(route, config->directory, officer_id, unit_id, subject_unit,
                              json_object_get(info, "recused"));
  size_t i;
  json_t *o;
  json_array_foreach(officers, i, o)
  {
    const char *phone = dub_json_str(o, "phone"), *email = dub_json_str(o, "email");
    char *mp = phone ? notification_mask(phone) : NULL;
    char *me = email ? notification_mask(email) : NULL;
    plan_recipient(&p, channels, dub_json_str(o, "id"), phone, email, false, mp, me);
    free(mp);
    free(me);
  }
  json_decref(officers);

  json_array_foreach(p.jobs, i, o)
  {
    notification_produce(n, dub_json_str(o, "kafka_key"), "job", o, acks);
  }
  if(json_array_size(p.jobs))
    dub_log_at(DUB_LOG_DEBUG, ev->case_id, ev->traceparent, "%s: %zu jobs", ev->type,
               json_array_size(p.jobs));
  json_decref(p.jobs);
  json_decref(p.vars);
  return DUB_OK;
}

/* The case as notification remembers it; a new empty object when unknown. */
static enum dub_err info_get(struct notification *n, const char *case_id, json_t **info)
{
  char *key = notification_case_info_key(case_id);
  enum dub_err rc = dub_runtime_cache_get_json(n->rt, key, info);
  free(key);
  if(rc == DUB_ERR_NOT_FOUND) {
    *info = json_object();
    return DUB_OK;
  }
  return rc;
}

/* What the event tells about the case: updates 'info' in place. True when it did. */
static bool info_apply(json_t *info, const char *type, const json_t *data)
{
  if(strcmp(type, "duban.case.received") == 0) {
    const char *keep[] = {"title",       "severity",  "clock_start",
                          "received_at", "anonymous", "reporter_sealed"};
    for(size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
      if(json_object_get(data, keep[i]))
        json_object_set(info, keep[i], json_object_get(data, keep[i]));
    const char *subject = dub_json_str(json_object_get(data, "subject"), "unit_id");
    if(subject)
      json_object_set_new(info, "subject_unit", json_string(subject));
    return true;
  }
  if(strcmp(type, "duban.case.assigned") == 0) {
    json_t *recused = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(data, "recused"), i, r)
    {
      const char *id = dub_json_str(r, "officer");
      if(id)
        json_array_append_new(recused, json_string(id));
    }
    json_object_set_new(info, "recused", recused);
    json_object_set(info, "unit", json_object_get(data, "unit"));
    json_object_set(info, "officer", json_object_get(data, "officer"));
    return true;
  }
  return false;
}

static enum dub_err info_put(struct notification *n, const char *case_id, json_t *info)
{
  char *key = notification_case_info_key(case_id);
  enum dub_err rc = dub_runtime_cache_set_json(n->rt, key, info);
  free(key);
  return rc;
}

/* One batch of the rebuild of the case notes: the received and assigned events among
 * 'msgs', applied in order to the notes of their cases (read in one round trip, written
 * in another). */
static enum dub_err rebuild_batch(void *ctx, struct dub_cache *cache,
                                  const struct dub_kafka_msg *msgs, size_t n)
{
  (void)ctx;
  json_t *notes = json_object(); /* case id -> its notes, as Redis has them */
  json_t *events = json_array(); /* [case id, type, data] of those that count */
  for(size_t i = 0; i < n; i++) {
    const void *type = NULL;
    size_t tlen = 0;
    if(dub_kafka_msg_header(&msgs[i], DUB_CE_TYPE_HEADER, &type, &tlen) &&
       !(tlen == 19 && memcmp(type, "duban.case.received", 19) == 0) &&
       !(tlen == 19 && memcmp(type, "duban.case.assigned", 19) == 0))
      continue;
    struct dub_case_event ev;
    char *why = NULL;
    if(dub_case_event_decode(&msgs[i], &ev, &why)) {
      free(why);
      continue;
    }
    if(strcmp(ev.type, "duban.case.received") == 0 ||
       strcmp(ev.type, "duban.case.assigned") == 0) {
      json_array_append_new(events, json_pack("[s, s, O]", ev.case_id, ev.type,
                                              ev.data ? ev.data : json_null()));
      json_object_set_new(notes, ev.case_id, json_null());
    }
    dub_case_event_release(&ev);
  }
  enum dub_err rc = DUB_OK;
  size_t count = json_object_size(notes);
  if(count) {
    struct dub_cache_pipeline *p = dub_cache_pipeline_new();
    const char **ids = dub_xcalloc(count, sizeof *ids);
    size_t k = 0;
    const char *case_id;
    json_t *v;
    json_object_foreach(notes, case_id, v)
    {
      char *key = notification_case_info_key(case_id);
      dub_cache_pipeline_addf(p, "GET %s", key);
      free(key);
      ids[k++] = case_id;
    }
    struct dub_cache_reply **replies = NULL;
    rc = dub_cache_pipeline_exec(cache, p, &replies);
    for(k = 0; !rc && k < count; k++) {
      json_t *doc = NULL;
      char *key = notification_case_info_key(ids[k]);
      enum dub_err grc = dub_runtime_reply_json(replies[k], key, &doc);
      free(key);
      json_object_set_new(notes, ids[k], grc ? json_object() : doc);
    }
    if(!rc)
      dub_cache_replies_free(replies, count);
    free(ids);
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
      if(rc)
        break;
      info_apply(json_object_get(notes, json_string_value(json_array_get(e, 0))),
                 json_string_value(json_array_get(e, 1)), json_array_get(e, 2));
    }
    dub_cache_pipeline_reset(p);
    json_object_foreach(notes, case_id, v)
    {
      if(rc)
        break;
      char *key = notification_case_info_key(case_id);
      char *text = dub_json_dump(v);
      dub_cache_pipeline_addf(p, "SET %s %s", key, text);
      free(text);
      free(key);
    }
    if(!rc)
      rc = dub_cache_pipeline_exec(cache, p, NULL);
    dub_cache_pipeline_free(p);
  }
  json_decref(events);
  json_decref(notes);
  return rc;
}

static const struct dub_rebuild_spec notes_rebuild = {.what = "case notes",
                                                      .topic = CASES_TOPIC,
                                                      .marker = PLANNER_MARK_KEY,
                                                      .batch = 1000,
                                                      /* on the consumer's thread */
                                                      .patience_ms = 10000,
                                                      .apply = rebuild_batch};

/* Reads duban.cases from its beginning to the end it had then and notes every case's
 * received and assigned data, then sets the mark that says Redis holds them. */
static enum dub_err rebuild(struct notification *n)
{
  return dub_rebuild_run(dub_runtime_env(n->rt)->brokers, dub_runtime_cache(n->rt),
                         dub_runtime_metrics(n->rt), &notes_rebuild, NULL, NULL);
}

/* Whether Redis still holds the planner's notes (checked at most every 500 ms). */
static enum dub_err ensure_notes(struct notification *n)
{
  int64_t now = dub_time_mono_ms();
  if(n->notes_checked_at && now - n->notes_checked_at < MARK_CHECK_MS)
    return DUB_OK;
  bool needed = false;
  enum dub_err rc =
      dub_rebuild_needed(dub_runtime_cache(n->rt), PLANNER_MARK_KEY, &needed);
  if(!rc && needed)
    rc = rebuild(n);
  if(!rc)
    n->notes_checked_at = now;
  return rc ? DUB_ERR_UNAVAILABLE : DUB_OK;
}

static bool handled(const char *type)
{
  static const char *const types[] = {"duban.case.received",  "duban.case.assigned",
                                      "duban.case.warning",   "duban.case.overdue",
                                      "duban.case.escalated", "duban.case.closed"};
  for(size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if(strcmp(types[i], type) == 0)
      return true;
  return false;
}

/* One record of duban.cases: the case's summary kept up to date in Redis, its jobs
 * written and counted in 'acks'. */
static enum dub_err on_case_event(struct notification *n, const struct dub_kafka_msg *msg,
                                  struct notification_acks *acks, char **why)
{
  struct dub_case_event ev;
  json_t *info = NULL;
  const void *htype = NULL;
  size_t hlen = 0;
  if(dub_kafka_msg_header(msg, DUB_CE_TYPE_HEADER, &htype, &hlen)) {
    char *t = dub_xstrndup(htype, hlen);
    bool ours = handled(t);
    free(t);
    if(!ours)
      return DUB_OK; /* an action notification does not announce */
  }
  enum dub_err rc = dub_case_event_decode(msg, &ev, why);
  if(rc)
    return rc;
  if(!handled(ev.type))
    goto out;
  rc = info_get(n, ev.case_id, &info);
  if(rc)
    goto out;
  if(info_apply(info, ev.type, ev.data)) {
    rc = info_put(n, ev.case_id, info);
    if(rc)
      goto out;
  }
  if(strcmp(ev.type, "duban.case.assigned") == 0 && !dub_json_str(ev.data, "officer"))
    goto out; /* needs manual assignment: nobody to tell yet */
  const json_t *routes;
  const struct dub_config *config = good_config(n, &routes);
  rc = plan_event(n, config, routes, &ev, info, acks, why);
out:
  json_decref(info);
  dub_case_event_release(&ev);
  return rc;
}

void notification_on_case_events(void *ctx, const struct dub_kafka_msg *msgs,
                                 size_t count, enum dub_err *results, char **whys)
{
  struct notification *n = ctx;
  struct notification_acks acks = {0};
  enum dub_err rc = ensure_notes(n);
  for(size_t i = 0; i < count; i++)
    results[i] = rc ? rc : on_case_event(n, &msgs[i], &acks, &whys[i]);
  /* One wait for the whole poll: waiting per event made the planner as slow as a
   * producer round trip (linger included) per event. */
  if(!rc && notification_acks_wait(&acks, ACK_TIMEOUT_MS)) {
    for(size_t i = 0; i < count; i++) {
      if(results[i] == DUB_OK) {
        results[i] = DUB_ERR_UNAVAILABLE;
        whys[i] = dub_xstrdup("jobs not acknowledged by duban.notifications");
      }
    }
  }
  notification_acks_end(&acks);
}
