/* seal.c - SM4-CTR + HMAC-SM3 tokens (encrypt-then-MAC) and keyed blind hashes. */
#include "internal.h"

#include "core/alloc.h"
#include "core/hex.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSION "v1"

/* SM4-CTR over 'len' bytes; encryption and decryption are the same operation. */
static enum dub_err ctr_apply(const struct dub_crypto_keyring *ring,
                              const struct crypto_key *key,
                              const unsigned char iv[CRYPTO_IV_LEN],
                              const unsigned char *in, size_t len, unsigned char *out)
{
  enum dub_err rc = DUB_ERR_INTERNAL;
  int n = 0, fin = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if(!ctx || !EVP_EncryptInit_ex2(ctx, ring->ctr, key->enc, iv, NULL))
    goto out;
  if(len && !EVP_EncryptUpdate(ctx, out, &n, in, (int)len))
    goto out;
  if(!EVP_EncryptFinal_ex(ctx, out + n, &fin) || (size_t)n + (size_t)fin != len)
    goto out;
  rc = DUB_OK;
out:
  EVP_CIPHER_CTX_free(ctx);
  return rc;
}

/* The tag over version, key id, aad, IV and ciphertext. Variable-length fields carry
 * their length first, so no two inputs frame the same bytes. */
static enum dub_err tag_of(const struct dub_crypto_keyring *ring,
                           const struct crypto_key *key, const char *aad,
                           const unsigned char *iv, const unsigned char *ct,
                           size_t ct_len, unsigned char tag[CRYPTO_TAG_LEN])
{
  size_t kid_len = strlen(key->kid), aad_len = aad ? strlen(aad) : 0;
  unsigned char v_len = sizeof VERSION - 1, k_len = (unsigned char)kid_len;
  unsigned char a_len[8];
  for(int i = 0; i < 8; i++)
    a_len[i] = (unsigned char)((uint64_t)aad_len >> (56 - 8 * i));
  struct crypto_part parts[] = {
      {&v_len, 1},         {VERSION, sizeof VERSION - 1},
      {&k_len, 1},         {key->kid, kid_len},
      {a_len, 8},          {aad, aad_len},
      {iv, CRYPTO_IV_LEN}, {ct, ct_len},
  };
  return crypto_hmac(ring, key->mac, sizeof key->mac, parts,
                     sizeof parts / sizeof parts[0], tag);
}

enum dub_err dub_crypto_seal(const struct dub_crypto_keyring *ring, const void *plain,
                             size_t len, const char *aad, char **token)
{
  enum dub_err rc = DUB_OK;
  unsigned char *raw = NULL;
  char *out = NULL;

  *token = NULL;
  if(!ring->nkeys || len > DUB_CRYPTO_PLAIN_MAX || (len && !plain))
    return DUB_ERR_INVALID;
  const struct crypto_key *key = ring->keys[ring->current];
  size_t raw_len = CRYPTO_IV_LEN + len + CRYPTO_TAG_LEN;
  raw = dub_xmalloc(raw_len);
  unsigned char *iv = raw, *ct = raw + CRYPTO_IV_LEN, *tag = ct + len;
  if(RAND_bytes(iv, CRYPTO_IV_LEN) != 1) {
    rc = DUB_ERR_INTERNAL;
    goto out;
  }
  rc = ctr_apply(ring, key, iv, plain, len, ct);
  if(rc)
    goto out;
  rc = tag_of(ring, key, aad, iv, ct, len, tag);
  if(rc)
    goto out;
  size_t prefix = sizeof VERSION + strlen(key->kid) + 1; /* "v1." kid "." */
  out = dub_xmalloc(prefix + crypto_b64_len(raw_len) + 1);
  snprintf(out, prefix + 1, VERSION ".%s.", key->kid);
  crypto_b64_encode(raw, raw_len, out + prefix);
  *token = out;
  out = NULL;
out:
  free(out);
  free(raw);
  return rc;
}

/* Allocates a plaintext buffer that remembers its size, for dub_crypto_plain_free. */
static char *plain_alloc(size_t len)
{
  size_t total = sizeof(size_t) + len + 1;
  unsigned char *base = dub_xmalloc(total);
  memcpy(base, &total, sizeof total);
  return (char *)base + sizeof(size_t);
}

void dub_crypto_plain_free(char *plain)
{
  size_t total;
  if(!plain)
    return;
  unsigned char *base = (unsigned char *)plain - sizeof(size_t);
  memcpy(&total, base, sizeof total);
  OPENSSL_cleanse(base, total);
  free(base);
}

enum dub_err dub_crypto_open(const struct dub_crypto_keyring *ring, const char *token,
                             const char *aad, char **plain, size_t *len)
{
  enum dub_err rc = DUB_OK;
  unsigned char *raw = NULL;
  char *buf = NULL;
  unsigned char tag[CRYPTO_TAG_LEN];
  size_t raw_len = 0;

  *plain = NULL;
  *len = 0;
  if(!token || strncmp(token, VERSION ".", sizeof VERSION))
    return DUB_ERR_MALFORMED;
  const char *kid = token + sizeof VERSION;
  const char *dot = strchr(kid, '.');
  if(!dot || !crypto_kid_valid(kid, (size_t)(dot - kid)))
    return DUB_ERR_MALFORMED;
  const char *b64 = dot + 1;
  size_t b64_len = strlen(b64);
  if(b64_len > crypto_b64_len(CRYPTO_IV_LEN + DUB_CRYPTO_PLAIN_MAX + CRYPTO_TAG_LEN))
    return DUB_ERR_MALFORMED;
  raw = dub_xmalloc(b64_len * 3 / 4 + 1);
  if(!crypto_b64_decode(b64, b64_len, raw, &raw_len) ||
     raw_len < CRYPTO_IV_LEN + CRYPTO_TAG_LEN) {
    rc = DUB_ERR_MALFORMED;
    goto out;
  }
  const struct crypto_key *key = crypto_key_find(ring, kid, (size_t)(dot - kid));
  if(!key) {
    rc = DUB_ERR_NOT_FOUND;
    goto out;
  }
  size_t ct_len = raw_len - CRYPTO_IV_LEN - CRYPTO_TAG_LEN;
  const unsigned char *iv = raw, *ct = raw + CRYPTO_IV_LEN, *given = ct + ct_len;
  rc = tag_of(ring, key, aad, iv, ct, ct_len, tag);
  if(rc)
    goto out;
  if(CRYPTO_memcmp(tag, given, CRYPTO_TAG_LEN)) {
    rc = DUB_ERR_FORBIDDEN;
    goto out;
  }
  buf = plain_alloc(ct_len);
  rc = ctr_apply(ring, key, iv, ct, ct_len, (unsigned char *)buf);
  if(rc)
    goto out;
  buf[ct_len] = '\0';
  *plain = buf;
  *len = ct_len;
  buf = NULL;
out:
  dub_crypto_plain_free(buf);
  free(raw);
  return rc;
}

enum dub_err dub_crypto_blind(const struct dub_crypto_keyring *ring, const void *data,
                              size_t len, char out_hex[DUB_CRYPTO_BLIND_HEX_LEN])
{
  unsigned char mac[CRYPTO_TAG_LEN];
  out_hex[0] = '\0';
  if(!ring->nkeys || (len && !data))
    return DUB_ERR_INVALID;
  const struct crypto_key *key = ring->keys[ring->current];
  struct crypto_part part = {data, len};
  enum dub_err rc = crypto_hmac(ring, key->blind, sizeof key->blind, &part, 1, mac);
  if(rc)
    return rc;
  dub_hex_encode(mac, CRYPTO_TAG_LEN, out_hex);
  return DUB_OK;
}

bool dub_crypto_blind_matches(const struct dub_crypto_keyring *ring, const void *data,
                              size_t len, const char *hex)
{
  unsigned char given[CRYPTO_TAG_LEN], mac[CRYPTO_TAG_LEN];
  if(!hex || strlen(hex) != 2 * CRYPTO_TAG_LEN ||
     !dub_hex_decode(hex, 2 * CRYPTO_TAG_LEN, given, sizeof given) || (len && !data))
    return false;
  bool found = false;
  struct crypto_part part = {data, len};
  for(size_t i = 0; i < ring->nkeys; i++) {
    const struct crypto_key *key = ring->keys[i];
    if(!crypto_hmac(ring, key->blind, sizeof key->blind, &part, 1, mac))
      found |= CRYPTO_memcmp(mac, given, CRYPTO_TAG_LEN) == 0;
  }
  return found;
}

void dub_crypto_sha256_hex(const void *data, size_t len,
                           char out_hex[DUB_CRYPTO_SHA256_HEX_LEN])
{
  unsigned char md[32];
  unsigned int n = 0;
  /* EVP_Digest fails only when it cannot allocate; our allocations cannot fail. */
  if(!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL))
    abort();
  dub_hex_encode(md, sizeof md, out_hex);
}
