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
    int purchase_deadline_ms;  /* MILLOM_PURCHASE_DEADLINE_MS, default 8000 */
} api_edge;

/* Entry point for every HTTP request (router.c). */
void edge_route(void *app, http_request *req);

/* /std/... (routes_std.c). */
void routes_std(api_edge *e, http_request *req);

/* Relays the responder's Reply to a deferred request, or 503 when the
 * deadline passed first (relay.c). `arg` is the http_request. */
void edge_relay_reply(void *arg, const Millom__V1__Reply *reply);

/* How to serialize one protobuf message type. */
typedef struct {
    size_t (*packed_size)(const void *msg);
    size_t (*pack)(const void *msg, uint8_t *out);
} edge_codec;

/* Registers an rpc call, defers req, and produces msg (whose RequestMeta
 * is `meta`, filled here) to topic with key. The answer reaches on_reply
 * (edge_relay_reply for a plain relay, with arg = req). On failure answers
 * 503 itself. */
void edge_send_request(api_edge *e, http_request *req, const char *topic, const char *key,
                       int deadline_ms, const edge_codec *codec, void *msg,
                       Millom__V1__RequestMeta *meta, rpc_reply_fn on_reply, void *arg);

/* Serializers of the request messages api-edge sends (relay.c). */
extern const edge_codec edge_query_codec, edge_purchase_codec, edge_callback_codec,
    edge_lookup_codec;

/* /std/{sp}[/{op}]/{sub}/purchasePlan (routes_purchase.c). */
void routes_purchase(api_edge *e, http_request *req, const void *std_path);
/* Operators' activation callbacks (routes_callbacks.c). */
void routes_callbacks(api_edge *e, http_request *req);
/* /mgmt/{operator}/... (routes_mgmt.c). */
void routes_mgmt(api_edge *e, http_request *req);

#endif
