/* test_runtime.c - the service runtime: environment, start-up errors, readiness, the
 * consume loop and a requested stop, on librdkafka's mock cluster. */
#include "runtime/runtime.h"

#include "core/signals.h"
#include "core/time.h"
#include "kafka/kafka.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static void clear_env(void)
{
  const char *vars[] = {"DUBAN_KAFKA_BROKERS", "DUBAN_REDIS_URL", "DUBAN_CONFIG_DIR",
                        "DUBAN_SCHEMA_DIR",    "DUBAN_BIND",      "DUBAN_TESTSVC_PORT",
                        "DUBAN_HTTP_THREADS",  "DUBAN_DRAIN_MS",  "DUBAN_LOG_LEVEL"};
  for(size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
}

static void test_env_defaults_and_errors(void **state)
{
  (void)state;
  struct dub_runtime_spec spec = {.service = "testsvc", .default_port = 8089};
  struct dub_runtime_env env;
  char *why = NULL;
  clear_env();
  assert_int_equal(dub_runtime_env_load(&spec, &env, &why), DUB_OK);
  assert_string_equal(env.brokers, "127.0.0.1:9092");
  assert_string_equal(env.redis_url, "redis://127.0.0.1:6379/0");
  assert_string_equal(env.config_dir, "deploy/config");
  assert_int_equal(env.port, 8089);
  dub_runtime_env_release(&env);

  /* The port variable is named after the service. */
  setenv("DUBAN_TESTSVC_PORT", "99999", 1);
  assert_int_equal(dub_runtime_env_load(&spec, &env, &why), DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "DUBAN_TESTSVC_PORT"));
  free(why);
  clear_env();
  setenv("DUBAN_LOG_LEVEL", "chatty", 1);
  assert_int_equal(dub_runtime_env_load(&spec, &env, &why), DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "DUBAN_LOG_LEVEL"));
  free(why);
  clear_env();
}

static void test_open_refuses_missing_config(void **state)
{
  (void)state;
  struct dub_runtime_spec spec = {.service = "testsvc", .default_port = 8089};
  struct dub_runtime_env env;
  struct dub_runtime *rt = NULL;
  char *why = NULL;
  clear_env();
  setenv("DUBAN_CONFIG_DIR", "/nonexistent/duban-config", 1);
  assert_int_equal(dub_runtime_env_load(&spec, &env, &why), DUB_OK);
  assert_int_not_equal(dub_runtime_open(&spec, &env, &rt, &why), DUB_OK);
  assert_null(rt);
  assert_non_null(strstr(why, "/nonexistent/duban-config/clients.json"));
  free(why);
  dub_runtime_env_release(&env);
  clear_env();
}

/* What the consume loop saw; written by the handler on the run thread. The handler
 * holds the loop (as a service rebuilding its state from a topic does) until the test
 * sets 'release'. */
struct seen {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int messages;
  bool release;
  char last[64];
};

static enum dub_err handler(void *ctx, const struct dub_kafka_msg *msg, char **why)
{
  struct seen *s = ctx;
  (void)why;
  pthread_mutex_lock(&s->lock);
  s->messages++;
  snprintf(s->last, sizeof s->last, "%.*s", (int)msg->value_len,
           (const char *)msg->value);
  while(!s->release)
    pthread_cond_wait(&s->cond, &s->lock);
  pthread_mutex_unlock(&s->lock);
  return DUB_OK;
}

static int messages_seen(struct seen *s)
{
  pthread_mutex_lock(&s->lock);
  int n = s->messages;
  pthread_mutex_unlock(&s->lock);
  return n;
}

static int free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
  strncat(userdata, p, size * n < 1000 ? size * n : 1000);
  return size * n;
}

static long http_get(int port, const char *path, char body[2048])
{
  char url[128];
  long code = 0;
  body[0] = '\0';
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  if(curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code;
}

static void *run_thread(void *arg)
{
  static int code;
  code = dub_runtime_run(arg);
  return &code;
}

static void test_run_consume_ready_and_stop(void **state)
{
  (void)state;
  char errstr[256], body[2048];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_t *mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  assert_non_null(mock_rk);
  rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(mock_rk, 1);
  assert_int_equal(rd_kafka_mock_topic_create(mock, "duban.cases", 2, 1), 0);
  assert_int_equal(rd_kafka_mock_topic_create(mock, "duban.dlq", 1, 1), 0);

  struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER,
                      .cond = PTHREAD_COND_INITIALIZER};
  const char *const topics[] = {"duban.cases"};
  const struct dub_runtime_spec spec = {.service = "testsvc",
                                        .default_port = 8089,
                                        .topics = topics,
                                        .ntopics = 1,
                                        .handler = handler,
                                        .ctx = &seen};
  int port = free_port();
  char port_text[16];
  snprintf(port_text, sizeof port_text, "%d", port);
  clear_env();
  setenv("DUBAN_KAFKA_BROKERS", rd_kafka_mock_cluster_bootstraps(mock), 1);
  setenv("DUBAN_REDIS_URL", "redis://127.0.0.1:1/0", 1); /* nothing listens there */
  setenv("DUBAN_TESTSVC_PORT", port_text, 1);
  setenv("DUBAN_BIND", "127.0.0.1", 1);
  setenv("DUBAN_LOG_LEVEL", "error", 1);

  struct dub_runtime_env env;
  struct dub_runtime *rt = NULL;
  char *why = NULL;
  assert_int_equal(dub_runtime_env_load(&spec, &env, &why), DUB_OK);
  enum dub_err rc = dub_runtime_open(&spec, &env, &rt, &why);
  if(rc)
    fail_msg("%s", why);
  pthread_t t;
  pthread_create(&t, NULL, run_thread, rt);

  /* Health answers at once; readiness names Redis, which does not answer. */
  int64_t until = dub_time_mono_ms() + 10000;
  while(http_get(port, "/healthz", body) != 200 && dub_time_mono_ms() < until)
    usleep(20000);
  assert_int_equal(http_get(port, "/healthz", body), 200);
  assert_int_equal(http_get(port, "/readyz", body), 503);
  assert_non_null(strstr(body, "redis is not reachable"));
  assert_int_equal(http_get(port, "/v1/anything", body), 404);

  /* A message on the topic reaches the service's handler through the consume loop. */
  assert_int_equal(dub_kafka_produce_sync(dub_runtime_producer(rt), "duban.cases", "k", 1,
                                          "hello", 5, NULL, 0, 5000, NULL, NULL),
                   DUB_OK);
  until = dub_time_mono_ms() + 20000; /* the mock holds a group's first join for 3 s */
  while(messages_seen(&seen) == 0 && dub_time_mono_ms() < until)
    usleep(20000);
  assert_int_equal(messages_seen(&seen), 1);
  pthread_mutex_lock(&seen.lock);
  assert_string_equal(seen.last, "hello");
  pthread_mutex_unlock(&seen.lock);

  /* A SIGHUP while the handler holds the consume loop is applied all the same, within
   * a second: the running configuration is a new snapshot, the handler still busy. */
  struct dub_config *before = dub_runtime_config(rt);
  int64_t hup_at = dub_time_mono_ms();
  assert_int_equal(kill(getpid(), SIGHUP), 0);
  struct dub_config *after = dub_runtime_config(rt);
  while(after == before && dub_time_mono_ms() - hup_at < 1000) {
    dub_config_unref(after);
    usleep(10000);
    after = dub_runtime_config(rt);
  }
  assert_ptr_not_equal(after, before);
  pthread_mutex_lock(&seen.lock);
  assert_false(seen.release); /* still inside the handler: the reload did not wait */
  seen.release = true;
  pthread_cond_broadcast(&seen.cond);
  pthread_mutex_unlock(&seen.lock);
  dub_config_unref(after);
  dub_config_unref(before);

  /* A requested stop ends the loop promptly with exit code 0. */
  int64_t stop_at = dub_time_mono_ms();
  dub_signals_request_stop();
  int *code = NULL;
  pthread_join(t, (void **)&code);
  assert_int_equal(*code, 0);
  assert_true(dub_time_mono_ms() - stop_at < 2000);
  dub_runtime_close(rt);
  dub_runtime_env_release(&env);
  rd_kafka_mock_cluster_destroy(mock);
  rd_kafka_destroy(mock_rk);
  clear_env();
}

int main(void)
{
  dub_signals_install();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_env_defaults_and_errors),
      cmocka_unit_test(test_open_refuses_missing_config),
      cmocka_unit_test(test_run_consume_ready_and_stop),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
