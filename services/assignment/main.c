/* main.c - assignment: routes every case to a unit and an officer without a conflict,
 * fairly, reassigns returned cases, keeps the workload, and publishes
 * duban.case.assigned. */
#include "assignment.h"

#include "core/log.h"
#include "core/signals.h"
#include "runtime/runtime.h"

#include <stdlib.h>

/* Runs on an HTTP server thread. */
static bool ready(void *ctx, char **reason)
{
  return assignment_keeper_ready(ctx, reason);
}

int main(void)
{
  struct assignment a = {0};
  struct dub_runtime_env env = {0};
  char *why = NULL;
  int code = 1;
  const struct dub_http_route routes[] = {assignment_route_get,
                                          assignment_route_workload};
  const char *const topics[] = {"duban.cases"};
  const struct dub_runtime_spec spec = {
      .service = "assignment",
      .default_port = 8082,
      .config_parts = DUB_CONFIG_DIRECTORY | DUB_CONFIG_RULES,
      .check_config = assignment_check_config,
      .routes = routes,
      .nroutes = sizeof routes / sizeof routes[0],
      .topics = topics,
      .ntopics = 1,
      .batch_handler = assignment_on_case_events,
      .ready = ready,
      .ctx = &a,
  };

  dub_signals_install();
  dub_log_setup("assignment", DUB_LOG_INFO);
  if(dub_runtime_env_load(&spec, &env, &why) ||
     assignment_open(&a, env.redis_url, env.schema_dir, &why) ||
     dub_runtime_open(&spec, &env, &a.rt, &why) || assignment_keeper_start(&a, &why)) {
    dub_log_fatal("cannot start: %s", why ? why : "unknown error");
    goto out;
  }
  assignment_decoder_start(&a);
  code = dub_runtime_run(a.rt);
out:
  free(why);
  /* The consumer is closed (and its last batch done) before its helpers go. */
  dub_runtime_close(a.rt);
  assignment_decoder_stop(&a);
  assignment_keeper_stop(&a);
  assignment_close(&a);
  dub_runtime_env_release(&env);
  return code;
}
