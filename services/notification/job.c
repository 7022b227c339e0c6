/* job.c - idempotency keys and the Redis keys of messages. */
#include "notification.h"

#include "core/alloc.h"
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
