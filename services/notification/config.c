/* config.c - notification's environment, the keys that open reporter blocks, and the
 * checks its configuration must pass (SMS templates, routes). */
#include "notification.h"

#include "config/config.h"
#include "core/alloc.h"
#include "core/env.h"
#include "http/http.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "schema/schema.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define F(field) offsetof(struct notification_conf, field)
static const struct dub_env_spec env_table[] = {
    {"DUBAN_OUTBOX_DIR", DUB_ENV_STR, "var/outbox", F(outbox_dir), 0, 0, false},
    {"DUBAN_PII_KEY", DUB_ENV_STR, NULL, F(pii_key), 0, 0, true},
    {"DUBAN_SMS_URL", DUB_ENV_STR, NULL, F(sms_url), 0, 0, false},
    {"DUBAN_SMTP_URL", DUB_ENV_STR, NULL, F(smtp_url), 0, 0, false},
    {"DUBAN_SMTP_FROM", DUB_ENV_STR, "duban@localhost", F(smtp_from), 0, 0, false},
    {"DUBAN_DLR_URL", DUB_ENV_STR, NULL, F(dlr_url), 0, 0, false},
    {"DUBAN_DLR_ALLOW", DUB_ENV_STR, "127.0.0.0/8,::1", F(dlr_allow), 0, 0, false},
    {"DUBAN_NOTIFY_QUIET_HOURS", DUB_ENV_STR, "22:00-08:00", F(quiet), 0, 0, false},
    {"DUBAN_NOTIFY_SMS_PER_HOUR", DUB_ENV_LONG, "20", F(sms_per_window), 1, 100000,
     false},
    {"DUBAN_NOTIFY_RATE_WINDOW_S", DUB_ENV_LONG, "3600", F(window_s), 1, 86400, false},
    {"DUBAN_NOTIFY_MAX_ATTEMPTS", DUB_ENV_LONG, "8", F(max_attempts), 1, 100, false},
    {"DUBAN_NOTIFY_MAX_AGE_S", DUB_ENV_LONG, "86400", F(max_age_s), 1, 30 * 86400, false},
    {"DUBAN_NOTIFY_RETRY_BASE_MS", DUB_ENV_LONG, "1000", F(retry_base_ms), 1, 3600000,
     false},
    {"DUBAN_NOTIFY_RETRY_MAX_MS", DUB_ENV_LONG, "300000", F(retry_max_ms), 1, 86400000,
     false},
    {"DUBAN_NOTIFY_SEND_TIMEOUT_MS", DUB_ENV_LONG, "5000", F(send_timeout_ms), 100,
     120000, false},
    {"DUBAN_SMS_PARALLEL", DUB_ENV_LONG, "4", F(sms_parallel), 1, 64, false},
    {"DUBAN_NOTIFY_RECONCILE_S", DUB_ENV_LONG, "600", F(reconcile_s), 1, 7 * 86400,
     false},
};
#undef F
#define ENV_N (sizeof env_table / sizeof env_table[0])

enum dub_err notification_open(struct notification *n, long port, char **why)
{
  enum dub_err rc = dub_env_load(env_table, ENV_N, &n->conf, why);
  if(rc)
    return rc;
  if(!notification_quiet_parse(n->conf.quiet, &n->conf.quiet_hours)) {
    *why = dub_xstrdup("DUBAN_NOTIFY_QUIET_HOURS: expected HH:MM[:SS]-HH:MM[:SS] or off");
    return DUB_ERR_CONFIG;
  }
  if(!n->conf.dlr_url)
    n->conf.dlr_url = dub_xasprintf("http://127.0.0.1:%ld/v1/dlr", port);
  char *bad = NULL;
  if(dub_http_allow_parse(n->conf.dlr_allow, &n->conf.dlr_allowed, &bad)) {
    *why = dub_xasprintf("DUBAN_DLR_ALLOW: %s", bad);
    free(bad);
    return DUB_ERR_CONFIG;
  }
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
  dub_log_info("providers: sms %s, email %s",
               n->conf.sms_url ? "kannel (DUBAN_SMS_URL)" : "outbox",
               n->conf.smtp_url ? "smtp (DUBAN_SMTP_URL)" : "outbox");
  return DUB_OK;
}

void notification_close(struct notification *n)
{
  dub_config_unref(n->good);
  dub_config_unref(n->refused);
  json_decref(n->routes);
  dub_crypto_keyring_free(n->keys);
  dub_http_allow_free(n->conf.dlr_allowed);
  dub_env_release(env_table, ENV_N, &n->conf);
}

static enum dub_err load_routes(const char *config_dir, const char *schema_dir,
                                json_t **routes, char **why)
{
  char *path = dub_xasprintf("%s/notify.json", config_dir);
  char *schema_path = dub_xasprintf("%s/config/notify.json", schema_dir);
  struct dub_schema *schema = NULL;
  json_t *doc = NULL, *errors = NULL;
  enum dub_err rc = DUB_OK;
  if(access(path, F_OK) != 0) {
    char *inner = NULL;
    rc = dub_json_parse(notification_default_routes, strlen(notification_default_routes),
                        &doc, &inner);
    if(rc) {
      *why = dub_xasprintf("embedded routes: %s", inner);
      free(inner);
    }
    goto out;
  }
  rc = dub_schema_load_file(schema_path, &schema, why);
  if(!rc)
    rc = dub_json_load_file(path, &doc, why);
  if(!rc && dub_schema_validate(schema, doc, &errors)) {
    const json_t *first = json_array_get(errors, 0);
    *why = dub_xasprintf("notify.json: %s: %s", dub_json_str(first, "pointer"),
                         dub_json_str(first, "message"));
    rc = DUB_ERR_CONFIG;
  }
out:
  if(!rc) {
    *routes = json_incref(json_object_get(doc, "routes"));
  }
  json_decref(doc);
  json_decref(errors);
  dub_schema_free(schema);
  free(path);
  free(schema_path);
  return rc;
}

enum dub_err notification_config_check(const struct dub_config *config,
                                       const char *config_dir, const char *schema_dir,
                                       json_t **routes, char **why)
{
  enum dub_err rc = notification_templates_check(config->templates, why);
  if(!rc)
    rc = load_routes(config_dir, schema_dir, routes, why);
  return rc;
}
