/* POST /std/{serviceProvider}/{subscriberId}/register (millom-standard-api):
 * a provider records which notifications the subscriber consented to.
 * Body {"transactionId": "...", "types": ["out-of-data", ...]}; an empty
 * list revokes. The `language` header (default en, resolved against the
 * operator's languages) is kept for notification texts. subscriberId is
 * an MSISDN or, with key_type=CPID, a URL-encoded CPID (decoded by
 * std_validate). api-edge publishes a ConsentChange on millom.consents;
 * notifier records it and answers 200 with no body, which is relayed. */
#include "edge.h"
#include "shared/plumbing/topics.h"
#include "request_std.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/service.h"
#include "millom/v1/subscriber.pb-c.h"

#include <stdio.h>
#include <string.h>

/* The spec's NotificationType enum. */
static const char *const notification_types[REGISTER_MAX_TYPES] = {
    "low-data",        "out-of-data",  "pay-as-you-go",    "pack-near-consumption",
    "pack-consumed",   "pack-expired", "pack-near-expiry", "low-monetary-balance",
    "monetary-reload",
};

static int known_type(const char *s) {
    for (size_t i = 0; i < REGISTER_MAX_TYPES; i++)
        if (strcmp(notification_types[i], s) == 0) return 1;
    return 0;
}

int register_body_parse(const char *body, size_t len, register_body *out, char *msg,
                        size_t msglen) {
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;
    if (!j) {
        snprintf(msg, msglen, "body is not valid JSON: %s", jerr.text);
        return -1;
    }
    if (!json_is_object(j)) {
        snprintf(msg, msglen, "body must be a JSON object");
        goto out;
    }
    const char *tid = json_string_value(json_object_get(j, "transactionId"));
    size_t tlen = tid ? strlen(tid) : 0;
    int printable = tlen > 0;
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)tid[i] < 0x20 || (unsigned char)tid[i] == 0x7f) printable = 0;
    if (!printable || tlen >= sizeof out->transaction_id) {
        snprintf(msg, msglen, "transactionId must be a string of 1 to %zu characters",
                 sizeof out->transaction_id - 1);
        goto out;
    }
    memcpy(out->transaction_id, tid, tlen + 1);
    json_t *types = json_object_get(j, "types");
    if (!json_is_array(types)) {
        snprintf(msg, msglen, "types must be an array of NotificationType (empty revokes)");
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(types, i, v) {
        const char *t = json_string_value(v);
        if (!t || !known_type(t)) {
            snprintf(msg, msglen, "types[%zu] is not a NotificationType", i);
            goto out;
        }
        size_t k;
        for (k = 0; k < out->n_types; k++)
            if (strcmp(out->types[k], t) == 0) break;
        if (k == out->n_types) snprintf(out->types[out->n_types++], sizeof out->types[0], "%s", t);
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

void routes_register(api_edge *e, http_request *req, const edge_match *m) {
    std_path sp;
    edge_std_path(m, &sp);
    const std_path *path = &sp;
    std_inputs in = {
        .key_type = http_query(req, "key_type"),
        .accept_language = http_header(req, "language"),
    };
    std_request r;
    char msg[256];
    const char *cause = std_validate(edge_tenants(m), cpid_config_default(), now_ms(), path, &in,
                                     &r, msg, sizeof msg);
    if (cause) {
        http_respond_error(req, cause, "%s", msg);
        return;
    }
    if (r.key_type != MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN) {
        /* OPET: consent is per subscriber; an operator token names none we
         * could notify later. */
        http_respond_error(req, CAUSE_BAD_REQUEST, "register takes an MSISDN or a CPID");
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    register_body b;
    if (register_body_parse(body, len, &b, msg, sizeof msg) != 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "%s", msg);
        return;
    }
    char *types[REGISTER_MAX_TYPES];
    for (size_t i = 0; i < b.n_types; i++) types[i] = b.types[i];

    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)r.op->id;
    sub.key_type = r.key_type;
    sub.subscriber_id = r.subscriber;
    Millom__V1__ConsentChange c = MILLOM__V1__CONSENT_CHANGE__INIT;
    c.meta = &meta;
    c.service_provider = (char *)r.provider->id;
    c.subscriber = &sub;
    c.transaction_id = b.transaction_id;
    c.n_types = b.n_types;
    c.types = types;
    c.language = r.language;
    c.occurred_at_ms = now_ms();
    edge_send_request(e, req, TOPIC_CONSENTS, r.subscriber, e->query_deadline_ms,
                      &edge_consent_codec, &c, &meta, edge_relay_reply, req);
}
