/* Which code answers which path, after the strict-HTTP checks
 * (request_http.h): the Host first (421; DNS rebinding), then
 * authentication, then a JSON body's Content-Type and bytes (415, 400). */
#include "edge.h"
#include "request_http.h"
#include "shared/errors.h"

#include <string.h>

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
        http_respond_error(req, CAUSE_MISDIRECTED_REQUEST, "this server does not answer for that Host");
        return;
    }
    if (edge_auth_request(e, req)) return; /* token endpoint, 401/403/429 (auth.c) */
    const char *path = http_path(req);
    if (edge_body_must_be_json(http_method(req), path)) {
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
    if (strncmp(path, "/std/", 5) == 0)
        routes_std(e, req);
    else if (strncmp(path, "/activationCallback/", 20) == 0 ||
             strncmp(path, "/callback/v1/", 13) == 0)
        routes_callbacks(e, req);
    else if (strncmp(path, "/rnf/", 5) == 0) routes_rnf(e, req); /* signed links (routes_rnf.c) */
    else if (routes_cpid_match(path)) routes_cpid(e, req); /* /cpid, /{sp}/{op}/registerCpid */
    else if (routes_consents_match(path)) routes_consents(e, req); /* /mgmt/{op}/consents */
    else if (routes_notify_match(path)) routes_notify(e, req); /* /notify/{op}/v1/single */
    else if (routes_settlement(e, req)) return; /* /mgmt/{op}/settlements, offer-performance */
    else if (strncmp(path, "/mgmt/", 6) == 0)
        routes_mgmt(e, req);
    else
        http_respond_error(req, CAUSE_NOT_FOUND, "no such path: %s", path);
}
