/* cache.h - thread-safe Redis connection: binary-safe commands, pipelines, reconnect. */
#ifndef DUB_CACHE_CACHE_H
#define DUB_CACHE_CACHE_H

#include "core/err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Reconnect backoff after a failed connect: starts here, doubles, stops at the max. */
#define DUB_CACHE_BACKOFF_MIN_MS 50
#define DUB_CACHE_BACKOFF_MAX_MS 2000

/* ---- URLs -------------------------------------------------------------------------- */

/* A parsed Redis URL. Forms:
 *   redis://host[:port][/db]                 port 1..65535 (default 6379), db 0..
 *   redis://[user]:password@host[:port][/db] user and password %-decoded
 *   redis://[::1]:6379/0                     IPv6 literal in brackets
 *   unix:///path/to/sock[?db=N][&password=P]
 * Nothing else is accepted (no query on redis://, no trailing garbage). */
struct dub_cache_url {
  char *host; /* NULL for unix sockets */
  int port;
  char *path;     /* unix socket path, else NULL */
  char *user;     /* NULL = none (AUTH password only) */
  char *password; /* NULL = no AUTH */
  int db;
};

/* Parses 'url' into 'out' (strings are new copies; release with
 * dub_cache_url_release()). On failure DUB_ERR_CONFIG and *why (free with free()) says
 * what is wrong without repeating a password. */
enum dub_err dub_cache_url_parse(const char *url, struct dub_cache_url *out, char **why);
/* Frees the strings of 'url' and zeroes it. */
void dub_cache_url_release(struct dub_cache_url *url);

/* ---- connection -------------------------------------------------------------------- */

struct dub_cache;

/* Parses 'url', connects (bounded by connect_timeout_ms), sends AUTH and SELECT; each
 * command is bounded by command_timeout_ms. DUB_ERR_CONFIG for a bad URL, otherwise a
 * failed first connect is not an error: the handle is returned and later calls retry.
 * Returns a new object in *cache; free with dub_cache_free(). On failure *why is a new
 * message (free with free()).
 * Writing to a closed socket raises SIGPIPE: the process must ignore SIGPIPE. */
enum dub_err dub_cache_new(const char *url, int connect_timeout_ms,
                           int command_timeout_ms, struct dub_cache **cache, char **why);
/* Closes and frees. NULL is a no-op. */
void dub_cache_free(struct dub_cache *cache);

/* True when a connection is currently open (it may still turn out broken). */
bool dub_cache_connected(struct dub_cache *cache);

/* ---- replies ----------------------------------------------------------------------- */

enum dub_cache_type {
  DUB_CACHE_NIL,
  DUB_CACHE_INT,
  DUB_CACHE_STRING,
  DUB_CACHE_STATUS, /* "+OK": str holds "OK" */
  DUB_CACHE_ARRAY,
  DUB_CACHE_ERROR, /* "-ERR ...": str holds the message */
};

struct dub_cache_reply {
  enum dub_cache_type type;
  long long integer;                 /* INT */
  char *str;                         /* STRING, STATUS, ERROR; NUL-terminated too */
  size_t len;                        /* bytes in str */
  struct dub_cache_reply **elements; /* ARRAY */
  size_t count;                      /* elements in ARRAY */
};

/* Frees a reply and everything in it. NULL is a no-op. */
void dub_cache_reply_free(struct dub_cache_reply *reply);

/* ---- commands ---------------------------------------------------------------------- */

/* Every command function is thread-safe (one mutex around the connection) and, when no
 * connection is open, first reconnects, unless the reconnect backoff is still running,
 * in which case it fails at once. Results:
 *   DUB_OK               *reply (if 'reply' is not NULL) is a new reply; free with
 *                        dub_cache_reply_free();
 *   DUB_ERR_INTERNAL     Redis answered with an error reply (given in *reply, type
 *                        DUB_CACHE_ERROR, e.g. WRONGTYPE or NOSCRIPT);
 *   DUB_ERR_UNAVAILABLE  no connection, the link broke, the command timed out, or Redis
 *                        refused it for now: LOADING, BUSY, MASTERDOWN, READONLY, OOM,
 *                        NOREPLICAS, MISCONF, TRYAGAIN or CLUSTERDOWN (retriable: back
 *                        off, keep the offset, try again). The connection is dropped on
 *                        link errors, timeouts and READONLY; the next call reconnects.
 *   DUB_ERR_INVALID      no arguments, or a format hiredis cannot parse.
 * On any error other than DUB_ERR_INTERNAL *reply is NULL. */

/* Binary-safe: argv[i] has argvlen[i] bytes (argvlen NULL = all NUL-terminated). */
enum dub_err dub_cache_command(struct dub_cache *cache, struct dub_cache_reply **reply,
                               int argc, const char *const *argv, const size_t *argvlen);

/* hiredis format: %s a C string, %b a binary argument as (pointer, size_t length), %%;
 * arguments are split on spaces of 'fmt' only, never inside a substituted value. */
enum dub_err dub_cache_commandf(struct dub_cache *cache, struct dub_cache_reply **reply,
                                const char *fmt, ...);
enum dub_err dub_cache_vcommandf(struct dub_cache *cache, struct dub_cache_reply **reply,
                                 const char *fmt, va_list ap);

/* Readiness probe: PING answered PONG. */
enum dub_err dub_cache_ping(struct dub_cache *cache);

/* Readiness probe for a service that writes: SET 'key' (a short-lived key of the
 * caller's own) with a 10 s expiry. DUB_OK when Redis took it; otherwise
 * DUB_ERR_UNAVAILABLE (or DUB_ERR_INTERNAL) and *why, a new message (free with free()),
 * says whether Redis is unreachable or refuses writes, and with which error
 * (LOADING, READONLY, OOM, ...). A PING answers through all of those. */
enum dub_err dub_cache_probe_write(struct dub_cache *cache, const char *key, char **why);

/* ---- pipelines --------------------------------------------------------------------- */

/* A batch of commands sent together and answered in one round trip. Building it needs
 * no connection. */
struct dub_cache_pipeline;

/* Returns a new object; free with dub_cache_pipeline_free(). */
struct dub_cache_pipeline *dub_cache_pipeline_new(void);
void dub_cache_pipeline_free(struct dub_cache_pipeline *pipeline);
/* Empties the pipeline and keeps its memory, for a caller that sends one pipeline after
 * another (freeing and growing large buffers again costs more than the commands). */
void dub_cache_pipeline_reset(struct dub_cache_pipeline *pipeline);
/* Appends a command (arguments are copied); argc must be at least 1. */
void dub_cache_pipeline_add(struct dub_cache_pipeline *pipeline, int argc,
                            const char *const *argv, const size_t *argvlen);
/* Appends a command in the format of dub_cache_commandf(). DUB_ERR_INVALID when the
 * format is bad (nothing appended). */
enum dub_err dub_cache_pipeline_addf(struct dub_cache_pipeline *pipeline, const char *fmt,
                                     ...);
/* Appends every command of 'src' (left as it is) to 'dst'. */
void dub_cache_pipeline_append(struct dub_cache_pipeline *dst,
                               const struct dub_cache_pipeline *src);
/* Number of commands appended. */
size_t dub_cache_pipeline_count(const struct dub_cache_pipeline *pipeline);

/* Sends every command and reads every reply. DUB_OK only when no reply is an error,
 * at any depth (an EXEC's replies included): then *replies is a new array of
 * dub_cache_pipeline_count() replies, free with dub_cache_replies_free(). Otherwise
 * *replies is NULL, and any of the commands may or may not have run:
 *   DUB_ERR_UNAVAILABLE  as for a single command, or some reply was a retriable error
 *                        (one OOM among a thousand SETs fails the whole call);
 *   DUB_ERR_INTERNAL     some reply was another error (WRONGTYPE, ...), logged.
 * The pipeline can be executed again. 'replies' may be NULL for a caller that needs
 * only to know that every command succeeded. */
enum dub_err dub_cache_pipeline_exec(struct dub_cache *cache,
                                     const struct dub_cache_pipeline *pipeline,
                                     struct dub_cache_reply ***replies);
/* As dub_cache_pipeline_exec(), for a caller that reads every reply itself (a script's
 * NOSCRIPT, say): error replies come back as DUB_CACHE_ERROR elements with DUB_OK, and
 * the caller must treat the retriable ones (dub_cache_reply_retriable()) as
 * DUB_ERR_UNAVAILABLE. */
enum dub_err dub_cache_pipeline_exec_each(struct dub_cache *cache,
                                          const struct dub_cache_pipeline *pipeline,
                                          struct dub_cache_reply ***replies);
/* True for an error reply that means "try again later" (the words listed above). */
bool dub_cache_reply_retriable(const struct dub_cache_reply *reply);
/* Frees an array from dub_cache_pipeline_exec() and its 'count' replies. */
void dub_cache_replies_free(struct dub_cache_reply **replies, size_t count);

#endif
