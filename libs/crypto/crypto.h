/* crypto.h - reporter-identity protection: SM4-CTR + HMAC-SM3 (encrypt-then-MAC) with
 * a rotating keyring, and keyed one-way hashes for lookups without the clear text. */
#ifndef DUB_CRYPTO_CRYPTO_H
#define DUB_CRYPTO_CRYPTO_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

/* A set of keys, each named by a key id; one of them, the current key, seals. Add keys
 * before sharing the ring; afterwards it is only read, and seal, open and blind may run
 * on any number of threads at once. Key material never leaves the ring and is cleansed
 * when the ring is freed; no function here logs it, nor any plaintext. */
struct dub_crypto_keyring;

/* A master key is 32 bytes, written as 64 hex digits. */
#define DUB_CRYPTO_KEY_LEN 32
/* A key id is 1..DUB_CRYPTO_KID_MAX characters of [A-Za-z0-9_-]. */
#define DUB_CRYPTO_KID_MAX 32
/* Largest plaintext that can be sealed. */
#define DUB_CRYPTO_PLAIN_MAX (1u << 24)
/* dub_crypto_blind writes 64 hex digits and a NUL. */
#define DUB_CRYPTO_BLIND_HEX_LEN 65

/* Creates an empty keyring in '*out' (free with dub_crypto_keyring_free).
 * DUB_ERR_UNSUPPORTED when OpenSSL offers no SM4-CTR or HMAC-SM3. */
enum dub_err dub_crypto_keyring_new(struct dub_crypto_keyring **out);

/* Frees the ring and cleanses its keys. NULL is a no-op. */
void dub_crypto_keyring_free(struct dub_crypto_keyring *ring);

/* Adds the master key 'hex' (64 hex digits, either case) under 'kid'. Separate
 * encryption, MAC and blinding keys are derived from it with HMAC-SM3 and the master is
 * cleansed. The key becomes the current one when 'current' is true or when it is the
 * first key of the ring. Copies what it keeps of both strings. DUB_ERR_CONFIG for a bad
 * key id, a key id already present, or a key that is not 64 hex digits, with a new
 * message in '*why' if 'why' is not NULL (free with free(); it never repeats the key). */
enum dub_err dub_crypto_keyring_add_hex(struct dub_crypto_keyring *ring, const char *kid,
                                        const char *hex, bool current, char **why);

/* Adds the keys of a DUBAN_PII_KEY value: one or more comma-separated entries, each
 * "<hex>" or "<kid>=<hex>"; the first entry becomes the current key, the others stay
 * able to open older tokens. An entry without a key id gets "k" and 8 hex digits of a
 * one-way fingerprint of the key, so the same key always has the same id. On
 * DUB_ERR_CONFIG '*why' (as in dub_crypto_keyring_add_hex) names the entry by its
 * position, never its content; entries before it stay added. */
enum dub_err dub_crypto_keyring_add_spec(struct dub_crypto_keyring *ring,
                                         const char *spec, char **why);

/* The current key id, or NULL for an empty ring. Borrowed until the ring is freed. */
const char *dub_crypto_keyring_current(const struct dub_crypto_keyring *ring);

/* Encrypts 'len' bytes of 'plain' with the current key under a fresh random IV and
 * gives a new NUL-terminated ASCII token "v1.<kid>.<base64url(iv16 || ct || tag32)>"
 * (no padding; free with free()). The HMAC-SM3 tag covers the version, the key id,
 * 'aad' (associated data, e.g. the field name and case id; NULL means ""), the IV and
 * the ciphertext; opening needs the same 'aad'. DUB_ERR_INVALID for an empty ring or a
 * plaintext over DUB_CRYPTO_PLAIN_MAX, DUB_ERR_INTERNAL when OpenSSL fails. */
enum dub_err dub_crypto_seal(const struct dub_crypto_keyring *ring, const void *plain,
                             size_t len, const char *aad, char **token);

/* Checks and decrypts a token of dub_crypto_seal with any key of the ring. On success
 * '*plain' is a new buffer of '*len' bytes followed by a NUL (free with
 * dub_crypto_plain_free, which cleanses it). Errors: DUB_ERR_MALFORMED when the token
 * is not a well-formed v1 token; DUB_ERR_NOT_FOUND when its key id is not in the ring;
 * DUB_ERR_FORBIDDEN when authentication fails (tampered token, other 'aad', other
 * key); DUB_ERR_INTERNAL when OpenSSL fails. Nothing is decrypted before the tag has
 * been checked, in constant time. */
enum dub_err dub_crypto_open(const struct dub_crypto_keyring *ring, const char *token,
                             const char *aad, char **plain, size_t *len);

/* Cleanses and frees a plaintext of dub_crypto_open. NULL is a no-op. */
void dub_crypto_plain_free(char *plain);

/* Writes the keyed one-way hash HMAC-SM3(blinding key of the current key, data) as 64
 * lower-case hex digits and a NUL: equal data give equal hashes under one current key,
 * so identities can be deduplicated and counted without being stored. The value
 * changes when the current key changes. DUB_ERR_INVALID for an empty ring. */
enum dub_err dub_crypto_blind(const struct dub_crypto_keyring *ring, const void *data,
                              size_t len, char out_hex[DUB_CRYPTO_BLIND_HEX_LEN]);

/* Whether 'hex' is dub_crypto_blind() of 'data' under any key of the ring, not only the
 * current one (a MAC handed out before a key rotation still checks), compared in
 * constant time. False for an empty ring or a 'hex' that is not 64 hex digits. */
bool dub_crypto_blind_matches(const struct dub_crypto_keyring *ring, const void *data,
                              size_t len, const char *hex);

/* Writes SHA-256(data) as 64 lower-case hex digits and a NUL: a stable, unkeyed digest
 * for idempotency and deduplication keys (never for identities: use
 * dub_crypto_blind). */
#define DUB_CRYPTO_SHA256_HEX_LEN 65
void dub_crypto_sha256_hex(const void *data, size_t len,
                           char out_hex[DUB_CRYPTO_SHA256_HEX_LEN]);

#endif
