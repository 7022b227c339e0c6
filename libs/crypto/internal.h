/* internal.h - what the files of libs/crypto share; not for use outside the lib. */
#ifndef DUB_CRYPTO_INTERNAL_H
#define DUB_CRYPTO_INTERNAL_H

#include "crypto/crypto.h"

#include <openssl/evp.h>
#include <stdint.h>

#define CRYPTO_SM4_KEY_LEN 16
#define CRYPTO_IV_LEN 16
#define CRYPTO_TAG_LEN 32 /* SM3 output */

/* The keys derived from one master key. Each lives in its own allocation so that
 * growing the ring never leaves copies behind; cleansed when freed. */
struct crypto_key {
  char kid[DUB_CRYPTO_KID_MAX + 1];
  unsigned char enc[CRYPTO_SM4_KEY_LEN];
  unsigned char mac[CRYPTO_TAG_LEN];
  unsigned char blind[CRYPTO_TAG_LEN];
};

struct dub_crypto_keyring {
  EVP_CIPHER *ctr; /* SM4-CTR */
  EVP_MAC *hmac;   /* HMAC, used with digest SM3 */
  struct crypto_key **keys;
  size_t nkeys;
  size_t current; /* index into keys, valid when nkeys > 0 */
};

/* One piece of a MAC input. */
struct crypto_part {
  const void *data;
  size_t len;
};

/* HMAC-SM3 over the concatenation of 'n' parts. DUB_ERR_INTERNAL when OpenSSL fails. */
enum dub_err crypto_hmac(const struct dub_crypto_keyring *ring, const unsigned char *key,
                         size_t key_len, const struct crypto_part *parts, size_t n,
                         unsigned char out[CRYPTO_TAG_LEN]);

/* The key named by the first 'len' bytes of 'kid', or NULL. */
const struct crypto_key *crypto_key_find(const struct dub_crypto_keyring *ring,
                                         const char *kid, size_t len);

/* True when 'len' bytes of 'kid' make a valid key id. */
bool crypto_kid_valid(const char *kid, size_t len);

/* Base64url without padding. encode: 'out' holds crypto_b64_len(len) + 1 bytes and is
 * NUL-terminated. decode: 'out' holds at least len * 3 / 4 bytes; false unless 'in' is
 * the canonical encoding of some bytes. */
size_t crypto_b64_len(size_t len);
void crypto_b64_encode(const unsigned char *in, size_t len, char *out);
bool crypto_b64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len);

#endif
