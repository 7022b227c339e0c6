/* bench_produce.c - writes records with headers of their own, which kcat cannot (its -H
 * sets the same headers on every record of a run), for tests/bench/rebuild.py.
 *
 *   bench_produce BROKERS TOPIC < lines
 *
 * Each line is KEY TAB HEADERS TAB VALUE, HEADERS being name=value pairs separated by
 * '|' (or empty). Records are partitioned as the services write them (murmur2 of the
 * key, librdkafka's murmur2_random) and the program exits once every one is
 * acknowledged. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
  (void)rk;
  (void)opaque;
  if(m->err && !failed++)
    fprintf(stderr, "bench_produce: %s\n", rd_kafka_err2str(m->err));
}

int main(int argc, char **argv)
{
  if(argc != 3) {
    fprintf(stderr, "usage: bench_produce BROKERS TOPIC < lines\n");
    return 2;
  }
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *settings[][2] = {{"bootstrap.servers", argv[1]},
                               {"partitioner", "murmur2_random"},
                               {"linger.ms", "50"},
                               {"queue.buffering.max.messages", "1000000"},
                               {"enable.idempotence", "true"}};
  for(size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
    if(rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, sizeof err)) {
      fprintf(stderr, "bench_produce: %s\n", err);
      return 1;
    }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if(!rk) {
    fprintf(stderr, "bench_produce: %s\n", err);
    return 1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  long n = 0;
  while((len = getline(&line, &cap, stdin)) > 0) {
    if(line[len - 1] == '\n')
      line[--len] = '\0';
    char *key = line, *hdrs = strchr(key, '\t'),
         *value = hdrs ? strchr(hdrs + 1, '\t') : NULL;
    if(!value) {
      fprintf(stderr, "bench_produce: line %ld is not KEY TAB HEADERS TAB VALUE\n",
              n + 1);
      return 1;
    }
    *hdrs++ = '\0';
    *value++ = '\0';
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    for(char *save = NULL, *pair = strtok_r(hdrs, "|", &save); pair;
        pair = strtok_r(NULL, "|", &save)) {
      char *eq = strchr(pair, '=');
      if(eq)
        rd_kafka_header_add(h, pair, eq - pair, eq + 1, -1);
    }
    rd_kafka_resp_err_t e;
    while((e = rd_kafka_producev(
               rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_KEY(key, strlen(key)),
               RD_KAFKA_V_VALUE(value, strlen(value)),
               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
               RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk, 10);
    if(e) {
      fprintf(stderr, "bench_produce: %s\n", rd_kafka_err2str(e));
      rd_kafka_headers_destroy(h);
      return 1;
    }
    rd_kafka_poll(rk, 0);
    n++;
  }
  free(line);
  if(rd_kafka_flush(rk, 600000)) {
    fprintf(stderr, "bench_produce: not every record was acknowledged\n");
    return 1;
  }
  rd_kafka_destroy(rk);
  if(failed)
    return 1;
  fprintf(stderr, "bench_produce: %ld records to %s\n", n, argv[2]);
  return 0;
}
