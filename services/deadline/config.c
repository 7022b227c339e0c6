/* config.c - deadline's environment, its clock and its Redis keys. */
#include "deadline.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/time.h"

#include <stddef.h>

/* Ten years either way is the most a drill or a test needs. */
#define MAX_OFFSET_MS (3660L * 24 * 3600 * 1000)

static const struct dub_env_spec env_table[] = {
    {"DUBAN_DEADLINE_CLOCK_OFFSET_MS", DUB_ENV_LONG, "0",
     offsetof(struct deadline_conf, clock_offset_ms), -MAX_OFFSET_MS, MAX_OFFSET_MS,
     false},
    {"DUBAN_DEADLINE_TICK_MS", DUB_ENV_LONG, "200",
     offsetof(struct deadline_conf, tick_ms), 10, 10000, false},
};

enum dub_err deadline_conf_load(struct deadline_conf *conf, char **why)
{
  return dub_env_load(env_table, sizeof env_table / sizeof env_table[0], conf, why);
}

int64_t deadline_now(const struct deadline *d)
{
  return dub_time_now_ms() + d->conf.clock_offset_ms;
}

char *deadline_case_key(const char *case_id)
{
  return dub_xasprintf("duban:case:{%s}", case_id);
}

char *deadline_timers_key(int32_t partition)
{
  return dub_xasprintf("duban:deadline:timers:%d", (int)partition);
}

char *deadline_open_key(int32_t partition)
{
  return dub_xasprintf("duban:deadline:open:%d", (int)partition);
}

char *deadline_stats_key(int32_t partition)
{
  return dub_xasprintf("duban:deadline:stats:%d", (int)partition);
}

char *deadline_marker_key(int32_t partition)
{
  return dub_xasprintf("duban:deadline:partition:%d", (int)partition);
}
