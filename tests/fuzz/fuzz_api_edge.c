/* libFuzzer target for api-edge's request parsing and JSON validation,
 * the tenants file as a reload reads it, the Standard Webhooks check
 * providers run on Millom's webhooks, the key lists of rotation with
 * the key-id lookups of every artefact, and the x-correlator check
 * (`make fuzz`; input format in tests/fuzz/README.md).
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
#include "shared/contracts/keys.h"
#include "shared/contracts/offer_context.h"
#include "shared/contracts/signed_link.h"
#include "shared/contracts/webhook_signature.h"
#include "shared/plumbing/correlator.h"
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

/* The x-correlator check (shared/plumbing/correlator.h) on the header's
 * bytes, as api-edge's HTTP server and every Kafka consumer run it. What
 * it accepts must be 1 to 128 characters of [A-Za-z0-9._:-] and become the
 * thread's current correlator unchanged; what it refuses must clear it. A
 * fresh one must pass the same check. */
static void fuzz_correlator(const uint8_t *d, size_t n) {
    char *bytes = malloc(n ? n : 1); /* exact size: a read past n is caught */
    if (!bytes) return;
    if (n) memcpy(bytes, d, n);
    correlator_set("before");
    int ok = correlator_valid(bytes, n);
    correlator_set_n(bytes, n);
    const char *cur = correlator_current();
    if (ok) {
        if (n < 1 || n > CORRELATOR_MAX || strlen(cur) != n || memcmp(cur, bytes, n) != 0) abort();
        for (size_t i = 0; i < n; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-",
                        bytes[i]) ||
                !bytes[i])
                abort();
    } else if (*cur) {
        abort();
    }
    char fresh[CORRELATOR_SIZE];
    correlator_new(fresh);
    if (!correlator_valid(fresh, strlen(fresh))) abort();
    correlator_clear();
    free(bytes);
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

/* A signed link's query for signed_link_verify_keys. */
typedef struct {
    char uuid[37], expiry[32];
    const char *signature;
} fuzz_query;

static const char *fuzz_query_get(void *ctx, const char *name) {
    fuzz_query *q = ctx;
    if (strcmp(name, "uuid") == 0) return q->uuid;
    if (strcmp(name, "expirySeconds") == 0) return q->expiry;
    if (strcmp(name, "signature") == 0) return q->signature;
    return NULL;
}

/* The value of query parameter name in a link made by signed_link_make_keys
 * (no escaping needed for uuid, expirySeconds and signature). */
static void link_param(const char *link, const char *name, char *out, size_t outlen) {
    char key[32];
    snprintf(key, sizeof key, "%s=", name);
    const char *v = strstr(link, key);
    if (!v) abort();
    v += strlen(key);
    snprintf(out, outlen, "%.*s", (int)strcspn(v, "&"), v);
}

/* Key rotation (shared/contracts/keys.h). Lines: a key list (as
 * MILLOM_CPID_KEYS), a CPID, a token (tried as an offerContext, a link
 * signature and a JWT). The list parsed; when it parses, its shape is
 * checked and, with `default` given a fixed secret, the property: a CPID,
 * an offerContext, a link and a JWT issued under the set's current key
 * carry its id (or none for default) and verify under the set. The CPID
 * and the token lines go through each lookup, whatever the set. */
static void fuzz_keys(const uint8_t *d, size_t n) {
    char *f[3];
    size_t k = split_lines(d, n, f, 3);
    keys_set set;
    int at = -2;
    char err[512];
    err[0] = '\0';
    int parsed = f[0] ? keys_parse_list("MILLOM_CPID_KEYS", f[0], &set, &at, err, sizeof err) : -1;
    if (!memchr(err, '\0', sizeof err)) abort();
    if (parsed != 0) {
        if (f[0] && strncmp(err, "MILLOM_CPID_KEYS must be", 24) != 0) abort();
        if (keys_set_one(&set, "fuzz default key") != 0) abort(); /* for the lookups */
    } else {
        if (set.n == 0 || set.n > KEYS_MAX_PER_SET || at < -1 || at >= (int)set.n) abort();
        for (size_t i = 0; i < set.n; i++) {
            const keys_entry *e = &set.e[i];
            if ((int)i == at ? e->kid[0] || e->secret[0]
                             : !keys_kid_ok(e->kid, strlen(e->kid)) || !e->secret[0])
                abort();
            if (keys_set_find(&set, e->kid, strlen(e->kid)) != e) abort();
        }
        if (at >= 0) snprintf(set.e[at].secret, sizeof set.e[at].secret, "fuzz default key");
    }
    const keys_entry *current = &set.e[0];
    size_t kid_len = strlen(current->kid);

    /* CPIDs: issued under the current key, decoded by the set. */
    cpid_config cfg;
    if (cpid_config_init_set(&cfg, &set, 3600) != 0) abort();
    char cpid[CPID_MAX_LEN];
    cpid_info info;
    if (cpid_issue(&cfg, "924542610003", "testserviceprovider", "41006", FUZZ_NOW_MS, cpid,
                   sizeof cpid) != 0 ||
        (kid_len && (strncmp(cpid, current->kid, kid_len) != 0 || cpid[kid_len] != '.')) ||
        (!kid_len && strchr(cpid, '.')) || cpid_decode(&cfg, cpid, FUZZ_NOW_MS, &info) != CPID_OK)
        abort();
    if (f[1]) {
        cpid_status st = cpid_decode(&cfg, f[1], FUZZ_NOW_MS, &info);
        if (st != CPID_OK && st != CPID_EXPIRED && (info.msisdn[0] || info.provider[0])) abort();
    }

    /* offerContexts. */
    offer_context oc, out;
    memset(&oc, 0, sizeof oc);
    snprintf(oc.plan_id, sizeof oc.plan_id, "tp-video-hour");
    snprintf(oc.subscriber, sizeof oc.subscriber, "924542610003");
    snprintf(oc.provider, sizeof oc.provider, "testserviceprovider");
    snprintf(oc.op, sizeof oc.op, "tp");
    snprintf(oc.currency, sizeof oc.currency, "PKR");
    oc.price_minor = 1550;
    oc.expires_at_ms = FUZZ_NOW_MS + 60000;
    char *token = offer_context_sign(&oc, &set);
    if (!token || (kid_len && strncmp(token, current->kid, kid_len) != 0) ||
        offer_context_verify(token, &set, FUZZ_NOW_MS, &out) != 0 ||
        out.price_minor != oc.price_minor)
        abort();
    free(token);
    if (f[2]) (void)offer_context_verify(f[2], &set, FUZZ_NOW_MS, &out);

    /* Signed links: one made here verifies; the token line as a signature. */
    const char *path = "/rnf/testserviceprovider/tp/c,41006/ping";
    char *link = signed_link_make_keys(&set, "", path, NULL, 0, 600, FUZZ_NOW_MS);
    if (!link) abort();
    char signature[128];
    fuzz_query q;
    link_param(link, "uuid", q.uuid, sizeof q.uuid);
    link_param(link, "expirySeconds", q.expiry, sizeof q.expiry);
    link_param(link, "signature", signature, sizeof signature);
    q.signature = signature;
    if ((kid_len && strncmp(signature, current->kid, kid_len) != 0) ||
        signed_link_verify_keys(&set, path, fuzz_query_get, &q, NULL, FUZZ_NOW_MS) !=
            SIGNED_LINK_OK)
        abort();
    free(link);
    if (f[2]) {
        q.signature = f[2];
        int rc = signed_link_verify_keys(&set, path, fuzz_query_get, &q, NULL, FUZZ_NOW_MS);
        if (rc != SIGNED_LINK_OK && rc != SIGNED_LINK_BAD && rc != SIGNED_LINK_EXPIRED) abort();
    }

    /* JWTs: the kid header names the key. */
    auth_client client = {.id = "fuzz", .provider = "testserviceprovider"};
    auth_claims claims;
    char msg[128];
    const long now_s = FUZZ_NOW_MS / 1000;
    char *jwt = auth_token_issue(&client, "cco.dd.data-plan.gen.inquire", current, now_s, 300);
    if (!jwt || auth_token_verify(jwt, &set, now_s, &claims, msg, sizeof msg) != 0 ||
        strcmp(claims.sub, "fuzz") != 0)
        abort();
    free(jwt);
    if (f[2] && auth_token_verify(f[2], &set, now_s, &claims, msg, sizeof msg) != 0 &&
        !memchr(msg, '\0', sizeof msg))
        abort();
    free_lines(f, k);
}

/* The selector byte: one of these letters, or any other byte taken modulo
 * the table (so mutations of the selector stay useful). */
static const char selectors[] = "PVABMRLTFHNQSWCKX";

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
    case 'K': fuzz_keys(d, n); break;
    case 'X': fuzz_correlator(d, n); break;
    }
    return 0;
}
