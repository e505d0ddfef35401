/* Path dispatch: /notifications, /callbacks, /oauth/token and /admin/.
 * Unknown paths are 404, a known path with the wrong method 405 (with
 * Allow). */
#include "sp_sandbox.h"

#include <string.h>

void sp_respond_error(http_request *req, int status, const char *message) {
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(message));
    http_respond_json(req, status, o);
}

void sp_method_not_allowed(http_request *req, const char *allow) {
    static const char body[] = "{\"error\":\"method not allowed\"}";
    http_respond_with_header(req, 405, "application/json", body, sizeof body - 1, "Allow", allow);
}

void sp_handle(void *ctx, http_request *req) {
    sp_app *app = ctx;
    const char *path = http_path(req);
    if (strcmp(path, "/notifications") == 0) {
        sp_route_receive(app, req, SP_KIND_NOTIFICATION);
    } else if (strcmp(path, "/callbacks") == 0) {
        sp_route_receive(app, req, SP_KIND_CALLBACK);
    } else if (strcmp(path, "/oauth/token") == 0) {
        sp_route_token(app, req);
    } else if (strncmp(path, "/admin/", 7) == 0) {
        sp_route_admin(app, req, path + 7);
    } else {
        sp_respond_error(req, 404, "no such path");
    }
}
