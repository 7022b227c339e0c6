/* kannel.c - SMS through Kannel's sendsms interface (smsbox), UTF-8 text sent as UCS-2
 * with delivery reports to our /v1/dlr. */
#include "provider.h"

#include "core/alloc.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct notification_kannel {
  CURL *curl;
  char *url;
  long timeout_ms;
  struct curl_slist *none;
};

static size_t keep_body(char *data, size_t size, size_t n, void *opaque)
{
  struct dub_buf *body = opaque;
  if(body->len < 512)
    dub_buf_append(body, data, size * n);
  return size * n;
}

enum dub_err notification_kannel_new(const char *url, long timeout_ms,
                                     struct notification_kannel **out, char **why)
{
  if(strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
    *why = dub_xstrdup("DUBAN_SMS_URL: expected an http:// sendsms URL");
    return DUB_ERR_CONFIG;
  }
  struct notification_kannel *k = dub_xcalloc(1, sizeof *k);
  k->curl = curl_easy_init();
  if(!k->curl) {
    free(k);
    *why = dub_xstrdup("libcurl cannot create a handle");
    return DUB_ERR_INTERNAL;
  }
  k->url = dub_xstrdup(url);
  k->timeout_ms = timeout_ms;
  *out = k;
  return DUB_OK;
}

void notification_kannel_free(struct notification_kannel *k)
{
  if(!k)
    return;
  curl_easy_cleanup(k->curl);
  free(k->url);
  free(k);
}

enum notification_result notification_kannel_send(struct notification_kannel *k,
                                                  const char *to, const char *text,
                                                  const char *dlr_url, char **detail)
{
  struct dub_buf body = DUB_BUF_INIT;
  char *e_to = curl_easy_escape(k->curl, to, 0);
  char *e_text = curl_easy_escape(k->curl, text, 0);
  char *dlr = dub_xasprintf("%s&s=%%d&at=%%T", dlr_url);
  char *e_dlr = curl_easy_escape(k->curl, dlr, 0);
  char *url = dub_xasprintf("%s%sto=%s&text=%s&charset=UTF-8&coding=2&dlr-mask=27"
                            "&dlr-url=%s",
                            k->url, strchr(k->url, '?') ? "&" : "?", e_to, e_text, e_dlr);
  enum notification_result res;
  curl_easy_reset(k->curl);
  curl_easy_setopt(k->curl, CURLOPT_URL, url);
  curl_easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, k->timeout_ms);
  curl_easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT_MS,
                   k->timeout_ms < 2000 ? k->timeout_ms : 2000L);
  curl_easy_setopt(k->curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, keep_body);
  curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, &body);
  CURLcode cc = curl_easy_perform(k->curl);
  long status = 0;
  double pretransfer = 0;
  curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(k->curl, CURLINFO_PRETRANSFER_TIME, &pretransfer);
  if(cc == CURLE_OK) {
    /* The answer names neither the number nor the text; keep its first line. */
    size_t line = body.data ? strcspn(body.data, "\r\n") : 0;
    *detail = dub_xasprintf("HTTP %ld %.*s", status, (int)(line > 120 ? 120 : line),
                            body.data ? body.data : "");
    if(status == 202 || status == 200)
      res = NOTIFY_SENT;
    else if(status == 401 || status == 403)
      res = NOTIFY_TECHNICAL;
    else if(status >= 400 && status < 500)
      res = NOTIFY_PERMANENT;
    else
      res = NOTIFY_TEMPORARY;
  } else {
    *detail = dub_xasprintf("%s", curl_easy_strerror(cc));
    /* Once the request was on its way (pretransfer done), a timeout or a broken
     * connection leaves it unknown whether the gateway took it. */
    if(pretransfer > 0 && cc != CURLE_COULDNT_CONNECT && cc != CURLE_COULDNT_RESOLVE_HOST)
      res = NOTIFY_UNKNOWN;
    else
      res = NOTIFY_TEMPORARY;
  }
  curl_free(e_to);
  curl_free(e_text);
  curl_free(e_dlr);
  free(dlr);
  free(url);
  dub_buf_release(&body);
  return res;
}
