/* test_destroy.c - a librdkafka handle that never lets go (issue #4674 of librdkafka,
 * after a broker restart) does not hold a service's exit for good: once the bound set by
 * dub_kafka_set_destroy_bound() passes, the process says why and exits with the status
 * set there. The binary is linked with --wrap=rd_kafka_destroy; the hang is made in a
 * child process, which the watchdog is to end. */
#include "kafka/kafka.h"

#include "core/time.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static atomic_bool destroy_hangs;

void __real_rd_kafka_destroy(rd_kafka_t *rk);
void __wrap_rd_kafka_destroy(rd_kafka_t *rk);

void __wrap_rd_kafka_destroy(rd_kafka_t *rk)
{
  while(atomic_load(&destroy_hangs))
    pause(); /* as librdkafka's broker thread that never ends */
  __real_rd_kafka_destroy(rk);
}

static struct dub_kafka_producer *producer(void)
{
  struct dub_kafka_producer_conf conf = {.brokers = "127.0.0.1:1"}; /* never reached */
  struct dub_kafka_producer *p = NULL;
  char *why = NULL;
  assert_int_equal(dub_kafka_producer_new(&conf, &p, &why), DUB_OK);
  return p;
}

/* The child hangs in rd_kafka_destroy; the parent waits (10 s at most) for it to end. */
static void test_a_destroy_that_hangs_ends_the_process(void **state)
{
  (void)state;
  int out[2];
  assert_int_equal(pipe(out), 0);
  int64_t start = dub_time_mono_ms();
  pid_t child = fork();
  assert_true(child >= 0);
  if(child == 0) {
    dup2(out[1], STDERR_FILENO); /* the log */
    close(out[0]);
    struct dub_kafka_producer *p = producer();
    dub_kafka_set_destroy_bound(300, 7);
    atomic_store(&destroy_hangs, true);
    dub_kafka_producer_free(p);
    _exit(99); /* not reached while the watchdog works */
  }
  close(out[1]);
  int status = 0;
  pid_t got = 0;
  while((got = waitpid(child, &status, WNOHANG)) == 0 &&
        dub_time_mono_ms() - start < 10000)
    usleep(10000);
  if(got == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    fail_msg("the child still hung in rd_kafka_destroy after 10 s");
  }
  int64_t took = dub_time_mono_ms() - start;
  char log[8192];
  ssize_t n = read(out[0], log, sizeof log - 1);
  close(out[0]);
  log[n > 0 ? n : 0] = '\0';
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 7);
  assert_true(took >= 300);
  assert_non_null(strstr(log, "has not let the producer go 300 ms after"));
  assert_non_null(strstr(log, "issue #4674"));
}

/* A destroy that returns ends the watchdog with it: the process goes on. */
static void test_a_destroy_that_returns_goes_on(void **state)
{
  (void)state;
  /* A bound a loaded machine's destroy stays well within (no timing is asserted). */
  dub_kafka_set_destroy_bound(1000, 7);
  dub_kafka_producer_free(producer());
  /* Past the bound a watchdog still running would have ended this process by now. */
  usleep(1200000);
  dub_kafka_set_destroy_bound(0, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_destroy_that_hangs_ends_the_process),
      cmocka_unit_test(test_a_destroy_that_returns_goes_on),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
