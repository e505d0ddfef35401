/* POST /oauth/token: OAuth 2.0 client credentials (RFC 6749 §4.4) for
 * Millom's webhooks, as rich-notification-api.yaml has a provider offer.
 * The client authenticates with HTTP Basic (what Millom sends) or with
 * client_id and client_secret in the form; grant_type must be
 * client_credentials; any scope is granted. Answers
 * {"access_token", "token_type": "Bearer", "expires_in"} with
 * Cache-Control: no-store, or the RFC's {"error", "error_description"}:
 * 400 invalid_request / unsupported_grant_type, 401 invalid_client (with
 * WWW-Authenticate: Basic). The behaviour's tokenFailStatus makes it
 * answer that status instead (a token endpoint that is down). Requests
 * are counted in sp_sandbox_token_requests_total{answer="ok"|"error"}. */
#include "sp_sandbox.h"

#include "shared/plumbing/http_form.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static metric *requests[2]; /* [answered 200] */
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void register_metrics(void) {
    requests[0] = metric_counter("sp_sandbox_token_requests_total",
                                 "Token requests to the simulated provider", "answer=\"error\"");
    requests[1] = metric_counter("sp_sandbox_token_requests_total",
                                 "Token requests to the simulated provider", "answer=\"ok\"");
}

static void oauth_error(http_request *req, int status, const char *error, const char *description) {
    pthread_once(&metrics_once, register_metrics);
    metric_add(requests[0], 1);
    json_t *o = json_pack("{s:s, s:s}", "error", error, "error_description", description);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) {
        sp_respond_error(req, 500, "cannot serialize the answer");
        return;
    }
    if (status == 401)
        http_respond_with_header(req, status, "application/json", text, strlen(text),
                                 "WWW-Authenticate", "Basic realm=\"sp-sandbox\"");
    else
        http_respond(req, status, "application/json", text, strlen(text));
    free(text);
}

void sp_route_token(sp_app *app, http_request *req) {
    if (strcmp(http_method(req), "POST") != 0) {
        sp_method_not_allowed(req, "POST");
        return;
    }
    sp_behaviour_cfg now;
    sp_behaviour_get(app->behaviour, &now);
    if (now.token_fail_status) {
        oauth_error(req, now.token_fail_status, "temporarily_unavailable", "simulated failure");
        return;
    }
    size_t len = 0;
    const char *body = http_body(req, &len);
    client_credentials cc;
    int status;
    const char *description;
    const char *error =
        client_credentials_read(http_header(req, "Content-Type"), http_header(req, "Authorization"),
                                body, len, &cc, &status, &description);
    if (error) {
        oauth_error(req, status, error, description);
        return;
    }
    char token[SP_TOKEN_MAX];
    int rc = sp_auth_issue(app->auth, cc.id, cc.secret, now_ms(), token);
    OPENSSL_cleanse(cc.secret, sizeof cc.secret);
    if (rc == -1) {
        oauth_error(req, 401, "invalid_client", "unknown client or wrong secret");
        return;
    }
    if (rc != 0) {
        oauth_error(req, 500, "server_error", "no random bytes for a token");
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:i}", "access_token", token, "token_type", "Bearer",
                          "expires_in", SP_TOKEN_TTL_S);
    if (o && cc.has_scope) json_object_set_new(o, "scope", json_string(cc.scope));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    OPENSSL_cleanse(token, sizeof token);
    pthread_once(&metrics_once, register_metrics);
    metric_add(requests[text != NULL], 1);
    if (!text) {
        sp_respond_error(req, 500, "cannot serialize the answer");
        return;
    }
    http_respond_with_header(req, 200, "application/json", text, strlen(text), "Cache-Control",
                             "no-store");
    OPENSSL_cleanse(text, strlen(text));
    free(text);
}
