/* Path dispatch. The backend API lives at the root (the operator's
 * backendUrl, e.g. http://127.0.0.1:9090); a "/v1" prefix, as in the spec's
 * example server URL, is accepted too. Unknown paths are 404 with
 * errorType BAD_REQUEST, a known path with the wrong method is 405. */
#include "mno_sandbox.h"

#include <string.h>

void mno_method_not_allowed(http_request *req, const char *allow) {
    static const char body[] = "{\"errorType\":\"BAD_REQUEST\",\"message\":\"method not allowed\"}";
    http_respond_with_header(req, 405, "application/json", body, sizeof body - 1, "Allow", allow);
}

static void backend(mno_app *app, http_request *req, mno_call call, const char *customer_id) {
    if (!*customer_id || strchr(customer_id, '/')) {
        mno_respond_error(req, 404, "BAD_REQUEST", "no such path");
        return;
    }
    const char *method = call == MNO_CALL_ACTIVATE ? "POST" : "GET";
    if (strcmp(http_method(req), method) != 0) {
        mno_method_not_allowed(req, method);
        return;
    }
    mno_route_backend(app, req, call, customer_id);
}

void mno_handle(void *ctx, http_request *req) {
    mno_app *app = ctx;
    const char *path = http_path(req);
    if (strncmp(path, "/v1/", 4) == 0) path += 3;

    if (strncmp(path, "/balance/", 9) == 0) {
        backend(app, req, MNO_CALL_BALANCE, path + 9);
    } else if (strncmp(path, "/offers/", 8) == 0) {
        backend(app, req, MNO_CALL_OFFERS, path + 8);
    } else if (strncmp(path, "/activate/", 10) == 0) {
        backend(app, req, MNO_CALL_ACTIVATE, path + 10);
    } else if (strcmp(path, "/messages") == 0) {
        mno_route_messages(app, req); /* the top-up extension (routes_topup.c) */
    } else if (strncmp(path, "/topup/", 7) == 0) {
        mno_route_credit(app, req, path + 7);
    } else if (strcmp(path, "/admin/messages") == 0) {
        mno_route_admin_messages(app, req);
    } else if (strncmp(path, "/admin/", 7) == 0) {
        mno_route_admin(app, req, path + 7);
    } else {
        mno_respond_error(req, 404, "BAD_REQUEST", "no such path");
    }
}
