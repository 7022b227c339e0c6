/* test_clockshift.c - the wall-clock shift test_faults_clock.py preloads under deadline
 * (tests/clockshift): loaded here with dlopen, its functions called through dlsym and
 * compared with the kernel's clocks read by system call. */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

typedef int (*clock_fn)(clockid_t, struct timespec *);
typedef int (*timeofday_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);

static char path[64];
static clock_fn shifted_clock;
static timeofday_fn shifted_timeofday;
static time_fn shifted_time;

/* Writes copy 'which' (0 or 1) of the shift, as the test harness does. */
static void write_copy(int which, int64_t ms)
{
  int fd = open(path, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, &ms, sizeof ms, which * (off_t)sizeof ms), sizeof ms);
  close(fd);
}

static void set_shift(int64_t ms)
{
  write_copy(0, ms);
  write_copy(1, ms);
}

static int64_t real_ms(clockid_t id)
{
  struct timespec ts;
  assert_int_equal(syscall(SYS_clock_gettime, id, &ts), 0);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t shifted_ms(clockid_t id)
{
  struct timespec ts;
  assert_int_equal(shifted_clock(id, &ts), 0);
  assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How far the shifted clock 'id' runs from the real one, in ms. */
static int64_t ahead_ms(clockid_t id)
{
  int64_t before = real_ms(id), seen = shifted_ms(id), after = real_ms(id);
  return seen - (before + after) / 2;
}

/* Fails unless 'got' ms is within 50 ms of 'want' ms, and says both. */
#define assert_near(got, want)                                                           \
  do {                                                                                   \
    int64_t got_ = (got), want_ = (want);                                                \
    if(llabs(got_ - want_) >= 50)                                                        \
      fail_msg("%s is %lld ms, %lld wanted (within 50)", #got, (long long)got_,          \
               (long long)want_);                                                        \
  } while(0)

static int setup(void **state)
{
  (void)state;
  snprintf(path, sizeof path, "/tmp/test_clockshift.%d", (int)getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  int64_t start[2] = {-3600000, -3600000}; /* both copies: an hour back */
  if(fd < 0 || write(fd, start, sizeof start) != sizeof start)
    return -1;
  close(fd);
  setenv("DUBAN_CLOCKSHIFT_FILE", path, 1);
  void *lib = dlopen(CLOCKSHIFT_MODULE, RTLD_NOW | RTLD_LOCAL); /* maps the file */
  if(!lib)
    return -1;
  shifted_clock = (clock_fn)dlsym(lib, "clock_gettime");
  shifted_timeofday = (timeofday_fn)dlsym(lib, "gettimeofday");
  shifted_time = (time_fn)dlsym(lib, "time");
  return shifted_clock && shifted_timeofday && shifted_time ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  unlink(path);
  return 0;
}

static void test_the_shift_at_start_moves_the_wall_clock_only(void **state)
{
  (void)state;
  set_shift(-3600000); /* as setup() wrote it */
  assert_near(ahead_ms(CLOCK_REALTIME), -3600000);
  assert_near(ahead_ms(CLOCK_REALTIME_COARSE), -3600000);
  assert_near(ahead_ms(CLOCK_MONOTONIC), 0);
  assert_near(ahead_ms(CLOCK_BOOTTIME), 0);
  struct timeval tv;
  assert_int_equal(shifted_timeofday(&tv, NULL), 0);
  assert_true(llabs((int64_t)tv.tv_sec - (real_ms(CLOCK_REALTIME) / 1000 - 3600)) <= 1);
  time_t t = 0;
  assert_true(
      llabs((int64_t)shifted_time(&t) - (real_ms(CLOCK_REALTIME) / 1000 - 3600)) <= 1);
  assert_true(llabs((int64_t)t - (real_ms(CLOCK_REALTIME) / 1000 - 3600)) <= 1);
}

static void test_a_step_is_in_force_at_the_next_call(void **state)
{
  (void)state;
  const int64_t steps[] = {0, -1500, 2500, -999, 1, -3600000, 0};
  for(size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    set_shift(steps[i]);
    assert_near(ahead_ms(CLOCK_REALTIME), steps[i]);
  }
}

struct reader {
  atomic_bool done;
  int64_t off;
};

static void *read_once(void *arg)
{
  struct reader *r = arg;
  int64_t seen = shifted_ms(CLOCK_REALTIME);
  r->off = seen - real_ms(CLOCK_REALTIME); /* the clock is read once the wait ends */
  atomic_store(&r->done, true);
  return NULL;
}

/* Between the writes of the two copies a reader takes neither value: it waits for the
 * second copy, and then has the new shift. */
static void test_a_half_written_shift_is_never_read(void **state)
{
  (void)state;
  set_shift(0);
  write_copy(0, -7200000);
  struct reader r = {.done = false};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, read_once, &r), 0);
  struct timespec window = {0, 100 * 1000000L}; /* long enough to see it return */
  nanosleep(&window, NULL);
  assert_false(atomic_load(&r.done));
  write_copy(1, -7200000);
  pthread_join(t, NULL);
  assert_near(r.off, -7200000);
}

#define CALLS 100000

static void *count_unshifted(void *arg)
{
  long *unshifted = arg;
  for(int i = 0; i < CALLS; i++)
    if(llabs(ahead_ms(CLOCK_REALTIME) + 3600000) > 1000)
      (*unshifted)++;
  return NULL;
}

/* libfaketime's failure (clockshift.c): with the shift unchanged, no thread ever reads
 * the real clock, however many read at once. */
static void test_threads_never_read_the_unshifted_clock(void **state)
{
  (void)state;
  set_shift(-3600000);
  pthread_t t[4];
  long unshifted[4] = {0};
  for(int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, count_unshifted, &unshifted[i]), 0);
  for(int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(unshifted[i], 0);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_the_shift_at_start_moves_the_wall_clock_only),
      cmocka_unit_test(test_a_step_is_in_force_at_the_next_call),
      cmocka_unit_test(test_a_half_written_shift_is_never_read),
      cmocka_unit_test(test_threads_never_read_the_unshifted_clock),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
