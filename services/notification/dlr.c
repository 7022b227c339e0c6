/* dlr.c - GET or POST /v1/dlr: Kannel's delivery reports move an SMS to delivered or
 * permanent-failure. Kannel calls the dlr-url we gave it. Two checks, as the route has
 * no bearer token: the caller's address must be in DUBAN_DLR_ALLOW (loopback by
 * default, where smsbox runs beside the service), and the URL must carry the MAC of the
 * idempotency key under the PII key's blinding key, so that only reports for messages
 * this service sent are taken. */
#include "notification.h"

#include "core/alloc.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "http/http.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

#define ACK_TIMEOUT_MS 5000

void notification_dlr_mac(const struct notification *n, const char *key, char out[65])
{
  char full[DUB_CRYPTO_BLIND_HEX_LEN];
  char *what = dub_xasprintf("dlr:%s", key);
  if(dub_crypto_blind(n->keys, what, strlen(what), full))
    full[0] = '\0';
  memcpy(out, full, 65);
  free(what);
}

/* Whether 'mac' is notification_dlr_mac() of 'key' under any key of the ring: a report
 * for an SMS sent before a key rotation still checks. */
static bool dlr_mac_matches(const struct notification *n, const char *key,
                            const char *mac)
{
  char *what = dub_xasprintf("dlr:%s", key);
  bool ours = dub_crypto_blind_matches(n->keys, what, strlen(what), mac);
  free(what);
  return ours;
}

/* Kannel's dlr-mask bits: 1 delivered, 2 failed, 4 buffered, 8 SMSC accepted, 16 SMSC
 * rejected. */
static const char *state_of(long status)
{
  if(status & 1)
    return "delivered";
  if(status & (2 | 16))
    return "permanent-failure";
  if(status & (4 | 8))
    return "sent";
  return NULL;
}

static enum dub_err handle(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  struct notification *n = dub_runtime_service(ctx);
  struct dub_runtime *rt = ctx;
  const char *key = dub_http_request_query(req, "k");
  const char *tag = dub_http_request_query(req, "t");
  const char *mac = dub_http_request_query(req, "m");
  const char *status = dub_http_request_query(req, "s");
  char *end = NULL;
  if(!dub_http_allow_match(n->conf.dlr_allowed, dub_http_request_peer(req))) {
    dub_http_reply_error(reply, DUB_ERR_FORBIDDEN,
                         "delivery reports are taken only from DUBAN_DLR_ALLOW", NULL);
    return DUB_OK;
  }
  long st = status ? strtol(status, &end, 10) : -1;
  if(!key || !tag || !mac || !status || !*status || *end || st < 0) {
    dub_http_reply_error(reply, DUB_ERR_MALFORMED, "k, t, m and a numeric s are required",
                         NULL);
    return DUB_OK;
  }
  if(!dlr_mac_matches(n, key, mac)) {
    dub_http_reply_error(reply, DUB_ERR_FORBIDDEN, "not a delivery report we asked for",
                         NULL);
    return DUB_OK;
  }
  const char *state = state_of(st);
  if(!state) {
    dub_http_reply_json(reply, 200, json_pack("{s:s}", "status", "ignored"));
    return DUB_OK;
  }
  char *mkey = notification_msg_key(tag, key);
  struct dub_cache_reply *r = NULL;
  const char *argv[] = {"HGET", mkey, "job"};
  enum dub_err rc = dub_cache_command(dub_runtime_cache(rt), &r, 3, argv, NULL);
  free(mkey);
  if(rc) {
    dub_cache_reply_free(r);
    return DUB_ERR_UNAVAILABLE;
  }
  json_t *job = NULL;
  char *why = NULL;
  if(r->type != DUB_CACHE_STRING || dub_json_parse(r->str, r->len, &job, &why)) {
    free(why);
    dub_cache_reply_free(r);
    dub_http_reply_error(reply, DUB_ERR_NOT_FOUND, "no such message", NULL);
    return DUB_OK;
  }
  dub_cache_reply_free(r);
  struct notification_acks acks = {0};
  json_t *extra = json_pack("{s:I}", "dlr", (json_int_t)st);
  char *stored = NULL;
  rc =
      notification_state_set(n, dub_runtime_cache(rt), job, state, extra, &acks, &stored);
  json_decref(extra);
  if(!rc && strcmp(stored, state) == 0 && strcmp(state, "permanent-failure") == 0 &&
     json_object_get(job, "fallback"))
    notification_produce(n, dub_json_str(job, "kafka_key"), "job",
                         json_object_get(job, "fallback"), &acks);
  if(!rc)
    rc = notification_acks_wait(&acks, ACK_TIMEOUT_MS);
  if(!rc) {
    dub_log_at(DUB_LOG_DEBUG, dub_json_str(job, "case_id"), NULL,
               "delivery report %ld for %s: %s", st, key, stored);
    dub_http_reply_json(reply, 200, json_pack("{s:s}", "status", stored));
  }
  notification_acks_end(&acks); /* when not waited for: a write failed */
  free(stored);
  json_decref(job);
  return rc;
}

const struct dub_http_route notification_route_dlr_get = {
    .method = "GET",
    .pattern = "/v1/dlr",
    .handler = handle,
};

static const char *const form_media[] = {"application/x-www-form-urlencoded",
                                         "text/plain", NULL};

const struct dub_http_route notification_route_dlr_post = {
    .method = "POST",
    .pattern = "/v1/dlr",
    .media = form_media,
    .handler = handle,
};
