/* log.c - JSON-lines logger on stderr, built with Jansson. */
#include "core/log.h"

#include "core/time.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
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

bool dub_log_enabled(enum dub_log_level level)
{
  return level >= settings.min;
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

#define MSG_MAX 16384 /* bytes of one message; a longer one is cut and says so */

static void write_all(const char *p, size_t len)
{
  while(len) {
    ssize_t n = write(STDERR_FILENO, p, len);
    if(n < 0 && errno == EINTR)
      continue; /* a signal landed on this thread: the line is still owed */
    if(n <= 0)
      return;
    p += n;
    len -= (size_t)n;
  }
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0 when s does not start one
 * (stray continuation, overlong form, surrogate, beyond U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
  unsigned char c = s[0];
  size_t n;
  uint32_t cp;
  if(c < 0x80)
    return 1;
  if(c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if(c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if(c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if(len < n)
    return 0;
  for(size_t i = 1; i < n; i++) {
    if((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
     (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/* 'msg' as valid UTF-8 of at most MSG_MAX bytes plus a note: each byte that starts no
 * valid sequence becomes U+FFFD, and a longer message is cut between characters and
 * says how long it was. Returns a new string. */
static char *clean(const char *msg, size_t len)
{
  static const char bad[] = "\xef\xbf\xbd";
  char *out = malloc(MSG_MAX + 64);
  if(!out)
    return NULL;
  size_t o = 0, i = 0;
  while(i < len) {
    size_t n = utf8_seq((const unsigned char *)msg + i, len - i);
    size_t w = n ? n : sizeof bad - 1;
    if(o + w > MSG_MAX)
      break;
    memcpy(out + o, n ? msg + i : bad, w);
    o += w;
    i += n ? n : 1;
  }
  if(i < len)
    o += (size_t)snprintf(out + o, 64, " [cut: %zu bytes in all]", len);
  out[o] = '\0';
  return out;
}

void dub_log_at(enum dub_log_level level, const char *case_id, const char *trace_id,
                const char *fmt, ...)
{
  if(level < settings.min)
    return;
  char first[2048], *msg = first;
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  int want = vsnprintf(first, sizeof first, fmt, ap);
  va_end(ap);
  if(want < 0) {
    snprintf(first, sizeof first, "(unformattable message: %s)", fmt);
    want = (int)strlen(first);
  } else if((size_t)want >= sizeof first) {
    msg = malloc((size_t)want + 1);
    if(msg) {
      vsnprintf(msg, (size_t)want + 1, fmt, again);
    } else { /* no memory for all of it: what fitted */
      msg = first;
      want = (int)strlen(first);
    }
  }
  va_end(again);
  char *text_msg = clean(msg, (size_t)want);
  if(msg != first)
    free(msg);

  char now[DUB_TIME_LEN];
  dub_time_format(dub_time_now_ms(), 0, now);
  json_t *line = json_object();
  if(!line || !text_msg) {
    json_decref(line);
    free(text_msg);
    static const char oom[] = "{\"msg\":\"a log line was lost: out of memory\"}\n";
    write_all(oom, sizeof oom - 1);
    return;
  }
  json_object_set_new(line, "time", json_string(now));
  json_object_set_new(line, "service", json_string(settings.service));
  json_object_set_new(line, "level", json_string(level_names[level]));
  /* Messages are ours, but may quote input: clean() made it valid UTF-8. */
  json_object_set_new(line, "msg", json_string(text_msg));
  free(text_msg);
  if(case_id)
    json_object_set_new(line, "case_id", json_string(case_id));
  if(trace_id)
    json_object_set_new(line, "trace_id", json_string(trace_id));
  char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(line);
  if(!text) {
    static const char lost[] = "{\"msg\":\"a log line could not be written\"}\n";
    write_all(lost, sizeof lost - 1);
    return;
  }
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
