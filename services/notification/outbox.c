/* outbox.c - the development provider: each message becomes one file, written once. */
#include "notification.h"
#include "render.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "crypto/crypto.h"
#include "json/json.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Hex SHA-256 of the idempotency key fields, in 'out'. */
static void idempotency_key(const struct notification_msg *msg,
                            char out[DUB_CRYPTO_SHA256_HEX_LEN])
{
  struct dub_buf fields = DUB_BUF_INIT;
  const char *parts[] = {msg->case_id, msg->cause_id, msg->recipient_id, msg->channel};
  for(size_t i = 0; i < 4; i++)
    dub_buf_append(&fields, parts[i], strlen(parts[i]) + 1); /* NUL-separated */
  dub_crypto_sha256_hex(fields.data, fields.len, out);
  dub_buf_release(&fields);
}

static enum dub_err mkdirs(const char *path)
{
  char *p = dub_xstrdup(path);
  enum dub_err rc = DUB_OK;
  for(char *s = p + 1; *s && !rc; s++) {
    if(*s != '/')
      continue;
    *s = '\0';
    if(mkdir(p, 0750) && errno != EEXIST)
      rc = DUB_ERR_IO;
    *s = '/';
  }
  if(!rc && mkdir(p, 0750) && errno != EEXIST)
    rc = DUB_ERR_IO;
  free(p);
  return rc;
}

/* RFC 2047 encoded-word (base64) for a UTF-8 subject. Returns a new string. */
static char *encode_subject(const char *subject)
{
  size_t len = strlen(subject);
  unsigned char *b64 = dub_xmalloc(4 * ((len + 2) / 3) + 1);
  EVP_EncodeBlock(b64, (const unsigned char *)subject, (int)len);
  char *out = dub_xasprintf("=?UTF-8?B?%s?=", b64);
  free(b64);
  return out;
}

static char *render_file(const struct notification *n, const struct notification_msg *msg,
                         const char *key)
{
  if(strcmp(msg->channel, "sms") == 0) {
    size_t chars = notification_utf8_chars(msg->text);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:i}", "key", key, "case_id",
                            msg->case_id, "template", msg->template, "to", msg->to,
                            "text", msg->text, "chars", (json_int_t)chars, "parts",
                            notification_sms_parts(chars));
    char *text = dub_json_dump(doc);
    json_decref(doc);
    return text;
  }
  char date[64];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  char *subject = encode_subject(msg->subject ? msg->subject : "");
  char *text = dub_xasprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
                             "Message-ID: <%s@duban>\r\nMIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=UTF-8\r\n"
                             "Content-Transfer-Encoding: 8bit\r\n\r\n%s",
                             n->conf.smtp_from, msg->to, subject, date, key, msg->text);
  free(subject);
  return text;
}

enum dub_err notification_outbox_write(struct notification *n,
                                       const struct notification_msg *msg, bool *written)
{
  char key[DUB_CRYPTO_SHA256_HEX_LEN];
  enum dub_err rc = DUB_OK;
  char *dir = NULL, *path = NULL, *tmp = NULL, *text = NULL;
  *written = false;
  idempotency_key(msg, key);
  dir = dub_xasprintf("%s/%s", n->conf.outbox_dir, msg->channel);
  path =
      dub_xasprintf("%s/%s.%s", dir, key, strcmp(msg->channel, "sms") ? "eml" : "json");
  tmp = dub_xasprintf("%s/.%s.tmp", dir, key);
  rc = mkdirs(dir);
  if(rc)
    goto out;
  if(access(path, F_OK) == 0)
    goto out; /* sent before: exactly one message per key */
  text = render_file(n, msg, key);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
  if(fd < 0) {
    rc = DUB_ERR_IO;
    goto out;
  }
  size_t len = strlen(text), off = 0;
  while(off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if(w <= 0)
      break;
    off += (size_t)w;
  }
  if(off != len || fsync(fd) || close(fd)) {
    rc = DUB_ERR_IO;
    unlink(tmp);
    goto out;
  }
  /* link() fails if a concurrent writer got there first: still exactly one file. */
  if(link(tmp, path) == 0)
    *written = true;
  else if(errno != EEXIST)
    rc = DUB_ERR_IO;
  unlink(tmp);
out:
  if(rc)
    dub_log_at(DUB_LOG_ERROR, msg->case_id, NULL, "cannot write outbox file in %s: %s",
               dir, strerror(errno));
  free(text);
  free(tmp);
  free(path);
  free(dir);
  return rc;
}
