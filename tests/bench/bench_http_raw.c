/* bench_http_raw.c - the baseline: a plain libmicrohttpd hello world with the flags and
 * thread count libs/http uses, answering on the second call. Usage: bench_http_raw PORT
 */
#include "core/env.h"

#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char hello[] = "{\"hello\":\"world\"}";

/* Runs on the daemon's threads. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
  static int marker;
  (void)cls;
  (void)url;
  (void)method;
  (void)version;
  (void)upload_data;
  if(!*con_cls) {
    *con_cls = &marker;
    return MHD_YES;
  }
  *upload_data_size = 0;
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      sizeof hello - 1, (void *)hello, MHD_RESPMEM_PERSISTENT);
  if(!resp)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  return ret;
}

int main(int argc, char **argv)
{
  long port = 0;
  if(argc != 2 || !dub_parse_long(argv[1], 1, 65535, &port)) {
    fprintf(stderr, "usage: bench_http_raw PORT\n");
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  struct MHD_Daemon *daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME,
      (uint16_t)port, NULL, NULL, on_access, NULL, MHD_OPTION_THREAD_POOL_SIZE, 2u,
      MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
  if(!daemon) {
    fprintf(stderr, "bench_http_raw: cannot listen on port %ld\n", port);
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  MHD_stop_daemon(daemon);
  return 0;
}
