/* writes.h - the Redis writes of one poll of duban.cases, merged before they are sent. */
#ifndef DEADLINE_WRITES_H
#define DEADLINE_WRITES_H

#include "cache/cache.h"

#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>

/* What a poll's events change, gathered: each member of a set or sorted set ends as the
 * poll's last change of it left it (one SADD/SREM, ZADD/ZREM per key for all its
 * members), counters add up (one HINCRBY per field), and documents are
 * SET in the order they were given, after everything else. Redis ends as it would
 * after the same commands one at a time, in the order given. A rebuild applies a few
 * hundred events per poll, each of which changed a dozen keys one command at a time. */
struct deadline_writes;

/* Returns a new object; free with deadline_writes_free(). */
struct deadline_writes *deadline_writes_new(void);
void deadline_writes_free(struct deadline_writes *w);

void deadline_writes_zadd(struct deadline_writes *w, const char *key, int64_t score,
                          const char *member);
void deadline_writes_zrem(struct deadline_writes *w, const char *key, const char *member);
void deadline_writes_sadd(struct deadline_writes *w, const char *key, const char *member);
void deadline_writes_srem(struct deadline_writes *w, const char *key, const char *member);
void deadline_writes_hincrby(struct deadline_writes *w, const char *key,
                             const char *field, long long by);
/* SET key text (copied). */
void deadline_writes_set(struct deadline_writes *w, const char *key, const char *text);
/* SET key <doc as compact JSON>. */
void deadline_writes_set_json(struct deadline_writes *w, const char *key,
                              const json_t *doc);

/* Forgets everything gathered. */
void deadline_writes_clear(struct deadline_writes *w);
/* True when nothing was gathered since the last flush. */
bool deadline_writes_empty(const struct deadline_writes *w);
/* Appends the merged commands to 'p' (members in chunks of at most
 * DEADLINE_WRITES_CHUNK per command), the documents last, and empties 'w'. */
void deadline_writes_flush(struct deadline_writes *w, struct dub_cache_pipeline *p);

#define DEADLINE_WRITES_CHUNK 512

#endif
