/* The settlement management API for operators (issue 7):
 *   GET /mgmt/{operator}/settlements?from=&to=&serviceProvider=&format=json|csv
 *   GET /mgmt/{operator}/offer-performance?from=&to=&serviceProvider=&format=json|csv
 * answered by settlement-reporter over millom.settlement.queries. from/to
 * are dates (YYYY-MM-DD), RFC 3339 UTC times or epoch milliseconds, as in
 * routes_mgmt.c; both optional. Scope (secure profile): as the other
 * /mgmt routes. */
#include "edge.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/errors.h"
#include "millom/v1/settlement.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void routes_settlement(api_edge *e, http_request *req, const edge_match *m) {
    Millom__V1__SettlementQueryKind kind = (Millom__V1__SettlementQueryKind)m->route->action;
    const tenant_operator *op = tenants_operator(edge_tenants(m), m->params.op);
    if (!op) {
        http_respond_error(req, CAUSE_NOT_FOUND, "unknown operator '%s'", m->params.op);
        return;
    }
    const char *from = http_query(req, "from"), *to = http_query(req, "to");
    int64_t from_ms = from ? mgmt_parse_time(from, 0) : 0, to_ms = to ? mgmt_parse_time(to, 1) : 0;
    if (from_ms < 0 || to_ms < 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST,
                           "from and to must be dates (YYYY-MM-DD), RFC 3339 UTC times or "
                           "epoch milliseconds");
        return;
    }
    if (from_ms && to_ms && from_ms > to_ms) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "from is after to");
        return;
    }
    const char *sp = http_query(req, "serviceProvider");
    if (sp && !tenants_provider(edge_tenants(m), sp)) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "unknown serviceProvider");
        return;
    }
    const char *format = http_query(req, "format");
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "format must be json or csv");
        return;
    }
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__SettlementQuery q = MILLOM__V1__SETTLEMENT_QUERY__INIT;
    q.meta = &meta;
    q.kind = kind;
    q.operator_ = (char *)op->id;
    q.from_ms = from_ms;
    q.to_ms = to_ms;
    q.service_provider = (char *)(sp ? sp : "");
    q.format = (char *)(format ? format : "json");
    edge_send_request(e, req, TOPIC_SETTLEMENT_QUERIES, op->id, e->query_deadline_ms,
                      &edge_settlement_query_codec, &q, &meta, edge_relay_reply, req);
}
