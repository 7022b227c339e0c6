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

/* Produces 'event' (borrowed) in structured mode to 'topic' with key 'key' (NUL-
 * terminated, may be NULL) and header content-type: application/cloudevents+json.
 * Asynchronous like dub_kafka_produce(): 'cb' runs on the producer's poll thread.
 * DUB_ERR_MALFORMED when the event does not validate (logged). */
enum dub_err dub_ce_produce(struct dub_kafka_producer *producer, const char *topic,
                            const char *key, const json_t *event,
                            dub_kafka_delivery_fn cb, void *opaque);

/* The same, waiting up to timeout_ms for the acknowledgement like
 * dub_kafka_produce_sync(); partition and offset may be NULL. */
enum dub_err dub_ce_produce_sync(struct dub_kafka_producer *producer, const char *topic,
                                 const char *key, const json_t *event, int timeout_ms,
                                 int32_t *partition, int64_t *offset);

/* Produces every events[i] that is not NULL with key keys[i], all in flight together,
 * and waits until each has its delivery report (bounded by the producer's delivery
 * timeout). results[i] is what dub_ce_produce_sync() would give for it (DUB_OK once
 * acknowledged; the enqueue error when it could not be sent); results[i] of a NULL
 * events[i] is left as it is. Everything is borrowed for the call. */
void dub_ce_produce_all(struct dub_kafka_producer *producer, const char *topic,
                        const char *const *keys, json_t *const *events, size_t n,
                        enum dub_err *results);

#endif
