/* config.c - assignment's own connections and schemas, the check of rules.json against
 * directory.json, and the compiled model of the running configuration. */
#include "assignment.h"
#include "model.h"

#include "cache/cache.h"
#include "config/config.h"
#include "core/alloc.h"
#include "core/log.h"
#include "runtime/runtime.h"
#include "schema/schema.h"

#include <stdlib.h>

static enum dub_err load_schema(const char *schema_dir, const char *type,
                                struct dub_schema **out, char **why)
{
  char *path = dub_xasprintf("%s/events/%s.json", schema_dir, type);
  enum dub_err rc = dub_schema_load_file(path, out, why);
  free(path);
  return rc;
}

enum dub_err assignment_open(struct assignment *a, const char *redis_url,
                             const char *schema_dir, char **why)
{
  enum dub_err rc = load_schema(schema_dir, "duban.case.received", &a->received, why);
  if(!rc)
    rc = load_schema(schema_dir, "duban.case.returned", &a->returned, why);
  if(!rc)
    rc = load_schema(schema_dir, "duban.case.closed", &a->closed, why);
  if(!rc)
    rc = load_schema(schema_dir, "duban.case.cancelled", &a->cancelled, why);
  if(!rc)
    rc = dub_cache_new(redis_url, 1000, 2000, &a->cache, why);
  a->commits = dub_cache_pipeline_new();
  return rc;
}

void assignment_close(struct assignment *a)
{
  assignment_model_free(a->model);
  dub_config_unref(a->compiled_from);
  dub_cache_pipeline_free(a->commits);
  dub_cache_free(a->cache);
  dub_schema_free(a->received);
  dub_schema_free(a->returned);
  dub_schema_free(a->closed);
  dub_schema_free(a->cancelled);
}

enum dub_err assignment_check_config(void *ctx, const struct dub_config *config,
                                     char **why)
{
  (void)ctx;
  struct assignment_model *m = NULL;
  enum dub_err rc = assignment_model_new(config->rules, config->directory, &m, why);
  assignment_model_free(m);
  return rc;
}

const struct assignment_model *assignment_model_current(struct assignment *a)
{
  struct dub_config *config = dub_runtime_config(a->rt);
  struct assignment_model *m = NULL;
  char *why = NULL;
  if(config == a->compiled_from) {
    dub_config_unref(config);
    return a->model;
  }
  /* The runtime's check passed this snapshot, so it compiles. */
  if(assignment_model_new(config->rules, config->directory, &m, &why)) {
    dub_log_error("configuration does not compile, keeping the previous one: %s", why);
    free(why);
    dub_config_unref(config);
    return a->model;
  }
  assignment_model_free(a->model);
  dub_config_unref(a->compiled_from);
  a->model = m;
  a->compiled_from = config; /* keeps the reference, so the address is not reused */
  return m;
}
