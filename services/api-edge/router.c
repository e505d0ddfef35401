/* Which code answers which path: the request's row of the route table
 * (routes.c), found once, served with the version of the tenants file in
 * force at its start (tenants_reload.h). Then, in this order: the Host
 * (421; DNS rebinding, request_http.h), the row's authentication (auth.c: 401, 403,
 * 429), a JSON body's Content-Type and bytes (415, 400), and the row's
 * answer: 404 for an unknown path, 405 with Allow for a method the path
 * does not take, else its handler. */
#include "edge.h"
#include "request_http.h"
#include "shared/plumbing/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 404 or 405 in the row's error shape: an ErrorDocument, or the operator
 * APIs' {errorType, message}. */
static void respond_no_route(http_request *req, const edge_match *m) {
    const char *path = http_path(req);
    int op_style = (m->route->flags & EDGE_ROUTE_OPERATOR_ERRORS) != 0;
    char msg[512];
    char *text = NULL;
    if (m->status == 405) {
        snprintf(msg, sizeof msg, "%s takes %s", m->route->pattern, m->allow);
        if (op_style) {
            json_t *j = json_pack("{s:s, s:s}", "errorType", "BAD_REQUEST", "message", msg);
            text = j ? json_dumps(j, JSON_COMPACT) : NULL;
            json_decref(j);
        } else {
            text = error_document_text(CAUSE_METHOD_NOT_ALLOWED, msg);
        }
        http_respond_with_header(req, 405, "application/json", text ? text : "{}",
                                 text ? strlen(text) : 2, "Allow", m->allow);
        free(text);
        return;
    }
    if (op_style) {
        http_respond_json(req, 404,
                          json_pack("{s:s, s:s}", "errorType", "BAD_REQUEST", "message",
                                    "unknown operator or path"));
        return;
    }
    http_respond_error(req, CAUSE_NOT_FOUND, "no such path: %s", path);
}

/* The request's row, authentication, body check and answer, with
 * m->config pinned. */
static void route_pinned(api_edge *e, http_request *req, edge_match *m) {
    if (edge_auth_request(e, req, m)) return; /* 401/403/429 (auth.c) */
    if (edge_match_body_is_json(http_method(req), m)) {
        size_t len;
        const char *body = http_body(req, &len);
        char msg[128];
        const char *cause =
            edge_json_body_check(http_header(req, "Content-Type"), body, len, msg, sizeof msg);
        if (cause) {
            http_respond_error(req, cause, "%s", msg);
            return;
        }
    }
    if (m->route->headers) http_set_response_headers(req, m->route->headers);
    if (m->status != 0 || !m->route->handler) {
        if (m->status == 0) m->status = 404; /* a row answered before routing (GET /healthz) */
        respond_no_route(req, m);
        return;
    }
    m->route->handler(e, req, m);
}

void edge_route(void *app, http_request *req) {
    api_edge *e = app;
    const char *host = http_header(req, "Host");
    if (!host || !*host) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "a Host header is required");
        return;
    }
    if (!edge_host_allowed(e->allowed_hosts ? e->allowed_hosts : EDGE_DEFAULT_ALLOWED_HOSTS,
                           host)) {
        /* RFC 9110 15.5.20: this server does not answer for that name. */
        http_respond_error(req, CAUSE_MISDIRECTED_REQUEST,
                           "this server does not answer for that Host");
        return;
    }
    edge_match m;
    edge_route_find(http_method(req), http_path(req), &m);
    /* One version of the tenants file for the whole request (routes.h). */
    m.config = snapshot_pin(e->config);
    route_pinned(e, req, &m);
    snapshot_unpin(m.config);
}
