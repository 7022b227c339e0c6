/* redis_server.h - a redis-server of a unit test's own, on a free port and a unix socket
 * in a temporary directory (for tests of code that talks to Redis: libs/cache, the
 * notification scripts). */
#ifndef TESTS_UNIT_REDIS_SERVER_H
#define TESTS_UNIT_REDIS_SERVER_H

#include <sys/types.h>

struct test_redis {
  char dir[64];
  char sock[128];
  char url[64]; /* redis://127.0.0.1:<port>/0 */
  char logfile[128];
  int port;
  pid_t pid;
};

/* A TCP port on 127.0.0.1 nothing listens on (at the moment of asking). */
int test_redis_free_port(void);

/* Starts (or starts again) the server and waits until it answers PING; fails the test
 * after 10 s. */
void test_redis_start(struct test_redis *s);

/* SIGKILL, then waits for the process. */
void test_redis_kill(struct test_redis *s);

/* cmocka group setup and teardown: *state is a started struct test_redis. */
int test_redis_setup(void **state);
int test_redis_teardown(void **state);

#endif
