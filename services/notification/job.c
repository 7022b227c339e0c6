/* job.c - idempotency keys and the Redis keys of messages. */
#include "notification.h"

#include "core/alloc.h"
#include "core/log.h"
#include "kafka/kafka.h"
#include "crypto/crypto.h"

#include <stdlib.h>
#include <string.h>

void notification_job_key(const char *case_id, const char *cause, const char *recipient,
                          const char *channel, char out[65])
{
  struct dub_buf fields = DUB_BUF_INIT;
  const char *parts[] = {case_id, cause, recipient, channel};
  for(size_t i = 0; i < 4; i++)
    dub_buf_append(&fields, parts[i], strlen(parts[i]) + 1); /* NUL-separated */
  dub_crypto_sha256_hex(fields.data, fields.len, out);
  dub_buf_release(&fields);
}

char *notification_msg_key(const char *tag, const char *key)
{
  return dub_xasprintf("duban:notify:msg:{%s}:%s", tag, key);
}

char *notification_case_keys_key(const char *tag)
{
  return dub_xasprintf("duban:notify:keys:{%s}", tag);
}

char *notification_case_info_key(const char *case_id)
{
  return dub_xasprintf("duban:notify:case:{%s}", case_id);
}

enum dub_err notification_reader_open(const char *brokers, const char *topic,
                                      struct dub_kafka_reader **out)
{
  char *why = NULL;
  struct dub_kafka_reader *reader = NULL;
  if(dub_kafka_reader_new(brokers, topic, 10000, &reader, &why)) {
    dub_log_error("cannot read %s to rebuild: %s", topic, why ? why : "");
    free(why);
    return DUB_ERR_UNAVAILABLE;
  }
  int32_t parts = dub_kafka_reader_partitions(reader);
  int64_t *from = dub_xcalloc((size_t)parts, sizeof *from);
  for(int32_t i = 0; i < parts; i++)
    from[i] = DUB_KAFKA_OFFSET_BEGINNING;
  enum dub_err rc = dub_kafka_reader_start(reader, from);
  free(from);
  if(rc) { /* review C12h: a reader that reads nothing would never catch up */
    dub_log_error("cannot read %s to rebuild: %s", topic, dub_err_code(rc));
    dub_kafka_reader_free(reader);
    return DUB_ERR_UNAVAILABLE;
  }
  *out = reader;
  return DUB_OK;
}
