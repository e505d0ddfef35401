/* api-edge OAuth: client loading and secrets, scope subsets, JWT issue and
 * verification (expired, other key, malformed, alg none, iat/nbf in the
 * future, lifetimes longer than configured), the route table, and token
 * buckets on an injected clock. (Basic and form credentials:
 * test_shared_http_form.c.) */
#include "services/api-edge/auth.h"
#include "services/api-edge/edge.h"

#include "shared/plumbing/crypto.h"

#include <check.h>
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY ((const unsigned char *)"unit test key")
#define KEYLEN 13
#define NOW 1800000000L

static tenants *t;
static auth_clients clients;
static keys_set keys; /* KEY as the default key */
#define KEYS (&keys)

static void setup(void) {
    char err[256];
    ck_assert_int_eq(keys_set_one(&keys, (const char *)KEY), 0);
    t = tenants_load("config/tenants.sandbox.json", err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_msg(auth_clients_load(&clients, t, err, sizeof err) == 0, "%s", err);
}

static void teardown(void) {
    auth_clients_free(&clients);
    tenants_free(t);
}

static const auth_client *client(const char *id) {
    const auth_client *c = auth_clients_find(&clients, id);
    ck_assert_msg(c != NULL, "no client %s", id);
    return c;
}

START_TEST(sandbox_clients_load) {
    const auth_client *sp = client("sp-demo");
    ck_assert_str_eq(sp->provider, "testserviceprovider");
    ck_assert_ptr_null(sp->op);
    ck_assert_int_eq(sp->n_secrets, 2);
    ck_assert(sp->enabled);
    ck_assert(sp->per_second == 50 && sp->burst == 100);
    const auth_client *tp = client("tp-demo");
    ck_assert_str_eq(tp->op, "tp");
    ck_assert(auth_client_has_scope(tp, "millom.mgmt.read"));
    ck_assert(!client("sp-disabled")->enabled);
    ck_assert(client("other-demo")->per_second == 50); /* default */
    ck_assert_ptr_null(auth_clients_find(&clients, "nobody"));
}
END_TEST

START_TEST(secrets_both_rotation_hashes_and_formats) {
    ck_assert(auth_client_check_secret(client("sp-demo"), "sp-demo-secret"));
    ck_assert(auth_client_check_secret(client("sp-demo"), "sp-demo-secret-2"));
    ck_assert(!auth_client_check_secret(client("sp-demo"), "sp-demo-secret-3"));
    ck_assert(!auth_client_check_secret(client("sp-demo"), ""));
    ck_assert(!auth_client_check_secret(client("sp-demo"), "other-demo-secret"));
    ck_assert(auth_client_check_secret(client("other-demo"), "other-demo-secret"));
    ck_assert(auth_client_check_secret(client("other-demo"), "other-demo-secret-2")); /* sha256: */
    /* sha256 of "abc" */
    ck_assert(auth_secret_matches(
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc"));
    ck_assert(!auth_secret_matches(
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abd"));
    ck_assert(!auth_secret_matches("sha256:zz", "abc"));
    ck_assert(!auth_secret_matches("plain:abc", "abc"));
    ck_assert(!auth_secret_matches("pbkdf2-sha256:10:00:00", "abc")); /* too few iterations */
}
END_TEST

START_TEST(bad_client_entries_are_refused) {
    static const char *bad[] = {
        "[{\"serviceProvider\":\"testserviceprovider\",\"secretHashes\":[\"sha256:"
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"],\"scopes\":[]}]",
        "[{\"id\":\"x\",\"serviceProvider\":\"nosuch\",\"secretHashes\":[\"sha256:"
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"],\"scopes\":[]}]",
        "[{\"id\":\"x\",\"serviceProvider\":\"testserviceprovider\",\"operator\":\"tp\","
        "\"secretHashes\":[\"sha256:"
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"],\"scopes\":[]}]",
        "[{\"id\":\"x\",\"operator\":\"tp\",\"secretHashes\":[\"a\",\"b\",\"c\"],\"scopes\":[]}]",
        "[{\"id\":\"x\",\"operator\":\"tp\",\"secretHashes\":[\"plain:x\"],\"scopes\":[]}]",
        "[{\"id\":\"x\",\"operator\":\"tp\",\"secretHashes\":[\"sha256:"
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"],\"scopes\":[],"
        "\"rateLimit\":{\"perSecond\":0}}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *arr = json_loads(bad[i], 0, NULL);
        ck_assert_ptr_nonnull(arr);
        json_t *root = tenants_json(t);
        json_t *saved = json_incref(json_object_get(root, "clients"));
        json_object_set_new(root, "clients", arr);
        auth_clients c;
        char err[256] = "";
        ck_assert_msg(auth_clients_load(&c, t, err, sizeof err) != 0, "bad[%zu] loaded", i);
        ck_assert_msg(strstr(err, "clients[0]") != NULL, "%s", err);
        json_object_set_new(root, "clients", saved);
    }
}
END_TEST

START_TEST(scope_subset_rules) {
    const auth_client *sp = client("sp-demo");
    char out[1024];
    ck_assert_int_eq(auth_scope_resolve(sp, NULL, out, sizeof out), 0);
    ck_assert_str_eq(out, "cco.dd.data-plan.gen.inquire cco.dd.data-plan.gen.activate "
                          "cco.dd.data-plan.gen.register cco.dd.data-plan.gen.webview");
    ck_assert_int_eq(auth_scope_resolve(sp, "  ", out, sizeof out), 0);
    ck_assert(auth_scope_list_has(out, "cco.dd.data-plan.gen.webview"));
    ck_assert_int_eq(auth_scope_resolve(sp, "cco.dd.data-plan.gen.inquire", out, sizeof out), 0);
    ck_assert_str_eq(out, "cco.dd.data-plan.gen.inquire");
    ck_assert_int_eq(
        auth_scope_resolve(sp,
                           " cco.dd.data-plan.gen.activate  "
                           "cco.dd.data-plan.gen.inquire cco.dd.data-plan.gen.activate",
                           out, sizeof out),
        0);
    ck_assert_str_eq(out, "cco.dd.data-plan.gen.activate cco.dd.data-plan.gen.inquire");
    ck_assert_int_eq(auth_scope_resolve(sp, "millom.mgmt.read", out, sizeof out), -1);
    ck_assert_int_eq(
        auth_scope_resolve(sp, "cco.dd.data-plan.gen.inquire millom.mgmt.read", out, sizeof out),
        -1);
    ck_assert_int_eq(auth_scope_resolve(sp, "cco.dd.data-plan.gen", out, sizeof out), -1);
    ck_assert_int_eq(auth_scope_resolve(client("tp-demo"), "millom.mgmt.read", out, sizeof out), 0);
    ck_assert(
        !auth_scope_list_has("cco.dd.data-plan.gen.inquirex", "cco.dd.data-plan.gen.inquire"));
    ck_assert(!auth_scope_list_has("", "a"));
    ck_assert(auth_scope_list_has("b a", "a"));
    /* A route's alternatives: any one granted to the token and the client. */
    const char *either = "cco.dd.data-plan.gen.activate cco.dd.data-plan.gen.inquire";
    ck_assert(auth_scope_granted("cco.dd.data-plan.gen.inquire", sp, either));
    ck_assert(auth_scope_granted("x cco.dd.data-plan.gen.activate", sp, either));
    ck_assert(!auth_scope_granted("cco.dd.data-plan.gen.register", sp, either));
    ck_assert(!auth_scope_granted("millom.mgmt.read", client("tp-demo"), "millom.mgmt.readx x"));
    ck_assert(!auth_scope_granted("cco.dd.data-plan.gen.inquire", client("tp-demo"), either));
}
END_TEST

START_TEST(tokens_issue_and_verify) {
    char *tok =
        auth_token_issue(client("sp-demo"), "cco.dd.data-plan.gen.inquire", &keys.e[0], NOW, 300);
    ck_assert_ptr_nonnull(tok);
    auth_claims c;
    char msg[128];
    ck_assert_int_eq(auth_token_verify(tok, KEYS, NOW + 10, &c, msg, sizeof msg), 0);
    ck_assert_str_eq(c.sub, "sp-demo");
    ck_assert_str_eq(c.sp, "testserviceprovider");
    ck_assert_str_eq(c.op, "");
    ck_assert_str_eq(c.scope, "cco.dd.data-plan.gen.inquire");
    ck_assert_int_eq(c.iat, NOW);
    ck_assert_int_eq(c.exp, NOW + 300);
    /* expired: at exp and after */
    ck_assert_int_eq(auth_token_verify(tok, KEYS, NOW + 300, &c, msg, sizeof msg), -1);
    ck_assert_str_eq(msg, "token expired");
    /* another key */
    keys_set other;
    ck_assert_int_eq(keys_set_one(&other, "other key"), 0);
    ck_assert_int_eq(auth_token_verify(tok, &other, NOW, &c, msg, sizeof msg), -1);
    /* tampered payload */
    char *dot = strchr(tok, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(auth_token_verify(tok, KEYS, NOW, &c, msg, sizeof msg), -1);
    free(tok);
    /* malformed */
    ck_assert_int_eq(auth_token_verify("", KEYS, NOW, &c, msg, sizeof msg), -1);
    ck_assert_int_eq(auth_token_verify("abc", KEYS, NOW, &c, msg, sizeof msg), -1);
    ck_assert_int_eq(auth_token_verify("a.b.c", KEYS, NOW, &c, msg, sizeof msg), -1);
    ck_assert_int_eq(auth_token_verify(NULL, KEYS, NOW, &c, msg, sizeof msg), -1);
    /* operator token */
    tok = auth_token_issue(client("tp-demo"), "millom.mgmt.read", &keys.e[0], NOW, 60);
    ck_assert_int_eq(auth_token_verify(tok, KEYS, NOW, &c, msg, sizeof msg), 0);
    ck_assert_str_eq(c.op, "tp");
    ck_assert_str_eq(c.sp, "");
    free(tok);
}
END_TEST

/* The token's header (its first part) as JSON. Caller decrefs. */
static json_t *header_of(const char *token) {
    char *head = strndup(token, strcspn(token, "."));
    size_t len = 0;
    unsigned char *raw = crypto_b64url_decode(head, &len);
    free(head);
    ck_assert_ptr_nonnull(raw);
    json_t *h = json_loadb((const char *)raw, len, 0, NULL);
    free(raw);
    ck_assert_ptr_nonnull(h);
    return h;
}

/* An HS256 JWT put together here: header and payload JSON as given (so a
 * header libjwt would not write, e.g. a kid twice), signed with secret. */
static char *manual_token(const char *header, const char *payload, const char *secret) {
    char *h = crypto_b64url_encode(header, strlen(header));
    char *p = crypto_b64url_encode(payload, strlen(payload));
    char signed_part[2048];
    snprintf(signed_part, sizeof signed_part, "%s.%s", h, p);
    unsigned char mac[CRYPTO_SHA256_LEN];
    ck_assert_int_eq(
        crypto_hmac_sha256(secret, strlen(secret), signed_part, strlen(signed_part), mac), 0);
    char *sig = crypto_b64url_encode(mac, sizeof mac);
    char *out = malloc(strlen(signed_part) + strlen(sig) + 2);
    sprintf(out, "%s.%s", signed_part, sig);
    free(h);
    free(p);
    free(sig);
    return out;
}

/* Rotation: the default key's tokens have no kid (as before key ids); a
 * key of MILLOM_JWT_KEYS names itself in the kid header, and a verifier
 * uses the key the kid names and no other. */
START_TEST(tokens_carry_their_key_id) {
    keys_set both, two;
    int at;
    char err[256], msg[128];
    ck_assert_int_eq(
        keys_parse_list("MILLOM_JWT_KEYS", "j2:jwt-two,default", &both, &at, err, sizeof err), 0);
    snprintf(both.e[at].secret, sizeof both.e[at].secret, "%s", (const char *)KEY);
    ck_assert_int_eq(keys_parse_list("MILLOM_JWT_KEYS", "j2:jwt-two", &two, &at, err, sizeof err),
                     0);
    const char *scope = "cco.dd.data-plan.gen.inquire";
    char *old = auth_token_issue(client("sp-demo"), scope, &keys.e[0], NOW, 300);
    char *new_ = auth_token_issue(client("sp-demo"), scope, &both.e[0], NOW, 300);
    ck_assert_ptr_nonnull(old);
    ck_assert_ptr_nonnull(new_);
    json_t *h = header_of(old);
    ck_assert_ptr_null(json_object_get(h, "kid"));
    ck_assert_str_eq(json_string_value(json_object_get(h, "alg")), "HS256");
    json_decref(h);
    h = header_of(new_);
    ck_assert_str_eq(json_string_value(json_object_get(h, "kid")), "j2");
    json_decref(h);

    auth_claims c;
    ck_assert_int_eq(auth_token_verify(old, &both, NOW, &c, msg, sizeof msg), 0);
    ck_assert_int_eq(auth_token_verify(new_, &both, NOW, &c, msg, sizeof msg), 0);
    ck_assert_str_eq(c.sub, "sp-demo");
    ck_assert_int_eq(auth_token_verify(new_, &two, NOW, &c, msg, sizeof msg), 0);
    ck_assert_int_eq(auth_token_verify(old, &two, NOW, &c, msg, sizeof msg), -1); /* retired */
    ck_assert_str_eq(msg, "token signed with a key this server does not have");
    ck_assert_int_eq(auth_token_verify(new_, KEYS, NOW, &c, msg, sizeof msg), -1); /* unknown */
    ck_assert_str_eq(msg, "token signed with a key this server does not have");
    free(old);
    free(new_);

    const char *claims = "{\"iss\":\"millom\",\"sub\":\"sp-demo\",\"sp\":"
                         "\"testserviceprovider\",\"exp\":1800000060}";
    struct {
        const char *header, *secret;
        int ok;
    } cases[] = {
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"j2\"}", "jwt-two", 0},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "unit test key", 0},
        /* the id of one key, the signature of another */
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"j2\"}", "unit test key", -1},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "jwt-two", -1},
        /* kids that name nothing: a number, "", default, another id */
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":5}", "unit test key", -1},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"\"}", "unit test key", -1},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"default\"}", "unit test key", -1},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"j3\"}", "jwt-two", -1},
        /* two kids: which one would a reader take? refused */
        {"{\"alg\":\"HS256\",\"kid\":\"x\",\"kid\":\"j2\"}", "jwt-two", -1},
        {"[\"HS256\"]", "unit test key", -1},
        {"not json", "unit test key", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = manual_token(cases[i].header, claims, cases[i].secret);
        int v = auth_token_verify(tok, &both, NOW, &c, msg, sizeof msg);
        ck_assert_msg(v == cases[i].ok, "case %zu: %d (%s)", i, v, msg);
        free(tok);
    }
    ck_assert_int_eq(auth_token_verify("no-dot-at-all", &both, NOW, &c, msg, sizeof msg), -1);
    ck_assert_int_eq(auth_token_verify("a.b.c", NULL, NOW, &c, msg, sizeof msg), -1);
    /* No key, no token. */
    keys_entry empty;
    memset(&empty, 0, sizeof empty);
    ck_assert_ptr_null(auth_token_issue(client("sp-demo"), scope, &empty, NOW, 300));
    ck_assert_ptr_null(auth_token_issue(client("sp-demo"), scope, NULL, NOW, 300));
}
END_TEST

/* A token built with libjwt directly: alg, issuer and claims under test control. */
static char *raw_token(jwt_alg_t alg, const char *iss, long exp, int with_sp) {
    jwt_t *j;
    ck_assert_int_eq(jwt_new(&j), 0);
    if (iss) jwt_add_grant(j, "iss", iss);
    jwt_add_grant(j, "sub", "sp-demo");
    jwt_add_grant(j, "scope", "cco.dd.data-plan.gen.inquire");
    if (with_sp) jwt_add_grant(j, "sp", "testserviceprovider");
    if (exp) jwt_add_grant_int(j, "exp", exp);
    if (alg == JWT_ALG_NONE)
        jwt_set_alg(j, JWT_ALG_NONE, NULL, 0);
    else
        jwt_set_alg(j, alg, KEY, KEYLEN);
    char *s = jwt_encode_str(j);
    jwt_free(j);
    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(tokens_other_algs_issuers_and_claims_are_refused) {
    auth_claims c;
    char msg[128];
    struct {
        jwt_alg_t alg;
        const char *iss;
        long exp;
        int with_sp;
        int ok;
    } cases[] = {
        {JWT_ALG_HS256, "millom", NOW + 60, 1, 0},
        {JWT_ALG_HS256, "millom", NOW - 1, 1, -1}, /* expired */
        {JWT_ALG_HS512, "millom", NOW + 60, 1, -1},
        {JWT_ALG_NONE, "millom", NOW + 60, 1, -1},
        {JWT_ALG_HS256, "someone", NOW + 60, 1, -1},
        {JWT_ALG_HS256, NULL, NOW + 60, 1, -1},
        {JWT_ALG_HS256, "millom", 0, 1, -1},        /* no exp */
        {JWT_ALG_HS256, "millom", NOW + 60, 0, -1}, /* neither sp nor op */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = raw_token(cases[i].alg, cases[i].iss, cases[i].exp, cases[i].with_sp);
        ck_assert_msg(auth_token_verify(tok, KEYS, NOW, &c, msg, sizeof msg) == cases[i].ok,
                      "case %zu", i);
        free(tok);
    }
}
END_TEST

/* A valid HS256 token whose iat, nbf and exp are under test control (0:
 * left out); string_iat puts iat in as a string. */
static char *timed_token(long iat, long nbf, long exp, int string_iat) {
    jwt_t *j;
    ck_assert_int_eq(jwt_new(&j), 0);
    jwt_add_grant(j, "iss", "millom");
    jwt_add_grant(j, "sub", "sp-demo");
    jwt_add_grant(j, "sp", "testserviceprovider");
    if (string_iat)
        jwt_add_grant(j, "iat", "1800000000");
    else if (iat)
        jwt_add_grant_int(j, "iat", iat);
    if (nbf) jwt_add_grant_int(j, "nbf", nbf);
    jwt_add_grant_int(j, "exp", exp);
    jwt_set_alg(j, JWT_ALG_HS256, KEY, KEYLEN);
    char *s = jwt_encode_str(j);
    jwt_free(j);
    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(tokens_from_the_future_or_living_too_long_are_refused) {
    const long ttl = 300, leeway = AUTH_CLOCK_LEEWAY_S;
    struct {
        long iat, nbf, exp;
        int string_iat;
        int verify_ok, lifetime_ok;
    } cases[] = {
        {NOW, 0, NOW + ttl, 0, 0, 0},                     /* as issued */
        {NOW + leeway, NOW + leeway, NOW + ttl, 0, 0, 0}, /* skew within the leeway */
        {NOW + leeway + 1, 0, NOW + 2 * ttl, 0, -1, 0},   /* iat in the future */
        {NOW, NOW + leeway + 1, NOW + ttl, 0, -1, 0},     /* nbf in the future */
        {0, NOW + 3600, NOW + 7200, 0, -1, 0},            /* nbf far ahead, no iat */
        {0, 0, NOW, 1, -1, 0},                            /* iat as a string */
        {NOW, 0, NOW + ttl + leeway, 0, 0, 0},            /* at the lifetime bound */
        {NOW, 0, NOW + ttl + leeway + 1, 0, 0, -1},       /* a little longer */
        {NOW - 60, 0, 4102444800L, 0, 0, -1},             /* exp in 2100 */
        {0, 0, 4102444800L, 0, 0, -1},                    /* exp in 2100, no iat */
        {0, 0, NOW + ttl, 0, 0, 0},                       /* no iat, short */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = timed_token(cases[i].iat, cases[i].nbf, cases[i].exp + (i == 5 ? 60 : 0),
                                cases[i].string_iat);
        auth_claims c;
        char msg[128] = "";
        int v = auth_token_verify(tok, KEYS, NOW, &c, msg, sizeof msg);
        ck_assert_msg(v == cases[i].verify_ok, "case %zu: verify %d (%s)", i, v, msg);
        if (v == 0) {
            int l = auth_token_lifetime_ok(&c, NOW, ttl, msg, sizeof msg);
            ck_assert_msg(l == cases[i].lifetime_ok, "case %zu: lifetime %d (%s)", i, l, msg);
        }
        free(tok);
    }
}
END_TEST

static double fake_now;
static double fake_clock(void) { return fake_now; }

START_TEST(buckets_refill_on_an_injected_clock) {
    fake_now = 1000.0;
    auth_limiter *l = auth_limiter_new(fake_clock);
    int retry = 0;
    /* burst 3 at 2/s: three at once, the fourth waits */
    for (int i = 0; i < 3; i++) ck_assert(auth_limiter_take(l, "c1", 2, 3, &retry));
    ck_assert(!auth_limiter_take(l, "c1", 2, 3, &retry));
    ck_assert_int_eq(retry, 1);
    /* another client has its own bucket */
    ck_assert(auth_limiter_take(l, "c2", 2, 3, &retry));
    fake_now += 0.5; /* one token back */
    ck_assert(auth_limiter_take(l, "c1", 2, 3, &retry));
    ck_assert(!auth_limiter_take(l, "c1", 2, 3, &retry));
    fake_now += 100; /* refills to the burst, not beyond */
    for (int i = 0; i < 3; i++) ck_assert(auth_limiter_take(l, "c1", 2, 3, &retry));
    ck_assert(!auth_limiter_take(l, "c1", 2, 3, &retry));
    /* slow bucket: Retry-After is the whole seconds to the next token */
    ck_assert(auth_limiter_take(l, "slow", 0.1, 1, &retry));
    ck_assert(!auth_limiter_take(l, "slow", 0.1, 1, &retry));
    ck_assert_int_eq(retry, 10);
    fake_now += 4;
    ck_assert(!auth_limiter_take(l, "slow", 0.1, 1, &retry));
    ck_assert_int_eq(retry, 6);
    fake_now += 6;
    ck_assert(auth_limiter_take(l, "slow", 0.1, 1, &retry));
    /* a clock going backwards never adds tokens */
    fake_now -= 50;
    ck_assert(!auth_limiter_take(l, "slow", 0.1, 1, &retry));
    auth_limiter_free(l);
}
END_TEST

static void need(const char *method, const char *path, auth_need_kind kind, const char *scope,
                 const char *sp, const char *op) {
    auth_need n;
    auth_route_need(method, path, &n);
    ck_assert_msg(n.kind == kind, "%s kind", path);
    ck_assert_msg(strcmp(n.scope, scope) == 0, "%s scope %s", path, n.scope);
    ck_assert_msg(strcmp(n.sp, sp) == 0, "%s sp %s", path, n.sp);
    ck_assert_msg(strcmp(n.op, op) == 0, "%s op %s", path, n.op);
}

START_TEST(route_table) {
    const char *inq = "cco.dd.data-plan.gen.inquire";
    need("POST", "/oauth/v1/token", AUTH_OPEN, "", "", "");
    need("GET", "/cpid", AUTH_OPEN, "", "", "");
    need("GET", "/healthz", AUTH_OPEN, "", "", "");
    /* signed links carry their own credential (routes_rnf.c) */
    need("GET", "/rnf/sp1/tp/abc,41001/offers", AUTH_OPEN, "", "", "");
    need("GET", "/rnf/sp1/tp/abc,41001/purchasePlan", AUTH_OPEN, "", "", "");
    need("GET", "/std/sp1/tp/924542610003/balance", AUTH_TOKEN, inq, "sp1", "");
    need("GET", "/std/sp1/924542610003/accountInfo", AUTH_TOKEN, inq, "sp1", "");
    need("GET", "/std/sp1/tp/924542610003/upsellOffer", AUTH_TOKEN, inq, "sp1", "");
    need("POST", "/std/sp1/tp/924542610003/purchasePlan", AUTH_TOKEN,
         "cco.dd.data-plan.gen.activate", "sp1", "");
    need("POST", "/std/sp1/924542610003/register", AUTH_TOKEN, "cco.dd.data-plan.gen.register",
         "sp1", "");
    need("GET", "/std/sp1/nothing", AUTH_TOKEN, "", "sp1", "");
    need("POST", "/sp1/tp/registerCpid", AUTH_TOKEN, "cco.dd.data-plan.gen.register", "sp1", "");
    need("GET", "/mgmt/tp/purchases/x", AUTH_TOKEN, "millom.mgmt.read", "", "tp");
    need("GET", "/mgmt/tp/consents", AUTH_TOKEN, "millom.mgmt.read", "", "tp");
    need("GET", "/mgmt//purchases", AUTH_TOKEN, "millom.mgmt.read", "", "?");
    need("POST", "/activationCallback/tp", AUTH_TOKEN, "cco.dd.data-plan.inquire", "", "tp");
    need("POST", "/callback/v1/tp/x", AUTH_TOKEN, "cco.dd.data-plan.inquire", "", "tp");
    need("POST", "/notify/tp/x", AUTH_TOKEN, "cco.dd.notify.tp.single", "", "tp");
    need("GET", "/whatever", AUTH_TOKEN, "", "", "");
}
END_TEST

int main(void) {
    Suite *s = suite_create("api-edge auth");
    TCase *tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sandbox_clients_load);
    tcase_add_test(tc, secrets_both_rotation_hashes_and_formats);
    tcase_add_test(tc, bad_client_entries_are_refused);
    tcase_add_test(tc, scope_subset_rules);
    tcase_add_test(tc, tokens_issue_and_verify);
    tcase_add_test(tc, tokens_carry_their_key_id);
    tcase_add_test(tc, tokens_other_algs_issuers_and_claims_are_refused);
    tcase_add_test(tc, tokens_from_the_future_or_living_too_long_are_refused);
    tcase_add_test(tc, buckets_refill_on_an_injected_clock);
    tcase_add_test(tc, route_table);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
