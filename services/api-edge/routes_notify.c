/* POST /notify/{operator}/v1/single?idValue&idType[&override]
 * (millom-notify.yaml): an operator reports a subscriber event. The query
 * and the NotifyRequest body are validated here field by field (400 with
 * the field named); the subscriber is resolved to an MSISDN (a CPID is
 * decoded; an undecodable, expired or foreign-operator CPID, or an OPET
 * the flow cannot use, is 409 with the spec's ErrorResponse); a number not
 * of this operator is 404. The event goes to millom.subscriber.events
 * (key: MSISDN) as a SubscriberEvent with RequestMeta, and notifier's
 * verdict (202, 403 NO_CONSENT, 404, 409, 429 QUOTA_EXCEEDED) is relayed.
 * The check of one notification (notify_item_check) and its event
 * (notify_item_event) serve the bulk endpoint too (routes_notify_bulk.c). */
#include "edge.h"
#include "shared/plumbing/topics.h"
#include "shared/contracts/cpid.h"
#include "shared/plumbing/errors.h"
#include "shared/contracts/msisdn.h"
#include "shared/plumbing/service.h"
#include "millom/v1/subscriber.pb-c.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const notification_types[] = {
    "low-data",        "out-of-data",  "pay-as-you-go",    "pack-near-consumption",
    "pack-consumed",   "pack-expired", "pack-near-expiry", "low-monetary-balance",
    "monetary-reload", NULL,
};
static const char *const subscription_types[] = {"prepaid", "postpaid", NULL};
static const char *const over_usage_policies[] = {"throttled", "pay-as-you-go", "blocked", NULL};

static int in_list(const char *const *list, const char *s) {
    for (; s && *list; list++)
        if (strcmp(*list, s) == 0) return 1;
    return 0;
}

/* The spec's ErrorResponse {errorType, description}. */
static void respond_notify_error(http_request *req, int status, const char *type,
                                 const char *description) {
    http_respond_json(req, status,
                      json_pack("{s:s, s:s}", "errorType", type, "description", description));
}

/* A number as the spec's `type: number`, also accepted as a decimal string
 * (the spec's own examples quote them). */
static int numeric(const json_t *v) {
    if (json_is_number(v)) return 1;
    const char *s = json_string_value(v);
    if (!s || !*s) return 0;
    char *end;
    strtod(s, &end);
    return *end == '\0';
}

/* RFC 3339 date-time to epoch ms; -1 if not one. */
int64_t notify_parse_time(const char *s) {
    struct tm tm = {0};
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n != 19)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    const char *p = s + n;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3) frac = frac * 10 + (*p - '0');
        if (digits == 0) return -1;
        for (; digits < 3; digits++) frac *= 10;
    }
    long offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5) return -1;
        offset_s = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    return ((int64_t)t - offset_s) * 1000 + frac;
}

#define BAD(...)                            \
    do {                                    \
        snprintf(msg, msglen, __VA_ARGS__); \
        goto out;                           \
    } while (0)

static int multilingual(const json_t *arr, const char *text_field) {
    if (!json_is_array(arr)) return 0;
    size_t i;
    const json_t *m;
    json_array_foreach(arr, i, m) {
        if (!json_is_object(m)) return 0;
        json_t *l = json_object_get(m, "language"), *t = json_object_get(m, text_field);
        if ((l && !json_is_string(l)) || (t && !json_is_string(t))) return 0;
    }
    return 1;
}

int notify_body_parse(const char *body, size_t len, notify_body *out, char *msg, size_t msglen) {
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        snprintf(msg, msglen, "body is not valid JSON: %s", jerr.text);
        return -1;
    }
    int rc = notify_body_check(j, out, msg, msglen);
    json_decref(j);
    return rc;
}

int notify_body_check(const json_t *j, notify_body *out, char *msg, size_t msglen) {
    memset(out, 0, sizeof *out);
    int rc = -1;
    if (!json_is_object(j)) BAD("body must be a JSON object");
    const char *tid = json_string_value(json_object_get(j, "transactionId"));
    size_t tlen = tid ? strlen(tid) : 0;
    int printable = tlen >= 3 && tlen <= 128;
    for (size_t i = 0; printable && i < tlen; i++)
        if ((unsigned char)tid[i] < 0x20 || (unsigned char)tid[i] == 0x7f) printable = 0;
    if (!printable) BAD("transactionId must be a string of 3 to 128 characters");
    memcpy(out->transaction_id, tid, tlen + 1);
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!in_list(notification_types, type)) BAD("type must be a NotificationType");
    snprintf(out->type, sizeof out->type, "%s", type);
    json_t *v = json_object_get(j, "messages");
    if (v && !multilingual(v, "message"))
        BAD("messages must be an array of {language, message} strings");
    if (v && json_array_size(v) > 0) {
        const char *l = json_string_value(json_object_get(json_array_get(v, 0), "language"));
        if (l) snprintf(out->language, sizeof out->language, "%.15s", l);
    }
    out->expiry_ms = 0;
    v = json_object_get(j, "planDetails");
    if (v) {
        if (!json_is_object(v)) BAD("planDetails must be an object");
        const char *plan = json_string_value(json_object_get(v, "planId"));
        if (!plan || !*plan || strlen(plan) >= sizeof out->plan_id)
            BAD("planDetails.planId must be a string of 1 to %zu characters",
                sizeof out->plan_id - 1);
        snprintf(out->plan_id, sizeof out->plan_id, "%s", plan);
        json_t *n = json_object_get(v, "balance");
        if (n && !numeric(n)) BAD("planDetails.balance must be a number");
        n = json_object_get(v, "quota");
        if (n && !numeric(n)) BAD("planDetails.quota must be a number");
        n = json_object_get(v, "planName");
        if (n && !multilingual(n, "name"))
            BAD("planDetails.planName must be an array of {language, name} strings");
        n = json_object_get(v, "expiry");
        if (n) {
            out->expiry_ms = notify_parse_time(json_string_value(n));
            if (out->expiry_ms < 0) BAD("planDetails.expiry must be an RFC 3339 date-time");
        }
    }
    v = json_object_get(j, "subscriptionType");
    if (v && !in_list(subscription_types, json_string_value(v)))
        BAD("subscriptionType must be one of prepaid, postpaid");
    v = json_object_get(j, "overUsagePolicy");
    if (v && !in_list(over_usage_policies, json_string_value(v)))
        BAD("overUsagePolicy must be one of throttled, pay-as-you-go, blocked");
    v = json_object_get(j, "monetaryBalance");
    if (v) {
        if (!json_is_object(v)) BAD("monetaryBalance must be an object");
        json_t *n = json_object_get(v, "totalBalance");
        if (n && !numeric(n)) BAD("monetaryBalance.totalBalance must be a number");
        n = json_object_get(v, "deltaBalance");
        if (n && !numeric(n)) BAD("monetaryBalance.deltaBalance must be a number");
        n = json_object_get(v, "currency");
        if (n && !json_is_string(n)) BAD("monetaryBalance.currency must be a string");
        n = json_object_get(v, "currencyCode");
        if (n && !json_is_string(n)) BAD("monetaryBalance.currencyCode must be a string");
    }
    rc = 0;
out:
    return rc;
}

int notify_type_known(const char *type) { return in_list(notification_types, type); }

/* Fills why; -1. */
static int refuse(notify_refusal *why, int status, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(notify_refusal *why, int status, const char *error_type, const char *fmt, ...) {
    why->status = status;
    why->error_type = error_type;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof why->message, fmt, ap);
    va_end(ap);
    return -1;
}

int notify_item_check(const tenant_operator *op, const char *id_value, const char *id_type,
                      const char *override, const json_t *body, notify_item *out,
                      notify_refusal *why) {
    memset(out, 0, sizeof *out);
    if (!id_value || !*id_value) return refuse(why, 400, NULL, "idValue is required");
    if (!id_type ||
        (strcmp(id_type, "MSISDN") && strcmp(id_type, "CPID") && strcmp(id_type, "OPET")))
        return refuse(why, 400, NULL, "idType must be one of MSISDN, CPID, OPET");
    if (override) {
        if (strcmp(override, "true") == 0)
            out->skip_quota = 1;
        else if (strcmp(override, "false") != 0)
            return refuse(why, 400, NULL, "override must be true or false");
    }
    char msg[256];
    if (notify_body_check(body, &out->body, msg, sizeof msg) != 0)
        return refuse(why, 400, NULL, "%s", msg);
    if (strcmp(id_type, "OPET") == 0)
        return refuse(why, 409, "NO_CPID",
                      "this flow does not support idType OPET; use MSISDN or CPID");
    if (strcmp(id_type, "CPID") == 0) {
        cpid_info info;
        cpid_status st = cpid_decode(cpid_config_default(), id_value, now_ms(), &info);
        if (st != CPID_OK) return refuse(why, 409, "NO_CPID", "idValue: %s", cpid_status_text(st));
        if (strcmp(info.mccmnc, op->mccmnc) != 0 ||
            strncmp(info.msisdn, op->country_code, strlen(op->country_code)) != 0)
            return refuse(why, 409, "NO_CPID", "idValue: the CPID is not one of operator '%s'",
                          op->id);
        snprintf(out->msisdn, sizeof out->msisdn, "%s", info.msisdn);
        return 0;
    }
    if (!msisdn_normalize(id_value, out->msisdn, sizeof out->msisdn))
        return refuse(why, 400, NULL, "idValue is not an E.164 MSISDN");
    if (strncmp(out->msisdn, op->country_code, strlen(op->country_code)) != 0)
        return refuse(why, 404, "NO_CPID", "idValue is not a number of operator '%s'", op->id);
    return 0;
}

void notify_item_event(const tenant_operator *op, notify_item *it, notify_event *out) {
    out->meta = (Millom__V1__RequestMeta)MILLOM__V1__REQUEST_META__INIT;
    out->sub = (Millom__V1__SubscriberRef)MILLOM__V1__SUBSCRIBER_REF__INIT;
    out->sub.operator_ = (char *)op->id;
    out->sub.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    out->sub.subscriber_id = it->msisdn;
    Millom__V1__SubscriberEvent *ev = &out->ev;
    *ev = (Millom__V1__SubscriberEvent)MILLOM__V1__SUBSCRIBER_EVENT__INIT;
    ev->meta = &out->meta;
    ev->operator_ = (char *)op->id;
    ev->subscriber = &out->sub;
    ev->type = it->body.type;
    ev->transaction_id = it->body.transaction_id;
    ev->override = it->skip_quota;
    ev->plan_id = it->body.plan_id;
    ev->expiry_time_ms = it->body.expiry_ms;
    ev->occurred_at_ms = now_ms();
    ev->language = it->body.language;
}

void routes_notify(api_edge *e, http_request *req, const edge_match *m) {
    const tenant_operator *op = tenants_operator(edge_tenants(m), m->params.op);
    if (!op) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "unknown operator '%s'", m->params.op);
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    notify_item it;
    notify_refusal why;
    int rc = -1;
    if (!j)
        refuse(&why, 400, NULL, "body is not valid JSON: %s", jerr.text);
    else
        rc = notify_item_check(op, http_query(req, "idValue"), http_query(req, "idType"),
                               http_query(req, "override"), j, &it, &why);
    json_decref(j);
    if (rc != 0) {
        if (why.error_type)
            respond_notify_error(req, why.status, why.error_type, why.message);
        else
            http_respond_error(req, CAUSE_BAD_REQUEST, "%s", why.message);
        return;
    }
    notify_event ne;
    notify_item_event(op, &it, &ne);
    edge_send_request(e, req, TOPIC_SUBSCRIBER_EVENTS, it.msisdn, e->query_deadline_ms,
                      &edge_subscriber_event_codec, &ne.ev, &ne.meta, edge_relay_reply, req);
}
