/* The Top-up API (apis/topup/top-up.yaml; README, "Top-up"):
 *
 *   POST /v1/{serviceProvider}/topup        a provider's webview asks that a
 *        donor top up a requestor: validated here (request_topup.h), the
 *        requestor's operator found from the number, the donor's signed
 *        link minted, and a TopupCommand sent to purchase-executor
 *        (topups.h there), which records it once per partner reference and
 *        has the operator send the donor the link. 202 with the request.
 *   GET  /v1/{serviceProvider}/topup/{id}   its state (an extension).
 *   GET  /topup/{serviceProvider}/{id}?op=&uuid=&expirySeconds=&signature=
 *        the donor's page (no JavaScript), authorized by the signed link:
 *        who asks, and one button per amount (MILLOM_TOPUP_AMOUNTS).
 *   POST /topup/{serviceProvider}/{id}      the page's form: the link's
 *        fields and the amount picked; purchase-executor credits the
 *        requestor at the operator and notifier tells the provider.
 *
 * api-edge keeps nothing: every answer comes from purchase-executor over
 * millom.topup.commands, keyed by the top-up id. */
#include "edge.h"
#include "request_topup.h"
#include "shared/contracts/money.h"
#include "shared/contracts/signed_link.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/http_form.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/topics.h"
#include "rnf_limits.h"
#include "millom/v1/topup.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- settings ---- */

#define TOPUP_MAX_AMOUNTS 8

static struct {
    long link_ttl_s;   /* MILLOM_TOPUP_LINK_TTL_S: how long the donor's link works */
    char amounts[256]; /* MILLOM_TOPUP_AMOUNTS: the page's choices, comma-separated */
} topup_cfg = {86400, "100,250,500"};

void edge_topup_init(void) {
    settings_reader s = SETTINGS_INIT;
    topup_cfg.link_ttl_s = settings_seconds(&s, "MILLOM_TOPUP_LINK_TTL_S", 86400, 60, 30 * 86400);
    const char *amounts = settings_str(&s, "MILLOM_TOPUP_AMOUNTS", "100,250,500");
    snprintf(topup_cfg.amounts, sizeof topup_cfg.amounts, "%s", amounts);
    /* Each a positive decimal amount (at most two decimals), at most 8. */
    char copy[256], *save = NULL;
    snprintf(copy, sizeof copy, "%s", amounts);
    int n = 0;
    for (char *a = strtok_r(copy, ",", &save); a; a = strtok_r(NULL, ",", &save), n++) {
        int64_t minor;
        if (money_parse(a, 2, &minor) != 0 || minor <= 0) {
            settings_fail(&s, "MILLOM_TOPUP_AMOUNTS: '%s' is not a positive amount", a);
            break;
        }
    }
    if (n == 0 || n > TOPUP_MAX_AMOUNTS || strlen(amounts) >= sizeof topup_cfg.amounts)
        settings_fail(&s, "MILLOM_TOPUP_AMOUNTS must list 1 to %d amounts, comma-separated",
                      TOPUP_MAX_AMOUNTS);
    settings_exit_on_error(&s);
}

/* The page's amounts for an operator, in its minor units; how many. */
static int topup_amounts(const tenant_operator *op, int64_t *out) {
    char copy[256], *save = NULL;
    snprintf(copy, sizeof copy, "%s", topup_cfg.amounts);
    int n = 0;
    for (char *a = strtok_r(copy, ",", &save); a && n < TOPUP_MAX_AMOUNTS;
         a = strtok_r(NULL, ",", &save))
        if (money_parse(a, op->currency_scale, &out[n]) == 0 && out[n] > 0) n++;
    return n;
}

/* ---- POST /v1/{serviceProvider}/topup ---- */

typedef struct {
    http_request *req;
    char id[TOPUP_ID_LEN + 1];
    char reference[TOPUP_REFERENCE_MAX + 1];
} request_wait;

static void on_request_reply(void *arg, const Millom__V1__Reply *reply) {
    request_wait *w = arg;
    if (reply) {
        edge_relay_reply(w->req, reply);
        return;
    }
    /* Never dropped (like a purchase): accepted, the state comes later. */
    log_info("topup %s: no answer in time, 202 REQUESTED", w->id);
    http_respond_json(w->req, 202,
                      json_pack("{s:s, s:s, s:s}", "topupId", w->id, "partnerReference",
                                w->reference, "status", "REQUESTED"));
}

/* Sends cmd (its meta filled here) keyed by its top-up id. */
static void send_topup(api_edge *e, http_request *req, Millom__V1__TopupCommand *cmd,
                       int deadline_ms, rpc_reply_fn on_reply, void *arg) {
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    cmd->meta = &meta;
    edge_send_request(e, req, TOPIC_TOPUP_COMMANDS, cmd->topup_id, deadline_ms, &edge_topup_codec,
                      cmd, &meta, on_reply, arg);
}

void routes_topup_request(api_edge *e, http_request *req, const edge_match *m) {
    const tenants *t = edge_tenants(m);
    const tenant_provider *provider = tenants_provider(t, m->params.provider);
    if (!provider) {
        http_respond_error(req, CAUSE_NOT_FOUND, "unknown service provider");
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    topup_request r;
    char msg[256];
    if (topup_request_parse(body, len, http_header(req, "X-Partner-Reference"), &r, msg,
                            sizeof msg) != 0) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "%s", msg);
        return;
    }
    const tenant_operator *op = tenants_operator_for_msisdn(t, r.requestor);
    if (!op) {
        http_respond_error(req, CAUSE_INVALID_NUMBER,
                           "the requestor's number is on no operator Millom serves");
        return;
    }
    if (!tenants_provider_uses(provider, op->id)) {
        http_respond_error(req, CAUSE_NOT_ALLOWED, "the provider has no agreement with %s", op->id);
        return;
    }
    request_wait *w = calloc(1, sizeof *w);
    if (!w) {
        http_respond_error(req, CAUSE_UNSPECIFIED, "out of memory");
        return;
    }
    w->req = req;
    http_set_user(req, w, free);
    topup_id_for(provider->id, r.reference, w->id);
    /* The donor's link: the page of this request, for this operator. */
    char path[160];
    snprintf(path, sizeof path, "/topup/%s/%s", provider->id, w->id);
    signed_link_param params[] = {{"op", op->id}};
    char *link = signed_link_make(rnf_limits_settings()->public_url, path, params, 1,
                                  topup_cfg.link_ttl_s, now_ms());
    if (!link) {
        http_respond_error(req, CAUSE_UNSPECIFIED, "cannot make the donor's link");
        return;
    }
    memcpy(w->reference, r.reference, sizeof w->reference);

    Millom__V1__TopupCommand cmd = MILLOM__V1__TOPUP_COMMAND__INIT;
    cmd.kind = MILLOM__V1__TOPUP_COMMAND_KIND__TOPUP_COMMAND_REQUEST;
    cmd.topup_id = w->id;
    cmd.service_provider = (char *)provider->id;
    cmd.operator_ = (char *)op->id;
    cmd.partner_reference = r.reference;
    cmd.requestor_msisdn = r.requestor;
    cmd.requestor_name = r.requestor_name;
    cmd.donor_msisdn = r.donor;
    cmd.donor_name = r.donor_name;
    cmd.donor_link = link;
    log_debug("topup %s of %s: sent to purchase-executor", w->id, provider->id);
    send_topup(e, req, &cmd, e->purchase_deadline_ms, on_request_reply, w);
    free(link);
}

/* ---- GET /v1/{serviceProvider}/topup/{topupId} ---- */

void routes_topup_status(api_edge *e, http_request *req, const edge_match *m) {
    if (!topup_id_valid(m->params.topup_id)) {
        http_respond_error(req, CAUSE_NOT_FOUND, "no such top-up request");
        return;
    }
    Millom__V1__TopupCommand cmd = MILLOM__V1__TOPUP_COMMAND__INIT;
    cmd.kind = MILLOM__V1__TOPUP_COMMAND_KIND__TOPUP_COMMAND_STATUS;
    cmd.topup_id = (char *)m->params.topup_id;
    cmd.service_provider = (char *)m->params.provider;
    send_topup(e, req, &cmd, e->query_deadline_ms, edge_relay_reply, req);
}

/* ---- the donor's page ---- */

/* The link's fields, from the query (GET) or the form (POST). */
static const char *const PAGE_FIELDS[] = {"op", "uuid", "expirySeconds", "signature", "amount"};
#define N_PAGE_FIELDS (sizeof PAGE_FIELDS / sizeof PAGE_FIELDS[0])
static const char *const LINK_PARAMS[] = {"op", NULL};

typedef struct {
    http_request *req;
    int post;
    const char *body; /* the form (POST), read before any reply */
    size_t len;
    char values[N_PAGE_FIELDS][257];
    int bad;
    const tenant_operator *op; /* borrowed from the pinned tenants: only while the handler runs */
    char currency[16];
    int scale;
    int64_t amounts[TOPUP_MAX_AMOUNTS];
    int n_amounts;
} page_wait;

static const char *page_field(void *ctx, const char *name) {
    page_wait *w = ctx;
    for (size_t i = 0; i < N_PAGE_FIELDS; i++) {
        if (strcmp(name, PAGE_FIELDS[i]) != 0) continue;
        if (!w->post) return http_query(w->req, name);
        int rc = http_form_get(w->body, w->len, name, w->values[i], sizeof w->values[i]);
        if (rc < 0) w->bad = 1;
        return rc == 1 ? w->values[i] : NULL;
    }
    return NULL;
}

static const char PAGE_HEAD[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Top-up</title><style>"
    "body{font-family:system-ui,sans-serif;font-size:18px;line-height:1.4;margin:0;"
    "padding:16px;background:#f4f5f7;color:#111}"
    "h1{font-size:24px;margin:0 0 16px}"
    ".card{background:#fff;border-radius:12px;padding:16px;margin:0 0 16px;"
    "box-shadow:0 1px 3px rgba(0,0,0,.15)}"
    "form{margin:0}"
    "button.buy{display:block;width:100%;text-align:center;padding:16px;margin:0 0 12px;"
    "border:0;border-radius:10px;background:#0a58ca;color:#fff;font:inherit;font-size:20px;"
    "font-weight:600;cursor:pointer}"
    "</style></head><body>\n<h1>Top-up</h1>\n";

/* A page with one message paragraph (escaped) under the heading. */
static void respond_page_text(http_request *req, int status, const char *text) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        http_respond_error(req, CAUSE_UNSPECIFIED, "out of memory");
        return;
    }
    fputs(PAGE_HEAD, f);
    fputs("<div class=\"card\"><p>", f);
    edge_html_text(f, text);
    fputs("</p></div>\n</body></html>\n", f);
    fclose(f);
    http_respond(req, status, "text/html; charset=utf-8", buf, len);
    free(buf);
}

/* The top-up's answer (JSON) as a page: the form while the donor may
 * still choose, else what became of the request. */
static char *render_page(const page_wait *w, const json_t *t, size_t *len) {
    const char *status = json_string_value(json_object_get(t, "status"));
    const json_t *requestor = json_object_get(t, "requestor");
    const char *name = json_string_value(json_object_get(requestor, "name"));
    const char *number =
        json_string_value(json_object_get(json_object_get(requestor, "userNumber"), "msisdn"));
    const char *donor = json_string_value(json_object_get(json_object_get(t, "donor"), "name"));
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) return NULL;
    fputs(PAGE_HEAD, f);
    fputs("<div class=\"card\"><p>", f);
    if (donor) {
        fputs("Hello ", f);
        edge_html_text(f, donor);
        fputs(". ", f);
    }
    fputs("<strong class=\"requestor\">", f);
    edge_html_text(f, name ? name : "");
    fputs("</strong> (", f);
    edge_html_text(f, number ? number : "");
    fputs(") asks you for a top-up.</p></div>\n", f);
    if (status && strcmp(status, "LINK_SENT") == 0) {
        fputs("<div class=\"card\"><form method=\"post\" action=\"", f);
        edge_html_text(f, http_path(w->req));
        fputs("\">", f);
        for (size_t i = 0; i < 4; i++) { /* op, uuid, expirySeconds, signature */
            fputs("<input type=\"hidden\" name=\"", f);
            fputs(PAGE_FIELDS[i], f);
            fputs("\" value=\"", f);
            edge_html_text(f, http_query(w->req, PAGE_FIELDS[i]));
            fputs("\">", f);
        }
        for (int i = 0; i < w->n_amounts; i++) {
            char value[40];
            money_format(w->amounts[i], w->scale, value, sizeof value);
            fputs("<button class=\"buy\" type=\"submit\" name=\"amount\" value=\"", f);
            edge_html_text(f, value);
            fputs("\">Send ", f);
            edge_html_text(f, value);
            fputs(" ", f);
            edge_html_text(f, w->currency);
            fputs("</button>", f);
        }
        fputs("</form></div>\n", f);
    } else {
        const json_t *amount = json_object_get(t, "amount");
        fputs("<div class=\"card\"><p class=\"status\">", f);
        if (status && strcmp(status, "CREDITED") == 0) {
            fputs("Thank you: ", f);
            edge_html_text(f, json_string_value(json_object_get(amount, "value")));
            fputs(" ", f);
            edge_html_text(f, json_string_value(json_object_get(amount, "currency")));
            fputs(" was added to the balance (CREDITED).", f);
        } else {
            fputs("This top-up request is ", f);
            edge_html_text(f, status ? status : "unknown");
            fputs(".", f);
        }
        fputs("</p></div>\n", f);
    }
    fputs("</body></html>\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void on_page_reply(void *arg, const Millom__V1__Reply *reply) {
    page_wait *w = arg;
    if (!reply) {
        respond_page_text(w->req, 503, "The operator is busy right now; please try again.");
        return;
    }
    json_t *answer = json_loadb((const char *)reply->body.data, reply->body.len, 0, NULL);
    if (reply->http_status == 200 && json_is_object(answer)) {
        size_t len = 0;
        char *page = render_page(w, answer, &len);
        if (page)
            http_respond(w->req, 200, "text/html; charset=utf-8", page, len);
        else
            http_respond_error(w->req, CAUSE_UNSPECIFIED, "cannot render the page");
        free(page);
    } else {
        const char *why = json_string_value(json_object_get(answer, "errorMessage"));
        respond_page_text(w->req, reply->http_status,
                          why ? why : "This top-up request cannot be served.");
    }
    json_decref(answer);
}

static int is_form(const char *content_type) {
    static const char form[] = "application/x-www-form-urlencoded";
    if (!content_type || strncasecmp(content_type, form, sizeof form - 1) != 0) return 0;
    char next = content_type[sizeof form - 1];
    return next == '\0' || next == ';' || next == ' ';
}

void routes_topup_page(api_edge *e, http_request *req, const edge_match *m) {
    page_wait *w = calloc(1, sizeof *w);
    if (!w) {
        http_respond_error(req, CAUSE_UNSPECIFIED, "out of memory");
        return;
    }
    w->req = req;
    http_set_user(req, w, free);
    w->post = strcmp(http_method(req), "POST") == 0;
    if (w->post) {
        if (!is_form(http_header(req, "Content-Type"))) {
            http_respond_error(req, CAUSE_UNSUPPORTED_MEDIA_TYPE,
                               "the body must be Content-Type: application/x-www-form-urlencoded");
            return;
        }
        w->body = http_body(req, &w->len);
        if (memchr(w->body, '\0', w->len)) {
            http_respond_error(req, CAUSE_BAD_REQUEST, "the body contains a NUL byte");
            return;
        }
    }
    int64_t now = now_ms();
    int rc = signed_link_verify(http_path(req), page_field, w, LINK_PARAMS, now);
    if (w->bad) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "a form field is given twice or too long");
        return;
    }
    if (rc == SIGNED_LINK_EXPIRED) {
        respond_page_text(req, 401, "This link has expired.");
        return;
    }
    if (rc != SIGNED_LINK_OK || !topup_id_valid(m->params.topup_id)) {
        http_respond_error(req, CAUSE_UNAUTHORIZED,
                           "the link is not valid (op, uuid, expirySeconds, signature)");
        return;
    }
    int retry = rnf_limit_link(page_field(w, "signature"), now);
    if (retry) {
        respond_page_text(req, 429, "Too many requests on this link; please try again later.");
        return;
    }
    const tenant_operator *op = tenants_operator(edge_tenants(m), page_field(w, "op"));
    if (!op) {
        respond_page_text(req, 404, "This operator is not served any more.");
        return;
    }
    snprintf(w->currency, sizeof w->currency, "%s", op->currency);
    w->scale = op->currency_scale;
    w->n_amounts = topup_amounts(op, w->amounts);

    Millom__V1__TopupCommand cmd = MILLOM__V1__TOPUP_COMMAND__INIT;
    cmd.kind = MILLOM__V1__TOPUP_COMMAND_KIND__TOPUP_COMMAND_STATUS;
    cmd.topup_id = (char *)m->params.topup_id;
    cmd.service_provider = (char *)m->params.provider;
    if (w->post) {
        const char *amount = page_field(w, "amount");
        int64_t minor = -1;
        if (!amount || money_parse(amount, w->scale, &minor) != 0) minor = -1;
        int offered = 0;
        for (int i = 0; i < w->n_amounts; i++) offered |= w->amounts[i] == minor;
        if (!offered) {
            respond_page_text(req, 400, "Please choose one of the amounts offered.");
            return;
        }
        cmd.kind = MILLOM__V1__TOPUP_COMMAND_KIND__TOPUP_COMMAND_DONATE;
        cmd.amount_minor = minor;
    }
    send_topup(e, req, &cmd, w->post ? e->purchase_deadline_ms : e->query_deadline_ms,
               on_page_reply, w);
}
