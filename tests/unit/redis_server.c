/* redis_server.c - see redis_server.h. */
#include "redis_server.h"

#include "core/alloc.h"
#include "core/time.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

int test_redis_free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof addr;
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

static bool server_pings(const struct test_redis *s)
{
  struct timeval tv = {0, 200000};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
  bool ok = false;
  if(c && !c->err) {
    redisReply *r = redisCommand(c, "PING");
    ok = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR);
    freeReplyObject(r);
  }
  if(c)
    redisFree(c);
  return ok;
}

void test_redis_start(struct test_redis *s)
{
  char port[16];
  snprintf(port, sizeof port, "%d", s->port);
  s->pid = fork();
  assert_true(s->pid >= 0);
  if(s->pid == 0) {
    execl("/usr/bin/redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
          "--save", "", "--appendonly", "no", "--dir", s->dir, "--unixsocket", s->sock,
          "--unixsocketperm", "700", "--logfile", s->logfile, (char *)NULL);
    _exit(127);
  }
  int64_t deadline = dub_time_mono_ms() + 10000;
  while(!server_pings(s)) {
    int status;
    assert_int_equal(waitpid(s->pid, &status, WNOHANG), 0); /* still running */
    assert_true(dub_time_mono_ms() < deadline);
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
}

void test_redis_kill(struct test_redis *s)
{
  if(s->pid > 0) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
  }
}

int test_redis_setup(void **state)
{
  struct test_redis *s = dub_xcalloc(1, sizeof *s);
  signal(SIGPIPE, SIG_IGN);
  snprintf(s->dir, sizeof s->dir, "/tmp/dub-cache-XXXXXX");
  assert_non_null(mkdtemp(s->dir));
  snprintf(s->sock, sizeof s->sock, "%s/redis.sock", s->dir);
  snprintf(s->logfile, sizeof s->logfile, "%s/redis.log", s->dir);
  s->port = test_redis_free_port();
  snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d/0", s->port);
  test_redis_start(s);
  *state = s;
  return 0;
}

int test_redis_teardown(void **state)
{
  struct test_redis *s = *state;
  test_redis_kill(s);
  unlink(s->sock);
  unlink(s->logfile);
  rmdir(s->dir);
  free(s);
  return 0;
}
