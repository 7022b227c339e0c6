/* alloc.c - aborting allocators and the growable buffer. */
#include "core/alloc.h"

#include "core/log.h"

#include <pthread.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die_oom(size_t size)
{
  /* The logger allocates, so report with a fixed buffer straight to stderr. */
  char line[128];
  int n = snprintf(
      line, sizeof line,
      "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", size);
  if(n > 0)
    fwrite(line, 1, (size_t)n, stderr);
  abort();
}

void *dub_xmalloc(size_t size)
{
  void *p = malloc(size ? size : 1);
  if(!p)
    die_oom(size);
  return p;
}

void *dub_xcalloc(size_t nmemb, size_t size)
{
  void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
  if(!p)
    die_oom(nmemb * size);
  return p;
}

void *dub_xrealloc(void *ptr, size_t size)
{
  void *p = realloc(ptr, size ? size : 1);
  if(!p)
    die_oom(size);
  return p;
}

char *dub_xstrdup(const char *s)
{
  return s ? dub_xstrndup(s, strlen(s)) : NULL;
}

char *dub_xstrndup(const char *s, size_t n)
{
  size_t len = strnlen(s, n);
  char *p = dub_xmalloc(len + 1);
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

static char *vformat(const char *fmt, va_list ap)
{
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if(n < 0)
    n = 0;
  char *p = dub_xmalloc((size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  return p;
}

char *dub_xasprintf(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *p = vformat(fmt, ap);
  va_end(ap);
  return p;
}

static void grow(struct dub_buf *buf, size_t extra)
{
  size_t need = buf->len + extra + 1;
  if(need <= buf->cap)
    return;
  size_t cap = buf->cap ? buf->cap : 64;
  while(cap < need)
    cap *= 2;
  buf->data = dub_xrealloc(buf->data, cap);
  buf->cap = cap;
}

void dub_buf_append(struct dub_buf *buf, const void *data, size_t len)
{
  grow(buf, len);
  if(len)
    memcpy(buf->data + buf->len, data, len);
  buf->len += len;
  buf->data[buf->len] = '\0';
}

void dub_buf_appendf(struct dub_buf *buf, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *p = vformat(fmt, ap);
  va_end(ap);
  dub_buf_append(buf, p, strlen(p));
  free(p);
}

void dub_buf_reset(struct dub_buf *buf)
{
  buf->len = 0;
  if(buf->data)
    buf->data[0] = '\0';
}

void dub_buf_release(struct dub_buf *buf)
{
  free(buf->data);
  buf->data = NULL;
  buf->len = buf->cap = 0;
}

char *dub_buf_detach(struct dub_buf *buf)
{
  char *p = buf->data ? buf->data : dub_xstrdup("");
  buf->data = NULL;
  buf->len = buf->cap = 0;
  return p;
}

void dub_xthread_create(void *thread, void *(*run)(void *), void *arg, const char *what)
{
  int err = pthread_create((pthread_t *)thread, NULL, run, arg);
  if(err) {
    dub_log_fatal("cannot start the %s thread: %s", what, strerror(err));
    abort();
  }
}
