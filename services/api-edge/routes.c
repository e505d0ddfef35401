/* Every endpoint of api-edge, and the matcher. See routes.h.
 *
 * To add an endpoint: write its handler (routes_*.c, declared in edge.h;
 * it gets its parameters in m->params and m->route->action), then add a
 * row below, in its area, before the area's catch-all. A token route
 * needs a scope (test_api_edge_routes.c checks it); the README's scope
 * table is this table. */
#include "routes.h"
#include "edge.h"
#include "request_std.h"
#include "millom/v1/settlement.pb-c.h"

#include <stdio.h>
#include <string.h>

#define INQUIRE "cco.dd.data-plan.gen.inquire"
#define ACTIVATE "cco.dd.data-plan.gen.activate"
#define REGISTER "cco.dd.data-plan.gen.register"
/* A scope of alternatives (space-separated): a token with any one will do. */
#define ACTIVATE_OR_INQUIRE ACTIVATE " " INQUIRE
#define MGMT "millom.mgmt.read"
#define CALLBACK "cco.dd.data-plan.inquire"
#define NOTIFY "cco.dd.notify.{operator}.single"
#define NOTIFY_BULK "cco.dd.notify.{operator}.bulk"

#define TOKEN(scope, bind) EDGE_AUTH_TOKEN, scope, bind
#define PUBLIC(kind) kind, NULL, EDGE_BIND_NONE
#define SP EDGE_BIND_PROVIDER
#define OP EDGE_BIND_OPERATOR
#define SETTLEMENTS MILLOM__V1__SETTLEMENT_QUERY_KIND__SETTLEMENT_QUERY_KIND_SETTLEMENTS
#define OFFER_PERFORMANCE MILLOM__V1__SETTLEMENT_QUERY_KIND__SETTLEMENT_QUERY_KIND_OFFER_PERFORMANCE
#define TS EDGE_ROUTE_TRAILING_SLASH
#define FORM EDGE_ROUTE_FORM_BODY
#define OPERR EDGE_ROUTE_OPERATOR_ERRORS

/* clang-format off */
const edge_route_row edge_routes[] = {
    /* methods, pattern, handler, action, auth (kind, scope, token bound to), flags, headers */
    {"POST", "/oauth/v1/token", routes_oauth_token, 0, PUBLIC(EDGE_AUTH_NONE), FORM, NULL},
    {"GET", "/healthz", NULL, 0, PUBLIC(EDGE_AUTH_NONE), 0, NULL}, /* http_server.c */
    {"GET", "/readyz", NULL, 0, PUBLIC(EDGE_AUTH_NONE), 0, NULL},  /* http_server.c */
    {"GET", "/metrics", NULL, 0, PUBLIC(EDGE_AUTH_NONE), 0, NULL}, /* http_server.c */
    /* Millom-C's own endpoints as OpenAPI (routes_openapi.c). */
    {"GET", "/openapi/millom-extensions.yaml", routes_openapi, 0, PUBLIC(EDGE_AUTH_NONE), 0, NULL},

    /* The standard API (routes_std.c, routes_purchase.c, routes_register.c). */
    {"GET", "/std/{serviceProvider}/{operator}/{subscriberId}/accountInfo", routes_std, STD_ACCOUNT_INFO, TOKEN(INQUIRE, SP), TS, NULL},
    {"GET", "/std/{serviceProvider}/{subscriberId}/accountInfo", routes_std, STD_ACCOUNT_INFO, TOKEN(INQUIRE, SP), TS, NULL},
    {"GET", "/std/{serviceProvider}/{operator}/{subscriberId}/balance", routes_std, STD_BALANCE, TOKEN(INQUIRE, SP), TS, NULL},
    {"GET", "/std/{serviceProvider}/{subscriberId}/balance", routes_std, STD_BALANCE, TOKEN(INQUIRE, SP), TS, NULL},
    {"GET", "/std/{serviceProvider}/{operator}/{subscriberId}/upsellOffer", routes_std, STD_UPSELL_OFFER, TOKEN(INQUIRE, SP), TS, NULL},
    {"GET", "/std/{serviceProvider}/{subscriberId}/upsellOffer", routes_std, STD_UPSELL_OFFER, TOKEN(INQUIRE, SP), TS, NULL},
    {"POST", "/std/{serviceProvider}/{operator}/{subscriberId}/purchasePlan", routes_purchase, STD_PURCHASE_PLAN, TOKEN(ACTIVATE, SP), TS, NULL},
    {"POST", "/std/{serviceProvider}/{subscriberId}/purchasePlan", routes_purchase, STD_PURCHASE_PLAN, TOKEN(ACTIVATE, SP), TS, NULL},
    {"GET", "/std/{serviceProvider}/{operator}/{subscriberId}/purchasePlan/{transid}", routes_purchase_status, STD_PURCHASE_PLAN, TOKEN(ACTIVATE_OR_INQUIRE, SP), TS, NULL},
    {"GET", "/std/{serviceProvider}/{subscriberId}/purchasePlan/{transid}", routes_purchase_status, STD_PURCHASE_PLAN, TOKEN(ACTIVATE_OR_INQUIRE, SP), TS, NULL},
    /* An extension: would a purchase go through now (routes_eligibility.c)? */
    {"GET", "/std/{serviceProvider}/{operator}/{subscriberId}/eligibility/{planId}", routes_eligibility, STD_PURCHASE_PLAN, TOKEN(ACTIVATE, SP), 0, NULL},
    {"GET", "/std/{serviceProvider}/{subscriberId}/eligibility/{planId}", routes_eligibility, STD_PURCHASE_PLAN, TOKEN(ACTIVATE, SP), 0, NULL},
    {"POST", "/std/{serviceProvider}/{subscriberId}/register", routes_register, STD_REGISTER, TOKEN(REGISTER, SP), TS, NULL},
    {NULL, "/std/{serviceProvider}/**", NULL, 0, TOKEN(NULL, SP), 0, NULL},

    /* The Top-up API (routes_topup.c); its donor's page is a signed link. */
    {"POST", "/v1/{serviceProvider}/topup", routes_topup_request, 0, TOKEN(ACTIVATE, SP), TS, NULL},
    {"GET", "/v1/{serviceProvider}/topup/{topupId}", routes_topup_status, 0, TOKEN(ACTIVATE_OR_INQUIRE, SP), TS, NULL},
    {"GET POST", "/topup/{serviceProvider}/{topupId}", routes_topup_page, 0, PUBLIC(EDGE_AUTH_SIGNED_LINK), FORM, edge_rnf_headers},
    {NULL, "/topup/**", NULL, 0, PUBLIC(EDGE_AUTH_SIGNED_LINK), FORM, edge_rnf_headers},

    /* Signed links (routes_rnf.c): the link is the credential. */
    {"GET", "/rnf/{serviceProvider}/{operator}/{cpid}/offers", routes_rnf, RNF_OFFERS, PUBLIC(EDGE_AUTH_SIGNED_LINK), FORM, edge_rnf_headers},
    {"GET", "/rnf/{serviceProvider}/{operator}/{cpid}/ping", routes_rnf, RNF_PING, PUBLIC(EDGE_AUTH_SIGNED_LINK), FORM, edge_rnf_headers},
    {"GET POST", "/rnf/{serviceProvider}/{operator}/{cpid}/purchasePlan", routes_rnf, RNF_PURCHASE, PUBLIC(EDGE_AUTH_SIGNED_LINK), FORM, edge_rnf_headers},
    {"GET", "/rnf/{serviceProvider}/{operator}/{cpid}/shop", routes_rnf, RNF_SHOP, PUBLIC(EDGE_AUTH_SIGNED_LINK), FORM, edge_rnf_headers},
    {"GET", "/rnf/{serviceProvider}/{operator}/{cpid}/unsubscribe", routes_rnf, RNF_UNSUBSCRIBE, PUBLIC(EDGE_AUTH_SIGNED_LINK), FORM, edge_rnf_headers},
    {NULL, "/rnf/**", NULL, 0, PUBLIC(EDGE_AUTH_SIGNED_LINK), FORM, edge_rnf_headers},

    /* The management API for operators (routes_mgmt.c, routes_settlement.c, routes_consents.c). */
    {"GET", "/mgmt/{operator}/purchases", routes_mgmt_purchases, 0, TOKEN(MGMT, OP), 0, NULL},
    {"GET", "/mgmt/{operator}/purchases/{transid}", routes_mgmt_purchase, 0, TOKEN(MGMT, OP), 0, NULL},
    {"GET", "/mgmt/{operator}/settlements", routes_settlement, SETTLEMENTS, TOKEN(MGMT, OP), 0, NULL},
    {"GET", "/mgmt/{operator}/offer-performance", routes_settlement, OFFER_PERFORMANCE, TOKEN(MGMT, OP), 0, NULL},
    {"GET", "/mgmt/{operator}/consents", routes_consents, 0, TOKEN(MGMT, OP), 0, NULL},
    {NULL, "/mgmt/{operator}/**", NULL, 0, TOKEN(MGMT, OP), 0, NULL},

    /* Operators' activation callbacks, two shapes (routes_callbacks.c). */
    {"POST", "/activationCallback/{operator}", routes_callbacks, CALLBACK_BACKEND, TOKEN(CALLBACK, OP), TS | OPERR, NULL},
    {NULL, "/activationCallback/{operator}/**", NULL, 0, TOKEN(CALLBACK, OP), OPERR, NULL},
    {"POST", "/callback/v1/{operator}", routes_callbacks, CALLBACK_MILLOM, TOKEN(CALLBACK, OP), TS | OPERR, NULL},
    {NULL, "/callback/v1/{operator}/**", NULL, 0, TOKEN(CALLBACK, OP), OPERR, NULL},

    /* The Notification API (routes_notify.c). */
    {"POST", "/notify/{operator}/v1/single", routes_notify, 0, TOKEN(NOTIFY, OP), 0, NULL},
    {"POST", "/notify/{operator}/v1/bulk", routes_notify_bulk, 0, TOKEN(NOTIFY_BULK, OP), 0, NULL},
    {NULL, "/notify/{operator}/**", NULL, 0, TOKEN(NOTIFY, OP), 0, NULL},

    /* The CPID API (routes_cpid.c). */
    {"GET", "/cpid", routes_cpid_get, 0, PUBLIC(EDGE_AUTH_OPERATOR_CIDR), 0, NULL},
    {"POST", "/{serviceProvider}/{operator}/registerCpid", routes_cpid_register, 0, TOKEN(REGISTER, SP), 0, NULL},

    /* Anything else: a valid token, then 404. */
    {NULL, "/**", NULL, 0, TOKEN(NULL, EDGE_BIND_NONE), 0, NULL},
};
/* clang-format on */
const size_t edge_routes_count = sizeof edge_routes / sizeof edge_routes[0];

/* Where each parameter goes. */
static const struct {
    const char *name;
    size_t offset, size;
} param_fields[] = {
    {"serviceProvider", offsetof(edge_params, provider), sizeof(((edge_params *)0)->provider)},
    {"operator", offsetof(edge_params, op), sizeof(((edge_params *)0)->op)},
    {"subscriberId", offsetof(edge_params, subscriber), sizeof(((edge_params *)0)->subscriber)},
    {"cpid", offsetof(edge_params, cpid), sizeof(((edge_params *)0)->cpid)},
    {"transid", offsetof(edge_params, transid), sizeof(((edge_params *)0)->transid)},
    {"planId", offsetof(edge_params, plan_id), sizeof(((edge_params *)0)->plan_id)},
    {"topupId", offsetof(edge_params, topup_id), sizeof(((edge_params *)0)->topup_id)},
};

/* The index in param_fields of the parameter named name[0..n), or -1. */
static int param_index(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof param_fields / sizeof param_fields[0]; i++)
        if (strlen(param_fields[i].name) == n && memcmp(param_fields[i].name, name, n) == 0)
            return (int)i;
    return -1;
}

int edge_pattern_match(const char *pattern, unsigned flags, int lenient, const char *path,
                       edge_params *out) {
    memset(out, 0, sizeof *out);
    if (!pattern || !path) return 0;
    if (path[0] != '/' || pattern[0] != '/') return strcmp(pattern, "/**") == 0;
    const char *q = pattern + 1, *p = path + 1;
    for (;;) {
        size_t qn = strcspn(q, "/"), pn = strcspn(p, "/");
        if (qn == 2 && q[0] == '*' && q[1] == '*' && q[2] == '\0') return 1;
        if (qn >= 2 && q[0] == '{' && q[qn - 1] == '}') {
            int k = param_index(q + 1, qn - 2);
            if (k < 0) return 0;
            char *field = (char *)out + param_fields[k].offset;
            size_t size = param_fields[k].size;
            if (pn > 0 && pn < size) {
                memcpy(field, p, pn);
                field[pn] = '\0';
            } else if (lenient) {
                snprintf(field, size, "?"); /* no tenant has it: a binding is never skipped */
            } else {
                return 0;
            }
        } else if (pn != qn || memcmp(p, q, qn) != 0) {
            return 0;
        }
        q += qn;
        p += pn;
        if (*q == '\0')
            return *p == '\0' || ((flags & EDGE_ROUTE_TRAILING_SLASH) && strcmp(p, "/") == 0);
        q++;                                         /* past the pattern's '/' */
        if (*p == '\0') return strcmp(q, "**") == 0; /* "/std/sp" is in the std area (rest "**") */
        p++;
    }
}

static int method_in(const char *method, const char *list) {
    size_t n = strlen(method);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, " ");
        if (k == n && n > 0 && memcmp(p, method, n) == 0) return 1;
        p += k;
        while (*p == ' ') p++;
    }
    return 0;
}

/* Adds list's methods to the Allow text, each once. */
static void allow_add(char *allow, size_t len, const char *list) {
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, " ");
        char m[16];
        snprintf(m, sizeof m, "%.*s", (int)k, p);
        int have = 0;
        for (const char *a = allow; *a;) {
            size_t j = strcspn(a, ",");
            if (j == strlen(m) && memcmp(a, m, j) == 0) have = 1;
            a += j;
            while (*a == ',' || *a == ' ') a++;
        }
        if (!have) {
            size_t used = strlen(allow);
            snprintf(allow + used, len - used, "%s%s", used ? ", " : "", m);
        }
        p += k;
        while (*p == ' ') p++;
    }
}

void edge_route_find(const char *method, const char *path, edge_match *out) {
    memset(out, 0, sizeof *out);
    edge_params params;
    const edge_route_row *first = NULL;
    for (size_t i = 0; i < edge_routes_count; i++) {
        const edge_route_row *r = &edge_routes[i];
        int catch_all = r->methods == NULL;
        if (!edge_pattern_match(r->pattern, r->flags, catch_all, path, &params)) continue;
        if (catch_all) {
            if (first) break; /* the path is known, the method is not: 405 */
            out->route = r;
            out->status = 404;
            out->params = params;
            return;
        }
        if (method && method_in(method, r->methods)) {
            out->route = r;
            out->status = 0;
            out->params = params;
            return;
        }
        if (!first) {
            first = r;
            out->params = params;
        }
        allow_add(out->allow, sizeof out->allow, r->methods);
    }
    if (first) {
        out->route = first;
        out->status = 405;
        return;
    }
    out->route = &edge_routes[edge_routes_count - 1]; /* the last row matches all; never reached */
    out->status = 404;
}

int edge_match_body_is_json(const char *method, const edge_match *m) {
    if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0 && strcmp(method, "PATCH") != 0)
        return 0;
    return !(m->route->flags & EDGE_ROUTE_FORM_BODY);
}

void edge_match_scope(const edge_match *m, char *out, size_t outlen) {
    const char *s = m->route->scope ? m->route->scope : "";
    size_t used = 0;
    out[0] = '\0';
    while (*s && used + 1 < outlen) {
        const char *close = s[0] == '{' ? strchr(s, '}') : NULL;
        int k = close ? param_index(s + 1, (size_t)(close - s - 1)) : -1;
        if (k >= 0) {
            const char *v = (const char *)&m->params + param_fields[k].offset;
            used += (size_t)snprintf(out + used, outlen - used, "%s", v);
            if (used >= outlen) used = outlen - 1;
            s = close + 1;
        } else {
            out[used++] = *s++;
            out[used] = '\0';
        }
    }
}
