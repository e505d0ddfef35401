/* GET /std/{serviceProvider}[/{operator}]/{subscriberId}/eligibility/{planId}
 *     [?fundSource=WALLET|EWALLET|LOAN|FREE][&key_type=][&clientName=]
 * An extension of the standard API (Google's Mobile Data Plan Sharing API
 * has such a check): would purchasePlan of this plan go through now, and
 * if not, which cause would it get? Validated as purchasePlan is (same
 * scope, cco.dd.data-plan.gen.activate: the answer tells what a purchase
 * would, the purchase timer included), then sent to purchase-executor as
 * a dry-run PurchaseCommand, so the checks are the purchase's own
 * (services/purchase-executor/eligibility.c). Nothing is bought or stored.
 * Keyed by the subscriber (there is no transid); answered within
 * MILLOM_QUERY_DEADLINE_MS like a read, else 503. */
#include "edge.h"
#include "request_purchase.h"
#include "request_std.h"
#include "shared/contracts/fund_source.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/topics.h"
#include "millom/v1/purchase.pb-c.h"

#include <string.h>

void routes_eligibility(api_edge *e, http_request *req, const edge_match *m) {
    std_path path;
    edge_std_path(m, &path);
    std_inputs in = {
        .key_type = http_query(req, "key_type"),
        .client_name = http_query(req, "clientName"),
        .accept_language = http_header(req, "Accept-Language"),
    };
    std_request r;
    char msg[256];
    const char *cause = std_validate(edge_tenants(m), cpid_config_default(), now_ms(), &path, &in,
                                     &r, msg, sizeof msg);
    if (cause) {
        http_respond_error(req, cause, "%s", msg);
        return;
    }
    const char *plan = m->params.plan_id;
    for (const char *p = plan; *p; p++) {
        if ((unsigned char)*p < 0x20) {
            http_respond_error(req, CAUSE_BAD_REQUEST,
                               "planId contains a character that is not allowed");
            return;
        }
    }
    Millom__V1__FundSource fund = MILLOM__V1__FUND_SOURCE__FUND_SOURCE_WALLET;
    const char *fund_text = http_query(req, "fundSource");
    if (fund_text && fund_source_parse(fund_text, &fund) != 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "fundSource must be one of " FUND_SOURCE_NAMES);
        return;
    }

    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)r.op->id;
    sub.key_type = r.key_type;
    sub.subscriber_id = (char *)r.subscriber;
    Millom__V1__PurchaseCommand cmd = MILLOM__V1__PURCHASE_COMMAND__INIT;
    cmd.meta = &meta;
    cmd.service_provider = (char *)r.provider->id;
    cmd.subscriber = &sub;
    cmd.transid = (char *)"";
    cmd.plan_id = (char *)plan;
    cmd.fund_source = fund;
    cmd.language = (char *)r.language;
    cmd.client_name = (char *)r.client_name;
    cmd.channel = (char *)"api";
    cmd.dry_run = 1;
    edge_send_request(e, req, TOPIC_PURCHASE_COMMANDS, r.subscriber, e->query_deadline_ms,
                      &edge_purchase_codec, &cmd, &meta, edge_relay_reply, req);
}
