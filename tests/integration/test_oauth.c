/* OAuth end to end with MILLOM_AUTH_DISABLED=0: the token endpoint's
 * answers and errors (RFC 6749 §4.4, §5.2), then a matrix that drives every
 * endpoint family with no token, a malformed one, an expired one, one
 * signed with another key, the wrong scope, another tenant's token and a
 * good token; a disabled client's live token; per-client rate limits. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BASE_PORT 18580
/* The stack's JWT key, set in its environment so the test can mint tokens
 * (the secure profile has no known default: shared/contracts/keys.h). */
#define STACK_JWT_KEY "test-oauth-jwt-key"
#define SP "testserviceprovider"
#define FORM "Content-Type: application/x-www-form-urlencoded"

static test_stack stack;
static char edge[64];

/* ---- a small HTTP client that keeps the headers the tests look at ---- */

typedef struct {
    long status;
    char *body;
    size_t len;
    char www_auth[256], cache_control[64], retry_after[16];
} resp;

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
    resp *r = arg;
    char *b = realloc(r->body, r->len + size * n + 1);
    if (!b) return 0;
    memcpy(b + r->len, p, size * n);
    r->body = b;
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

static void keep(const char *line, size_t n, const char *name, char *out, size_t outlen) {
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0) return;
    const char *v = line + k;
    size_t vn = n - k;
    while (vn && (*v == ' ')) v++, vn--;
    while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n')) vn--;
    if (vn >= outlen) vn = outlen - 1;
    memcpy(out, v, vn);
    out[vn] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *arg) {
    resp *r = arg;
    keep(p, size * n, "WWW-Authenticate:", r->www_auth, sizeof r->www_auth);
    keep(p, size * n, "Cache-Control:", r->cache_control, sizeof r->cache_control);
    keep(p, size * n, "Retry-After:", r->retry_after, sizeof r->retry_after);
    return size * n;
}

/* method path on api-edge; bearer (NULL: none) or a whole Authorization
 * value in authz; extra header may be NULL. */
static void request(const char *method, const char *path, const char *authz, const char *extra,
                    const char *body, resp *r) {
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    char url[512], h[4400];
    snprintf(url, sizeof url, "%s%s", edge, path);
    struct curl_slist *hs = NULL;
    if (authz) {
        snprintf(h, sizeof h, "Authorization: %s", authz);
        hs = curl_slist_append(hs, h);
    }
    if (extra) hs = curl_slist_append(hs, extra);
    if (body && !extra) hs = curl_slist_append(hs, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(c);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
}

static void resp_free(resp *r) { free(r->body); }

static const char *json_field(const resp *r, const char *name, char *out, size_t outlen) {
    out[0] = '\0';
    json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *v = json_string_value(json_object_get(j, name));
    if (v) snprintf(out, outlen, "%s", v);
    json_decref(j);
    return out;
}

/* ---- tokens ---- */

static char *basic(const char *id, const char *secret) {
    char raw[256];
    snprintf(raw, sizeof raw, "%s:%s", id, secret);
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(raw);
    char *out = calloc(1, 16 + 4 * ((n + 2) / 3) + 1);
    strcpy(out, "Basic ");
    char *o = out + 6;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)(unsigned char)raw[i] << 16;
        if (i + 1 < n) v |= (unsigned)(unsigned char)raw[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)raw[i + 2];
        *o++ = tbl[(v >> 18) & 63];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    return out;
}

/* A token from the endpoint (scope NULL: all of the client's); caller frees. */
static char *fetch_token(const char *id, const char *secret, const char *scope) {
    char *b = basic(id, secret);
    char body[512];
    snprintf(body, sizeof body, "grant_type=client_credentials%s%s", scope ? "&scope=" : "",
             scope ? scope : "");
    resp r;
    request("POST", "/oauth/v1/token", b, FORM, body, &r);
    free(b);
    ck_assert_msg(r.status == 200, "token for %s: %ld %s", id, r.status, r.body);
    char tok[4096];
    json_field(&r, "access_token", tok, sizeof tok);
    resp_free(&r);
    ck_assert(tok[0]);
    return strdup(tok);
}

/* A token minted here with libjwt: any key, sub, owner, exp. */
static char *mint(const char *key, const char *sub, const char *sp, const char *op,
                  const char *scope, long exp_from_now) {
    jwt_t *j;
    ck_assert_int_eq(jwt_new(&j), 0);
    long now = (long)time(NULL);
    jwt_add_grant(j, "iss", "millom");
    jwt_add_grant(j, "sub", sub);
    jwt_add_grant(j, "scope", scope);
    if (sp) jwt_add_grant(j, "sp", sp);
    if (op) jwt_add_grant(j, "op", op);
    jwt_add_grant_int(j, "iat", now - 600);
    jwt_add_grant_int(j, "exp", now + exp_from_now);
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)key, (int)strlen(key));
    char *s = jwt_encode_str(j);
    jwt_free(j);
    ck_assert_ptr_nonnull(s);
    return s;
}

static char *bearer(const char *tok) {
    char *s = malloc(strlen(tok) + 8);
    sprintf(s, "Bearer %s", tok);
    return s;
}

/* ---- token endpoint ---- */

static void token_call(const char *authz, const char *ctype, const char *body, resp *r) {
    request("POST", "/oauth/v1/token", authz, ctype, body, r);
}

static void expect_oauth_error(resp *r, long status, const char *error) {
    char e[64];
    ck_assert_msg(r->status == status, "status %ld (%s), want %ld", r->status, r->body, status);
    ck_assert_str_eq(json_field(r, "error", e, sizeof e), error);
    if (status == 401) ck_assert_str_eq(r->www_auth, "Basic realm=\"millom\"");
    resp_free(r);
}

START_TEST(token_endpoint_good_basic_and_form) {
    char *b = basic("sp-demo", "sp-demo-secret");
    resp r;
    token_call(b, FORM, "grant_type=client_credentials", &r);
    free(b);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.cache_control, "no-store");
    json_t *j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "token_type")), "Bearer");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "expires_in")), 300);
    ck_assert_str_eq(json_string_value(json_object_get(j, "scope")),
                     "cco.dd.data-plan.gen.inquire cco.dd.data-plan.gen.activate "
                     "cco.dd.data-plan.gen.register cco.dd.data-plan.gen.webview");
    char *auth = bearer(json_string_value(json_object_get(j, "access_token")));
    json_decref(j);
    resp_free(&r);
    request("GET", "/std/" SP "/tp/924542610003/balance", auth, NULL, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    resp_free(&r);
    free(auth);

    /* form credentials, with a narrower scope ('+' is a space) */
    token_call(NULL, FORM,
               "grant_type=client_credentials&client_id=sp-demo&client_secret=sp-demo-secret"
               "&scope=cco.dd.data-plan.gen.inquire+cco.dd.data-plan.gen.activate",
               &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    char scope[256];
    ck_assert_str_eq(json_field(&r, "scope", scope, sizeof scope),
                     "cco.dd.data-plan.gen.inquire cco.dd.data-plan.gen.activate");
    resp_free(&r);

    /* the rotation secret works too, and the sha256 form of other-demo's second */
    free(fetch_token("sp-demo", "sp-demo-secret-2", NULL));
    free(fetch_token("other-demo", "other-demo-secret-2", NULL));
    free(fetch_token("tp-demo", "tp-demo-secret", "millom.mgmt.read"));
}
END_TEST

START_TEST(token_endpoint_errors) {
    resp r;
    char *b = basic("sp-demo", "wrong-secret");
    token_call(b, FORM, "grant_type=client_credentials", &r);
    free(b);
    expect_oauth_error(&r, 401, "invalid_client");

    b = basic("nobody", "sp-demo-secret");
    token_call(b, FORM, "grant_type=client_credentials", &r);
    free(b);
    expect_oauth_error(&r, 401, "invalid_client");

    token_call(NULL, FORM, "grant_type=client_credentials&client_id=sp-demo&client_secret=x", &r);
    expect_oauth_error(&r, 401, "invalid_client");

    token_call(NULL, FORM, "grant_type=client_credentials", &r); /* no credentials */
    expect_oauth_error(&r, 401, "invalid_client");

    b = basic("sp-disabled", "disabled-demo-secret");
    token_call(b, FORM, "grant_type=client_credentials", &r);
    expect_oauth_error(&r, 401, "invalid_client");

    token_call("Basic !!!!", FORM, "grant_type=client_credentials", &r);
    expect_oauth_error(&r, 401, "invalid_client");
    free(b);

    b = basic("sp-demo", "sp-demo-secret");
    token_call(b, FORM, "grant_type=client_credentials&scope=millom.mgmt.read", &r);
    expect_oauth_error(&r, 400, "invalid_scope");
    token_call(b, FORM, "grant_type=client_credentials&scope=cco.dd.data-plan.gen.inquire+x", &r);
    expect_oauth_error(&r, 400, "invalid_scope");
    token_call(b, FORM, "grant_type=password&username=a&password=b", &r);
    expect_oauth_error(&r, 400, "unsupported_grant_type");
    token_call(b, FORM, "scope=cco.dd.data-plan.gen.inquire", &r);
    expect_oauth_error(&r, 400, "invalid_request");
    token_call(b, FORM, "grant_type=client_credentials&grant_type=client_credentials", &r);
    expect_oauth_error(&r, 400, "invalid_request");
    token_call(b, "Content-Type: application/json", "{\"grant_type\":\"client_credentials\"}", &r);
    expect_oauth_error(&r, 400, "invalid_request");
    token_call(b, FORM, "grant_type=client_credentials&client_secret=sp-demo-secret", &r);
    expect_oauth_error(&r, 400, "invalid_request"); /* two ways of authenticating */
    free(b);

    request("GET", "/oauth/v1/token", NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    resp_free(&r);
}
END_TEST

/* ---- the matrix ---- */

typedef struct {
    const char *name, *method, *path, *body;
    int operator_side; /* 1: an operator's endpoint (tp-demo), 0: a provider's */
    const char *scope; /* what the endpoint needs */
    const char *wrong; /* a scope of the same client that is not enough */
    long good_status;  /* what a good token gets (the route's own answer) */
} endpoint;

static const endpoint endpoints[] = {
    {"balance", "GET", "/std/" SP "/tp/924542610003/balance", NULL, 0,
     "cco.dd.data-plan.gen.inquire", "cco.dd.data-plan.gen.webview", 200},
    {"accountInfo", "GET", "/std/" SP "/924542610003/accountInfo", NULL, 0,
     "cco.dd.data-plan.gen.inquire", "cco.dd.data-plan.gen.activate", 200},
    {"upsellOffer", "GET", "/std/" SP "/tp/924542610003/upsellOffer", NULL, 0,
     "cco.dd.data-plan.gen.inquire", "cco.dd.data-plan.gen.register", 200},
    {"purchasePlan", "POST", "/std/" SP "/tp/924542610003/purchasePlan", "{}", 0,
     "cco.dd.data-plan.gen.activate", "cco.dd.data-plan.gen.inquire", 400},
    {"register", "POST", "/std/" SP "/924542610003/register", "{}", 0,
     "cco.dd.data-plan.gen.register", "cco.dd.data-plan.gen.inquire", 400},
    {"mgmt purchases", "GET", "/mgmt/tp/purchases/no-such-transid-0001", NULL, 1,
     "millom.mgmt.read", "cco.dd.data-plan.inquire", 404},
    {"mgmt consents", "GET", "/mgmt/tp/consents?subscriberId=924542610003", NULL, 1,
     "millom.mgmt.read", "cco.dd.notify.tp.single", 200},
    {"activationCallback", "POST", "/activationCallback/tp", "{}", 1, "cco.dd.data-plan.inquire",
     "millom.mgmt.read", 400},
    {"notify", "POST", "/notify/tp/v1/single?idValue=923001110009&idType=MSISDN", "{}", 1,
     "cco.dd.notify.tp.single", "millom.mgmt.read", 400},
    {"notify bulk", "POST", "/notify/tp/v1/bulk", "{}", 1, "cco.dd.notify.tp.bulk",
     "cco.dd.notify.tp.single", 400},
};

static void expect(const endpoint *ep, const char *what, const char *authz, long status,
                   const char *cause, const char *www) {
    resp r;
    request(ep->method, ep->path, authz, NULL, ep->body, &r);
    ck_assert_msg(r.status == status, "%s with %s: %ld %s (want %ld)", ep->name, what, r.status,
                  r.body ? r.body : "", status);
    if (cause) {
        char c[64];
        ck_assert_msg(strcmp(json_field(&r, "cause", c, sizeof c), cause) == 0,
                      "%s with %s: cause %s", ep->name, what, c);
    }
    if (www)
        ck_assert_msg(strcmp(r.www_auth, www) == 0, "%s with %s: WWW-Authenticate %s", ep->name,
                      what, r.www_auth);
    resp_free(&r);
}

START_TEST(matrix_over_every_endpoint_family) {
    const char *bare = "Bearer realm=\"millom\"";
    const char *invalid = "Bearer realm=\"millom\", error=\"invalid_token\"";
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        const endpoint *ep = &endpoints[i];
        const char *id = ep->operator_side ? "tp-demo" : "sp-demo";
        const char *secret = ep->operator_side ? "tp-demo-secret" : "sp-demo-secret";
        const char *sp = ep->operator_side ? NULL : SP;
        const char *op = ep->operator_side ? "tp" : NULL;

        expect(ep, "no token", NULL, 401, "UNAUTHORIZED", bare);
        expect(ep, "Basic credentials", "Basic c3AtZGVtbzpzcC1kZW1vLXNlY3JldA==", 401,
               "UNAUTHORIZED", bare);
        expect(ep, "malformed token", "Bearer not.a.jwt", 401, "UNAUTHORIZED", invalid);
        expect(ep, "empty bearer", "Bearer ", 401, "UNAUTHORIZED", NULL);

        char *t = mint(STACK_JWT_KEY, id, sp, op, ep->scope, -60);
        char *a = bearer(t);
        expect(ep, "expired token", a, 401, "UNAUTHORIZED", invalid);
        free(t), free(a);

        t = mint("another key entirely", id, sp, op, ep->scope, 300);
        a = bearer(t);
        expect(ep, "token under another key", a, 401, "UNAUTHORIZED", invalid);
        free(t), free(a);

        t = fetch_token(id, secret, ep->wrong);
        a = bearer(t);
        expect(ep, "wrong scope", a, 403, "NOT_ALLOWED", NULL);
        free(t), free(a);

        /* another tenant: otherprovider's full token on a provider path,
         * a provider's token on an operator path */
        t = fetch_token("other-demo", "other-demo-secret", NULL);
        a = bearer(t);
        expect(ep, "another provider's token", a, 403, "NOT_ALLOWED", NULL);
        free(t), free(a);
        if (ep->operator_side) {
            /* an operator token whose claims name another operator (the
             * key is right, but the client is tp's): refused */
            t = mint(STACK_JWT_KEY, "tp-demo", NULL, "xx", ep->scope, 300);
            a = bearer(t);
            expect(ep, "token naming another operator", a, 401, "UNAUTHORIZED", invalid);
            free(t), free(a);
        } else {
            t = fetch_token("tp-demo", "tp-demo-secret", NULL);
            a = bearer(t);
            expect(ep, "an operator's token", a, 403, "NOT_ALLOWED", NULL);
            free(t), free(a);
        }

        t = fetch_token(id, secret, ep->scope);
        a = bearer(t);
        expect(ep, "good token", a, ep->good_status, NULL, NULL);
        free(t), free(a);
    }
}
END_TEST

START_TEST(disabled_client_live_token_is_refused) {
    char *t = mint(STACK_JWT_KEY, "sp-disabled", SP, NULL, "cco.dd.data-plan.gen.inquire", 300);
    char *a = bearer(t);
    resp r;
    request("GET", "/std/" SP "/tp/924542610003/balance", a, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq(r.www_auth, "Bearer realm=\"millom\", error=\"invalid_token\"");
    resp_free(&r);
    free(t), free(a);
    /* a client nobody configured */
    t = mint(STACK_JWT_KEY, "ghost", SP, NULL, "cco.dd.data-plan.gen.inquire", 300);
    a = bearer(t);
    request("GET", "/std/" SP "/tp/924542610003/balance", a, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    resp_free(&r);
    free(t), free(a);
}
END_TEST

START_TEST(open_paths_stay_open) {
    resp r;
    request("GET", "/healthz", NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    request("GET", "/cpid?app=" SP, NULL, "X-MSISDN: 924542610003", NULL, &r);
    ck_assert_msg(r.status != 401 && r.status != 403, "/cpid: %ld", r.status);
    resp_free(&r);
    request("GET", "/nothing/here", NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 401); /* unknown paths need a token before their 404 */
    resp_free(&r);
}
END_TEST

/* sp-limited: burst 2, one token per 20 s, so the third request within
 * 20 s is refused whatever the machine's speed. */
START_TEST(rate_limit_per_client) {
    char *t = fetch_token("sp-limited", "limited-demo-secret", NULL);
    char *a = bearer(t);
    resp r;
    for (int i = 0; i < 2; i++) {
        request("GET", "/std/" SP "/tp/924542610003/balance", a, NULL, NULL, &r);
        ck_assert_msg(r.status == 200, "request %d: %ld %s", i, r.status, r.body);
        resp_free(&r);
    }
    request("GET", "/std/" SP "/tp/924542610003/balance", a, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 429);
    char c[64];
    ck_assert_str_eq(json_field(&r, "cause", c, sizeof c), "TOO_MANY_REQUESTS");
    ck_assert_msg(atoi(r.retry_after) >= 1 && atoi(r.retry_after) <= 20, "Retry-After %s",
                  r.retry_after);
    resp_free(&r);
    /* other clients are not affected */
    char *t2 = fetch_token("sp-demo", "sp-demo-secret", NULL);
    char *a2 = bearer(t2);
    request("GET", "/std/" SP "/tp/924542610003/balance", a2, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    free(t), free(a), free(t2), free(a2);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Every request here comes from 127.0.0.1: the per-address budget
     * (40 at once by default, test_token_limits' subject) would refuse a
     * fast build's matrix part way, and only a slow (sanitized) one pass. */
    const char *env[] = {"MILLOM_AUTH_DISABLED=0", "MILLOM_JWT_KEY=" STACK_JWT_KEY,
                         "MILLOM_TOKEN_BURST_PER_IP=1000", NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);

    Suite *s = suite_create("oauth");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, token_endpoint_good_basic_and_form);
    tcase_add_test(tc, token_endpoint_errors);
    tcase_add_test(tc, matrix_over_every_endpoint_family);
    tcase_add_test(tc, disabled_client_live_token_is_refused);
    tcase_add_test(tc, open_paths_stay_open);
    tcase_add_test(tc, rate_limit_per_client);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
