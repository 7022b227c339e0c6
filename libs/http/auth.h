/* auth.h - bearer-token clients from clients.json: who is calling, with which scopes,
 * publishing for which CloudEvents sources. */
#ifndef DUB_HTTP_AUTH_H
#define DUB_HTTP_AUTH_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* An immutable, reference-counted set of clients. Swap a whole set on reload: requests
 * that started with the old set keep it until they finish. */
struct dub_auth;
/* One client of a set; valid while a reference on its set is held. */
struct dub_auth_client;

/* Builds a set from a clients.json document,
 * {"clients": [{"id", "token_sha256", "sources": [], "scopes": []}]}. 'doc' is borrowed
 * for the call. Types, the 64 hex digits of token_sha256, and the uniqueness of ids and
 * token hashes are checked again here. On success *out is a new set holding one
 * reference (drop it with dub_auth_unref()); on failure returns DUB_ERR_CONFIG and sets
 * *why to a new message naming the offending entry (free with free()). */
enum dub_err dub_auth_new(const json_t *doc, struct dub_auth **out, char **why);

/* Takes one more reference; returns 'auth'. NULL gives NULL. Thread-safe. */
struct dub_auth *dub_auth_ref(struct dub_auth *auth);
/* Drops one reference; the last one frees the set. NULL is a no-op. Thread-safe. */
void dub_auth_unref(struct dub_auth *auth);

/* Number of clients in the set. */
size_t dub_auth_count(const struct dub_auth *auth);

/* The client whose token_sha256 is the SHA-256 of 'token', or NULL (also for a NULL or
 * empty token). Compares every client's hash in constant time. The token is never
 * logged. Borrowed until the caller's reference on 'auth' is dropped. Thread-safe. */
const struct dub_auth_client *dub_auth_find(const struct dub_auth *auth,
                                            const char *token);

/* The client's id. Borrowed like the client. */
const char *dub_auth_client_id(const struct dub_auth_client *client);
/* Whether the client holds 'scope' (exact match). NULL client or scope gives false. */
bool dub_auth_client_has_scope(const struct dub_auth_client *client, const char *scope);
/* Whether the client may publish events whose CloudEvents `source` is 'source'
 * (exact match against its "sources" list). */
bool dub_auth_client_may_use_source(const struct dub_auth_client *client,
                                    const char *source);
/* The client's scopes: *n gets the count; the array is borrowed like the client. */
const char *const *dub_auth_client_scopes(const struct dub_auth_client *client,
                                          size_t *n);

#endif
