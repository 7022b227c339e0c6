/* internal.h - what the files of libs/http share; not for users of the library. */
#ifndef DUB_HTTP_INTERNAL_H
#define DUB_HTTP_INTERNAL_H

#include "core/alloc.h"
#include "http/http.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define MAX_SEGMENTS 16
#define MAX_PARAMS 8

/* ---- route.c: compiled route table and the pure helpers of the pipeline ---- */

struct route {
  const struct dub_http_route *def;
  size_t nsegs;
  char *segs[MAX_SEGMENTS]; /* literal text, or the parameter name */
  bool is_param[MAX_SEGMENTS];
  char *metric_label; /* route="<escaped pattern>" */
  struct dub_metrics_series *duration;
  /* Request counters by status for the route's own method, filled on first use. */
  _Atomic(struct dub_metrics_series *) *by_status;
};

#define STATUS_SLOTS 600

struct route_table {
  struct route *routes;
  size_t n;
};

/* Compiles 'defs' followed by 'builtins'. DUB_ERR_INVALID (logged) for a bad table. */
enum dub_err route_table_build(struct route_table *table,
                               const struct dub_http_route *defs, size_t ndefs,
                               const struct dub_http_route *builtins, size_t nbuiltins);
void route_table_release(struct route_table *table);

struct param {
  const char *name; /* borrowed from the route */
  char *value;      /* decoded, owned */
};

enum match_result { MATCH_OK, MATCH_NOT_FOUND, MATCH_METHOD, MATCH_MALFORMED };

/* Matches a raw path and method. On MATCH_OK *found is the route and params[0..*nparams)
 * its decoded parameters (free the values). On MATCH_METHOD *allow is a new string for
 * the Allow header (free with free()) and *found the first route of that path. */
enum match_result route_match(const struct route_table *table, const char *method,
                              const char *path, const struct route **found,
                              struct param params[MAX_PARAMS], size_t *nparams,
                              char **allow);

/* Decodes %XX ('+' as ' ' when 'plus' is set). Strict: false on a bad escape or %00.
 * Lenient: bad escapes and %00 are kept as written. *out is new (free with free()). */
bool percent_decode(const char *s, size_t len, bool plus, bool strict, char **out);
/* Whether Content-Type 'value' (parameters ignored, case-insensitive) is in 'accepted'.
 */
bool media_type_accepted(const char *value, const char *const *accepted);
/* Whether a client's X-Request-Id may be echoed: 1..64 of [A-Za-z0-9._-]. */
bool request_id_sane(const char *id);
/* The token of "Bearer <token>" (scheme case-insensitive), or NULL. Points into
 * 'header'; *len gets its length. */
const char *bearer_token(const char *header, size_t *len);

/* ---- server.c and reply.c: one request in flight ---- */

struct header {
  char *name;
  char *value;
  struct header *next;
};

struct dub_http_reply {
  bool set;
  int status;
  char *body; /* malloc'd, handed to libmicrohttpd */
  size_t len;
  const char *content_type; /* a literal, or owned_type */
  char *owned_type;
  struct header *headers; /* in the order added */
  struct header **tail;
};

struct dub_http_pending {
  pthread_mutex_t lock;
  int refs;                     /* owner's one plus the connection's one, under lock */
  struct dub_http_request *req; /* NULL once the connection is done, under lock */
  bool suspended;               /* under lock */
  bool done;                    /* an answer is stored, under lock */
  struct dub_http_reply reply;  /* under lock */
  char id[DUB_HTTP_REQUEST_ID_MAX + 1];
  struct dub_http_pending *prev, *next; /* server's outstanding list, under its lock */
};

struct query_pair {
  char *key;
  char *value;
};

struct dub_http_request {
  struct dub_http_server *server;
  struct MHD_Connection *conn;
  const struct route *route;
  const char *method; /* libmicrohttpd's, valid for the request */
  const char *path;
  struct param params[MAX_PARAMS];
  size_t nparams;
  struct query_pair *query;
  size_t nquery;
  bool query_parsed;
  struct dub_buf body;
  size_t max_body;
  size_t discarded;
  char id[DUB_HTTP_REQUEST_ID_MAX + 1];
  struct dub_auth *auth; /* one reference, while the request lives */
  const struct dub_auth_client *client;
  int64_t start_ns;
  bool handled;
  struct dub_http_reply reply;
  struct dub_http_pending *pending;
};

struct dub_http_server {
  struct MHD_Daemon *daemon;
  struct route_table table;
  void *ctx;
  bool (*ready)(void *ctx, char **reason);
  struct dub_metrics *metrics;
  struct dub_metrics *own_metrics;
  struct dub_metrics_series *unmatched_duration;
  unsigned drain_ms;
  unsigned port;
  pthread_mutex_t lock; /* auth, outstanding, stopping */
  struct dub_auth *auth;
  struct dub_http_pending *outstanding;
  bool stopping;
  atomic_bool stopping_hint; /* answers carry Connection: close */
  atomic_long inflight;
  atomic_uint_fast64_t id_counter;
  uint64_t id_key[2];
};

/* reply.c */
void reply_init(struct dub_http_reply *reply);
void reply_release(struct dub_http_reply *reply);
/* Stores an error answer, the one place the error shape is made. */
void reply_set_error(struct dub_http_reply *reply, enum dub_err err, const char *message,
                     json_t *details);
void reply_set_json(struct dub_http_reply *reply, int status, json_t *body);
void reply_add_header(struct dub_http_reply *reply, const char *name, const char *value);
bool reply_has_header(const struct dub_http_reply *reply, const char *name);
/* Moves the answer of 'from' into 'to', keeping headers of both; 'from' is left empty. */
void reply_move(struct dub_http_reply *to, struct dub_http_reply *from);
/* Called by the server when the connection of a deferred request is done. */
void pending_detach(struct dub_http_pending *pending);
/* Answers every outstanding deferred request with 503; called by dub_http_stop(). */
void pending_force_all(struct dub_http_server *server);

#endif
