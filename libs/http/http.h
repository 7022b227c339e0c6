/* http.h - the REST server every service uses: libmicrohttpd underneath, a route table,
 * bearer auth, media type and body limits, one error shape, deferred replies,
 * /healthz, /readyz and /metrics. */
#ifndef DUB_HTTP_HTTP_H
#define DUB_HTTP_HTTP_H

#include "core/err.h"
#include "http/auth.h"
#include "metrics/metrics.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct sockaddr;

#define DUB_HTTP_DEFAULT_THREADS 2
#define DUB_HTTP_DEFAULT_MAX_BODY (1024 * 1024)
#define DUB_HTTP_DEFAULT_DRAIN_MS 5000
/* Longest X-Request-Id taken from a client; longer or odd ones are replaced. */
#define DUB_HTTP_REQUEST_ID_MAX 64

struct dub_http_server;
/* What a handler reads: method, path parameters, query, headers, body, client. Valid
 * until the handler returns (copy what a deferred reply needs later). */
struct dub_http_request;
/* Where a handler answers; one answer per request. */
struct dub_http_reply;
/* A reply that a handler deferred; see dub_http_reply_defer(). */
struct dub_http_pending;

/* A handler. Runs on one of the server's threads, many at once. It answers through
 * 'reply' (dub_http_reply_json(), dub_http_reply_error(), ...) or defers; if it answers
 * nothing and returns an error, the server answers that error with its default
 * message; if it answers nothing and returns DUB_OK, the server answers 500. */
struct dub_http_route {
  const char *method;       /* "GET", "POST", ...; a GET route also answers HEAD */
  const char *pattern;      /* "/v1/cases/{case_id}": literal segments and whole-segment
                               {parameters}, which match one non-empty segment */
  const char *scope;        /* bearer scope required; NULL = no authentication */
  const char *const *media; /* accepted Content-Types, NULL-terminated, compared without
                               parameters and case; NULL = no request body allowed */
  size_t max_body;          /* bytes; 0 = DUB_HTTP_DEFAULT_MAX_BODY */
  enum dub_err (*handler)(void *ctx, struct dub_http_request *req,
                          struct dub_http_reply *reply);
};

struct dub_http_opts {
  const char *bind; /* numeric IPv4 or IPv6 address; NULL = "0.0.0.0" */
  unsigned port;    /* 0 = any free port, see dub_http_port() */
  unsigned threads; /* 0 = DUB_HTTP_DEFAULT_THREADS */
  const struct dub_http_route *routes; /* borrowed until dub_http_stop() */
  size_t nroutes;
  void *ctx; /* passed to handlers and 'ready', borrowed */
  /* Readiness for GET /readyz, run on a server thread; NULL = always ready. When not
   * ready it returns false and may set *reason to a new lower-case message (the server
   * frees it). */
  bool (*ready)(void *ctx, char **reason);
  /* Registry for the request metrics and GET /metrics, borrowed until dub_http_stop();
   * NULL = the server keeps its own. */
  struct dub_metrics *metrics;
  /* Client set; the server takes its own reference. NULL = scoped routes answer 401. */
  struct dub_auth *auth;
  /* How long dub_http_stop() waits for requests in flight; 0 = default. */
  unsigned drain_ms;
};

/* Validates the routes and starts listening. Built-in routes GET /healthz, /readyz and
 * /metrics are added; a route may not reuse them. On success *server is a new server;
 * stop and free it with dub_http_stop(). DUB_ERR_INVALID for a bad route table,
 * DUB_ERR_IO when the address cannot be bound. */
enum dub_err dub_http_start(const struct dub_http_opts *opts,
                            struct dub_http_server **server);
/* Stops accepting, waits up to drain_ms for requests in flight, answers deferred replies
 * still outstanding with 503, closes every connection and frees the server. Pending
 * objects stay valid for their owners (see dub_http_pending_json()). NULL is a no-op. */
void dub_http_stop(struct dub_http_server *server);
/* The port the server listens on. */
unsigned dub_http_port(const struct dub_http_server *server);
/* Replaces the client set, e.g. on SIGHUP, while requests run; the server takes its
 * own reference to 'auth' (NULL = reject every scoped request). Requests already
 * authenticated keep the set they started with. Thread-safe. */
void dub_http_set_auth(struct dub_http_server *server, struct dub_auth *auth);
/* The registry used for /metrics (the opts one or the server's own). Borrowed until
 * dub_http_stop(). */
struct dub_metrics *dub_http_metrics(struct dub_http_server *server);

/* Request accessors. Strings are borrowed until the handler returns. */
const char *dub_http_request_method(const struct dub_http_request *req);
/* The raw path as received, without the query. */
const char *dub_http_request_path(const struct dub_http_request *req);
/* The route pattern that matched, e.g. "/v1/cases/{case_id}". */
const char *dub_http_request_route(const struct dub_http_request *req);
/* A path parameter, percent-decoded ("%2F" gives '/'), or NULL if the route has none
 * of that name. */
const char *dub_http_request_param(const struct dub_http_request *req, const char *name);
/* A query parameter, percent-decoded ('+' gives ' '); the first if repeated; "" for a
 * key without '='; NULL when absent. */
const char *dub_http_request_query(struct dub_http_request *req, const char *name);
/* A request header (case-insensitive name) or NULL. */
const char *dub_http_request_header(const struct dub_http_request *req, const char *name);
/* The request body (NUL-terminated for convenience, may hold NULs), *len its length.
 * Empty, not NULL, when there was none. */
const char *dub_http_request_body(const struct dub_http_request *req, size_t *len);
/* The client's address (AF_INET or AF_INET6), or NULL if libmicrohttpd has none.
 * Borrowed until the handler returns. */
const struct sockaddr *dub_http_request_peer(const struct dub_http_request *req);
/* The request id answered in X-Request-Id: the client's if sane, else a new one. */
const char *dub_http_request_id(const struct dub_http_request *req);
/* The authenticated client, or NULL on routes without a scope. Borrowed until the
 * handler returns: copy what a deferred answer needs. */
const struct dub_auth_client *dub_http_request_client(const struct dub_http_request *req);

/* Answers 'status' with 'body' as application/json. Takes ownership of body, also on
 * failure. A second answer to the same request is ignored (and logged). */
void dub_http_reply_json(struct dub_http_reply *reply, int status, json_t *body);
/* Answers the error shape {"error": {"code", "message", "details"}} for 'err' with its
 * status from the core table; 'message' NULL = the table's default; 'details' a JSON
 * array or NULL for [] (ownership taken, also on failure; a non-array is wrapped in
 * one). 503 and 429 carry Retry-After unless the handler set one. */
void dub_http_reply_error(struct dub_http_reply *reply, enum dub_err err,
                          const char *message, json_t *details);
/* Answers 'status' with 'len' bytes of 'data' (copied) as 'content_type'. */
void dub_http_reply_data(struct dub_http_reply *reply, int status,
                         const char *content_type, const void *data, size_t len);
/* Adds a response header ('name' and 'value' copied). Call before answering. Content-
 * Type and X-Request-Id are set by the server. */
void dub_http_reply_header(struct dub_http_reply *reply, const char *name,
                           const char *value);

/* Defers the answer: the handler returns (DUB_OK) and answers later, from any thread,
 * with exactly one dub_http_pending_json() or dub_http_pending_error(). The connection
 * is suspended meanwhile; no thread waits. Returns a new pending object, owned by the
 * caller until that one completing call, which frees it. If the client went away or the
 * server was stopped meanwhile, the completing call just frees. Call at most once per
 * request, before any other answer. */
struct dub_http_pending *dub_http_reply_defer(struct dub_http_reply *reply);
/* The request id of the deferred request. Borrowed until the completing call. */
const char *dub_http_pending_request_id(const struct dub_http_pending *pending);
/* Adds a response header to the deferred answer; call before completing. Thread-safe
 * with respect to the server. */
void dub_http_pending_header(struct dub_http_pending *pending, const char *name,
                             const char *value);
/* Completes like dub_http_reply_json() and frees 'pending'. Any thread. */
void dub_http_pending_json(struct dub_http_pending *pending, int status, json_t *body);
/* Completes like dub_http_reply_error() and frees 'pending'. Any thread. */
void dub_http_pending_error(struct dub_http_pending *pending, enum dub_err err,
                            const char *message, json_t *details);

/* Builds the one error document {"error": {"code", "message", "details"}}; exposed for
 * non-HTTP users of the same shape. Takes ownership of details. Returns a new
 * reference. */
json_t *dub_http_error_body(enum dub_err err, const char *message, json_t *details);

/* Client address allow-lists, for routes without a bearer scope that must still not be
 * open to every caller. */
struct dub_http_allow;
/* Parses a comma-separated list of IPv4 or IPv6 addresses and prefixes
 * ("127.0.0.0/8, ::1, 10.20.0.0/16"). IPv4 also matches IPv4-mapped IPv6 peers
 * (::ffff:a.b.c.d). DUB_ERR_CONFIG with a new *why on a bad entry or an empty list. */
enum dub_err dub_http_allow_parse(const char *list, struct dub_http_allow **out,
                                  char **why);
/* True when 'peer' (may be NULL: false) is within one of the list's prefixes. */
bool dub_http_allow_match(const struct dub_http_allow *allow,
                          const struct sockaddr *peer);
void dub_http_allow_free(struct dub_http_allow *allow);

#endif
