/* assignment.h - the assignment service's context, shared by its files. */
#ifndef ASSIGNMENT_ASSIGNMENT_H
#define ASSIGNMENT_ASSIGNMENT_H

#include "core/err.h"

struct dub_runtime;
struct dub_kafka_msg;
struct dub_http_route;

struct assignment {
  struct dub_runtime *rt;
};

/* The Redis key of a case's current assignment. Returns a new string. */
char *assignment_key(const char *case_id);

/* on_received.c: duban.case.received on duban.cases becomes duban.case.assigned. */
enum dub_err assignment_on_case_event(void *ctx, const struct dub_kafka_msg *msg,
                                      char **why);

/* get_assignment.c: GET /v1/assignments/{case_id}. */
extern const struct dub_http_route assignment_route_get;

#endif
