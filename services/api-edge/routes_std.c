/* The standard API's read endpoints: accountInfo, balance, upsellOffer.
 * api-edge only validates; offer-resolver answers over Kafka. */
#include "edge.h"
#include "shared/plumbing/topics.h"
#include "request_std.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/service.h"
#include "millom/v1/query.pb-c.h"

#include <string.h>

static Millom__V1__QueryKind query_kind(std_action a) {
    switch (a) {
    case STD_ACCOUNT_INFO: return MILLOM__V1__QUERY_KIND__QUERY_KIND_ACCOUNT_INFO;
    case STD_BALANCE: return MILLOM__V1__QUERY_KIND__QUERY_KIND_BALANCE;
    case STD_UPSELL_OFFER: return MILLOM__V1__QUERY_KIND__QUERY_KIND_UPSELL_OFFER;
    default: return MILLOM__V1__QUERY_KIND__QUERY_KIND_UNSPECIFIED;
    }
}

void routes_std_send_query(api_edge *e, http_request *req, const std_request *r,
                           rpc_reply_fn on_reply, void *arg) {
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)r->op->id;
    sub.key_type = r->key_type;
    sub.subscriber_id = (char *)r->subscriber;
    Millom__V1__Query q = MILLOM__V1__QUERY__INIT;
    q.meta = &meta;
    q.kind = query_kind(r->path.action);
    q.service_provider = (char *)r->provider->id;
    q.subscriber = &sub;
    q.language = (char *)r->language;
    q.plan_type = (char *)r->plan_type;
    q.dealer_code = (char *)r->dealer_code;
    q.client_name = (char *)r->client_name;
    q.no_cache = r->no_cache;
    q.max_price = (char *)r->max_price;
    q.limit = r->limit;
    edge_send_request(e, req, TOPIC_QUERIES, r->subscriber, e->query_deadline_ms, &edge_query_codec,
                      &q, &meta, on_reply, arg);
}

void edge_std_path(const edge_match *m, std_path *out) {
    memset(out, 0, sizeof *out);
    memcpy(out->provider, m->params.provider, sizeof out->provider);
    memcpy(out->op, m->params.op, sizeof out->op);
    memcpy(out->subscriber, m->params.subscriber, sizeof out->subscriber);
    out->action = (std_action)m->route->action;
}

void routes_std(api_edge *e, http_request *req, const edge_match *m) {
    std_path path;
    edge_std_path(m, &path);
    std_inputs in = {
        .key_type = http_query(req, "key_type"),
        .plan_type = path.action == STD_UPSELL_OFFER ? http_query(req, "planType") : NULL,
        .dealer_code = path.action == STD_UPSELL_OFFER ? http_query(req, "dealerCode") : NULL,
        .client_name = path.action == STD_UPSELL_OFFER ? http_query(req, "clientName") : NULL,
        .max_price = path.action == STD_UPSELL_OFFER ? http_query(req, "maxPrice") : NULL,
        .limit = path.action == STD_UPSELL_OFFER ? http_query(req, "limit") : NULL,
        .accept_language = http_header(req, "Accept-Language"),
        .cache_control = http_header(req, "Cache-Control"),
    };
    std_request r;
    char msg[256];
    const char *cause = std_validate(edge_tenants(m), cpid_config_default(), now_ms(), &path, &in,
                                     &r, msg, sizeof msg);
    if (cause) {
        http_respond_error(req, cause, "%s", msg);
        return;
    }
    routes_std_send_query(e, req, &r, edge_relay_reply, req);
}
