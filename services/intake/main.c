/* main.c - intake: authenticates publishers, validates their CloudEvents, gives each new
 * problem a case id, seals the reporter's identity and publishes to duban.cases. */
#include "accept.h"
#include "intake.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/signals.h"
#include "runtime/runtime.h"

#include <stdlib.h>

/* Runs on an HTTP server thread. */
static bool ready(void *ctx, char **reason)
{
  if(intake_index_ready(ctx))
    return true;
  *reason = dub_xstrdup("rebuilding the deduplication index from duban.cases");
  return false;
}

int main(void)
{
  struct intake in = {0};
  struct dub_runtime_env env = {0};
  char *why = NULL;
  int code = 1;
  const struct dub_http_route routes[] = {intake_route_post_events,
                                          intake_route_get_event};
  const char *const topics[] = {"duban.inbound"};
  const struct dub_runtime_spec spec = {
      .service = "intake",
      .default_port = 8081,
      .config_parts = 0, /* clients.json only */
      .routes = routes,
      .nroutes = sizeof routes / sizeof routes[0],
      .topics = topics,
      .ntopics = 1,
      .batch_handler = intake_on_inbound,
      .ready = ready,
      .ctx = &in,
  };

  dub_signals_install();
  dub_log_setup("intake", DUB_LOG_INFO);
  if(dub_runtime_env_load(&spec, &env, &why) || intake_open(&in, env.schema_dir, &why) ||
     intake_recorder_start(&in, env.redis_url, &why) ||
     dub_runtime_open(&spec, &env, &in.rt, &why) || intake_index_start(&in, &why)) {
    dub_log_fatal("cannot start: %s", why ? why : "unknown error");
    goto out;
  }
  intake_claimer_start(&in);
  code = dub_runtime_run(in.rt);
out:
  free(why);
  /* Threads first, memory last: the index's thread and the claimer stop before the
   * runtime (the claimer writes through its producer), but what HTTP threads read
   * (/readyz asks the index) is freed only once dub_runtime_close() has stopped them.
   * The recorder takes what the producer's final flush accepts, so it stops last. */
  intake_index_stop(&in);
  intake_claimer_stop(&in);
  dub_runtime_close(in.rt);
  intake_recorder_stop(&in);
  intake_claimer_free(&in);
  intake_index_free(&in);
  intake_close(&in);
  dub_runtime_env_release(&env);
  return code;
}
