/* test_kannel.c - the Kannel client against a local HTTP server (libmicrohttpd) that
 * answers as smsbox's sendsms does: requests in flight at once up to the limit and no
 * further (and one at a time when the stream says to wait), each answer mapped to its
 * own result, timeouts after the request left as unknown, a refused connection as
 * temporary, and the query Kannel is given. */
#include "provider.h"

#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

struct server {
  struct MHD_Daemon *daemon;
  unsigned port;
  atomic_int in_flight, most, requests;
  pthread_mutex_t lock;
  char text[256], coding[8], charset[16], dlr[512];
};

static void pause_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void copy_arg(struct MHD_Connection *c, const char *name, char *out, size_t size)
{
  const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
  snprintf(out, size, "%s", v ? v : "");
}

/* 'to' says how to answer: "slow" 202 after 150 ms, "hang" 202 after 1 s, else the
 * number is the status. */
static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
  (void)url, (void)method, (void)version, (void)upload, (void)upload_size, (void)con_cls;
  struct server *sv = cls;
  const char *to = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
  int now = atomic_fetch_add(&sv->in_flight, 1) + 1, most = atomic_load(&sv->most);
  while(now > most && !atomic_compare_exchange_weak(&sv->most, &most, now))
    ;
  atomic_fetch_add(&sv->requests, 1);
  pthread_mutex_lock(&sv->lock);
  copy_arg(c, "text", sv->text, sizeof sv->text);
  copy_arg(c, "coding", sv->coding, sizeof sv->coding);
  copy_arg(c, "charset", sv->charset, sizeof sv->charset);
  copy_arg(c, "dlr-url", sv->dlr, sizeof sv->dlr);
  pthread_mutex_unlock(&sv->lock);
  unsigned status = 202;
  if(to && strcmp(to, "slow") == 0)
    pause_ms(150);
  else if(to && strcmp(to, "hang") == 0)
    pause_ms(1000);
  else if(to)
    status = (unsigned)strtoul(to, NULL, 10);
  atomic_fetch_sub(&sv->in_flight, 1);
  static const char ok[] = "0: Accepted for delivery\nsecond line";
  static const char refused[] = "Sending failed.";
  const char *body = status == 202 ? ok : refused;
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static int setup(void **state)
{
  struct server *sv = calloc(1, sizeof *sv);
  pthread_mutex_init(&sv->lock, NULL);
  sv->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
                                    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                                0, NULL, NULL, answer, sv, MHD_OPTION_END);
  if(!sv->daemon)
    return -1;
  sv->port = MHD_get_daemon_info(sv->daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
  *state = sv;
  return 0;
}

static int teardown(void **state)
{
  struct server *sv = *state;
  MHD_stop_daemon(sv->daemon);
  pthread_mutex_destroy(&sv->lock);
  free(sv);
  return 0;
}

/* Waits out requests an earlier test left behind (a client that timed out does not stop
 * the server's handler), so that the count of those in flight is this test's own. */
static void quiet(struct server *sv)
{
  for(int i = 0; i < 300 && atomic_load(&sv->in_flight) > 0; i++)
    pause_ms(10);
  assert_int_equal(atomic_load(&sv->in_flight), 0);
  atomic_store(&sv->most, 0);
}

static struct notification_kannel *client(struct server *sv, long timeout_ms,
                                          size_t parallel)
{
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/cgi-bin/sendsms?username=u&password=p",
           sv->port);
  struct notification_kannel *k = NULL;
  char *why = NULL;
  assert_int_equal(notification_kannel_new(url, timeout_ms, parallel, &k, &why), DUB_OK);
  assert_null(why);
  return k;
}

static void send_all(struct notification_kannel *k, struct notification_sms *msgs,
                     size_t n)
{
  notification_kannel_send_many(k, msgs, n);
  for(size_t i = 0; i < n; i++)
    assert_non_null(msgs[i].detail);
}

static void release(struct notification_sms *msgs, size_t n)
{
  for(size_t i = 0; i < n; i++)
    free(msgs[i].detail);
}

static void test_parallel_up_to_the_limit(void **state)
{
  struct server *sv = *state;
  size_t widths[] = {1, 4};
  for(size_t w = 0; w < 2; w++) {
    struct notification_kannel *k = client(sv, 5000, widths[w]);
    struct notification_sms msgs[10];
    for(size_t i = 0; i < 10; i++)
      msgs[i] =
          (struct notification_sms){.to = "slow", .text = "t", .dlr_url = "http://d"};
    quiet(sv);
    atomic_store(&sv->requests, 0);
    send_all(k, msgs, 10);
    for(size_t i = 0; i < 10; i++) {
      assert_int_equal(msgs[i].result, NOTIFY_SENT);
      /* The first line of the answer only. */
      assert_string_equal(msgs[i].detail, "HTTP 202 0: Accepted for delivery");
      assert_true(msgs[i].seconds > 0.1);
    }
    assert_int_equal(atomic_load(&sv->requests), 10);
    assert_int_equal(atomic_load(&sv->most), (int)widths[w]);
    release(msgs, 10);
    notification_kannel_free(k);
  }
}

static void test_each_answer_its_own_result(void **state)
{
  struct server *sv = *state;
  struct notification_kannel *k = client(sv, 5000, 4);
  const char *to[] = {"202", "503", "403", "401", "400", "200", "500"};
  enum notification_result want[] = {NOTIFY_SENT,      NOTIFY_TEMPORARY, NOTIFY_TECHNICAL,
                                     NOTIFY_TECHNICAL, NOTIFY_PERMANENT, NOTIFY_SENT,
                                     NOTIFY_TEMPORARY};
  struct notification_sms msgs[7];
  for(size_t i = 0; i < 7; i++)
    msgs[i] = (struct notification_sms){.to = to[i], .text = "t", .dlr_url = "http://d"};
  send_all(k, msgs, 7);
  for(size_t i = 0; i < 7; i++) {
    assert_int_equal(msgs[i].result, want[i]);
    char head[16];
    snprintf(head, sizeof head, "HTTP %s ", to[i]);
    assert_memory_equal(msgs[i].detail, head, strlen(head));
  }
  release(msgs, 7);
  /* The single-message form gives the same. */
  char *detail = NULL;
  assert_int_equal(notification_kannel_send(k, "503", "t", "http://d", &detail),
                   NOTIFY_TEMPORARY);
  assert_string_equal(detail, "HTTP 503 Sending failed.");
  free(detail);
  notification_kannel_free(k);
}

static void test_query_is_what_kannel_expects(void **state)
{
  struct server *sv = *state;
  struct notification_kannel *k = client(sv, 5000, 2);
  const char *text = "【督办】督办事项DB01请于2026年10月12日前签收 & 办结?";
  char *detail = NULL;
  assert_int_equal(
      notification_kannel_send(k, "202", text, "http://h/v1/dlr?k=K&t=T&m=M", &detail),
      NOTIFY_SENT);
  free(detail);
  assert_string_equal(sv->text, text);
  assert_string_equal(sv->coding, "2");
  assert_string_equal(sv->charset, "UTF-8");
  assert_string_equal(sv->dlr, "http://h/v1/dlr?k=K&t=T&m=M&s=%d&at=%T");
  notification_kannel_free(k);
}

static void test_timeout_after_the_request_left_is_unknown(void **state)
{
  struct server *sv = *state;
  struct notification_kannel *k = client(sv, 300, 4);
  struct notification_sms msgs[3] = {
      {.to = "hang", .text = "t", .dlr_url = "http://d"},
      {.to = "202", .text = "t", .dlr_url = "http://d"},
      {.to = "hang", .text = "t", .dlr_url = "http://d"},
  };
  send_all(k, msgs, 3);
  assert_int_equal(msgs[0].result, NOTIFY_UNKNOWN);
  assert_int_equal(msgs[1].result, NOTIFY_SENT);
  assert_int_equal(msgs[2].result, NOTIFY_UNKNOWN);
  assert_non_null(strstr(msgs[0].detail, "imeout"));
  release(msgs, 3);
  notification_kannel_free(k);
}

static void test_refused_connection_is_temporary(void **state)
{
  (void)state;
  struct notification_kannel *k = NULL;
  char *why = NULL;
  /* Port 1 on loopback: nothing listens there. */
  assert_int_equal(
      notification_kannel_new("http://127.0.0.1:1/cgi-bin/sendsms?username=u", 1000, 3,
                              &k, &why),
      DUB_OK);
  struct notification_sms msgs[5];
  for(size_t i = 0; i < 5; i++)
    msgs[i] = (struct notification_sms){.to = "202", .text = "t", .dlr_url = "http://d"};
  send_all(k, msgs, 5);
  for(size_t i = 0; i < 5; i++)
    assert_int_equal(msgs[i].result, NOTIFY_TEMPORARY);
  release(msgs, 5);
  notification_kannel_free(k);
  assert_int_equal(notification_kannel_new("ftp://127.0.0.1/", 1000, 1, &k, &why),
                   DUB_ERR_CONFIG);
  assert_string_equal(why, "DUBAN_SMS_URL: expected an http:// sendsms URL");
  free(why);
}

/* A stream of 'n' slow messages; one at a time when 'serial'. */
struct counting_stream {
  size_t n, given, done, most_in_flight_told;
  bool serial;
  int sent;
};

static enum notification_sms_next counting_next(void *ctx, struct notification_sms *msg,
                                                size_t in_flight)
{
  struct counting_stream *c = ctx;
  if(in_flight > c->most_in_flight_told)
    c->most_in_flight_told = in_flight;
  if(c->given == c->n)
    return NOTIFY_SMS_END;
  if(c->serial && in_flight)
    return NOTIFY_SMS_WAIT;
  *msg = (struct notification_sms){.to = "slow", .text = "t", .dlr_url = "http://d"};
  c->given++;
  return NOTIFY_SMS_READY;
}

static void counting_done(void *ctx, struct notification_sms *msg)
{
  struct counting_stream *c = ctx;
  c->done++;
  c->sent += msg->result == NOTIFY_SENT;
  free(msg->detail);
}

static void test_stream_keeps_the_slots_busy_or_waits(void **state)
{
  struct server *sv = *state;
  struct notification_kannel *k = client(sv, 5000, 3);
  for(int serial = 0; serial < 2; serial++) {
    struct counting_stream c = {.n = 9, .serial = serial};
    const struct notification_sms_stream st = {counting_next, counting_done, &c};
    quiet(sv);
    notification_kannel_send_stream(k, &st);
    assert_int_equal(c.given, 9);
    assert_int_equal(c.done, 9);
    assert_int_equal(c.sent, 9);
    assert_int_equal(atomic_load(&sv->most), serial ? 1 : 3);
    assert_true(c.most_in_flight_told <= 3);
  }
  notification_kannel_free(k);
}

/* WAIT with nothing in flight would wait forever: it ends the stream. */
static enum notification_sms_next once_then_wait(void *ctx, struct notification_sms *msg,
                                                 size_t in_flight)
{
  struct counting_stream *c = ctx;
  (void)in_flight;
  if(c->given)
    return NOTIFY_SMS_WAIT;
  *msg = (struct notification_sms){.to = "202", .text = "t", .dlr_url = "http://d"};
  c->given++;
  return NOTIFY_SMS_READY;
}

static void test_wait_with_nothing_in_flight_ends(void **state)
{
  struct server *sv = *state;
  struct notification_kannel *k = client(sv, 5000, 2);
  struct counting_stream c = {0};
  const struct notification_sms_stream st = {once_then_wait, counting_done, &c};
  notification_kannel_send_stream(k, &st);
  assert_int_equal(c.given, 1);
  assert_int_equal(c.done, 1);
  assert_int_equal(c.sent, 1);
  notification_kannel_free(k);
}

static void test_nothing_to_send(void **state)
{
  struct server *sv = *state;
  struct notification_kannel *k = client(sv, 1000, 4);
  atomic_store(&sv->requests, 0);
  notification_kannel_send_many(k, NULL, 0);
  assert_int_equal(atomic_load(&sv->requests), 0);
  notification_kannel_free(k);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parallel_up_to_the_limit),
      cmocka_unit_test(test_each_answer_its_own_result),
      cmocka_unit_test(test_query_is_what_kannel_expects),
      cmocka_unit_test(test_timeout_after_the_request_left_is_unknown),
      cmocka_unit_test(test_refused_connection_is_temporary),
      cmocka_unit_test(test_stream_keeps_the_slots_busy_or_waits),
      cmocka_unit_test(test_wait_with_nothing_in_flight_ends),
      cmocka_unit_test(test_nothing_to_send),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
