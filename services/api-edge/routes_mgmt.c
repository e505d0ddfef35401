/* The management API for operators (the upstream "TBA" look-ups):
 *   GET /mgmt/{operator}/purchases/{transid}[?serviceProvider=]
 *       transid: the operator's transId or a provider's transid
 *   GET /mgmt/{operator}/purchases?subscriberId=&from=&to=&serviceProvider=
 *   GET /mgmt/{operator}/purchases?overdue=true[&serviceProvider=]
 *       purchases still not final MILLOM_PENDING_MAX_AGE_S (purchase-
 *       executor's setting) after their creation, for a human to act on
 * answered by purchase-executor over Kafka. Scope (secure profile):
 * "millom.mgmt.read" on a token bound to that operator. */
#include "edge.h"
#include "shared/plumbing/topics.h"
#include "request_purchase.h"
#include "shared/plumbing/errors.h"
#include "shared/contracts/msisdn.h"
#include "millom/v1/purchase.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t mgmt_parse_time(const char *s, int end_of_day) {
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest && (strcmp(rest, "Z") == 0 || strcmp(rest, "+00:00") == 0 || *rest == '\0'))
        return (int64_t)timegm(&tm) * 1000;
    memset(&tm, 0, sizeof tm);
    rest = strptime(s, "%Y-%m-%d", &tm);
    if (rest && *rest == '\0') return (int64_t)timegm(&tm) * 1000 + (end_of_day ? 86400000 - 1 : 0);
    char *end;
    long long ms = strtoll(s, &end, 10);
    if (*s && *end == '\0' && ms >= 0) return ms;
    return -1;
}

/* The row's operator, or NULL after answering 404. */
static const tenant_operator *path_operator(http_request *req, const edge_match *m) {
    const tenant_operator *op = tenants_operator(edge_tenants(m), m->params.op);
    if (!op) http_respond_error(req, CAUSE_NOT_FOUND, "unknown operator '%s'", m->params.op);
    return op;
}

/* The optional serviceProvider filter into l; -1 after answering 400. */
static int provider_filter(const edge_match *m, http_request *req, Millom__V1__PurchaseLookup *l) {
    const char *sp = http_query(req, "serviceProvider");
    if (sp && !tenants_provider(edge_tenants(m), sp)) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "unknown serviceProvider");
        return -1;
    }
    l->service_provider = (char *)(sp ? sp : "");
    return 0;
}

void routes_mgmt_purchase(api_edge *e, http_request *req, const edge_match *m) {
    const tenant_operator *op = path_operator(req, m);
    if (!op) return;
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__PurchaseLookup l = MILLOM__V1__PURCHASE_LOOKUP__INIT;
    l.meta = &meta;
    l.operator_ = (char *)op->id;
    const char *transid = m->params.transid;
    if (!transid_valid(transid)) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "transid is not a valid transaction id");
        return;
    }
    if (provider_filter(m, req, &l) != 0) return;
    l.transid = (char *)transid;
    edge_send_request(e, req, TOPIC_PURCHASE_LOOKUPS, transid, e->query_deadline_ms,
                      &edge_lookup_codec, &l, &meta, edge_relay_reply, req);
}

void routes_mgmt_purchases(api_edge *e, http_request *req, const edge_match *m) {
    const tenant_operator *op = path_operator(req, m);
    if (!op) return;
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__PurchaseLookup l = MILLOM__V1__PURCHASE_LOOKUP__INIT;
    l.meta = &meta;
    l.operator_ = (char *)op->id;
    char msisdn[16];
    const char *key;
    if (http_query(req, "overdue")) {
        const char *overdue = http_query(req, "overdue");
        if (strcmp(overdue, "true") != 0) {
            http_respond_error(req, CAUSE_BAD_REQUEST, "overdue must be true");
            return;
        }
        if (http_query(req, "subscriberId") || http_query(req, "from") || http_query(req, "to")) {
            http_respond_error(req, CAUSE_BAD_REQUEST,
                               "overdue does not combine with subscriberId, from or to");
            return;
        }
        if (provider_filter(m, req, &l) != 0) return;
        l.overdue = 1;
        key = op->id; /* any instance holds every purchase */
    } else {
        const char *sub = http_query(req, "subscriberId");
        if (!sub || !msisdn_normalize(sub, msisdn, sizeof msisdn)) {
            http_respond_error(req, CAUSE_BAD_REQUEST,
                               "subscriberId (an E.164 MSISDN) is required");
            return;
        }
        const char *from = http_query(req, "from"), *to = http_query(req, "to");
        l.from_ms = from ? mgmt_parse_time(from, 0) : 0;
        l.to_ms = to ? mgmt_parse_time(to, 1) : 0;
        if (l.from_ms < 0 || l.to_ms < 0) {
            http_respond_error(req, CAUSE_BAD_REQUEST,
                               "from and to must be dates (YYYY-MM-DD), RFC 3339 UTC times or "
                               "epoch milliseconds");
            return;
        }
        if (provider_filter(m, req, &l) != 0) return;
        l.msisdn = msisdn;
        key = msisdn;
    }
    edge_send_request(e, req, TOPIC_PURCHASE_LOOKUPS, key, e->query_deadline_ms, &edge_lookup_codec,
                      &l, &meta, edge_relay_reply, req);
}
