/* See request_purchase.h. */
#include "request_purchase.h"
#include "shared/contracts/fund_source.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool transid_valid(const char *s) {
    size_t n = strlen(s);
    if (n < 10 || n > 128) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
            return false;
    return true;
}

static json_t *parse_object(const char *body, size_t len, char *msg, size_t msglen) {
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        snprintf(msg, msglen, "body is not valid JSON: %s (at character %d)", jerr.text,
                 jerr.position);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(msg, msglen, "body must be a JSON object");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Copies an optional string field; -1 (with msg) if present but not a
 * string or too long. Absent leaves out = "". */
static int opt_string(json_t *obj, const char *field, char *out, size_t outlen, char *msg,
                      size_t msglen) {
    out[0] = '\0';
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        snprintf(msg, msglen, "%s must be a string", field);
        return -1;
    }
    if (json_string_length(v) >= outlen) {
        snprintf(msg, msglen, "%s is longer than %zu characters", field, outlen - 1);
        return -1;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    if (strlen(out) != json_string_length(v)) {
        snprintf(msg, msglen, "%s must not contain NUL characters", field);
        return -1;
    }
    return 0;
}

static int req_string(json_t *obj, const char *field, char *out, size_t outlen, char *msg,
                      size_t msglen) {
    if (opt_string(obj, field, out, outlen, msg, msglen) != 0) return -1;
    if (!out[0]) {
        snprintf(msg, msglen, "%s is required", field);
        return -1;
    }
    return 0;
}

int activation_request_parse(const char *body, size_t len, activation_request *out, char *msg,
                             size_t msglen) {
    memset(out, 0, sizeof *out);
    json_t *j = parse_object(body, len, msg, msglen);
    if (!j) return -1;
    int rc = -1;
    char fund[16];
    if (req_string(j, "transid", out->transid, sizeof out->transid, msg, msglen) != 0) goto out;
    if (!transid_valid(out->transid)) {
        snprintf(msg, msglen,
                 "transid must be 10 to 128 characters of letters, digits, '-', '.', '_'");
        goto out;
    }
    if (req_string(j, "planid", out->planid, sizeof out->planid, msg, msglen) != 0) goto out;
    for (const char *p = out->planid; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == '/') {
            snprintf(msg, msglen, "planid contains a character that is not allowed");
            goto out;
        }
    }
    if (opt_string(j, "offercontext", out->offercontext, sizeof out->offercontext, msg, msglen) !=
        0)
        goto out;
    out->fund_source = MILLOM__V1__FUND_SOURCE__FUND_SOURCE_WALLET;
    if (opt_string(j, "fundSource", fund, sizeof fund, msg, msglen) != 0 ||
        (fund[0] && fund_source_parse(fund, &out->fund_source) != 0)) {
        snprintf(msg, msglen, "fundSource must be one of " FUND_SOURCE_NAMES);
        goto out;
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

int callback_backend_parse(const char *body, size_t len, activation_callback *out, char *msg,
                           size_t msglen) {
    memset(out, 0, sizeof *out);
    json_t *j = parse_object(body, len, msg, msglen);
    if (!j) return -1;
    int rc = -1;
    char status[16], channel[65];
    if (req_string(j, "transId", out->trans_id, sizeof out->trans_id, msg, msglen) != 0 ||
        opt_string(j, "serviceProviderId", out->service_provider, sizeof out->service_provider, msg,
                   msglen) != 0 ||
        opt_string(j, "offerId", out->offer_id, sizeof out->offer_id, msg, msglen) != 0 ||
        opt_string(j, "channelId", channel, sizeof channel, msg, msglen) != 0)
        goto out;
    json_t *as = json_object_get(j, "activationStatus");
    if (!json_is_object(as)) {
        snprintf(msg, msglen, "activationStatus must be an object");
        goto out;
    }
    if (req_string(as, "status", status, sizeof status, msg, msglen) != 0) {
        snprintf(msg, msglen, "activationStatus.status must be one of OK, FAIL");
        goto out;
    }
    if (strcmp(status, "OK") != 0 && strcmp(status, "FAIL") != 0) {
        snprintf(msg, msglen, "activationStatus.status must be one of OK, FAIL");
        goto out;
    }
    out->ok = strcmp(status, "OK") == 0;
    json_t *em = json_object_get(as, "errorMessage");
    if (em && !json_is_null(em)) {
        if (!json_is_object(em) ||
            opt_string(em, "errorType", out->error_type, sizeof out->error_type, msg, msglen) !=
                0 ||
            opt_string(em, "message", out->message, sizeof out->message, msg, msglen) != 0) {
            snprintf(msg, msglen,
                     "activationStatus.errorMessage must be {errorType, message} strings");
            goto out;
        }
    }
    if (!out->ok && !out->error_type[0]) {
        snprintf(msg, msglen, "activationStatus.errorMessage.errorType is required for FAIL");
        goto out;
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

/* 1 if s is printable ASCII without spaces (empty too). */
static int printable_no_space(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) return 0;
    return 1;
}

/* 1 if s is an absolute http:// or https:// URL with a host. */
static int http_url(const char *s) {
    size_t scheme = strncasecmp(s, "https://", 8) == 0  ? 8
                    : strncasecmp(s, "http://", 7) == 0 ? 7
                                                        : 0;
    return scheme && s[scheme] && s[scheme] != '/' && printable_no_space(s);
}

int callback_millom_parse(const char *body, size_t len, activation_callback *out, char *msg,
                          size_t msglen) {
    memset(out, 0, sizeof *out);
    json_t *j = parse_object(body, len, msg, msglen);
    if (!j) return -1;
    int rc = -1;
    char *code = out->error_code, *redirect = out->redirect_link;
    if (req_string(j, "transactionId", out->trans_id, sizeof out->trans_id, msg, msglen) != 0 ||
        req_string(j, "appId", out->service_provider, sizeof out->service_provider, msg, msglen) !=
            0 ||
        opt_string(j, "message", out->message, sizeof out->message, msg, msglen) != 0 ||
        opt_string(j, "errorType", out->error_type, sizeof out->error_type, msg, msglen) != 0 ||
        opt_string(j, "errorCode", code, sizeof out->error_code, msg, msglen) != 0 ||
        opt_string(j, "redirectLink", redirect, sizeof out->redirect_link, msg, msglen) != 0)
        goto out;
    if (!printable_no_space(code)) {
        snprintf(msg, msglen, "errorCode must be printable ASCII without spaces");
        goto out;
    }
    if (redirect[0] && !http_url(redirect)) {
        snprintf(msg, msglen, "redirectLink must be an absolute http:// or https:// URL");
        goto out;
    }
    json_t *dry = json_object_get(j, "dryRun");
    if (dry && !json_is_boolean(dry) && !json_is_null(dry)) {
        snprintf(msg, msglen, "dryRun must be a boolean");
        goto out;
    }
    out->dry_run = json_is_true(dry);
    out->ok = out->error_type[0] == '\0';
    rc = 0;
out:
    json_decref(j);
    return rc;
}
