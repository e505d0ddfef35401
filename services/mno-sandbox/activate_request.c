/* The request of POST /activate/{customerId}?customerIdType=MSISDN|OPET.
 *
 * Body (application/json), per the backend spec plus the sandbox's
 * fundSource:
 *   channelId, serviceProviderId, offerId  required strings, 1..64 chars
 *   transId      required string, 10..128 of letters, digits, '-', '.',
 *                '_' and ':' (the spec: "a minimum of 10 alphanumeric
 *                characters including dashes and dots", UUIDs preferred)
 *   callbackUrl  optional http:// or https:// URL, at most 512 chars
 *   fundSource   optional "WALLET", "EWALLET", "LOAN" or "FREE" (default: the
 *                offer's own)
 * Other fields are ignored. A body that is not JSON is PARSING_ERROR; any
 * other problem is BAD_REQUEST with a message naming the field. */
#include "mno_sandbox.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Copies the string field `key` into out (cap bytes with the NUL).
 * 0 ok, 1 absent (when optional), -1 bad (msg set). */
static int string_field(json_t *body, const char *key, bool required, size_t min, char *out,
                        size_t cap, char *msg, size_t msglen) {
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) {
        if (!required) return 1;
        snprintf(msg, msglen, "missing field %s", key);
        return -1;
    }
    if (!json_is_string(v)) {
        snprintf(msg, msglen, "field %s must be a string", key);
        return -1;
    }
    size_t n = json_string_length(v);
    if (n < (min ? min : 1) || n >= cap) {
        snprintf(msg, msglen, "field %s must be %zu to %zu characters", key, min ? min : 1,
                 cap - 1);
        return -1;
    }
    const char *text = json_string_value(v);
    if (memchr(text, '\0', n)) {
        snprintf(msg, msglen, "field %s must not contain NUL characters", key);
        return -1;
    }
    memcpy(out, text, n + 1);
    return 0;
}

static bool trans_id_ok(const char *t) {
    for (; *t; t++)
        if (!isalnum((unsigned char)*t) && !strchr("-._:", *t)) return false;
    return true;
}

static bool url_ok(const char *u) {
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) return false;
    for (; *u; u++)
        if ((unsigned char)*u <= ' ' || *u == 0x7f) return false;
    return true;
}

int mno_parse_activate(const char *customer_id, mno_param_fn get, void *ctx, const char *body,
                       size_t len, mno_activate_request *rq, const char **error_type, char *msg,
                       size_t msglen) {
    memset(rq, 0, sizeof *rq);
    *error_type = "BAD_REQUEST";

    if (!customer_id || !*customer_id || strlen(customer_id) >= sizeof rq->customer_id) {
        snprintf(msg, msglen, "customerId must be 1 to %zu characters", sizeof rq->customer_id - 1);
        return -1;
    }
    snprintf(rq->customer_id, sizeof rq->customer_id, "%s", customer_id);
    if (mno_parse_id_type(get(ctx, "customerIdType"), &rq->id_type, msg, msglen) != 0) return -1;

    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        *error_type = "PARSING_ERROR";
        snprintf(msg, msglen, "body is not JSON: %.100s", jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(j)) {
        snprintf(msg, msglen, "body must be a JSON object");
        goto out;
    }
    if (string_field(j, "channelId", true, 1, rq->channel_id, sizeof rq->channel_id, msg, msglen) ||
        string_field(j, "serviceProviderId", true, 1, rq->service_provider,
                     sizeof rq->service_provider, msg, msglen) ||
        string_field(j, "offerId", true, 1, rq->offer_id, sizeof rq->offer_id, msg, msglen) ||
        string_field(j, "transId", true, 10, rq->trans_id, sizeof rq->trans_id, msg, msglen))
        goto out;
    if (!trans_id_ok(rq->trans_id)) {
        snprintf(msg, msglen, "field transId may hold only letters, digits, '-', '.', '_' and ':'");
        goto out;
    }
    int got = string_field(j, "callbackUrl", false, 1, rq->callback_url, sizeof rq->callback_url,
                           msg, msglen);
    if (got < 0) goto out;
    if (got == 0 && !url_ok(rq->callback_url)) {
        snprintf(msg, msglen, "field callbackUrl must be an http:// or https:// URL");
        goto out;
    }
    got = string_field(j, "fundSource", false, 1, rq->fund_source, sizeof rq->fund_source, msg,
                       msglen);
    if (got < 0 || (got == 0 && strcmp(rq->fund_source, "WALLET") != 0 &&
                    strcmp(rq->fund_source, "EWALLET") != 0 &&
                    strcmp(rq->fund_source, "LOAN") != 0 && strcmp(rq->fund_source, "FREE") != 0)) {
        snprintf(msg, msglen, "field fundSource must be WALLET, EWALLET, LOAN or FREE");
        goto out;
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}
