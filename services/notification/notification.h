/* notification.h - the notification service's context, shared by its files.
 *
 * Two stages in one process. The planner (plan.c, consumer group duban-notification on
 * duban.cases) turns each case event into jobs: one per recipient and channel, rendered,
 * with an idempotency key, written to duban.notifications keyed by recipient id. The
 * sender (send.c, its own thread and consumer group duban-notification-sender on
 * duban.notifications) claims each key in Redis before it sends, sends through the
 * provider of the channel (Kannel, SMTP or the outbox folder), and records every state
 * in Redis and as a state record on duban.notifications. */
#ifndef NOTIFICATION_NOTIFICATION_H
#define NOTIFICATION_NOTIFICATION_H

#include "core/err.h"
#include "policy.h"
#include "scripts.h"

struct dub_http_allow;

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct dub_runtime;
struct dub_kafka_msg;
struct dub_http_route;
struct dub_crypto_keyring;
struct dub_config;
struct dub_cache;
struct notification_sender;

#define NOTIFY_TOPIC "duban.notifications"
/* Header naming what a record of duban.notifications is: "job" or "state". */
#define NOTIFY_KIND_HEADER "duban-kind"

/* Notification's own environment (the common one is the runtime's). */
struct notification_conf {
  char *outbox_dir; /* DUBAN_OUTBOX_DIR [var/outbox] */
  char *pii_key;   /* DUBAN_PII_KEY (required: only this service opens reporter blocks) */
  char *sms_url;   /* DUBAN_SMS_URL: Kannel sendsms URL; unset = outbox */
  char *smtp_url;  /* DUBAN_SMTP_URL: smtp://host:port; unset = outbox */
  char *smtp_from; /* DUBAN_SMTP_FROM [duban@localhost] */
  char *dlr_url;   /* DUBAN_DLR_URL [http://127.0.0.1:<port>/v1/dlr] */
  char *dlr_allow; /* DUBAN_DLR_ALLOW [127.0.0.0/8,::1]: who may call /v1/dlr */
  char *quiet;     /* DUBAN_NOTIFY_QUIET_HOURS [22:00-08:00] */
  long sms_per_window;  /* DUBAN_NOTIFY_SMS_PER_HOUR [20] */
  long window_s;        /* DUBAN_NOTIFY_RATE_WINDOW_S [3600] */
  long max_attempts;    /* DUBAN_NOTIFY_MAX_ATTEMPTS [8] */
  long max_age_s;       /* DUBAN_NOTIFY_MAX_AGE_S [86400] */
  long retry_base_ms;   /* DUBAN_NOTIFY_RETRY_BASE_MS [1000] */
  long retry_max_ms;    /* DUBAN_NOTIFY_RETRY_MAX_MS [300000] */
  long send_timeout_ms; /* DUBAN_NOTIFY_SEND_TIMEOUT_MS [5000] */
  long sms_parallel;    /* DUBAN_SMS_PARALLEL [4]: sendsms requests at once */
  long reconcile_s;     /* DUBAN_NOTIFY_RECONCILE_S [600] */
  struct notification_quiet quiet_hours;
  struct dub_http_allow *dlr_allowed; /* dlr_allow, parsed */
};

struct notification {
  struct dub_runtime *rt;
  struct notification_conf conf;
  struct dub_crypto_keyring *keys;
  struct notification_sender *sender;
  /* Planner thread only: the last configuration whose templates and routes passed the
   * checks, and the routes in use. */
  struct dub_config *good;
  struct dub_config *refused; /* the last snapshot refused, not checked again */
  json_t *routes;
  int64_t notes_checked_at; /* when the planner last saw its rebuild mark */
};

/* config.c */
enum dub_err notification_open(struct notification *n, long port, char **why);
void notification_close(struct notification *n);
/* Checks 'config' (SMS templates against the allow-list) and loads notify.json from
 * 'config_dir' (embedded defaults when absent), validated against
 * 'schema_dir'/config/notify.json. On success *routes is a new reference. */
enum dub_err notification_config_check(const struct dub_config *config,
                                       const char *config_dir, const char *schema_dir,
                                       json_t **routes, char **why);

/* job.c: the idempotency key of (case or tag, causing event, recipient, channel), hex
 * SHA-256 in 'out'. */
void notification_job_key(const char *case_id, const char *cause, const char *recipient,
                          const char *channel, char out[65]);
/* Redis keys. Every key of one case carries its case id as hash tag. Return new
 * strings. */
char *notification_msg_key(const char *tag, const char *key);
char *notification_case_keys_key(const char *tag);
char *notification_case_info_key(const char *case_id);
#define NOTIFY_DUE_KEY "duban:notify:due"

/* plan.c: the duban.cases batch handler (see dub_kafka_batch_handler_fn). Every job of
 * the batch is acknowledged by Kafka before any of its records counts as done; a
 * record handled again (after a failure or a rebalance) plans the same idempotency
 * keys, which the sender sends once. */
void notification_on_case_events(void *ctx, const struct dub_kafka_msg *msgs,
                                 size_t count, enum dub_err *results, char **whys);

/* send.c: the sender stage. */
enum dub_err notification_sender_start(struct notification *n, char **why);
/* Stops the sender's thread and closes its connections; readiness says "stopping"
 * from then on. Its memory stays until notification_sender_free(), called once the
 * HTTP server (whose /readyz reads it) has stopped. */
void notification_sender_stop(struct notification *n);
void notification_sender_free(struct notification *n);
bool notification_sender_ready(struct notification *n, char **reason);

/* get_notifications.c, dlr.c */
extern const struct dub_http_route notification_route_list;
extern const struct dub_http_route notification_route_dlr_get;
extern const struct dub_http_route notification_route_dlr_post;

/* dlr.c: the MAC that proves a delivery-report URL was issued by this service: 64 hex
 * digits in 'out'. */
void notification_dlr_mac(const struct notification *n, const char *key, char out[65]);

/* state.c: moves message 'key' (hash tag 'tag') to 'state' unless a delivery report
 * already moved it further (delivered and permanent-failure are not overwritten by
 * sent). Counts the transition in the metrics and writes a state record to
 * duban.notifications (asynchronously: 'pending' is incremented and decremented when
 * acknowledged; 'failed' is set when a write failed). 'job' is borrowed; 'extra'
 * (may be NULL) holds more fields for the record (borrowed). Returns the state now
 * stored. */
/* The writes to duban.notifications one caller waits for: an ack group of libs/kafka,
 * made by the first write. Start with {0}; notification_acks_wait() or
 * notification_acks_end() ends it (the next write starts a new one). */
struct notification_acks {
  struct dub_kafka_acks *group;
};
enum dub_err notification_state_set(struct notification *n, struct dub_cache *cache,
                                    const json_t *job, const char *state,
                                    const json_t *extra, struct notification_acks *acks,
                                    char **stored);
/* "sending" stored as a compare-and-set: only if the message still has 'expect'
 * attempts (the number seen when this instance claimed or leased it); *stored is then
 * "sending" and *attempts the number of this attempt, else *stored is the state it is
 * in ("taken": another instance began an attempt meanwhile). */
enum dub_err notification_state_begin(struct notification *n, struct dub_cache *cache,
                                      const json_t *job, long long expect,
                                      struct notification_acks *acks, char **stored,
                                      long long *attempts);
/* Counts 'state' and writes its state record, as notification_state_set() does after
 * storing it ('attempts' < 0: not known). */
void notification_state_note(struct notification *n, const json_t *job, const char *state,
                             long long attempts, const json_t *extra,
                             struct notification_acks *acks);
/* Waits until every write counted in 'acks' was acknowledged (bounded by timeout_ms),
 * then ends the group. DUB_ERR_UNAVAILABLE when one failed or the time ran out; the
 * reports still out then go to the group, which outlives them. */
enum dub_err notification_acks_wait(struct notification_acks *acks, int timeout_ms);
/* Ends the group without waiting (a no-op when none was started). */
void notification_acks_end(struct notification_acks *acks);
/* Writes 'value' (borrowed) to duban.notifications keyed by 'recipient' with header
 * duban-kind: 'kind', counted in 'acks'. */
enum dub_err notification_produce(struct notification *n, const char *recipient,
                                  const char *kind, const json_t *value,
                                  struct notification_acks *acks);
/* Counts a state in duban_notifications_total. */
void notification_count(struct notification *n, const char *channel,
                        const char *template_name, const char *state);

#endif
