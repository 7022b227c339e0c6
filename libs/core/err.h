/* err.h - the one error enum of Duban and the table that maps it to the wire. */
#ifndef DUB_CORE_ERR_H
#define DUB_CORE_ERR_H

/* Fallible functions return enum dub_err; DUB_OK is 0 so `if(rc) goto out;` works.
 * Each value has one row in the table of err.c: a stable lower-case code for the JSON
 * error shape, the HTTP status it answers with, and a default message. */
enum dub_err {
  DUB_OK = 0,
  DUB_ERR_INVALID,         /* a caller passed something unusable (not a wire error) */
  DUB_ERR_MALFORMED,       /* 400: not parseable: bad JSON, bad UTF-8, duplicate keys */
  DUB_ERR_UNAUTHENTICATED, /* 401: no or unknown bearer token */
  DUB_ERR_FORBIDDEN,       /* 403: token lacks the scope, or the source is not its own */
  DUB_ERR_NOT_FOUND,       /* 404 */
  DUB_ERR_METHOD,          /* 405: path exists, method does not */
  DUB_ERR_CONFLICT,        /* 409: not allowed in the current state */
  DUB_ERR_TOO_LARGE,       /* 413 */
  DUB_ERR_MEDIA_TYPE,      /* 415 */
  DUB_ERR_SCHEMA,          /* 422: well-formed but violates the schema */
  DUB_ERR_RATE_LIMITED,    /* 429 */
  DUB_ERR_UNAVAILABLE,     /* 503: a dependency (Kafka, Redis) is not usable now */
  DUB_ERR_TIMEOUT,         /* 503 on the wire: an operation did not finish in time */
  DUB_ERR_IO,              /* 500: a system call or file failed */
  DUB_ERR_CONFIG,          /* a configuration value or file is wrong */
  DUB_ERR_UNSUPPORTED,     /* a feature (e.g. a schema keyword) is not implemented */
  DUB_ERR_INTERNAL,        /* 500: a bug or a library failure we cannot classify */
  DUB_ERR_INVALID_TRANSITION, /* 409: a case event its lifecycle does not allow now */
  DUB_ERR__COUNT
};

/* Stable machine-readable code, e.g. "schema_violation". Never NULL. */
const char *dub_err_code(enum dub_err err);
/* HTTP status that answers this error (500 for errors that are not wire errors). */
int dub_err_status(enum dub_err err);
/* Default human message, lower case, e.g. "request body is too large". Never NULL. */
const char *dub_err_message(enum dub_err err);

#endif
