/* notification.h - the notification service's context, shared by its files. */
#ifndef NOTIFICATION_NOTIFICATION_H
#define NOTIFICATION_NOTIFICATION_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>

struct dub_runtime;
struct dub_kafka_msg;
struct dub_http_route;
struct dub_crypto_keyring;

/* Notification's own environment (the common one is the runtime's). */
struct notification_conf {
  char *outbox_dir; /* DUBAN_OUTBOX_DIR [var/outbox] */
  char *pii_key;   /* DUBAN_PII_KEY (required: only this service opens reporter blocks) */
  char *sms_url;   /* DUBAN_SMS_URL: Kannel sendsms URL; unset = outbox */
  char *smtp_url;  /* DUBAN_SMTP_URL: smtp://host:port; unset = outbox */
  char *smtp_from; /* DUBAN_SMTP_FROM [duban@localhost] */
};

struct notification {
  struct dub_runtime *rt;
  struct notification_conf conf;
  struct dub_crypto_keyring *keys;
};

/* One message to one recipient over one channel. */
struct notification_msg {
  const char *case_id;
  const char *cause_id;     /* id of the event that caused it */
  const char *template;     /* "duban.case.assigned.sms" */
  const char *channel;      /* "sms" or "email" */
  const char *recipient_id; /* officer id, or "reporter" */
  const char *to;           /* phone number or email address */
  const char *subject;      /* email only */
  const char *text;
};

/* config.c */
enum dub_err notification_open(struct notification *n, char **why);
void notification_close(struct notification *n);

/* outbox.c: writes the message to the outbox folder exactly once per idempotency key
 * (case, causing event, recipient, channel). *written is false when the key was already
 * there (a redelivery). */
enum dub_err notification_outbox_write(struct notification *n,
                                       const struct notification_msg *msg, bool *written);

/* record.c: the delivery record for GET /v1/notifications, recipient masked. */
enum dub_err notification_record(struct notification *n,
                                 const struct notification_msg *msg, const char *status);
char *notification_records_key(const char *case_id);

/* on_case_event.c */
enum dub_err notification_on_case_event(void *ctx, const struct dub_kafka_msg *msg,
                                        char **why);

/* get_notifications.c: GET /v1/notifications?case_id= */
extern const struct dub_http_route notification_route_list;

#endif
