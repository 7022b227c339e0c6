/* kannel.c - SMS through Kannel's sendsms interface (smsbox), UTF-8 text sent as UCS-2
 * with delivery reports to our /v1/dlr. Requests go out several at once (a libcurl multi
 * handle) over connections kept alive between them. */
#include "provider.h"

#include "core/alloc.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

/* One request slot: an easy handle (reused, so that its settings need no reallocation)
 * and the answer's first bytes. */
struct slot {
  CURL *easy;
  struct dub_buf body;
  struct notification_sms msg;
  bool busy;
};

struct notification_kannel {
  CURLM *multi; /* owns the connection pool */
  struct slot *slots;
  size_t parallel;
  char *url;
  long timeout_ms;
};

static size_t keep_body(char *data, size_t size, size_t n, void *opaque)
{
  struct dub_buf *body = opaque;
  if(body->len < 512)
    dub_buf_append(body, data, size * n);
  return size * n;
}

enum dub_err notification_kannel_new(const char *url, long timeout_ms, size_t parallel,
                                     struct notification_kannel **out, char **why)
{
  if(strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
    *why = dub_xstrdup("DUBAN_SMS_URL: expected an http:// sendsms URL");
    return DUB_ERR_CONFIG;
  }
  struct notification_kannel *k = dub_xcalloc(1, sizeof *k);
  k->parallel = parallel ? parallel : 1;
  k->slots = dub_xcalloc(k->parallel, sizeof *k->slots);
  k->multi = curl_multi_init();
  bool ok = k->multi != NULL;
  for(size_t i = 0; ok && i < k->parallel; i++)
    ok = (k->slots[i].easy = curl_easy_init()) != NULL;
  if(!ok) {
    notification_kannel_free(k);
    *why = dub_xstrdup("libcurl cannot create a handle");
    return DUB_ERR_INTERNAL;
  }
  /* As many connections as requests at once, all kept for the next batch. */
  curl_multi_setopt(k->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)k->parallel);
  curl_multi_setopt(k->multi, CURLMOPT_MAXCONNECTS, (long)k->parallel);
  k->url = dub_xstrdup(url);
  k->timeout_ms = timeout_ms;
  *out = k;
  return DUB_OK;
}

void notification_kannel_free(struct notification_kannel *k)
{
  if(!k)
    return;
  for(size_t i = 0; i < k->parallel; i++) {
    if(k->slots[i].easy)
      curl_easy_cleanup(k->slots[i].easy);
    dub_buf_release(&k->slots[i].body);
  }
  if(k->multi)
    curl_multi_cleanup(k->multi);
  free(k->slots);
  free(k->url);
  free(k);
}

/* Sets up the slot's handle for its message. */
static void prepare(struct notification_kannel *k, struct slot *sl)
{
  CURL *e = sl->easy;
  struct notification_sms *msg = &sl->msg;
  char *e_to = curl_easy_escape(e, msg->to, 0);
  char *e_text = curl_easy_escape(e, msg->text, 0);
  char *dlr = dub_xasprintf("%s&s=%%d&at=%%T", msg->dlr_url);
  char *e_dlr = curl_easy_escape(e, dlr, 0);
  char *url = dub_xasprintf("%s%sto=%s&text=%s&charset=UTF-8&coding=2&dlr-mask=27"
                            "&dlr-url=%s",
                            k->url, strchr(k->url, '?') ? "&" : "?", e_to, e_text, e_dlr);
  curl_easy_reset(e);
  curl_easy_setopt(e, CURLOPT_URL, url); /* copied by libcurl */
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, k->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   k->timeout_ms < 2000 ? k->timeout_ms : 2000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &sl->body);
  dub_buf_reset(&sl->body);
  curl_free(e_to);
  curl_free(e_text);
  curl_free(e_dlr);
  free(dlr);
  free(url);
}

/* What the finished request of 'sl' says about its message. */
static void conclude(struct slot *sl, CURLcode cc)
{
  struct notification_sms *msg = &sl->msg;
  long status = 0;
  double pretransfer = 0, total = 0;
  curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(sl->easy, CURLINFO_PRETRANSFER_TIME, &pretransfer);
  curl_easy_getinfo(sl->easy, CURLINFO_TOTAL_TIME, &total);
  msg->seconds = total;
  if(cc == CURLE_OK) {
    /* The answer names neither the number nor the text; keep its first line. */
    const char *data = sl->body.data ? sl->body.data : "";
    size_t line = strcspn(data, "\r\n");
    msg->detail =
        dub_xasprintf("HTTP %ld %.*s", status, (int)(line > 120 ? 120 : line), data);
    if(status == 202 || status == 200)
      msg->result = NOTIFY_SENT;
    else if(status == 401 || status == 403)
      msg->result = NOTIFY_TECHNICAL;
    else if(status >= 400 && status < 500)
      msg->result = NOTIFY_PERMANENT;
    else
      msg->result = NOTIFY_TEMPORARY;
  } else {
    msg->detail = dub_xasprintf("%s", curl_easy_strerror(cc));
    /* Once the request was on its way (pretransfer done), a timeout or a broken
     * connection leaves it unknown whether the gateway took it. */
    if(pretransfer > 0 && cc != CURLE_COULDNT_CONNECT && cc != CURLE_COULDNT_RESOLVE_HOST)
      msg->result = NOTIFY_UNKNOWN;
    else
      msg->result = NOTIFY_TEMPORARY;
  }
}

/* Fills the free slots from the stream; false once it has no more. */
static bool fill(struct notification_kannel *k, const struct notification_sms_stream *st,
                 size_t *active)
{
  for(size_t i = 0; i < k->parallel; i++) {
    struct slot *sl = &k->slots[i];
    if(sl->busy)
      continue;
    memset(&sl->msg, 0, sizeof sl->msg);
    enum notification_sms_next nx = st->next(st->ctx, &sl->msg, *active);
    if(nx == NOTIFY_SMS_WAIT && *active)
      return true;
    if(nx != NOTIFY_SMS_READY)
      return false;
    prepare(k, sl);
    if(curl_multi_add_handle(k->multi, sl->easy) != CURLM_OK) {
      sl->msg.result = NOTIFY_TEMPORARY;
      sl->msg.detail = dub_xstrdup("libcurl refused the request");
      st->done(st->ctx, &sl->msg);
      continue; /* the slot stays free for the next round */
    }
    sl->busy = true;
    (*active)++;
  }
  return true;
}

/* Ends every request on its way and every message still to come with 'why'. */
static void fail_all(struct notification_kannel *k,
                     const struct notification_sms_stream *st, const char *why)
{
  for(size_t i = 0; i < k->parallel; i++) {
    struct slot *sl = &k->slots[i];
    if(!sl->busy)
      continue;
    curl_multi_remove_handle(k->multi, sl->easy);
    sl->busy = false;
    sl->msg.result = NOTIFY_UNKNOWN; /* it may have left */
    sl->msg.detail = dub_xstrdup(why);
    st->done(st->ctx, &sl->msg);
  }
  struct notification_sms msg;
  for(;;) {
    memset(&msg, 0, sizeof msg);
    if(st->next(st->ctx, &msg, 0) != NOTIFY_SMS_READY)
      break;
    msg.result = NOTIFY_TEMPORARY;
    msg.detail = dub_xstrdup(why);
    st->done(st->ctx, &msg);
  }
}

void notification_kannel_send_stream(struct notification_kannel *k,
                                     const struct notification_sms_stream *st)
{
  size_t active = 0;
  bool more = true;
  for(;;) {
    if(more)
      more = fill(k, st, &active);
    if(!active) {
      if(!more)
        return;
      continue; /* every request of the round was refused by libcurl: ask again */
    }
    int running = 0, queued = 0;
    CURLMcode mc = curl_multi_perform(k->multi, &running);
    CURLMsg *m;
    while((m = curl_multi_info_read(k->multi, &queued))) {
      if(m->msg != CURLMSG_DONE)
        continue;
      for(size_t i = 0; i < k->parallel; i++) {
        struct slot *sl = &k->slots[i];
        if(sl->busy && sl->easy == m->easy_handle) {
          CURLcode cc = m->data.result;
          curl_multi_remove_handle(k->multi, sl->easy); /* m is invalid from here */
          conclude(sl, cc);
          sl->busy = false;
          active--;
          st->done(st->ctx, &sl->msg);
          break;
        }
      }
    }
    if(mc != CURLM_OK) {
      /* Not expected (libcurl out of memory). */
      fail_all(k, st, curl_multi_strerror(mc));
      return;
    }
    if(active && running)
      curl_multi_poll(k->multi, NULL, 0, 1000, NULL);
  }
}

/* The stream of notification_kannel_send_many(): the array in order. */
struct array_stream {
  struct notification_sms *msgs;
  size_t n, next;
};

static enum notification_sms_next array_next(void *ctx, struct notification_sms *msg,
                                             size_t in_flight)
{
  struct array_stream *a = ctx;
  (void)in_flight;
  if(a->next == a->n)
    return NOTIFY_SMS_END;
  *msg = a->msgs[a->next];
  msg->opaque = &a->msgs[a->next++];
  return NOTIFY_SMS_READY;
}

static void array_done(void *ctx, struct notification_sms *msg)
{
  (void)ctx;
  struct notification_sms *orig = msg->opaque;
  orig->result = msg->result;
  orig->detail = msg->detail;
  orig->seconds = msg->seconds;
}

void notification_kannel_send_many(struct notification_kannel *k,
                                   struct notification_sms *msgs, size_t n)
{
  struct array_stream a = {.msgs = msgs, .n = n};
  const struct notification_sms_stream st = {array_next, array_done, &a};
  notification_kannel_send_stream(k, &st);
}

enum notification_result notification_kannel_send(struct notification_kannel *k,
                                                  const char *to, const char *text,
                                                  const char *dlr_url, char **detail)
{
  struct notification_sms msg = {.to = to, .text = text, .dlr_url = dlr_url};
  notification_kannel_send_many(k, &msg, 1);
  *detail = msg.detail;
  return msg.result;
}
