/* What every api-edge route needs: tenants, the Kafka producer, the reply
 * reader and settings. One instance per process, built in main.c. */
#ifndef API_EDGE_EDGE_H
#define API_EDGE_EDGE_H

#include "shared/config.h"
#include "shared/http_server.h"
#include "shared/kafka.h"
#include "shared/rpc.h"

typedef struct {
    tenants *tenants;
    kafka_producer *producer;
    rpc_client *rpc;
    int query_deadline_ms;   /* MILLOM_QUERY_DEADLINE_MS, default 3000 */
} api_edge;

/* Entry point for every HTTP request (router.c). */
void edge_route(void *app, http_request *req);

/* /std/... (routes_std.c). */
void routes_std(api_edge *e, http_request *req);

/* Relays the responder's Reply to a deferred request, or 503 when the
 * deadline passed first (relay.c). `arg` is the http_request. */
void edge_relay_reply(void *arg, const Millom__V1__Reply *reply);

/* Registers an rpc call for req, defers it, and produces `payload` to
 * topic with key. On failure answers 503 itself. */
void edge_send_request(api_edge *e, http_request *req, const char *topic, const char *key,
                       int deadline_ms,
                       size_t (*pack)(const void *msg, uint8_t *out),
                       size_t (*packed_size)(const void *msg),
                       void *msg, Millom__V1__RequestMeta *meta);

#endif
