/* assignment.h - the assignment service's context, shared by its files. */
#ifndef ASSIGNMENT_ASSIGNMENT_H
#define ASSIGNMENT_ASSIGNMENT_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct dub_runtime;
struct dub_cache;
struct dub_cache_pipeline;
struct dub_config;
struct dub_schema;
struct dub_kafka_msg;
struct dub_http_route;
struct assignment_model;
struct assignment_keeper;
struct assignment_decoder;

struct assignment {
  struct dub_runtime *rt;
  /* The consumer's own Redis connection, so its pipelines never hold up queries. */
  struct dub_cache *cache;
  /* schemas/events/<type>.json of the types assignment acts on. */
  struct dub_schema *received, *returned, *closed, *cancelled;
  char script_sha[48];                /* the commit script, once loaded into Redis */
  struct dub_cache_pipeline *commits; /* consumer thread: reused batch after batch */
  struct assignment_keeper *keeper;
  struct assignment_decoder *decoder; /* NULL: the consumer's thread decodes alone */
  /* Consumer thread only: the model compiled from 'compiled_from'. */
  struct dub_config *compiled_from;
  struct assignment_model *model;
};

/* ---- config.c ---------------------------------------------------------------------- */

/* Opens what the service needs beyond the runtime: its Redis connection and the event
 * schemas under 'schema_dir'. DUB_ERR_* with a new *why. */
enum dub_err assignment_open(struct assignment *a, const char *redis_url,
                             const char *schema_dir, char **why);
void assignment_close(struct assignment *a);

/* The runtime's configuration check: rules.json and directory.json must compile
 * (cross-references, see assignment_model_new). Runs at start and on SIGHUP. */
enum dub_err assignment_check_config(void *ctx, const struct dub_config *config,
                                     char **why);

/* The model of the running configuration, compiled again when a reload replaced it.
 * Borrowed until the next call. Consumer thread only. */
const struct assignment_model *assignment_model_current(struct assignment *a);

/* ---- keys (store.c) ---------------------------------------------------------------- */

/* Each returns a new string. Keys of one case carry its id as hash tag. */
/* hash: seq, doc (casestate.h), published (the latest attempt in duban.cases) */
char *assignment_state_key(const char *case_id);
char *assignment_officer_key(const char *officer); /* open cases of an officer */
char *assignment_manual_key(const char *unit);     /* open cases of a unit with nobody */
/* Present once every workload and case state is complete (built or rebuilt). */
#define ASSIGNMENT_COMPLETE_KEY "duban:assignment:complete"
/* Held by the one instance that rebuilds. */
#define ASSIGNMENT_REBUILD_KEY "duban:assignment:rebuilding"
#define ASSIGNMENT_WORKLOAD_PATTERN "duban:workload:*"

/* ---- keeper.c ---------------------------------------------------------------------- */

/* Starts the thread that watches ASSIGNMENT_COMPLETE_KEY and, when it is missing,
 * rebuilds every case state and workload from duban.cases (one instance at a time).
 * Not ready until then. */
enum dub_err assignment_keeper_start(struct assignment *a, char **why);
void assignment_keeper_stop(struct assignment *a);
/* Whether case states and workloads are complete; else a new *reason. Any thread. */
bool assignment_keeper_ready(struct assignment *a, char **reason);
struct dub_http_reply;
/* For queries: while states are incomplete a missing answer would be a wrong 404, so
 * this answers 503 with the reason and returns true; false when ready. */
bool assignment_reply_unready(struct assignment *a, struct dub_http_reply *reply);
/* Tells the keeper that a write found the complete marker missing. Any thread. */
void assignment_keeper_poke(struct assignment *a);

/* ---- on_case_events.c -------------------------------------------------------------- */

struct dub_case_event;
/* Validates the data of an event assignment acts on (received, returned, closed,
 * cancelled) against its schema; DUB_ERR_SCHEMA with a new *why naming the pointers.
 * DUB_OK for any other type. */
enum dub_err assignment_event_check(struct assignment *a, const struct dub_case_event *ev,
                                    char **why);

/* Starts / stops the thread that decodes half of each large batch beside the
 * consumer's thread (on_case_events.c). */
void assignment_decoder_start(struct assignment *a);
void assignment_decoder_stop(struct assignment *a);

/* The batch handler of duban.cases: received and returned cases are (re)assigned and
 * duban.case.assigned is published; closed and cancelled ones leave the workload. */
void assignment_on_case_events(void *ctx, const struct dub_kafka_msg *msgs, size_t n,
                               enum dub_err *results, char **whys);

/* ---- routes ------------------------------------------------------------------------ */

extern const struct dub_http_route assignment_route_get;
extern const struct dub_http_route assignment_route_workload;

#endif
