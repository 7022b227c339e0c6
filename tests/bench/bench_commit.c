/* bench_commit.c - commits the end of every partition of the topics named for a
 * consumer group, so that a service started afterwards consumes nothing old and only its
 * rebuild reads the topics (tests/bench/rebuild.py).
 *
 *   bench_commit BROKERS GROUP TOPIC...
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
  if(argc < 4) {
    fprintf(stderr, "usage: bench_commit BROKERS GROUP TOPIC...\n");
    return 2;
  }
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if(rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err) ||
     rd_kafka_conf_set(conf, "group.id", argv[2], err, sizeof err) ||
     rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err)) {
    fprintf(stderr, "bench_commit: %s\n", err);
    return 1;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if(!rk) {
    fprintf(stderr, "bench_commit: %s\n", err);
    return 1;
  }
  rd_kafka_topic_partition_list_t *ends = rd_kafka_topic_partition_list_new(64);
  for(int t = 3; t < argc; t++) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[t], NULL);
    if(rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1 ||
       md->topics[0].err) {
      fprintf(stderr, "bench_commit: no metadata for %s\n", argv[t]);
      return 1;
    }
    for(int p = 0; p < md->topics[0].partition_cnt; p++) {
      int64_t low = 0, high = 0;
      if(rd_kafka_query_watermark_offsets(rk, argv[t], p, &low, &high, 10000)) {
        fprintf(stderr, "bench_commit: no watermarks for %s [%d]\n", argv[t], p);
        return 1;
      }
      rd_kafka_topic_partition_list_add(ends, argv[t], p)->offset = high;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
  }
  rd_kafka_resp_err_t e = rd_kafka_commit(rk, ends, 0);
  if(e) {
    fprintf(stderr, "bench_commit: commit for %s: %s\n", argv[2], rd_kafka_err2str(e));
    return 1;
  }
  rd_kafka_topic_partition_list_destroy(ends);
  rd_kafka_destroy(rk);
  return 0;
}
