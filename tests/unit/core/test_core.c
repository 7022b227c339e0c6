/* test_core.c - errors table, allocators, env tables, logger and time helpers. */
#include "core/alloc.h"
#include "core/env.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/time.h"

#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static void test_err_table(void **state)
{
  (void)state;
  assert_int_equal(dub_err_status(DUB_ERR_MALFORMED), 400);
  assert_int_equal(dub_err_status(DUB_ERR_UNAUTHENTICATED), 401);
  assert_int_equal(dub_err_status(DUB_ERR_FORBIDDEN), 403);
  assert_int_equal(dub_err_status(DUB_ERR_NOT_FOUND), 404);
  assert_int_equal(dub_err_status(DUB_ERR_METHOD), 405);
  assert_int_equal(dub_err_status(DUB_ERR_CONFLICT), 409);
  assert_int_equal(dub_err_status(DUB_ERR_TOO_LARGE), 413);
  assert_int_equal(dub_err_status(DUB_ERR_MEDIA_TYPE), 415);
  assert_int_equal(dub_err_status(DUB_ERR_SCHEMA), 422);
  assert_int_equal(dub_err_status(DUB_ERR_RATE_LIMITED), 429);
  assert_int_equal(dub_err_status(DUB_ERR_UNAVAILABLE), 503);
  assert_string_equal(dub_err_code(DUB_ERR_SCHEMA), "schema_violation");
  /* Every row is filled and codes are unique. */
  for(int i = 0; i < DUB_ERR__COUNT; i++) {
    assert_non_null(dub_err_code((enum dub_err)i));
    assert_non_null(dub_err_message((enum dub_err)i));
    for(int j = 0; j < i; j++)
      assert_string_not_equal(dub_err_code((enum dub_err)i),
                              dub_err_code((enum dub_err)j));
  }
  /* Out-of-range values map to internal, not to memory past the table. */
  assert_string_equal(dub_err_code((enum dub_err)9999), "internal");
}

static void test_buf(void **state)
{
  (void)state;
  struct dub_buf buf = DUB_BUF_INIT;
  for(int i = 0; i < 1000; i++)
    dub_buf_appendf(&buf, "%d,", i);
  assert_int_equal(buf.len, strlen(buf.data));
  assert_memory_equal(buf.data, "0,1,2,", 6);
  dub_buf_reset(&buf);
  assert_int_equal(buf.len, 0);
  assert_string_equal(buf.data, "");
  dub_buf_append(&buf, "a\0b", 3);
  assert_int_equal(buf.len, 3);
  char *s = dub_buf_detach(&buf);
  assert_null(buf.data);
  assert_memory_equal(s, "a\0b", 4);
  free(s);
  char *p = dub_xasprintf("%s-%05d", "x", 42);
  assert_string_equal(p, "x-00042");
  free(p);
  p = dub_xstrndup("abcdef", 3);
  assert_string_equal(p, "abc");
  free(p);
  assert_null(dub_xstrdup(NULL));
}

struct env_conf {
  char *brokers;
  long port;
  long threads;
  char *key;
  enum dub_log_level level;
  char *unset;
};

static const struct dub_env_spec specs[] = {
    {"T_BROKERS", DUB_ENV_STR, "127.0.0.1:9092", offsetof(struct env_conf, brokers), 0, 0,
     false},
    {"T_PORT", DUB_ENV_PORT, "8081", offsetof(struct env_conf, port), 0, 0, false},
    {"T_THREADS", DUB_ENV_LONG, "2", offsetof(struct env_conf, threads), 1, 64, false},
    {"T_KEY", DUB_ENV_HEX, NULL, offsetof(struct env_conf, key), 32, 0, false},
    {"T_LEVEL", DUB_ENV_LEVEL, "info", offsetof(struct env_conf, level), 0, 0, false},
    {"T_UNSET", DUB_ENV_STR, NULL, offsetof(struct env_conf, unset), 0, 0, false},
};
#define NSPECS (sizeof specs / sizeof specs[0])

static void clear_env(void)
{
  for(size_t i = 0; i < NSPECS; i++)
    unsetenv(specs[i].name);
}

static void test_env_defaults_and_values(void **state)
{
  (void)state;
  struct env_conf conf = {0};
  char *why = NULL;
  clear_env();
  assert_int_equal(dub_env_load(specs, NSPECS, &conf, &why), DUB_OK);
  assert_string_equal(conf.brokers, "127.0.0.1:9092");
  assert_int_equal(conf.port, 8081);
  assert_int_equal(conf.threads, 2);
  assert_null(conf.key);
  assert_null(conf.unset);
  assert_int_equal(conf.level, DUB_LOG_INFO);
  dub_env_release(specs, NSPECS, &conf);

  setenv("T_PORT", "9000", 1);
  setenv("T_KEY", "00112233445566778899aabbccddeeff", 1);
  setenv("T_LEVEL", "debug", 1);
  setenv("T_BROKERS", "", 1); /* empty counts as unset */
  assert_int_equal(dub_env_load(specs, NSPECS, &conf, &why), DUB_OK);
  assert_int_equal(conf.port, 9000);
  assert_string_equal(conf.key, "00112233445566778899aabbccddeeff");
  assert_int_equal(conf.level, DUB_LOG_DEBUG);
  assert_string_equal(conf.brokers, "127.0.0.1:9092");
  dub_env_release(specs, NSPECS, &conf);
  assert_null(conf.key);
  clear_env();
}

static void expect_env_error(const char *name, const char *value, const char *needle)
{
  struct env_conf conf = {0};
  char *why = NULL;
  clear_env();
  setenv(name, value, 1);
  assert_int_equal(dub_env_load(specs, NSPECS, &conf, &why), DUB_ERR_CONFIG);
  assert_non_null(why);
  assert_non_null(strstr(why, name));
  assert_non_null(strstr(why, needle));
  free(why);
  dub_env_release(specs, NSPECS, &conf);
  clear_env();
}

static void test_env_errors(void **state)
{
  (void)state;
  expect_env_error("T_PORT", "0", "not an integer in [1, 65535]");
  expect_env_error("T_PORT", "70000", "not an integer");
  expect_env_error("T_PORT", "80x", "not an integer");
  expect_env_error("T_PORT", " 80", "not an integer");
  expect_env_error("T_THREADS", "65", "[1, 64]");
  expect_env_error("T_KEY", "abc", "hex");
  expect_env_error("T_KEY", "zz112233445566778899aabbccddeeff", "hex");
  expect_env_error("T_KEY", "0011", "at least 32");
  expect_env_error("T_LEVEL", "loud", "not one of");
}

static void test_parse_long(void **state)
{
  (void)state;
  long v;
  assert_true(dub_parse_long("-5", -10, 10, &v));
  assert_int_equal(v, -5);
  assert_false(dub_parse_long("", 0, 10, &v));
  assert_false(dub_parse_long(NULL, 0, 10, &v));
  assert_false(dub_parse_long("99999999999999999999999", 0, 10, &v));
  assert_false(dub_parse_long("1e3", 0, 10000, &v));
}

static void check_parse(const char *text, const char *utc)
{
  int64_t ms;
  char out[DUB_TIME_LEN];
  assert_int_equal(dub_time_parse(text, &ms, NULL), DUB_OK);
  dub_time_format(ms, 0, out);
  assert_string_equal(out, utc);
}

static void test_time_rfc3339(void **state)
{
  (void)state;
  check_parse("2026-09-29T10:00:00+08:00", "2026-09-29T02:00:00Z");
  check_parse("2026-11-20T09:00:00.5+08:00", "2026-11-20T01:00:00.500Z");
  check_parse("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z");
  check_parse("2024-02-29t23:59:59z", "2024-02-29T23:59:59Z");
  check_parse("2000-01-01T05:30:00+05:30", "2000-01-01T00:00:00Z");
  check_parse("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z");
  check_parse("1998-12-31T23:59:60Z", "1999-01-01T00:00:00Z");
  check_parse("1998-12-31T15:59:60-08:00", "1999-01-01T00:00:00Z");
  const char *bad[] = {"",
                       "2026-09-29",
                       "2026-09-29T10:00:00",
                       "2026-13-01T00:00:00Z",
                       "2026-02-29T00:00:00Z",
                       "2026-04-31T00:00:00Z",
                       "2026-09-29T24:00:00Z",
                       "2026-09-29T10:60:00Z",
                       "2026-09-29T10:00:00+0800",
                       "2026-09-29T10:00:00.Z",
                       "2026-09-29 10:00:00Z",
                       "2026-09-29T10:00:00Zjunk",
                       "1998-12-31T23:58:60Z",
                       "２０２６-09-29T10:00:00Z"};
  for(size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t ms;
    assert_int_equal(dub_time_parse(bad[i], &ms, NULL), DUB_ERR_MALFORMED);
  }
  int64_t ms;
  int off;
  assert_int_equal(dub_time_parse("2026-09-29T10:00:00-03:30", &ms, &off), DUB_OK);
  assert_int_equal(off, -210);
  char out[DUB_TIME_LEN];
  dub_time_format(ms, off, out);
  assert_string_equal(out, "2026-09-29T10:00:00-03:30");
  dub_time_format(ms, DUB_SHANGHAI_OFFSET_MIN, out);
  assert_string_equal(out, "2026-09-29T21:30:00+08:00");
}

/* dub_time_format against libc's gmtime_r and strftime: moments from 1900 to 2100,
 * with and without milliseconds, in UTC and at offsets from -12:00 to +14:00. */
static void test_time_format_matches_libc(void **state)
{
  (void)state;
  uint64_t x = 42;
  for(int i = 0; i < 200000; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    int64_t ms = (int64_t)((x >> 11) % 6311433600000ULL) - 2208988800000LL;
    if(i % 3 == 0)
      ms -= ms % 1000; /* whole seconds: no fraction */
    int offset = i % 5 == 0 ? 0 : (int)((x >> 3) % 105) * 15 - 720;
    char got[DUB_TIME_LEN], want[DUB_TIME_LEN + 16];
    dub_time_format(ms, offset, got);
    int64_t local = ms + (int64_t)offset * 60000;
    int64_t secs = local >= 0 ? local / 1000 : -((-local + 999) / 1000);
    int millis = (int)(local - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    size_t n = strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
    if(millis)
      n += (size_t)snprintf(want + n, sizeof want - n, ".%03d", millis);
    if(offset)
      snprintf(want + n, sizeof want - n, "%c%02d:%02d", offset < 0 ? '-' : '+',
               abs(offset) / 60, abs(offset) % 60);
    else
      snprintf(want + n, sizeof want - n, "Z");
    if(strcmp(got, want) != 0)
      fail_msg("%lld at %d: %s, libc says %s", (long long)ms, offset, got, want);
  }
}

static void test_dates(void **state)
{
  (void)state;
  /* Every day from 1900 to 2100 survives the round trip and weekdays advance by one. */
  struct dub_date d = {1900, 1, 1};
  int64_t days = dub_date_to_days(d);
  int wd = dub_date_weekday(days);
  assert_int_equal(wd, 1); /* 1900-01-01 was a Monday */
  for(int64_t i = days; i < days + 73049; i++) {
    struct dub_date back = dub_date_from_days(i);
    assert_int_equal(dub_date_to_days(back), i);
    assert_true(back.day >= 1 &&
                back.day <= dub_date_days_in_month(back.year, back.month));
    assert_int_equal(dub_date_weekday(i), (int)((wd + (i - days)) % 7));
  }
  struct dub_date e;
  assert_true(dub_date_parse("2026-10-10", &e));
  assert_int_equal(dub_date_weekday(dub_date_to_days(e)), 6); /* a Saturday */
  assert_false(dub_date_parse("2026-02-29", &e));
  assert_false(dub_date_parse("2026-1-01", &e));
  assert_true(dub_date_parse("2028-02-29", &e));
  assert_int_equal(dub_date_to_days((struct dub_date){1970, 1, 1}), 0);
  /* 2026-09-29T16:30Z is already 30 September in Shanghai. */
  int64_t ms;
  assert_int_equal(dub_time_parse("2026-09-29T16:30:00Z", &ms, NULL), DUB_OK);
  struct dub_date sh = dub_date_from_days(dub_time_day_at(ms, DUB_SHANGHAI_OFFSET_MIN));
  assert_int_equal(sh.day, 30);
  assert_int_equal(dub_time_day_at(-1, 0), -1);
}

/* Captures what the logger writes to stderr while 'fn' runs. */
static char *capture_stderr(void (*fn)(void))
{
  char path[] = "/tmp/dub-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  off_t size = lseek(fd, 0, SEEK_END);
  char *text = calloc(1, (size_t)size + 1);
  assert_int_equal(pread(fd, text, (size_t)size, 0), size);
  close(fd);
  unlink(path);
  return text;
}

static void log_some(void)
{
  dub_log_setup("intake", DUB_LOG_INFO);
  dub_log_debug("hidden %d", 1);
  dub_log_info("quote \" and newline \n and 中文");
  dub_log_at(DUB_LOG_WARN, "C-1", "00-abc-def-01", "with ids");
}

static void test_log_lines(void **state)
{
  (void)state;
  char *text = capture_stderr(log_some);
  char *line2 = strchr(text, '\n');
  assert_non_null(line2);
  *line2++ = '\0';
  json_error_t err;
  json_t *a = json_loads(text, 0, &err);
  json_t *b = json_loads(line2, JSON_DISABLE_EOF_CHECK, &err);
  assert_non_null(a);
  assert_non_null(b);
  assert_string_equal(json_string_value(json_object_get(a, "service")), "intake");
  assert_string_equal(json_string_value(json_object_get(a, "level")), "info");
  assert_string_equal(json_string_value(json_object_get(a, "msg")),
                      "quote \" and newline \n and 中文");
  assert_string_equal(json_string_value(json_object_get(b, "case_id")), "C-1");
  assert_string_equal(json_string_value(json_object_get(b, "trace_id")), "00-abc-def-01");
  int64_t ms;
  assert_int_equal(
      dub_time_parse(json_string_value(json_object_get(a, "time")), &ms, NULL), DUB_OK);
  assert_null(strstr(line2, "hidden"));
  assert_null(strstr(text, "hidden"));
  /* Exactly two lines. */
  assert_null(strchr(strchr(line2, '\n') + 1, '\n'));
  json_decref(a);
  json_decref(b);
  free(text);
  enum dub_log_level lvl;
  assert_true(dub_log_level_parse("error", &lvl));
  assert_int_equal(lvl, DUB_LOG_ERROR);
  assert_false(dub_log_level_parse("INFO", &lvl));
}

/* Messages the old logger lost (review C12c): longer than its 2048-byte buffer, cut
 * inside a character, not UTF-8 at all, and beyond the 16 KiB a line may carry. */
static void log_hard(void)
{
  static char big[20000];
  dub_log_setup("intake", DUB_LOG_INFO);
  /* 5000 bytes: 1 ASCII byte, then 3-byte characters (中), so 2048 falls inside one */
  big[0] = 'x';
  for(size_t i = 1; i + 3 <= 5000; i += 3)
    memcpy(big + i, "\xe4\xb8\xad", 3);
  big[4999] = '\0';
  dub_log_info("%s", big);
  dub_log_info("bad bytes \xff\xc0\xaf \xed\xa0\x80 and cut \xe4\xb8 end");
  memset(big, 'y', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  dub_log_warn("%s", big);
}

static json_t *line_at(char **cursor)
{
  char *end = strchr(*cursor, '\n');
  assert_non_null(end);
  *end = '\0';
  json_error_t err;
  json_t *doc = json_loads(*cursor, 0, &err);
  if(!doc)
    fail_msg("not a JSON line (%s): %.200s", err.text, *cursor);
  *cursor = end + 1;
  return doc;
}

static void test_log_long_and_invalid(void **state)
{
  (void)state;
  char *text = capture_stderr(log_hard), *at = text;
  json_t *a = line_at(&at), *b = line_at(&at), *c = line_at(&at);
  assert_string_equal(at, "");
  const char *msg = json_string_value(json_object_get(a, "msg"));
  assert_int_equal(strlen(msg), 1 + 1666 * 3); /* every character, none cut */
  assert_memory_equal(msg + strlen(msg) - 3, "\xe4\xb8\xad", 3);
  assert_string_equal(json_string_value(json_object_get(b, "msg")),
                      "bad bytes \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd"
                      "\xef\xbf\xbd\xef\xbf\xbd and cut \xef\xbf\xbd\xef\xbf\xbd end");
  msg = json_string_value(json_object_get(c, "msg"));
  assert_string_equal(json_string_value(json_object_get(c, "level")), "warn");
  assert_int_equal(strspn(msg, "y"), 16384);
  assert_string_equal(msg + 16384, " [cut: 19999 bytes in all]");
  json_decref(a);
  json_decref(b);
  json_decref(c);
  free(text);
}

static void on_alarm(int sig)
{
  (void)sig;
}

/* A signal that interrupts the write (a handler without SA_RESTART, the write blocked
 * on a full pipe) does not cost the line. */
static void test_log_write_interrupted(void **state)
{
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  int saved = dup(STDERR_FILENO);
  dup2(fds[1], STDERR_FILENO);
  struct sigaction sa = {0}, old;
  sa.sa_handler = on_alarm; /* sa_flags 0: no SA_RESTART */
  sigaction(SIGALRM, &sa, &old);
  /* Fill the pipe so the log line's write blocks, then free it from a thread... */
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  static char junk[4096];
  size_t filled = 0;
  ssize_t n;
  while((n = write(fds[1], junk, sizeof junk)) > 0)
    filled += (size_t)n;
  fcntl(fds[1], F_SETFL, 0);
  pid_t reader = fork();
  assert_true(reader >= 0);
  if(reader == 0) { /* drains after the alarm has interrupted the blocked write */
    close(fds[1]);
    dup2(saved, STDERR_FILENO); /* no write end left here, or the pipe never ends */
    usleep(300000);
    char buf[4096];
    size_t got = 0;
    char *line = calloc(1, 65536);
    while((n = read(fds[0], buf, sizeof buf)) > 0) {
      if(got + (size_t)n <= filled) {
        got += (size_t)n;
        continue;
      }
      size_t skip = got < filled ? filled - got : 0;
      size_t have = strlen(line);
      memcpy(line + have, buf + skip, (size_t)n - skip);
      got += (size_t)n;
    }
    _exit(strstr(line, "after the interruption") && strchr(line, '\n') ? 0 : 1);
  }
  close(fds[0]);
  struct itimerval t = {{0, 0}, {0, 100000}}; /* SIGALRM in 100 ms, mid-write */
  setitimer(ITIMER_REAL, &t, NULL);
  dub_log_setup("intake", DUB_LOG_INFO);
  dub_log_info("after the interruption");
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fds[1]);
  int status = 0;
  assert_int_equal(waitpid(reader, &status, 0), reader);
  sigaction(SIGALRM, &old, NULL);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_hex(void **state)
{
  (void)state;
  unsigned char out[4];
  char text[9];
  assert_true(dub_hex_decode("00fFa9", 6, out, 3));
  assert_int_equal(out[0], 0x00);
  assert_int_equal(out[1], 0xff);
  assert_int_equal(out[2], 0xa9);
  assert_false(dub_hex_decode("00f", 3, out, 2));  /* odd length */
  assert_false(dub_hex_decode("0g", 2, out, 1));   /* not a digit */
  assert_false(dub_hex_decode("0011", 4, out, 1)); /* length must match exactly */
  assert_int_equal(dub_hex_value('G'), -1);
  dub_hex_encode((const unsigned char[]){0xde, 0xad, 0x01, 0x10}, 4, text);
  assert_string_equal(text, "dead0110");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_err_table),
      cmocka_unit_test(test_buf),
      cmocka_unit_test(test_env_defaults_and_values),
      cmocka_unit_test(test_env_errors),
      cmocka_unit_test(test_parse_long),
      cmocka_unit_test(test_time_rfc3339),
      cmocka_unit_test(test_time_format_matches_libc),
      cmocka_unit_test(test_dates),
      cmocka_unit_test(test_log_lines),
      cmocka_unit_test(test_log_long_and_invalid),
      cmocka_unit_test(test_log_write_interrupted),
      cmocka_unit_test(test_hex),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
