/* record.c - per-case delivery records for GET /v1/notifications, recipients masked. */
#include "notification.h"
#include "render.h"

#include "core/alloc.h"
#include "core/time.h"
#include "json/json.h"
#include "runtime/runtime.h"

#include <stdlib.h>

char *notification_records_key(const char *case_id)
{
  return dub_xasprintf("duban:notifications:{%s}", case_id);
}

enum dub_err notification_record(struct notification *n,
                                 const struct notification_msg *msg, const char *status)
{
  char now[DUB_TIME_LEN];
  dub_time_format(dub_time_now_ms(), DUB_SHANGHAI_OFFSET_MIN, now);
  char *masked = notification_mask(msg->to);
  json_t *rec =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "case_id", msg->case_id,
                "channel", msg->channel, "recipient", masked, "recipient_id",
                msg->recipient_id, "template", msg->template, "status", status,
                "attempts", 1, "cause", msg->cause_id, "time", now);
  free(masked);
  char *text = dub_json_dump(rec);
  json_decref(rec);
  char *key = notification_records_key(msg->case_id);
  const char *argv[] = {"RPUSH", key, text};
  enum dub_err rc = dub_cache_command(dub_runtime_cache(n->rt), NULL, 3, argv, NULL);
  free(key);
  free(text);
  return rc;
}
