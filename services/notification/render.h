/* render.h - message templates with {{name}} placeholders (no I/O). */
#ifndef NOTIFICATION_RENDER_H
#define NOTIFICATION_RENDER_H

#include "core/err.h"

#include <jansson.h>

/* Replaces each {{name}} in 'tpl' by the string member 'name' of 'vars' (borrowed).
 * Returns DUB_OK with a new string in *out (free with free()), or DUB_ERR_CONFIG with
 * *why naming the first placeholder that 'vars' lacks or that is not closed. */
enum dub_err notification_render(const char *tpl, const json_t *vars, char **out,
                                 char **why);

/* Number of Unicode code points of UTF-8 text 's'. */
size_t notification_utf8_chars(const char *s);

/* Parts an SMS of 'chars' characters takes: 1 up to 70, else ceil(chars / 67). */
int notification_sms_parts(size_t chars);

/* Masks a phone number or email address for query answers: "+86138****0001",
 * "z***@duban.example". Returns a new string. */
char *notification_mask(const char *recipient);

/* Splits an email template into its "Subject: " first line and the body after the blank
 * line. *subject and *body are new strings. DUB_ERR_CONFIG when the first line is not a
 * Subject header. */
enum dub_err notification_split_email(const char *text, char **subject, char **body);

/* RFC 2047 encoded words (base64, UTF-8) for a header value, split on character
 * boundaries so that no encoded word exceeds 75 characters, folded with CRLF SP.
 * Returns a new string. */
char *notification_encode_header(const char *value);

/* A complete RFC 5322 message: From, To, Subject (RFC 2047), Date (RFC 5322, from
 * 'now_ms'), Message-ID <key@duban> derived from the idempotency key, MIME-Version,
 * text/plain UTF-8 body sent 8bit with CRLF line ends. Returns a new string. */
char *notification_email_compose(const char *from, const char *to, const char *subject,
                                 const char *body, const char *key, long long now_ms);

#endif
