/* See backend_client.h. Every value is percent-encoded; the subscriber id
 * is never logged in full. */
#include "shared/plumbing/settings.h"
#include "shared/patterns/backend_client.h"
#include "shared/patterns/oauth_client.h"
#include "shared/plumbing/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The token source of the operator's backendAuth; NULL with *configured 0
 * when there is none, NULL with a message in err when it is unusable. */
static oauth_token_source *auth_source(const tenant_operator *op, int *configured, char *err,
                                       size_t errlen) {
    json_t *a = op && op->json ? json_object_get(op->json, "backendAuth") : NULL;
    *configured = a != NULL && !json_is_null(a);
    if (!*configured) return NULL;
    const char *url = json_string_value(json_object_get(a, "tokenUrl"));
    const char *id = json_string_value(json_object_get(a, "clientId"));
    const char *secret = json_string_value(json_object_get(a, "clientSecret"));
    const char *env = json_string_value(json_object_get(a, "clientSecretEnv"));
    const char *scope = json_string_value(json_object_get(a, "scope"));
    if (!secret && env && *env) secret = setting_str(env, NULL);
    if (!json_is_object(a) || !url || !*url || !id || !*id) {
        snprintf(err, errlen, "operator %s: backendAuth needs tokenUrl and clientId", op->id);
        return NULL;
    }
    if (!secret || !*secret) {
        snprintf(err, errlen, "operator %s: backendAuth has no client secret%s%s", op->id,
                 env ? " in $" : "", env ? env : "");
        return NULL;
    }
    oauth_token_source *s = oauth_source_get(url, id, secret, scope);
    if (!s) snprintf(err, errlen, "operator %s: cannot create the token source", op->id);
    return s;
}

int backend_auth_header(const tenant_operator *op, http_client *hc, char *hdr, size_t len) {
    int configured;
    oauth_token_source *s = auth_source(op, &configured, hdr, len);
    if (!configured) {
        if (len) hdr[0] = '\0';
        return 0;
    }
    if (!s) return -1;
    return oauth_authorization(s, hc, hdr, len) == 0 ? 1 : -1;
}

void backend_auth_rejected(const tenant_operator *op, const char *hdr) {
    int configured;
    char err[256];
    oauth_token_source *s = auth_source(op, &configured, err, sizeof err);
    if (s && hdr && *hdr) oauth_invalidate(s, hdr);
}

static int auth_failed(const tenant_operator *op, const char *msg, http_result *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->error, sizeof out->error, "operator %s backend auth: %.200s", op->id, msg);
    return -1;
}

int backend_auth_cached(const tenant_operator *op, char *hdr, size_t len, int *refresh_due) {
    *refresh_due = 0;
    int configured;
    char err[256];
    oauth_token_source *s = auth_source(op, &configured, err, sizeof err);
    if (!configured) {
        if (len) hdr[0] = '\0';
        return 0;
    }
    if (!s) return -1;
    return oauth_valid_authorization(s, hdr, len, refresh_due) == 0 ? 1 : -1;
}

/* Appends text to url[*n..len), as much as fits, NUL-terminated; *n
 * counts all of it, as snprintf does. */
static void append(char *url, size_t len, size_t *n, const char *text, int escape) {
    if (escape) {
        *n += http_escape_to(*n < len ? url + *n : NULL, *n < len ? len - *n : 0, text);
        return;
    }
    size_t w = strlen(text);
    if (*n < len) {
        size_t fits = w < len - *n - 1 ? w : len - *n - 1;
        memcpy(url + *n, text, fits);
        url[*n + fits] = '\0';
    }
    *n += w;
}

int backend_url(const backend_request *req, char *url, size_t len) {
    static const char *const names[] = {
        "customerIdType=", "channelId=", "serviceProviderId=", "lang=",          "transId=",
        "dealerCode=",     "offerType=", "maxPrice=",          "numberofOffers="};
    const char *values[] = {
        req->customer_id_type, req->channel_id,  req->service_provider, req->lang,
        req->trans_id,         req->dealer_code, req->offer_type,       req->max_price,
        req->number_of_offers};
    if (!req->customer_id || !len) return -1;
    /* Written in place with plain copies: escaping into copies
     * (curl_easy_escape, a strdup and a free per value) and snprintf
     * were 8% of offer-resolver's instructions per cache miss. */
    size_t n = 0;
    url[0] = '\0';
    append(url, len, &n, req->op->backend_url, 0);
    append(url, len, &n, "/", 0);
    append(url, len, &n, req->resource, 0);
    append(url, len, &n, "/", 0);
    append(url, len, &n, req->customer_id, 1);
    const char *sep = "?";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!values[i] || !*values[i]) continue;
        append(url, len, &n, sep, 0);
        append(url, len, &n, names[i], 0);
        append(url, len, &n, values[i], 1);
        sep = "&";
    }
    return n < len ? 0 : -1;
}

void backend_headers(const char *auth, char line[BACKEND_CORRELATOR_LINE], const char *out[4]) {
    size_t n = 0;
    out[n++] = "Accept: application/json";
    const char *id = correlator_current();
    if (*id) {
        snprintf(line, BACKEND_CORRELATOR_LINE, CORRELATOR_HEADER ": %s", id);
        out[n++] = line;
    }
    if (auth) out[n++] = auth;
    out[n] = NULL;
}

/* What is left of req's timeout, t0 being when backend_get started: a
 * token fetch on the way takes its share. */
static long time_left(const backend_request *req, int64_t t0) {
    return req->timeout_ms - (long)(mono_ms() - t0);
}

static int timed_out(http_result *out) {
    memset(out, 0, sizeof *out);
    out->timed_out = 1;
    snprintf(out->error, sizeof out->error, "no time left for the backend call");
    return -1;
}

int backend_get(http_client *c, const backend_request *req, http_result *out) {
    int64_t t0 = mono_ms();
    char url[BACKEND_URL_MAX];
    if (backend_url(req, url, sizeof url) != 0) {
        memset(out, 0, sizeof *out);
        snprintf(out->error, sizeof out->error, "backend URL too long");
        return -1;
    }
    char auth[BACKEND_AUTH_HEADER_MAX];
    int a = backend_auth_header(req->op, c, auth, sizeof auth);
    if (a < 0) return auth_failed(req->op, auth, out);
    const char *headers[4];
    char id_line[BACKEND_CORRELATOR_LINE];
    backend_headers(a ? auth : NULL, id_line, headers);
    long left = time_left(req, t0);
    if (left <= 0) return timed_out(out);
    int rc = http_get(c, url, headers, left, out);
    if (a && out->status == 401 && !req->token_refused) {
        /* The token may have been revoked or rotated: once more with a fresh one. */
        backend_auth_rejected(req->op, auth);
        http_result_free(out);
        if (backend_auth_header(req->op, c, auth, sizeof auth) < 0)
            return auth_failed(req->op, auth, out);
        if ((left = time_left(req, t0)) <= 0) return timed_out(out);
        rc = http_get(c, url, headers, left, out);
    }
    /* A fresh token refused too: not kept for the next call either. */
    if (a && out->status == 401) backend_auth_rejected(req->op, auth);
    return rc;
}
