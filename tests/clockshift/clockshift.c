/* clockshift.c - an LD_PRELOAD library for the tests that step the wall clock under a
 * service (tests/system/test_faults_clock.py), as an NTP step does: CLOCK_REALTIME (and
 * its coarse variant), time() and gettimeofday() run 'shift' milliseconds from the real
 * clock; the monotonic clocks, timespec_get() and everything else are the real ones.
 *
 * The shift lives in the file DUBAN_CLOCKSHIFT_FILE names, mapped shared at start, so a
 * step is in force for every thread from the first call after the test writes it, with
 * no parsing and no lock. The file holds the shift twice, as two native int64s; the
 * test writes the first copy and then the second, and a reader takes a value only when
 * the second copy, read first, equals the first (a reader between the two writes, or
 * one that sees either copy half written, reads again).
 *
 * Why not libfaketime (Debian's 0.9.10): with FAKETIME_TIMESTAMP_FILE and
 * FAKETIME_NO_CACHE every call formats the file's name into one static buffer shared by
 * all threads, and glibc's snprintf empties the buffer before it writes; a thread that
 * opens the file in that moment finds no file and falls back to "+0", which is then in
 * force for every thread until the next call reads the file again. With the file never
 * changing, 4 threads reading CLOCK_REALTIME got the unshifted clock 1,671 times in
 * 3,053,353 calls (1 thread: 0 in 2,546,734), and deadline's scheduler, in one such
 * window, fired 21 timers an hour early. libfaketime also cannot start a process linked
 * against jemalloc, which reads the clock from its first malloc, before libfaketime is
 * set up. This library needs nothing set up: it reads the clocks by system call and
 * allocates nothing.
 *
 * timespec_get() stays real because librdkafka computes the deadlines of its timed
 * waits with it, and the kernel measures those waits on its own, unshifted, clock. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic(const _Atomic int64_t *) shift; /* two copies, in milliseconds */

__attribute__((constructor)) static void map_shift(void)
{
  const char *path = getenv("DUBAN_CLOCKSHIFT_FILE");
  if(!path)
    return;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if(fd < 0)
    abort(); /* a test that asks for a shifted clock must not get the real one */
  void *p = mmap(NULL, 2 * sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if(p == MAP_FAILED)
    abort();
  atomic_store(&shift, (const _Atomic int64_t *)p);
}

static int64_t shift_ms(void)
{
  const _Atomic int64_t *s = atomic_load(&shift);
  if(!s)
    return 0;
  for(;;) {
    int64_t second = atomic_load(&s[1]), first = atomic_load(&s[0]);
    if(first == second)
      return first;
  }
}

/* The clocks by system call, shifted where they should be. Called by name inside this
 * library, so that the shift holds however its symbols are bound (the unit test loads
 * it with dlopen, where clock_gettime resolves to glibc's first). */
static int read_clock(clockid_t id, struct timespec *ts)
{
  bool wall = id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE;
  int64_t ms = wall ? shift_ms() : 0; /* first: the clock is read after any wait */
  int rc = (int)syscall(SYS_clock_gettime, id, ts);
  if(rc == 0 && wall) {
    int64_t ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + ms * 1000000;
    ts->tv_sec = (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
  }
  return rc;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
  return read_clock(id, ts);
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
  struct timespec ts;
  if(tz && syscall(SYS_gettimeofday, NULL, tz) != 0)
    return -1;
  if(read_clock(CLOCK_REALTIME, &ts) != 0)
    return -1;
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
  return 0;
}

time_t time(time_t *out)
{
  struct timespec ts;
  if(read_clock(CLOCK_REALTIME, &ts) != 0)
    return (time_t)-1;
  if(out)
    *out = ts.tv_sec;
  return ts.tv_sec;
}
