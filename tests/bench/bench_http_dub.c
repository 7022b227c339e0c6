/* bench_http_dub.c - libs/http with two trivial routes without auth: GET /v1/hello
 * builds a small JSON document with Jansson, as service handlers do; GET /v1/static
 * answers the very bytes of the raw hello world, so that its ratio is the wrapper's own
 * cost. Usage: bench_http_dub PORT */
#include "core/env.h"
#include "core/log.h"
#include "http/http.h"

#include <signal.h>
#include <stdio.h>

/* Runs on the server's threads. */
static enum dub_err hello(void *ctx, struct dub_http_request *req,
                          struct dub_http_reply *reply)
{
  (void)ctx;
  (void)req;
  dub_http_reply_json(reply, 200, json_pack("{s:s}", "hello", "world"));
  return DUB_OK;
}

static const char body[] = "{\"hello\":\"world\"}";

/* Runs on the server's threads. */
static enum dub_err hello_static(void *ctx, struct dub_http_request *req,
                                 struct dub_http_reply *reply)
{
  (void)ctx;
  (void)req;
  dub_http_reply_data(reply, 200, "application/json", body, sizeof body - 1);
  return DUB_OK;
}

static const struct dub_http_route routes[] = {
    {.method = "GET", .pattern = "/v1/hello", .handler = hello},
    {.method = "GET", .pattern = "/v1/static", .handler = hello_static},
};

int main(int argc, char **argv)
{
  long port = 0;
  if(argc != 2 || !dub_parse_long(argv[1], 1, 65535, &port)) {
    fprintf(stderr, "usage: bench_http_dub PORT\n");
    return 2;
  }
  dub_log_setup("bench", DUB_LOG_WARN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  struct dub_http_server *server = NULL;
  struct dub_http_opts opts = {
      .bind = "127.0.0.1",
      .port = (unsigned)port,
      .routes = routes,
      .nroutes = sizeof routes / sizeof routes[0],
  };
  if(dub_http_start(&opts, &server))
    return 1;
  int sig = 0;
  sigwait(&set, &sig);
  dub_http_stop(server);
  return 0;
}
