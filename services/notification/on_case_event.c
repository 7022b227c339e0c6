/* on_case_event.c - tells the reporter a case was received and the officer it was
 * assigned to, never an officer with a conflict and never allegation text by SMS. */
#include "notification.h"
#include "render.h"

#include "calendar/sla.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

static char *case_key(const char *case_id)
{
  return dub_xasprintf("duban:notify:case:{%s}", case_id);
}

static void count(struct notification *n, const char *channel, const char *template,
                  const char *status)
{
  char *labels = dub_xasprintf("channel=\"%s\",template=\"%s\",status=\"%s\"", channel,
                               template, status);
  dub_metrics_counter_add(dub_runtime_metrics(n->rt), "duban_notifications_total",
                          "Notifications by channel, template and state.", labels, 1);
  free(labels);
}

/* Renders template '<type>.<channel>' and writes it once to the outbox. A missing
 * template means the configuration does not send this message: not an error. */
static enum dub_err send_one(struct notification *n, const struct dub_config *config,
                             struct notification_msg *msg, const char *type,
                             const json_t *vars)
{
  char *name = dub_xasprintf("%s.%s", type, msg->channel);
  char *text = NULL, *why = NULL, *subject = NULL, *body = NULL;
  enum dub_err rc = DUB_OK;
  bool written = false;
  const char *tpl = json_string_value(json_object_get(config->templates, name));
  if(!tpl || !msg->to)
    goto out;
  if(strcmp(msg->channel, "email") == 0) {
    char *subject_tpl = NULL, *body_tpl = NULL;
    rc = notification_split_email(tpl, &subject_tpl, &body_tpl);
    if(!rc)
      rc = notification_render(subject_tpl, vars, &subject, &why);
    if(!rc)
      rc = notification_render(body_tpl, vars, &body, &why);
    free(subject_tpl);
    free(body_tpl);
    msg->subject = subject;
    msg->text = body;
  } else {
    rc = notification_render(tpl, vars, &text, &why);
    /* An editor's final newline is not part of an SMS: it would count as a character. */
    for(size_t len = text ? strlen(text) : 0;
        len && (text[len - 1] == '\n' || text[len - 1] == '\r'); len--)
      text[len - 1] = '\0';
    msg->text = text;
  }
  if(rc) {
    dub_log_at(DUB_LOG_ERROR, msg->case_id, NULL, "template %s: %s", name,
               why ? why : "no Subject line");
    count(n, msg->channel, name, "technical-failure");
    rc = DUB_OK; /* a broken template is a config problem, not a reason to stall */
    goto out;
  }
  msg->template = name;
  rc = notification_outbox_write(n, msg, &written);
  if(!rc && written) {
    rc = notification_record(n, msg, "sent");
    count(n, msg->channel, name, "sent");
    dub_log_at(DUB_LOG_INFO, msg->case_id, NULL, "%s %s to %s written to the outbox",
               msg->channel, name, msg->recipient_id);
  }
out:
  free(name);
  free(text);
  free(subject);
  free(body);
  free(why);
  return rc;
}

static json_t *find_by_id(const json_t *arr, const char *id)
{
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v)
  {
    const char *vid = dub_json_str(v, "id");
    if(vid && id && strcmp(vid, id) == 0)
      return v;
  }
  return NULL;
}

/* The reporter's phone, opened from the sealed block; NULL when anonymous. */
static char *reporter_phone(struct notification *n, const json_t *data,
                            const char *case_id)
{
  const char *sealed = dub_json_str(data, "reporter_sealed");
  char *plain = NULL, *phone = NULL, *why = NULL;
  size_t len = 0;
  json_t *who = NULL;
  if(dub_json_bool(data, "anonymous", true) || !sealed)
    return NULL;
  if(dub_crypto_open(n->keys, sealed, case_id, &plain, &len)) {
    dub_log_at(DUB_LOG_ERROR, case_id, NULL, "reporter block cannot be opened");
    return NULL;
  }
  if(dub_json_parse(plain, len, &who, &why) == DUB_OK)
    phone = dub_xstrdup(dub_json_str(who, "phone"));
  json_decref(who);
  free(why);
  dub_crypto_plain_free(plain);
  return phone;
}

static enum dub_err on_received(struct notification *n, const struct dub_case_event *ev)
{
  const json_t *data = ev->data;
  const char *case_id = ev->case_id;
  /* What later messages need, without the reporter. */
  json_t *info =
      json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "title", json_object_get(data, "title"),
                "severity", json_object_get(data, "severity"), "clock_start",
                json_object_get(data, "clock_start"), "received_at",
                json_object_get(data, "received_at"), "subject_unit",
                json_object_get(json_object_get(data, "subject"), "unit_id"));
  char *key = case_key(case_id);
  enum dub_err rc = dub_runtime_cache_set_json(n->rt, key, info);
  free(key);
  json_decref(info);
  if(rc)
    return rc;
  char *phone = reporter_phone(n, data, case_id);
  if(!phone)
    return DUB_OK;
  struct dub_config *config = dub_runtime_config(n->rt);
  json_t *vars = json_pack("{s:s}", "case_id", case_id);
  struct notification_msg msg = {.case_id = case_id,
                                 .cause_id = ev->id,
                                 .channel = "sms",
                                 .recipient_id = "reporter",
                                 .to = phone};
  rc = send_one(n, config, &msg, "duban.case.received", vars);
  json_decref(vars);
  dub_config_unref(config);
  free(phone);
  return rc;
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

static enum dub_err on_assigned(struct notification *n, const struct dub_case_event *ev,
                                char **why)
{
  const json_t *data = ev->data;
  const char *case_id = ev->case_id;
  const char *officer_id = dub_json_str(data, "officer");
  json_t *info = NULL, *vars = NULL;
  struct dub_config *config = NULL;
  enum dub_err rc = DUB_OK;
  if(!officer_id)
    return DUB_OK; /* needs manual assignment: nobody to tell yet */
  char *key = case_key(case_id);
  rc = dub_runtime_cache_get_json(n->rt, key, &info);
  free(key);
  if(rc) {
    *why = dub_xstrdup("assigned before received: case unknown to notification");
    goto out;
  }
  config = dub_runtime_config(n->rt);
  const json_t *officer =
      find_by_id(json_object_get(config->directory, "officers"), officer_id);
  if(!officer) {
    *why = dub_xasprintf("officer '%s' is not in directory.json", officer_id);
    rc = DUB_ERR_NOT_FOUND;
    goto out;
  }
  /* Recusal holds here too: an officer with a conflict is never told about the case. */
  const char *subject = dub_json_str(info, "subject_unit");
  const char *home = dub_json_str(officer, "unit");
  if(subject &&
     ((home && strcmp(home, subject) == 0) ||
      dub_json_array_has_str(json_object_get(officer, "conflicts"), subject))) {
    dub_log_at(DUB_LOG_ERROR, case_id, NULL,
               "officer %s has a conflict with the subject unit: not notified",
               officer_id);
    count(n, "any", "duban.case.assigned", "refused-conflict");
    goto out;
  }
  struct dub_sla_moments m;
  rc = dub_sla_compute_case(config->sla, config->calendar, info, &m, why);
  if(rc)
    goto out;
  const json_t *unit =
      find_by_id(json_object_get(config->directory, "units"), dub_json_str(data, "unit"));
  vars = json_pack("{s:s, s:O?, s:O?, s:o, s:o}", "case_id", case_id, "title",
                   json_object_get(info, "title"), "unit_name",
                   json_object_get(unit, "name"), "accept_by", shown(m.accept_by),
                   "due_at", shown(m.due_at));
  struct notification_msg sms = {.case_id = case_id,
                                 .cause_id = ev->id,
                                 .channel = "sms",
                                 .recipient_id = officer_id,
                                 .to = dub_json_str(officer, "phone")};
  struct notification_msg email = sms;
  email.channel = "email";
  email.to = dub_json_str(officer, "email");
  rc = send_one(n, config, &sms, "duban.case.assigned", vars);
  if(!rc)
    rc = send_one(n, config, &email, "duban.case.assigned", vars);
out:
  json_decref(vars);
  json_decref(info);
  dub_config_unref(config);
  return rc;
}

enum dub_err notification_on_case_event(void *ctx, const struct dub_kafka_msg *msg,
                                        char **why)
{
  struct notification *n = ctx;
  struct dub_case_event ev;
  enum dub_err rc = dub_case_event_decode(msg, &ev, why);
  if(rc)
    return rc;
  if(strcmp(ev.type, "duban.case.received") == 0)
    rc = on_received(n, &ev);
  else if(strcmp(ev.type, "duban.case.assigned") == 0)
    rc = on_assigned(n, &ev, why);
  dub_case_event_release(&ev);
  return rc;
}
