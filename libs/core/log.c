/* log.c - JSON-lines logger on stderr, built with Jansson. */
#include "core/log.h"

#include "core/time.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Written once by dub_log_setup() before threads start, read-only afterwards. */
static struct {
  char service[32];
  enum dub_log_level min;
} settings = {"duban", DUB_LOG_INFO};

static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

void dub_log_setup(const char *service, enum dub_log_level min)
{
  snprintf(settings.service, sizeof settings.service, "%s", service ? service : "duban");
  settings.min = min;
}

bool dub_log_level_parse(const char *s, enum dub_log_level *out)
{
  for(size_t i = 0; s && i < sizeof level_names / sizeof level_names[0]; i++) {
    if(strcmp(s, level_names[i]) == 0) {
      *out = (enum dub_log_level)i;
      return true;
    }
  }
  return false;
}

static void write_all(const char *p, size_t len)
{
  while(len) {
    ssize_t n = write(STDERR_FILENO, p, len);
    if(n <= 0)
      return;
    p += n;
    len -= (size_t)n;
  }
}

void dub_log_at(enum dub_log_level level, const char *case_id, const char *trace_id,
                const char *fmt, ...)
{
  if(level < settings.min)
    return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  char now[DUB_TIME_LEN];
  dub_time_format(dub_time_now_ms(), 0, now);
  json_t *line = json_object();
  if(!line)
    return;
  json_object_set_new(line, "time", json_string(now));
  json_object_set_new(line, "service", json_string(settings.service));
  json_object_set_new(line, "level", json_string(level_names[level]));
  /* Messages are ours, but may quote input: keep the line valid JSON regardless. */
  json_object_set_new(line, "msg", json_stringn_nocheck(msg, strlen(msg)));
  if(case_id)
    json_object_set_new(line, "case_id", json_string(case_id));
  if(trace_id)
    json_object_set_new(line, "trace_id", json_string(trace_id));
  char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(line);
  if(!text)
    return;
  size_t len = strlen(text);
  char *out = malloc(len + 2);
  if(out) {
    memcpy(out, text, len);
    out[len] = '\n';
    write_all(out, len + 1);
    free(out);
  }
  free(text);
}
