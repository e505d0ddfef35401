/* The management read of consents:
 *   GET /mgmt/{operator}/consents?subscriberId={msisdn}[&serviceProvider=]
 * answered by notifier (millom.consent.queries) with
 *   200 {"operator", "subscriberId", "consents": [{"serviceProvider",
 *        "types", "active", "language", "transactionId", "updatedAt"}],
 *        "cpidRegistrations": [{"serviceProvider", "registeredAt",
 *        "expiresAt"}]}
 * A revoked consent stays listed with "types": [] and "active": false.
 * Scoped like the other management endpoints (an operator sees its own
 * subscribers only). */
#include "edge.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/errors.h"
#include "shared/contracts/msisdn.h"
#include "millom/v1/subscriber.pb-c.h"

#include <stdio.h>
#include <string.h>

void routes_consents(api_edge *e, http_request *req, const edge_match *m) {
    const tenant_operator *op = tenants_operator(edge_tenants(m), m->params.op);
    if (!op) {
        http_respond_error(req, CAUSE_NOT_FOUND, "unknown operator '%s'", m->params.op);
        return;
    }
    const char *sub = http_query(req, "subscriberId");
    char msisdn[16];
    if (!sub || !msisdn_normalize(sub, msisdn, sizeof msisdn) ||
        strncmp(msisdn, op->country_code, strlen(op->country_code)) != 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST,
                           "subscriberId (an E.164 MSISDN of operator '%s') is required", op->id);
        return;
    }
    const char *sp = http_query(req, "serviceProvider");
    if (sp && !tenants_provider(edge_tenants(m), sp)) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "unknown serviceProvider");
        return;
    }
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__ConsentQuery q = MILLOM__V1__CONSENT_QUERY__INIT;
    q.meta = &meta;
    q.operator_ = (char *)op->id;
    q.msisdn = msisdn;
    q.service_provider = (char *)(sp ? sp : "");
    edge_send_request(e, req, TOPIC_CONSENT_QUERIES, msisdn, e->query_deadline_ms,
                      &edge_consent_query_codec, &q, &meta, edge_relay_reply, req);
}
