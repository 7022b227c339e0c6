/* store.h - the consumer's Redis work: case states, workloads, round-robin tickets and
 * the one script that commits a case's new state with its workload change. */
#ifndef ASSIGNMENT_STORE_H
#define ASSIGNMENT_STORE_H

#include "model.h"

#include "cache/cache.h"
#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* One case's stored state: 'state' is a new reference (NULL when none), 'seq' counts
 * the commits made to it (0 when none), 'published' is the latest attempt known to be
 * in duban.cases (0 when none). */
struct assignment_stored {
  json_t *state;
  long long seq;
  long long published;
};

/* Reads the states of 'n' cases in one round trip into out[0..n-1]. DUB_ERR_UNAVAILABLE
 * when Redis does not answer; DUB_ERR_INTERNAL when a stored state is not JSON
 * (logged). On failure every out[i].state is NULL. */
enum dub_err assignment_store_load(struct dub_cache *cache, const char *const *case_ids,
                                   size_t n, struct assignment_stored *out);

/* In one round trip: reads the open cases of every officer of each unit u with
 * want[u] into load[] (indexed like model->officers), and takes count[u] tickets of
 * unit u's round-robin rotation, the first of them in first[u] (count[u] may be 0). */
enum dub_err assignment_store_prepare(struct dub_cache *cache,
                                      const struct assignment_model *model,
                                      const bool *want, const unsigned *count,
                                      long long *load, unsigned long long *first);

/* Loads the commit script; *sha (at least 41 bytes) names it for EVALSHA. */
enum dub_err assignment_store_load_script(struct dub_cache *cache, char *sha);

/* One commit: the case's state moves from seq to seq + 1 and each counter keys[i]
 * moves by deltas[i]. */
struct assignment_commit {
  const char *case_id;
  long long seq;
  const json_t *state;
  const char *keys[2];
  long long deltas[2];
  size_t ncounters;
};

/* Appends the EVALSHA of one commit to 'pipeline'. The script refuses it when the
 * complete marker is missing (a rebuild is due) or the stored seq is not c->seq. */
void assignment_store_commit_add(struct dub_cache_pipeline *pipeline, const char *sha,
                                 const struct assignment_commit *c);

/* Appends the note that the case's assignment 'attempt' is in duban.cases, so that a
 * redelivery of its input does not publish it again. */
void assignment_store_published_add(struct dub_cache_pipeline *pipeline,
                                    const char *case_id, long long attempt);

/* The outcome of one commit's reply: DUB_OK; DUB_ERR_CONFLICT when the state moved on
 * meanwhile (another instance); DUB_ERR_UNAVAILABLE when the marker was missing
 * (*rebuild set) or Redis failed it, *noscript set when the script was unknown. */
enum dub_err assignment_store_commit_result(const struct dub_cache_reply *reply,
                                            bool *rebuild, bool *noscript);

#endif
