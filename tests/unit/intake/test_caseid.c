/* test_caseid.c - case ids: shape, time order, uniqueness, and derived ids. */
#include "caseid.h"

#include "core/hex.h"
#include "crypto/crypto.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int cmp(const void *a, const void *b)
{
  return strcmp(a, b);
}

static void test_shape_order_unique(void **state)
{
  (void)state;
  enum { N = 20000 };
  char(*ids)[INTAKE_CASEID_LEN + 1] = calloc(N, sizeof *ids);
  int64_t base = 1790000000000; /* 2026 */
  for(int i = 0; i < N; i++) {
    /* Ten ids per millisecond. */
    assert_int_equal(intake_caseid_new(base + i / 10, ids[i]), DUB_OK);
    assert_true(intake_caseid_valid(ids[i]));
    assert_int_equal(strlen(ids[i]), INTAKE_CASEID_LEN);
    if(i >= 10)
      assert_true(strcmp(ids[i - 10], ids[i]) < 0); /* a later millisecond sorts after */
  }
  qsort(ids, N, sizeof *ids, cmp);
  for(int i = 1; i < N; i++)
    assert_string_not_equal(ids[i - 1], ids[i]);
  free(ids);
}

static void test_valid(void **state)
{
  (void)state;
  assert_false(intake_caseid_valid(NULL));
  assert_false(intake_caseid_valid(""));
  assert_false(intake_caseid_valid("DB01JD0000000000000000000000X"));
  assert_false(intake_caseid_valid("XX01JD000000000000000000000"));
  assert_false(
      intake_caseid_valid("DB01JD00000000000000000000I")); /* I is not Crockford */
  assert_false(intake_caseid_valid("DB81JD0000000000000000000000")); /* time overflow */
  assert_true(intake_caseid_valid("DB01JD0000000000000000000000"));
}

static struct dub_crypto_keyring *ring_of(const char *hex)
{
  struct dub_crypto_keyring *ring = NULL;
  char *why = NULL;
  assert_int_equal(dub_crypto_keyring_new(&ring), DUB_OK);
  assert_int_equal(dub_crypto_keyring_add_hex(ring, "k1", hex, true, &why), DUB_OK);
  return ring;
}

/* The 80 bits in the last 16 characters, as 20 hex digits. */
static void tail_hex(const char *id, char out[21])
{
  static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  unsigned char bits[10];
  for(int half = 0; half < 2; half++) {
    uint64_t v = 0;
    for(int i = 0; i < 8; i++)
      v = v << 5 | (uint64_t)(strchr(alphabet, id[12 + half * 8 + i]) - alphabet);
    for(int i = 4; i >= 0; i--) {
      bits[half * 5 + i] = (unsigned char)(v & 0xff);
      v >>= 8;
    }
  }
  dub_hex_encode(bits, sizeof bits, out);
}

static void test_derived(void **state)
{
  (void)state;
  const char *key1 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  const char *key2 = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
  struct dub_crypto_keyring *r1 = ring_of(key1), *r2 = ring_of(key2), *empty = NULL;
  int64_t ms = 1790000000000;
  char a[INTAKE_CASEID_LEN + 1], b[INTAKE_CASEID_LEN + 1], c[INTAKE_CASEID_LEN + 1],
      fresh[INTAKE_CASEID_LEN + 1];
  /* The same event: the same id, whenever and wherever it is derived. */
  assert_int_equal(intake_caseid_derive(r1, ms, "/gov/hotline-12345", "e-1", a), DUB_OK);
  assert_int_equal(intake_caseid_derive(r1, ms, "/gov/hotline-12345", "e-1", b), DUB_OK);
  assert_string_equal(a, b);
  assert_true(intake_caseid_valid(a));
  /* Its time is the event's: the first 12 characters of a new id at that instant. */
  assert_int_equal(intake_caseid_new(ms, fresh), DUB_OK);
  assert_memory_equal(a, fresh, 12);
  /* The 80 bits are the first of HMAC-SM3(blinding key, source NUL id). */
  char mac[DUB_CRYPTO_BLIND_HEX_LEN], tail[21];
  static const char both[] = "/gov/hotline-12345\0e-1";
  assert_int_equal(dub_crypto_blind(r1, both, sizeof both - 1, mac), DUB_OK);
  tail_hex(a, tail);
  assert_memory_equal(tail, mac, 20);
  /* Another id, another source, the same bytes split otherwise, another key: others. */
  assert_int_equal(intake_caseid_derive(r1, ms, "/gov/hotline-12345", "e-2", c), DUB_OK);
  assert_string_not_equal(a, c);
  assert_int_equal(intake_caseid_derive(r1, ms, "/gov/letters", "e-1", c), DUB_OK);
  assert_string_not_equal(a, c);
  assert_int_equal(intake_caseid_derive(r1, ms, "ab", "c", b), DUB_OK);
  assert_int_equal(intake_caseid_derive(r1, ms, "a", "bc", c), DUB_OK);
  assert_string_not_equal(b, c);
  assert_int_equal(intake_caseid_derive(r2, ms, "/gov/hotline-12345", "e-1", c), DUB_OK);
  assert_string_not_equal(a, c);
  assert_memory_equal(a, c, 12);
  assert_int_equal(dub_crypto_keyring_new(&empty), DUB_OK);
  assert_int_equal(intake_caseid_derive(empty, ms, "s", "i", c), DUB_ERR_INVALID);
  dub_crypto_keyring_free(empty);
  dub_crypto_keyring_free(r2);
  dub_crypto_keyring_free(r1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shape_order_unique),
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_derived),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
