/* caseid.c - ULID-layout case ids with a "DB" prefix. */
#include "caseid.h"

#include "core/alloc.h"
#include "core/hex.h"
#include "crypto/crypto.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* "DB", 'ms' in 10 characters, the 80 bits of rnd in 16. */
static void encode(int64_t ms, const unsigned char rnd[10],
                   char out[INTAKE_CASEID_LEN + 1])
{
  uint64_t t = (uint64_t)ms & 0xFFFFFFFFFFFFULL;
  out[0] = 'D';
  out[1] = 'B';
  /* 48-bit time in 10 characters (the first carries 3 bits). */
  for(int i = 9; i >= 0; i--) {
    out[2 + i] = alphabet[t & 31];
    t >>= 5;
  }
  /* 80 random bits in 16 characters. */
  uint64_t hi = 0, lo = 0;
  for(int i = 0; i < 5; i++)
    hi = hi << 8 | rnd[i];
  for(int i = 5; i < 10; i++)
    lo = lo << 8 | rnd[i];
  for(int i = 7; i >= 0; i--) {
    out[12 + i] = alphabet[hi & 31];
    hi >>= 5;
    out[20 + i] = alphabet[lo & 31];
    lo >>= 5;
  }
  out[INTAKE_CASEID_LEN] = '\0';
}

enum dub_err intake_caseid_new(int64_t ms, char out[INTAKE_CASEID_LEN + 1])
{
  unsigned char rnd[10];
  if(getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
    return DUB_ERR_IO;
  encode(ms, rnd, out);
  return DUB_OK;
}

enum dub_err intake_caseid_derive(const struct dub_crypto_keyring *ring, int64_t ms,
                                  const char *source, const char *id,
                                  char out[INTAKE_CASEID_LEN + 1])
{
  size_t ls = strlen(source), li = strlen(id);
  char *both = dub_xmalloc(ls + 1 + li);
  memcpy(both, source, ls + 1); /* with its NUL: ("a", "bc") is not ("ab", "c") */
  memcpy(both + ls + 1, id, li);
  char mac[DUB_CRYPTO_BLIND_HEX_LEN];
  enum dub_err rc = dub_crypto_blind(ring, both, ls + 1 + li, mac);
  free(both);
  if(rc)
    return rc;
  unsigned char bits[10];
  if(!dub_hex_decode(mac, 20, bits, sizeof bits))
    return DUB_ERR_INTERNAL;
  encode(ms, bits, out);
  return DUB_OK;
}

int intake_caseid_valid(const char *s)
{
  if(!s || strlen(s) != INTAKE_CASEID_LEN || s[0] != 'D' || s[1] != 'B')
    return 0;
  for(int i = 2; i < INTAKE_CASEID_LEN; i++)
    if(!strchr(alphabet, s[i]))
      return 0;
  return s[2] <= '7';
}
