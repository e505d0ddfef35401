/* Calls to the operator's backend-integration API
 * (millom-backend-integration.yaml): POST /activate/{customerId}; for
 * purchases without an offerContext, GET /offers/{customerId} for the
 * plan's price and fund source; for eligibility, GET /balance/{customerId}
 * for the funds. Parsing is pure and tested on its own.
 *
 * activateResponse: activationStatus is an object {status OK|FAIL|PENDING,
 * errorMessage {errorType, message}} per the schema; the spec's own example
 * sends a bare string ("activationStatus": "OK"), so both are accepted.
 * Errors come as errorResponse {errorType, message} with a 4xx/5xx status.
 * An answer is classified (see activation_kind):
 *   - 2xx OK -> completed (confirmationCode kept), PENDING -> pending;
 *   - PURCHASE_ALREADY_EXECUTED, with any status -> already (completed);
 *   - TIMEOUT, INTERNAL_ERROR, a 5xx or 408 without a known errorType, a
 *     2xx without a readable status, a lost connection or a read timeout
 *     -> unknown (the operator may have executed it: retry, same transId);
 *   - CONGESTED, 429, no connection at all -> not executed (retry);
 *   - any other errorType, a 2xx FAIL, another 4xx -> failed.
 * A 2xx FAIL is also flagged (status_fail): re-checking a pending purchase
 * takes it as the operator's stored outcome whatever its errorType. */
#include "activation_client.h"
#include "shared/patterns/backend_client.h"
#include "shared/contracts/backend_errors.h"
#include "shared/contracts/fund_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "shared/plumbing/crypto.h"
#include "shared/plumbing/errors.h"
#include "shared/contracts/money.h"
#include "shared/plumbing/text.h"

static const char *str_field(const json_t *o, const char *name) {
    const json_t *v = json_is_object(o) ? json_object_get(o, name) : NULL;
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* An error answer (or a 2xx FAIL when is_fail). */
static activation_kind classify_error(const char *error_type, long status, int is_fail) {
    if (backend_error_type_known(error_type)) {
        if (strcasecmp(error_type, "PURCHASE_ALREADY_EXECUTED") == 0) return ACT_ALREADY;
        if (strcasecmp(error_type, "TIMEOUT") == 0 || strcasecmp(error_type, "INTERNAL_ERROR") == 0)
            return ACT_UNKNOWN;
        if (strcasecmp(error_type, "CONGESTED") == 0) return ACT_NOT_EXECUTED;
        return ACT_FAILED;
    }
    if (is_fail) return ACT_FAILED;
    if (status == 429) return ACT_NOT_EXECUTED;
    if (status >= 500 || status == 408) return ACT_UNKNOWN;
    return ACT_FAILED;
}

void activation_parse(long status, const char *body, size_t len, int connected,
                      activation_result *out) {
    memset(out, 0, sizeof *out);
    out->http_status = status;
    if (status == 0) {
        out->kind = connected ? ACT_UNKNOWN : ACT_NOT_EXECUTED;
        return;
    }
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *as = json_is_object(j) ? json_object_get(j, "activationStatus") : NULL;
    const json_t *em = json_is_object(as) ? json_object_get(as, "errorMessage") : NULL;
    if (!json_is_object(em)) em = json_is_object(j) ? json_object_get(j, "errorMessage") : NULL;

    const char *error_type = str_field(j, "errorType");
    if (!error_type) error_type = str_field(em, "errorType");
    const char *message = str_field(j, "message");
    if (!message) message = str_field(em, "message");
    if (!message) message = str_field(as, "message");
    const char *code = str_field(j, "confirmationCode");

    text_copy(out->error_type, sizeof out->error_type, error_type);
    outcome_mask_digits(message, out->message, sizeof out->message);
    text_copy(out->confirmation_code, sizeof out->confirmation_code, code);

    if (status >= 200 && status < 300) {
        const char *st = json_is_string(as) ? json_string_value(as) : str_field(as, "status");
        if (st && strcasecmp(st, "OK") == 0)
            out->kind = ACT_COMPLETED;
        else if (st && strcasecmp(st, "PENDING") == 0)
            out->kind = ACT_PENDING;
        else if (st && strcasecmp(st, "FAIL") == 0) {
            out->kind = classify_error(error_type, status, 1);
            out->status_fail = 1;
        } else if (error_type)
            out->kind = classify_error(error_type, status, 0);
        else {
            /* Something answered 2xx but we cannot tell what happened. */
            out->kind = ACT_UNKNOWN;
            snprintf(out->detail, sizeof out->detail,
                     "HTTP %ld without a readable activationStatus", status);
        }
    } else {
        out->kind = classify_error(error_type, status, 0);
        snprintf(out->detail, sizeof out->detail, "HTTP %ld%s%s", status, error_type ? " " : "",
                 error_type ? out->error_type : "");
    }
    json_decref(j);
}

char *activation_body(const purchase *p, const char *channel_id, const char *callback_url) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "channelId",
                        json_string(p->client_name[0] ? p->client_name : channel_id));
    json_object_set_new(o, "serviceProviderId", json_string(p->service_provider));
    json_object_set_new(o, "offerId", json_string(p->plan_id));
    /* The operator's transId, namespaced per provider (purchase_store.c). */
    json_object_set_new(o, "transId", json_string(p->op_transid[0] ? p->op_transid : p->transid));
    if (callback_url && *callback_url)
        json_object_set_new(o, "callbackUrl", json_string(callback_url));
    json_object_set_new(o, "fundSource",
                        json_string(p->fund_source[0] ? p->fund_source : "WALLET"));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

static const char *id_type(const purchase *p) {
    return strcmp(p->key_type, "OPET") == 0 ? "OPET" : "MSISDN";
}

int activation_url(const tenant_operator *op, const purchase *p, char *url, size_t urllen) {
    char *id = http_escape(p->subscriber);
    if (!id) return -1;
    int n =
        snprintf(url, urllen, "%s/activate/%s?customerIdType=%s", op->backend_url, id, id_type(p));
    free(id);
    return n < 0 || (size_t)n >= urllen ? -1 : 0;
}

/* No connection was ever made, so nothing reached the operator. */
static int never_connected(const char *curl_error) {
    static const CURLcode CODES[] = {CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST,
                                     CURLE_COULDNT_RESOLVE_PROXY, CURLE_URL_MALFORMAT,
                                     CURLE_UNSUPPORTED_PROTOCOL};
    for (size_t i = 0; i < sizeof CODES / sizeof CODES[0]; i++)
        if (strcmp(curl_error, curl_easy_strerror(CODES[i])) == 0) return 1;
    return 0;
}

void activation_call(http_client *hc, const activation_target *t, const purchase *p,
                     activation_result *out) {
    char url[2048];
    char *body = activation_body(p, t->channel_id, t->callback_url);
    if (!body || activation_url(t->op, p, url, sizeof url) != 0) {
        free(body);
        memset(out, 0, sizeof *out);
        out->kind = ACT_NOT_EXECUTED;
        snprintf(out->detail, sizeof out->detail, "cannot build the activation request");
        return;
    }
    /* backendAuth: a bearer token; on a 401 (refused before anything was
     * executed) one retry with a fresh token. */
    char auth[BACKEND_AUTH_HEADER_MAX];
    int a = backend_auth_header(t->op, hc, auth, sizeof auth);
    if (a < 0) {
        free(body);
        memset(out, 0, sizeof *out);
        out->kind = ACT_NOT_EXECUTED;
        snprintf(out->detail, sizeof out->detail, "backend auth: %.130s", auth);
        return;
    }
    /* Accept, the request id (x-correlator) and the bearer token, as
     * offer-resolver sends them (backend_headers). */
    const char *headers[4];
    char id_line[BACKEND_CORRELATOR_LINE];
    backend_headers(a ? auth : NULL, id_line, headers);
    http_result res;
    http_post(hc, url, headers, "application/json", body, strlen(body), t->timeout_ms, &res);
    if (a && res.status == 401) {
        backend_auth_rejected(t->op, auth);
        http_result_free(&res);
        if (backend_auth_header(t->op, hc, auth, sizeof auth) < 0) {
            free(body);
            memset(out, 0, sizeof *out);
            out->kind = ACT_NOT_EXECUTED;
            snprintf(out->detail, sizeof out->detail, "backend auth: %.130s", auth);
            return;
        }
        http_post(hc, url, headers, "application/json", body, strlen(body), t->timeout_ms, &res);
    }
    free(body);
    int connected = res.status != 0 || !never_connected(res.error);
    activation_parse(res.status, res.body, res.body_len, connected, out);
    if (res.status == 0)
        snprintf(out->detail, sizeof out->detail, "no answer: %.140s",
                 res.error[0] ? res.error : "?");
    http_result_free(&res);
}

/* ------------------------------------------------------------ offers */

int offers_find_price(const json_t *body, const char *plan_id, int scale,
                      const char *default_currency, int64_t *price_minor, char *currency,
                      size_t curlen, char fund_source[8]) {
    const json_t *offers = json_is_object(body) ? json_object_get(body, "offers") : NULL;
    if (!json_is_array(offers)) return -1;
    size_t i;
    const json_t *o;
    json_array_foreach(offers, i, o) {
        const char *id = str_field(o, "id");
        if (!id || strcmp(id, plan_id) != 0) continue;
        const json_t *cost = json_object_get(o, "cost");
        const json_t *value = json_is_object(cost) ? json_object_get(cost, "value") : NULL;
        int64_t minor;
        int rc = -1;
        if (json_is_number(value))
            rc = money_from_json(value, scale, &minor);
        else if (json_is_string(value))
            rc = money_parse(json_string_value(value), scale, &minor);
        if (rc != 0 || minor < 0) return -1;
        const char *cur = str_field(cost, "currency");
        if (!cur) cur = default_currency;
        if (!cur || !*cur || strlen(cur) >= curlen) return -1;
        *price_minor = minor;
        snprintf(currency, curlen, "%s", cur);
        Millom__V1__FundSource known;
        const char *fund = str_field(o, "fundSource");
        text_copy(fund_source, 8, fund && fund_source_parse(fund, &known) == 0 ? fund : "");
        return 1;
    }
    return 0;
}

/* An error answer (or none) of GET /offers or /balance into out. */
static void backend_error_of(const http_result *res, const json_t *j, offer_lookup *out) {
    const char *fallback = NULL;
    const char *et = res->status == 200 ? NULL : str_field(j, "errorType");
    out->cause =
        res->status == 200 ? CAUSE_SERVICE_UNAVAILABLE : outcome_cause(et, res->status, &fallback);
    text_copy(out->error_type, sizeof out->error_type, backend_error_type_known(et) ? et : "");
    const char *m = str_field(j, "message");
    outcome_mask_digits(m          ? m
                        : fallback ? fallback
                                   : "the operator backend sent malformed JSON",
                        out->message, sizeof out->message);
}

/* GET /{resource}/{customerId} for p's subscriber; the parsed body (NULL
 * when not JSON) into *body, the answer into res (caller frees both). */
static void backend_fetch(http_client *hc, const tenant_operator *op, const purchase *p,
                          const char *resource, const char *channel_id, long timeout_ms,
                          http_result *res, json_t **body) {
    char trans_id[37];
    crypto_uuid(trans_id);
    backend_request br = {
        .op = op,
        .resource = resource,
        .customer_id = p->subscriber,
        .customer_id_type = id_type(p),
        .channel_id = p->client_name[0] ? p->client_name : channel_id,
        .service_provider = p->service_provider,
        .lang = p->language,
        .trans_id = trans_id,
        .timeout_ms = timeout_ms,
    };
    backend_get(hc, &br, res);
    *body = res->body_len ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
}

offer_price_result offer_price(http_client *hc, const tenant_operator *op, const purchase *p,
                               const char *channel_id, long timeout_ms, offer_lookup *out) {
    memset(out, 0, sizeof *out);
    out->cause = CAUSE_UNSPECIFIED;
    http_result res;
    json_t *j;
    backend_fetch(hc, op, p, "offers", channel_id, timeout_ms, &res, &j);
    offer_price_result result;
    if (res.status == 200 && j) {
        int found =
            offers_find_price(j, p->plan_id, op->currency_scale, op->currency, &out->price_minor,
                              out->currency, sizeof out->currency, out->fund_source);
        if (found > 0) {
            result = OFFER_PRICE_OK;
        } else if (found == 0) {
            /* The standard API defines NEED_TOPUP as "no offers the user
             * could purchase; needs to add funds": that is 402, not a bad
             * plan id. */
            const char *state = str_field(j, "subscriberState");
            result =
                state && strcmp(state, "NEED_TOPUP") == 0 ? OFFER_NEED_TOPUP : OFFER_NOT_OFFERED;
        } else {
            out->cause = CAUSE_SERVICE_UNAVAILABLE;
            snprintf(out->message, sizeof out->message,
                     "the operator backend sent an unusable offer list");
            result = OFFER_BACKEND_ERROR;
        }
    } else {
        backend_error_of(&res, j, out);
        result = OFFER_BACKEND_ERROR;
    }
    json_decref(j);
    http_result_free(&res);
    return result;
}

int account_status_get(http_client *hc, const tenant_operator *op, const purchase *p,
                       const char *channel_id, long timeout_ms, json_t **account_status,
                       offer_lookup *error) {
    memset(error, 0, sizeof *error);
    *account_status = NULL;
    http_result res;
    json_t *j;
    backend_fetch(hc, op, p, "balance", channel_id, timeout_ms, &res, &j);
    int ok = res.status == 200 && json_is_object(j);
    if (ok)
        *account_status = j;
    else {
        backend_error_of(&res, j, error);
        json_decref(j);
    }
    http_result_free(&res);
    return ok;
}
