/* libFuzzer target for api-edge's request parsing and JSON validation,
 * the tenants file as a reload reads it, and the Standard Webhooks check
 * providers run on Millom's webhooks (`make fuzz`; input format in
 * tests/fuzz/README.md).
 *
 * The first byte selects the parser, the rest is its data. Every parser
 * here is pure: no I/O, no Kafka, no HTTP server. Fields that a request
 * carries besides its body (path, headers, query values) are taken from
 * '\n'-separated lines of the data. Everything allocated per input is
 * freed, so the leak checker stays on. */
#include "services/api-edge/auth.h"
#include "services/api-edge/edge.h"
#include "services/api-edge/request_http.h"
#include "services/api-edge/request_purchase.h"
#include "services/api-edge/request_std.h"
#include "services/api-edge/routes.h"
#include "services/api-edge/tenants_reload.h"
#include "shared/contracts/cpid.h"
#include "shared/contracts/webhook_signature.h"
#include "shared/plumbing/http_form.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Validation's clock, fixed so runs are reproducible (the unit tests'
 * NOW_MS; seeds with a CPID are issued just before it). */
#define FUZZ_NOW_MS 1800000000000LL

static tenants *g_tenants;
static cpid_config g_cpid;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char err[512];
    const char *path = getenv("MILLOM_TENANTS");
    g_tenants = tenants_load(path && *path ? path : "config/tenants.sandbox.json", err, sizeof err);
    if (!g_tenants) {
        fprintf(stderr, "fuzz_api_edge: tenants: %s (run from the repository root)\n", err);
        abort();
    }
    /* As api-edge gets it from cpid_config_default() without MILLOM_CPID_KEY. */
    if (cpid_config_init(&g_cpid, NULL, 0) != 0) abort();
    return 0;
}

/* Splits data into at most max '\n'-separated fields, each a malloc'ed
 * NUL-terminated copy (an embedded NUL just ends the C string early).
 * Fields beyond the data are NULL (an absent header); the last field takes
 * the rest. Returns how many fields are present. */
static size_t split_lines(const uint8_t *d, size_t n, char **out, size_t max) {
    size_t k = 0, start = 0;
    for (size_t f = 0; f < max; f++) out[f] = NULL;
    while (k < max) {
        size_t end = start;
        if (k < max - 1)
            while (end < n && d[end] != '\n') end++;
        else
            end = n;
        out[k] = malloc(end - start + 1);
        if (!out[k]) abort();
        memcpy(out[k], d + start, end - start);
        out[k][end - start] = '\0';
        k++;
        if (end >= n) break;
        start = end + 1; /* past the '\n' */
    }
    return k;
}

static void free_lines(char **f, size_t n) {
    for (size_t i = 0; i < n; i++) free(f[i]);
}

static char *cstr(const uint8_t *d, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, d, n);
    s[n] = '\0';
    return s;
}

/* A /std/ path as api-edge's router takes it apart: the first row of the
 * route table it matches (GET, else POST) that is a /std/ endpoint. 0
 * with *out filled, -1 when no such row answers the path. */
static int std_path_of(const char *path, std_path *out) {
    static const char *const methods[] = {"GET", "POST"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        edge_match m;
        edge_route_find(methods[i], path, &m);
        if (m.status == 0 && m.route->handler && strncmp(m.route->pattern, "/std/", 5) == 0) {
            edge_std_path(&m, out);
            return 0;
        }
    }
    return -1;
}

static void fuzz_path(const uint8_t *d, size_t n) {
    char *s = cstr(d, n);
    std_path p;
    if (std_path_of(s, &p) == 0) {
        if (!memchr(p.provider, '\0', sizeof p.provider) || !memchr(p.op, '\0', sizeof p.op) ||
            !memchr(p.subscriber, '\0', sizeof p.subscriber) || !p.provider[0] || !p.subscriber[0])
            abort();
        (void)std_action_name(p.action);
    }
    free(s);
}

/* Lines: path, key_type, planType, Accept-Language, Cache-Control,
 * dealerCode, clientName. */
static void fuzz_validate(const uint8_t *d, size_t n) {
    char *f[7];
    size_t k = split_lines(d, n, f, 7);
    std_path p;
    if (f[0] && std_path_of(f[0], &p) == 0) {
        std_inputs in = {
            .key_type = f[1],
            .plan_type = f[2],
            .accept_language = f[3],
            .cache_control = f[4],
            .dealer_code = f[5],
            .client_name = f[6],
        };
        std_request r;
        char msg[256];
        msg[0] = '\0';
        const char *cause =
            std_validate(g_tenants, &g_cpid, FUZZ_NOW_MS, &p, &in, &r, msg, sizeof msg);
        if (!cause) {
            if (!r.op || !r.provider || !memchr(r.subscriber, '\0', sizeof r.subscriber) ||
                !memchr(r.language, '\0', sizeof r.language))
                abort();
        } else if (!memchr(msg, '\0', sizeof msg)) {
            abort();
        }
    }
    free_lines(f, k);
}

static void check_cb(const activation_callback *cb) {
    if (!memchr(cb->trans_id, '\0', sizeof cb->trans_id) ||
        !memchr(cb->error_type, '\0', sizeof cb->error_type) ||
        !memchr(cb->message, '\0', sizeof cb->message) ||
        !memchr(cb->offer_id, '\0', sizeof cb->offer_id) ||
        !memchr(cb->service_provider, '\0', sizeof cb->service_provider))
        abort();
}

static void fuzz_body(char sel, const uint8_t *d, size_t n) {
    /* An exact-size heap copy without a terminator: ASan catches any read
     * past len. */
    char *body = malloc(n ? n : 1);
    if (!body) abort();
    if (n) memcpy(body, d, n);
    char msg[256];
    switch (sel) {
    case 'A': {
        activation_request a;
        if (activation_request_parse(body, n, &a, msg, sizeof msg) == 0 &&
            (!transid_valid(a.transid) || !memchr(a.planid, '\0', sizeof a.planid) ||
             !memchr(a.offercontext, '\0', sizeof a.offercontext)))
            abort();
        break;
    }
    case 'B': {
        activation_callback cb;
        if (callback_backend_parse(body, n, &cb, msg, sizeof msg) == 0) check_cb(&cb);
        break;
    }
    case 'M': {
        activation_callback cb;
        if (callback_millom_parse(body, n, &cb, msg, sizeof msg) == 0) check_cb(&cb);
        break;
    }
    case 'R': {
        register_body rb;
        if (register_body_parse(body, n, &rb, msg, sizeof msg) == 0 &&
            rb.n_types > REGISTER_MAX_TYPES)
            abort();
        break;
    }
    case 'F': {
        /* The token endpoint's form body and the shop's purchase form
         * (routes_rnf.c); the names they read. */
        static const char *const names[] = {
            "grant_type",    "client_id",  "client_secret", "scope",         "planId",
            "transactionId", "fundSource", "uuid",          "expirySeconds", "signature"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            char out[256];
            int rc = http_form_get(body, n, names[i], out, sizeof out);
            if (rc == 1 && !memchr(out, '\0', sizeof out)) abort();
            char tiny[4];
            (void)http_form_get(body, n, names[i], tiny, sizeof tiny);
        }
        break;
    }
    }
    free(body);
}

static void fuzz_language(const uint8_t *d, size_t n) {
    char *s = cstr(d, n);
    char out[16];
    std_primary_language(s, out, sizeof out);
    if (!memchr(out, '\0', sizeof out)) abort();
    char small[3];
    std_primary_language(s, small, sizeof small);
    if (!memchr(small, '\0', sizeof small)) abort();
    std_primary_language(NULL, out, sizeof out);
    free(s);
}

static void fuzz_transid(const uint8_t *d, size_t n) {
    char *s = cstr(d, n);
    (void)transid_valid(s);
    free(s);
}

static void fuzz_basic(const uint8_t *d, size_t n) {
    char *s = cstr(d, n);
    char id[129], secret[257];
    if (http_basic_parse(s, id, sizeof id, secret, sizeof secret) == 0 &&
        (!id[0] || !memchr(secret, '\0', sizeof secret)))
        abort();
    free(s);
}

/* Lines: method, path (the route -> scope/binding table). */
static void fuzz_route_need(const uint8_t *d, size_t n) {
    char *f[2];
    size_t k = split_lines(d, n, f, 2);
    if (k == 2) {
        auth_need need;
        auth_route_need(f[0], f[1], &need);
        edge_match m;
        edge_route_find(f[0], f[1], &m);
        if (!m.route || (m.status != 0 && m.status != 404 && m.status != 405) ||
            !memchr(m.params.provider, '\0', sizeof m.params.provider) ||
            !memchr(m.params.cpid, '\0', sizeof m.params.cpid))
            abort();
    }
    free_lines(f, k);
}

/* Lines: a management API time, an IP, a CIDR. */
static void fuzz_query_values(const uint8_t *d, size_t n) {
    char *f[3];
    size_t k = split_lines(d, n, f, 3);
    if (f[0]) {
        (void)mgmt_parse_time(f[0], 0);
        (void)mgmt_parse_time(f[0], 1);
    }
    if (f[1] && f[2]) (void)edge_ip_in_cidr(f[1], f[2]);
    free_lines(f, k);
}

/* Strict HTTP (request_http.h). Lines: an allow-list, a Host value, a
 * Content-Type value, a method, a path; the rest is a body (exact size). */
static void fuzz_strict(const uint8_t *d, size_t n) {
    char *f[5];
    size_t k = split_lines(d, n, f, 5);
    size_t used = 0;
    for (size_t i = 0; i < k && i < 4; i++) used += strlen(f[i]) + 1;
    if (f[0] && f[1]) {
        (void)edge_host_allowed(f[0], f[1]);
        (void)edge_host_allowed(EDGE_DEFAULT_ALLOWED_HOSTS, f[1]);
    }
    if (f[2]) (void)edge_content_type_is_json(f[2]);
    if (f[3] && f[4]) (void)edge_body_must_be_json(f[3], f[4]);
    size_t body_n = used < n ? n - used : 0;
    char *body = malloc(body_n ? body_n : 1);
    if (!body) abort();
    memcpy(body, d + n - body_n, body_n);
    char msg[128];
    const char *cause = edge_json_body_check(f[2], body, body_n, msg, sizeof msg);
    if (cause && !memchr(msg, '\0', sizeof msg)) abort();
    free(body);
    free_lines(f, k);
}

/* Standard Webhooks (shared/contracts/webhook_signature.h), as a provider
 * checks Millom's webhooks (sp-sandbox's receiving routes). Lines: a
 * secret, webhook-id, webhook-timestamp, webhook-signature; the rest is
 * the body (exact size). Verified with the secret (when it parses) and a
 * fixed key at the target's clock. Then the property: what the keys sign
 * over this id and body now verifies, with both keys and with either. */
static void fuzz_webhook(const uint8_t *d, size_t n) {
    char *f[5];
    size_t k = split_lines(d, n, f, 5);
    size_t used = 0;
    for (size_t i = 0; i < k && i < 4; i++) used += strlen(f[i]) + 1;
    size_t body_n = used < n ? n - used : 0;
    char *body = malloc(body_n ? body_n : 1);
    if (!body) abort();
    memcpy(body, d + n - body_n, body_n);

    static const char fixed[] = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    webhook_key keys[2];
    char err[160];
    if (webhook_key_parse(fixed, &keys[0], err, sizeof err) != 0) abort();
    size_t nk = 1;
    if (f[0] && webhook_key_parse(f[0], &keys[1], err, sizeof err) == 0) {
        if (keys[1].len < WEBHOOK_KEY_MIN || keys[1].len > WEBHOOK_KEY_MAX) abort();
        nk = 2;
    }
    const long long now_s = FUZZ_NOW_MS / 1000;
    webhook_verdict v =
        webhook_verify(keys, nk, f[1], f[2], f[3], body, body_n, now_s, WEBHOOK_TOLERANCE_S);
    if (v > WEBHOOK_NO_MATCH || !webhook_verdict_text(v)) abort();

    char header[WEBHOOK_SIGNATURE_HEADER_MAX], ts[24];
    snprintf(ts, sizeof ts, "%lld", now_s);
    if (f[1] &&
        webhook_signature_header(keys, nk, f[1], now_s, body, body_n, header, sizeof header) == 0) {
        for (size_t i = 0; i < nk; i++)
            if (webhook_verify(&keys[i], 1, f[1], ts, header, body, body_n, now_s,
                               WEBHOOK_TOLERANCE_S) != WEBHOOK_VERIFIED)
                abort();
    }
    for (size_t i = 0; i < nk; i++) webhook_key_clear(&keys[i]);
    free(body);
    free_lines(f, k);
}

/* A tenants file as api-edge reads it at a reload (tenants_reload.h): the
 * whole document parsed and validated, tenants and OAuth clients. Then
 * the property: every client of a version that parses belongs to one of
 * its providers or operators and is found by its id; a refusal says why. */
static void fuzz_tenants(const uint8_t *d, size_t n) {
    char *text = malloc(n ? n : 1); /* exact size, no terminator */
    if (!text) abort();
    if (n) memcpy(text, d, n);
    char err[512];
    err[0] = '\0';
    edge_config *c = edge_config_parse(text, n, "fuzz.json", err, sizeof err);
    if (c) {
        for (size_t i = 0; i < c->clients.n; i++) {
            const auth_client *cl = &c->clients.items[i];
            if (cl->provider ? !tenants_provider(c->tenants, cl->provider)
                             : !tenants_operator(c->tenants, cl->op))
                abort();
            if (auth_clients_find(&c->clients, cl->id) != cl) abort();
        }
        for (size_t i = 0; i < tenants_operator_count(c->tenants); i++)
            if (!tenant_operator_language(tenants_operator_at(c->tenants, i), "xx")) abort();
    } else if (!err[0] || !memchr(err, '\0', sizeof err)) {
        abort();
    }
    edge_config_free(c);
    free(text);
}

/* The selector byte: one of these letters, or any other byte taken modulo
 * the table (so mutations of the selector stay useful). */
static const char selectors[] = "PVABMRLTFHNQSWC";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *hit = data[0] ? strchr(selectors, data[0]) : NULL;
    char sel = hit ? *hit : selectors[data[0] % (sizeof selectors - 1)];
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (sel) {
    case 'P': fuzz_path(d, n); break;
    case 'V': fuzz_validate(d, n); break;
    case 'A':
    case 'B':
    case 'M':
    case 'R':
    case 'F': fuzz_body(sel, d, n); break;
    case 'L': fuzz_language(d, n); break;
    case 'T': fuzz_transid(d, n); break;
    case 'H': fuzz_basic(d, n); break;
    case 'N': fuzz_route_need(d, n); break;
    case 'Q': fuzz_query_values(d, n); break;
    case 'S': fuzz_strict(d, n); break;
    case 'W': fuzz_webhook(d, n); break;
    case 'C': fuzz_tenants(d, n); break;
    }
    return 0;
}
