/* POST /oauth/v1/token: OAuth 2.0 client credentials grant (RFC 6749
 * §4.4) with HTTP Basic or form credentials; errors as §5.2 says. */
#include "auth.h"
#include "edge.h"
#include "shared/errors.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Spends about as long as a real check, so unknown ids do not answer faster. */
#define DUMMY_HASH                                                                   \
    "pbkdf2-sha256:10000:00000000000000000000000000000000:"                          \
    "0000000000000000000000000000000000000000000000000000000000000000"

static void oauth_error(http_request *req, int status, const char *error, const char *desc) {
    json_t *j = json_pack("{s:s, s:s}", "error", error, "error_description", desc);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (status == 401)
        http_respond_with_header(req, 401, "application/json", body ? body : "",
                                 body ? strlen(body) : 0, "WWW-Authenticate",
                                 "Basic realm=\"millom\"");
    else
        http_respond_with_header(req, status, "application/json", body ? body : "",
                                 body ? strlen(body) : 0, "Cache-Control", "no-store");
    free(body);
}

void routes_oauth_token(api_edge *e, http_request *req) {
    if (strcmp(http_method(req), "POST") != 0) {
        http_respond_error(req, CAUSE_METHOD_NOT_ALLOWED, "/oauth/v1/token takes POST");
        return;
    }
    struct edge_auth *a = e->auth;
    if (!a) {
        oauth_error(req, 500, "server_error", "authentication is not configured");
        return;
    }
    const char *ct = http_header(req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        oauth_error(req, 400, "invalid_request",
                    "the body must be application/x-www-form-urlencoded");
        return;
    }
    size_t len = 0;
    const char *body = http_body(req, &len);
    char grant[64], form_id[129], form_secret[256], scope_req[1024], basic_id[129],
        basic_secret[256];
    int g = auth_form_get(body, len, "grant_type", grant, sizeof grant);
    int fi = auth_form_get(body, len, "client_id", form_id, sizeof form_id);
    int fs = auth_form_get(body, len, "client_secret", form_secret, sizeof form_secret);
    int sc = auth_form_get(body, len, "scope", scope_req, sizeof scope_req);
    if (g < 0 || fi < 0 || fs < 0 || sc < 0) {
        oauth_error(req, 400, "invalid_request", "a parameter is repeated, malformed or too long");
        return;
    }
    if (g == 0) {
        oauth_error(req, 400, "invalid_request", "grant_type is missing");
        return;
    }
    if (strcmp(grant, "client_credentials") != 0) {
        oauth_error(req, 400, "unsupported_grant_type", "only client_credentials is supported");
        return;
    }
    const char *authz = http_header(req, "Authorization");
    const char *id, *secret;
    if (authz) {
        if (auth_parse_basic(authz, basic_id, sizeof basic_id, basic_secret,
                             sizeof basic_secret) != 0) {
            oauth_error(req, 401, "invalid_client", "malformed Basic credentials");
            return;
        }
        if (fs == 1 || (fi == 1 && strcmp(form_id, basic_id) != 0)) {
            oauth_error(req, 400, "invalid_request", "use one way of client authentication");
            return;
        }
        id = basic_id;
        secret = basic_secret;
    } else if (fi == 1 && fs == 1) {
        id = form_id;
        secret = form_secret;
    } else {
        oauth_error(req, 401, "invalid_client", "client credentials are required");
        return;
    }
    const auth_client *c = auth_clients_find(&a->clients, id);
    int ok = c ? auth_client_check_secret(c, secret) : (auth_secret_matches(DUMMY_HASH, secret), 0);
    if (!c || !ok || !c->enabled) {
        oauth_error(req, 401, "invalid_client", "client authentication failed");
        return;
    }
    char scope[1024];
    if (auth_scope_resolve(c, sc == 1 ? scope_req : NULL, scope, sizeof scope) != 0) {
        oauth_error(req, 400, "invalid_scope", "scope is not a subset of the client's scopes");
        return;
    }
    char *token = auth_token_issue(c, scope, a->key, a->key_len, (long)time(NULL), a->ttl_s);
    if (!token) {
        oauth_error(req, 500, "server_error", "cannot issue a token");
        return;
    }
    json_t *j = json_pack("{s:s, s:s, s:I, s:s}", "access_token", token, "token_type", "Bearer",
                          "expires_in", (json_int_t)a->ttl_s, "scope", scope);
    free(token);
    char *out = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!out) {
        oauth_error(req, 500, "server_error", "cannot encode the answer");
        return;
    }
    http_respond_with_header(req, 200, "application/json", out, strlen(out), "Cache-Control",
                             "no-store");
    free(out);
}
