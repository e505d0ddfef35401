/* Validation of the Top-up API's request body and the top-up id. See
 * request_topup.h. */
#include "request_topup.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "shared/contracts/msisdn.h"
#include "shared/plumbing/crypto.h"
#include "shared/plumbing/json_body.h"

static int reference_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > TOPUP_REFERENCE_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-._:", s[i])) return 0;
    return 1;
}

/* 1..TOPUP_NAME_MAX bytes, no control characters (jansson already
 * checked the UTF-8), at least one that is not a space. */
static int name_valid(const char *s, size_t n) {
    int seen = 0;
    if (n == 0 || n > TOPUP_NAME_MAX || strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return 0;
        if (c != ' ') seen = 1;
    }
    return seen;
}

/* One party ("requestor" or "donor") into msisdn and name. */
static int party(json_t *o, const char *role, char *msisdn, size_t msisdn_len, char *name,
                 size_t name_len, char *msg, size_t msglen) {
    json_t *p = json_object_get(o, role);
    if (!json_is_object(p)) {
        snprintf(msg, msglen, "%s is required (an object with userNumber and name)", role);
        return -1;
    }
    json_t *number = json_object_get(json_object_get(p, "userNumber"), "msisdn");
    if (!json_is_string(number) ||
        !msisdn_normalize(json_string_value(number), msisdn, msisdn_len)) {
        snprintf(msg, msglen, "%s.userNumber.msisdn must be an E.164 number (+ and 8 to 15 digits)",
                 role);
        return -1;
    }
    json_t *n = json_object_get(p, "name");
    if (!json_is_string(n) || !name_valid(json_string_value(n), json_string_length(n))) {
        snprintf(msg, msglen, "%s.name must be a name of 1 to %d bytes without control characters",
                 role, TOPUP_NAME_MAX);
        return -1;
    }
    snprintf(name, name_len, "%s", json_string_value(n));
    return 0;
}

int topup_request_parse(const char *body, size_t len, const char *reference_header,
                        topup_request *out, char *msg, size_t msglen) {
    memset(out, 0, sizeof *out);
    json_t *o = json_body_object(body, len, msg, msglen);
    if (!o) return -1;
    int rc = -1;
    json_t *ref = json_object_get(o, "partnerReference");
    const char *reference = reference_header;
    if (ref && !json_is_string(ref)) {
        snprintf(msg, msglen, "partnerReference must be a string");
        goto out;
    }
    if (ref) {
        if (reference_header && strcmp(reference_header, json_string_value(ref)) != 0) {
            snprintf(msg, msglen, "partnerReference and the X-Partner-Reference header differ");
            goto out;
        }
        reference = json_string_value(ref);
    }
    if (!reference) {
        snprintf(msg, msglen,
                 "a partner reference is required (partnerReference or X-Partner-Reference)");
        goto out;
    }
    if (!reference_valid(reference)) {
        snprintf(msg, msglen,
                 "the partner reference must be 1 to %d letters, digits, '-', '.', '_', ':'",
                 TOPUP_REFERENCE_MAX);
        goto out;
    }
    snprintf(out->reference, sizeof out->reference, "%s", reference);
    if (party(o, "requestor", out->requestor, sizeof out->requestor, out->requestor_name,
              sizeof out->requestor_name, msg, msglen) != 0 ||
        party(o, "donor", out->donor, sizeof out->donor, out->donor_name, sizeof out->donor_name,
              msg, msglen) != 0)
        goto out;
    if (strcmp(out->requestor, out->donor) == 0) {
        snprintf(msg, msglen, "donor.userNumber.msisdn must differ from the requestor's");
        goto out;
    }
    rc = 0;
out:
    json_decref(o);
    return rc;
}

void topup_id_for(const char *provider, const char *reference, char *out) {
    static const char key[] = "millom-topup-id-v1";
    char text[256];
    int n = snprintf(text, sizeof text, "%zu:%s;%zu:%s;", strlen(provider), provider,
                     strlen(reference), reference);
    unsigned char mac[CRYPTO_SHA256_LEN];
    crypto_hmac_sha256(key, sizeof key - 1, text, (size_t)n < sizeof text ? (size_t)n : 0, mac);
    memcpy(out, "tu-", 3);
    for (int i = 0; i < 16; i++) snprintf(out + 3 + 2 * i, 3, "%02x", mac[i]);
}

int topup_id_valid(const char *id) {
    if (strlen(id) != TOPUP_ID_LEN || strncmp(id, "tu-", 3) != 0) return 0;
    for (int i = 3; i < TOPUP_ID_LEN; i++)
        if (!isxdigit((unsigned char)id[i]) || isupper((unsigned char)id[i])) return 0;
    return 1;
}
