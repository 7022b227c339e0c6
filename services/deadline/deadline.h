/* deadline.h - the deadline service's context, shared by its files. */
#ifndef DEADLINE_DEADLINE_H
#define DEADLINE_DEADLINE_H

#include "core/err.h"

struct dub_runtime;
struct dub_kafka_msg;
struct dub_http_route;

struct deadline {
  struct dub_runtime *rt;
};

/* The Redis key of a case's document. Returns a new string. */
char *deadline_case_key(const char *case_id);

/* on_case_event.c: keeps each case's document from the events on duban.cases. */
enum dub_err deadline_on_case_event(void *ctx, const struct dub_kafka_msg *msg,
                                    char **why);

/* get_case.c: GET /v1/cases/{case_id}. */
extern const struct dub_http_route deadline_route_get_case;

#endif
