/* test_http.c - libs/http driven over real sockets with libcurl: routing, auth, media
 * types, body limits, the error shape, built-in routes, request ids, deferred answers,
 * concurrency and auth reloads. */
#include "http/auth.h"
#include "http/http.h"
#include "http/internal.h"

#include "core/alloc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define READER_TOKEN "reader-secret-token"
#define WRITER_TOKEN "writer-secret-token"
#define OTHER_TOKEN "other-secret-token"
#define MAX_THREADS 256

/* ---- the service under test ---- */

struct test_ctx {
  atomic_bool ready;
  pthread_mutex_t lock;
  pthread_t threads[MAX_THREADS]; /* deferred completers, joined at teardown */
  size_t nthreads;
  atomic_int deferred; /* handler of /v1/hold has deferred */
  atomic_bool release; /* /v1/hold may complete */
  struct dub_http_pending *held;
};

struct completion {
  struct dub_http_pending *pending;
  char id[DUB_HTTP_REQUEST_ID_MAX + 1];
  long delay_ms;
};

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void spawn(struct test_ctx *ctx, void *(*fn)(void *), void *arg)
{
  pthread_mutex_lock(&ctx->lock);
  assert_true(ctx->nthreads < MAX_THREADS);
  assert_int_equal(pthread_create(&ctx->threads[ctx->nthreads++], NULL, fn, arg), 0);
  pthread_mutex_unlock(&ctx->lock);
}

static void join_all(struct test_ctx *ctx)
{
  pthread_mutex_lock(&ctx->lock);
  for(size_t i = 0; i < ctx->nthreads; i++)
    pthread_join(ctx->threads[i], NULL);
  ctx->nthreads = 0;
  pthread_mutex_unlock(&ctx->lock);
}

static bool ready_cb(void *vctx, char **reason)
{
  struct test_ctx *ctx = vctx;
  if(atomic_load(&ctx->ready))
    return true;
  *reason = dub_xstrdup("kafka is not connected");
  return false;
}

static enum dub_err get_case(void *vctx, struct dub_http_request *req,
                             struct dub_http_reply *reply)
{
  (void)vctx;
  dub_http_reply_json(reply, 200,
                      json_pack("{s:s,s:s}", "case_id",
                                dub_http_request_param(req, "case_id"), "client",
                                dub_auth_client_id(dub_http_request_client(req))));
  return DUB_OK;
}

static enum dub_err delete_case(void *vctx, struct dub_http_request *req,
                                struct dub_http_reply *reply)
{
  (void)vctx;
  (void)req;
  dub_http_reply_json(reply, 200, json_object());
  return DUB_OK;
}

static enum dub_err get_event(void *vctx, struct dub_http_request *req,
                              struct dub_http_reply *reply)
{
  (void)vctx;
  const struct dub_auth_client *client = dub_http_request_client(req);
  const char *source = dub_http_request_param(req, "source");
  dub_http_reply_json(reply, 200,
                      json_pack("{s:s,s:s,s:b}", "source", source, "id",
                                dub_http_request_param(req, "id"), "own",
                                dub_auth_client_may_use_source(client, source)));
  return DUB_OK;
}

static json_t *string_or_null(const char *s)
{
  return s ? json_string(s) : json_null();
}

static enum dub_err search(void *vctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  (void)vctx;
  dub_http_reply_json(
      reply, 200,
      json_pack("{s:o,s:o,s:o,s:o}", "q",
                string_or_null(dub_http_request_query(req, "q")), "limit",
                string_or_null(dub_http_request_query(req, "limit")), "flag",
                string_or_null(dub_http_request_query(req, "flag")), "missing",
                string_or_null(dub_http_request_query(req, "missing"))));
  return DUB_OK;
}

/* Whether the caller is on loopback, by an allow-list, and its address family. */
static enum dub_err peer(void *vctx, struct dub_http_request *req,
                         struct dub_http_reply *reply)
{
  (void)vctx;
  struct dub_http_allow *loopback = NULL, *elsewhere = NULL;
  char *why = NULL;
  assert_int_equal(dub_http_allow_parse("127.0.0.0/8, ::1", &loopback, &why), DUB_OK);
  assert_int_equal(dub_http_allow_parse("10.0.0.0/8,fd00::/8", &elsewhere, &why), DUB_OK);
  const struct sockaddr *sa = dub_http_request_peer(req);
  assert_non_null(sa);
  dub_http_reply_json(reply, 200,
                      json_pack("{s:b,s:b,s:s}", "loopback",
                                dub_http_allow_match(loopback, sa), "elsewhere",
                                dub_http_allow_match(elsewhere, sa), "family",
                                sa->sa_family == AF_INET ? "inet" : "other"));
  dub_http_allow_free(loopback);
  dub_http_allow_free(elsewhere);
  return DUB_OK;
}

static enum dub_err post_event(void *vctx, struct dub_http_request *req,
                               struct dub_http_reply *reply)
{
  (void)vctx;
  size_t len = 0;
  const char *body = dub_http_request_body(req, &len);
  dub_http_reply_header(reply, "Location", "/v1/events/x/y");
  dub_http_reply_json(reply, 202,
                      json_pack("{s:I,s:s%}", "len", (json_int_t)len, "body", body, len));
  return DUB_OK;
}

static void *complete_later(void *arg)
{
  struct completion *c = arg;
  sleep_ms(c->delay_ms);
  dub_http_pending_header(c->pending, "X-Deferred", "yes");
  dub_http_pending_json(c->pending, 202,
                        json_pack("{s:b,s:s}", "deferred", 1, "id", c->id));
  free(c);
  return NULL;
}

static enum dub_err defer(void *vctx, struct dub_http_request *req,
                          struct dub_http_reply *reply)
{
  struct test_ctx *ctx = vctx;
  struct completion *c = dub_xcalloc(1, sizeof *c);
  const char *delay = dub_http_request_query(req, "delay");
  c->delay_ms = delay ? atol(delay) : 50;
  snprintf(c->id, sizeof c->id, "%s", dub_http_request_id(req));
  c->pending = dub_http_reply_defer(reply);
  assert_non_null(c->pending);
  assert_string_equal(dub_http_pending_request_id(c->pending), c->id);
  spawn(ctx, complete_later, c);
  return DUB_OK;
}

/* Defers and waits for the test to say when to complete. */
static enum dub_err hold(void *vctx, struct dub_http_request *req,
                         struct dub_http_reply *reply)
{
  struct test_ctx *ctx = vctx;
  (void)req;
  ctx->held = dub_http_reply_defer(reply);
  atomic_store(&ctx->deferred, 1);
  return DUB_OK;
}

static enum dub_err defer_now(void *vctx, struct dub_http_request *req,
                              struct dub_http_reply *reply)
{
  (void)vctx;
  (void)req;
  /* Completed before the handler even returns. */
  struct dub_http_pending *pending = dub_http_reply_defer(reply);
  /* A second answer after deferring is refused. */
  assert_null(dub_http_reply_defer(reply));
  dub_http_reply_json(reply, 200, json_object());
  dub_http_pending_error(pending, DUB_ERR_CONFLICT, "already closed",
                         json_pack("{s:s}", "state", "closed"));
  return DUB_OK;
}

static enum dub_err conflict(void *vctx, struct dub_http_request *req,
                             struct dub_http_reply *reply)
{
  (void)vctx;
  (void)req;
  (void)reply;
  return DUB_ERR_CONFLICT;
}

static enum dub_err silent(void *vctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  (void)vctx;
  (void)req;
  (void)reply;
  return DUB_OK;
}

static enum dub_err details(void *vctx, struct dub_http_request *req,
                            struct dub_http_reply *reply)
{
  (void)vctx;
  (void)req;
  dub_http_reply_error(reply, DUB_ERR_SCHEMA, "data.title is required",
                       json_pack("[{s:s}]", "path", "/data/title"));
  /* A second answer is ignored. */
  dub_http_reply_json(reply, 200, json_object());
  return DUB_ERR_INTERNAL;
}

static enum dub_err busy(void *vctx, struct dub_http_request *req,
                         struct dub_http_reply *reply)
{
  (void)vctx;
  (void)req;
  dub_http_reply_error(reply, DUB_ERR_RATE_LIMITED, NULL, json_string("not an array"));
  return DUB_OK;
}

static enum dub_err rid(void *vctx, struct dub_http_request *req,
                        struct dub_http_reply *reply)
{
  (void)vctx;
  dub_http_reply_json(reply, 200, json_pack("{s:s}", "id", dub_http_request_id(req)));
  return DUB_OK;
}

static const char *const event_media[] = {"application/json",
                                          "application/cloudevents+json", NULL};

static const struct dub_http_route routes[] = {
    {"GET", "/v1/cases/{case_id}", "cases:read", NULL, 0, get_case},
    {"DELETE", "/v1/cases/{case_id}", "cases:read", NULL, 0, delete_case},
    {"GET", "/v1/events/{source}/{id}", "events:write", NULL, 0, get_event},
    {"POST", "/v1/events", "events:write", event_media, 1024, post_event},
    {"GET", "/v1/search", NULL, NULL, 0, search},
    {"GET", "/v1/defer", NULL, NULL, 0, defer},
    {"GET", "/v1/defer-now", NULL, NULL, 0, defer_now},
    {"GET", "/v1/hold", NULL, NULL, 0, hold},
    {"GET", "/v1/fail", NULL, NULL, 0, conflict},
    {"GET", "/v1/silent", NULL, NULL, 0, silent},
    {"GET", "/v1/details", NULL, NULL, 0, details},
    {"GET", "/v1/busy", NULL, NULL, 0, busy},
    {"GET", "/v1/rid", NULL, NULL, 0, rid},
    {"GET", "/v1/peer", NULL, NULL, 0, peer},
};

/* ---- clients.json ---- */

static void sha256_hex(const char *s, char out[65])
{
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  assert_true(EVP_Digest(s, strlen(s), d, &n, EVP_sha256(), NULL));
  for(unsigned i = 0; i < n; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A set with the reader and writer clients; 'swap' replaces the reader's token with
 * OTHER_TOKEN. */
static struct dub_auth *make_auth(bool swap)
{
  char reader[65], writer[65];
  sha256_hex(swap ? OTHER_TOKEN : READER_TOKEN, reader);
  sha256_hex(WRITER_TOKEN, writer);
  json_t *doc = json_pack("{s:[{s:s,s:s,s:[],s:[s]},{s:s,s:s,s:[s],s:[s,s]}]}", "clients",
                          "id", "reader", "token_sha256", reader, "sources", "scopes",
                          "cases:read", "id", "writer", "token_sha256", writer, "sources",
                          "/gov/hotline-12345", "scopes", "events:write", "ledger:read");
  assert_non_null(doc);
  struct dub_auth *auth = NULL;
  char *why = NULL;
  assert_int_equal(dub_auth_new(doc, &auth, &why), DUB_OK);
  assert_null(why);
  json_decref(doc);
  return auth;
}

/* ---- the client side ---- */

struct call {
  const char *method;
  const char *path;
  const char *token;
  const char *content_type;
  const char *body;
  size_t body_len;
  bool chunked;
  const char *request_id;
  long timeout_ms;
};

struct result {
  CURLcode code;
  long status;
  struct dub_buf body;
  struct dub_buf headers;
};

struct upload {
  const char *data;
  size_t len;
  size_t off;
};

static size_t on_data(char *p, size_t size, size_t n, void *buf)
{
  dub_buf_append(buf, p, size * n);
  return size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
  struct upload *up = arg;
  size_t want = size * n;
  if(want > 100) /* small pieces, so the upload takes several chunks */
    want = 100;
  if(want > up->len - up->off)
    want = up->len - up->off;
  memcpy(p, up->data + up->off, want);
  up->off += want;
  return want;
}

static void call(unsigned port, const struct call *c, struct result *r)
{
  CURL *curl = curl_easy_init();
  struct curl_slist *hdrs = NULL;
  struct upload up = {c->body, c->body_len, 0};
  char url[1024], line[512];
  memset(r, 0, sizeof *r);
  assert_non_null(curl);
  snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, c->path);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r->body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r->headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, c->timeout_ms ? c->timeout_ms : 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if(c->token) {
    snprintf(line, sizeof line, "Authorization: Bearer %s", c->token);
    hdrs = curl_slist_append(hdrs, line);
  }
  if(c->content_type) {
    snprintf(line, sizeof line, "Content-Type: %s", c->content_type);
    hdrs = curl_slist_append(hdrs, line);
  }
  if(c->request_id) {
    snprintf(line, sizeof line, "X-Request-Id: %s", c->request_id);
    hdrs = curl_slist_append(hdrs, line);
  }
  if(c->body && c->chunked) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &up);
    hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
  } else if(c->body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)c->body_len);
  }
  if(c->method && strcmp(c->method, "HEAD") == 0)
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  else if(c->method)
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c->method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
  r->code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(curl);
  dub_buf_append(&r->body, "", 0);
  dub_buf_append(&r->headers, "", 0);
}

static void result_release(struct result *r)
{
  dub_buf_release(&r->body);
  dub_buf_release(&r->headers);
}

/* The value of response header 'name' (last one wins), or NULL. */
static const char *header(const struct result *r, const char *name, char *out, size_t n)
{
  const char *found = NULL;
  size_t len = strlen(name);
  for(const char *p = r->headers.data; p && *p;) {
    const char *eol = strstr(p, "\r\n");
    if(!eol)
      break;
    if((size_t)(eol - p) > len && strncasecmp(p, name, len) == 0 && p[len] == ':') {
      const char *v = p + len + 1;
      while(*v == ' ')
        v++;
      snprintf(out, n, "%.*s", (int)(eol - v), v);
      found = out;
    }
    p = eol + 2;
  }
  return found;
}

static json_t *body_json(const struct result *r)
{
  json_error_t error;
  json_t *doc = json_loads(r->body.data, 0, &error);
  if(!doc)
    fail_msg("body is not JSON (%s): %s", error.text, r->body.data);
  return doc;
}

/* Asserts the one error shape and returns the message (a copy, free it). */
static char *assert_error(const struct result *r, long status, const char *code)
{
  char ct[128];
  assert_int_equal(r->code, CURLE_OK);
  assert_int_equal(r->status, status);
  assert_non_null(header(r, "Content-Type", ct, sizeof ct));
  assert_string_equal(ct, "application/json");
  json_t *doc = body_json(r);
  assert_int_equal(json_object_size(doc), 1);
  json_t *err = json_object_get(doc, "error");
  assert_true(json_is_object(err));
  assert_int_equal(json_object_size(err), 3);
  assert_string_equal(json_string_value(json_object_get(err, "code")), code);
  assert_true(json_is_string(json_object_get(err, "message")));
  assert_true(json_is_array(json_object_get(err, "details")));
  char *msg = dub_xstrdup(json_string_value(json_object_get(err, "message")));
  json_decref(doc);
  return msg;
}

static void expect_error(unsigned port, const struct call *c, long status,
                         const char *code)
{
  struct result r;
  call(port, c, &r);
  free(assert_error(&r, status, code));
  result_release(&r);
}

/* ---- fixture ---- */

struct fixture {
  struct test_ctx ctx;
  struct dub_metrics *metrics;
  struct dub_auth *auth;
  struct dub_http_server *server;
  unsigned port;
};

static int setup(void **state)
{
  struct fixture *f = dub_xcalloc(1, sizeof *f);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  pthread_mutex_init(&f->ctx.lock, NULL);
  atomic_init(&f->ctx.ready, true);
  f->metrics = dub_metrics_new();
  f->auth = make_auth(false);
  struct dub_http_opts opts = {
      .bind = "127.0.0.1",
      .port = 0,
      .threads = 4,
      .routes = routes,
      .nroutes = sizeof routes / sizeof routes[0],
      .ctx = &f->ctx,
      .ready = ready_cb,
      .metrics = f->metrics,
      .auth = f->auth,
  };
  if(dub_http_start(&opts, &f->server))
    return -1;
  f->port = dub_http_port(f->server);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  dub_http_stop(f->server);
  join_all(&f->ctx);
  dub_auth_unref(f->auth);
  dub_metrics_free(f->metrics);
  pthread_mutex_destroy(&f->ctx.lock);
  free(f);
  curl_global_cleanup();
  return 0;
}

/* ---- tests ---- */

static void test_not_found(void **state)
{
  struct fixture *f = *state;
  struct result r;
  char v[128];
  call(f->port, &(struct call){.path = "/v1/nothing"}, &r);
  char *msg = assert_error(&r, 404, "not_found");
  assert_string_equal(msg, "not found");
  free(msg);
  assert_non_null(header(&r, "X-Request-Id", v, sizeof v));
  result_release(&r);
  expect_error(f->port, &(struct call){.path = "/v1/cases/"}, 404, "not_found");
  expect_error(f->port, &(struct call){.path = "/v1/cases/a/b"}, 404, "not_found");
  expect_error(f->port, &(struct call){.path = "/"}, 404, "not_found");
}

static void test_method_not_allowed(void **state)
{
  struct fixture *f = *state;
  struct result r;
  char v[128];
  call(f->port,
       &(struct call){.method = "PUT", .path = "/v1/cases/C-1", .token = READER_TOKEN},
       &r);
  free(assert_error(&r, 405, "method_not_allowed"));
  assert_non_null(header(&r, "Allow", v, sizeof v));
  assert_string_equal(v, "GET, HEAD, DELETE");
  result_release(&r);

  call(f->port, &(struct call){.method = "POST", .path = "/healthz"}, &r);
  free(assert_error(&r, 405, "method_not_allowed"));
  assert_string_equal(header(&r, "Allow", v, sizeof v), "GET, HEAD");
  result_release(&r);
}

static void test_unauthenticated(void **state)
{
  struct fixture *f = *state;
  struct result r;
  char v[128];
  call(f->port, &(struct call){.path = "/v1/cases/C-1"}, &r);
  free(assert_error(&r, 401, "unauthenticated"));
  assert_non_null(header(&r, "WWW-Authenticate", v, sizeof v));
  assert_true(strncmp(v, "Bearer", 6) == 0);
  result_release(&r);

  call(f->port, &(struct call){.path = "/v1/cases/C-1", .token = "wrong-token"}, &r);
  free(assert_error(&r, 401, "unauthenticated"));
  assert_non_null(header(&r, "WWW-Authenticate", v, sizeof v));
  assert_true(strncmp(v, "Bearer", 6) == 0);
  result_release(&r);

  /* "Bearer" without a token. */
  expect_error(f->port, &(struct call){.path = "/v1/cases/C-1", .token = ""}, 401,
               "unauthenticated");
}

static void test_forbidden(void **state)
{
  struct fixture *f = *state;
  struct result r;
  call(f->port, &(struct call){.path = "/v1/cases/C-1", .token = WRITER_TOKEN}, &r);
  char *msg = assert_error(&r, 403, "forbidden");
  assert_non_null(strstr(msg, "cases:read"));
  free(msg);
  result_release(&r);

  call(f->port, &(struct call){.path = "/v1/cases/C-1", .token = READER_TOKEN}, &r);
  assert_int_equal(r.status, 200);
  json_t *doc = body_json(&r);
  assert_string_equal(json_string_value(json_object_get(doc, "client")), "reader");
  assert_string_equal(json_string_value(json_object_get(doc, "case_id")), "C-1");
  json_decref(doc);
  result_release(&r);
}

static void test_media_type(void **state)
{
  struct fixture *f = *state;
  const char *body = "{\"a\":1}";
  expect_error(f->port,
               &(struct call){.method = "POST",
                              .path = "/v1/events",
                              .token = WRITER_TOKEN,
                              .content_type = "text/plain",
                              .body = body,
                              .body_len = strlen(body)},
               415, "unsupported_media_type");
  expect_error(f->port,
               &(struct call){.method = "POST",
                              .path = "/v1/events",
                              .token = WRITER_TOKEN,
                              .content_type = "application/jsonx",
                              .body = body,
                              .body_len = strlen(body)},
               415, "unsupported_media_type");
  /* Auth comes before the media type. */
  expect_error(f->port,
               &(struct call){.method = "POST",
                              .path = "/v1/events",
                              .token = READER_TOKEN,
                              .content_type = "text/plain",
                              .body = body,
                              .body_len = strlen(body)},
               403, "forbidden");
  /* A body where none is expected. */
  expect_error(f->port,
               &(struct call){.method = "GET",
                              .path = "/v1/search",
                              .content_type = "application/json",
                              .body = body,
                              .body_len = strlen(body)},
               415, "unsupported_media_type");

  struct result r;
  call(f->port,
       &(struct call){.method = "POST",
                      .path = "/v1/events",
                      .token = WRITER_TOKEN,
                      .content_type = "Application/CloudEvents+JSON ; charset=utf-8",
                      .body = body,
                      .body_len = strlen(body)},
       &r);
  assert_int_equal(r.status, 202);
  json_t *doc = body_json(&r);
  assert_int_equal(json_integer_value(json_object_get(doc, "len")),
                   (json_int_t)strlen(body));
  assert_string_equal(json_string_value(json_object_get(doc, "body")), body);
  char v[128];
  assert_string_equal(header(&r, "Location", v, sizeof v), "/v1/events/x/y");
  assert_string_equal(header(&r, "Content-Type", v, sizeof v), "application/json");
  json_decref(doc);
  result_release(&r);
}

static void test_too_large(void **state)
{
  struct fixture *f = *state;
  char big[4096];
  memset(big, 'x', sizeof big);
  /* Announced by Content-Length. */
  expect_error(f->port,
               &(struct call){.method = "POST",
                              .path = "/v1/events",
                              .token = WRITER_TOKEN,
                              .content_type = "application/json",
                              .body = big,
                              .body_len = 2048},
               413, "too_large");
  /* Chunked: only known once the upload passes the limit. */
  expect_error(f->port,
               &(struct call){.method = "POST",
                              .path = "/v1/events",
                              .token = WRITER_TOKEN,
                              .content_type = "application/json",
                              .body = big,
                              .body_len = sizeof big,
                              .chunked = true},
               413, "too_large");
  /* Exactly the limit is fine, chunked or not. */
  for(int chunked = 0; chunked < 2; chunked++) {
    struct result r;
    call(f->port,
         &(struct call){.method = "POST",
                        .path = "/v1/events",
                        .token = WRITER_TOKEN,
                        .content_type = "application/json",
                        .body = big,
                        .body_len = 1024,
                        .chunked = chunked},
         &r);
    assert_int_equal(r.status, 202);
    json_t *doc = body_json(&r);
    assert_int_equal(json_integer_value(json_object_get(doc, "len")), 1024);
    json_decref(doc);
    result_release(&r);
  }
}

static void test_path_params(void **state)
{
  struct fixture *f = *state;
  struct result r;
  call(f->port,
       &(struct call){.path = "/v1/events/%2Fgov%2Fhotline-12345/ev%201%2B2",
                      .token = WRITER_TOKEN},
       &r);
  assert_int_equal(r.status, 200);
  json_t *doc = body_json(&r);
  assert_string_equal(json_string_value(json_object_get(doc, "source")),
                      "/gov/hotline-12345");
  assert_string_equal(json_string_value(json_object_get(doc, "id")), "ev 1+2");
  assert_true(json_is_true(json_object_get(doc, "own")));
  json_decref(doc);
  result_release(&r);

  call(f->port,
       &(struct call){.path = "/v1/events/%2Fgov%2Fother/1", .token = WRITER_TOKEN}, &r);
  assert_int_equal(r.status, 200);
  doc = body_json(&r);
  assert_true(json_is_false(json_object_get(doc, "own")));
  json_decref(doc);
  result_release(&r);

  expect_error(f->port, &(struct call){.path = "/v1/events/%zz/1", .token = WRITER_TOKEN},
               400, "malformed");
  expect_error(f->port,
               &(struct call){.path = "/v1/events/a%00b/1", .token = WRITER_TOKEN}, 400,
               "malformed");
}

static void test_query(void **state)
{
  struct fixture *f = *state;
  struct result r;
  call(f->port, &(struct call){.path = "/v1/search?q=a%20b+c%26d&limit=10&flag&q=second"},
       &r);
  assert_int_equal(r.status, 200);
  json_t *doc = body_json(&r);
  assert_string_equal(json_string_value(json_object_get(doc, "q")), "a b c&d");
  assert_string_equal(json_string_value(json_object_get(doc, "limit")), "10");
  assert_string_equal(json_string_value(json_object_get(doc, "flag")), "");
  assert_true(json_is_null(json_object_get(doc, "missing")));
  json_decref(doc);
  result_release(&r);
}

static void test_peer(void **state)
{
  struct fixture *f = *state;
  struct result r;
  call(f->port, &(struct call){.path = "/v1/peer"}, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body.data,
                      "{\"loopback\":true,\"elsewhere\":false,\"family\":\"inet\"}");
  result_release(&r);
}

/* Matches 'addr' (numeric IPv4 or IPv6) against 'list'. */
static bool allowed(const char *list, const char *addr)
{
  struct dub_http_allow *a = NULL;
  char *why = NULL;
  assert_int_equal(dub_http_allow_parse(list, &a, &why), DUB_OK);
  struct sockaddr_in in = {.sin_family = AF_INET};
  struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
  const struct sockaddr *sa = (const struct sockaddr *)&in;
  if(inet_pton(AF_INET, addr, &in.sin_addr) != 1) {
    assert_int_equal(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
    sa = (const struct sockaddr *)&in6;
  }
  bool yes = dub_http_allow_match(a, sa);
  dub_http_allow_free(a);
  return yes;
}

static void test_allow_list(void **state)
{
  (void)state;
  assert_true(allowed("127.0.0.0/8,::1", "127.0.0.1"));
  assert_true(allowed("127.0.0.0/8,::1", "127.255.3.4"));
  assert_true(allowed("127.0.0.0/8,::1", "::1"));
  assert_false(allowed("127.0.0.0/8,::1", "128.0.0.1"));
  assert_false(allowed("127.0.0.0/8,::1", "::2"));
  /* IPv4 entries also match IPv4-mapped peers of a dual-stack socket. */
  assert_true(allowed("10.20.0.0/16", "::ffff:10.20.7.8"));
  assert_false(allowed("10.20.0.0/16", "::ffff:10.21.7.8"));
  /* Prefixes that do not end on a byte; a single address; everything. */
  assert_true(allowed(" 192.168.4.0/22 ", "192.168.7.255"));
  assert_false(allowed("192.168.4.0/22", "192.168.8.0"));
  assert_true(allowed("fd00::/7", "fdff::1"));
  assert_false(allowed("fd00::/8", "fe00::1"));
  assert_true(allowed("10.1.2.3", "10.1.2.3"));
  assert_false(allowed("10.1.2.3", "10.1.2.4"));
  assert_true(allowed("0.0.0.0/0", "8.8.8.8"));

  const char *const bad[] = {"",           " , ",          "10.0.0.0/33", "::/129",
                             "10.0.0.0/",  "10.0.0.0/-1",  "10.0.0.0/8x", "localhost",
                             "10.0.0.256", "1.2.3.4,,nope"};
  for(size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct dub_http_allow *a = NULL;
    char *why = NULL;
    assert_int_equal(dub_http_allow_parse(bad[i], &a, &why), DUB_ERR_CONFIG);
    assert_null(a);
    assert_non_null(why);
    free(why);
  }
  assert_false(dub_http_allow_match(NULL, NULL));
}

static void test_health_and_ready(void **state)
{
  struct fixture *f = *state;
  struct result r;
  char v[128];
  call(f->port, &(struct call){.path = "/healthz"}, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body.data, "{\"status\":\"ok\"}");
  assert_string_equal(header(&r, "Content-Type", v, sizeof v), "application/json");
  result_release(&r);

  call(f->port, &(struct call){.path = "/readyz"}, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body.data, "{\"status\":\"ready\"}");
  result_release(&r);

  atomic_store(&f->ctx.ready, false);
  call(f->port, &(struct call){.path = "/readyz"}, &r);
  char *msg = assert_error(&r, 503, "unavailable");
  assert_string_equal(msg, "kafka is not connected");
  free(msg);
  assert_string_equal(header(&r, "Retry-After", v, sizeof v), "5");
  result_release(&r);
  atomic_store(&f->ctx.ready, true);

  call(f->port, &(struct call){.method = "HEAD", .path = "/healthz"}, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body.len, 0);
  result_release(&r);
}

static void test_metrics_route(void **state)
{
  struct fixture *f = *state;
  struct result r;
  char v[128];
  call(f->port, &(struct call){.path = "/v1/cases/C-9", .token = READER_TOKEN}, &r);
  result_release(&r);
  call(f->port, &(struct call){.path = "/no/such/thing"}, &r);
  result_release(&r);
  call(f->port, &(struct call){.method = "BREW", .path = "/healthz"}, &r);
  result_release(&r);
  call(f->port, &(struct call){.path = "/metrics"}, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(header(&r, "Content-Type", v, sizeof v),
                      "text/plain; version=0.0.4");
  const char *text = r.body.data;
  assert_non_null(strstr(text, "# TYPE duban_http_requests_total counter\n"));
  assert_non_null(strstr(text, "# TYPE duban_http_request_duration_seconds histogram\n"));
  assert_non_null(strstr(text, "duban_http_requests_total{route=\"/v1/cases/"
                               "{case_id}\",method=\"GET\",code=\"200\"} "));
  assert_non_null(strstr(
      text,
      "duban_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"} "));
  assert_non_null(strstr(
      text,
      "duban_http_requests_total{route=\"/healthz\",method=\"other\",code=\"405\"} "));
  assert_non_null(strstr(text, "duban_http_request_duration_seconds_bucket{route=\"/v1/"
                               "cases/{case_id}\",le=\"+Inf\"} "));
  assert_non_null(strstr(
      text, "duban_http_request_duration_seconds_count{route=\"/v1/cases/{case_id}\"} "));
  /* The route label is the pattern, never the raw path. */
  assert_null(strstr(text, "C-9"));
  /* The opts registry is the one served. */
  assert_ptr_equal(dub_http_metrics(f->server), f->metrics);
  result_release(&r);
}

static bool is_hex32(const char *s)
{
  if(strlen(s) != 32)
    return false;
  for(; *s; s++) {
    if(!strchr("0123456789abcdef", *s))
      return false;
  }
  return true;
}

static void test_request_id(void **state)
{
  struct fixture *f = *state;
  struct result r;
  char v[128], first[128];
  call(f->port, &(struct call){.path = "/v1/rid", .request_id = "abc-123.X_y"}, &r);
  assert_string_equal(header(&r, "X-Request-Id", v, sizeof v), "abc-123.X_y");
  json_t *doc = body_json(&r);
  assert_string_equal(json_string_value(json_object_get(doc, "id")), "abc-123.X_y");
  json_decref(doc);
  result_release(&r);

  char sixty_four[65], sixty_five[66];
  memset(sixty_four, 'a', 64);
  sixty_four[64] = '\0';
  memset(sixty_five, 'b', 65);
  sixty_five[65] = '\0';
  call(f->port, &(struct call){.path = "/v1/rid", .request_id = sixty_four}, &r);
  assert_string_equal(header(&r, "X-Request-Id", v, sizeof v), sixty_four);
  result_release(&r);

  const char *bad[] = {sixty_five, "has space", "semi;colon", "quote\"", "ünicode"};
  for(size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    call(f->port, &(struct call){.path = "/v1/rid", .request_id = bad[i]}, &r);
    assert_non_null(header(&r, "X-Request-Id", v, sizeof v));
    assert_true(is_hex32(v));
    doc = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), v);
    json_decref(doc);
    result_release(&r);
  }

  call(f->port, &(struct call){.path = "/v1/rid"}, &r);
  assert_non_null(header(&r, "X-Request-Id", first, sizeof first));
  assert_true(is_hex32(first));
  result_release(&r);
  call(f->port, &(struct call){.path = "/v1/nothing"}, &r);
  assert_non_null(header(&r, "X-Request-Id", v, sizeof v));
  assert_true(is_hex32(v));
  assert_string_not_equal(v, first);
  result_release(&r);
}

static void test_error_shapes(void **state)
{
  struct fixture *f = *state;
  struct result r;
  char v[128];

  call(f->port, &(struct call){.path = "/v1/fail"}, &r);
  char *msg = assert_error(&r, 409, "conflict");
  assert_string_equal(msg, "not allowed in the current state");
  free(msg);
  result_release(&r);

  call(f->port, &(struct call){.path = "/v1/silent"}, &r);
  free(assert_error(&r, 500, "internal"));
  result_release(&r);

  call(f->port, &(struct call){.path = "/v1/details"}, &r);
  msg = assert_error(&r, 422, "schema_violation");
  assert_string_equal(msg, "data.title is required");
  free(msg);
  json_t *doc = body_json(&r);
  json_t *d = json_object_get(json_object_get(doc, "error"), "details");
  assert_int_equal(json_array_size(d), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "path")),
                      "/data/title");
  json_decref(doc);
  result_release(&r);

  call(f->port, &(struct call){.path = "/v1/busy"}, &r);
  free(assert_error(&r, 429, "rate_limited"));
  assert_non_null(header(&r, "Retry-After", v, sizeof v));
  doc = body_json(&r);
  d = json_object_get(json_object_get(doc, "error"), "details");
  assert_string_equal(json_string_value(json_array_get(d, 0)), "not an array");
  json_decref(doc);
  result_release(&r);

  /* The shape is built in one place; check the builder directly too. */
  doc = dub_http_error_body(DUB_ERR_NOT_FOUND, NULL, NULL);
  char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(
      text,
      "{\"error\":{\"code\":\"not_found\",\"details\":[],\"message\":\"not found\"}}");
  free(text);
  json_decref(doc);
}

static void test_deferred(void **state)
{
  struct fixture *f = *state;
  struct result r;
  char v[128];
  long start = now_ms();
  call(f->port, &(struct call){.path = "/v1/defer?delay=50", .request_id = "defer-1"},
       &r);
  long took = now_ms() - start;
  assert_int_equal(r.code, CURLE_OK);
  assert_int_equal(r.status, 202);
  assert_true(took >= 50);
  json_t *doc = body_json(&r);
  assert_true(json_is_true(json_object_get(doc, "deferred")));
  assert_string_equal(json_string_value(json_object_get(doc, "id")), "defer-1");
  json_decref(doc);
  assert_string_equal(header(&r, "X-Deferred", v, sizeof v), "yes");
  assert_string_equal(header(&r, "X-Request-Id", v, sizeof v), "defer-1");
  result_release(&r);

  /* Completed on the handler's own thread before it returns. */
  call(f->port, &(struct call){.path = "/v1/defer-now"}, &r);
  free(assert_error(&r, 409, "conflict"));
  result_release(&r);
}

static void test_deferred_client_gone(void **state)
{
  struct fixture *f = *state;
  struct result r;
  /* The client gives up after 20 ms; the answer comes at 150 ms to nobody. */
  call(f->port, &(struct call){.path = "/v1/defer?delay=150", .timeout_ms = 20}, &r);
  assert_int_equal(r.code, CURLE_OPERATION_TIMEDOUT);
  result_release(&r);
  join_all(&f->ctx);
  call(f->port, &(struct call){.path = "/healthz"}, &r);
  assert_int_equal(r.status, 200);
  result_release(&r);
}

struct worker {
  unsigned port;
  int failures;
  int id;
};

static void *work(void *arg)
{
  struct worker *w = arg;
  for(int i = 0; i < 40; i++) {
    struct result r;
    char path[64], want[64];
    switch((i + w->id) % 4) {
    case 0:
      snprintf(path, sizeof path, "/v1/cases/W%d-%d", w->id, i);
      call(w->port, &(struct call){.path = path, .token = READER_TOKEN}, &r);
      snprintf(want, sizeof want, "\"case_id\":\"W%d-%d\"", w->id, i);
      if(r.status != 200 || !strstr(r.body.data, want))
        w->failures++;
      break;
    case 1:
      call(w->port, &(struct call){.path = "/v1/defer?delay=5"}, &r);
      if(r.status != 202)
        w->failures++;
      break;
    case 2:
      call(w->port, &(struct call){.path = "/v1/nothing"}, &r);
      if(r.status != 404)
        w->failures++;
      break;
    default:
      call(w->port,
           &(struct call){.method = "POST",
                          .path = "/v1/events",
                          .token = WRITER_TOKEN,
                          .content_type = "application/json",
                          .body = "{}",
                          .body_len = 2},
           &r);
      if(r.status != 202)
        w->failures++;
      break;
    }
    result_release(&r);
  }
  return NULL;
}

static void test_concurrent(void **state)
{
  struct fixture *f = *state;
  pthread_t t[8];
  struct worker w[8];
  for(int i = 0; i < 8; i++) {
    w[i] = (struct worker){.port = f->port, .id = i};
    assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
  }
  for(int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(w[i].failures, 0);
  }
  join_all(&f->ctx);
}

struct swapper {
  unsigned port;
  atomic_bool stop;
  int ok;
  int unauthorised;
  int other;
};

static void *auth_client(void *arg)
{
  struct swapper *s = arg;
  while(!atomic_load(&s->stop)) {
    struct result r;
    call(s->port, &(struct call){.path = "/v1/cases/S-1", .token = READER_TOKEN}, &r);
    if(r.status == 200)
      s->ok++;
    else if(r.status == 401)
      s->unauthorised++;
    else
      s->other++;
    result_release(&r);
  }
  return NULL;
}

static void test_auth_swap(void **state)
{
  struct fixture *f = *state;
  struct swapper s = {.port = f->port};
  atomic_init(&s.stop, false);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, auth_client, &s), 0);
  for(int i = 0; i < 40; i++) {
    struct dub_auth *next = make_auth(i % 2 == 0);
    dub_http_set_auth(f->server, next);
    dub_auth_unref(next);
    sleep_ms(5);
  }
  atomic_store(&s.stop, true);
  pthread_join(t, NULL);
  assert_int_equal(s.other, 0);
  assert_true(s.ok + s.unauthorised > 0);

  struct dub_auth *swapped = make_auth(true);
  dub_http_set_auth(f->server, swapped);
  dub_auth_unref(swapped);
  expect_error(f->port, &(struct call){.path = "/v1/cases/S-1", .token = READER_TOKEN},
               401, "unauthenticated");
  struct result r;
  call(f->port, &(struct call){.path = "/v1/cases/S-1", .token = OTHER_TOKEN}, &r);
  assert_int_equal(r.status, 200);
  result_release(&r);

  dub_http_set_auth(f->server, NULL);
  expect_error(f->port, &(struct call){.path = "/v1/cases/S-1", .token = OTHER_TOKEN},
               401, "unauthenticated");
  dub_http_set_auth(f->server, f->auth);
  call(f->port, &(struct call){.path = "/v1/cases/S-1", .token = READER_TOKEN}, &r);
  assert_int_equal(r.status, 200);
  result_release(&r);
}

/* ---- a server of its own: stopping with a deferred answer outstanding ---- */

struct held_call {
  unsigned port;
  struct result r;
};

static void *call_hold(void *arg)
{
  struct held_call *h = arg;
  call(h->port, &(struct call){.path = "/v1/hold"}, &h->r);
  return NULL;
}

static void test_stop_with_deferred(void **state)
{
  (void)state;
  struct test_ctx ctx = {0};
  pthread_mutex_init(&ctx.lock, NULL);
  atomic_init(&ctx.ready, true);
  struct dub_http_server *server = NULL;
  struct dub_http_opts opts = {.bind = "127.0.0.1",
                               .routes = routes,
                               .nroutes = sizeof routes / sizeof routes[0],
                               .ctx = &ctx,
                               .drain_ms = 100};
  assert_int_equal(dub_http_start(&opts, &server), DUB_OK);
  struct held_call h = {.port = dub_http_port(server)};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, call_hold, &h), 0);
  while(!atomic_load(&ctx.deferred))
    sleep_ms(1);
  long start = now_ms();
  dub_http_stop(server);
  assert_true(now_ms() - start >= 100);
  pthread_join(t, NULL);
  free(assert_error(&h.r, 503, "unavailable"));
  result_release(&h.r);
  /* The owner completes after the server is gone: the pending is still valid. */
  dub_http_pending_json(ctx.held, 200, json_object());
  pthread_mutex_destroy(&ctx.lock);
}

static void test_bad_routes(void **state)
{
  (void)state;
  struct dub_http_server *server = NULL;
  const struct dub_http_route bad[][1] = {
      {{"GET", "no-slash", NULL, NULL, 0, rid}},
      {{"GET", "/v1/{bad-name}", NULL, NULL, 0, rid}},
      {{"GET", "/v1/{x}y", NULL, NULL, 0, rid}},
      {{"get", "/v1/x", NULL, NULL, 0, rid}},
      {{"GET", "/v1/x", NULL, NULL, 0, NULL}},
      {{"GET", "/healthz", NULL, NULL, 0, rid}},
  };
  for(size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct dub_http_opts opts = {.bind = "127.0.0.1", .routes = bad[i], .nroutes = 1};
    assert_int_equal(dub_http_start(&opts, &server), DUB_ERR_INVALID);
    assert_null(server);
  }
  struct dub_http_opts opts = {.bind = "not-an-address"};
  assert_int_equal(dub_http_start(&opts, &server), DUB_ERR_INVALID);
  dub_http_stop(NULL);
}

static void test_bind_busy(void **state)
{
  struct fixture *f = *state;
  struct dub_http_server *server = NULL;
  struct dub_http_opts opts = {.bind = "127.0.0.1", .port = f->port};
  assert_int_equal(dub_http_start(&opts, &server), DUB_ERR_IO);
  assert_null(server);
}

/* ---- auth and the pure helpers ---- */

static void test_auth_parse(void **state)
{
  (void)state;
  struct dub_auth *auth = make_auth(false);
  assert_int_equal(dub_auth_count(auth), 2);
  const struct dub_auth_client *c = dub_auth_find(auth, WRITER_TOKEN);
  assert_non_null(c);
  assert_string_equal(dub_auth_client_id(c), "writer");
  assert_true(dub_auth_client_has_scope(c, "ledger:read"));
  assert_false(dub_auth_client_has_scope(c, "cases:read"));
  assert_true(dub_auth_client_may_use_source(c, "/gov/hotline-12345"));
  assert_false(dub_auth_client_may_use_source(c, "/gov/hotline"));
  size_t n = 0;
  const char *const *scopes = dub_auth_client_scopes(c, &n);
  assert_int_equal(n, 2);
  assert_string_equal(scopes[0], "events:write");
  assert_null(dub_auth_find(auth, "nope"));
  assert_null(dub_auth_find(auth, ""));
  assert_null(dub_auth_find(auth, NULL));
  assert_null(dub_auth_find(NULL, WRITER_TOKEN));
  assert_non_null(dub_auth_find(auth, READER_TOKEN));
  dub_auth_unref(auth);

  const char *bad[] = {
      "[]",
      "{\"clients\": {}}",
      "{\"clients\": [{\"token_sha256\": \"00\"}]}",
      "{\"clients\": [{\"id\": \"a\", \"token_sha256\": \"xyz\"}]}",
      "{\"clients\": [{\"id\": \"a\", \"token_sha256\": "
      "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\", "
      "\"scopes\": [1]}]}",
      "{\"clients\": [{\"id\": \"a\", \"token_sha256\": "
      "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\", "
      "\"sources\": \"x\"}]}",
      "{\"clients\": [{\"id\": \"a\", \"token_sha256\": "
      "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"},"
      "{\"id\": \"a\", \"token_sha256\": "
      "\"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
      "{\"clients\": [{\"id\": \"a\", \"token_sha256\": "
      "\"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\"},"
      "{\"id\": \"b\", \"token_sha256\": "
      "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}]}",
  };
  for(size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *doc = json_loads(bad[i], 0, NULL);
    assert_non_null(doc);
    char *why = NULL;
    auth = NULL;
    assert_int_equal(dub_auth_new(doc, &auth, &why), DUB_ERR_CONFIG);
    assert_null(auth);
    assert_non_null(why);
    assert_non_null(strstr(why, "clients.json"));
    free(why);
    json_decref(doc);
  }
  dub_auth_unref(NULL);
}

static void test_helpers(void **state)
{
  (void)state;
  const char *const types[] = {"application/json", NULL};
  assert_true(media_type_accepted("application/json", types));
  assert_true(media_type_accepted("  APPLICATION/JSON ;charset=UTF-8", types));
  assert_false(media_type_accepted("application/json-seq", types));
  assert_false(media_type_accepted("", types));
  assert_false(media_type_accepted(NULL, types));

  char *out = NULL;
  assert_true(percent_decode("a%2Fb+c", 7, false, true, &out));
  assert_string_equal(out, "a/b+c");
  free(out);
  assert_true(percent_decode("a%2fb+c", 7, true, true, &out));
  assert_string_equal(out, "a/b c");
  free(out);
  assert_false(percent_decode("a%2", 3, false, true, &out));
  assert_false(percent_decode("a%00", 4, false, true, &out));
  assert_true(percent_decode("a%2%00", 6, false, false, &out));
  assert_string_equal(out, "a%2%00");
  free(out);

  size_t len = 0;
  const char *t = bearer_token("bearer   abc.def  ", &len);
  assert_non_null(t);
  assert_int_equal(len, 7);
  assert_true(strncmp(t, "abc.def", 7) == 0);
  assert_null(bearer_token("Basic abc", &len));
  assert_null(bearer_token("Bearer", &len));
  assert_null(bearer_token("Bearerabc", &len));
  assert_null(bearer_token("Bearer a b", &len));

  assert_true(request_id_sane("a"));
  assert_false(request_id_sane(""));
  assert_false(request_id_sane(NULL));
  assert_false(request_id_sane("a/b"));
}

int main(void)
{
  const struct CMUnitTest server_tests[] = {
      cmocka_unit_test(test_not_found),
      cmocka_unit_test(test_method_not_allowed),
      cmocka_unit_test(test_unauthenticated),
      cmocka_unit_test(test_forbidden),
      cmocka_unit_test(test_media_type),
      cmocka_unit_test(test_too_large),
      cmocka_unit_test(test_path_params),
      cmocka_unit_test(test_query),
      cmocka_unit_test(test_peer),
      cmocka_unit_test(test_health_and_ready),
      cmocka_unit_test(test_request_id),
      cmocka_unit_test(test_error_shapes),
      cmocka_unit_test(test_deferred),
      cmocka_unit_test(test_deferred_client_gone),
      cmocka_unit_test(test_concurrent),
      cmocka_unit_test(test_auth_swap),
      cmocka_unit_test(test_metrics_route),
      cmocka_unit_test(test_bind_busy),
  };
  const struct CMUnitTest other_tests[] = {
      cmocka_unit_test(test_stop_with_deferred), cmocka_unit_test(test_bad_routes),
      cmocka_unit_test(test_auth_parse),         cmocka_unit_test(test_helpers),
      cmocka_unit_test(test_allow_list),
  };
  int failed = cmocka_run_group_tests_name("http_server", server_tests, setup, teardown);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  failed += cmocka_run_group_tests_name("http_other", other_tests, NULL, NULL);
  curl_global_cleanup();
  return failed;
}
