/* config.c - intake's environment, reporter keys and event schemas. */
#include "intake.h"

#include "core/alloc.h"
#include "core/env.h"
#include "crypto/crypto.h"
#include "schema/schema.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const struct dub_env_spec env_table[] = {
    {"DUBAN_PII_KEY", DUB_ENV_STR, NULL, offsetof(struct intake_conf, pii_key), 0, 0,
     true},
    {"DUBAN_INTAKE_SOURCE", DUB_ENV_STR, "/duban/intake",
     offsetof(struct intake_conf, source), 0, 0, false},
};
#define ENV_N (sizeof env_table / sizeof env_table[0])

/* Every inbound type of DESIGN.md ("Events"). */
static const char *const inbound_types[INTAKE_NTYPES] = {
    "duban.problem.reported",
    "duban.case.accepted",
    "duban.case.progressed",
    "duban.case.extension_requested",
    "duban.case.extension_decided",
    "duban.case.rectified",
    "duban.case.verified",
    "duban.case.returned",
    "duban.case.closed",
    "duban.case.cancelled",
};

static enum dub_err load_schema(const char *schema_dir, const char *name,
                                struct dub_schema **out, char **why)
{
  char *path = dub_xasprintf("%s/%s", schema_dir, name);
  enum dub_err rc = dub_schema_load_file(path, out, why);
  free(path);
  return rc;
}

enum dub_err intake_open(struct intake *in, const char *schema_dir, char **why)
{
  enum dub_err rc;
  *why = NULL;
  rc = dub_env_load(env_table, ENV_N, &in->conf, why);
  if(rc)
    return rc;
  rc = dub_crypto_keyring_new(&in->keys);
  if(rc) {
    *why = dub_xstrdup("openssl lacks SM4-CTR or HMAC-SM3");
    return rc;
  }
  char *inner = NULL;
  rc = dub_crypto_keyring_add_spec(in->keys, in->conf.pii_key, &inner);
  if(rc) {
    *why = dub_xasprintf("DUBAN_PII_KEY: %s", inner);
    free(inner);
    return DUB_ERR_CONFIG;
  }
  rc = load_schema(schema_dir, "cloudevent.json", &in->envelope, why);
  for(size_t i = 0; !rc && i < INTAKE_NTYPES; i++) {
    char *name = dub_xasprintf("events/%s.json", inbound_types[i]);
    in->types[i].type = inbound_types[i];
    rc = load_schema(schema_dir, name, &in->types[i].data, why);
    free(name);
  }
  return rc;
}

void intake_close(struct intake *in)
{
  for(size_t i = 0; i < INTAKE_NTYPES; i++)
    dub_schema_free(in->types[i].data);
  dub_schema_free(in->envelope);
  dub_crypto_keyring_free(in->keys);
  dub_env_release(env_table, ENV_N, &in->conf);
}

const struct intake_type *intake_type_find(const struct intake *in, const char *type)
{
  for(size_t i = 0; type && i < INTAKE_NTYPES; i++)
    if(strcmp(in->types[i].type, type) == 0)
      return &in->types[i];
  return NULL;
}
