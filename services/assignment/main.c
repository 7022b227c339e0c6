/* main.c - assignment: routes every new case to a unit and an officer without a
 * conflict, and publishes duban.case.assigned. */
#include "assignment.h"

#include "core/log.h"
#include "core/signals.h"
#include "runtime/runtime.h"

#include <stdlib.h>

int main(void)
{
  struct assignment a = {0};
  struct dub_runtime_env env = {0};
  char *why = NULL;
  int code = 1;
  const struct dub_http_route routes[] = {assignment_route_get};
  const char *const topics[] = {"duban.cases"};
  const struct dub_runtime_spec spec = {
      .service = "assignment",
      .default_port = 8082,
      .config_parts = DUB_CONFIG_DIRECTORY | DUB_CONFIG_RULES,
      .routes = routes,
      .nroutes = sizeof routes / sizeof routes[0],
      .topics = topics,
      .ntopics = 1,
      .handler = assignment_on_case_event,
      .ctx = &a,
  };

  dub_signals_install();
  dub_log_setup("assignment", DUB_LOG_INFO);
  if(dub_runtime_env_load(&spec, &env, &why) ||
     dub_runtime_open(&spec, &env, &a.rt, &why)) {
    dub_log_fatal("cannot start: %s", why ? why : "unknown error");
    goto out;
  }
  code = dub_runtime_run(a.rt);
out:
  free(why);
  dub_runtime_close(a.rt);
  dub_runtime_env_release(&env);
  return code;
}
