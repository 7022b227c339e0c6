/* auth.c - the client set of clients.json and bearer-token lookup by SHA-256. */
#include "http/auth.h"

#include "core/alloc.h"
#include "core/hex.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HASH_LEN 32

struct dub_auth_client {
  char *id;
  unsigned char hash[HASH_LEN];
  char **sources;
  size_t nsources;
  char **scopes;
  size_t nscopes;
};

struct dub_auth {
  atomic_uint refs;
  struct dub_auth_client *clients;
  size_t n;
};

static void free_strings(char **v, size_t n)
{
  for(size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static void free_set(struct dub_auth *auth)
{
  for(size_t i = 0; i < auth->n; i++) {
    free(auth->clients[i].id);
    free_strings(auth->clients[i].sources, auth->clients[i].nsources);
    free_strings(auth->clients[i].scopes, auth->clients[i].nscopes);
  }
  free(auth->clients);
  free(auth);
}

static bool parse_hash(const char *hex, unsigned char out[HASH_LEN])
{
  return dub_hex_decode(hex, strlen(hex), out, HASH_LEN);
}

/* Copies an array of strings; false when 'arr' is present but not an array of
 * strings. An absent array gives none. */
static bool copy_strings(const json_t *arr, char ***out, size_t *n)
{
  *out = NULL;
  *n = 0;
  if(!arr)
    return true;
  if(!json_is_array(arr))
    return false;
  size_t count = json_array_size(arr);
  char **v = dub_xcalloc(count ? count : 1, sizeof *v);
  for(size_t i = 0; i < count; i++) {
    const json_t *s = json_array_get(arr, i);
    if(!json_is_string(s)) {
      free_strings(v, i);
      return false;
    }
    v[i] = dub_xstrdup(json_string_value(s));
  }
  *out = v;
  *n = count;
  return true;
}

/* Fills 'c' from entry 'i'; on failure sets *why and leaves nothing to free in 'c'. */
static enum dub_err parse_client(const json_t *entry, size_t i, struct dub_auth_client *c,
                                 char **why)
{
  const json_t *id = json_object_get(entry, "id");
  const json_t *hash = json_object_get(entry, "token_sha256");
  if(!json_is_object(entry) || !json_is_string(id) || !json_string_value(id)[0]) {
    *why = dub_xasprintf("clients.json: clients[%zu] has no string \"id\"", i);
    return DUB_ERR_CONFIG;
  }
  if(!json_is_string(hash) || !parse_hash(json_string_value(hash), c->hash)) {
    *why =
        dub_xasprintf("clients.json: client '%s': \"token_sha256\" is not 64 hex digits",
                      json_string_value(id));
    return DUB_ERR_CONFIG;
  }
  if(!copy_strings(json_object_get(entry, "sources"), &c->sources, &c->nsources)) {
    *why =
        dub_xasprintf("clients.json: client '%s': \"sources\" is not an array of strings",
                      json_string_value(id));
    return DUB_ERR_CONFIG;
  }
  if(!copy_strings(json_object_get(entry, "scopes"), &c->scopes, &c->nscopes)) {
    free_strings(c->sources, c->nsources);
    c->sources = NULL;
    c->nsources = 0;
    *why =
        dub_xasprintf("clients.json: client '%s': \"scopes\" is not an array of strings",
                      json_string_value(id));
    return DUB_ERR_CONFIG;
  }
  c->id = dub_xstrdup(json_string_value(id));
  return DUB_OK;
}

enum dub_err dub_auth_new(const json_t *doc, struct dub_auth **out, char **why)
{
  enum dub_err rc = DUB_OK;
  struct dub_auth *auth = NULL;
  *out = NULL;
  *why = NULL;

  const json_t *clients = json_object_get(doc, "clients");
  if(!json_is_object(doc) || !json_is_array(clients)) {
    *why = dub_xstrdup("clients.json: \"clients\" is not an array");
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  size_t count = json_array_size(clients);
  auth = dub_xcalloc(1, sizeof *auth);
  atomic_init(&auth->refs, 1);
  auth->clients = dub_xcalloc(count ? count : 1, sizeof *auth->clients);
  for(size_t i = 0; i < count; i++) {
    struct dub_auth_client *c = &auth->clients[i];
    rc = parse_client(json_array_get(clients, i), i, c, why);
    if(rc)
      goto out;
    auth->n++;
    for(size_t j = 0; j < i; j++) {
      if(strcmp(auth->clients[j].id, c->id) == 0) {
        *why = dub_xasprintf("clients.json: client id '%s' appears twice", c->id);
        rc = DUB_ERR_CONFIG;
        goto out;
      }
      if(memcmp(auth->clients[j].hash, c->hash, HASH_LEN) == 0) {
        *why = dub_xasprintf("clients.json: clients '%s' and '%s' share a token",
                             auth->clients[j].id, c->id);
        rc = DUB_ERR_CONFIG;
        goto out;
      }
    }
  }
  *out = auth;
  auth = NULL;
out:
  if(auth)
    free_set(auth);
  return rc;
}

struct dub_auth *dub_auth_ref(struct dub_auth *auth)
{
  if(auth)
    atomic_fetch_add_explicit(&auth->refs, 1, memory_order_relaxed);
  return auth;
}

void dub_auth_unref(struct dub_auth *auth)
{
  if(!auth)
    return;
  if(atomic_fetch_sub_explicit(&auth->refs, 1, memory_order_acq_rel) == 1)
    free_set(auth);
}

size_t dub_auth_count(const struct dub_auth *auth)
{
  return auth ? auth->n : 0;
}

const struct dub_auth_client *dub_auth_find(const struct dub_auth *auth,
                                            const char *token)
{
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if(!auth || !token || !*token)
    return NULL;
  if(!EVP_Digest(token, strlen(token), digest, &len, EVP_sha256(), NULL) ||
     len != HASH_LEN)
    return NULL;
  /* Look at every client whatever matches, so timing tells nothing about the hashes. */
  const struct dub_auth_client *found = NULL;
  for(size_t i = 0; i < auth->n; i++) {
    if(CRYPTO_memcmp(auth->clients[i].hash, digest, HASH_LEN) == 0)
      found = &auth->clients[i];
  }
  OPENSSL_cleanse(digest, sizeof digest);
  return found;
}

const char *dub_auth_client_id(const struct dub_auth_client *client)
{
  return client ? client->id : NULL;
}

static bool contains(char *const *v, size_t n, const char *s)
{
  for(size_t i = 0; s && i < n; i++) {
    if(strcmp(v[i], s) == 0)
      return true;
  }
  return false;
}

bool dub_auth_client_has_scope(const struct dub_auth_client *client, const char *scope)
{
  return client && contains(client->scopes, client->nscopes, scope);
}

bool dub_auth_client_may_use_source(const struct dub_auth_client *client,
                                    const char *source)
{
  return client && contains(client->sources, client->nsources, source);
}

const char *const *dub_auth_client_scopes(const struct dub_auth_client *client, size_t *n)
{
  *n = client ? client->nscopes : 0;
  return client ? (const char *const *)client->scopes : NULL;
}
