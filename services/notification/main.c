/* main.c - notification: tells officers and reporters what they must know, by SMS and
 * email (the outbox folder in this version). */
#include "notification.h"

#include "core/log.h"
#include "core/signals.h"
#include "runtime/runtime.h"

#include <stdlib.h>

int main(void)
{
  struct notification n = {0};
  struct dub_runtime_env env = {0};
  char *why = NULL;
  int code = 1;
  const struct dub_http_route routes[] = {notification_route_list};
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
      .handler = notification_on_case_event,
      .ctx = &n,
  };

  dub_signals_install();
  dub_log_setup("notification", DUB_LOG_INFO);
  if(dub_runtime_env_load(&spec, &env, &why) || notification_open(&n, &why) ||
     dub_runtime_open(&spec, &env, &n.rt, &why)) {
    dub_log_fatal("cannot start: %s", why ? why : "unknown error");
    goto out;
  }
  code = dub_runtime_run(n.rt);
out:
  free(why);
  dub_runtime_close(n.rt);
  notification_close(&n);
  dub_runtime_env_release(&env);
  return code;
}
