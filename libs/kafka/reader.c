/* reader.c - every partition of a topic, read without a consumer group. */
#include "kafka/internal.h"
#include "kafka/kafka.h"

#include "core/alloc.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

struct dub_kafka_reader {
  rd_kafka_t *rk;
  char *topic;
  int32_t npartitions;
  int64_t *position; /* next offset per partition */
  int64_t *end;      /* per partition: the high watermark at the start; -1 unknown */
  int64_t *low;      /* and the low one */
  struct {           /* what the last dub_kafka_reader_poll_batch() handed out */
    rd_kafka_message_t **rkms;
    struct dub_kafka_msg *msgs;
    struct dub_kafka_header **hdrs;
    size_t *caps;
    size_t count, cap;
  } batch;
};

static void batch_release(struct dub_kafka_reader *r)
{
  for(size_t i = 0; i < r->batch.count; i++)
    rd_kafka_message_destroy(r->batch.rkms[i]);
  r->batch.count = 0;
}

static enum dub_err count_partitions(struct dub_kafka_reader *r, int timeout_ms)
{
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, r->topic, NULL);
  if(!rkt)
    return DUB_ERR_INTERNAL;
  rd_kafka_resp_err_t err = rd_kafka_metadata(r->rk, 0, rkt, &md, timeout_ms);
  rd_kafka_topic_destroy(rkt);
  if(err)
    return DUB_ERR_UNAVAILABLE;
  enum dub_err rc = DUB_OK;
  if(md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0)
    rc = DUB_ERR_NOT_FOUND;
  else
    r->npartitions = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  return rc;
}

enum dub_err dub_kafka_reader_new(const char *brokers, const char *topic, int timeout_ms,
                                  struct dub_kafka_reader **reader, char **why)
{
  enum dub_err rc;
  char errstr[512];
  struct dub_kafka_reader *r = dub_xcalloc(1, sizeof *r);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  *reader = NULL;
  *why = NULL;
  r->topic = dub_xstrdup(topic);
  rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
  rc = kafka_conf_set(conf, "bootstrap.servers", brokers, why);
  /* No group is joined and nothing is committed, but librdkafka 2.0 wants a group id
   * for an assigned consumer all the same. */
  if(!rc)
    rc = kafka_conf_set(conf, "group.id", "duban-reader", why);
  if(!rc)
    rc = kafka_conf_set(conf, "enable.auto.commit", "false", why);
  if(!rc)
    rc = kafka_conf_set(conf, "enable.auto.offset.store", "false", why);
  if(!rc)
    rc = kafka_conf_set(conf, "enable.partition.eof", "false", why);
  if(!rc)
    rc = kafka_conf_set(conf, "client.id", "duban-reader", why);
  /* A reader rebuilds state and may lag by a fraction of a second: fewer, larger fetches
   * spare the broker a request for every message written. */
  if(!rc)
    rc = kafka_conf_set(conf, "fetch.wait.max.ms", "200", why);
  if(!rc)
    rc = kafka_conf_set(conf, "fetch.min.bytes", "262144", why);
  if(rc) {
    rd_kafka_conf_destroy(conf);
    goto out;
  }
  r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if(!r->rk) {
    rd_kafka_conf_destroy(conf);
    *why = dub_xasprintf("kafka reader: %s", errstr);
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  conf = NULL; /* owned by r->rk now */
  rd_kafka_poll_set_consumer(r->rk);
  rc = count_partitions(r, timeout_ms);
  if(rc) {
    *why = dub_xasprintf("kafka reader: no partitions of topic '%s' (%s)", topic,
                         dub_err_code(rc));
    goto out;
  }
  r->position = dub_xcalloc((size_t)r->npartitions, sizeof *r->position);
  r->end = dub_xcalloc((size_t)r->npartitions, sizeof *r->end);
  r->low = dub_xcalloc((size_t)r->npartitions, sizeof *r->low);
  for(int32_t i = 0; i < r->npartitions; i++) {
    r->position[i] = DUB_KAFKA_OFFSET_BEGINNING;
    r->end[i] = -1;
  }
out:
  if(rc) {
    dub_kafka_reader_free(r);
    return rc;
  }
  *reader = r;
  return DUB_OK;
}

void dub_kafka_reader_free(struct dub_kafka_reader *reader)
{
  if(!reader)
    return;
  batch_release(reader);
  for(size_t i = 0; i < reader->batch.cap; i++)
    free(reader->batch.hdrs[i]);
  free(reader->batch.rkms);
  free(reader->batch.msgs);
  free(reader->batch.hdrs);
  free(reader->batch.caps);
  if(reader->rk) {
    rd_kafka_assign(reader->rk, NULL);
    rd_kafka_consumer_close(reader->rk);
    kafka_destroy(reader->rk, "reader");
  }
  free(reader->position);
  free(reader->end);
  free(reader->low);
  free(reader->topic);
  free(reader);
}

int32_t dub_kafka_reader_partitions(const struct dub_kafka_reader *reader)
{
  return reader->npartitions;
}

/* Learns the ends not known yet; DUB_ERR_UNAVAILABLE at the first that cannot be had
 * (one timeout at most: the broker is away). */
static enum dub_err learn_ends(struct dub_kafka_reader *reader, int timeout_ms)
{
  for(int32_t i = 0; i < reader->npartitions; i++) {
    if(reader->end[i] >= 0)
      continue;
    int64_t low = 0, high = 0;
    if(rd_kafka_query_watermark_offsets(reader->rk, reader->topic, i, &low, &high,
                                        timeout_ms))
      return DUB_ERR_UNAVAILABLE;
    reader->low[i] = low;
    reader->end[i] = high;
  }
  return DUB_OK;
}

#define START_END_TIMEOUT_MS 2000

static enum dub_err assign_at(struct dub_kafka_reader *reader, const int64_t *offsets);

enum dub_err dub_kafka_reader_start(struct dub_kafka_reader *reader,
                                    const int64_t *offsets)
{
  dub_kafka_reader_forget_ends(reader);
  /* An end not learnt now is learnt by the first dub_kafka_reader_caught_up(). */
  learn_ends(reader, START_END_TIMEOUT_MS);
  return assign_at(reader, offsets);
}

void dub_kafka_reader_forget_ends(struct dub_kafka_reader *reader)
{
  for(int32_t i = 0; i < reader->npartitions; i++)
    reader->end[i] = -1;
}

enum dub_err dub_kafka_reader_rewind(struct dub_kafka_reader *reader,
                                     const int64_t *offsets)
{
  return assign_at(reader, offsets);
}

/* Reads every partition from offsets[i] on; the ends stay as they are. */
static enum dub_err assign_at(struct dub_kafka_reader *reader, const int64_t *offsets)
{
  rd_kafka_topic_partition_list_t *parts =
      rd_kafka_topic_partition_list_new(reader->npartitions);
  for(int32_t i = 0; i < reader->npartitions; i++) {
    int64_t at = offsets[i] < 0 ? RD_KAFKA_OFFSET_BEGINNING : offsets[i];
    rd_kafka_topic_partition_list_add(parts, reader->topic, i)->offset = at;
    reader->position[i] = offsets[i] < 0 ? DUB_KAFKA_OFFSET_BEGINNING : offsets[i];
  }
  batch_release(reader);
  rd_kafka_resp_err_t err = rd_kafka_assign(reader->rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  return err ? kafka_map_err(err) : DUB_OK;
}

enum dub_err dub_kafka_reader_poll_batch(struct dub_kafka_reader *reader, int timeout_ms,
                                         size_t max, const struct dub_kafka_msg **msgs,
                                         size_t *count)
{
  *count = 0;
  *msgs = NULL;
  batch_release(reader);
  if(max > reader->batch.cap) {
    reader->batch.rkms =
        dub_xrealloc(reader->batch.rkms, max * sizeof *reader->batch.rkms);
    reader->batch.msgs =
        dub_xrealloc(reader->batch.msgs, max * sizeof *reader->batch.msgs);
    reader->batch.hdrs =
        dub_xrealloc(reader->batch.hdrs, max * sizeof *reader->batch.hdrs);
    reader->batch.caps =
        dub_xrealloc(reader->batch.caps, max * sizeof *reader->batch.caps);
    for(size_t i = reader->batch.cap; i < max; i++) {
      reader->batch.hdrs[i] = NULL;
      reader->batch.caps[i] = 0;
    }
    reader->batch.cap = max;
  }
  enum dub_err rc = DUB_OK;
  size_t n = 0;
  while(n < max) {
    /* Waits only for the first: then takes what has already been fetched. */
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(reader->rk, n ? 0 : timeout_ms);
    if(!rkm)
      break;
    if(rkm->err) { /* ends the batch: what came before it is handed out */
      if(rkm->err == RD_KAFKA_RESP_ERR__FATAL)
        rc = DUB_ERR_UNAVAILABLE;
      else
        dub_log_warn("kafka reader: %s", rd_kafka_message_errstr(rkm));
      rd_kafka_message_destroy(rkm);
      break;
    }
    if(rkm->partition >= 0 && rkm->partition < reader->npartitions)
      reader->position[rkm->partition] = rkm->offset + 1;
    reader->batch.rkms[n] = rkm;
    kafka_msg_view(rkm, &reader->batch.msgs[n], &reader->batch.hdrs[n],
                   &reader->batch.caps[n]);
    n++;
  }
  reader->batch.count = n;
  *msgs = reader->batch.msgs;
  *count = n;
  return rc;
}

enum dub_err dub_kafka_reader_poll(struct dub_kafka_reader *reader, int timeout_ms,
                                   const struct dub_kafka_msg **msg)
{
  const struct dub_kafka_msg *msgs = NULL;
  size_t n = 0;
  enum dub_err rc = dub_kafka_reader_poll_batch(reader, timeout_ms, 1, &msgs, &n);
  *msg = n ? &msgs[0] : NULL;
  return rc;
}

int64_t dub_kafka_reader_position(const struct dub_kafka_reader *reader, int32_t i)
{
  return i >= 0 && i < reader->npartitions ? reader->position[i]
                                           : DUB_KAFKA_OFFSET_BEGINNING;
}

enum dub_err dub_kafka_reader_caught_up(struct dub_kafka_reader *reader, int timeout_ms,
                                        bool *caught_up)
{
  *caught_up = false;
  if(learn_ends(reader, timeout_ms))
    return DUB_ERR_UNAVAILABLE;
  for(int32_t i = 0; i < reader->npartitions; i++) {
    int64_t pos = reader->position[i];
    /* Nothing read yet: caught up only if the partition held nothing. */
    if(pos < 0 ? reader->end[i] > reader->low[i] : pos < reader->end[i])
      return DUB_OK;
  }
  *caught_up = true;
  return DUB_OK;
}
