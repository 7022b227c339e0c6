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

/* True when 's' has the shape of a case id. */
int intake_caseid_valid(const char *s);

#endif
