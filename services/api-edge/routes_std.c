/* The standard API's read endpoints: accountInfo, balance, upsellOffer.
 * api-edge only validates; offer-resolver answers over Kafka. */
#include "edge.h"
#include "shared/topics.h"
#include "request_std.h"
#include "shared/errors.h"
#include "shared/service.h"
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
    edge_send_request(e, req, TOPIC_QUERIES, r->subscriber, e->query_deadline_ms,
                      &edge_query_codec, &q, &meta, on_reply, arg);
}

void routes_std(api_edge *e, http_request *req) {
    std_path path;
    if (std_path_parse(http_path(req), &path) != 0) {
        http_respond_error(req, CAUSE_NOT_FOUND, "no such path: %s", http_path(req));
        return;
    }
    int is_read = path.action == STD_ACCOUNT_INFO || path.action == STD_BALANCE ||
                  path.action == STD_UPSELL_OFFER;
    const char *want = is_read ? "GET" : "POST";
    if (strcmp(http_method(req), want) != 0) {
        http_respond_error(req, CAUSE_METHOD_NOT_ALLOWED, "%s takes %s",
                           std_action_name(path.action), want);
        return;
    }
    if (path.action == STD_PURCHASE_PLAN) {
        routes_purchase(e, req, &path);
        return;
    }
    if (path.action == STD_REGISTER) {
        routes_register(e, req, &path);
        return;
    }
    std_inputs in = {
        .key_type = http_query(req, "key_type"),
        .plan_type = path.action == STD_UPSELL_OFFER ? http_query(req, "planType") : NULL,
        .dealer_code = path.action == STD_UPSELL_OFFER ? http_query(req, "dealerCode") : NULL,
        .client_name = path.action == STD_UPSELL_OFFER ? http_query(req, "clientName") : NULL,
        .accept_language = http_header(req, "Accept-Language"),
        .cache_control = http_header(req, "Cache-Control"),
    };
    std_request r;
    char msg[256];
    const char *cause = std_validate(e->tenants, cpid_config_default(), now_ms(), &path, &in, &r,
                                     msg, sizeof msg);
    if (cause) {
        http_respond_error(req, cause, "%s", msg);
        return;
    }
    routes_std_send_query(e, req, &r, edge_relay_reply, req);
}
