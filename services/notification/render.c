/* render.c - {{name}} substitution and SMS length accounting. */
#include "render.h"

#include "core/alloc.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum dub_err notification_render(const char *tpl, const json_t *vars, char **out,
                                 char **why)
{
  struct dub_buf buf = DUB_BUF_INIT;
  const char *p = tpl;
  *out = NULL;
  *why = NULL;
  while(*p) {
    const char *open = strstr(p, "{{");
    if(!open) {
      dub_buf_append(&buf, p, strlen(p));
      break;
    }
    dub_buf_append(&buf, p, (size_t)(open - p));
    const char *close = strstr(open + 2, "}}");
    if(!close) {
      *why =
          dub_xasprintf("placeholder at offset %zu is not closed", (size_t)(open - tpl));
      goto fail;
    }
    char *name = dub_xstrndup(open + 2, (size_t)(close - open - 2));
    const char *value = json_string_value(json_object_get(vars, name));
    if(!value) {
      *why = dub_xasprintf("no value for {{%s}}", name);
      free(name);
      goto fail;
    }
    free(name);
    dub_buf_append(&buf, value, strlen(value));
    p = close + 2;
  }
  *out = dub_buf_detach(&buf);
  return DUB_OK;
fail:
  dub_buf_release(&buf);
  return DUB_ERR_CONFIG;
}

size_t notification_utf8_chars(const char *s)
{
  size_t n = 0;
  for(; *s; s++)
    if(((unsigned char)*s & 0xC0) != 0x80)
      n++;
  return n;
}

int notification_sms_parts(size_t chars)
{
  if(chars <= 70)
    return 1;
  return (int)((chars + 66) / 67);
}

char *notification_mask(const char *recipient)
{
  const char *at = strchr(recipient, '@');
  if(at) {
    size_t local = (size_t)(at - recipient);
    return dub_xasprintf("%.*s***%s", local ? 1 : 0, recipient, at);
  }
  size_t len = strlen(recipient);
  if(len <= 8)
    return dub_xstrdup("****");
  char *out = dub_xstrdup(recipient);
  for(size_t i = 6; i < len - 4; i++)
    out[i] = '*';
  return out;
}

enum dub_err notification_split_email(const char *text, char **subject, char **body)
{
  static const char prefix[] = "Subject: ";
  *subject = *body = NULL;
  if(strncmp(text, prefix, sizeof prefix - 1) != 0)
    return DUB_ERR_CONFIG;
  const char *start = text + sizeof prefix - 1;
  const char *eol = strchr(start, '\n');
  if(!eol)
    return DUB_ERR_CONFIG;
  *subject = dub_xstrndup(start, (size_t)(eol - start));
  const char *rest = eol + 1;
  if(*rest == '\n')
    rest++;
  *body = dub_xstrdup(rest);
  return DUB_OK;
}

static char *b64(const unsigned char *data, size_t len)
{
  char *out = dub_xmalloc(4 * ((len + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)out, data, (int)len);
  return out;
}

char *notification_encode_header(const char *value)
{
  struct dub_buf buf = DUB_BUF_INIT;
  size_t len = strlen(value), off = 0;
  if(len == 0)
    return dub_xstrdup("");
  while(off < len) {
    /* 45 bytes give 60 base64 characters, 72 with "=?UTF-8?B?" and "?=". */
    size_t take = len - off > 45 ? 45 : len - off;
    while(take < len - off && take > 0 &&
          ((unsigned char)value[off + take] & 0xC0) == 0x80)
      take--;
    char *word = b64((const unsigned char *)value + off, take);
    dub_buf_appendf(&buf, "%s=?UTF-8?B?%s?=", off ? "\r\n " : "", word);
    free(word);
    off += take;
  }
  return dub_buf_detach(&buf);
}

char *notification_email_compose(const char *from, const char *to, const char *subject,
                                 const char *body, const char *key, long long now_ms)
{
  char date[64];
  time_t secs = (time_t)(now_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  /* UTF-8 as it is (8bit: every line is far below 998 bytes), with CRLF line ends. */
  struct dub_buf out = DUB_BUF_INIT;
  char *subj = notification_encode_header(subject);
  dub_buf_appendf(&out,
                  "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
                  "Message-ID: <%s@duban>\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=UTF-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n\r\n",
                  from, to, subj, date, key);
  for(const char *p = body; *p; p++) {
    if(*p == '\n' && (p == body || p[-1] != '\r'))
      dub_buf_append(&out, "\r", 1);
    dub_buf_append(&out, p, 1);
  }
  if(out.len < 2 || memcmp(out.data + out.len - 2, "\r\n", 2) != 0)
    dub_buf_append(&out, "\r\n", 2);
  free(subj);
  return dub_buf_detach(&out);
}
