/* The settlement management API for operators (issue 7):
 *   GET /mgmt/{operator}/settlements?from=&to=&serviceProvider=&format=json|csv
 *   GET /mgmt/{operator}/offer-performance?from=&to=&serviceProvider=&format=json|csv
 * answered by settlement-reporter over millom.settlement.queries. from/to
 * are dates (YYYY-MM-DD), RFC 3339 UTC times or epoch milliseconds, as in
 * routes_mgmt.c; both optional. Scope (secure profile): as the other
 * /mgmt routes. */
#include "edge.h"
#include "shared/topics.h"
#include "shared/errors.h"
#include "millom/v1/settlement.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int routes_settlement(api_edge *e, http_request *req) {
    char op_name[33], what[40];
    const char *path = http_path(req);
    int n = 0;
    if (sscanf(path, "/mgmt/%32[^/]/%39[a-z-]%n", op_name, what, &n) != 2 || path[n] != '\0')
        return 0;
    Millom__V1__SettlementQueryKind kind;
    if (strcmp(what, "settlements") == 0)
        kind = MILLOM__V1__SETTLEMENT_QUERY_KIND__SETTLEMENT_QUERY_KIND_SETTLEMENTS;
    else if (strcmp(what, "offer-performance") == 0)
        kind = MILLOM__V1__SETTLEMENT_QUERY_KIND__SETTLEMENT_QUERY_KIND_OFFER_PERFORMANCE;
    else
        return 0;
    const tenant_operator *op = tenants_operator(e->tenants, op_name);
    if (!op) {
        http_respond_error(req, CAUSE_NOT_FOUND, "unknown operator '%s'", op_name);
        return 1;
    }
    if (strcmp(http_method(req), "GET") != 0) {
        http_respond_error(req, CAUSE_METHOD_NOT_ALLOWED, "%s takes GET", what);
        return 1;
    }
    const char *from = http_query(req, "from"), *to = http_query(req, "to");
    int64_t from_ms = from ? mgmt_parse_time(from, 0) : 0, to_ms = to ? mgmt_parse_time(to, 1) : 0;
    if (from_ms < 0 || to_ms < 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST,
                           "from and to must be dates (YYYY-MM-DD), RFC 3339 UTC times or "
                           "epoch milliseconds");
        return 1;
    }
    if (from_ms && to_ms && from_ms > to_ms) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "from is after to");
        return 1;
    }
    const char *sp = http_query(req, "serviceProvider");
    if (sp && !tenants_provider(e->tenants, sp)) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "unknown serviceProvider");
        return 1;
    }
    const char *format = http_query(req, "format");
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "format must be json or csv");
        return 1;
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
    return 1;
}
