/* The rich-notification links (rich-notification-api.yaml), answered on
 * api-edge without an OAuth token: the signed link is the credential
 * (shared/contracts/signed_link.h).
 *
 *   GET /rnf/{serviceProvider}/{operator}/{cpid}/offers        RefreshableOffers: the
 *        upsellOffer JSON with fresh refresh, ping and shop links and a
 *        purchaseLink on each offer (shared/contracts/rnf_links.h)
 *   GET /rnf/{serviceProvider}/{operator}/{cpid}/ping          {"status":"ok"}
 *   GET /rnf/{serviceProvider}/{operator}/{cpid}/purchasePlan  ?planId&transactionId[&fundSource]
 *   POST the same purchasePlan path, the shop's form: the same fields
 *        (and uuid, expirySeconds, signature) as
 *        application/x-www-form-urlencoded, nothing in the query
 *   GET /rnf/{serviceProvider}/{operator}/{cpid}/shop          an HTML page of the offers
 *   GET /rnf/{serviceProvider}/{operator}/{cpid}/unsubscribe   ?type=<NotificationType>: the
 *        subscriber's opt-out of that type from that provider (a ConsentChange
 *        with opt_out_type to notifier), answered with a small HTML page
 *
 * A tampered, malformed or expired link is 401 UNAUTHORIZED. Past the
 * link, the CPID is checked like the standard API's key_type=CPID (of
 * another provider: 403 NOT_ALLOWED; bad or expired: 410 BAD_CPID) and
 * the request takes the standard API's code path (routes_std.c,
 * routes_purchase.c; purchases on channel "rnf").
 *
 * The shop renders offer-resolver's upsellOffer answer as HTML in the
 * reply callback: no JavaScript, one <form method="post"> per offer whose
 * hidden fields are a signed purchasePlan link's parameters (lifetime
 * MILLOM_LINK_PURCHASE_TTL_S, a fresh transactionId each time the page is
 * rendered, so reloading the page never buys twice by accident and a
 * double tap on one button is the same transaction). The signed,
 * short-lived, single-transaction fields are the credential, not a
 * cookie: a cross-site form cannot forge them, so the POST is no CSRF
 * door; it must be Content-Type application/x-www-form-urlencoded (415).
 *
 * Limits (rnf_limits.h, per api-edge instance): requests per link and per
 * subscriber (429 with Retry-After), new purchases per subscriber per
 * hour (429), and a longest lifetime for links that can buy (shop and
 * purchasePlan links living longer are 401). Every answer under /rnf/
 * carries edge_rnf_headers: no framing, a CSP that allows only the page's
 * inline style and forms to this origin, no sniffing, no referrer, no
 * caching. */
#include "edge.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/topics.h"
#include "shared/contracts/fund_source.h"
#include "shared/contracts/rnf_links.h"
#include "shared/contracts/signed_link.h"
#include "shared/plumbing/crypto.h"
#include "shared/plumbing/http_form.h"
#include "auth.h"
#include "rnf_limits.h"

#include <inttypes.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIFETIME_SKEW_S 30

const char *const edge_rnf_headers[] = {
    "X-Frame-Options",
    "DENY",
    "Content-Security-Policy",
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options",
    "nosniff",
    "Referrer-Policy",
    "no-referrer",
    "Cache-Control",
    "no-store",
    NULL,
};

typedef struct {
    char provider[65];
    char op[33];
    char cpid[CPID_MAX_LEN + 1];
    rnf_action action;
} rnf_path;

/* The row's parameters and action. */
static void rnf_path_of(const edge_match *m, rnf_path *out) {
    memset(out, 0, sizeof *out);
    memcpy(out->provider, m->params.provider, sizeof out->provider);
    memcpy(out->op, m->params.op, sizeof out->op);
    memcpy(out->cpid, m->params.cpid, sizeof out->cpid);
    out->action = (rnf_action)m->route->action;
}

static const char *query_of(void *ctx, const char *name) { return http_query(ctx, name); }

static const char *const PURCHASE_PARAMS[] = {"planId", "transactionId", "fundSource", NULL};
static const char *const UNSUBSCRIBE_PARAMS[] = {"type", NULL};

/* The shop's form POST: its fields read with http_form_get (shared/plumbing/http_form.h). A
 * field given twice makes the form bad (400). */
static const char *const FORM_FIELDS[] = {"planId", "transactionId", "fundSource",
                                          "uuid",   "expirySeconds", "signature"};
#define N_FORM_FIELDS (sizeof FORM_FIELDS / sizeof FORM_FIELDS[0])

typedef struct {
    const char *body;
    size_t len;
    char values[N_FORM_FIELDS][257];
    int bad;
} form_fields;

static const char *form_of(void *ctx, const char *name) {
    form_fields *f = ctx;
    for (size_t i = 0; i < N_FORM_FIELDS; i++) {
        if (strcmp(name, FORM_FIELDS[i]) != 0) continue;
        int rc = http_form_get(f->body, f->len, name, f->values[i], sizeof f->values[i]);
        if (rc < 0) f->bad = 1;
        return rc == 1 ? f->values[i] : NULL;
    }
    return NULL;
}

static int is_form(const char *content_type) {
    static const char form[] = "application/x-www-form-urlencoded";
    if (!content_type || strncasecmp(content_type, form, sizeof form - 1) != 0) return 0;
    char next = content_type[sizeof form - 1];
    return next == '\0' || next == ';' || next == ' ';
}

/* 429 TOO_MANY_REQUESTS (errors.h's ErrorDocument) with its own Retry-After. */
static void respond_limited(http_request *req, int retry_s, const char *msg) {
    char *text = error_document_text(CAUSE_TOO_MANY_REQUESTS, msg);
    char retry[16];
    snprintf(retry, sizeof retry, "%d", retry_s);
    http_respond_with_header(req, error_status(CAUSE_TOO_MANY_REQUESTS), "application/json",
                             text ? text : "{}", text ? strlen(text) : 2, "Retry-After", retry);
    free(text);
}

/* "provider|operator|subscriber": the key of a subscriber's limits. */
static void subscriber_key(const rnf_path *p, const std_request *r, char *out, size_t outlen) {
    snprintf(out, outlen, "%s|%s|%s", p->provider, p->op, r->subscriber);
}

/* Checks the CPID and the provider like key_type=CPID on the standard API.
 * 0 with r filled, or -1 after answering. */
static int validate_cpid(const tenants *t, http_request *req, const rnf_path *p, std_action action,
                         std_request *r) {
    std_path sp;
    memset(&sp, 0, sizeof sp);
    memcpy(sp.provider, p->provider, sizeof sp.provider);
    memcpy(sp.op, p->op, sizeof sp.op);
    snprintf(sp.subscriber, sizeof sp.subscriber, "%s", p->cpid);
    sp.action = action;
    std_inputs in = {
        .key_type = "CPID",
        .accept_language = http_header(req, "Accept-Language"),
    };
    char msg[256];
    const char *cause =
        std_validate(t, cpid_config_default(), now_ms(), &sp, &in, r, msg, sizeof msg);
    if (cause) {
        http_respond_error(req, cause, "%s", msg);
        return -1;
    }
    return 0;
}

/* validate_cpid, then the subscriber's request rate. */
static int validate(const tenants *t, http_request *req, const rnf_path *p, std_action action,
                    std_request *r) {
    if (validate_cpid(t, req, p, action, r) != 0) return -1;
    char key[512];
    subscriber_key(p, r, key, sizeof key);
    int retry = rnf_limit_subscriber(key, now_ms());
    if (retry) {
        respond_limited(req, retry, "too many requests for this subscriber's links; retry later");
        return -1;
    }
    return 0;
}

/* ---- the answers to offers and shop ---- */

/* What the reply callback of offers and shop needs of the request. */
typedef struct {
    http_request *req;
    rnf_path path;
} offers_wait;

/* GET offers: offer-resolver's upsellOffer answer as a RefreshableOffers,
 * with links as fresh as those of a new notification. */
static void on_offers_reply(void *arg, const Millom__V1__Reply *reply) {
    offers_wait *w = arg;
    http_request *req = w->req;
    if (!reply || reply->http_status != 200) {
        edge_relay_reply(req, reply); /* 503 past the deadline, or the error as is */
        return;
    }
    json_t *answer = json_loadb((const char *)reply->body.data, reply->body.len, 0, NULL);
    const rnf_settings *s = rnf_limits_settings();
    rnf_link_settings links = {
        .base_url = s->public_url,
        .link_ttl_s = s->link_ttl_s,
        .shop_ttl_s = s->shop_ttl_s,
        .purchase_ttl_s = s->purchase_ttl_s,
    };
    if (!json_is_object(answer) ||
        rnf_links_add(answer, &links, w->path.provider, w->path.op, w->path.cpid, now_ms()) != 0) {
        json_decref(answer);
        log_warn("rnf offers: cannot sign the links");
        http_respond_error(req, CAUSE_UNSPECIFIED, "cannot sign the links");
        return;
    }
    http_respond_json(req, 200, answer); /* edge_rnf_headers too */
}

void edge_html_text(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* The first text of a [{language, text}] list. */
static const char *first_text(const json_t *list) {
    return json_string_value(json_object_get(json_array_get(list, 0), "text"));
}

static void quota_text(FILE *f, const json_t *quotas) {
    size_t i;
    json_t *q;
    int any = 0;
    json_array_foreach(quotas, i, q) {
        const char *unit = json_string_value(json_object_get(q, "unit"));
        json_int_t v = json_integer_value(json_object_get(q, "quota"));
        if (any) fputs(" + ", f);
        any = 1;
        if (unit && strcmp(unit, "bytes") == 0) {
            /* binary units, as operators count them: 3000 MB, 1 GB */
            const json_int_t mib = 1024 * 1024, gib = 1024 * mib;
            if (v >= gib && v % gib == 0)
                fprintf(f, "%" JSON_INTEGER_FORMAT " GB", v / gib);
            else if (v >= mib)
                fprintf(f, "%.0f MB", (double)v / (double)mib);
            else
                fprintf(f, "%.0f KB", (double)v / 1024.0);
        } else {
            fprintf(f, "%" JSON_INTEGER_FORMAT " ", v);
            edge_html_text(f, unit ? unit : "");
        }
    }
    if (!any) fputs("&ndash;", f);
}

static const char SHOP_HEAD[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Offers</title><style>"
    "body{font-family:system-ui,sans-serif;font-size:18px;line-height:1.4;margin:0;"
    "padding:16px;background:#f4f5f7;color:#111}"
    "h1{font-size:24px;margin:0 0 16px}"
    ".offer{background:#fff;border-radius:12px;padding:16px;margin:0 0 16px;"
    "box-shadow:0 1px 3px rgba(0,0,0,.15)}"
    ".name{font-size:20px;font-weight:600;margin:0 0 4px}"
    ".quota{color:#444}.price{font-size:22px;font-weight:700;margin:8px 0}"
    "form{margin:0}"
    "button.buy{display:block;width:100%;text-align:center;padding:16px;border:0;"
    "border-radius:10px;background:#0a58ca;color:#fff;font:inherit;font-size:20px;"
    "font-weight:600;cursor:pointer}"
    "</style></head><body>\n";

/* The page for an upsellOffer answer; NULL on failure. Caller frees. */
static char *render_shop(const rnf_path *p, const json_t *answer, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) return NULL;
    fputs(SHOP_HEAD, f);
    fputs("<h1>Offers</h1>\n", f);
    char path[512];
    snprintf(path, sizeof path, "/rnf/%s/%s/%s/purchasePlan", p->provider, p->op, p->cpid);
    size_t i;
    json_t *o;
    int n = 0, failed = 0;
    json_array_foreach(json_object_get(answer, "offers"), i, o) {
        const char *plan = json_string_value(json_object_get(o, "planId"));
        if (!plan) continue;
        const char *name = first_text(json_object_get(o, "planName"));
        const char *desc = first_text(json_object_get(o, "planDescription"));
        const char *cost = json_string_value(json_object_get(o, "cost"));
        const char *cur = json_string_value(json_object_get(o, "costCurrency"));
        /* The offer's own fund source is signed into its form (an EWALLET
         * or FREE plan bought with the default WALLET would be refused). */
        const char *fund = json_string_value(json_object_get(o, "fundSource"));
        char uuid[37], tid[48];
        crypto_uuid(uuid);
        snprintf(tid, sizeof tid, "rnf-%s", uuid);
        signed_link_param params[] = {
            {"planId", plan}, {"transactionId", tid}, {"fundSource", fund}};
        signed_link_form form;
        if (signed_link_make_form(path, params, fund ? 3 : 2, rnf_limits_settings()->purchase_ttl_s,
                                  now_ms(), &form) != 0) {
            failed = 1;
            break;
        }
        fputs("<div class=\"offer\"><p class=\"name\">", f);
        edge_html_text(f, name ? name : plan);
        fputs("</p>", f);
        if (desc) {
            fputs("<p>", f);
            edge_html_text(f, desc);
            fputs("</p>", f);
        }
        fputs("<p class=\"quota\">", f);
        quota_text(f, json_object_get(o, "quota"));
        fputs("</p><p class=\"price\">", f);
        edge_html_text(f, cost ? cost : "");
        fputs(" ", f);
        edge_html_text(f, cur ? cur : "");
        fputs("</p><form method=\"post\" action=\"", f);
        edge_html_text(f, form.action);
        fputs("\">", f);
        const char *fields[][2] = {{"planId", plan},
                                   {"transactionId", tid},
                                   {"uuid", form.uuid},
                                   {"expirySeconds", form.expiry},
                                   {"signature", form.signature},
                                   {"fundSource", fund}};
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
            if (!fields[k][1]) continue; /* no fundSource: the default */
            fputs("<input type=\"hidden\" name=\"", f);
            edge_html_text(f, fields[k][0]);
            fputs("\" value=\"", f);
            edge_html_text(f, fields[k][1]);
            fputs("\">", f);
        }
        fputs("<button class=\"buy\" type=\"submit\">Buy ", f);
        edge_html_text(f, name ? name : plan);
        fputs("</button></form></div>\n", f);
        free(form.action);
        n++;
    }
    if (n == 0 && !failed) fputs("<p>No offers right now.</p>\n", f);
    fputs("</body></html>\n", f);
    if (fclose(f) != 0 || failed) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void on_shop_reply(void *arg, const Millom__V1__Reply *reply) {
    offers_wait *w = arg;
    http_request *req = w->req;
    if (!reply || reply->http_status != 200) {
        edge_relay_reply(req, reply); /* 503 past the deadline, or the error as is */
        return;
    }
    json_t *answer = json_loadb((const char *)reply->body.data, reply->body.len, 0, NULL);
    size_t len = 0;
    char *page = answer ? render_shop(&w->path, answer, &len) : NULL;
    json_decref(answer);
    if (!page) {
        log_warn("rnf shop: cannot render the offers");
        http_respond_error(req, CAUSE_UNSPECIFIED, "cannot render the offers");
        return;
    }
    http_respond(req, 200, "text/html; charset=utf-8", page, len); /* edge_rnf_headers too */
    free(page);
}

/* ---- unsubscribe ---- */

static const char UNSUBSCRIBED_PAGE[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Unsubscribed</title><style>body{font-family:system-ui,sans-serif;font-size:18px;"
    "margin:0;padding:16px}</style></head><body>\n<h1>Unsubscribed</h1>\n"
    "<p>You will no longer get these notifications from this service. To get them again, "
    "turn them on in its app.</p>\n</body></html>\n";

/* notifier recorded the opt-out: the page; otherwise its answer as is. */
static void on_unsubscribe_reply(void *arg, const Millom__V1__Reply *reply) {
    http_request *req = arg;
    if (!reply || reply->http_status != 200) {
        edge_relay_reply(req, reply);
        return;
    }
    http_respond(req, 200, "text/html; charset=utf-8", UNSUBSCRIBED_PAGE,
                 sizeof UNSUBSCRIBED_PAGE - 1);
}

static void unsubscribe(api_edge *e, const edge_match *m, http_request *req, const rnf_path *p) {
    std_request r;
    if (validate(edge_tenants(m), req, p, STD_REGISTER, &r) != 0) return;
    const char *type = http_query(req, "type");
    if (!notify_type_known(type)) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "type must be a NotificationType");
        return;
    }
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)r.op->id;
    sub.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    sub.subscriber_id = r.subscriber;
    Millom__V1__ConsentChange c = MILLOM__V1__CONSENT_CHANGE__INIT;
    c.meta = &meta;
    c.service_provider = (char *)r.provider->id;
    c.subscriber = &sub;
    c.transaction_id = "unsubscribe";
    c.opt_out_type = (char *)type;
    c.occurred_at_ms = now_ms();
    edge_send_request(e, req, TOPIC_CONSENTS, r.subscriber, e->query_deadline_ms,
                      &edge_consent_codec, &c, &meta, on_unsubscribe_reply, req);
}

/* ---- the routes ---- */

/* get/ctx read the purchase's parameters: the query of a GET link, the
 * fields of the shop's form POST. */
static void purchase(api_edge *e, const edge_match *m, http_request *req, const rnf_path *p,
                     signed_link_query_fn get, void *ctx) {
    std_request r;
    if (validate(edge_tenants(m), req, p, STD_PURCHASE_PLAN, &r) != 0) return;
    const char *plan = get(ctx, "planId");
    const char *tid = get(ctx, "transactionId");
    const char *fund = get(ctx, "fundSource");
    activation_request a;
    memset(&a, 0, sizeof a);
    if (!plan || !plan[0] || strlen(plan) >= sizeof a.planid) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "planId is required (1 to 128 characters)");
        return;
    }
    if (!tid || !transid_valid(tid)) {
        http_respond_error(req, CAUSE_BAD_REQUEST,
                           "transactionId must have 10 to 128 letters, digits, '-', '.', '_'");
        return;
    }
    a.fund_source = MILLOM__V1__FUND_SOURCE__FUND_SOURCE_WALLET;
    if (fund && fund_source_parse(fund, &a.fund_source) != 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "fundSource must be one of " FUND_SOURCE_NAMES);
        return;
    }
    char key[512];
    subscriber_key(p, &r, key, sizeof key);
    int retry = rnf_purchase_admit(key, tid, now_ms());
    if (retry) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "at most %ld purchases an hour through links for this subscriber; retry later",
                 rnf_limits_settings()->purchases_per_hour);
        respond_limited(req, retry, msg);
        return;
    }
    memcpy(a.planid, plan, strlen(plan) + 1);
    memcpy(a.transid, tid, strlen(tid) + 1);
    routes_purchase_send(e, req, &r, &a, "rnf");
}

/* The longest lifetime a link to this action may have, 0 for no limit
 * (read-only links: offers, ping). */
static long max_lifetime_s(rnf_action a) {
    const rnf_settings *s = rnf_limits_settings();
    if (a == RNF_PURCHASE) return s->purchase_ttl_s;
    if (a == RNF_SHOP) return s->shop_ttl_s;
    return 0;
}

void routes_rnf(api_edge *e, http_request *req, const edge_match *m) {
    /* edge_rnf_headers are set by the router (the row's headers). */
    rnf_path p;
    rnf_path_of(m, &p);
    /* GET everywhere; POST only for the shop's purchase form (the row's methods). */
    int post = strcmp(http_method(req), "POST") == 0;
    form_fields fields, *form = NULL; /* read synchronously, before any reply */
    signed_link_query_fn get = query_of;
    void *ctx = req;
    if (post) {
        if (!is_form(http_header(req, "Content-Type"))) {
            http_respond_error(req, CAUSE_UNSUPPORTED_MEDIA_TYPE,
                               "the body must be Content-Type: application/x-www-form-urlencoded");
            return;
        }
        memset(&fields, 0, sizeof fields);
        form = &fields;
        form->body = http_body(req, &form->len);
        if (memchr(form->body, '\0', form->len)) {
            http_respond_error(req, CAUSE_BAD_REQUEST, "the body contains a NUL byte");
            return;
        }
        get = form_of;
        ctx = form;
    }
    int64_t now = now_ms();
    int rc = signed_link_verify(http_path(req), get, ctx,
                                p.action == RNF_PURCHASE      ? PURCHASE_PARAMS
                                : p.action == RNF_UNSUBSCRIBE ? UNSUBSCRIBE_PARAMS
                                                              : NULL,
                                now);
    if (form && form->bad) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "a form field is given twice or too long");
        return;
    }
    if (rc == SIGNED_LINK_EXPIRED) {
        http_respond_error(req, CAUSE_UNAUTHORIZED, "the link has expired");
        return;
    }
    if (rc != SIGNED_LINK_OK) {
        http_respond_error(req, CAUSE_UNAUTHORIZED,
                           "the link is not valid (uuid, expirySeconds, signature)");
        return;
    }
    /* Authentic: expirySeconds is 1 to 18 digits. A link that can buy may
     * not live longer than its setting, however it was minted (give or
     * take LIFETIME_SKEW_S between the minting and this host's clocks). */
    long max_s = max_lifetime_s(p.action);
    if (max_s &&
        strtoll(get(ctx, "expirySeconds"), NULL, 10) - now / 1000 > max_s + LIFETIME_SKEW_S) {
        http_respond_error(req, CAUSE_UNAUTHORIZED,
                           "the link lives longer than %ld s, the most allowed for it", max_s);
        return;
    }
    int retry = rnf_limit_link(get(ctx, "signature"), now);
    if (retry) {
        respond_limited(req, retry, "too many requests on this link; retry later");
        return;
    }
    switch (p.action) {
    case RNF_PING: http_respond(req, 200, "application/json", "{\"status\":\"ok\"}", 15); return;
    case RNF_PURCHASE: purchase(e, m, req, &p, get, ctx); return;
    case RNF_UNSUBSCRIBE: unsubscribe(e, m, req, &p); return;
    case RNF_OFFERS:
    case RNF_SHOP: {
        std_request r;
        if (validate(edge_tenants(m), req, &p, STD_UPSELL_OFFER, &r) != 0) return;
        offers_wait *w = calloc(1, sizeof *w);
        if (!w) {
            http_respond_error(req, CAUSE_UNSPECIFIED, "out of memory");
            return;
        }
        w->req = req;
        w->path = p;
        http_set_user(req, w, free);
        routes_std_send_query(e, req, &r, p.action == RNF_OFFERS ? on_offers_reply : on_shop_reply,
                              w);
        return;
    }
    }
}
