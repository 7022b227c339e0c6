/* internal.h - helpers shared by the files of libs/kafka; not part of the API. */
#ifndef DUB_KAFKA_INTERNAL_H
#define DUB_KAFKA_INTERNAL_H

#include "core/err.h"
#include "kafka/kafka.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* The one place librdkafka error codes become enum dub_err. */
enum dub_err kafka_map_err(rd_kafka_resp_err_t err);

/* Sets one property; DUB_ERR_CONFIG with a new *why naming it when refused. */
enum dub_err kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                            char **why);

/* Applies NULL-terminated name, value pairs (NULL is none). */
enum dub_err kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *props,
                              char **why);

/* Routes librdkafka's log lines into the Duban logger. Runs on librdkafka threads. */
void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* Milliseconds the producer waits for a delivery report at most. */
int kafka_producer_delivery_timeout(const struct dub_kafka_producer *producer);

/* Base64 (RFC 4648, padded) of buf; returns a new string of *out_len bytes; free with
 * free(). */
char *kafka_base64(const void *buf, size_t len, size_t *out_len);

/* Fills 'msg' with a view of 'rkm' (borrowed from it); header entries go in *headers,
 * grown as needed (*cap entries; free with free()). */
void kafka_msg_view(rd_kafka_message_t *rkm, struct dub_kafka_msg *msg,
                    struct dub_kafka_header **headers, size_t *cap);

/* rd_kafka_destroy(rk), called once 'rk' was closed (a consumer) or flushed (a
 * producer): when it has not returned within the bound dub_kafka_set_destroy_bound()
 * set, a watchdog logs why and ends the process with the status set there. 'what' names
 * the handle in that line ("consumer", "producer", "reader"). */
void kafka_destroy(rd_kafka_t *rk, const char *what);

#endif
