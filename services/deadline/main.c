/* main.c - deadline: keeps each case's state and SLA moments on the official
 * working-day calendar and answers case queries. */
#include "deadline.h"

#include "core/log.h"
#include "core/signals.h"
#include "runtime/runtime.h"

#include <stdlib.h>

int main(void)
{
  struct deadline d = {0};
  struct dub_runtime_env env = {0};
  char *why = NULL;
  int code = 1;
  const struct dub_http_route routes[] = {deadline_route_get_case};
  const char *const topics[] = {"duban.cases"};
  const struct dub_runtime_spec spec = {
      .service = "deadline",
      .default_port = 8083,
      .config_parts = DUB_CONFIG_SLA | DUB_CONFIG_CALENDAR,
      .routes = routes,
      .nroutes = sizeof routes / sizeof routes[0],
      .topics = topics,
      .ntopics = 1,
      .handler = deadline_on_case_event,
      .ctx = &d,
  };

  dub_signals_install();
  dub_log_setup("deadline", DUB_LOG_INFO);
  if(dub_runtime_env_load(&spec, &env, &why) ||
     dub_runtime_open(&spec, &env, &d.rt, &why)) {
    dub_log_fatal("cannot start: %s", why ? why : "unknown error");
    goto out;
  }
  code = dub_runtime_run(d.rt);
out:
  free(why);
  dub_runtime_close(d.rt);
  dub_runtime_env_release(&env);
  return code;
}
