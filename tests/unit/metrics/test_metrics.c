/* test_metrics.c - the metrics registry and its Prometheus text rendering. */
#include "metrics/metrics.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void assert_contains(const char *text, const char *needle)
{
  if(!strstr(text, needle))
    fail_msg("expected to find\n%s\nin\n%s", needle, text);
}

static void test_counter_format(void **state)
{
  (void)state;
  struct dub_metrics *m = dub_metrics_new();
  assert_int_equal(dub_metrics_counter_add(m, "jobs_total", "Jobs done.",
                                           "kind=\"a\",code=\"200\"", 1),
                   DUB_OK);
  assert_int_equal(
      dub_metrics_counter_add(m, "jobs_total", "ignored", "kind=\"a\",code=\"200\"", 2.5),
      DUB_OK);
  assert_int_equal(
      dub_metrics_counter_add(m, "jobs_total", NULL, "kind=\"b\",code=\"500\"", 1),
      DUB_OK);
  assert_int_equal(dub_metrics_counter_add(m, "plain_total", "No labels.", NULL, 7),
                   DUB_OK);
  char *text = dub_metrics_render(m);
  assert_string_equal(text, "# HELP jobs_total Jobs done.\n"
                            "# TYPE jobs_total counter\n"
                            "jobs_total{kind=\"a\",code=\"200\"} 3.5\n"
                            "jobs_total{kind=\"b\",code=\"500\"} 1\n"
                            "# HELP plain_total No labels.\n"
                            "# TYPE plain_total counter\n"
                            "plain_total 7\n");
  free(text);
  dub_metrics_free(m);
}

static void test_gauge(void **state)
{
  (void)state;
  struct dub_metrics *m = dub_metrics_new();
  assert_int_equal(dub_metrics_gauge_set(m, "queue_depth", "Depth.", "q=\"x\"", 10),
                   DUB_OK);
  assert_int_equal(dub_metrics_gauge_add(m, "queue_depth", "Depth.", "q=\"x\"", -12.25),
                   DUB_OK);
  assert_int_equal(dub_metrics_gauge_add(m, "queue_depth", "Depth.", "q=\"y\"", 0.1),
                   DUB_OK);
  char *text = dub_metrics_render(m);
  assert_contains(text, "# TYPE queue_depth gauge\n");
  assert_contains(text, "queue_depth{q=\"x\"} -2.25\n");
  assert_contains(text, "queue_depth{q=\"y\"} 0.1\n");
  free(text);
  dub_metrics_free(m);
}

static void test_histogram(void **state)
{
  (void)state;
  struct dub_metrics *m = dub_metrics_new();
  const double obs[] = {0.0003, 0.003, 0.7, 20, 0.0005};
  for(size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
    assert_int_equal(dub_metrics_histogram_observe(m, "lat_seconds", "Latency.",
                                                   "route=\"/x\"", obs[i]),
                     DUB_OK);
  assert_int_equal(dub_metrics_histogram_observe(m, "bare_seconds", "Bare.", NULL, 0.2),
                   DUB_OK);
  char *text = dub_metrics_render(m);
  assert_contains(text, "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n");
  /* Buckets are cumulative; an observation equal to a bound falls in that bucket. */
  assert_contains(text, "lat_seconds_bucket{route=\"/x\",le=\"0.0005\"} 2\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"0.001\"} 2\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"0.0025\"} 2\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"0.005\"} 3\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"0.01\"} 3\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"0.025\"} 3\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"0.05\"} 3\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"0.1\"} 3\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"0.25\"} 3\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"0.5\"} 3\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"1\"} 4\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"2.5\"} 4\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"5\"} 4\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"10\"} 4\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"+Inf\"} 5\n"
                        "lat_seconds_sum{route=\"/x\"} ");
  const char *sum = strstr(text, "lat_seconds_sum{route=\"/x\"} ");
  char *end = NULL;
  double v = strtod(sum + strlen("lat_seconds_sum{route=\"/x\"} "), &end);
  assert_true(v > 20.70379 && v < 20.70381);
  const char *count = "\nlat_seconds_count{route=\"/x\"} 5\n";
  assert_true(strncmp(end, count, strlen(count)) == 0);
  assert_contains(text, "bare_seconds_bucket{le=\"0.25\"} 1\n");
  assert_contains(text, "bare_seconds_bucket{le=\"+Inf\"} 1\n");
  assert_contains(text, "bare_seconds_sum 0.2\nbare_seconds_count 1\n");
  free(text);
  dub_metrics_free(m);
}

static void test_escaping(void **state)
{
  (void)state;
  char *e = dub_metrics_label_escape("a\\b\"c\nd");
  assert_string_equal(e, "a\\\\b\\\"c\\nd");
  struct dub_metrics *m = dub_metrics_new();
  char labels[128];
  snprintf(labels, sizeof labels, "path=\"%s\"", e);
  assert_int_equal(
      dub_metrics_counter_add(m, "odd_total", "Help with \\ and\nnewline.", labels, 1),
      DUB_OK);
  char *text = dub_metrics_render(m);
  assert_contains(text, "# HELP odd_total Help with \\\\ and\\nnewline.\n");
  assert_contains(text, "odd_total{path=\"a\\\\b\\\"c\\nd\"} 1\n");
  free(text);
  free(e);
  e = dub_metrics_label_escape("");
  assert_string_equal(e, "");
  free(e);
  dub_metrics_free(m);
}

static void test_invalid(void **state)
{
  (void)state;
  struct dub_metrics *m = dub_metrics_new();
  assert_int_equal(dub_metrics_counter_add(m, "x_total", "X.", NULL, -1),
                   DUB_ERR_INVALID);
  assert_int_equal(dub_metrics_counter_add(m, "9bad", "X.", NULL, 1), DUB_ERR_INVALID);
  assert_int_equal(dub_metrics_counter_add(m, "bad-name", "X.", NULL, 1),
                   DUB_ERR_INVALID);
  assert_int_equal(dub_metrics_counter_add(m, "", "X.", NULL, 1), DUB_ERR_INVALID);
  assert_int_equal(dub_metrics_counter_add(m, "x_total", "X.", NULL, 1), DUB_OK);
  assert_int_equal(dub_metrics_gauge_set(m, "x_total", "X.", NULL, 1), DUB_ERR_INVALID);
  assert_int_equal(dub_metrics_gauge_set(m, "x_total", "X.", "a=\"1\"", 1),
                   DUB_ERR_INVALID);
  assert_int_equal(dub_metrics_histogram_observe(m, "h_seconds", "H.", "le=\"1\"", 1),
                   DUB_ERR_INVALID);
  assert_int_equal(
      dub_metrics_histogram_observe(m, "h_seconds", "H.", "a=\"1\",le=\"1\"", 1),
      DUB_ERR_INVALID);
  char *text = dub_metrics_render(m);
  assert_string_equal(text, "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n");
  free(text);
  dub_metrics_free(m);
  dub_metrics_free(NULL);
  text = dub_metrics_render(NULL);
  assert_string_equal(text, "");
  free(text);
}

static void test_many_series(void **state)
{
  (void)state;
  struct dub_metrics *m = dub_metrics_new();
  char labels[64];
  for(int round = 0; round < 2; round++) {
    for(int i = 0; i < 2000; i++) {
      snprintf(labels, sizeof labels, "id=\"%d\"", i);
      assert_int_equal(dub_metrics_counter_add(m, "many_total", "Many.", labels, 1),
                       DUB_OK);
    }
  }
  char *text = dub_metrics_render(m);
  assert_contains(text, "many_total{id=\"0\"} 2\n");
  assert_contains(text, "many_total{id=\"1999\"} 2\n");
  /* First-use order: id 10 comes after id 9. */
  assert_true(strstr(text, "{id=\"9\"}") < strstr(text, "{id=\"10\"}"));
  free(text);
  dub_metrics_free(m);
}

#define THREADS 4
#define PER_THREAD 50000

static void *hammer(void *arg)
{
  struct dub_metrics *m = arg;
  for(int i = 0; i < PER_THREAD; i++) {
    dub_metrics_counter_add(m, "hits_total", "Hits.", i % 2 ? "p=\"odd\"" : "p=\"even\"",
                            1);
    dub_metrics_histogram_observe(m, "t_seconds", "T.", NULL, 0.001);
  }
  return NULL;
}

static void test_threads(void **state)
{
  (void)state;
  struct dub_metrics *m = dub_metrics_new();
  pthread_t t[THREADS];
  for(int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, hammer, m), 0);
  for(int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  char *text = dub_metrics_render(m);
  char want[128];
  snprintf(want, sizeof want, "hits_total{p=\"even\"} %d\n", THREADS * PER_THREAD / 2);
  assert_contains(text, want);
  snprintf(want, sizeof want, "t_seconds_count %d\n", THREADS * PER_THREAD);
  assert_contains(text, want);
  snprintf(want, sizeof want, "t_seconds_bucket{le=\"0.001\"} %d\n",
           THREADS * PER_THREAD);
  assert_contains(text, want);
  free(text);
  dub_metrics_free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_format), cmocka_unit_test(test_gauge),
      cmocka_unit_test(test_histogram),      cmocka_unit_test(test_escaping),
      cmocka_unit_test(test_invalid),        cmocka_unit_test(test_many_series),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
