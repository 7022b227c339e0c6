/* policy.c - who hears what, the SMS variable allow-list, quiet hours, backoff. */
#include "policy.h"

#include "core/alloc.h"
#include "core/time.h"
#include "json/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const notification_sms_vars[] = {
    "case_id", "asked",     "accept_by", "due_at", "deadline",
    "warn_at", "unit_name", "level",     NULL,
};

static bool sms_var_allowed(const char *name)
{
  for(size_t i = 0; notification_sms_vars[i]; i++)
    if(strcmp(notification_sms_vars[i], name) == 0)
      return true;
  return false;
}

enum dub_err notification_sms_template_check(const char *tpl, char **why)
{
  const char *p = tpl;
  *why = NULL;
  while((p = strstr(p, "{{")) != NULL) {
    const char *close = strstr(p + 2, "}}");
    if(!close) {
      *why = dub_xasprintf("placeholder at offset %zu is not closed", (size_t)(p - tpl));
      return DUB_ERR_CONFIG;
    }
    char *name = dub_xstrndup(p + 2, (size_t)(close - p - 2));
    if(!sms_var_allowed(name)) {
      struct dub_buf allowed = DUB_BUF_INIT;
      for(size_t i = 0; notification_sms_vars[i]; i++)
        dub_buf_appendf(&allowed, "%s%s", i ? ", " : "", notification_sms_vars[i]);
      *why = dub_xasprintf("{{%s}} is not allowed in an SMS (allowed: %s)", name,
                           allowed.data);
      dub_buf_release(&allowed);
      free(name);
      return DUB_ERR_CONFIG;
    }
    free(name);
    p = close + 2;
  }
  return DUB_OK;
}

enum dub_err notification_templates_check(const json_t *templates, char **why)
{
  const char *name;
  json_t *text;
  *why = NULL;
  json_object_foreach((json_t *)templates, name, text)
  {
    size_t len = strlen(name);
    if(len < 4 || strcmp(name + len - 4, ".sms") != 0)
      continue;
    char *inner = NULL;
    if(notification_sms_template_check(json_string_value(text), &inner)) {
      *why = dub_xasprintf("templates/%s.txt: %s", name, inner);
      free(inner);
      return DUB_ERR_CONFIG;
    }
  }
  return DUB_OK;
}

const char notification_default_routes[] =
    "{\"routes\": ["
    "{\"event\": \"duban.case.received\", \"to\": [\"reporter\"], \"channels\": "
    "[\"sms\"]},"
    "{\"event\": \"duban.case.assigned\", \"to\": [\"officer\"],"
    " \"channels\": [\"sms\", \"email\"]},"
    "{\"event\": \"duban.case.warning\", \"to\": [\"officer\"],"
    " \"channels\": [\"sms\", \"email\"]},"
    "{\"event\": \"duban.case.overdue\", \"to\": [\"officer\", \"unit_head\"],"
    " \"channels\": [\"sms\", \"email\"]},"
    "{\"event\": \"duban.case.escalated\", \"level\": 3,"
    " \"to\": [\"officer\", \"unit_head\", \"supervisors\"], \"channels\": [\"sms\", "
    "\"email\"], \"urgent\": true},"
    "{\"event\": \"duban.case.escalated\", \"level\": 4,"
    " \"to\": [\"officer\", \"unit_head\", \"supervisors\", \"leaders\"],"
    " \"channels\": [\"sms\", \"email\"], \"urgent\": true},"
    "{\"event\": \"duban.case.closed\", \"to\": [\"reporter\"], \"channels\": [\"sms\"]}"
    "]}";

const json_t *notification_route_find(const json_t *routes, const char *type,
                                      const char *clock, int level)
{
  size_t i;
  json_t *r;
  json_array_foreach(routes, i, r)
  {
    const char *ev = dub_json_str(r, "event");
    const char *want_clock = dub_json_str(r, "clock");
    long long want_level = 0;
    if(!ev || strcmp(ev, type) != 0)
      continue;
    if(want_clock && (!clock || strcmp(want_clock, clock) != 0))
      continue;
    if(dub_json_int(r, "level", &want_level) && want_level != level)
      continue;
    return r;
  }
  return NULL;
}

bool notification_recused(const json_t *officer, const char *subject_unit,
                          const json_t *recused)
{
  const char *id = dub_json_str(officer, "id");
  const char *home = dub_json_str(officer, "unit");
  if(id && dub_json_array_has_str(recused, id))
    return true;
  if(!subject_unit)
    return false;
  return (home && strcmp(home, subject_unit) == 0) ||
         dub_json_array_has_str(json_object_get(officer, "conflicts"), subject_unit);
}

const json_t *notification_find_by_id(const json_t *arr, const char *id)
{
  size_t i;
  json_t *v;
  if(!id)
    return NULL;
  json_array_foreach(arr, i, v)
  {
    const char *vid = dub_json_str(v, "id");
    if(vid && strcmp(vid, id) == 0)
      return v;
  }
  return NULL;
}

static void add_officer(json_t *out, const json_t *officer, const char *subject_unit,
                        const json_t *recused)
{
  size_t i;
  json_t *v;
  if(!officer || !dub_json_bool(officer, "active", true) ||
     notification_recused(officer, subject_unit, recused))
    return;
  const char *id = dub_json_str(officer, "id");
  json_array_foreach(out, i, v)
  {
    if(strcmp(dub_json_str(v, "id"), id) == 0)
      return;
  }
  json_array_append(out, (json_t *)officer);
}

static void add_role(json_t *out, const json_t *officers, const char *role,
                     const char *subject_unit, const json_t *recused)
{
  size_t i;
  json_t *o;
  json_array_foreach(officers, i, o)
  {
    if(dub_json_array_has_str(json_object_get(o, "roles"), role))
      add_officer(out, o, subject_unit, recused);
  }
}

json_t *notification_recipients(const json_t *route, const json_t *directory,
                                const char *officer_id, const char *unit_id,
                                const char *subject_unit, const json_t *recused)
{
  json_t *out = json_array();
  const json_t *officers = json_object_get(directory, "officers");
  const json_t *units = json_object_get(directory, "units");
  const json_t *to = json_object_get(route, "to");
  if(dub_json_array_has_str(to, NOTIFY_ROLE_OFFICER))
    add_officer(out, notification_find_by_id(officers, officer_id), subject_unit,
                recused);
  if(dub_json_array_has_str(to, NOTIFY_ROLE_UNIT_HEAD)) {
    const json_t *unit = notification_find_by_id(units, unit_id);
    add_officer(out, notification_find_by_id(officers, dub_json_str(unit, "head")),
                subject_unit, recused);
  }
  if(dub_json_array_has_str(to, NOTIFY_ROLE_SUPERVISORS))
    add_role(out, officers, "supervisor", subject_unit, recused);
  if(dub_json_array_has_str(to, NOTIFY_ROLE_LEADERS))
    add_role(out, officers, "leader", subject_unit, recused);
  return out;
}

static bool parse_hms(const char *s, size_t len, int *out)
{
  int h = 0, m = 0, sec = 0;
  char buf[16], tail;
  if(len == 0 || len >= sizeof buf)
    return false;
  memcpy(buf, s, len);
  buf[len] = '\0';
  int got = sscanf(buf, "%2d:%2d:%2d%c", &h, &m, &sec, &tail);
  if(got == 2 && (len != 5 || buf[2] != ':'))
    return false;
  if(got == 3 && (len != 8 || buf[2] != ':' || buf[5] != ':'))
    return false;
  if(got != 2 && got != 3)
    return false;
  if(h < 0 || h > 24 || m < 0 || m > 59 || sec < 0 || sec > 59 || (h == 24 && (m || sec)))
    return false;
  *out = h * 3600 + m * 60 + sec;
  return true;
}

bool notification_quiet_parse(const char *text, struct notification_quiet *out)
{
  if(strcmp(text, "off") == 0) {
    out->start_s = out->end_s = 0;
    return true;
  }
  const char *dash = strchr(text, '-');
  return dash && parse_hms(text, (size_t)(dash - text), &out->start_s) &&
         parse_hms(dash + 1, strlen(dash + 1), &out->end_s);
}

int64_t notification_quiet_until(const struct notification_quiet *q, int64_t now_ms)
{
  if(q->start_s == q->end_s)
    return 0;
  const int64_t day_ms = 86400000;
  int64_t local = now_ms + (int64_t)DUB_SHANGHAI_OFFSET_MIN * 60000;
  int64_t day = local >= 0 ? local / day_ms : -((-local + day_ms - 1) / day_ms);
  int64_t midnight = day * day_ms - (int64_t)DUB_SHANGHAI_OFFSET_MIN * 60000;
  int64_t s = (now_ms - midnight) / 1000; /* seconds since local midnight */
  int64_t start = q->start_s, end = q->end_s;
  if(start < end)
    return s >= start && s < end ? midnight + end * 1000 : 0;
  if(s >= start) /* before midnight: the window ends tomorrow */
    return midnight + day_ms + end * 1000;
  if(s < end)
    return midnight + end * 1000;
  return 0;
}

int64_t notification_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms,
                                double random)
{
  int64_t d = base_ms;
  for(int i = 2; i < attempt && d < max_ms; i++)
    d *= 2;
  if(d > max_ms)
    d = max_ms;
  return d / 2 + (int64_t)((double)(d - d / 2) * random);
}

bool notification_retries_end(long long attempts, long long max_attempts,
                              int64_t created_ms, int64_t next_ms, int64_t max_age_ms)
{
  return attempts >= max_attempts || next_ms - created_ms > max_age_ms;
}

char *notification_digest_text(const json_t *case_ids, long long count)
{
  struct dub_buf buf = DUB_BUF_INIT;
  size_t i;
  json_t *v;
  dub_buf_appendf(&buf, "【督办】您另有%lld条督办提醒，涉及事项", count);
  json_array_foreach(case_ids, i, v)
  {
    if(i == 2) {
      dub_buf_appendf(&buf, "等");
      break;
    }
    dub_buf_appendf(&buf, "%s%s", i ? "、" : "", json_string_value(v));
  }
  dub_buf_appendf(&buf, "，请登录督办系统查看。");
  return dub_buf_detach(&buf);
}
