/* server.c - the libmicrohttpd daemon: start and drain, the request pipeline (route,
 * auth, media type, body limit, handler), request metrics and the built-in routes. */
#include "http/internal.h"

#include "core/env.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Once a body is known to be too large, this much more is read and dropped so that the
 * client gets its 413; beyond it the connection is closed. */
#define DISCARD_MAX (8u * 1024u * 1024u)

#define REQUESTS_TOTAL "duban_http_requests_total"
#define REQUESTS_HELP "HTTP requests answered, by route pattern, method and status code."
#define DURATION "duban_http_request_duration_seconds"
#define DURATION_HELP                                                                    \
  "Seconds from the request line to the queued answer, by route pattern."

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- request ids ---- */

/* splitmix64's finaliser: a bijection, so distinct counters give distinct ids. */
static uint64_t mix(uint64_t z)
{
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void put_hex64(char *out, uint64_t v)
{
  static const char digits[] = "0123456789abcdef";
  for(int i = 15; i >= 0; i--) {
    out[i] = digits[v & 0xf];
    v >>= 4;
  }
}

/* 32 lower-case hex digits; no snprintf, this runs for most requests. */
static void new_request_id(struct dub_http_server *server, char out[33])
{
  uint64_t n = atomic_fetch_add_explicit(&server->id_counter, 1, memory_order_relaxed);
  put_hex64(out, mix(server->id_key[0] + n));
  put_hex64(out + 16, mix(server->id_key[1] ^ n));
  out[32] = '\0';
}

/* ---- metrics ---- */

static const char *method_label(const char *method)
{
  static const char *const known[] = {"GET",    "HEAD",    "POST",  "PUT",
                                      "DELETE", "OPTIONS", "PATCH", NULL};
  for(const char *const *k = known; *k; k++) {
    if(strcmp(*k, method) == 0)
      return *k;
  }
  return "other";
}

static char *append(char *p, const char *end, const char *s, size_t len)
{
  if(!p || (size_t)(end - p) < len)
    return NULL;
  memcpy(p, s, len);
  return p + len;
}

/* route="...",method="...",code="..." into 'labels'; false when it does not fit. */
static bool counter_labels(const char *route, const char *method, int status,
                           char labels[512])
{
  char code[3] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
                  (char)('0' + status % 10)};
  const char *end = labels + 511;
  char *p = append(labels, end, route, strlen(route));
  p = append(p, end, ",method=\"", 9);
  p = append(p, end, method, strlen(method));
  p = append(p, end, "\",code=\"", 8);
  p = append(p, end, code, 3);
  p = append(p, end, "\"", 1);
  if(!p)
    return false;
  *p = '\0';
  return true;
}

/* Counts the answer and its latency. This runs for every request, so the series of a
 * route are looked up once and then updated without the registry lock. */
static void record(struct dub_http_request *req, int status)
{
  struct dub_http_server *server = req->server;
  const struct route *route = req->route;
  char labels[512];
  double seconds = (double)(now_ns() - req->start_ns) / 1e9;
  dub_metrics_series_observe(route ? route->duration : server->unmatched_duration,
                             seconds);

  const char *label = route ? route->metric_label : "route=\"unmatched\"";
  const char *method = method_label(req->method);
  if(route && status >= 100 && status < STATUS_SLOTS &&
     strcmp(req->method, route->def->method) == 0) {
    struct dub_metrics_series *counter =
        atomic_load_explicit(&route->by_status[status], memory_order_acquire);
    if(!counter && counter_labels(label, method, status, labels) &&
       dub_metrics_counter_series(server->metrics, REQUESTS_TOTAL, REQUESTS_HELP, labels,
                                  &counter) == DUB_OK)
      atomic_store_explicit(&route->by_status[status], counter, memory_order_release);
    dub_metrics_series_add(counter, 1);
    return;
  }
  if(counter_labels(label, method, status, labels))
    dub_metrics_counter_add(server->metrics, REQUESTS_TOTAL, REQUESTS_HELP, labels, 1);
}

/* ---- the pipeline ---- */

/* Queues the stored answer (or a 500 when there is none). */
static enum MHD_Result answer(struct dub_http_request *req)
{
  struct dub_http_server *server = req->server;
  struct dub_http_reply *r = &req->reply;
  struct MHD_Response *resp = NULL;
  enum MHD_Result ret = MHD_NO;
  bool ok;

  if(!r->set)
    reply_set_error(r, DUB_ERR_INTERNAL, NULL, NULL);
  if(r->len) {
    resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    if(resp)
      r->body = NULL; /* libmicrohttpd frees it now */
  } else {
    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  }
  if(!resp) {
    dub_log_error("http: cannot create a response for request %s", req->id);
    goto out;
  }
  ok = MHD_add_response_header(resp, "X-Request-Id", req->id) == MHD_YES &&
       MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type) ==
           MHD_YES;
  for(const struct header *h = r->headers; ok && h; h = h->next)
    ok = MHD_add_response_header(resp, h->name, h->value) == MHD_YES;
  if(ok && (r->status == 503 || r->status == 429) && !reply_has_header(r, "Retry-After"))
    ok = MHD_add_response_header(resp, "Retry-After", r->status == 503 ? "5" : "1") ==
         MHD_YES;
  if(ok && server->stopping_hint)
    ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
  if(!ok) {
    dub_log_error("http: cannot add a response header for request %s", req->id);
    goto out;
  }
  ret = MHD_queue_response(req->conn, (unsigned)r->status, resp);
  if(ret == MHD_YES)
    record(req, r->status);
out:
  if(resp)
    MHD_destroy_response(resp);
  return ret;
}

static void authenticate(struct dub_http_request *req, const char *scope)
{
  struct dub_http_server *server = req->server;
  size_t len = 0;
  const char *header = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
  const char *token = bearer_token(header, &len);
  if(!token) {
    reply_set_error(&req->reply, DUB_ERR_UNAUTHENTICATED, NULL, NULL);
    reply_add_header(&req->reply, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    return;
  }
  pthread_mutex_lock(&server->lock);
  req->auth = dub_auth_ref(server->auth);
  pthread_mutex_unlock(&server->lock);
  char *copy = dub_xstrndup(token, len);
  req->client = dub_auth_find(req->auth, copy);
  memset(copy, 0, len);
  free(copy);
  if(!req->client) {
    reply_set_error(&req->reply, DUB_ERR_UNAUTHENTICATED,
                    "bearer token is not recognised", NULL);
    reply_add_header(&req->reply, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                     "Bearer error=\"invalid_token\"");
    return;
  }
  if(!dub_auth_client_has_scope(req->client, scope)) {
    char *msg = dub_xasprintf("client lacks scope '%s'", scope);
    reply_set_error(&req->reply, DUB_ERR_FORBIDDEN, msg, NULL);
    free(msg);
  }
}

/* Route, auth, media type and the announced length: everything decided from the
 * headers. Stores an error answer when the request is refused. Sets *has_body. */
static void screen(struct dub_http_request *req, bool *has_body)
{
  struct MHD_Connection *conn = req->conn;
  char *allow = NULL;
  long length = 0;
  *has_body = false;

  const char *cl =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_TRANSFER_ENCODING);
  if(cl && !dub_parse_long(cl, 0, LONG_MAX, &length)) {
    reply_set_error(&req->reply, DUB_ERR_MALFORMED, "content-length is not a number",
                    NULL);
    *has_body = true;
    return;
  }
  *has_body = length > 0 || (te && strcasecmp(te, "identity") != 0);

  switch(route_match(&req->server->table, req->method, req->path, &req->route,
                     req->params, &req->nparams, &allow)) {
  case MATCH_OK:
    break;
  case MATCH_NOT_FOUND:
    reply_set_error(&req->reply, DUB_ERR_NOT_FOUND, NULL, NULL);
    return;
  case MATCH_MALFORMED:
    reply_set_error(&req->reply, DUB_ERR_MALFORMED, "path has a bad percent-encoding",
                    NULL);
    return;
  case MATCH_METHOD:
    reply_set_error(&req->reply, DUB_ERR_METHOD, NULL, NULL);
    reply_add_header(&req->reply, MHD_HTTP_HEADER_ALLOW, allow);
    free(allow);
    return;
  }

  const struct dub_http_route *def = req->route->def;
  if(def->scope) {
    authenticate(req, def->scope);
    if(req->reply.set)
      return;
  }
  if(def->media) {
    const char *type =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if(!media_type_accepted(type, def->media)) {
      reply_set_error(&req->reply, DUB_ERR_MEDIA_TYPE, NULL, NULL);
      return;
    }
  } else if(*has_body) {
    reply_set_error(&req->reply, DUB_ERR_MEDIA_TYPE,
                    "this endpoint takes no request body", NULL);
    return;
  }
  req->max_body = def->max_body ? def->max_body : DUB_HTTP_DEFAULT_MAX_BODY;
  if((unsigned long)length > req->max_body)
    reply_set_error(&req->reply, DUB_ERR_TOO_LARGE, NULL, NULL);
}

static struct dub_http_request *begin(struct dub_http_server *server,
                                      struct MHD_Connection *conn, const char *url,
                                      const char *method, bool *has_body)
{
  struct dub_http_request *req = dub_xcalloc(1, sizeof *req);
  req->start_ns = now_ns();
  req->server = server;
  req->conn = conn;
  req->method = method;
  req->path = url;
  reply_init(&req->reply);
  atomic_fetch_add_explicit(&server->inflight, 1, memory_order_relaxed);

  const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
  if(request_id_sane(id))
    memcpy(req->id, id, strlen(id) + 1);
  else
    new_request_id(server, req->id);
  screen(req, has_body);
  return req;
}

/* Takes a piece of the body; past the limit stores a 413 and drops the rest. */
static enum MHD_Result take_upload(struct dub_http_request *req, const char *data,
                                   size_t size)
{
  if(req->reply.set) {
    req->discarded += size;
    return req->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
  }
  if(size > req->max_body - req->body.len) {
    dub_buf_release(&req->body);
    req->discarded = size;
    reply_set_error(&req->reply, DUB_ERR_TOO_LARGE, NULL, NULL);
    return MHD_YES;
  }
  dub_buf_append(&req->body, data, size);
  return MHD_YES;
}

static void run_handler(struct dub_http_request *req)
{
  const struct dub_http_route *def = req->route->def;
  enum dub_err rc = def->handler(req->server->ctx, req, &req->reply);
  if(req->reply.set || req->pending)
    return;
  if(rc) {
    reply_set_error(&req->reply, rc, NULL, NULL);
  } else {
    dub_log_error("http: handler of %s %s answered nothing", def->method, def->pattern);
    reply_set_error(&req->reply, DUB_ERR_INTERNAL, NULL, NULL);
  }
}

/* The access handler of libmicrohttpd; runs on the server's threads. The first call
 * only screens the headers (answering at once only when a refused body would follow),
 * upload calls collect the body, the last call runs the handler and answers, or
 * suspends the connection for a deferred answer; after the resume, it answers. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
  struct dub_http_server *server = cls;
  struct dub_http_request *req = *con_cls;
  (void)version;

  if(!req) {
    bool has_body = false;
    req = begin(server, conn, url, method, &has_body);
    *con_cls = req;
    if(req->reply.set && has_body)
      return answer(req);
    return MHD_YES;
  }
  if(*upload_data_size) {
    enum MHD_Result ret = take_upload(req, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return ret;
  }
  if(!req->handled) {
    req->handled = true;
    if(!req->reply.set)
      run_handler(req);
  }
  if(req->pending) {
    struct dub_http_pending *pending = req->pending;
    pthread_mutex_lock(&pending->lock);
    if(!pending->done) {
      bool again = pending->suspended;
      if(!again) {
        MHD_suspend_connection(conn);
        pending->suspended = true;
      }
      pthread_mutex_unlock(&pending->lock);
      if(again)
        dub_log_error("http: request %s resumed without an answer", req->id);
      return again ? MHD_NO : MHD_YES;
    }
    reply_move(&req->reply, &pending->reply);
    pthread_mutex_unlock(&pending->lock);
  }
  return answer(req);
}

/* libmicrohttpd's completion callback; runs on the server's threads when a request
 * is over, answered or not (client gone, timeout, shutdown). */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
  struct dub_http_server *server = cls;
  struct dub_http_request *req = *con_cls;
  (void)conn;
  (void)toe;
  if(!req)
    return;
  *con_cls = NULL;
  if(req->pending)
    pending_detach(req->pending);
  for(size_t i = 0; i < req->nparams; i++)
    free(req->params[i].value);
  for(size_t i = 0; i < req->nquery; i++) {
    free(req->query[i].key);
    free(req->query[i].value);
  }
  free(req->query);
  dub_buf_release(&req->body);
  reply_release(&req->reply);
  dub_auth_unref(req->auth);
  free(req);
  atomic_fetch_sub_explicit(&server->inflight, 1, memory_order_release);
}

/* Keeps the path and query escaped: path segments and query values are decoded one by
 * one, so that "%2F" does not split a segment. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
  (void)cls;
  (void)conn;
  return strlen(s);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt,
                                                          va_list ap)
{
  char msg[512];
  (void)cls;
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t len = strlen(msg);
  while(len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
    msg[--len] = '\0';
  dub_log_warn("http: libmicrohttpd: %s", msg);
}

/* ---- built-in routes ---- */

static enum dub_err healthz(void *ctx, struct dub_http_request *req,
                            struct dub_http_reply *reply)
{
  (void)ctx;
  (void)req;
  dub_http_reply_json(reply, 200, json_pack("{s:s}", "status", "ok"));
  return DUB_OK;
}

static enum dub_err readyz(void *ctx, struct dub_http_request *req,
                           struct dub_http_reply *reply)
{
  struct dub_http_server *server = req->server;
  char *reason = NULL;
  bool ready = !server->ready || server->ready(ctx, &reason);
  if(ready)
    dub_http_reply_json(reply, 200, json_pack("{s:s}", "status", "ready"));
  else
    dub_http_reply_error(reply, DUB_ERR_UNAVAILABLE, reason, NULL);
  free(reason);
  return DUB_OK;
}

static enum dub_err metrics(void *ctx, struct dub_http_request *req,
                            struct dub_http_reply *reply)
{
  (void)ctx;
  char *text = dub_metrics_render(req->server->metrics);
  dub_http_reply_data(reply, 200, "text/plain; version=0.0.4", text, strlen(text));
  free(text);
  return DUB_OK;
}

static const struct dub_http_route builtins[] = {
    {.method = "GET", .pattern = "/healthz", .handler = healthz},
    {.method = "GET", .pattern = "/readyz", .handler = readyz},
    {.method = "GET", .pattern = "/metrics", .handler = metrics},
};

/* ---- start and stop ---- */

static enum dub_err parse_address(const char *bind, unsigned port,
                                  struct sockaddr_storage *addr, bool *ipv6)
{
  memset(addr, 0, sizeof *addr);
  struct sockaddr_in *in4 = (struct sockaddr_in *)addr;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
  if(port > 65535)
    return DUB_ERR_INVALID;
  if(inet_pton(AF_INET, bind, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    *ipv6 = false;
    return DUB_OK;
  }
  if(inet_pton(AF_INET6, bind, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *ipv6 = true;
    return DUB_OK;
  }
  return DUB_ERR_INVALID;
}

enum dub_err dub_http_start(const struct dub_http_opts *opts,
                            struct dub_http_server **out)
{
  enum dub_err rc = DUB_OK;
  struct sockaddr_storage addr;
  bool ipv6 = false;
  const char *bind = opts->bind ? opts->bind : "0.0.0.0";
  struct dub_http_server *server = dub_xcalloc(1, sizeof *server);
  *out = NULL;

  pthread_mutex_init(&server->lock, NULL);
  atomic_init(&server->inflight, 0);
  atomic_init(&server->id_counter, 0);
  atomic_init(&server->stopping_hint, false);
  server->ctx = opts->ctx;
  server->ready = opts->ready;
  server->drain_ms = opts->drain_ms ? opts->drain_ms : DUB_HTTP_DEFAULT_DRAIN_MS;
  server->metrics = opts->metrics;
  if(!server->metrics)
    server->metrics = server->own_metrics = dub_metrics_new();
  server->auth = dub_auth_ref(opts->auth);
  if(getrandom(server->id_key, sizeof server->id_key, 0) != sizeof server->id_key) {
    server->id_key[0] = (uint64_t)now_ns();
    server->id_key[1] = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
  }

  rc = parse_address(bind, opts->port, &addr, &ipv6);
  if(rc) {
    dub_log_error("http: bind address '%s' or port %u is not usable", bind, opts->port);
    goto out;
  }
  rc = route_table_build(&server->table, opts->routes, opts->routes ? opts->nroutes : 0,
                         builtins, sizeof builtins / sizeof builtins[0]);
  if(rc)
    goto out;
  for(size_t i = 0; i < server->table.n; i++) {
    struct route *r = &server->table.routes[i];
    rc = dub_metrics_histogram_series(server->metrics, DURATION, DURATION_HELP,
                                      r->metric_label, &r->duration);
    if(rc)
      goto out;
  }
  rc = dub_metrics_histogram_series(server->metrics, DURATION, DURATION_HELP,
                                    "route=\"unmatched\"", &server->unmatched_duration);
  if(rc) {
    dub_log_error("http: metric '%s' is registered with another type", DURATION);
    goto out;
  }

  unsigned threads = opts->threads ? opts->threads : DUB_HTTP_DEFAULT_THREADS;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                   MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if(ipv6)
    flags |= MHD_USE_IPv6;
  server->daemon = MHD_start_daemon(
      flags, (uint16_t)opts->port, NULL, NULL, on_access, server,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, threads,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, server, MHD_OPTION_UNESCAPE_CALLBACK,
      keep_escaped, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
  if(!server->daemon) {
    dub_log_error("http: cannot listen on %s port %u", bind, opts->port);
    rc = DUB_ERR_IO;
    goto out;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
  server->port = info && info->port ? info->port : opts->port;
  dub_log_info("http: listening on %s port %u with %u threads", bind, server->port,
               threads);
  *out = server;
  server = NULL;
out:
  if(server) {
    route_table_release(&server->table);
    dub_auth_unref(server->auth);
    dub_metrics_free(server->own_metrics);
    pthread_mutex_destroy(&server->lock);
    free(server);
  }
  return rc;
}

static void wait_idle(struct dub_http_server *server, unsigned ms)
{
  int64_t until = now_ns() + (int64_t)ms * 1000000;
  while(atomic_load_explicit(&server->inflight, memory_order_acquire) > 0 &&
        now_ns() < until) {
    struct timespec pause = {0, 5 * 1000000};
    nanosleep(&pause, NULL);
  }
}

void dub_http_stop(struct dub_http_server *server)
{
  if(!server)
    return;
  server->stopping_hint = true;
  /* The listening socket stays open until the daemon has stopped: microhttpd.h says
   * that in threaded modes it must not be closed before MHD_stop_daemon (its threads
   * may still select on the number, which a new file could take). */
  MHD_socket fd = MHD_quiesce_daemon(server->daemon);
  wait_idle(server, server->drain_ms);
  long left = atomic_load(&server->inflight);
  if(left)
    dub_log_warn(
        "http: %ld requests still in flight after %u ms, answering deferred ones "
        "with 503",
        left, server->drain_ms);
  pending_force_all(server);
  wait_idle(server, 1000);
  MHD_stop_daemon(server->daemon);
  if(fd != MHD_INVALID_SOCKET)
    close(fd);
  route_table_release(&server->table);
  dub_auth_unref(server->auth);
  dub_metrics_free(server->own_metrics);
  pthread_mutex_destroy(&server->lock);
  free(server);
}

unsigned dub_http_port(const struct dub_http_server *server)
{
  return server->port;
}

void dub_http_set_auth(struct dub_http_server *server, struct dub_auth *auth)
{
  struct dub_auth *old;
  dub_auth_ref(auth);
  pthread_mutex_lock(&server->lock);
  old = server->auth;
  server->auth = auth;
  pthread_mutex_unlock(&server->lock);
  dub_auth_unref(old);
}

struct dub_metrics *dub_http_metrics(struct dub_http_server *server)
{
  return server->metrics;
}

/* ---- request accessors ---- */

const char *dub_http_request_method(const struct dub_http_request *req)
{
  return req->method;
}

const char *dub_http_request_path(const struct dub_http_request *req)
{
  return req->path;
}

const char *dub_http_request_route(const struct dub_http_request *req)
{
  return req->route ? req->route->def->pattern : NULL;
}

const char *dub_http_request_param(const struct dub_http_request *req, const char *name)
{
  for(size_t i = 0; name && i < req->nparams; i++) {
    if(strcmp(req->params[i].name, name) == 0)
      return req->params[i].value;
  }
  return NULL;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
  struct dub_http_request *req = cls;
  (void)kind;
  req->query = dub_xrealloc(req->query, (req->nquery + 1) * sizeof *req->query);
  struct query_pair *q = &req->query[req->nquery++];
  percent_decode(key, strlen(key), true, false, &q->key);
  if(value)
    percent_decode(value, strlen(value), true, false, &q->value);
  else
    q->value = dub_xstrdup("");
  return MHD_YES;
}

const char *dub_http_request_query(struct dub_http_request *req, const char *name)
{
  if(!req->query_parsed) {
    req->query_parsed = true;
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_query, req);
  }
  for(size_t i = 0; name && i < req->nquery; i++) {
    if(strcmp(req->query[i].key, name) == 0)
      return req->query[i].value;
  }
  return NULL;
}

const char *dub_http_request_header(const struct dub_http_request *req, const char *name)
{
  return name ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *dub_http_request_body(const struct dub_http_request *req, size_t *len)
{
  if(len)
    *len = req->body.len;
  return req->body.data ? req->body.data : "";
}

const struct sockaddr *dub_http_request_peer(const struct dub_http_request *req)
{
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  return info ? info->client_addr : NULL;
}

const char *dub_http_request_id(const struct dub_http_request *req)
{
  return req->id;
}

const struct dub_auth_client *dub_http_request_client(const struct dub_http_request *req)
{
  return req->client;
}
