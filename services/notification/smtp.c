/* smtp.c - email over SMTP with libcurl; the message is composed by render.c. */
#include "provider.h"

#include "core/alloc.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct notification_smtp {
  CURL *curl;
  char *url;
  char *from;
  long timeout_ms;
};

struct reader {
  const char *data;
  size_t len, off;
};

static size_t read_message(char *buf, size_t size, size_t n, void *opaque)
{
  struct reader *r = opaque;
  size_t room = size * n, left = r->len - r->off;
  size_t take = left < room ? left : room;
  memcpy(buf, r->data + r->off, take);
  r->off += take;
  return take;
}

enum dub_err notification_smtp_new(const char *url, const char *from, long timeout_ms,
                                   struct notification_smtp **out, char **why)
{
  if(strncmp(url, "smtp://", 7) != 0 && strncmp(url, "smtps://", 8) != 0) {
    *why = dub_xstrdup("DUBAN_SMTP_URL: expected smtp://host:port");
    return DUB_ERR_CONFIG;
  }
  struct notification_smtp *s = dub_xcalloc(1, sizeof *s);
  s->curl = curl_easy_init();
  if(!s->curl) {
    free(s);
    *why = dub_xstrdup("libcurl cannot create a handle");
    return DUB_ERR_INTERNAL;
  }
  s->url = dub_xstrdup(url);
  s->from = dub_xasprintf("<%s>", from);
  s->timeout_ms = timeout_ms;
  *out = s;
  return DUB_OK;
}

void notification_smtp_free(struct notification_smtp *s)
{
  if(!s)
    return;
  curl_easy_cleanup(s->curl);
  free(s->url);
  free(s->from);
  free(s);
}

enum notification_result notification_smtp_send(struct notification_smtp *s,
                                                const char *to, const char *message,
                                                char **detail)
{
  struct reader r = {message, strlen(message), 0};
  char *rcpt = dub_xasprintf("<%s>", to);
  struct curl_slist *rcpts = curl_slist_append(NULL, rcpt);
  curl_easy_reset(s->curl);
  curl_easy_setopt(s->curl, CURLOPT_URL, s->url);
  curl_easy_setopt(s->curl, CURLOPT_MAIL_FROM, s->from);
  curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, rcpts);
  curl_easy_setopt(s->curl, CURLOPT_READFUNCTION, read_message);
  curl_easy_setopt(s->curl, CURLOPT_READDATA, &r);
  curl_easy_setopt(s->curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, s->timeout_ms);
  curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS,
                   s->timeout_ms < 2000 ? s->timeout_ms : 2000L);
  curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode cc = curl_easy_perform(s->curl);
  long code = 0;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
  enum notification_result res;
  if(cc == CURLE_OK) {
    res = NOTIFY_SENT;
    *detail = dub_xasprintf("SMTP %ld", code);
  } else {
    *detail = dub_xasprintf("%s (SMTP %ld)", curl_easy_strerror(cc), code);
    if(cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
      res = NOTIFY_TEMPORARY;
    else if(code >= 500 && code < 600)
      res = NOTIFY_PERMANENT;
    else if(code >= 400 && code < 500)
      res = NOTIFY_TEMPORARY;
    else if(r.off > 0)
      res = NOTIFY_UNKNOWN; /* the message was on its way when the link failed */
    else
      res = NOTIFY_TEMPORARY;
  }
  curl_slist_free_all(rcpts);
  free(rcpt);
  return res;
}
