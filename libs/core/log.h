/* log.h - the one logger: a JSON line per event on stderr. */
#ifndef DUB_CORE_LOG_H
#define DUB_CORE_LOG_H

#include <stdbool.h>

enum dub_log_level {
  DUB_LOG_DEBUG,
  DUB_LOG_INFO,
  DUB_LOG_WARN,
  DUB_LOG_ERROR,
  DUB_LOG_FATAL
};

/* Sets the service name and the lowest level written. Call once, before any thread
 * starts; the settings are read-only afterwards. 'service' is copied. */
void dub_log_setup(const char *service, enum dub_log_level min);

/* Whether a line at 'level' would be written (to skip building what would not be). */
bool dub_log_enabled(enum dub_log_level level);

/* Parses "debug", "info", "warn", "error" or "fatal". */
bool dub_log_level_parse(const char *s, enum dub_log_level *out);

/* Writes {"time","service","level","msg"[,"case_id"][,"trace_id"]} as one line, in one
 * write(2), so lines from different threads never interleave (a write a signal
 * interrupts is tried again). Every message gets its line: bytes that are not UTF-8
 * become U+FFFD, and past 16 KiB it is cut between characters and says how long it was.
 * case_id and trace_id may be NULL. Never pass reporter identity in any argument.
 * Thread-safe. */
void dub_log_at(enum dub_log_level level, const char *case_id, const char *trace_id,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define dub_log_debug(...) dub_log_at(DUB_LOG_DEBUG, NULL, NULL, __VA_ARGS__)
#define dub_log_info(...) dub_log_at(DUB_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define dub_log_warn(...) dub_log_at(DUB_LOG_WARN, NULL, NULL, __VA_ARGS__)
#define dub_log_error(...) dub_log_at(DUB_LOG_ERROR, NULL, NULL, __VA_ARGS__)
#define dub_log_fatal(...) dub_log_at(DUB_LOG_FATAL, NULL, NULL, __VA_ARGS__)

#endif
