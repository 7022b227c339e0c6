/* cloudevent.h - CloudEvents 1.0 on Kafka: structured or binary in, structured out. */
#ifndef DUB_KAFKA_CLOUDEVENT_H
#define DUB_KAFKA_CLOUDEVENT_H

#include "core/err.h"
#include "kafka/kafka.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Content type of a structured-mode event. */
#define DUB_CE_CONTENT_TYPE "application/cloudevents+json"

/* Checks the context attributes of 'event': a JSON object with string specversion "1.0",
 * non-empty string id, source and type; if present, time is an RFC 3339 string, subject,
 * datacontenttype and dataschema are strings, and data and data_base64 are not both set.
 * DUB_ERR_MALFORMED with *why (new string, free with free()) naming the attribute. */
enum dub_err dub_ce_validate(const json_t *event, char **why);

/* Parses a structured-mode event (the whole event as JSON; UTF-8 checked, duplicate
 * keys rejected) and validates it. Gives a new reference in *event (json_decref). On
 * failure returns DUB_ERR_MALFORMED and *why (free with free()). */
enum dub_err dub_ce_parse(const void *buf, size_t len, json_t **event, char **why);

/* Decodes a Kafka message into one full event object.
 *  - structured mode: header content-type starts with "application/cloudevents"
 *    (case-insensitive); the value is parsed with dub_ce_parse(). A batch content type
 *    is refused (Kafka carries one event per record). A message without any "ce_"
 *    header is read the same way, whatever its content-type: binary mode needs them.
 *  - binary mode otherwise: each header "ce_<name>" becomes the string attribute <name>
 *    (a repeated one is refused); content-type becomes datacontenttype; the value
 *    becomes data: parsed JSON when the content type is JSON (absent, application/json,
 *    text/json or a "+json" suffix), a string for text/ * content that is valid UTF-8,
 *    else data_base64. An empty or null value gives no data.
 * Then the event is validated. Gives a new reference in *event (json_decref);
 * DUB_ERR_MALFORMED with *why (free with free()) otherwise. Does not keep 'msg'. */
enum dub_err dub_ce_decode(const struct dub_kafka_msg *msg, json_t **event, char **why);

/* Serialises 'event' in structured mode: compact JSON, UTF-8, keys in insertion order.
 * Validates first (DUB_ERR_MALFORMED with *why). *out is a new NUL-terminated string of
 * *len bytes; free with free(). 'event' is borrowed. */
enum dub_err dub_ce_encode(const json_t *event, char **out, size_t *len, char **why);

/* The header that names the event's type on every record the dub_ce_produce functions
 * write, so that a consumer can pass over the types it does not handle without parsing
 * the value. Not a "ce_" header: the record stays a structured-mode event. */
#define DUB_CE_TYPE_HEADER "duban-type"

/* Produces 'event' (borrowed) in structured mode to 'topic' with key 'key' (NUL-
 * terminated, may be NULL) and the headers content-type: application/cloudevents+json
 * and DUB_CE_TYPE_HEADER. Asynchronous like dub_kafka_produce(): 'cb' runs on the
 * producer's poll thread. DUB_ERR_MALFORMED when the event does not validate (logged).
 */
enum dub_err dub_ce_produce(struct dub_kafka_producer *producer, const char *topic,
                            const char *key, const json_t *event,
                            dub_kafka_delivery_fn cb, void *opaque);

/* The same with up to 6 more headers after those two ('extra' is copied; DUB_ERR_INVALID
 * for more). */
enum dub_err dub_ce_produce_with(struct dub_kafka_producer *producer, const char *topic,
                                 const char *key, const json_t *event,
                                 const struct dub_kafka_header *extra, size_t extra_count,
                                 dub_kafka_delivery_fn cb, void *opaque);

/* The same, waiting up to timeout_ms for the acknowledgement like
 * dub_kafka_produce_sync(); partition and offset may be NULL. */
enum dub_err dub_ce_produce_sync(struct dub_kafka_producer *producer, const char *topic,
                                 const char *key, const json_t *event, int timeout_ms,
                                 int32_t *partition, int64_t *offset);

/* CloudEvents produced together, whose acknowledgements are awaited together: a
 * caller puts one group of writes in flight and works on the next meanwhile. */
struct dub_ce_batch;

/* Returns a new empty batch writing with 'producer' (borrowed until the wait). */
struct dub_ce_batch *dub_ce_batch_new(struct dub_kafka_producer *producer);
/* Produces 'event' (borrowed) like dub_ce_produce(). *result is set from the delivery
 * report, as dub_ce_produce_sync() would give it, or at once when the event could not
 * be enqueued; 'result' must stay valid until dub_ce_batch_wait() returns. */
void dub_ce_batch_add(struct dub_ce_batch *batch, const char *topic, const char *key,
                      const json_t *event, enum dub_err *result);
/* Waits until every event added has its report (each bounded by the producer's
 * delivery timeout), then frees the batch. NULL is a no-op. */
void dub_ce_batch_wait(struct dub_ce_batch *batch);

#endif
