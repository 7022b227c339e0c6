/* main.c - deadline: keeps each case's state and SLA moments on the official
 * working-day calendar, fires its warnings, overdue notices and escalations exactly
 * once, and answers case, ledger and statistics queries. */
#include "deadline.h"

#include "core/log.h"
#include "core/signals.h"
#include "runtime/runtime.h"

#include <stdlib.h>

/* Runs on an HTTP server thread. */
static bool ready(void *ctx, char **reason)
{
  return deadline_partitions_ready(ctx, reason);
}

int main(void)
{
  struct deadline d = {0};
  struct dub_runtime_env env = {0};
  char *why = NULL;
  int code = 1;
  const struct dub_http_route routes[] = {
      deadline_route_get_case, deadline_route_get_ledger, deadline_route_get_stats};
  const char *const topics[] = {DEADLINE_CASES_TOPIC};
  const struct dub_runtime_spec spec = {
      .service = "deadline",
      .default_port = 8083,
      .config_parts = DUB_CONFIG_SLA | DUB_CONFIG_CALENDAR,
      .routes = routes,
      .nroutes = sizeof routes / sizeof routes[0],
      .topics = topics,
      .ntopics = 1,
      .batch_handler = deadline_on_case_events,
      .rebalance = deadline_on_rebalance,
      .on_assign = deadline_on_assign,
      .ready = ready,
      .ctx = &d,
  };

  dub_signals_install();
  dub_log_setup("deadline", DUB_LOG_INFO);
  deadline_partitions_init(&d);
  if(deadline_conf_load(&d.conf, &why) || dub_runtime_env_load(&spec, &env, &why) ||
     dub_runtime_open(&spec, &env, &d.rt, &why) || deadline_scheduler_start(&d, &why)) {
    dub_log_fatal("cannot start: %s", why ? why : "unknown error");
    goto out;
  }
  code = dub_runtime_run(d.rt);
out:
  /* The scheduler stops before the runtime closes the producer it publishes with. */
  deadline_scheduler_stop(&d);
  free(why);
  dub_runtime_close(d.rt);
  dub_runtime_env_release(&env);
  deadline_partitions_release(&d);
  return code;
}
