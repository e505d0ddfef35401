/* POST /std/{serviceProvider}[/{operator}]/{subscriberId}/purchasePlan.
 * api-edge validates and hands the purchase to purchase-executor as a
 * command. A command is never dropped: when the executor has not answered
 * by the deadline, the SP gets 202 "processing" and learns the outcome by
 * callback or look-up; api-edge then tells purchase-executor so
 * (answered_processing), since only a 202 is owed a callback.
 *
 * GET /std/{serviceProvider}[/{operator}]/{subscriberId}/purchasePlan/{transid}
 * (a Millom extension): the provider's own look-up of one of its purchases,
 * a PurchaseLookup with the subscriber set, answered by purchase-executor
 * (lookups.c). */
#include "edge.h"
#include "shared/plumbing/topics.h"
#include "request_purchase.h"
#include "request_std.h"
#include "shared/contracts/fund_source.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "millom/v1/purchase.pb-c.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    api_edge *e;
    http_request *req;
    char service_provider[65];
    char transid[129];
    Millom__V1__FundSource fund_source;
} purchase_wait;

/* 202 with an ActivationResponse: accepted, outcome not known yet. */
static void respond_processing(const purchase_wait *w) {
    json_t *body = json_pack("{s:s, s:s, s:s}", "transid", w->transid, "status", "processing",
                             "fundSource", fund_source_name(w->fund_source));
    http_respond_json(w->req, 202, body);
}

/* Tells purchase-executor that the provider got 202 and now waits for the
 * callback: its reply may have carried the outcome and arrived too late,
 * and then the outcome's event said no callback was owed. Keyed by transid
 * like the purchase's command, so it is handled after it. Lost only if
 * Kafka refuses it at once (logged); the look-up still has the outcome. */
static void send_answered_processing(const purchase_wait *w) {
    Millom__V1__PurchaseCommand cmd = MILLOM__V1__PURCHASE_COMMAND__INIT;
    cmd.service_provider = (char *)w->service_provider;
    cmd.transid = (char *)w->transid;
    cmd.answered_processing = 1;
    if (edge_produce(w->e, TOPIC_PURCHASE_COMMANDS, w->transid, &edge_purchase_codec, &cmd) != 0)
        log_warn("purchase %s/%s: answered 202 but cannot tell purchase-executor; its callback "
                 "is sent only if the outcome was not decided in time",
                 w->service_provider, w->transid);
}

static void on_purchase_reply(void *arg, const Millom__V1__Reply *reply) {
    purchase_wait *w = arg;
    if (!reply) {
        log_info("purchase %s: no answer in time, 202 processing", w->transid);
        send_answered_processing(w);
        respond_processing(w); /* last: answering frees w (http_set_user) */
    } else {
        log_debug("purchase %s: answered %d", w->transid, (int)reply->http_status);
        edge_relay_reply(w->req, reply);
    }
}

void routes_purchase(api_edge *e, http_request *req, const edge_match *m) {
    std_path sp;
    edge_std_path(m, &sp);
    const std_path *path = &sp;
    std_inputs in = {
        .key_type = http_query(req, "key_type"),
        .client_name = http_query(req, "clientName"),
        .accept_language = http_header(req, "Accept-Language"),
    };
    std_request r;
    char msg[256];
    const char *cause = std_validate(edge_tenants(m), cpid_config_default(), now_ms(), path, &in,
                                     &r, msg, sizeof msg);
    if (cause) {
        http_respond_error(req, cause, "%s", msg);
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    activation_request a;
    if (activation_request_parse(body, len, &a, msg, sizeof msg) != 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "%s", msg);
        return;
    }

    routes_purchase_send(e, req, &r, &a, "api");
}

void routes_purchase_send(api_edge *e, http_request *req, const std_request *rq,
                          const activation_request *a, const char *channel) {
    purchase_wait *w = calloc(1, sizeof *w);
    if (!w) {
        http_respond_error(req, CAUSE_UNSPECIFIED, "out of memory");
        return;
    }
    w->e = e;
    w->req = req;
    snprintf(w->service_provider, sizeof w->service_provider, "%s", rq->provider->id);
    memcpy(w->transid, a->transid, sizeof w->transid);
    w->fund_source = a->fund_source;
    http_set_user(req, w, free);

    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)rq->op->id;
    sub.key_type = rq->key_type;
    sub.subscriber_id = (char *)rq->subscriber;
    Millom__V1__PurchaseCommand cmd = MILLOM__V1__PURCHASE_COMMAND__INIT;
    cmd.meta = &meta;
    cmd.service_provider = (char *)rq->provider->id;
    cmd.subscriber = &sub;
    cmd.transid = (char *)a->transid;
    cmd.plan_id = (char *)a->planid;
    cmd.offer_context = (char *)a->offercontext;
    cmd.fund_source = a->fund_source;
    cmd.language = (char *)rq->language;
    cmd.client_name = (char *)rq->client_name;
    cmd.channel = (char *)channel;
    /* Keyed by transid like the operator's callbacks and look-ups by
     * transid, so every message about one purchase reaches the
     * purchase-executor instance that owns it (its partition). */
    log_debug("purchase %s/%s of plan %s (%s): sent to purchase-executor", rq->provider->id,
              a->transid, a->planid, channel);
    edge_send_request(e, req, TOPIC_PURCHASE_COMMANDS, a->transid, e->purchase_deadline_ms,
                      &edge_purchase_codec, &cmd, &meta, on_purchase_reply, w);
}

void routes_purchase_status(api_edge *e, http_request *req, const edge_match *m) {
    std_path sp;
    edge_std_path(m, &sp);
    std_inputs in = {.key_type = http_query(req, "key_type")};
    std_request r;
    char msg[256];
    const char *cause = std_validate(edge_tenants(m), cpid_config_default(), now_ms(), &sp, &in, &r,
                                     msg, sizeof msg);
    if (cause) {
        http_respond_error(req, cause, "%s", msg);
        return;
    }
    const char *transid = m->params.transid;
    if (!transid_valid(transid)) {
        http_respond_error(
            req, CAUSE_BAD_REQUEST,
            "transid must be 10 to 128 characters of letters, digits, '-', '.', '_'");
        return;
    }
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)r.op->id;
    sub.key_type = r.key_type;
    sub.subscriber_id = r.subscriber;
    Millom__V1__PurchaseLookup l = MILLOM__V1__PURCHASE_LOOKUP__INIT;
    l.meta = &meta;
    l.operator_ = (char *)r.op->id;
    l.transid = (char *)transid;
    l.service_provider = (char *)r.provider->id;
    l.subscriber = &sub;
    /* Keyed by transid like the purchase's command: the owning instance. */
    edge_send_request(e, req, TOPIC_PURCHASE_LOOKUPS, transid, e->query_deadline_ms,
                      &edge_lookup_codec, &l, &meta, edge_relay_reply, req);
}
