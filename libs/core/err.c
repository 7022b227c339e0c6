/* err.c - the error table: one row per enum dub_err. */
#include "core/err.h"

static const struct {
  const char *code;
  int status;
  const char *message;
} table[DUB_ERR__COUNT] = {
    [DUB_OK] = {"ok", 200, "ok"},
    [DUB_ERR_INVALID] = {"invalid_argument", 500, "invalid argument"},
    [DUB_ERR_MALFORMED] = {"malformed", 400, "request is malformed"},
    [DUB_ERR_UNAUTHENTICATED] = {"unauthenticated", 401,
                                 "a valid bearer token is required"},
    [DUB_ERR_FORBIDDEN] = {"forbidden", 403, "not allowed for this client"},
    [DUB_ERR_NOT_FOUND] = {"not_found", 404, "not found"},
    [DUB_ERR_METHOD] = {"method_not_allowed", 405, "method not allowed"},
    [DUB_ERR_CONFLICT] = {"conflict", 409, "not allowed in the current state"},
    [DUB_ERR_TOO_LARGE] = {"too_large", 413, "request body is too large"},
    [DUB_ERR_MEDIA_TYPE] = {"unsupported_media_type", 415, "unsupported media type"},
    [DUB_ERR_SCHEMA] = {"schema_violation", 422, "request does not match the schema"},
    [DUB_ERR_RATE_LIMITED] = {"rate_limited", 429, "too many requests"},
    [DUB_ERR_UNAVAILABLE] = {"unavailable", 503, "service is not ready"},
    [DUB_ERR_TIMEOUT] = {"timeout", 503, "operation timed out"},
    [DUB_ERR_IO] = {"io_error", 500, "input/output error"},
    [DUB_ERR_CONFIG] = {"config_error", 500, "configuration error"},
    [DUB_ERR_UNSUPPORTED] = {"unsupported", 500, "not supported"},
    [DUB_ERR_INTERNAL] = {"internal", 500, "internal error"},
    [DUB_ERR_INVALID_TRANSITION] = {"invalid_transition", 409,
                                    "the case's lifecycle does not allow this event now"},
};

static enum dub_err clamp(enum dub_err err)
{
  return (unsigned)err < DUB_ERR__COUNT ? err : DUB_ERR_INTERNAL;
}

const char *dub_err_code(enum dub_err err)
{
  return table[clamp(err)].code;
}

int dub_err_status(enum dub_err err)
{
  return table[clamp(err)].status;
}

const char *dub_err_message(enum dub_err err)
{
  return table[clamp(err)].message;
}
