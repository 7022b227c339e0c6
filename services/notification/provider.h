/* provider.h - where messages go: Kannel's sendsms, an SMTP server, or the outbox
 * folder. Each send says what became of the message, so the sender can tell a refusal
 * (retry) from a request that may have left (unknown: reconcile, do not resend). */
#ifndef NOTIFICATION_PROVIDER_H
#define NOTIFICATION_PROVIDER_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

enum notification_result {
  NOTIFY_SENT,      /* the provider took it (Kannel 202, SMTP 250, file written) */
  NOTIFY_TEMPORARY, /* refused or unreachable before the request left: retry */
  NOTIFY_PERMANENT, /* the provider will never take it (bad number, 5xx SMTP reply) */
  NOTIFY_TECHNICAL, /* our fault (credentials refused): do not retry */
  NOTIFY_UNKNOWN,   /* the request left and no answer came: reconcile */
};

/* ---- Kannel sendsms over HTTP (libcurl: requests at once over kept-alive connections)
 */
struct notification_kannel;
/* 'url' is DUBAN_SMS_URL: http://host:port/cgi-bin/sendsms?username=..&password=..
 * [&from=..]; 'parallel' (DUBAN_SMS_PARALLEL) requests go out at once at most. Returns a
 * new object in *out; free with notification_kannel_free(). */
enum dub_err notification_kannel_new(const char *url, long timeout_ms, size_t parallel,
                                     struct notification_kannel **out, char **why);
void notification_kannel_free(struct notification_kannel *k);

/* One SMS of notification_kannel_send_many(). */
struct notification_sms {
  const char *to, *text, *dlr_url; /* borrowed */
  enum notification_result result; /* set by the send */
  char *detail;                    /* set by the send: a new string */
  double seconds;                  /* set by the send: the request's duration */
  void *opaque;                    /* the caller's */
};

/* Where notification_kannel_send_stream() takes its messages from and gives their
 * results to. */
enum notification_sms_next {
  NOTIFY_SMS_READY, /* *msg is filled: send it */
  NOTIFY_SMS_WAIT,  /* send nothing more until one of those in flight has ended */
  NOTIFY_SMS_END,   /* no more */
};
struct notification_sms_stream {
  /* Fills *msg (its strings must live until 'done') or says to wait (taken as END when
   * nothing is in flight) or that there are no more; told how many are in flight. */
  enum notification_sms_next (*next)(void *ctx, struct notification_sms *msg,
                                     size_t in_flight);
  /* Takes one finished message: result, detail (now the callee's) and seconds set. */
  void (*done)(void *ctx, struct notification_sms *msg);
  void *ctx;
};
/* Keeps up to 'parallel' requests in flight, each freed slot taking the stream's next
 * message at once, until the stream ends and every request has its result. */
void notification_kannel_send_stream(struct notification_kannel *k,
                                     const struct notification_sms_stream *stream);
/* Sends each message's UTF-8 'text' to 'to' as UCS-2 (coding=2), asking for delivery
 * reports at 'dlr_url' (Kannel's %d escapes are added to it); returns when every one
 * has its result. 'detail' says what the gateway answered (never the number or the
 * text). A stream over the array. */
void notification_kannel_send_many(struct notification_kannel *k,
                                   struct notification_sms *msgs, size_t n);
/* One message: notification_kannel_send_many() of one. */
enum notification_result notification_kannel_send(struct notification_kannel *k,
                                                  const char *to, const char *text,
                                                  const char *dlr_url, char **detail);

/* ---- SMTP (libcurl) ---- */
struct notification_smtp;
enum dub_err notification_smtp_new(const char *url, const char *from, long timeout_ms,
                                   struct notification_smtp **out, char **why);
void notification_smtp_free(struct notification_smtp *s);
/* Sends RFC 5322 'message' to 'to'. */
enum notification_result notification_smtp_send(struct notification_smtp *s,
                                                const char *to, const char *message,
                                                char **detail);

/* ---- the outbox folder ---- */
/* Writes 'content' to '<dir>/<channel>/<key>.<ext>' once: false in *written when the
 * file was there already. Not synced: call notification_outbox_sync() before claiming
 * the batch was sent. */
enum dub_err notification_outbox_write(const char *dir, const char *channel,
                                       const char *key, const char *ext,
                                       const char *content, bool *written);
bool notification_outbox_exists(const char *dir, const char *channel, const char *key,
                                const char *ext);
/* Flushes the file system of 'dir' (syncfs): every file written before is durable. */
enum dub_err notification_outbox_sync(const char *dir);

#endif
