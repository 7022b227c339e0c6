/* reply.c - answers: the one error shape, JSON and raw bodies, headers, and deferred
 * answers completed from other threads. */
#include "http/internal.h"

#include "core/log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The answer used when even the error document cannot be made. */
static const char fallback_error[] =
    "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\",\"details\":[]}}";

void reply_init(struct dub_http_reply *reply)
{
  memset(reply, 0, sizeof *reply);
  reply->tail = &reply->headers;
}

static void clear_body(struct dub_http_reply *reply)
{
  free(reply->body);
  free(reply->owned_type);
  reply->body = NULL;
  reply->content_type = NULL;
  reply->owned_type = NULL;
  reply->len = 0;
  reply->set = false;
}

void reply_release(struct dub_http_reply *reply)
{
  clear_body(reply);
  struct header *h = reply->headers;
  while(h) {
    struct header *next = h->next;
    free(h->name);
    free(h->value);
    free(h);
    h = next;
  }
  reply_init(reply);
}

/* Stores the answer; takes ownership of 'body'. 'content_type' must be a literal unless
 * 'copy' is set. */
static void set_body(struct dub_http_reply *reply, int status, char *body, size_t len,
                     const char *content_type, bool copy)
{
  clear_body(reply);
  reply->set = true;
  reply->status = status;
  reply->body = body;
  reply->len = len;
  if(copy)
    reply->content_type = reply->owned_type = dub_xstrdup(content_type);
  else
    reply->content_type = content_type;
}

/* json_dumps() without its intermediate buffer: small documents (most answers) are
 * dumped on the stack and copied once. Returns a new string or NULL. */
static char *dump(const json_t *doc)
{
  char small[1024];
  size_t n = json_dumpb(doc, small, sizeof small, JSON_COMPACT);
  if(!n)
    return NULL;
  char *text = dub_xmalloc(n + 1);
  if(n <= sizeof small)
    memcpy(text, small, n);
  else if(json_dumpb(doc, text, n, JSON_COMPACT) != n) {
    free(text);
    return NULL;
  }
  text[n] = '\0';
  return text;
}

json_t *dub_http_error_body(enum dub_err err, const char *message, json_t *details)
{
  if(!details) {
    details = json_array();
  } else if(!json_is_array(details)) {
    json_t *wrapped = json_array();
    if(wrapped && json_array_append_new(wrapped, details) == 0) {
      details = wrapped;
    } else {
      json_decref(wrapped);
      details = NULL;
    }
  }
  if(!details)
    return NULL;
  const char *msg = message ? message : dub_err_message(err);
  /* "O" takes its own reference; ours is dropped below either way. */
  json_t *doc = json_pack("{s:{s:s,s:s,s:O}}", "error", "code", dub_err_code(err),
                          "message", msg, "details", details);
  if(!doc && message) /* e.g. a message that is not UTF-8 */
    doc = json_pack("{s:{s:s,s:s,s:O}}", "error", "code", dub_err_code(err), "message",
                    dub_err_message(err), "details", details);
  json_decref(details);
  return doc;
}

void reply_set_error(struct dub_http_reply *reply, enum dub_err err, const char *message,
                     json_t *details)
{
  if(err == DUB_OK)
    err = DUB_ERR_INTERNAL;
  json_t *doc = dub_http_error_body(err, message, details);
  char *text = doc ? dump(doc) : NULL;
  json_decref(doc);
  if(!text) {
    set_body(reply, 500, dub_xstrdup(fallback_error), sizeof fallback_error - 1,
             "application/json", false);
    return;
  }
  set_body(reply, dub_err_status(err), text, strlen(text), "application/json", false);
}

void reply_set_json(struct dub_http_reply *reply, int status, json_t *body)
{
  char *text = NULL;
  if(status < 100 || status > 599) {
    dub_log_error("http: handler answered with status %d", status);
    json_decref(body);
    reply_set_error(reply, DUB_ERR_INTERNAL, NULL, NULL);
    return;
  }
  text = body ? dump(body) : NULL;
  json_decref(body);
  if(!text) {
    dub_log_error("http: handler answered with a body that cannot be serialised");
    reply_set_error(reply, DUB_ERR_INTERNAL, NULL, NULL);
    return;
  }
  set_body(reply, status, text, strlen(text), "application/json", false);
}

void reply_add_header(struct dub_http_reply *reply, const char *name, const char *value)
{
  if(!name || !value || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) {
    dub_log_error("http: refusing a response header with a bad name or value");
    return;
  }
  struct header *h = dub_xcalloc(1, sizeof *h);
  h->name = dub_xstrdup(name);
  h->value = dub_xstrdup(value);
  *reply->tail = h;
  reply->tail = &h->next;
}

bool reply_has_header(const struct dub_http_reply *reply, const char *name)
{
  for(const struct header *h = reply->headers; h; h = h->next) {
    if(strcasecmp(h->name, name) == 0)
      return true;
  }
  return false;
}

void reply_move(struct dub_http_reply *to, struct dub_http_reply *from)
{
  if(from->set) {
    clear_body(to);
    to->set = true;
    to->status = from->status;
    to->body = from->body;
    to->len = from->len;
    to->content_type = from->content_type;
    to->owned_type = from->owned_type;
    from->body = NULL;
    from->content_type = NULL;
    from->owned_type = NULL;
    from->len = 0;
    from->set = false;
  }
  if(from->headers) {
    *to->tail = from->headers;
    to->tail = from->tail;
    from->headers = NULL;
    from->tail = &from->headers;
  }
}

static struct dub_http_request *request_of(struct dub_http_reply *reply)
{
  return (struct dub_http_request *)((char *)reply -
                                     offsetof(struct dub_http_request, reply));
}

/* True (and logged) when the handler already answered or deferred. */
static bool answered(struct dub_http_reply *reply)
{
  if(reply->set || request_of(reply)->pending) {
    dub_log_error("http: a second answer to request %s is ignored",
                  request_of(reply)->id);
    return true;
  }
  return false;
}

void dub_http_reply_json(struct dub_http_reply *reply, int status, json_t *body)
{
  if(answered(reply)) {
    json_decref(body);
    return;
  }
  reply_set_json(reply, status, body);
}

void dub_http_reply_error(struct dub_http_reply *reply, enum dub_err err,
                          const char *message, json_t *details)
{
  if(answered(reply)) {
    json_decref(details);
    return;
  }
  reply_set_error(reply, err, message, details);
}

void dub_http_reply_data(struct dub_http_reply *reply, int status,
                         const char *content_type, const void *data, size_t len)
{
  if(answered(reply))
    return;
  if(status < 100 || status > 599 || !content_type || (!data && len)) {
    dub_log_error("http: handler answered with status %d or no content type", status);
    reply_set_error(reply, DUB_ERR_INTERNAL, NULL, NULL);
    return;
  }
  char *copy = dub_xmalloc(len + 1);
  if(len)
    memcpy(copy, data, len);
  copy[len] = '\0';
  set_body(reply, status, copy, len, content_type, true);
}

void dub_http_reply_header(struct dub_http_reply *reply, const char *name,
                           const char *value)
{
  reply_add_header(reply, name, value);
}

/* ---- deferred answers ---- */

static void pending_free(struct dub_http_pending *pending)
{
  reply_release(&pending->reply);
  pthread_mutex_destroy(&pending->lock);
  free(pending);
}

/* Drops one reference; called with the lock held, which it releases. */
static void pending_unref_unlock(struct dub_http_pending *pending)
{
  bool last = --pending->refs == 0;
  pthread_mutex_unlock(&pending->lock);
  if(last)
    pending_free(pending);
}

struct dub_http_pending *dub_http_reply_defer(struct dub_http_reply *reply)
{
  if(answered(reply))
    return NULL;
  struct dub_http_request *req = request_of(reply);
  struct dub_http_server *server = req->server;
  struct dub_http_pending *pending = dub_xcalloc(1, sizeof *pending);
  pthread_mutex_init(&pending->lock, NULL);
  pending->refs = 2;
  pending->req = req;
  reply_init(&pending->reply);
  memcpy(pending->id, req->id, sizeof pending->id);
  req->pending = pending;

  pthread_mutex_lock(&server->lock);
  if(server->stopping) {
    /* Nobody would resume it: answer now, and the owner's completion just frees. */
    reply_set_error(&pending->reply, DUB_ERR_UNAVAILABLE, "server is shutting down",
                    NULL);
    pending->done = true;
  } else {
    pending->next = server->outstanding;
    if(server->outstanding)
      server->outstanding->prev = pending;
    server->outstanding = pending;
  }
  pthread_mutex_unlock(&server->lock);
  return pending;
}

const char *dub_http_pending_request_id(const struct dub_http_pending *pending)
{
  return pending->id;
}

void dub_http_pending_header(struct dub_http_pending *pending, const char *name,
                             const char *value)
{
  pthread_mutex_lock(&pending->lock);
  if(!pending->done)
    reply_add_header(&pending->reply, name, value);
  pthread_mutex_unlock(&pending->lock);
}

/* Stores the answer unless one is stored already, resumes the connection if it is
 * suspended, and drops the owner's reference. 'answer' is emptied. */
static void complete(struct dub_http_pending *pending, struct dub_http_reply *answer)
{
  pthread_mutex_lock(&pending->lock);
  if(!pending->done) {
    reply_move(&pending->reply, answer);
    pending->done = true;
    /* Held across the resume so that dub_http_stop() cannot pass this connection
     * while it is still suspended. */
    if(pending->req && pending->suspended)
      MHD_resume_connection(pending->req->conn);
  }
  pending_unref_unlock(pending);
  reply_release(answer);
}

void dub_http_pending_json(struct dub_http_pending *pending, int status, json_t *body)
{
  struct dub_http_reply answer;
  if(!pending) {
    json_decref(body);
    return;
  }
  reply_init(&answer);
  reply_set_json(&answer, status, body);
  complete(pending, &answer);
}

void dub_http_pending_error(struct dub_http_pending *pending, enum dub_err err,
                            const char *message, json_t *details)
{
  struct dub_http_reply answer;
  if(!pending) {
    json_decref(details);
    return;
  }
  reply_init(&answer);
  reply_set_error(&answer, err, message, details);
  complete(pending, &answer);
}

void pending_detach(struct dub_http_pending *pending)
{
  struct dub_http_server *server = pending->req->server;
  pthread_mutex_lock(&server->lock);
  if(pending->prev || server->outstanding == pending) {
    if(pending->prev)
      pending->prev->next = pending->next;
    else
      server->outstanding = pending->next;
    if(pending->next)
      pending->next->prev = pending->prev;
    pending->prev = pending->next = NULL;
  }
  pthread_mutex_unlock(&server->lock);

  pthread_mutex_lock(&pending->lock);
  pending->req = NULL;
  pending_unref_unlock(pending);
}

void pending_force_all(struct dub_http_server *server)
{
  pthread_mutex_lock(&server->lock);
  server->stopping = true;
  for(struct dub_http_pending *p = server->outstanding; p; p = p->next) {
    pthread_mutex_lock(&p->lock);
    if(!p->done) {
      reply_set_error(&p->reply, DUB_ERR_UNAVAILABLE, "server is shutting down", NULL);
      p->done = true;
      if(p->req && p->suspended)
        MHD_resume_connection(p->req->conn);
    }
    pthread_mutex_unlock(&p->lock);
  }
  pthread_mutex_unlock(&server->lock);
}
