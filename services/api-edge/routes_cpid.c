/* The CPID API (cpid/cpid-retrieval.yaml):
 *
 *   GET /cpid?app={serviceProvider}
 *     Header enrichment: the operator's packet network adds the MSISDN in a
 *     trusted header (operator field "msisdnHeader", default X-MSISDN). The
 *     header is believed only from the operator's client IP ranges
 *     (operator field "cpidClientCidrs"); the caller's IP picks the
 *     operator. Then offer-resolver is asked for the subscriber's balance
 *     (cached like any balance read), so an unknown or barred subscriber
 *     gets no CPID. Answers {cpid, ttlSeconds}. Errors use this spec's
 *     own causes in an ErrorDocument:
 *       400 BAD_REQUEST           app missing/unknown, header missing/malformed
 *       403 FORBIDDEN             caller not in any operator's IP ranges
 *       404 UNSUPPORTED_OPERATOR  the number is not the network's operator's,
 *                                 or the app has no agreement with it
 *       404 UNKNOWN_SUBSCRIBER_ID backend does not know the subscriber
 *       403 USER_BARRED           backend refuses the subscriber
 *       503 SERVICE_UNAVAILABLE   backend or Kafka trouble (Retry-After)
 *
 *   POST /{serviceProvider}/{operator}/registerCpid?app={serviceProvider}
 *     Body {"cpid": "..."} (or query parameter cpid; the spec leaves the
 *     carrier of the CPID open): registers that CPID as the subscriber's
 *     current one for the provider, so notifier can name the subscriber by
 *     it. The CPID is checked exactly as on /std (410 BAD_CPID, 403
 *     NOT_ALLOWED for another provider's). notifier stores it and answers
 *     200 with no body. */
#include "edge.h"
#include "shared/plumbing/topics.h"
#include "request_std.h"
#include "shared/contracts/cpid.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/contracts/msisdn.h"
#include "shared/plumbing/service.h"
#include "millom/v1/query.pb-c.h"
#include "millom/v1/subscriber.pb-c.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Errors of the CPID spec (its causes are not all in errors.h). */
static void cpid_error(http_request *req, int status, const char *cause, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void cpid_error(http_request *req, int status, const char *cause, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_respond_json(req, status, error_document(cause, msg));
}

/* Parses "addr[/bits]" into 16 bytes (IPv4 as ::ffff:a.b.c.d) and a prefix
 * length over those 128 bits. */
static int parse_addr(const char *text, unsigned char out[16], int *bits) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", text);
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        prefix = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || prefix < 0) return -1;
    }
    struct in_addr v4;
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        if (prefix > 32) return -1;
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        *bits = prefix < 0 ? 128 : 96 + (int)prefix;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        if (prefix > 128) return -1;
        *bits = prefix < 0 ? 128 : (int)prefix;
        return 0;
    }
    return -1;
}

int edge_ip_in_cidr(const char *ip, const char *cidr) {
    unsigned char a[16], net[16];
    int abits, nbits;
    if (!ip || !cidr || parse_addr(ip, a, &abits) != 0 || abits != 128 ||
        parse_addr(cidr, net, &nbits) != 0)
        return 0;
    for (int i = 0; i < 16 && nbits > 0; i++, nbits -= 8) {
        unsigned char mask = nbits >= 8 ? 0xff : (unsigned char)(0xff << (8 - nbits));
        if ((a[i] & mask) != (net[i] & mask)) return 0;
    }
    return 1;
}

const tenant_operator *edge_cpid_operator_for_ip(const tenants *t, const char *ip) {
    for (size_t i = 0; i < tenants_operator_count(t); i++) {
        const tenant_operator *op = tenants_operator_at(t, i);
        json_t *cidrs = json_object_get(op->json, "cpidClientCidrs");
        size_t k;
        json_t *c;
        json_array_foreach(cidrs, k, c) {
            if (edge_ip_in_cidr(ip, json_string_value(c))) return op;
        }
    }
    return NULL;
}

const char *edge_msisdn_header(const tenant_operator *op) {
    const char *h = json_string_value(json_object_get(op->json, "msisdnHeader"));
    return h && *h ? h : "X-MSISDN";
}

typedef struct {
    http_request *req;
    char msisdn[16];
    char provider[65];
    char mccmnc[8];
} cpid_wait;

/* The cause of an ErrorDocument reply body ("" if none). */
static void reply_cause(const Millom__V1__Reply *reply, char *out, size_t outlen) {
    out[0] = '\0';
    json_t *j = json_loadb((const char *)reply->body.data, reply->body.len, 0, NULL);
    const char *c = json_string_value(json_object_get(j, "cause"));
    if (c) snprintf(out, outlen, "%s", c);
    json_decref(j);
}

static void on_subscriber_checked(void *arg, const Millom__V1__Reply *reply) {
    cpid_wait *w = arg;
    if (!reply || reply->http_status >= 500) {
        edge_relay_reply(w->req, reply); /* 503 with Retry-After */
        return;
    }
    char cause[64];
    reply_cause(reply, cause, sizeof cause);
    if (reply->http_status == 404) {
        cpid_error(w->req, 404, "UNKNOWN_SUBSCRIBER_ID", "unknown subscriber");
        return;
    }
    /* 200, or 403 USER_ROAMING: a subscriber in good standing. */
    if (reply->http_status != 200 && strcmp(cause, CAUSE_USER_ROAMING) != 0) {
        if (reply->http_status == 403)
            cpid_error(w->req, 403, "USER_BARRED", "the subscriber may not use this service");
        else
            cpid_error(w->req, 500, "INTERNAL_ERROR", "unexpected answer %d (%s)",
                       reply->http_status, cause);
        return;
    }
    const cpid_config *c = cpid_config_default();
    char cpid[CPID_MAX_LEN];
    if (cpid_issue(c, w->msisdn, w->provider, w->mccmnc, now_ms(), cpid, sizeof cpid) != 0) {
        cpid_error(w->req, 500, "INTERNAL_ERROR", "could not issue a CPID");
        return;
    }
    http_respond_json(w->req, 200,
                      json_pack("{s:s, s:I}", "cpid", cpid, "ttlSeconds", (json_int_t)c->ttl_s));
}

void routes_cpid_get(api_edge *e, http_request *req, const edge_match *m) {
    (void)m;
    const char *app = http_query(req, "app");
    if (!app || !*app) {
        cpid_error(req, 400, CAUSE_BAD_REQUEST, "query parameter app is required");
        return;
    }
    const tenant_provider *sp = tenants_provider(edge_tenants(m), app);
    if (!sp) {
        cpid_error(req, 400, CAUSE_BAD_REQUEST, "app '%.64s' is not provisioned", app);
        return;
    }
    const char *ip = http_client_ip(req);
    const tenant_operator *op = edge_cpid_operator_for_ip(edge_tenants(m), ip);
    if (!op) {
        cpid_error(req, 403, "FORBIDDEN", "client is not in a supported operator network");
        return;
    }
    const char *header = http_header(req, edge_msisdn_header(op));
    char msisdn[16];
    if (!header || !msisdn_normalize(header, msisdn, sizeof msisdn)) {
        cpid_error(req, 400, CAUSE_BAD_REQUEST, "Unable to read incoming MSISDN");
        return;
    }
    if (strncmp(msisdn, op->country_code, strlen(op->country_code)) != 0 ||
        !tenants_provider_uses(sp, op->id)) {
        cpid_error(req, 404, "UNSUPPORTED_OPERATOR", "the subscriber's operator is not supported");
        return;
    }
    cpid_wait *w = calloc(1, sizeof *w);
    if (!w) {
        cpid_error(req, 500, "INTERNAL_ERROR", "out of memory");
        return;
    }
    w->req = req;
    snprintf(w->msisdn, sizeof w->msisdn, "%s", msisdn);
    snprintf(w->provider, sizeof w->provider, "%s", sp->id);
    snprintf(w->mccmnc, sizeof w->mccmnc, "%s", op->mccmnc);
    http_set_user(req, w, free);

    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)op->id;
    sub.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    sub.subscriber_id = w->msisdn;
    Millom__V1__Query q = MILLOM__V1__QUERY__INIT;
    q.meta = &meta;
    q.kind = MILLOM__V1__QUERY_KIND__QUERY_KIND_BALANCE;
    q.service_provider = (char *)sp->id;
    q.subscriber = &sub;
    q.language = (char *)op->default_language;
    edge_send_request(e, req, TOPIC_QUERIES, w->msisdn, e->query_deadline_ms, &edge_query_codec, &q,
                      &meta, on_subscriber_checked, w);
}

void routes_cpid_register(api_edge *e, http_request *req, const edge_match *m) {
    std_path path = {.action = STD_REGISTER};
    memcpy(path.provider, m->params.provider, sizeof path.provider);
    memcpy(path.op, m->params.op, sizeof path.op);
    const char *app = http_query(req, "app");
    if (!app || strcmp(app, path.provider) != 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST,
                           "query parameter app is required and must be the serviceProvider");
        return;
    }
    const char *cpid = http_query(req, "cpid");
    size_t len;
    const char *body = http_body(req, &len);
    json_t *j = NULL;
    if (!cpid && len > 0) {
        j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        cpid = json_string_value(json_object_get(j, "cpid"));
    }
    if (!cpid || !*cpid || strlen(cpid) >= sizeof path.subscriber) {
        json_decref(j);
        http_respond_error(req, CAUSE_BAD_REQUEST,
                           "cpid (a JSON body {\"cpid\": ...} or query parameter) is required");
        return;
    }
    snprintf(path.subscriber, sizeof path.subscriber, "%s", cpid);
    json_decref(j);

    const cpid_config *c = cpid_config_default();
    int64_t now = now_ms();
    std_inputs in = {.key_type = "CPID"};
    std_request r;
    char msg[256];
    const char *cause = std_validate(edge_tenants(m), c, now, &path, &in, &r, msg, sizeof msg);
    if (cause) {
        http_respond_error(req, cause, "%s", msg);
        return;
    }
    cpid_info info;
    cpid_decode(c, path.subscriber, now, &info);

    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)r.op->id;
    sub.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    sub.subscriber_id = r.subscriber;
    Millom__V1__CpidRegistration reg = MILLOM__V1__CPID_REGISTRATION__INIT;
    reg.meta = &meta;
    reg.service_provider = (char *)r.provider->id;
    reg.subscriber = &sub;
    reg.cpid = path.subscriber;
    reg.expires_at_ms = info.expires_ms;
    reg.occurred_at_ms = now;
    edge_send_request(e, req, TOPIC_CPID_REGISTRATIONS, r.subscriber, e->query_deadline_ms,
                      &edge_cpid_registration_codec, &reg, &meta, edge_relay_reply, req);
}
