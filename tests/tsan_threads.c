/* C11 threads over POSIX threads, linked only into DUBAN_TSAN builds.
 *
 * librdkafka 2.0.2 (Debian) creates its threads with glibc's thrd_create and locks with
 * mtx_lock and cnd_wait. gcc 12's ThreadSanitizer intercepts the pthread functions but
 * not these (LLVM added C11 thread interceptors later), and glibc implements them by
 * calling its internal pthread symbols, which bypass the interceptors. So a librdkafka
 * thread is unknown to TSan and crashes in its first malloc, and TSan never sees the
 * locks that order librdkafka's threads against ours. Defined in the executable, these
 * functions take precedence over glibc's for librdkafka too, and call the intercepted
 * pthread functions on the same objects: glibc's mtx_t, cnd_t and once_flag are the
 * pthread types under another name. Only the functions librdkafka imports are here
 * (`nm -D --undefined-only librdkafka.so.1 | grep -E 'thrd_|mtx_|cnd_|call_once'`). */
#include <errno.h>
#include <pthread.h>
#include <sanitizer/tsan_interface.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

/* librdkafka initialises a lock or condition on one thread and hands the object that
 * holds it to another through its own atomics, which are in code TSan does not
 * instrument: the other thread's first use then looks unordered against the
 * initialisation (seen once: a mutex made in rd_kafka_new after it started a thread
 * that locks it). The initialisation releases on the object's address and every use
 * acquires it first, which tells TSan only what librdkafka's invisible atomics already
 * guarantee: an object is made before it is used. Nothing of our own code goes through
 * these functions (it uses pthreads directly), so no race of ours is hidden. */
#define MADE(obj) __tsan_release((void *)(obj))
#define USED(obj) __tsan_acquire((void *)(obj))

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread mutex");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread condition");
_Static_assert(sizeof(((once_flag *)0)->__data) == sizeof(pthread_once_t),
               "once_flag holds a pthread_once_t");

struct start {
  thrd_start_t func;
  void *arg;
};

/* A pthread result as glibc's C11 functions report it. */
static int thrd_status(int rc)
{
  if(rc == 0)
    return thrd_success;
  if(rc == ETIMEDOUT)
    return thrd_timedout;
  if(rc == EBUSY)
    return thrd_busy;
  if(rc == ENOMEM)
    return thrd_nomem;
  return thrd_error;
}

/* Runs on the new thread: frees the start block it was given. */
static void *run(void *p)
{
  struct start st = *(struct start *)p;

  free(p);
  return (void *)(intptr_t)st.func(st.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
  struct start *st = malloc(sizeof(*st));
  int rc;

  if(!st)
    return thrd_nomem;
  st->func = func;
  st->arg = arg;
  rc = pthread_create(thr, NULL, run, st);
  if(rc)
    free(st);
  return thrd_status(rc);
}

int thrd_join(thrd_t thr, int *res)
{
  void *ret = NULL;
  int rc = pthread_join(thr, &ret);

  if(!rc && res)
    *res = (int)(intptr_t)ret;
  return thrd_status(rc);
}

int mtx_init(mtx_t *mtx, int type)
{
  pthread_mutexattr_t attr;
  int rc;

  if(pthread_mutexattr_init(&attr))
    return thrd_error;
  rc = pthread_mutexattr_settype(&attr, (type & mtx_recursive) ? PTHREAD_MUTEX_RECURSIVE
                                                               : PTHREAD_MUTEX_DEFAULT);
  if(!rc)
    rc = pthread_mutex_init((pthread_mutex_t *)mtx, &attr);
  pthread_mutexattr_destroy(&attr);
  MADE(mtx);
  return thrd_status(rc);
}

int mtx_lock(mtx_t *mtx)
{
  USED(mtx);
  return thrd_status(pthread_mutex_lock((pthread_mutex_t *)mtx));
}

int mtx_unlock(mtx_t *mtx)
{
  return thrd_status(pthread_mutex_unlock((pthread_mutex_t *)mtx));
}

void mtx_destroy(mtx_t *mtx)
{
  USED(mtx);
  pthread_mutex_destroy((pthread_mutex_t *)mtx);
}

int cnd_init(cnd_t *cond)
{
  int rc = pthread_cond_init((pthread_cond_t *)cond, NULL);

  MADE(cond);
  return thrd_status(rc);
}

int cnd_signal(cnd_t *cond)
{
  USED(cond);
  return thrd_status(pthread_cond_signal((pthread_cond_t *)cond));
}

int cnd_broadcast(cnd_t *cond)
{
  USED(cond);
  return thrd_status(pthread_cond_broadcast((pthread_cond_t *)cond));
}

int cnd_wait(cnd_t *cond, mtx_t *mtx)
{
  USED(cond);
  return thrd_status(pthread_cond_wait((pthread_cond_t *)cond, (pthread_mutex_t *)mtx));
}

/* C11 measures time_point on TIME_UTC, a default pthread condition on CLOCK_REALTIME:
 * the same clock. */
int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mtx,
                  const struct timespec *restrict time_point)
{
  USED(cond);
  return thrd_status(
      pthread_cond_timedwait((pthread_cond_t *)cond, (pthread_mutex_t *)mtx, time_point));
}

void cnd_destroy(cnd_t *cond)
{
  USED(cond);
  pthread_cond_destroy((pthread_cond_t *)cond);
}

void call_once(once_flag *flag, void (*func)(void))
{
  pthread_once(&flag->__data, func);
}
