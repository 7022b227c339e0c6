/* rebuild.c - derived state rebuilt from a topic (see rebuild.h). */
#include "runtime/rebuild.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define DEFAULT_BATCH 1000
#define POLL_MS 200
#define PROGRESS_MS 10000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define READER_TIMEOUT_MS 10000
#define END_TIMEOUT_MS 2000

enum dub_err dub_rebuild_needed(struct dub_cache *cache, const char *marker, bool *needed)
{
  struct dub_cache_reply *r = NULL;
  const char *argv[] = {"EXISTS", marker};
  enum dub_err rc = dub_cache_command(cache, &r, 2, argv, NULL);
  if(!rc && r->type != DUB_CACHE_INT)
    rc = DUB_ERR_UNAVAILABLE;
  if(!rc)
    *needed = r->integer == 0;
  dub_cache_reply_free(r);
  return rc ? DUB_ERR_UNAVAILABLE : DUB_OK;
}

static bool stopping(const atomic_bool *stop)
{
  return (stop && atomic_load(stop)) || dub_signals_stop_requested();
}

/* Sleeps ms, in slices, unless stopping; false when stopped. */
static bool pause_unless(const atomic_bool *stop, long ms)
{
  while(ms > 0 && !stopping(stop)) {
    long slice = ms < 100 ? ms : 100;
    struct timespec ts = {0, slice * 1000000L};
    while(nanosleep(&ts, &ts) == -1 && errno == EINTR)
      ;
    ms -= slice;
  }
  return !stopping(stop);
}

static long next_backoff(long ms)
{
  return ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
}

static void count(struct dub_metrics *m, const char *name, const char *help,
                  const char *what, double v)
{
  if(!m || v <= 0)
    return;
  char *labels = dub_xasprintf("what=\"%s\"", what);
  dub_metrics_counter_add(m, name, help, labels, v);
  free(labels);
}

/* Reads the whole topic once, up to the ends taken at its start, applying every batch.
 * DUB_OK when every batch is written; DUB_ERR_UNAVAILABLE when Kafka failed or *stop. */
static enum dub_err read_all(struct dub_kafka_reader *reader, struct dub_cache *cache,
                             struct dub_metrics *metrics,
                             const struct dub_rebuild_spec *spec, const atomic_bool *stop,
                             struct dub_rebuild_stats *st, int64_t started)
{
  int32_t np = dub_kafka_reader_partitions(reader);
  int64_t *written = dub_xcalloc((size_t)np, sizeof *written); /* next offset to apply */
  size_t max = spec->batch ? spec->batch : DEFAULT_BATCH;
  long backoff = BACKOFF_MIN_MS;
  int64_t said = started, failing_since = 0;
  bool settling = spec->settle_ms > 0;
  enum dub_err rc = DUB_OK;
  for(;;) { /* where to start: the beginning, or the service's checkpoint */
    for(int32_t i = 0; i < np; i++)
      written[i] = DUB_KAFKA_OFFSET_BEGINNING;
    if(!spec->start_at || !(rc = spec->start_at(spec->ctx, cache, written, np)))
      break;
    if(!pause_unless(stop, backoff)) {
      free(written);
      return DUB_ERR_UNAVAILABLE;
    }
    backoff = next_backoff(backoff);
  }
  backoff = BACKOFF_MIN_MS;
  rc = dub_kafka_reader_start(reader, written);
  while(!rc) {
    if(stopping(stop)) {
      rc = DUB_ERR_UNAVAILABLE;
      break;
    }
    if(settling && dub_time_mono_ms() - started >= spec->settle_ms) {
      dub_kafka_reader_forget_ends(reader); /* the ends are taken now */
      settling = false;
    }
    bool done = false;
    if(dub_kafka_reader_caught_up(reader, END_TIMEOUT_MS, &done)) {
      rc = DUB_ERR_UNAVAILABLE;
      break;
    }
    if(done && !settling)
      break;
    const struct dub_kafka_msg *msgs = NULL;
    size_t n = 0;
    rc = dub_kafka_reader_poll_batch(reader, POLL_MS, max, &msgs, &n);
    if(rc || !n)
      continue;
    enum dub_err wrc = spec->apply(spec->ctx, cache, msgs, n);
    if(wrc == DUB_ERR_CONFLICT) {
      rc = wrc;
      break;
    }
    if(wrc) {
      /* Nothing after the last batch that was written counts: read it all again. */
      st->retries++;
      count(metrics, "duban_rebuild_retries_total",
            "Batches of a rebuild applied again after a failed write.", spec->what, 1);
      if(st->retries == 1 || st->retries % 50 == 0)
        dub_log_warn("%s: a write of the rebuild failed (%s), %zu time(s) so far; "
                     "trying again",
                     spec->what, dub_err_code(wrc), st->retries);
      int64_t now = dub_time_mono_ms();
      if(!failing_since)
        failing_since = now;
      if(spec->patience_ms && now - failing_since >= spec->patience_ms) {
        dub_log_warn("%s: writes failing for %lld ms; rebuild given up for now",
                     spec->what, (long long)(now - failing_since));
        rc = DUB_ERR_UNAVAILABLE;
        break;
      }
      if(!pause_unless(stop, backoff)) {
        rc = DUB_ERR_UNAVAILABLE;
        break;
      }
      backoff = next_backoff(backoff);
      rc = dub_kafka_reader_rewind(reader, written);
      continue;
    }
    backoff = BACKOFF_MIN_MS;
    failing_since = 0;
    for(int32_t i = 0; i < np; i++)
      written[i] = dub_kafka_reader_position(reader, i);
    st->records += n;
    count(metrics, "duban_rebuild_records_total",
          "Records read and applied by rebuilds of derived state.", spec->what,
          (double)n);
    int64_t now = dub_time_mono_ms();
    if(now - said >= PROGRESS_MS) {
      said = now;
      dub_log_info("%s: rebuilding, %zu records in %.1f s", spec->what, st->records,
                   (double)(now - started) / 1000.0);
    }
  }
  free(written);
  return rc;
}

enum dub_err dub_rebuild_run(const char *brokers, struct dub_cache *cache,
                             struct dub_metrics *metrics,
                             const struct dub_rebuild_spec *spec, const atomic_bool *stop,
                             struct dub_rebuild_stats *stats)
{
  struct dub_rebuild_stats st = {0};
  int64_t started = dub_time_mono_ms();
  struct dub_kafka_reader *reader = NULL;
  char *why = NULL;
  enum dub_err rc =
      dub_kafka_reader_new(brokers, spec->topic, READER_TIMEOUT_MS, &reader, &why);
  if(rc) {
    dub_log_error("cannot read %s to rebuild the %s: %s", spec->topic, spec->what,
                  why ? why : dub_err_code(rc));
    free(why);
    return DUB_ERR_UNAVAILABLE;
  }
  dub_log_warn("%s: reading %s up to the end it has now, to rebuild", spec->what,
               spec->topic);
  long backoff = BACKOFF_MIN_MS;
  for(;;) {
    if(spec->begin)
      spec->begin(spec->ctx);
    rc = read_all(reader, cache, metrics, spec, stop, &st, dub_time_mono_ms());
    if(rc)
      break;
    enum dub_err frc = spec->finish ? spec->finish(spec->ctx, cache) : DUB_OK;
    if(frc == DUB_ERR_CONFLICT) {
      rc = frc;
      break;
    }
    if(!frc && spec->marker) {
      const char *argv[] = {"SET", spec->marker, "1"};
      frc = dub_cache_command(cache, NULL, 3, argv, NULL);
    }
    if(!frc)
      break;
    /* The marker or the finish step did not make it: what was read is not known to
     * be whole, so all of it again (a new read takes new ends). */
    st.retries++;
    dub_log_warn("%s: finishing the rebuild failed (%s); reading %s again", spec->what,
                 dub_err_code(frc), spec->topic);
    if(spec->patience_ms || !pause_unless(stop, backoff)) {
      rc = DUB_ERR_UNAVAILABLE;
      break;
    }
    backoff = next_backoff(backoff);
  }
  dub_kafka_reader_free(reader);
  st.ms = dub_time_mono_ms() - started;
  if(!rc) {
    double s = (double)st.ms / 1000.0;
    dub_log_info("%s: rebuilt, %zu records in %.2f s (%.0f/s), %zu retries", spec->what,
                 st.records, s, s > 0 ? (double)st.records / s : 0.0, st.retries);
    if(metrics) {
      char *labels = dub_xasprintf("what=\"%s\"", spec->what);
      dub_metrics_gauge_set(metrics, "duban_rebuild_seconds",
                            "How long the last completed rebuild took.", labels, s);
      free(labels);
    }
  } else if(rc == DUB_ERR_CONFLICT) {
    dub_log_warn("%s: rebuild given up, another instance took it over", spec->what);
  } else if(!stopping(stop)) {
    dub_log_error("%s: rebuild stopped, kafka could not be read", spec->what);
  }
  if(stats)
    *stats = st;
  return rc;
}
