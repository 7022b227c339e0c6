/* cache.c - the Redis connection: reconnect with backoff, commands and pipelines. */
#include "cache/cache.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct dub_cache {
  pthread_mutex_t mu;
  struct dub_cache_url url;
  struct timeval connect_tv;
  struct timeval command_tv;
  redisContext *ctx;         /* NULL while disconnected */
  int backoff_ms;            /* wait after the next failed connect */
  int64_t next_attempt;      /* monotonic ms before which no connect is tried */
  int64_t refusal_logged_ms; /* when a refusal (see refused()) was last logged */
  char refusal_word[16];     /* and its word */
};

struct dub_cache_pipeline {
  struct dub_buf cmds; /* RESP-formatted commands, back to back */
  size_t count;
};

static struct timeval to_tv(int ms)
{
  if(ms <= 0)
    ms = 1000;
  struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
  return tv;
}

static void drop(struct dub_cache *cache)
{
  if(cache->ctx) {
    redisFree(cache->ctx);
    cache->ctx = NULL;
  }
}

static void connect_failed(struct dub_cache *cache)
{
  drop(cache);
  cache->next_attempt = dub_time_mono_ms() + cache->backoff_ms;
  cache->backoff_ms = cache->backoff_ms >= DUB_CACHE_BACKOFF_MAX_MS / 2
                          ? DUB_CACHE_BACKOFF_MAX_MS
                          : cache->backoff_ms * 2;
}

/* Runs one setup command (AUTH, SELECT) on a fresh connection. */
static bool setup_command(struct dub_cache *cache, const char *what, int argc,
                          const char **argv)
{
  redisReply *r = redisCommandArgv(cache->ctx, argc, argv, NULL);
  bool ok = r && r->type != REDIS_REPLY_ERROR;
  if(!r)
    dub_log_warn("redis %s failed: %s", what, cache->ctx->errstr);
  else if(!ok)
    dub_log_error("redis %s refused: %s", what, r->str);
  freeReplyObject(r);
  return ok;
}

/* Makes sure a connection is open. Called with the mutex held. */
static enum dub_err ensure_connected(struct dub_cache *cache)
{
  const struct dub_cache_url *u = &cache->url;
  if(cache->ctx)
    return DUB_OK;
  if(dub_time_mono_ms() < cache->next_attempt)
    return DUB_ERR_UNAVAILABLE;
  cache->ctx = u->path ? redisConnectUnixWithTimeout(u->path, cache->connect_tv)
                       : redisConnectWithTimeout(u->host, u->port, cache->connect_tv);
  if(!cache->ctx || cache->ctx->err) {
    dub_log_warn("redis connect to %s:%d failed: %s", u->path ? u->path : u->host,
                 u->path ? 0 : u->port,
                 cache->ctx ? cache->ctx->errstr : "out of memory");
    connect_failed(cache);
    return DUB_ERR_UNAVAILABLE;
  }
  if(redisSetTimeout(cache->ctx, cache->command_tv) != REDIS_OK ||
     (!u->path && redisEnableKeepAlive(cache->ctx) != REDIS_OK)) {
    dub_log_warn("redis socket options failed: %s", cache->ctx->errstr);
    connect_failed(cache);
    return DUB_ERR_UNAVAILABLE;
  }
  if(u->password) {
    const char *argv[] = {"AUTH", u->user ? u->user : u->password, u->password};
    if(!setup_command(cache, "auth", u->user ? 3 : 2, argv)) {
      connect_failed(cache);
      return DUB_ERR_UNAVAILABLE;
    }
  }
  if(u->db) {
    char db[16];
    snprintf(db, sizeof db, "%d", u->db);
    const char *argv[] = {"SELECT", db};
    if(!setup_command(cache, "select", 2, argv)) {
      connect_failed(cache);
      return DUB_ERR_UNAVAILABLE;
    }
  }
  cache->backoff_ms = DUB_CACHE_BACKOFF_MIN_MS;
  cache->next_attempt = 0;
  dub_log_info("redis connected to %s:%d db %d", u->path ? u->path : u->host,
               u->path ? 0 : u->port, u->db);
  return DUB_OK;
}

enum dub_err dub_cache_new(const char *url, int connect_timeout_ms,
                           int command_timeout_ms, struct dub_cache **cache, char **why)
{
  enum dub_err rc;
  struct dub_cache *c = dub_xcalloc(1, sizeof *c);

  *cache = NULL;
  rc = dub_cache_url_parse(url, &c->url, why);
  if(rc) {
    free(c);
    return rc;
  }
  pthread_mutex_init(&c->mu, NULL);
  c->connect_tv = to_tv(connect_timeout_ms);
  c->command_tv = to_tv(command_timeout_ms);
  c->backoff_ms = DUB_CACHE_BACKOFF_MIN_MS;
  pthread_mutex_lock(&c->mu);
  ensure_connected(c); /* a failure here is retried by the first command */
  pthread_mutex_unlock(&c->mu);
  *cache = c;
  return DUB_OK;
}

void dub_cache_free(struct dub_cache *cache)
{
  if(!cache)
    return;
  drop(cache);
  dub_cache_url_release(&cache->url);
  pthread_mutex_destroy(&cache->mu);
  free(cache);
}

bool dub_cache_connected(struct dub_cache *cache)
{
  pthread_mutex_lock(&cache->mu);
  bool connected = cache->ctx != NULL;
  pthread_mutex_unlock(&cache->mu);
  return connected;
}

void dub_cache_reply_free(struct dub_cache_reply *reply)
{
  if(!reply)
    return;
  for(size_t i = 0; i < reply->count; i++)
    dub_cache_reply_free(reply->elements[i]);
  free(reply->elements);
  free(reply->str);
  free(reply);
}

void dub_cache_replies_free(struct dub_cache_reply **replies, size_t count)
{
  if(!replies)
    return;
  for(size_t i = 0; i < count; i++)
    dub_cache_reply_free(replies[i]);
  free(replies);
}

static struct dub_cache_reply *convert(const redisReply *r)
{
  struct dub_cache_reply *reply = dub_xcalloc(1, sizeof *reply);
  switch(r->type) {
  case REDIS_REPLY_INTEGER:
    reply->type = DUB_CACHE_INT;
    reply->integer = r->integer;
    break;
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_ERROR:
    reply->type = r->type == REDIS_REPLY_STRING   ? DUB_CACHE_STRING
                  : r->type == REDIS_REPLY_STATUS ? DUB_CACHE_STATUS
                                                  : DUB_CACHE_ERROR;
    reply->len = r->len;
    reply->str = dub_xmalloc(r->len + 1);
    memcpy(reply->str, r->str, r->len);
    reply->str[r->len] = '\0';
    break;
  case REDIS_REPLY_ARRAY:
    reply->type = DUB_CACHE_ARRAY;
    reply->count = r->elements;
    reply->elements = dub_xcalloc(r->elements ? r->elements : 1, sizeof *reply->elements);
    for(size_t i = 0; i < r->elements; i++)
      reply->elements[i] = convert(r->element[i]);
    break;
  default:
    reply->type = DUB_CACHE_NIL;
    break;
  }
  return reply;
}

/* The words of error replies that mean "Redis cannot do it now, try again later"
 * rather than "this command is wrong": a restart loading its data (LOADING), a script
 * running (BUSY), a replica whose master is down (MASTERDOWN), a failover that made
 * this node a replica (READONLY), maxmemory with noeviction (OOM), too few replicas
 * for min-replicas-to-write (NOREPLICAS), a failing RDB save that stops writes
 * (MISCONF), and a cluster in transition (TRYAGAIN, CLUSTERDOWN). NULL for others. */
static const char *retriable_word(const struct dub_cache_reply *reply)
{
  static const char *const words[] = {"LOADING",  "BUSY",     "MASTERDOWN",
                                      "READONLY", "OOM",      "NOREPLICAS",
                                      "MISCONF",  "TRYAGAIN", "CLUSTERDOWN"};
  for(size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    size_t n = strlen(words[i]);
    if(reply->len >= n && memcmp(reply->str, words[i], n) == 0 &&
       (reply->len == n || reply->str[n] == ' '))
      return words[i];
  }
  return NULL;
}

/* The first error reply in 'reply' (itself, or in its elements at any depth, as in the
 * reply to EXEC), preferring a retriable one; NULL when there is none. */
static const struct dub_cache_reply *first_error(const struct dub_cache_reply *reply)
{
  if(reply->type == DUB_CACHE_ERROR)
    return reply;
  const struct dub_cache_reply *found = NULL;
  for(size_t i = 0; reply->type == DUB_CACHE_ARRAY && i < reply->count; i++) {
    const struct dub_cache_reply *e = first_error(reply->elements[i]);
    if(e && retriable_word(e))
      return e;
    if(e && !found)
      found = e;
  }
  return found;
}

/* Redis refused a command for now: logs it (once per word, then at most every 5 s, as
 * a caller retries for as long as it lasts) and, for READONLY, drops the connection:
 * after a failover the address may lead to the new master on the next connect. */
static void refused(struct dub_cache *cache, const struct dub_cache_reply *error)
{
  const char *word = retriable_word(error);
  int64_t now = dub_time_mono_ms();
  pthread_mutex_lock(&cache->mu);
  if(strcmp(cache->refusal_word, word) != 0 || now - cache->refusal_logged_ms >= 5000) {
    dub_log_warn("redis refuses commands for now, callers retry: %.200s", error->str);
    snprintf(cache->refusal_word, sizeof cache->refusal_word, "%s", word);
    cache->refusal_logged_ms = now;
  }
  if(strcmp(word, "READONLY") == 0)
    drop(cache);
  pthread_mutex_unlock(&cache->mu);
}

/* Sends 'count' formatted commands and reads their replies into 'out'. */
static enum dub_err exec_formatted(struct dub_cache *cache, const char *cmds, size_t len,
                                   size_t count, struct dub_cache_reply **out)
{
  enum dub_err rc = DUB_OK;
  size_t got = 0;

  pthread_mutex_lock(&cache->mu);
  rc = ensure_connected(cache);
  if(rc)
    goto out;
  if(redisAppendFormattedCommand(cache->ctx, cmds, len) != REDIS_OK) {
    rc = DUB_ERR_UNAVAILABLE;
    goto out;
  }
  for(; got < count; got++) {
    void *r = NULL;
    if(redisGetReply(cache->ctx, &r) != REDIS_OK || !r) {
      rc = DUB_ERR_UNAVAILABLE;
      goto out;
    }
    out[got] = convert(r);
    freeReplyObject(r);
  }
out:
  if(rc && cache->ctx) {
    dub_log_warn("redis command failed, dropping the connection: %s", cache->ctx->errstr);
    drop(cache);
  }
  pthread_mutex_unlock(&cache->mu);
  if(rc) {
    for(size_t i = 0; i < got; i++) {
      dub_cache_reply_free(out[i]);
      out[i] = NULL;
    }
  }
  return rc;
}

static enum dub_err exec_one(struct dub_cache *cache, struct dub_cache_reply **reply,
                             const char *cmd, size_t len)
{
  struct dub_cache_reply *r = NULL;
  enum dub_err rc = exec_formatted(cache, cmd, len, 1, &r);
  if(!rc && r->type == DUB_CACHE_ERROR) {
    if(retriable_word(r)) {
      refused(cache, r);
      rc = DUB_ERR_UNAVAILABLE;
      dub_cache_reply_free(r);
      r = NULL;
    } else {
      rc = DUB_ERR_INTERNAL;
    }
  }
  if(reply)
    *reply = r;
  else
    dub_cache_reply_free(r);
  return rc;
}

enum dub_err dub_cache_command(struct dub_cache *cache, struct dub_cache_reply **reply,
                               int argc, const char *const *argv, const size_t *argvlen)
{
  char *cmd = NULL;
  if(reply)
    *reply = NULL;
  if(argc < 1 || !argv)
    return DUB_ERR_INVALID;
  int len = redisFormatCommandArgv(&cmd, argc, (const char **)argv, argvlen);
  if(len <= 0)
    return DUB_ERR_INVALID;
  enum dub_err rc = exec_one(cache, reply, cmd, (size_t)len);
  redisFreeCommand(cmd);
  return rc;
}

enum dub_err dub_cache_vcommandf(struct dub_cache *cache, struct dub_cache_reply **reply,
                                 const char *fmt, va_list ap)
{
  char *cmd = NULL;
  if(reply)
    *reply = NULL;
  int len = redisvFormatCommand(&cmd, fmt, ap);
  if(len <= 0)
    return DUB_ERR_INVALID;
  enum dub_err rc = exec_one(cache, reply, cmd, (size_t)len);
  redisFreeCommand(cmd);
  return rc;
}

enum dub_err dub_cache_commandf(struct dub_cache *cache, struct dub_cache_reply **reply,
                                const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  enum dub_err rc = dub_cache_vcommandf(cache, reply, fmt, ap);
  va_end(ap);
  return rc;
}

enum dub_err dub_cache_ping(struct dub_cache *cache)
{
  struct dub_cache_reply *reply = NULL;
  const char *argv[] = {"PING"};
  enum dub_err rc = dub_cache_command(cache, &reply, 1, argv, NULL);
  if(!rc && (reply->type != DUB_CACHE_STATUS || strcmp(reply->str, "PONG") != 0))
    rc = DUB_ERR_UNAVAILABLE;
  dub_cache_reply_free(reply);
  return rc;
}

struct dub_cache_pipeline *dub_cache_pipeline_new(void)
{
  struct dub_cache_pipeline *pipeline = dub_xcalloc(1, sizeof *pipeline);
  return pipeline;
}

void dub_cache_pipeline_free(struct dub_cache_pipeline *pipeline)
{
  if(!pipeline)
    return;
  dub_buf_release(&pipeline->cmds);
  free(pipeline);
}

void dub_cache_pipeline_reset(struct dub_cache_pipeline *pipeline)
{
  dub_buf_reset(&pipeline->cmds);
  pipeline->count = 0;
}

/* Appends "<lead><n>\r\n" to 'buf'. */
static void append_count(struct dub_buf *buf, char lead, size_t n)
{
  char text[24], *p = text + sizeof text;
  *--p = '\n';
  *--p = '\r';
  do
    *--p = (char)('0' + n % 10);
  while(n /= 10);
  *--p = lead;
  dub_buf_append(buf, p, (size_t)(text + sizeof text - p));
}

/* RESP written straight into the pipeline's buffer: an array of bulk strings, as
 * redisFormatCommandArgv() writes it, without its allocation and copy per command (the
 * rebuild of a filled topic adds a dozen commands per event). */
void dub_cache_pipeline_add(struct dub_cache_pipeline *pipeline, int argc,
                            const char *const *argv, const size_t *argvlen)
{
  if(argc <= 0) {
    dub_log_fatal("redis: a pipelined command needs a name");
    abort();
  }
  append_count(&pipeline->cmds, '*', (size_t)argc);
  for(int i = 0; i < argc; i++) {
    size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
    append_count(&pipeline->cmds, '$', len);
    dub_buf_append(&pipeline->cmds, argv[i], len);
    dub_buf_append(&pipeline->cmds, "\r\n", 2);
  }
  pipeline->count++;
}

enum dub_err dub_cache_pipeline_addf(struct dub_cache_pipeline *pipeline, const char *fmt,
                                     ...)
{
  char *cmd = NULL;
  va_list ap;
  va_start(ap, fmt);
  int len = redisvFormatCommand(&cmd, fmt, ap);
  va_end(ap);
  if(len <= 0)
    return DUB_ERR_INVALID;
  dub_buf_append(&pipeline->cmds, cmd, (size_t)len);
  pipeline->count++;
  redisFreeCommand(cmd);
  return DUB_OK;
}

void dub_cache_pipeline_append(struct dub_cache_pipeline *dst,
                               const struct dub_cache_pipeline *src)
{
  dub_buf_append(&dst->cmds, src->cmds.data, src->cmds.len);
  dst->count += src->count;
}

size_t dub_cache_pipeline_count(const struct dub_cache_pipeline *pipeline)
{
  return pipeline->count;
}

enum dub_err dub_cache_pipeline_exec_each(struct dub_cache *cache,
                                          const struct dub_cache_pipeline *pipeline,
                                          struct dub_cache_reply ***replies)
{
  *replies = NULL;
  struct dub_cache_reply **out =
      dub_xcalloc(pipeline->count ? pipeline->count : 1, sizeof *out);
  if(!pipeline->count) {
    *replies = out;
    return DUB_OK;
  }
  enum dub_err rc = exec_formatted(cache, pipeline->cmds.data, pipeline->cmds.len,
                                   pipeline->count, out);
  if(rc) {
    free(out);
    return rc;
  }
  *replies = out;
  return DUB_OK;
}

enum dub_err dub_cache_pipeline_exec(struct dub_cache *cache,
                                     const struct dub_cache_pipeline *pipeline,
                                     struct dub_cache_reply ***replies)
{
  struct dub_cache_reply **out = NULL;
  enum dub_err rc = dub_cache_pipeline_exec_each(cache, pipeline, &out);
  if(replies)
    *replies = NULL;
  if(rc)
    return rc;
  const struct dub_cache_reply *error = NULL;
  for(size_t i = 0; i < pipeline->count; i++) {
    const struct dub_cache_reply *e = first_error(out[i]);
    if(e && (!error || (retriable_word(e) && !retriable_word(error))))
      error = e;
  }
  if(!error) {
    if(replies)
      *replies = out;
    else
      dub_cache_replies_free(out, pipeline->count);
    return DUB_OK;
  }
  if(retriable_word(error)) {
    refused(cache, error);
    rc = DUB_ERR_UNAVAILABLE;
  } else {
    dub_log_error("redis answered a pipelined command with an error: %.200s", error->str);
    rc = DUB_ERR_INTERNAL;
  }
  dub_cache_replies_free(out, pipeline->count);
  return rc;
}

bool dub_cache_reply_retriable(const struct dub_cache_reply *reply)
{
  return reply && reply->type == DUB_CACHE_ERROR && retriable_word(reply);
}

enum dub_err dub_cache_probe_write(struct dub_cache *cache, const char *key, char **why)
{
  struct dub_cache_reply *reply = NULL;
  char *cmd = NULL;
  const char *argv[] = {"SET", key, "1", "PX", "10000"};
  *why = NULL;
  int len = redisFormatCommandArgv(&cmd, 5, argv, NULL);
  if(len <= 0)
    return DUB_ERR_INVALID;
  enum dub_err rc = exec_formatted(cache, cmd, (size_t)len, 1, &reply);
  redisFreeCommand(cmd);
  if(rc) {
    *why = dub_xstrdup("redis is not reachable");
    return rc;
  }
  if(reply->type == DUB_CACHE_ERROR) {
    *why = dub_xasprintf("redis refuses writes: %.120s", reply->str);
    rc = retriable_word(reply) ? DUB_ERR_UNAVAILABLE : DUB_ERR_INTERNAL;
    if(rc == DUB_ERR_UNAVAILABLE)
      refused(cache, reply);
  }
  dub_cache_reply_free(reply);
  return rc;
}
