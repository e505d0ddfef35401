/* Bearer tokens for the sandbox's activation callbacks. Millom's secure
 * profile (MILLOM_AUTH_DISABLED=0) answers a callback without a token 401,
 * as it would a real operator's; a real operator calls with OAuth 2.0
 * client credentials of its operator client, and so does the sandbox:
 *
 *   MILLOM_MNO_OAUTH_CLIENT_SECRET  the secret; unset or empty: callbacks go
 *                                   without a token (the sandbox profile)
 *   MILLOM_MNO_OAUTH_CLIENT_ID      default: the id of the tenants file's
 *                                   (MILLOM_TENANTS) first enabled client
 *                                   whose "operator" is "tp", else "tp-demo"
 *   MILLOM_MNO_OAUTH_TOKEN_URL      default: <origin of the callback URL>/oauth/v1/token,
 *                                   i.e. the Millom the callback goes to
 *   MILLOM_MNO_OAUTH_SCOPE          default "cco.dd.data-plan.inquire" (the
 *                                   callbacks' scope)
 *
 * Tokens come from shared/patterns/oauth_client.h: one process-wide source per
 * (token URL, client, scope) that caches the token until shortly before it
 * expires; a 401 answer drops it (mno_callback_auth_rejected) so the next
 * POST fetches a fresh one. Secrets and tokens are never logged. */
#include "mno_sandbox.h"

#include "shared/plumbing/settings.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/oauth_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_CLIENT_ID "tp-demo"
#define DEFAULT_SCOPE "cco.dd.data-plan.inquire"

/* The id of the tenants file's first enabled client of this operator, or
 * "" when the file cannot be read or has none. */
static void tenants_operator_client(char *out, size_t len) {
    out[0] = '\0';
    char err[256];
    tenants *t = tenants_load_default(err, sizeof err);
    if (!t) {
        log_info("mno-sandbox: no tenants file for the callback client id (%s)", err);
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(tenants_json(t), "clients"), i, c) {
        const char *op = json_string_value(json_object_get(c, "operator"));
        const char *id = json_string_value(json_object_get(c, "id"));
        json_t *enabled = json_object_get(c, "enabled");
        if (op && id && strcmp(op, MNO_OPERATOR) == 0 && !json_is_false(enabled)) {
            snprintf(out, len, "%s", id);
            break;
        }
    }
    tenants_free(t);
}

void mno_callback_auth_from_env(mno_callback_auth *a) {
    memset(a, 0, sizeof *a);
    settings_reader s = SETTINGS_INIT; /* shared/plumbing/settings.h; a bad value exits 1 */
    snprintf(a->client_secret, sizeof a->client_secret, "%s",
             settings_str(&s, "MILLOM_MNO_OAUTH_CLIENT_SECRET", ""));
    snprintf(a->token_url, sizeof a->token_url, "%s",
             settings_url(&s, "MILLOM_MNO_OAUTH_TOKEN_URL", ""));
    snprintf(a->scope, sizeof a->scope, "%s",
             settings_str(&s, "MILLOM_MNO_OAUTH_SCOPE", DEFAULT_SCOPE));
    const char *id = settings_str(&s, "MILLOM_MNO_OAUTH_CLIENT_ID", NULL);
    settings_exit_on_error(&s);
    if (id)
        snprintf(a->client_id, sizeof a->client_id, "%s", id);
    else if (a->client_secret[0])
        tenants_operator_client(a->client_id, sizeof a->client_id);
    if (!a->client_id[0]) snprintf(a->client_id, sizeof a->client_id, DEFAULT_CLIENT_ID);
}

int mno_token_url_for(const char *callback_url, char *out, size_t len) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (u && callback_url && curl_url_set(u, CURLUPART_URL, callback_url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        /* No port part when the URL has none (the scheme's default). */
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK) port = NULL;
        int n = snprintf(out, len, "%s://%s%s%s/oauth/v1/token", scheme, host, port ? ":" : "",
                         port ? port : "");
        rc = n > 0 && (size_t)n < len ? 0 : -1;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    if (rc != 0 && len) out[0] = '\0';
    return rc;
}

/* The token source for callbacks to callback_url; NULL with a message. */
static oauth_token_source *source_for(const mno_callback_auth *a, const char *callback_url,
                                      char *err, size_t errlen) {
    char derived[600];
    const char *token_url = a->token_url;
    if (!token_url[0]) {
        if (mno_token_url_for(callback_url, derived, sizeof derived) != 0) {
            snprintf(err, errlen, "no token URL for callback URL %.*s",
                     (int)strcspn(callback_url, "?"), callback_url);
            return NULL;
        }
        token_url = derived;
    }
    oauth_token_source *s =
        oauth_source_get(token_url, a->client_id, a->client_secret, a->scope[0] ? a->scope : NULL);
    if (!s) snprintf(err, errlen, "cannot create the token source for %s", token_url);
    return s;
}

int mno_callback_auth_header(const mno_callback_auth *a, http_client *hc, const char *callback_url,
                             char *hdr, size_t len) {
    if (!a->client_secret[0]) {
        if (len) hdr[0] = '\0';
        return 0;
    }
    oauth_token_source *s = source_for(a, callback_url, hdr, len);
    if (!s) return -1;
    return oauth_authorization(s, hc, hdr, len) == 0 ? 1 : -1;
}

void mno_callback_auth_rejected(const mno_callback_auth *a, const char *callback_url,
                                const char *hdr) {
    char err[256];
    oauth_token_source *s =
        a->client_secret[0] ? source_for(a, callback_url, err, sizeof err) : NULL;
    if (s && hdr && *hdr) oauth_invalidate(s, hdr);
}
