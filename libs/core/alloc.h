/* alloc.h - allocators that cannot fail: they log and abort when memory runs out. */
#ifndef DUB_CORE_ALLOC_H
#define DUB_CORE_ALLOC_H

#include <stddef.h>

/* Each returns new memory; free with free(). Never NULL. */
void *dub_xmalloc(size_t size);
void *dub_xcalloc(size_t nmemb, size_t size);
void *dub_xrealloc(void *ptr, size_t size);
/* Copies 's' (NULL gives NULL). */
char *dub_xstrdup(const char *s);
/* Copies at most 'n' bytes of 's' and terminates the copy. */
char *dub_xstrndup(const char *s, size_t n);
/* printf into a new string. */
char *dub_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* pthread_create with default attributes that cannot fail either: when the system
 * refuses a thread (EAGAIN: no memory or a thread limit), it logs what could not start
 * ('what') and aborts, rather than leave a pthread_t that a later join would use. */
void dub_xthread_create(void *thread, void *(*run)(void *), void *arg, const char *what);

/* Growable byte buffer, always NUL-terminated. Initialise with DUB_BUF_INIT. */
struct dub_buf {
  char *data;
  size_t len;
  size_t cap;
};
#define DUB_BUF_INIT                                                                     \
  {                                                                                      \
    NULL, 0, 0                                                                           \
  }
void dub_buf_append(struct dub_buf *buf, const void *data, size_t len);
void dub_buf_appendf(struct dub_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Empties the buffer and keeps its memory. */
void dub_buf_reset(struct dub_buf *buf);
/* Frees the memory and leaves an empty buffer. */
void dub_buf_release(struct dub_buf *buf);
/* Hands the string to the caller (free with free()); the buffer is left empty. */
char *dub_buf_detach(struct dub_buf *buf);

#endif
