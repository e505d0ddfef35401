/* The way back: a Reply from millom.replies becomes the HTTP response of
 * the suspended request that asked for it. */
#include "edge.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "millom/v1/purchase.pb-c.h"
#include "millom/v1/query.pb-c.h"
#include "millom/v1/settlement.pb-c.h"
#include "millom/v1/subscriber.pb-c.h"
#include "millom/v1/topup.pb-c.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static metric *m_deadline_exceeded;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void metrics_init(void) {
    m_deadline_exceeded =
        metric_counter("millom_edge_deadline_exceeded_total",
                       "requests answered 503 because no reply came in time", NULL);
}

void edge_relay_metrics_init(void) { pthread_once(&metrics_once, metrics_init); }

void edge_relay_reply(void *arg, const Millom__V1__Reply *reply) {
    http_request *req = arg;
    if (!reply) {
        edge_relay_metrics_init();
        metric_add(m_deadline_exceeded, 1);
        http_respond_error(req, CAUSE_SERVICE_UNAVAILABLE,
                           "the service did not answer in time; retry later");
        return;
    }
    char retry[16];
    snprintf(retry, sizeof retry, "%d", reply->retry_after_s);
    int status = reply->http_status >= 100 && reply->http_status < 600 ? reply->http_status : 500;
    http_respond_with_header(req, status,
                             reply->content_type && *reply->content_type ? reply->content_type
                                                                         : "application/json",
                             (const char *)reply->body.data, reply->body.len,
                             reply->retry_after_s > 0 ? "Retry-After" : NULL, retry);
}

void edge_send_request(api_edge *e, http_request *req, const char *topic, const char *key,
                       int deadline_ms, const edge_codec *codec, void *msg,
                       Millom__V1__RequestMeta *meta, rpc_reply_fn on_reply, void *arg) {
    if (rpc_call_begin(e->rpc, deadline_ms, on_reply, arg, meta) != 0) {
        http_respond_error(req, CAUSE_SERVICE_UNAVAILABLE, "too many requests in flight");
        return;
    }
    /* Deferred before producing: the reply may beat us back here. */
    http_defer(req);
    if (edge_produce(e, topic, key, codec, msg) != 0) {
        rpc_call_cancel(e->rpc, meta->correlation_id);
        log_warn("cannot produce to %s", topic);
        http_respond_error(req, CAUSE_SERVICE_UNAVAILABLE, "message bus unavailable; retry later");
    }
}

int edge_produce(api_edge *e, const char *topic, const char *key, const edge_codec *codec,
                 const void *msg) {
    size_t len = codec->packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return -1;
    codec->pack(msg, buf);
    int rc = kafka_produce(e->producer, topic, -1, key, strlen(key), buf, len, NULL, 0);
    free(buf);
    return rc;
}

/* protobuf-c's generated pack functions take their own message type; these
 * adapters let one edge_send_request serve every request message. */
#define CODEC(name, type)                                                                   \
    static size_t name##_size(const void *m) { return type##__get_packed_size(m); }         \
    static size_t name##_pack(const void *m, uint8_t *out) { return type##__pack(m, out); } \
    const edge_codec edge_##name##_codec = {name##_size, name##_pack};

CODEC(query, millom__v1__query)
CODEC(purchase, millom__v1__purchase_command)
CODEC(callback, millom__v1__activation_callback)
CODEC(lookup, millom__v1__purchase_lookup)
CODEC(settlement_query, millom__v1__settlement_query)
CODEC(consent, millom__v1__consent_change)
CODEC(cpid_registration, millom__v1__cpid_registration)
CODEC(consent_query, millom__v1__consent_query)
CODEC(subscriber_event, millom__v1__subscriber_event)
CODEC(topup, millom__v1__topup_command)
