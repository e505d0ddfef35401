/* Which code answers which path. */
#include "edge.h"
#include "shared/errors.h"

#include <string.h>

void edge_route(void *app, http_request *req) {
    api_edge *e = app;
    if (edge_auth_request(e, req)) return; /* token endpoint, 401/403/429 (auth.c) */
    const char *path = http_path(req);
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
