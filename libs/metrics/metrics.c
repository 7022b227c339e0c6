/* metrics.c - the metrics registry: one mutex, one hash table of series, families kept
 * in first-use order for rendering. */
#include "metrics/metrics.h"

#include "core/alloc.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

static const char *const kind_names[] = {"counter", "gauge", "histogram"};
static const double bounds[] = {DUB_METRICS_DEFAULT_BUCKETS};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

struct family;

/* Values are atomics so that handles update them without the registry lock; doubles
 * are kept as their bits and added with compare-and-swap. */
struct series {
  struct family *family;
  char *labels;
  uint64_t hash;
  struct series *next;         /* next in the same hash slot */
  atomic_uint_least64_t value; /* counter and gauge: bits of a double */
  atomic_uint_least64_t sum;   /* histogram: bits of a double */
  atomic_uint_least64_t count;
  atomic_uint_least64_t buckets[NBOUNDS]; /* observations per bucket, not cumulative */
};

/* The public handle is the series itself. */
struct dub_metrics_series {
  struct series s;
};

static uint64_t to_bits(double v)
{
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return b;
}

static double from_bits(uint64_t b)
{
  double v;
  memcpy(&v, &b, sizeof v);
  return v;
}

static double load_double(atomic_uint_least64_t *a)
{
  return from_bits(atomic_load_explicit(a, memory_order_relaxed));
}

static void add_double(atomic_uint_least64_t *a, double v)
{
  uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
  while(!atomic_compare_exchange_weak_explicit(
      a, &old, to_bits(from_bits(old) + v), memory_order_relaxed, memory_order_relaxed))
    ;
}

static void observe(struct series *s, double seconds)
{
  size_t b = 0;
  while(b < NBOUNDS && seconds > bounds[b])
    b++;
  if(b < NBOUNDS)
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
  add_double(&s->sum, seconds);
  atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

struct family {
  char *name;
  char *help;
  enum kind kind;
  struct series **series; /* first-use order */
  size_t n;
  size_t cap;
};

struct dub_metrics {
  pthread_mutex_t lock;
  struct family **families; /* first-use order */
  size_t n;
  size_t cap;
  struct series **slots; /* chained hash table of every series, power-of-two size */
  size_t nslots;
  size_t nseries;
};

struct dub_metrics *dub_metrics_new(void)
{
  struct dub_metrics *m = dub_xcalloc(1, sizeof *m);
  pthread_mutex_init(&m->lock, NULL);
  m->nslots = 64;
  m->slots = dub_xcalloc(m->nslots, sizeof *m->slots);
  return m;
}

void dub_metrics_free(struct dub_metrics *m)
{
  if(!m)
    return;
  for(size_t i = 0; i < m->n; i++) {
    struct family *f = m->families[i];
    for(size_t j = 0; j < f->n; j++) {
      free(f->series[j]->labels);
      free(f->series[j]);
    }
    free(f->series);
    free(f->name);
    free(f->help);
    free(f);
  }
  free(m->families);
  free(m->slots);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

static uint64_t hash_key(const char *name, const char *labels)
{
  uint64_t h = 1469598103934665603ULL;
  for(const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 1099511628211ULL;
  h = (h ^ 0xffu) * 1099511628211ULL;
  for(const unsigned char *p = (const unsigned char *)labels; *p; p++)
    h = (h ^ *p) * 1099511628211ULL;
  return h;
}

static bool valid_name(const char *name)
{
  if(!name || !*name)
    return false;
  for(const char *p = name; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (p != name && c >= '0' && c <= '9');
    if(!ok)
      return false;
  }
  return true;
}

static bool has_le_label(const char *labels)
{
  return strncmp(labels, "le=", 3) == 0 || strstr(labels, ",le=") != NULL;
}

static void grow_slots(struct dub_metrics *m)
{
  size_t nslots = m->nslots * 2;
  struct series **slots = dub_xcalloc(nslots, sizeof *slots);
  for(size_t i = 0; i < m->nslots; i++) {
    struct series *s = m->slots[i];
    while(s) {
      struct series *next = s->next;
      size_t at = (size_t)(s->hash & (nslots - 1));
      s->next = slots[at];
      slots[at] = s;
      s = next;
    }
  }
  free(m->slots);
  m->slots = slots;
  m->nslots = nslots;
}

static struct family *find_family(struct dub_metrics *m, const char *name)
{
  for(size_t i = 0; i < m->n; i++) {
    if(strcmp(m->families[i]->name, name) == 0)
      return m->families[i];
  }
  return NULL;
}

/* Finds or creates the series; NULL when the name or labels are unusable or the name
 * has another type. Called with the lock held. */
static struct series *lookup(struct dub_metrics *m, enum kind kind, const char *name,
                             const char *help, const char *labels)
{
  uint64_t hash = hash_key(name, labels);
  for(struct series *s = m->slots[hash & (m->nslots - 1)]; s; s = s->next) {
    if(s->hash == hash && strcmp(s->family->name, name) == 0 &&
       strcmp(s->labels, labels) == 0)
      return s->family->kind == kind ? s : NULL;
  }

  struct family *f = find_family(m, name);
  if(f && f->kind != kind)
    return NULL;
  if(kind == KIND_HISTOGRAM && has_le_label(labels))
    return NULL;
  if(!f) {
    if(!valid_name(name))
      return NULL;
    f = dub_xcalloc(1, sizeof *f);
    f->name = dub_xstrdup(name);
    f->help = dub_xstrdup(help ? help : "");
    f->kind = kind;
    if(m->n == m->cap) {
      m->cap = m->cap ? m->cap * 2 : 16;
      m->families = dub_xrealloc(m->families, m->cap * sizeof *m->families);
    }
    m->families[m->n++] = f;
  }

  struct series *s = dub_xcalloc(1, sizeof *s);
  s->family = f;
  s->labels = dub_xstrdup(labels);
  s->hash = hash;
  if(f->n == f->cap) {
    f->cap = f->cap ? f->cap * 2 : 8;
    f->series = dub_xrealloc(f->series, f->cap * sizeof *f->series);
  }
  f->series[f->n++] = s;
  if(++m->nseries > m->nslots)
    grow_slots(m);
  size_t at = (size_t)(hash & (m->nslots - 1));
  s->next = m->slots[at];
  m->slots[at] = s;
  return s;
}

enum dub_err dub_metrics_counter_add(struct dub_metrics *m, const char *name,
                                     const char *help, const char *labels, double v)
{
  if(!m || !name || isnan(v) || v < 0)
    return DUB_ERR_INVALID;
  enum dub_err rc = DUB_OK;
  pthread_mutex_lock(&m->lock);
  struct series *s = lookup(m, KIND_COUNTER, name, help, labels ? labels : "");
  pthread_mutex_unlock(&m->lock);
  if(s)
    add_double(&s->value, v);
  else
    rc = DUB_ERR_INVALID;
  return rc;
}

static enum dub_err gauge_update(struct dub_metrics *m, const char *name,
                                 const char *help, const char *labels, double v, bool add)
{
  if(!m || !name)
    return DUB_ERR_INVALID;
  enum dub_err rc = DUB_OK;
  pthread_mutex_lock(&m->lock);
  struct series *s = lookup(m, KIND_GAUGE, name, help, labels ? labels : "");
  pthread_mutex_unlock(&m->lock);
  if(!s)
    rc = DUB_ERR_INVALID;
  else if(add)
    add_double(&s->value, v);
  else
    atomic_store_explicit(&s->value, to_bits(v), memory_order_relaxed);
  return rc;
}

enum dub_err dub_metrics_gauge_set(struct dub_metrics *m, const char *name,
                                   const char *help, const char *labels, double v)
{
  return gauge_update(m, name, help, labels, v, false);
}

enum dub_err dub_metrics_gauge_add(struct dub_metrics *m, const char *name,
                                   const char *help, const char *labels, double v)
{
  return gauge_update(m, name, help, labels, v, true);
}

enum dub_err dub_metrics_histogram_observe(struct dub_metrics *m, const char *name,
                                           const char *help, const char *labels,
                                           double seconds)
{
  if(!m || !name || isnan(seconds))
    return DUB_ERR_INVALID;
  enum dub_err rc = DUB_OK;
  pthread_mutex_lock(&m->lock);
  struct series *s = lookup(m, KIND_HISTOGRAM, name, help, labels ? labels : "");
  pthread_mutex_unlock(&m->lock);
  if(s)
    observe(s, seconds);
  else
    rc = DUB_ERR_INVALID;
  return rc;
}

static enum dub_err get_series(struct dub_metrics *m, enum kind kind, const char *name,
                               const char *help, const char *labels,
                               struct dub_metrics_series **out)
{
  *out = NULL;
  if(!m || !name)
    return DUB_ERR_INVALID;
  pthread_mutex_lock(&m->lock);
  struct series *s = lookup(m, kind, name, help, labels ? labels : "");
  pthread_mutex_unlock(&m->lock);
  if(!s)
    return DUB_ERR_INVALID;
  *out = (struct dub_metrics_series *)s;
  return DUB_OK;
}

enum dub_err dub_metrics_counter_series(struct dub_metrics *m, const char *name,
                                        const char *help, const char *labels,
                                        struct dub_metrics_series **out)
{
  return get_series(m, KIND_COUNTER, name, help, labels, out);
}

enum dub_err dub_metrics_histogram_series(struct dub_metrics *m, const char *name,
                                          const char *help, const char *labels,
                                          struct dub_metrics_series **out)
{
  return get_series(m, KIND_HISTOGRAM, name, help, labels, out);
}

void dub_metrics_series_add(struct dub_metrics_series *s, double v)
{
  if(s && !isnan(v) && v >= 0 && s->s.family->kind == KIND_COUNTER)
    add_double(&s->s.value, v);
}

void dub_metrics_series_observe(struct dub_metrics_series *s, double seconds)
{
  if(s && !isnan(seconds) && s->s.family->kind == KIND_HISTOGRAM)
    observe(&s->s, seconds);
}

/* Shortest "%g" form that reads back as the same double; +Inf, -Inf and NaN as
 * Prometheus spells them. */
static void format_value(double v, char out[32])
{
  if(isnan(v)) {
    strcpy(out, "NaN");
    return;
  }
  if(isinf(v)) {
    strcpy(out, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  for(int prec = 15; prec <= 17; prec++) {
    snprintf(out, 32, "%.*g", prec, v);
    if(strtod(out, NULL) == v)
      return;
  }
}

static void append_escaped_help(struct dub_buf *buf, const char *help)
{
  for(const char *p = help; *p; p++) {
    if(*p == '\\')
      dub_buf_append(buf, "\\\\", 2);
    else if(*p == '\n')
      dub_buf_append(buf, "\\n", 2);
    else
      dub_buf_append(buf, p, 1);
  }
}

static void render_histogram(struct dub_buf *buf, const struct family *f,
                             struct series *s)
{
  const char *sep = s->labels[0] ? "," : "";
  char num[32];
  uint64_t cumulative = 0;
  for(size_t b = 0; b < NBOUNDS; b++) {
    cumulative += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
    format_value(bounds[b], num);
    dub_buf_appendf(buf, "%s_bucket{%s%sle=\"%s\"} %llu\n", f->name, s->labels, sep, num,
                    (unsigned long long)cumulative);
  }
  /* Read after the buckets; an observation under way may be in a bucket already. */
  uint64_t count = atomic_load_explicit(&s->count, memory_order_relaxed);
  if(count < cumulative)
    count = cumulative;
  dub_buf_appendf(buf, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, sep,
                  (unsigned long long)count);
  format_value(load_double(&s->sum), num);
  if(s->labels[0]) {
    dub_buf_appendf(buf, "%s_sum{%s} %s\n", f->name, s->labels, num);
    dub_buf_appendf(buf, "%s_count{%s} %llu\n", f->name, s->labels,
                    (unsigned long long)count);
  } else {
    dub_buf_appendf(buf, "%s_sum %s\n", f->name, num);
    dub_buf_appendf(buf, "%s_count %llu\n", f->name, (unsigned long long)count);
  }
}

char *dub_metrics_render(struct dub_metrics *m)
{
  struct dub_buf buf = DUB_BUF_INIT;
  if(!m)
    return dub_buf_detach(&buf);
  pthread_mutex_lock(&m->lock);
  for(size_t i = 0; i < m->n; i++) {
    const struct family *f = m->families[i];
    dub_buf_appendf(&buf, "# HELP %s ", f->name);
    append_escaped_help(&buf, f->help);
    dub_buf_appendf(&buf, "\n# TYPE %s %s\n", f->name, kind_names[f->kind]);
    for(size_t j = 0; j < f->n; j++) {
      struct series *s = f->series[j];
      char num[32];
      if(f->kind == KIND_HISTOGRAM) {
        render_histogram(&buf, f, s);
        continue;
      }
      format_value(load_double(&s->value), num);
      if(s->labels[0])
        dub_buf_appendf(&buf, "%s{%s} %s\n", f->name, s->labels, num);
      else
        dub_buf_appendf(&buf, "%s %s\n", f->name, num);
    }
  }
  pthread_mutex_unlock(&m->lock);
  return dub_buf_detach(&buf);
}

char *dub_metrics_label_escape(const char *value)
{
  struct dub_buf buf = DUB_BUF_INIT;
  for(const char *p = value ? value : ""; *p; p++) {
    if(*p == '\\')
      dub_buf_append(&buf, "\\\\", 2);
    else if(*p == '"')
      dub_buf_append(&buf, "\\\"", 2);
    else if(*p == '\n')
      dub_buf_append(&buf, "\\n", 2);
    else
      dub_buf_append(&buf, p, 1);
  }
  return dub_buf_detach(&buf);
}
