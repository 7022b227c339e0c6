/* config.c - notification's environment and the keys that open reporter blocks. */
#include "notification.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/log.h"
#include "crypto/crypto.h"

#include <stddef.h>
#include <stdlib.h>

static const struct dub_env_spec env_table[] = {
    {"DUBAN_OUTBOX_DIR", DUB_ENV_STR, "var/outbox",
     offsetof(struct notification_conf, outbox_dir), 0, 0, false},
    {"DUBAN_PII_KEY", DUB_ENV_STR, NULL, offsetof(struct notification_conf, pii_key), 0,
     0, true},
    {"DUBAN_SMS_URL", DUB_ENV_STR, NULL, offsetof(struct notification_conf, sms_url), 0,
     0, false},
    {"DUBAN_SMTP_URL", DUB_ENV_STR, NULL, offsetof(struct notification_conf, smtp_url), 0,
     0, false},
    {"DUBAN_SMTP_FROM", DUB_ENV_STR, "duban@localhost",
     offsetof(struct notification_conf, smtp_from), 0, 0, false},
};
#define ENV_N (sizeof env_table / sizeof env_table[0])

enum dub_err notification_open(struct notification *n, char **why)
{
  enum dub_err rc = dub_env_load(env_table, ENV_N, &n->conf, why);
  if(rc)
    return rc;
  if(n->conf.sms_url || n->conf.smtp_url)
    dub_log_warn("DUBAN_SMS_URL/DUBAN_SMTP_URL are set, but this version delivers to the "
                 "outbox %s only",
                 n->conf.outbox_dir);
  rc = dub_crypto_keyring_new(&n->keys);
  if(rc) {
    *why = dub_xstrdup("openssl lacks SM4-CTR or HMAC-SM3");
    return rc;
  }
  char *inner = NULL;
  if(dub_crypto_keyring_add_spec(n->keys, n->conf.pii_key, &inner)) {
    *why = dub_xasprintf("DUBAN_PII_KEY: %s", inner);
    free(inner);
    return DUB_ERR_CONFIG;
  }
  return DUB_OK;
}

void notification_close(struct notification *n)
{
  dub_crypto_keyring_free(n->keys);
  dub_env_release(env_table, ENV_N, &n->conf);
}
