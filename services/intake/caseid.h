/* caseid.h - case ids sortable by time and unique across replicas without coordination.
 */
#ifndef INTAKE_CASEID_H
#define INTAKE_CASEID_H

#include "core/err.h"

#include <stdint.h>

/* "DB" + 26 Crockford base32 characters: 48 bits of milliseconds then 80 random bits
 * (the ULID layout), so ids sort by creation time and two replicas collide with
 * probability about 2^-80 per millisecond. */
#define INTAKE_CASEID_LEN 28

/* Writes a new id for instant 'ms' into 'out' (INTAKE_CASEID_LEN + 1 bytes). Takes its
 * randomness from getrandom(2); DUB_ERR_IO if that fails. */
enum dub_err intake_caseid_new(int64_t ms, char out[INTAKE_CASEID_LEN + 1]);

struct dub_crypto_keyring;

/* The id of the case a reported problem opens, derived from what identifies the problem
 * (review C12j): 48 bits of 'ms' (the event's own "time", which its publisher sends
 * again with a retry), then the first 80 bits of HMAC-SM3 under the ring's current
 * blinding key of source NUL id. The same event gives the same case id on every
 * replica and at every retry, even one that comes after its claim expired and its
 * first copy did land, so every later stage deduplicates it by event id; another event
 * collides with probability about 2^-80 per millisecond; and neither source nor id can
 * be read back from it. A retry across a rotation of the current key gets another id.
 * DUB_ERR_INVALID for an empty ring. */
enum dub_err intake_caseid_derive(const struct dub_crypto_keyring *ring, int64_t ms,
                                  const char *source, const char *id,
                                  char out[INTAKE_CASEID_LEN + 1]);

/* True when 's' has the shape of a case id. */
int intake_caseid_valid(const char *s);

#endif
