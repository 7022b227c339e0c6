/* keyring.c - master keys, derived keys, key ids and DUBAN_PII_KEY values. */
#include "internal.h"

#include "core/alloc.h"
#include "core/hex.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum dub_err dub_crypto_keyring_new(struct dub_crypto_keyring **out)
{
  struct dub_crypto_keyring *ring = dub_xcalloc(1, sizeof *ring);
  enum dub_err rc = DUB_OK;
  *out = NULL;
  ring->ctr = EVP_CIPHER_fetch(NULL, "SM4-CTR", NULL);
  ring->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MD *sm3 = EVP_MD_fetch(NULL, "SM3", NULL);
  if(!ring->ctr || !ring->hmac || !sm3) {
    rc = DUB_ERR_UNSUPPORTED;
    goto out;
  }
  *out = ring;
  ring = NULL;
out:
  EVP_MD_free(sm3);
  dub_crypto_keyring_free(ring);
  return rc;
}

void dub_crypto_keyring_free(struct dub_crypto_keyring *ring)
{
  if(!ring)
    return;
  for(size_t i = 0; i < ring->nkeys; i++) {
    OPENSSL_cleanse(ring->keys[i], sizeof *ring->keys[i]);
    free(ring->keys[i]);
  }
  free(ring->keys);
  EVP_CIPHER_free(ring->ctr);
  EVP_MAC_free(ring->hmac);
  free(ring);
}

enum dub_err crypto_hmac(const struct dub_crypto_keyring *ring, const unsigned char *key,
                         size_t key_len, const struct crypto_part *parts, size_t n,
                         unsigned char out[CRYPTO_TAG_LEN])
{
  enum dub_err rc = DUB_ERR_INTERNAL;
  size_t out_len = 0;
  char digest[] = "SM3";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(ring->hmac);
  if(!ctx || !EVP_MAC_init(ctx, key, key_len, params))
    goto out;
  for(size_t i = 0; i < n; i++) {
    if(parts[i].len && !EVP_MAC_update(ctx, parts[i].data, parts[i].len))
      goto out;
  }
  if(!EVP_MAC_final(ctx, out, &out_len, CRYPTO_TAG_LEN) || out_len != CRYPTO_TAG_LEN)
    goto out;
  rc = DUB_OK;
out:
  EVP_MAC_CTX_free(ctx);
  return rc;
}

bool crypto_kid_valid(const char *kid, size_t len)
{
  if(len == 0 || len > DUB_CRYPTO_KID_MAX)
    return false;
  for(size_t i = 0; i < len; i++) {
    char c = kid[i];
    if(!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_'))
      return false;
  }
  return true;
}

const struct crypto_key *crypto_key_find(const struct dub_crypto_keyring *ring,
                                         const char *kid, size_t len)
{
  for(size_t i = 0; i < ring->nkeys; i++) {
    if(strlen(ring->keys[i]->kid) == len && !memcmp(ring->keys[i]->kid, kid, len))
      return ring->keys[i];
  }
  return NULL;
}

/* Decodes exactly 64 hex digits from the first 'len' bytes of 'hex'. */
static bool parse_master(const char *hex, size_t len,
                         unsigned char master[DUB_CRYPTO_KEY_LEN])
{
  return dub_hex_decode(hex, len, master, DUB_CRYPTO_KEY_LEN);
}

/* HMAC-SM3(master, label) into 'out_len' bytes of 'out'. */
static enum dub_err derive(const struct dub_crypto_keyring *ring,
                           const unsigned char master[DUB_CRYPTO_KEY_LEN],
                           const char *label, unsigned char *out, size_t out_len)
{
  unsigned char full[CRYPTO_TAG_LEN];
  struct crypto_part part = {label, strlen(label)};
  enum dub_err rc = crypto_hmac(ring, master, DUB_CRYPTO_KEY_LEN, &part, 1, full);
  if(!rc)
    memcpy(out, full, out_len);
  OPENSSL_cleanse(full, sizeof full);
  return rc;
}

/* Adds a key from a master key; 'kid' of 'kid_len' bytes, or NULL for the fingerprint.
 * Errors are DUB_ERR_CONFIG with a fixed message in '*what'. */
static enum dub_err add_key(struct dub_crypto_keyring *ring, const char *kid,
                            size_t kid_len, const char *hex, size_t hex_len, bool current,
                            const char **what)
{
  enum dub_err rc = DUB_OK;
  unsigned char master[DUB_CRYPTO_KEY_LEN];
  struct crypto_key *key = dub_xcalloc(1, sizeof *key);

  if(kid && !crypto_kid_valid(kid, kid_len)) {
    *what = "key id must be 1 to 32 characters of A-Z, a-z, 0-9, '-' and '_'";
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  if(!parse_master(hex, hex_len, master)) {
    *what = "key must be 64 hex digits (32 bytes)";
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  if(kid) {
    memcpy(key->kid, kid, kid_len);
  } else {
    unsigned char fp[4];
    rc = derive(ring, master, "duban kid v1", fp, sizeof fp);
    if(rc)
      goto out;
    snprintf(key->kid, sizeof key->kid, "k%02x%02x%02x%02x", fp[0], fp[1], fp[2], fp[3]);
  }
  if(crypto_key_find(ring, key->kid, strlen(key->kid))) {
    *what = "key id is already in the keyring";
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  rc = derive(ring, master, "duban enc v1", key->enc, sizeof key->enc);
  if(!rc)
    rc = derive(ring, master, "duban mac v1", key->mac, sizeof key->mac);
  if(!rc)
    rc = derive(ring, master, "duban blind v1", key->blind, sizeof key->blind);
  if(rc) {
    *what = "key derivation failed";
    goto out;
  }
  ring->keys = dub_xrealloc(ring->keys, (ring->nkeys + 1) * sizeof *ring->keys);
  if(current || ring->nkeys == 0)
    ring->current = ring->nkeys;
  ring->keys[ring->nkeys++] = key;
  key = NULL;
out:
  OPENSSL_cleanse(master, sizeof master);
  if(key) {
    OPENSSL_cleanse(key, sizeof *key);
    free(key);
  }
  return rc;
}

static void set_why(char **why, char *msg)
{
  if(why)
    *why = msg;
  else
    free(msg);
}

enum dub_err dub_crypto_keyring_add_hex(struct dub_crypto_keyring *ring, const char *kid,
                                        const char *hex, bool current, char **why)
{
  const char *what = NULL;
  if(!kid || !hex)
    return DUB_ERR_INVALID;
  enum dub_err rc = add_key(ring, kid, strlen(kid), hex, strlen(hex), current, &what);
  if(rc)
    set_why(why, dub_xasprintf("key \"%s\": %s",
                               crypto_kid_valid(kid, strlen(kid)) ? kid : "?",
                               what ? what : "cannot be added"));
  return rc;
}

enum dub_err dub_crypto_keyring_add_spec(struct dub_crypto_keyring *ring,
                                         const char *spec, char **why)
{
  const char *what = NULL;
  const char *p = spec;
  enum dub_err rc = DUB_OK;
  if(!spec)
    return DUB_ERR_INVALID;
  for(size_t entry = 1;; entry++) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    if(eq)
      rc = add_key(ring, p, (size_t)(eq - p), eq + 1, n - (size_t)(eq - p) - 1,
                   entry == 1, &what);
    else
      rc = add_key(ring, NULL, 0, p, n, entry == 1, &what);
    if(rc) {
      set_why(why,
              dub_xasprintf("key entry %zu: %s", entry, what ? what : "cannot be added"));
      return rc;
    }
    if(!end)
      return DUB_OK;
    p = end + 1;
  }
}

const char *dub_crypto_keyring_current(const struct dub_crypto_keyring *ring)
{
  return ring->nkeys ? ring->keys[ring->current]->kid : NULL;
}
