/* test_crypto.c - OpenSSL's SM3/SM4 against the standard vectors, then sealed
 * reporter-identity tokens: round trip, tampering, key ids, rotation, malformed input. */
#include "crypto/crypto.h"

#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define KEY1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY2 "F0E1D2C3B4A5968778695A4B3C2D1E0FF0E1D2C3B4A5968778695A4B3C2D1E0F"
#define NAME "张三丰（举报人）"
#define AAD "reporter.name|C-2026-000042"

static void to_hex(const unsigned char *in, size_t len, char *out)
{
  for(size_t i = 0; i < len; i++)
    snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static void from_hex(const char *hex, unsigned char *out)
{
  for(size_t i = 0; hex[2 * i]; i++) {
    unsigned v;
    sscanf(hex + 2 * i, "%2x", &v);
    out[i] = (unsigned char)v;
  }
}

/* SM4 (GB/T 32907-2016, appendix A.1) on one block in ECB mode. */
static void test_sm4_vector(void **state)
{
  (void)state;
  unsigned char key[16], out[32];
  char hex[65];
  int n = 0, fin = 0;
  from_hex("0123456789abcdeffedcba9876543210", key);
  EVP_CIPHER *ecb = EVP_CIPHER_fetch(NULL, "SM4-ECB", NULL);
  assert_non_null(ecb);
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  assert_non_null(ctx);
  assert_int_equal(EVP_EncryptInit_ex2(ctx, ecb, key, NULL, NULL), 1);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  assert_int_equal(EVP_EncryptUpdate(ctx, out, &n, key, 16), 1);
  assert_int_equal(EVP_EncryptFinal_ex(ctx, out + n, &fin), 1);
  assert_int_equal(n + fin, 16);
  to_hex(out, 16, hex);
  assert_string_equal(hex, "681edf34d206965e86b3e94f536e4246");
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(ecb);
}

static void sm3_hex(const void *data, size_t len, char hex[65])
{
  unsigned char md[32];
  unsigned int n = 0;
  EVP_MD *sm3 = EVP_MD_fetch(NULL, "SM3", NULL);
  assert_non_null(sm3);
  assert_int_equal(EVP_Digest(data, len, md, &n, sm3, NULL), 1);
  assert_int_equal(n, 32);
  to_hex(md, 32, hex);
  EVP_MD_free(sm3);
}

/* SM3 (GB/T 32905-2016, appendix A). */
/* FIPS 180-2 vectors. */
static void test_sha256_hex(void **state)
{
  (void)state;
  char hex[DUB_CRYPTO_SHA256_HEX_LEN];
  dub_crypto_sha256_hex("abc", 3, hex);
  assert_string_equal(hex,
                      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  dub_crypto_sha256_hex("", 0, hex);
  assert_string_equal(hex,
                      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sm3_vectors(void **state)
{
  (void)state;
  char hex[65], msg[65] = "";
  sm3_hex("abc", 3, hex);
  assert_string_equal(hex,
                      "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  for(int i = 0; i < 16; i++)
    strcat(msg, "abcd");
  sm3_hex(msg, 64, hex);
  assert_string_equal(hex,
                      "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
}

static struct dub_crypto_keyring *ring_with(const char *kid1, const char *hex1,
                                            const char *kid2, const char *hex2)
{
  struct dub_crypto_keyring *ring = NULL;
  assert_int_equal(dub_crypto_keyring_new(&ring), DUB_OK);
  if(kid1)
    assert_int_equal(dub_crypto_keyring_add_hex(ring, kid1, hex1, false, NULL), DUB_OK);
  if(kid2)
    assert_int_equal(dub_crypto_keyring_add_hex(ring, kid2, hex2, true, NULL), DUB_OK);
  return ring;
}

static char *seal(const struct dub_crypto_keyring *ring, const char *text,
                  const char *aad)
{
  char *token = NULL;
  assert_int_equal(dub_crypto_seal(ring, text, strlen(text), aad, &token), DUB_OK);
  assert_non_null(token);
  return token;
}

static enum dub_err open_token(const struct dub_crypto_keyring *ring, const char *token,
                               const char *aad)
{
  char *plain = (char *)1;
  size_t len = 99;
  enum dub_err rc = dub_crypto_open(ring, token, aad, &plain, &len);
  if(rc) {
    assert_null(plain);
    assert_int_equal(len, 0);
  }
  dub_crypto_plain_free(plain);
  return rc;
}

static void test_round_trip(void **state)
{
  (void)state;
  struct dub_crypto_keyring *ring = ring_with("k1", KEY1, NULL, NULL);
  const char *texts[] = {NAME, "+8613800000000", "举报人@例子.中国", "", "a"};
  for(size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    char *token = seal(ring, texts[i], AAD);
    char *plain = NULL;
    size_t len = 0;
    /* Plain ASCII: "v1.k1." and base64url. */
    assert_int_equal(strncmp(token, "v1.k1.", 6), 0);
    for(const char *p = token; *p; p++)
      assert_true(strchr(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", *p));
    if(strlen(texts[i]) >= 8)
      assert_null(strstr(token, texts[i]));
    assert_int_equal(dub_crypto_open(ring, token, AAD, &plain, &len), DUB_OK);
    assert_int_equal(len, strlen(texts[i]));
    assert_memory_equal(plain, texts[i], len);
    assert_int_equal(plain[len], '\0');
    dub_crypto_plain_free(plain);
    free(token);
  }
  /* Binary plaintext with NUL bytes, and NULL aad equals "". */
  unsigned char bin[300];
  for(size_t i = 0; i < sizeof bin; i++)
    bin[i] = (unsigned char)(i * 7);
  char *token = NULL, *plain = NULL;
  size_t len = 0;
  assert_int_equal(dub_crypto_seal(ring, bin, sizeof bin, NULL, &token), DUB_OK);
  assert_int_equal(dub_crypto_open(ring, token, "", &plain, &len), DUB_OK);
  assert_int_equal(len, sizeof bin);
  assert_memory_equal(plain, bin, sizeof bin);
  dub_crypto_plain_free(plain);
  free(token);
  dub_crypto_plain_free(NULL);
  dub_crypto_keyring_free(ring);
  dub_crypto_keyring_free(NULL);
}

static void test_random_iv(void **state)
{
  (void)state;
  struct dub_crypto_keyring *ring = ring_with("k1", KEY1, NULL, NULL);
  char *a = seal(ring, NAME, AAD), *b = seal(ring, NAME, AAD);
  assert_int_equal(strlen(a), strlen(b));
  assert_string_not_equal(a, b);
  /* Even the first ciphertext byte differs in all but 1/256 of the cases; compare the
   * IVs (first 16 bytes = first 21 characters after the prefix). */
  assert_memory_not_equal(a + 6, b + 6, 21);
  free(a);
  free(b);
  dub_crypto_keyring_free(ring);
}

static void test_tampering(void **state)
{
  (void)state;
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  struct dub_crypto_keyring *ring = ring_with("k1", KEY1, NULL, NULL);
  char *token = seal(ring, NAME, AAD);
  size_t n = strlen(token);
  size_t forbidden = 0;
  for(size_t i = 0; i < n; i++) {
    for(int variant = 0; variant < 2; variant++) {
      char *t = strdup(token);
      /* Another base64url character, or a flipped bit. */
      if(variant == 0) {
        const char *at = strchr(b64, t[i]);
        t[i] = at ? b64[((size_t)(at - b64) + 1) % 64] : 'x';
      } else {
        t[i] = (char)(t[i] ^ 0x01);
      }
      enum dub_err rc = open_token(ring, t, AAD);
      assert_int_not_equal(rc, DUB_OK);
      /* In the base64 part a changed character is an authentication failure (or, for
       * the last character, a non-canonical encoding). */
      if(i >= 6 && i + 1 < n && variant == 0) {
        assert_int_equal(rc, DUB_ERR_FORBIDDEN);
        forbidden++;
      }
      free(t);
    }
  }
  assert_true(forbidden > 50);
  /* Other aad. */
  assert_int_equal(open_token(ring, token, "reporter.name|C-2026-000043"),
                   DUB_ERR_FORBIDDEN);
  assert_int_equal(open_token(ring, token, NULL), DUB_ERR_FORBIDDEN);
  assert_int_equal(open_token(ring, token, AAD), DUB_OK);
  free(token);
  dub_crypto_keyring_free(ring);
}

/* Replaces the key id of 'token' (which must start "v1.<old>.") with 'kid'. */
static char *with_kid(const char *token, const char *kid)
{
  size_t at = 3 + strcspn(token + 3, "."); /* where ".<rest>" starts */
  assert_int_equal(token[at], '.');
  size_t n = 3 + strlen(kid) + strlen(token) - at + 1;
  char *t = malloc(n);
  snprintf(t, n, "v1.%s%s", kid, token + at);
  return t;
}

static void test_key_ids(void **state)
{
  (void)state;
  struct dub_crypto_keyring *ring = ring_with("k1", KEY1, "k2", KEY2);
  assert_string_equal(dub_crypto_keyring_current(ring), "k2");
  char *token = seal(ring, NAME, AAD);
  assert_int_equal(strncmp(token, "v1.k2.", 6), 0);
  /* Naming the other key of the ring: the tag no longer matches. */
  char *t = with_kid(token, "k1");
  assert_int_equal(open_token(ring, t, AAD), DUB_ERR_FORBIDDEN);
  free(t);
  /* An unknown key id. */
  t = with_kid(token, "k3");
  assert_int_equal(open_token(ring, t, AAD), DUB_ERR_NOT_FOUND);
  free(t);
  free(token);
  /* The same key material under another id does not open it either: the id is MAC'd. */
  struct dub_crypto_keyring *other = ring_with("k1", KEY2, NULL, NULL);
  token = seal(ring, NAME, AAD);
  t = with_kid(token, "k1");
  assert_int_equal(open_token(other, t, AAD), DUB_ERR_FORBIDDEN);
  assert_int_equal(open_token(other, token, AAD), DUB_ERR_NOT_FOUND);
  free(t);
  free(token);
  dub_crypto_keyring_free(other);
  dub_crypto_keyring_free(ring);
}

static void test_rotation(void **state)
{
  (void)state;
  struct dub_crypto_keyring *old = ring_with("k1", KEY1, NULL, NULL);
  char *token1 = seal(old, NAME, AAD);
  dub_crypto_keyring_free(old);

  struct dub_crypto_keyring *ring = ring_with("k1", KEY1, "k2", KEY2);
  char *token2 = seal(ring, NAME, AAD);
  assert_int_equal(strncmp(token2, "v1.k2.", 6), 0);
  char *plain = NULL;
  size_t len = 0;
  assert_int_equal(dub_crypto_open(ring, token1, AAD, &plain, &len), DUB_OK);
  assert_string_equal(plain, NAME);
  dub_crypto_plain_free(plain);
  assert_int_equal(dub_crypto_open(ring, token2, AAD, &plain, &len), DUB_OK);
  assert_string_equal(plain, NAME);
  dub_crypto_plain_free(plain);
  dub_crypto_keyring_free(ring);

  /* Once k1 is dropped its tokens no longer open. */
  ring = ring_with("k2", KEY2, NULL, NULL);
  assert_int_equal(open_token(ring, token1, AAD), DUB_ERR_NOT_FOUND);
  assert_int_equal(open_token(ring, token2, AAD), DUB_OK);
  dub_crypto_keyring_free(ring);
  free(token1);
  free(token2);
}

static void test_spec(void **state)
{
  (void)state;
  struct dub_crypto_keyring *ring = NULL, *again = NULL;
  char *why = NULL;
  assert_int_equal(dub_crypto_keyring_new(&ring), DUB_OK);
  assert_null(dub_crypto_keyring_current(ring));
  assert_int_equal(dub_crypto_keyring_add_spec(ring, "new=" KEY2 "," KEY1, &why), DUB_OK);
  assert_string_equal(dub_crypto_keyring_current(ring), "new");
  char *token = seal(ring, NAME, AAD);

  /* A key without an id gets a stable fingerprint id; the old key alone still opens. */
  assert_int_equal(dub_crypto_keyring_new(&again), DUB_OK);
  assert_int_equal(dub_crypto_keyring_add_spec(again, KEY1, &why), DUB_OK);
  const char *kid = dub_crypto_keyring_current(again);
  assert_int_equal(strlen(kid), 9);
  assert_int_equal(kid[0], 'k');
  char *old = seal(again, NAME, AAD);
  assert_int_equal(open_token(ring, old, AAD), DUB_OK);
  assert_int_equal(open_token(again, token, AAD), DUB_ERR_NOT_FOUND);
  free(old);
  free(token);
  dub_crypto_keyring_free(again);

  /* Errors name the entry, never the key. */
  assert_int_equal(dub_crypto_keyring_new(&again), DUB_OK);
  assert_int_equal(dub_crypto_keyring_add_spec(again, KEY1 ",abcd", &why),
                   DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "entry 2"));
  assert_null(strstr(why, "abcd"));
  free(why);
  why = NULL;
  assert_int_equal(dub_crypto_keyring_add_spec(again, "", &why), DUB_ERR_CONFIG);
  free(why);
  why = NULL;
  assert_int_equal(dub_crypto_keyring_add_spec(again, "bad.id=" KEY2, &why),
                   DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "key id"));
  free(why);
  dub_crypto_keyring_free(again);
  dub_crypto_keyring_free(ring);
}

static void test_bad_keys(void **state)
{
  (void)state;
  struct dub_crypto_keyring *ring = NULL;
  char *why = NULL;
  assert_int_equal(dub_crypto_keyring_new(&ring), DUB_OK);
  /* 31 bytes, 33 bytes, a non-hex digit, empty. */
  const char *bad[] = {
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
      "",
  };
  for(size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(dub_crypto_keyring_add_hex(ring, "k1", bad[i], true, &why),
                     DUB_ERR_CONFIG);
    assert_non_null(strstr(why, "64 hex digits"));
    if(bad[i][0])
      assert_null(strstr(why, "0001020304"));
    free(why);
    why = NULL;
  }
  assert_null(dub_crypto_keyring_current(ring));
  /* Bad key ids and duplicates. */
  assert_int_equal(dub_crypto_keyring_add_hex(ring, "", KEY1, true, NULL),
                   DUB_ERR_CONFIG);
  assert_int_equal(dub_crypto_keyring_add_hex(ring, "k.1", KEY1, true, NULL),
                   DUB_ERR_CONFIG);
  assert_int_equal(dub_crypto_keyring_add_hex(ring, "0123456789012345678901234567890123",
                                              KEY1, true, NULL),
                   DUB_ERR_CONFIG);
  assert_int_equal(dub_crypto_keyring_add_hex(ring, "k1", KEY1, true, NULL), DUB_OK);
  assert_int_equal(dub_crypto_keyring_add_hex(ring, "k1", KEY2, true, &why),
                   DUB_ERR_CONFIG);
  assert_non_null(strstr(why, "already"));
  free(why);
  /* An empty ring cannot seal or blind. */
  struct dub_crypto_keyring *empty = NULL;
  char *token = NULL, hex[DUB_CRYPTO_BLIND_HEX_LEN];
  assert_int_equal(dub_crypto_keyring_new(&empty), DUB_OK);
  assert_int_equal(dub_crypto_seal(empty, "x", 1, NULL, &token), DUB_ERR_INVALID);
  assert_null(token);
  assert_int_equal(dub_crypto_blind(empty, "x", 1, hex), DUB_ERR_INVALID);
  dub_crypto_keyring_free(empty);
  dub_crypto_keyring_free(ring);
}

static void test_malformed(void **state)
{
  (void)state;
  struct dub_crypto_keyring *ring = ring_with("k1", KEY1, NULL, NULL);
  char *token = seal(ring, NAME, AAD);
  size_t n = strlen(token);
  char buf[512];

  /* Every truncation is rejected; those too short to hold IV and tag, or whose length
   * cannot be base64, as malformed. */
  for(size_t i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, "%.*s", (int)i, token);
    enum dub_err rc = open_token(ring, buf, AAD);
    assert_int_not_equal(rc, DUB_OK);
    size_t b64 = i > 6 ? i - 6 : 0;
    if(i < 6 + 64 || b64 % 4 == 1)
      assert_int_equal(rc, DUB_ERR_MALFORMED);
  }
  const char *bad[] = {
      "",
      "v1",
      "v1.",
      "v1.k1",
      "v1.k1.",
      "v2.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "V1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "v1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "v1.k 1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      /* standard base64 characters and padding are not base64url */
      "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+AAAAAAA",
      "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/AAAAAAA",
      "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
      "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.",
      "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
      /* 47 bytes: one short of IV and tag */
      "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
  };
  for(size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    print_message("malformed %zu\n", i);
    assert_int_equal(open_token(ring, bad[i], AAD), DUB_ERR_MALFORMED);
  }
  assert_int_equal(open_token(ring, NULL, AAD), DUB_ERR_MALFORMED);
  /* Well-formed, 48 zero bytes: empty ciphertext and a wrong tag. */
  assert_int_equal(
      open_token(ring,
                 "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                 AAD),
      DUB_ERR_FORBIDDEN);
  /* A wrong version on a real token. */
  memcpy(buf, token, n + 1);
  buf[1] = '2';
  assert_int_equal(open_token(ring, buf, AAD), DUB_ERR_MALFORMED);
  free(token);
  dub_crypto_keyring_free(ring);
}

static void test_blind(void **state)
{
  (void)state;
  struct dub_crypto_keyring *ring = ring_with("k1", KEY1, NULL, NULL);
  struct dub_crypto_keyring *other = ring_with("k1", KEY2, NULL, NULL);
  char a[DUB_CRYPTO_BLIND_HEX_LEN], b[DUB_CRYPTO_BLIND_HEX_LEN];
  char c[DUB_CRYPTO_BLIND_HEX_LEN], d[DUB_CRYPTO_BLIND_HEX_LEN];
  const char *phone = "+8613800000000";
  assert_int_equal(dub_crypto_blind(ring, phone, strlen(phone), a), DUB_OK);
  assert_int_equal(dub_crypto_blind(ring, phone, strlen(phone), b), DUB_OK);
  assert_int_equal(strlen(a), 64);
  assert_string_equal(a, b);
  assert_int_equal(dub_crypto_blind(ring, "+8613800000001", 14, c), DUB_OK);
  assert_string_not_equal(a, c);
  assert_int_equal(dub_crypto_blind(other, phone, strlen(phone), d), DUB_OK);
  assert_string_not_equal(a, d);
  /* Not the plain SM3 of the data: a key is needed to compute it. */
  char plain_sm3[65];
  sm3_hex(phone, strlen(phone), plain_sm3);
  assert_string_not_equal(a, plain_sm3);
  for(const char *p = a; *p; p++)
    assert_true(strchr("0123456789abcdef", *p));
  dub_crypto_keyring_free(other);
  dub_crypto_keyring_free(ring);
}

/* Review C11: a delivery report's MAC was checked under the current key only, so after
 * a rotation every report for an SMS sent before it was refused. */
static void test_blind_matches_any_key(void **state)
{
  (void)state;
  struct dub_crypto_keyring *before = ring_with("k1", KEY1, NULL, NULL);
  struct dub_crypto_keyring *after = ring_with("k1", KEY1, "k2", KEY2); /* k2 current */
  struct dub_crypto_keyring *other = ring_with("k3", KEY2, NULL, NULL);
  char old_mac[DUB_CRYPTO_BLIND_HEX_LEN], new_mac[DUB_CRYPTO_BLIND_HEX_LEN];
  const char *what = "dlr:0123abcd";
  assert_int_equal(dub_crypto_blind(before, what, strlen(what), old_mac), DUB_OK);
  assert_int_equal(dub_crypto_blind(after, what, strlen(what), new_mac), DUB_OK);
  assert_string_not_equal(old_mac, new_mac);
  assert_true(dub_crypto_blind_matches(after, what, strlen(what), old_mac));
  assert_true(dub_crypto_blind_matches(after, what, strlen(what), new_mac));
  assert_true(dub_crypto_blind_matches(before, what, strlen(what), old_mac));
  assert_false(dub_crypto_blind_matches(before, what, strlen(what), new_mac));
  assert_false(dub_crypto_blind_matches(other, what, strlen(what), old_mac));
  assert_false(dub_crypto_blind_matches(after, "dlr:0123abce", 12, old_mac));
  char upper[DUB_CRYPTO_BLIND_HEX_LEN];
  for(size_t i = 0; i < sizeof upper; i++)
    upper[i] =
        (char)(old_mac[i] >= 'a' && old_mac[i] <= 'f' ? old_mac[i] - 32 : old_mac[i]);
  assert_true(
      dub_crypto_blind_matches(after, what, strlen(what), upper)); /* hex either case */
  old_mac[63] = '\0';
  assert_false(dub_crypto_blind_matches(after, what, strlen(what), old_mac)); /* short */
  assert_false(dub_crypto_blind_matches(after, what, strlen(what), "zz"));
  assert_false(dub_crypto_blind_matches(after, what, strlen(what), NULL));
  dub_crypto_keyring_free(other);
  dub_crypto_keyring_free(after);
  dub_crypto_keyring_free(before);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sm4_vector),
      cmocka_unit_test(test_sm3_vectors),
      cmocka_unit_test(test_sha256_hex),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_random_iv),
      cmocka_unit_test(test_tampering),
      cmocka_unit_test(test_key_ids),
      cmocka_unit_test(test_rotation),
      cmocka_unit_test(test_spec),
      cmocka_unit_test(test_bad_keys),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_blind),
      cmocka_unit_test(test_blind_matches_any_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
