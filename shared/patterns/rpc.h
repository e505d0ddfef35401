/* Request/reply over Kafka.
 *
 * The caller (api-edge) registers a pending call, which fills a RequestMeta
 * (correlation id, its reply partition, deadline), packs that meta into the
 * request message and produces it. A reader thread consumes the caller's
 * own partition of millom.replies (static assignment, no group) and hands
 * each Reply to the matching pending call; calls past their deadline get a
 * timeout instead. Responders answer with rpc_reply(). */
#ifndef MILLOM_RPC_H
#define MILLOM_RPC_H

#include <stddef.h>
#include <stdint.h>
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/topics.h"
#include "millom/v1/common.pb-c.h"

typedef struct rpc_client rpc_client;

/* Called exactly once per call, from the reader thread: reply is the
 * decoded Reply, or NULL when the deadline passed (or on shutdown). */
typedef void (*rpc_reply_fn)(void *arg, const Millom__V1__Reply *reply);

/* Reads partition `reply_partition` of millom.replies from its end. */
rpc_client *rpc_client_new(kafka_producer *producer, int32_t reply_partition, char *err,
                           size_t errlen);
/* Starts the reader thread; returns once the partition is assigned. */
int rpc_client_start(rpc_client *c);
int rpc_client_ready(const rpc_client *c);

/* Registers a call. Fills meta (correlation_id points into the call and
 * stays valid until the callback ran). Returns 0 or -1 when full. */
int rpc_call_begin(rpc_client *c, int timeout_ms, rpc_reply_fn fn, void *arg,
                   Millom__V1__RequestMeta *meta);
/* A whole call on the calling thread (rpc_wait.c): registers it (filling
 * meta, which request must point to), packs request, produces it to topic
 * keyed by key, and waits for the reply or the deadline. 0 with *status
 * the reply's HTTP status (0: no answer in time) and *body its body (NUL-
 * terminated, malloc'ed, the caller frees; NULL without a reply), or -1
 * when it could not be sent (why in err). Never from a thread that must
 * not block (HTTP handlers): use rpc_call_begin there. */
int rpc_call_wait(rpc_client *rpc, kafka_producer *producer, const char *topic, const char *key,
                  ProtobufCMessage *request, Millom__V1__RequestMeta *meta, int timeout_ms,
                  int *status, char **body, char *err, size_t errlen);
/* Cancels a registered call whose request could not be produced; the
 * callback is not called. */
void rpc_call_cancel(rpc_client *c, const char *correlation_id);
size_t rpc_pending_count(rpc_client *c);
/* Stops the reader and fails every pending call (callback with NULL);
 * rpc_call_begin refuses from then on, so threads that may still call it
 * (HTTP handlers) can run until they are stopped; then rpc_client_free. */
void rpc_client_close(rpc_client *c);
/* Closes (if not yet), then frees. */
void rpc_client_free(rpc_client *c);

/* Responder side: true if the request's deadline has passed. */
int rpc_expired(const Millom__V1__RequestMeta *meta);
/* Produces a Reply to the requester's partition. */
int rpc_reply(kafka_producer *p, const Millom__V1__RequestMeta *meta, int http_status,
              const char *content_type, const char *body, size_t body_len, int retry_after_s);

#endif
