/* main.c - notification: tells officers, unit heads, supervisors, leaders and reporters
 * what they must know, by SMS (Kannel) and email (SMTP), or into the outbox folder. */
#include "notification.h"

#include "config/config.h"
#include "core/log.h"
#include "core/signals.h"
#include "runtime/runtime.h"

#include <curl/curl.h>
#include <stdlib.h>

static bool ready(void *ctx, char **reason)
{
  return notification_sender_ready(ctx, reason);
}

int main(void)
{
  struct notification n = {0};
  struct dub_runtime_env env = {0};
  char *why = NULL;
  int code = 1;
  const struct dub_http_route routes[] = {
      notification_route_list, notification_route_dlr_get, notification_route_dlr_post};
  const char *const topics[] = {"duban.cases"};
  const struct dub_runtime_spec spec = {
      .service = "notification",
      .default_port = 8084,
      .config_parts = DUB_CONFIG_DIRECTORY | DUB_CONFIG_SLA | DUB_CONFIG_CALENDAR |
                      DUB_CONFIG_TEMPLATES,
      .routes = routes,
      .nroutes = sizeof routes / sizeof routes[0],
      .topics = topics,
      .ntopics = 1,
      .batch_handler = notification_on_case_events,
      .ready = ready,
      .ctx = &n,
  };

  dub_signals_install();
  dub_log_setup("notification", DUB_LOG_INFO);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if(dub_runtime_env_load(&spec, &env, &why) || notification_open(&n, env.port, &why) ||
     dub_runtime_open(&spec, &env, &n.rt, &why))
    goto fail;
  /* Templates and routes are checked before anything is sent: an SMS template that
   * names the title, say, stops the start. */
  n.good = dub_runtime_config(n.rt);
  if(notification_config_check(n.good, env.config_dir, env.schema_dir, &n.routes, &why) ||
     notification_sender_start(&n, &why))
    goto fail;
  code = dub_runtime_run(n.rt);
  goto out;
fail:
  dub_log_fatal("cannot start: %s", why ? why : "unknown error");
out:
  free(why);
  /* The sender stops while the producer it acknowledges through is still there; its
   * memory goes after the HTTP server, whose /readyz reads it. */
  notification_sender_stop(&n);
  dub_runtime_close(n.rt);
  notification_sender_free(&n);
  notification_close(&n);
  dub_runtime_env_release(&env);
  curl_global_cleanup();
  return code;
}
