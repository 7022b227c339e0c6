/* env.h - environment variables declared in one table per service, parsed strictly. */
#ifndef DUB_CORE_ENV_H
#define DUB_CORE_ENV_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

enum dub_env_kind {
  DUB_ENV_STR,   /* char * field; NULL when unset and without default */
  DUB_ENV_LONG,  /* long field within [min, max] */
  DUB_ENV_PORT,  /* long field within [1, 65535] */
  DUB_ENV_HEX,   /* char * field of hex digits, even length, at least min digits */
  DUB_ENV_LEVEL, /* enum dub_log_level field */
};

/* One row: variable name, kind, default (NULL = none), offset of the field in the
 * service's config struct, bounds for numbers, and whether it must be set. */
struct dub_env_spec {
  const char *name;
  enum dub_env_kind kind;
  const char *def;
  size_t offset;
  long min;
  long max;
  bool required;
};

/* Fills 'conf' from the environment per 'specs'. On failure returns DUB_ERR_CONFIG and
 * sets *why to a new message naming the variable and what was wrong (free with free()).
 * Strings in 'conf' are new copies; release them with dub_env_release(). */
enum dub_err dub_env_load(const struct dub_env_spec *specs, size_t n, void *conf,
                          char **why);
/* Frees the strings dub_env_load() stored in 'conf'. */
void dub_env_release(const struct dub_env_spec *specs, size_t n, void *conf);

/* Checked parsers: the whole string must be a number in [min, max]. */
bool dub_parse_long(const char *s, long min, long max, long *out);
bool dub_parse_double(const char *s, double *out);

#endif
