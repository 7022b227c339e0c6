/* metrics.h - a thread-safe registry of counters, gauges and histograms, rendered in
 * the Prometheus text exposition format 0.0.4. */
#ifndef DUB_METRICS_METRICS_H
#define DUB_METRICS_METRICS_H

#include "core/err.h"

#include <stddef.h>

/* A family is a metric name with its HELP text and TYPE; a series is one label set of
 * a family. Families and series are created on first use and live as long as the
 * registry. A name keeps the type it was first used with: using it as another type is
 * DUB_ERR_INVALID.
 *
 * Labels are given preformatted, without braces, e.g. `method="GET",code="200"`, or
 * NULL / "" for none. Label values must be escaped with dub_metrics_label_escape() when
 * they may hold '\\', '"' or a newline. The same label set must always be written the
 * same way (same order, same spacing): the string is the series key.
 *
 * Every function below is thread-safe. */
struct dub_metrics;

/* Returns a new empty registry; free with dub_metrics_free(). */
struct dub_metrics *dub_metrics_new(void);
/* Frees the registry and every family in it. NULL is a no-op. */
void dub_metrics_free(struct dub_metrics *m);

/* Adds 'v' (>= 0) to a counter. 'name', 'help' and 'labels' are copied on first use;
 * 'help' of later calls is ignored. DUB_ERR_INVALID for a bad name, a negative or NaN
 * value, or a name already used as another type. */
enum dub_err dub_metrics_counter_add(struct dub_metrics *m, const char *name,
                                     const char *help, const char *labels, double v);
/* Sets a gauge to 'v'. */
enum dub_err dub_metrics_gauge_set(struct dub_metrics *m, const char *name,
                                   const char *help, const char *labels, double v);
/* Adds 'v' (may be negative) to a gauge. */
enum dub_err dub_metrics_gauge_add(struct dub_metrics *m, const char *name,
                                   const char *help, const char *labels, double v);
/* Records one observation of 'seconds' in a histogram with the default buckets
 * (DUB_METRICS_DEFAULT_BUCKETS, 0.0005 s .. 10 s, plus +Inf). 'labels' must not hold
 * an `le` label. */
enum dub_err dub_metrics_histogram_observe(struct dub_metrics *m, const char *name,
                                           const char *help, const char *labels,
                                           double seconds);

/* A handle on one series, for hot paths: look it up once, then update it without the
 * registry lock and without hashing. Valid until dub_metrics_free(). */
struct dub_metrics_series;

/* Finds or creates a counter series (as dub_metrics_counter_add() with 0) and gives its
 * handle in *out. DUB_ERR_INVALID as for dub_metrics_counter_add(). */
enum dub_err dub_metrics_counter_series(struct dub_metrics *m, const char *name,
                                        const char *help, const char *labels,
                                        struct dub_metrics_series **out);
/* Finds or creates a histogram series and gives its handle in *out. */
enum dub_err dub_metrics_histogram_series(struct dub_metrics *m, const char *name,
                                          const char *help, const char *labels,
                                          struct dub_metrics_series **out);
/* Adds 'v' (>= 0) to a counter series. Lock-free; thread-safe. */
void dub_metrics_series_add(struct dub_metrics_series *s, double v);
/* Records one observation in a histogram series. Lock-free; thread-safe. A render that
 * runs meanwhile may see the observation in some of the samples only. */
void dub_metrics_series_observe(struct dub_metrics_series *s, double seconds);

/* The default histogram upper bounds, in seconds, ascending. */
#define DUB_METRICS_DEFAULT_BUCKETS                                                      \
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0

/* Renders every family, in the order they were first used, each series in the order it
 * was first used: "# HELP", "# TYPE", then the samples; histograms give cumulative
 * `_bucket{...,le="..."}` lines ending with le="+Inf", then `_sum` and `_count`.
 * Returns a new string; free with free(). */
char *dub_metrics_render(struct dub_metrics *m);

/* Escapes a label value for use between the quotes of a label: '\\' -> "\\\\",
 * '"' -> "\\\"", newline -> "\\n". Returns a new string; free with free(). */
char *dub_metrics_label_escape(const char *value);

#endif
