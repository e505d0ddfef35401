/* See backend_errors.h. */
#include "shared/contracts/backend_errors.h"
#include "shared/plumbing/errors.h"

#include <ctype.h>
#include <strings.h>

static const struct {
    const char *error_type;
    const char *cause;
    const char *message;
} ERROR_TYPES[] = {
    {"UNKNOWN_SUBSCRIBER_ID", CAUSE_INVALID_NUMBER, "subscriber is unknown to the operator"},
    {"FORBIDDEN", CAUSE_USER_ROAMING, "subscriber is roaming"},
    {"USER_BARRED", CAUSE_NOT_ALLOWED, "subscriber is barred by the operator"},
    {"NOT_IMPLEMENTED", CAUSE_NOT_ALLOWED, "operation not supported by the operator"},
    {"INSUFFICIENT_FUNDS", CAUSE_INSUFFICIENT_FUNDS, "insufficient funds"},
    {"PURCHASE_IN_PROGRESS", CAUSE_PURCHASE_CONFLICT, "a purchase is already in progress"},
    {"CONFLICT", CAUSE_PURCHASE_CONFLICT, "conflicts with the current subscription"},
    {"PURCHASE_ALREADY_EXECUTED", CAUSE_PURCHASE_CONFLICT, "purchase already executed"},
    {"TIMEOUT", CAUSE_SERVICE_UNAVAILABLE, "operator backend timed out"},
    {"CONGESTED", CAUSE_SERVICE_UNAVAILABLE, "operator backend is congested"},
    {"INTERNAL_ERROR", CAUSE_SERVICE_UNAVAILABLE, "operator backend internal error"},
    {"BAD_REQUEST", CAUSE_BAD_REQUEST, "operator backend rejected the request"},
    {"PARSING_ERROR", CAUSE_BAD_REQUEST, "operator backend could not parse the request"},
    {"INVALID_PRODUCT", CAUSE_BAD_REQUEST, "the operator does not offer this plan"},
    {"INVALID_TRANSID", CAUSE_BAD_REQUEST, "the operator refused the transaction id"},
};

int backend_error_type_known(const char *error_type) {
    for (size_t i = 0; error_type && i < sizeof ERROR_TYPES / sizeof ERROR_TYPES[0]; i++)
        if (strcasecmp(error_type, ERROR_TYPES[i].error_type) == 0) return 1;
    return 0;
}

const char *backend_error_cause(const char *error_type, long http_status, const char **message) {
    const char *unused;
    if (!message) message = &unused;
    for (size_t i = 0; error_type && i < sizeof ERROR_TYPES / sizeof ERROR_TYPES[0]; i++) {
        if (strcasecmp(error_type, ERROR_TYPES[i].error_type) == 0) {
            *message = ERROR_TYPES[i].message;
            return ERROR_TYPES[i].cause;
        }
    }
    if (http_status == 0) {
        *message = "operator backend did not answer";
        return CAUSE_SERVICE_UNAVAILABLE;
    }
    if (http_status >= 500 || http_status == 408 || http_status == 429) {
        *message = "operator backend is unavailable";
        return CAUSE_SERVICE_UNAVAILABLE;
    }
    if (http_status == 404 && !(error_type && *error_type)) {
        *message = "subscriber is unknown to the operator";
        return CAUSE_INVALID_NUMBER;
    }
    *message = "operator backend error";
    return CAUSE_UNSPECIFIED;
}

void backend_mask_digits(const char *text, char *out, size_t outlen) {
    if (!out || outlen == 0) return;
    size_t o = 0;
    const char *p = text ? text : "";
    while (*p && o + 1 < outlen) {
        if (isdigit((unsigned char)*p)) {
            size_t n = 0;
            while (isdigit((unsigned char)p[n])) n++;
            size_t keep = n >= 12 ? 4 : 2;
            for (size_t k = 0; k < n && o + 1 < outlen; k++)
                out[o++] = (n < 7 || k < keep || k >= n - keep) ? p[k] : '*';
            p += n;
            continue;
        }
        unsigned char c = (unsigned char)*p++;
        out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    /* Cut short: do not end inside a UTF-8 character. */
    if (*p) {
        size_t cut = o;
        while (cut > 0 && ((unsigned char)out[cut - 1] & 0xC0) == 0x80) cut--;
        if (cut > 0 && ((unsigned char)out[cut - 1] & 0xC0) == 0xC0) o = cut - 1;
    }
    out[o] = '\0';
}
