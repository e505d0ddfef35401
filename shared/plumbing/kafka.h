/* Kafka on librdkafka: an idempotent producer and a group consumer that
 * commits only after its handler succeeded and sends undecodable messages
 * to "<topic>.dlq" with the error in an "error" header.
 *
 * Bootstrap servers come from KAFKA_BOOTSTRAP, else from the file
 * var/broker.bootstrap that devbroker writes (MILLOM_BROKER_FILE). */
#ifndef MILLOM_KAFKA_H
#define MILLOM_KAFKA_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

/* The bootstrap list, or NULL with a message. Caller frees. */
char *kafka_bootstrap(char *err, size_t errlen);

/* Applies librdkafka's security settings from the environment:
 * KAFKA_SECURITY_PROTOCOL (plaintext (default), ssl, sasl_plaintext,
 * sasl_ssl), KAFKA_SASL_MECHANISM (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN),
 * KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE,
 * KAFKA_SSL_CA_LOCATION, KAFKA_SSL_CERTIFICATE_LOCATION and
 * KAFKA_SSL_KEY_LOCATION (mTLS). -1 with a message naming the variable for
 * a bad value or a setting the protocol would ignore; never logs the
 * password. Part of kafka_conf_common, so of every client made here. */
int kafka_conf_security(rd_kafka_conf_t *conf, char *err, size_t errlen);

/* Applies MILLOM_KAFKA_* latency settings, the bootstrap and the security
 * settings (kafka_conf_security) to a conf. */
int kafka_conf_common(rd_kafka_conf_t *conf, const char *client_id, char *err, size_t errlen);

/* For a consumer whose messages nobody waits on (changelog followers,
 * settlement): its fetches wait up to MILLOM_KAFKA_BACKGROUND_FETCH_WAIT_MS
 * for data instead of MILLOM_KAFKA_FETCH_WAIT_MS (both 500, Kafka's own
 * default). A Kafka broker, and devbroker, answer a waiting fetch as soon
 * as data arrives, so the wait adds no delay; it sets how often an idle
 * consumer asks again. Against a broker that holds an empty fetch for its
 * whole wait (librdkafka's bare mock cluster), set the first one short.
 * Call after kafka_conf_common. */
int kafka_conf_background(rd_kafka_conf_t *conf, char *err, size_t errlen);

typedef struct kafka_producer kafka_producer;

typedef struct {
    const char *name;
    const char *value;
} kafka_header;

/* Idempotent producer with a background thread serving delivery reports.
 * background = 0: its messages are on someone's request path (api-edge's
 * queries and commands, offer-resolver's replies), batched for
 * MILLOM_KAFKA_LINGER_MS (1); 1: for MILLOM_KAFKA_BACKGROUND_LINGER_MS (5),
 * fewer, larger requests at a few ms of latency. */
kafka_producer *kafka_producer_new(const char *client_id, int background, char *err, size_t errlen);
/* Queues one message (copied). partition -1 lets the key choose.
 * Returns 0, or -1 when the local queue is full or the topic is unknown. */
int kafka_produce(kafka_producer *p, const char *topic, int32_t partition, const void *key,
                  size_t key_len, const void *value, size_t value_len, const kafka_header *headers,
                  size_t n_headers);
/* Like kafka_produce, but calls on_delivery(arg, err) from the producer's
 * thread once the broker acknowledged (err == 0) or gave up. */
typedef void (*kafka_delivery_fn)(void *arg, rd_kafka_resp_err_t err);
int kafka_produce_cb(kafka_producer *p, const char *topic, int32_t partition, const void *key,
                     size_t key_len, const void *value, size_t value_len,
                     kafka_delivery_fn on_delivery, void *arg);
/* Like kafka_produce_cb, with a headers object (binary values kept as they
 * are, e.g. copied from a consumed message); the headers are taken, also
 * when it fails. NULL: none. */
int kafka_produce_headers_cb(kafka_producer *p, const char *topic, int32_t partition,
                             const void *key, size_t key_len, const void *value, size_t value_len,
                             rd_kafka_headers_t *headers, kafka_delivery_fn on_delivery, void *arg);
/* Produces and waits up to timeout_ms for the delivery report (kafka_wait.c):
 * DELIVERED; TIMED_OUT (the message may still be delivered later); or FAILED
 * (not produced, or the broker gave up: *err, when not NULL, says why). */
typedef enum { KAFKA_WAIT_DELIVERED, KAFKA_WAIT_TIMED_OUT, KAFKA_WAIT_FAILED } kafka_wait_result;
kafka_wait_result kafka_produce_wait(kafka_producer *p, const char *topic, int32_t partition,
                                     const void *key, size_t key_len, const void *value,
                                     size_t value_len, long timeout_ms, rd_kafka_resp_err_t *err);
/* The same with headers, taken as kafka_produce_headers_cb takes them. */
kafka_wait_result kafka_produce_wait_headers(kafka_producer *p, const char *topic,
                                             int32_t partition, const void *key, size_t key_len,
                                             const void *value, size_t value_len,
                                             rd_kafka_headers_t *headers, long timeout_ms,
                                             rd_kafka_resp_err_t *err);
int kafka_producer_flush(kafka_producer *p, int timeout_ms);
rd_kafka_t *kafka_producer_handle(kafka_producer *p);
/* Flushes (up to 10 s) and frees. */
void kafka_producer_free(kafka_producer *p);

typedef enum {
    KAFKA_DONE = 0,    /* processed; commit the offset */
    KAFKA_DEAD_LETTER, /* cannot be processed; send to <topic>.dlq, commit */
    KAFKA_RETRY,       /* transient failure; do not commit, retry later */
} kafka_verdict;

/* Called for every message. On KAFKA_DEAD_LETTER, `err` says why. */
typedef kafka_verdict (*kafka_handler_fn)(void *arg, const rd_kafka_message_t *msg, char *err,
                                          size_t errlen);

typedef struct kafka_consumer kafka_consumer;

typedef struct {
    const char *group_id;
    const char *client_id;
    const char *const *topics; /* NULL-terminated */
    kafka_handler_fn handler;
    void *handler_arg;
    kafka_producer *dlq; /* producer for <topic>.dlq (required) */
    int poll_timeout_ms; /* default 100 */
    /* Optional hooks, called with handler_arg in the polling thread (so
     * never while the handler runs). on_assign runs before the partitions
     * are assigned, so before any of their messages is handled; on_revoke
     * after the last one was handled and before the offsets are committed.
     * before_commit runs before stored offsets are committed: non-zero
     * postpones the commit (e.g. until changelog records are delivered). */
    void (*on_assign)(void *arg, const rd_kafka_topic_partition_list_t *parts);
    void (*on_revoke)(void *arg, const rd_kafka_topic_partition_list_t *parts);
    int (*before_commit)(void *arg);
    /* Optional batches (all three, or none): up to MILLOM_BATCH_MAX (500)
     * messages, those already fetched or arriving within
     * MILLOM_BATCH_WAIT_MS (2), are handled between batch_begin (0: a
     * transaction is open, e.g. store_batch_begin) and batch_commit (0:
     * committed; otherwise it rolled the batch back itself); their offsets
     * are stored only after that commit. When a handler answers anything
     * but KAFKA_DONE, batch_rollback undoes the batch; then, or when begin
     * or commit failed, its messages are handled again one by one, each in
     * its own transaction, as without batches: a poison message goes to
     * the DLQ alone; a retried one comes again with everything behind it. So in a batch a handler's only
     * lasting effects must be in that transaction (it may run twice), and
     * messages keep their order. */
    int (*batch_begin)(void *arg);
    int (*batch_commit)(void *arg);
    void (*batch_rollback)(void *arg);
    /* Optional lanes (not with batches): lanes > 1 hands messages to that
     * many handler threads. The polling thread sends each message to lane
     * hash(key) % lanes (a message without a key: hash of its topic and
     * partition), so messages of one key keep their order while other keys
     * run at once; each lane holds a bounded queue, and the polling thread
     * waits while the lane it needs is full. A lane retries a KAFKA_RETRY
     * message itself with the usual backoff (the messages behind it in
     * that lane wait) and dead-letters a KAFKA_DEAD_LETTER one. A
     * partition's offset is stored only up to its lowest message not yet
     * finished. On a revoke (and a stop) no new message is handed out,
     * queued messages of the revoked partitions are dropped (their offsets
     * never stored: the next owner gets them), the running ones finish,
     * then on_revoke runs and the offsets are committed. The hooks still
     * run in the polling thread, with handler_arg, but now while lanes may
     * run handlers (on_revoke: not for the revoked partitions).
     * lane_arg, when set, gives each lane's handler its own argument
     * (lane_arg(handler_arg, lane), called once per lane at start; with
     * lanes <= 1 the handler gets lane_arg(handler_arg, 0)). */
    int lanes;
    void *(*lane_arg)(void *handler_arg, int lane);
    /* 1: nobody waits on these messages (kafka_conf_background). */
    int background;
} kafka_consumer_opts;

kafka_consumer *kafka_consumer_new(const kafka_consumer_opts *opts, char *err, size_t errlen);
/* Polls and dispatches until service_stopping() or kafka_consumer_stop().
 * Runs in the calling thread. Returns 0 on a clean stop. */
int kafka_consumer_run(kafka_consumer *c);
/* Starts kafka_consumer_run on a new thread. */
int kafka_consumer_start(kafka_consumer *c);
void kafka_consumer_stop(kafka_consumer *c);
/* True while the group has assigned this consumer its partitions: false
 * before the first assignment, from an eager revoke or a lost assignment
 * until the next one, and after a broker outage until the assignment is
 * confirmed (a new one, or a session timeout without losing it). */
int kafka_consumer_ready(const kafka_consumer *c);
/* Stops, joins the thread if any, commits, closes and frees. */
void kafka_consumer_free(kafka_consumer *c);

/* Broker health, process-wide (every producer and consumer made here
 * reports to it): 0 after a fatal error (idempotent producer) or while no
 * broker was reachable for longer than MILLOM_KAFKA_DOWN_READY_S (default
 * 10 s); 1 otherwise. For /readyz. Gauge millom_kafka_broker_up. */
int kafka_healthy(void);
/* 1 once a client hit a fatal error. The error also requested a stop
 * (service_request_stop); the program then exits with status 1. */
int kafka_fatal_error_seen(void);

/* Request ids (shared/plumbing/correlator.h): every message produced here
 * carries the producing thread's current correlator in the header
 * x-correlator (CORRELATOR_HEADER), unless the caller's headers have one;
 * the consumer sets it from that header around each call of the handler
 * (a fresh one when the message has none or an invalid one).
 * kafka_take_correlator does the consumer's part for other readers: it
 * sets the calling thread's current correlator from msg's header and
 * returns 1; without a valid one it sets a fresh one (fresh_if_none) or
 * clears it, and returns 0. */
int kafka_take_correlator(const rd_kafka_message_t *msg, int fresh_if_none);

/* Sends a raw copy of msg to <topic>.dlq with an "error" header. */
int kafka_dead_letter(kafka_producer *p, const rd_kafka_message_t *msg, const char *error);

/* Reads the Kafka settings of every client (MILLOM_KAFKA_*, MILLOM_BROKER_FILE)
 * once through shared/plumbing/settings.h; a bad one exits 1. The first client does
 * it too; a program calls it at its start to fail before connecting. */
void kafka_settings_load(void);

#endif
