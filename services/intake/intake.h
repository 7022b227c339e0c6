/* intake.h - the intake service's context, shared by its files. */
#ifndef INTAKE_INTAKE_H
#define INTAKE_INTAKE_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct dub_runtime;
struct dub_schema;
struct dub_crypto_keyring;
struct dub_http_route;
struct dub_kafka_msg;

/* Intake's own environment (the common one is the runtime's). */
struct intake_conf {
  char *pii_key; /* DUBAN_PII_KEY: "hex" or "kid=hex,..." (required) */
  char *source;  /* DUBAN_INTAKE_SOURCE [/duban/intake]: source of events intake emits */
};

/* The schemas of one inbound event type. */
struct intake_type {
  const char *type;        /* "duban.problem.reported", "duban.case.accepted", ... */
  struct dub_schema *data; /* schemas/events/<type>.json */
};

#define INTAKE_NTYPES 10

/* The Redis hash holding the index's checkpoint; while it is absent the index is being
 * built and intake accepts nothing (it could not recognise a duplicate). */
#define INTAKE_INDEX_KEY "duban:intake:index"
/* Headers on every record intake writes to duban.cases: the publisher's source and id
 * of the event it came from (the dedup key; the record's key is the case id). */
#define INTAKE_ORIGIN_SOURCE_HEADER "duban-origin-source"
#define INTAKE_ORIGIN_ID_HEADER "duban-origin-id"

struct intake_index;
struct intake_recorder;
struct intake_claimer;

struct intake {
  struct dub_runtime *rt;
  struct intake_conf conf;
  struct dub_crypto_keyring *keys;
  struct dub_schema *envelope; /* schemas/cloudevent.json */
  struct intake_type types[INTAKE_NTYPES];
  struct intake_index *index;
  struct intake_recorder *recorder;
  struct intake_claimer *claimer;
};

/* config.c: reads intake's environment and opens its keys and schemas. */
enum dub_err intake_open(struct intake *in, const char *schema_dir, char **why);
void intake_close(struct intake *in);
/* The schema for an inbound type, or NULL when intake does not take that type. */
const struct intake_type *intake_type_find(const struct intake *in, const char *type);

/* index.c: the deduplication index, rebuilt from duban.cases by a background thread. */
enum dub_err intake_index_start(struct intake *in, char **why);
/* Stops the index's thread and closes its reader and connection; it reads as not
 * ready from then on. Its memory stays until intake_index_free(), once no HTTP thread
 * (readiness) or claimer can ask. */
void intake_index_stop(struct intake *in);
void intake_index_free(struct intake *in);
/* True once the index has caught up with duban.cases since it last (re)started. */
bool intake_index_ready(struct intake *in);
/* Asks the index to start over from the beginning (Redis lost it). */
void intake_index_rebuild(struct intake *in);

/* recorder.c: writes accepted records to Redis in the background, in pipelines.
 * Started before the runtime opens: HTTP threads queue rejections from the start. */
enum dub_err intake_recorder_start(struct intake *in, const char *redis_url, char **why);
void intake_recorder_stop(struct intake *in);
/* Told once the record was written, or its write failed (it is retried without another
 * call) or was given up; runs on the recorder's thread (or the caller's when the queue
 * is full). */
typedef void (*intake_written_fn)(void *opaque);
/* Queues SET key value EX ttl (and SET case_key 1 unless NULL), or DEL key when
 * 'value' is NULL (then 'ttl' and 'case_key' are NULL too). Strings are copied;
 * 'written' (optional) is called exactly once with 'opaque'. Any thread; never blocks on
 * Redis. */
void intake_recorder_add(struct intake *in, const char *key, const char *value,
                         const char *ttl, const char *case_key, intake_written_fn written,
                         void *opaque);
/* Queues SET key value NX EX ttl: what is there already stays. Any thread; never
 * blocks on Redis (dropped when the queue is full). */
void intake_recorder_add_if_absent(struct intake *in, const char *key, const char *value,
                                   const char *ttl);

/* on_inbound.c: the batch handler of duban.inbound. */
void intake_on_inbound(void *ctx, const struct dub_kafka_msg *msgs, size_t n,
                       enum dub_err *results, char **whys);

/* post_events.c: POST /v1/events. */
extern const struct dub_http_route intake_route_post_events;
/* get_event.c: GET /v1/events/{source}/{id}. */
extern const struct dub_http_route intake_route_get_event;

#endif
