/* accept.h - the one path every inbound event takes, from HTTP or from duban.inbound:
 * validation, source check, deduplication, case id, reporter sealing, and the write to
 * duban.cases. */
#ifndef INTAKE_ACCEPT_H
#define INTAKE_ACCEPT_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>

struct intake;
struct dub_auth_client;

/* What became of one event, as answered to its publisher. */
struct intake_result {
  enum dub_err err; /* DUB_OK: accepted or duplicate */
  bool duplicate;
  char case_id[72];
  char *message;   /* for errors: a new string, or NULL for the table's default */
  json_t *details; /* for errors: a JSON array, or NULL */
};

/* Frees what a result owns. */
void intake_result_release(struct intake_result *result);

/* The result as the JSON of one answer: {"id", "case_id", "status"} or the error shape.
 * Returns a new object; takes the message and details out of 'result'. */
json_t *intake_result_json(struct intake_result *result, const char *event_id);

/* Told once what became of an event. Runs on the caller's thread when the event was
 * settled without Kafka (rejected, duplicate), else on the producer's poll thread after
 * Kafka answered. Owns 'result' for the call only. */
typedef void (*intake_done_fn)(void *opaque, struct intake_result *result);

/* Takes one event (borrowed; it may be any JSON value) through the whole path. The
 * event's data may be changed on the way (its reporter block is sealed in place).
 * 'client' is the authenticated HTTP client, or NULL for an event read from duban.inbound
 * (its source must then belong to some client of clients.json). 'done' runs exactly once.
 */
void intake_accept(struct intake *in, json_t *event, const struct dub_auth_client *client,
                   const char *client_id, intake_done_fn done, void *opaque);

/* The same for 'n' events at once, with their Redis claims in one round trip: for
 * batches. opaques[i] goes with events[i]. */
void intake_accept_many(struct intake *in, json_t *const *events, size_t n,
                        const struct dub_auth_client *client, const char *client_id,
                        intake_done_fn done, void *const *opaques);

/* The claimer thread that claims and writes queued events; start before taking events,
 * stop (it writes what is queued first; later events are answered 503) before the
 * producer is flushed, free after. */
void intake_claimer_start(struct intake *in);
void intake_claimer_stop(struct intake *in);
void intake_claimer_free(struct intake *in);

/* The Redis key of what became of event 'id' of 'source'. Returns a new string. */
char *intake_event_key(const char *source, const char *id);

#endif
