/* env.c - table-driven environment parsing with messages that name the variable. */
#include "core/env.h"

#include "core/alloc.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool dub_parse_long(const char *s, long min, long max, long *out)
{
  if(!s || !*s || isspace((unsigned char)*s))
    return false;
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if(errno || *end || v < min || v > max)
    return false;
  *out = v;
  return true;
}

bool dub_parse_double(const char *s, double *out)
{
  if(!s || !*s || isspace((unsigned char)*s))
    return false;
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if(errno || *end)
    return false;
  *out = v;
  return true;
}

static bool is_hex(const char *s)
{
  for(; *s; s++)
    if(!isxdigit((unsigned char)*s))
      return false;
  return true;
}

enum dub_err dub_env_load(const struct dub_env_spec *specs, size_t n, void *conf,
                          char **why)
{
  char *base = conf;
  *why = NULL;
  for(size_t i = 0; i < n; i++) {
    const struct dub_env_spec *s = &specs[i];
    const char *v = getenv(s->name);
    if(v && !*v)
      v = NULL; /* an empty variable is an unset one */
    if(!v)
      v = s->def;
    if(!v) {
      if(s->required) {
        *why = dub_xasprintf("%s: required but not set", s->name);
        return DUB_ERR_CONFIG;
      }
      continue;
    }
    void *field = base + s->offset;
    long num;
    switch(s->kind) {
    case DUB_ENV_STR:
      *(char **)field = dub_xstrdup(v);
      break;
    case DUB_ENV_HEX:
      if(!is_hex(v) || strlen(v) % 2 || strlen(v) < (size_t)s->min) {
        *why = dub_xasprintf("%s: must be an even number of hex digits, at least %ld",
                             s->name, s->min);
        return DUB_ERR_CONFIG;
      }
      *(char **)field = dub_xstrdup(v);
      break;
    case DUB_ENV_LONG:
    case DUB_ENV_PORT: {
      long lo = s->kind == DUB_ENV_PORT ? 1 : s->min;
      long hi = s->kind == DUB_ENV_PORT ? 65535 : s->max;
      if(!dub_parse_long(v, lo, hi, &num)) {
        *why =
            dub_xasprintf("%s: '%s' is not an integer in [%ld, %ld]", s->name, v, lo, hi);
        return DUB_ERR_CONFIG;
      }
      *(long *)field = num;
      break;
    }
    case DUB_ENV_LEVEL: {
      enum dub_log_level level;
      if(!dub_log_level_parse(v, &level)) {
        *why = dub_xasprintf("%s: '%s' is not one of debug, info, warn, error, fatal",
                             s->name, v);
        return DUB_ERR_CONFIG;
      }
      *(enum dub_log_level *)field = level;
      break;
    }
    }
  }
  return DUB_OK;
}

void dub_env_release(const struct dub_env_spec *specs, size_t n, void *conf)
{
  char *base = conf;
  for(size_t i = 0; i < n; i++) {
    if(specs[i].kind == DUB_ENV_STR || specs[i].kind == DUB_ENV_HEX) {
      char **field = (char **)(base + specs[i].offset);
      free(*field);
      *field = NULL;
    }
  }
}
