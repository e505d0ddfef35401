/* shared/patterns/oauth_client.c and the backendAuth wiring of shared/patterns/backend_client.c
 * against an in-process fake token server and a fake operator backend (one
 * shared/plumbing/http_server.c on an ephemeral port). The token server checks the
 * Basic credentials and the form body, counts issues and hands out "t1",
 * "t2", ... with a configurable expires_in; the backend answers 401 unless
 * the bearer token is current. The oauth clock is injected, so nothing
 * depends on wall-clock timing. Works with CK_FORK=no. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "shared/patterns/backend_client.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/oauth_client.h"

#define THREADS 16

/* ---- fake servers ---- */

static struct {
    pthread_mutex_t mu;
    char client_id[64];
    char secret[64];
    char scope[64];
    int expires_in;
    int requests;  /* token requests, good or bad */
    int issued;    /* tokens handed out: "t1".."t<issued>" */
    int valid_min; /* the backend accepts t<n> with n >= valid_min */
    int backend_calls;
    int backend_401;
    char last_auth[512]; /* last Authorization header the backend saw */
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

static http_server *server;
static char base[64];
static char token_url[96];
static atomic_llong fake_now;
static int test_no;

static int64_t fake_clock(void) { return atomic_load(&fake_now); }

static void token_endpoint(http_request *req) {
    size_t len;
    const char *body = http_body(req, &len);
    const char *auth = http_header(req, "Authorization");
    char raw[160], expected[256] = "Basic ";
    int n = snprintf(raw, sizeof raw, "%s:%s", fake.client_id, fake.secret);
    EVP_EncodeBlock((unsigned char *)expected + 6, (const unsigned char *)raw, n);
    char want_body[160];
    if (fake.scope[0])
        snprintf(want_body, sizeof want_body, "grant_type=client_credentials&scope=%s", fake.scope);
    else
        snprintf(want_body, sizeof want_body, "grant_type=client_credentials");
    const char *ct = http_header(req, "Content-Type");

    /* A slow token server, so concurrent callers overlap with the fetch. */
    usleep(50 * 1000);
    pthread_mutex_lock(&fake.mu);
    fake.requests++;
    if (!auth || strcmp(auth, expected) != 0) {
        pthread_mutex_unlock(&fake.mu);
        http_respond_with_header(req, 401, "application/json", "{\"error\":\"invalid_client\"}", 26,
                                 "WWW-Authenticate", "Basic realm=\"fake\"");
        return;
    }
    if (strcmp(http_method(req), "POST") != 0 || !ct ||
        strcmp(ct, "application/x-www-form-urlencoded") != 0 || !body || len != strlen(want_body) ||
        memcmp(body, want_body, len) != 0) {
        pthread_mutex_unlock(&fake.mu);
        http_respond_json(req, 400, json_pack("{s:s}", "error", "invalid_request"));
        return;
    }
    int t = ++fake.issued;
    int exp = fake.expires_in;
    pthread_mutex_unlock(&fake.mu);
    char tok[32];
    snprintf(tok, sizeof tok, "t%d", t);
    http_respond_json(req, 200,
                      json_pack("{s:s, s:s, s:i}", "access_token", tok, "token_type", "Bearer",
                                "expires_in", exp));
}

static void backend(http_request *req) {
    const char *auth = http_header(req, "Authorization");
    pthread_mutex_lock(&fake.mu);
    fake.backend_calls++;
    snprintf(fake.last_auth, sizeof fake.last_auth, "%s", auth ? auth : "");
    int n = 0;
    int ok = auth && sscanf(auth, "Bearer t%d", &n) == 1 && n >= fake.valid_min && n <= fake.issued;
    if (!ok) fake.backend_401++;
    pthread_mutex_unlock(&fake.mu);
    if (!ok) {
        http_respond_json(
            req, 401, json_pack("{s:s, s:s}", "errorType", "UNAUTHORIZED", "message", "bad token"));
        return;
    }
    http_respond_json(req, 200, json_pack("{s:s, s:i}", "balance", "ok", "token", n));
}

static void handle(void *app, http_request *req) {
    (void)app;
    if (strcmp(http_path(req), "/token") == 0)
        token_endpoint(req);
    else
        backend(req);
}

static void setup(void) {
    pthread_mutex_lock(&fake.mu);
    test_no++;
    /* A new client id per test: sources live as long as the process, and an
     * ephemeral port may come back in a later test. */
    snprintf(fake.client_id, sizeof fake.client_id, "millom-%d", test_no);
    snprintf(fake.secret, sizeof fake.secret, "s3cret-%d", test_no);
    snprintf(fake.scope, sizeof fake.scope, "backend.read");
    fake.expires_in = 100;
    fake.requests = fake.issued = fake.backend_calls = fake.backend_401 = 0;
    fake.valid_min = 1;
    fake.last_auth[0] = '\0';
    pthread_mutex_unlock(&fake.mu);
    atomic_store(&fake_now, 1000000);
    oauth_set_clock(fake_clock);
    unsetenv("MILLOM_OAUTH_REFRESH_MARGIN_S");
    char err[256] = "";
    http_server_opts opts = {.bind_addr = "127.0.0.1", .port = 0, .threads = 4, .handler = handle};
    server = http_server_start(&opts, err, sizeof err);
    ck_assert_msg(server != NULL, "server: %s", err);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", http_server_port(server));
    snprintf(token_url, sizeof token_url, "%s/token", base);
}

static void teardown(void) {
    http_server_stop(server);
    server = NULL;
    oauth_set_clock(NULL);
}

static int issued(void) {
    pthread_mutex_lock(&fake.mu);
    int n = fake.issued;
    pthread_mutex_unlock(&fake.mu);
    return n;
}

static oauth_token_source *source(void) {
    oauth_token_source *s = oauth_source_get(token_url, fake.client_id, fake.secret, fake.scope);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* ---- concurrent callers ---- */

typedef struct {
    pthread_barrier_t *barrier;
    oauth_token_source *src;
    const tenant_operator *op; /* backend_get instead when set */
    int rc;
    long status;
    char header[256];
} caller;

static void *call_thread(void *arg) {
    caller *c = arg;
    http_client *hc = http_client_new();
    pthread_barrier_wait(c->barrier);
    if (c->op) {
        backend_request br = {.op = c->op,
                              .resource = "balance",
                              .customer_id = "924542610003",
                              .customer_id_type = "MSISDN",
                              .channel_id = "test",
                              .trans_id = "x",
                              .timeout_ms = 5000};
        http_result res;
        c->rc = backend_get(hc, &br, &res);
        c->status = res.status;
        http_result_free(&res);
    } else {
        c->rc = oauth_authorization(c->src, hc, c->header, sizeof c->header);
    }
    http_client_free(hc);
    return NULL;
}

static void run_concurrently(oauth_token_source *src, const tenant_operator *op,
                             caller out[THREADS]) {
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        out[i] = (caller){.barrier = &barrier, .src = src, .op = op};
        ck_assert_int_eq(pthread_create(&th[i], NULL, call_thread, &out[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
}

static void assert_all_got(caller c[THREADS], const char *header) {
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(c[i].rc, 0);
        ck_assert_str_eq(c[i].header, header);
    }
}

/* ---- tests ---- */

START_TEST(concurrent_first_fetch_issues_once) {
    caller c[THREADS];
    run_concurrently(source(), NULL, c);
    assert_all_got(c, "Authorization: Bearer t1");
    ck_assert_int_eq(issued(), 1);
}
END_TEST

START_TEST(refresh_before_expiry_issues_once_more) {
    /* The margin is read when the source is made (here 10 s). expires_in
     * 100 s: margin = min(10 s, 100 s / 10) = 10 s, so refresh at 90 s. */
    setenv("MILLOM_OAUTH_REFRESH_MARGIN_S", "10", 1);
    oauth_token_source *s = source();
    unsetenv("MILLOM_OAUTH_REFRESH_MARGIN_S");
    caller c[THREADS];
    run_concurrently(s, NULL, c);
    assert_all_got(c, "Authorization: Bearer t1");
    http_client *hc = http_client_new();
    char h[256];
    atomic_store(&fake_now, 1000000 + 89999);
    ck_assert_int_eq(oauth_authorization(s, hc, h, sizeof h), 0);
    ck_assert_str_eq(h, "Authorization: Bearer t1");
    ck_assert_int_eq(issued(), 1);

    atomic_store(&fake_now, 1000000 + 90000);
    run_concurrently(s, NULL, c);
    assert_all_got(c, "Authorization: Bearer t2");
    ck_assert_int_eq(issued(), 2);

    /* A long lifetime: the configured margin (10 s) is the smaller one. */
    pthread_mutex_lock(&fake.mu);
    fake.expires_in = 1000;
    pthread_mutex_unlock(&fake.mu);
    atomic_store(&fake_now, 1000000 + 180000); /* t2 due (90 s + 90 s) */
    ck_assert_int_eq(oauth_authorization(s, hc, h, sizeof h), 0);
    ck_assert_str_eq(h, "Authorization: Bearer t3");
    atomic_store(&fake_now, 1000000 + 180000 + 989999);
    ck_assert_int_eq(oauth_authorization(s, hc, h, sizeof h), 0);
    ck_assert_str_eq(h, "Authorization: Bearer t3");
    ck_assert_int_eq(issued(), 3);
    atomic_store(&fake_now, 1000000 + 180000 + 990000);
    run_concurrently(s, NULL, c);
    assert_all_got(c, "Authorization: Bearer t4");
    ck_assert_int_eq(issued(), 4);
    http_client_free(hc);
}
END_TEST

START_TEST(reuse_within_lifetime) {
    oauth_token_source *s = source();
    ck_assert_ptr_eq(oauth_source_get(token_url, fake.client_id, fake.secret, fake.scope), s);
    http_client *hc = http_client_new();
    char h[256];
    for (int i = 0; i < 50; i++) {
        atomic_store(&fake_now, 1000000 + i * 1000); /* 0 .. 49 s of 90 */
        ck_assert_int_eq(oauth_authorization(s, hc, h, sizeof h), 0);
        ck_assert_str_eq(h, "Authorization: Bearer t1");
    }
    ck_assert_int_eq(issued(), 1);
    pthread_mutex_lock(&fake.mu);
    ck_assert_int_eq(fake.requests, 1);
    pthread_mutex_unlock(&fake.mu);
    /* Invalidating a token that is no longer current changes nothing. */
    oauth_invalidate(s, "t0");
    ck_assert_int_eq(oauth_authorization(s, hc, h, sizeof h), 0);
    ck_assert_int_eq(issued(), 1);
    /* Invalidating the current one (here by its header) forces a fetch. */
    oauth_invalidate(s, h);
    ck_assert_int_eq(oauth_authorization(s, hc, h, sizeof h), 0);
    ck_assert_str_eq(h, "Authorization: Bearer t2");
    ck_assert_int_eq(issued(), 2);
    http_client_free(hc);
}
END_TEST

START_TEST(cached_never_fetches) {
    oauth_token_source *s = source();
    char h[256] = "untouched";
    /* nothing cached yet: no header, and no request made */
    ck_assert_int_eq(oauth_cached_authorization(s, h, sizeof h), -1);
    ck_assert_str_eq(h, "untouched");
    pthread_mutex_lock(&fake.mu);
    ck_assert_int_eq(fake.requests, 0);
    pthread_mutex_unlock(&fake.mu);
    http_client *hc = http_client_new();
    ck_assert_int_eq(oauth_authorization(s, hc, h, sizeof h), 0);
    char cached[256] = "";
    ck_assert_int_eq(oauth_cached_authorization(s, cached, sizeof cached), 0);
    ck_assert_str_eq(cached, "Authorization: Bearer t1");
    /* too small a buffer: -1, untouched */
    char tiny[8] = "x";
    ck_assert_int_eq(oauth_cached_authorization(s, tiny, sizeof tiny), -1);
    ck_assert_str_eq(tiny, "x");
    /* due for a refresh (90 s of 100): no longer served from the cache */
    atomic_store(&fake_now, 1000000 + 90000);
    ck_assert_int_eq(oauth_cached_authorization(s, cached, sizeof cached), -1);
    atomic_store(&fake_now, 1000000);
    /* dropped after a 401: gone from the cache too */
    oauth_invalidate(s, h);
    ck_assert_int_eq(oauth_cached_authorization(s, cached, sizeof cached), -1);
    ck_assert_int_eq(issued(), 1);
    ck_assert_int_eq(oauth_cached_authorization(NULL, cached, sizeof cached), -1);
    http_client_free(hc);
}
END_TEST

static json_t *operator_json(const char *secret_field, const char *secret) {
    return json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "id", "tp", "backendAuth", "tokenUrl",
                     token_url, "clientId", fake.client_id, secret_field, secret, "scope",
                     fake.scope);
}

/* A balance call through backend_get: its status (0: none, why in err).
 * token_refused as offer-resolver's workers set it after the loop's 401. */
static long backend_call_as(const tenant_operator *op, http_client *hc, int token_refused,
                            char *err, size_t errlen) {
    backend_request br = {.op = op,
                          .resource = "balance",
                          .customer_id = "924542610003",
                          .customer_id_type = "MSISDN",
                          .channel_id = "test",
                          .trans_id = "x",
                          .timeout_ms = 5000,
                          .token_refused = token_refused};
    http_result res;
    backend_get(hc, &br, &res);
    snprintf(err, errlen, "%s", res.error);
    http_result_free(&res);
    return res.status;
}

static long backend_call(const tenant_operator *op, http_client *hc, char *err, size_t errlen) {
    return backend_call_as(op, hc, 0, err, errlen);
}

START_TEST(refresh_after_401) {
    setenv("TEST_OAUTH_BACKEND_SECRET", fake.secret, 1);
    tenant_operator op = {.id = "tp",
                          .backend_url = base,
                          .json = operator_json("clientSecretEnv", "TEST_OAUTH_BACKEND_SECRET")};
    http_client *hc = http_client_new();
    char err[256];
    ck_assert_int_eq(backend_call(&op, hc, err, sizeof err), 200);
    ck_assert_int_eq(issued(), 1);
    pthread_mutex_lock(&fake.mu);
    ck_assert_str_eq(fake.last_auth, "Bearer t1");
    fake.valid_min = 2; /* the backend rotates: t1 is refused from now on */
    pthread_mutex_unlock(&fake.mu);

    ck_assert_int_eq(backend_call(&op, hc, err, sizeof err), 200);
    ck_assert_int_eq(issued(), 2);
    pthread_mutex_lock(&fake.mu);
    ck_assert_int_eq(fake.backend_401, 1);
    ck_assert_int_eq(fake.backend_calls, 3);
    ck_assert_str_eq(fake.last_auth, "Bearer t2");
    fake.valid_min = 3;
    pthread_mutex_unlock(&fake.mu);

    /* Concurrent 401s for the same token: one refresh, everyone succeeds. */
    caller c[THREADS];
    run_concurrently(NULL, &op, c);
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(c[i].rc, 0);
        ck_assert_int_eq(c[i].status, 200);
    }
    ck_assert_int_eq(issued(), 3);
    pthread_mutex_lock(&fake.mu);
    /* At least one caller saw the 401 (a late starter may get t3 at once). */
    ck_assert_int_ge(fake.backend_401, 2);
    ck_assert_int_le(fake.backend_401, 1 + THREADS);
    pthread_mutex_unlock(&fake.mu);

    /* A backend that refuses every token: one retry, then the 401 stands. */
    pthread_mutex_lock(&fake.mu);
    fake.valid_min = 1000;
    int before = fake.backend_calls;
    pthread_mutex_unlock(&fake.mu);
    ck_assert_int_eq(backend_call(&op, hc, err, sizeof err), 401);
    ck_assert_int_eq(issued(), 4);
    pthread_mutex_lock(&fake.mu);
    ck_assert_int_eq(fake.backend_calls, before + 2);
    pthread_mutex_unlock(&fake.mu);

    /* Without backendAuth no header and no token request (the sandbox). */
    json_t *plain = json_pack("{s:s}", "id", "tp");
    tenant_operator op2 = {.id = "tp", .backend_url = base, .json = plain};
    char h[64] = "x";
    ck_assert_int_eq(backend_auth_header(&op2, hc, h, sizeof h), 0);
    ck_assert_str_eq(h, "");
    ck_assert_int_eq(backend_call(&op2, hc, err, sizeof err), 401);
    pthread_mutex_lock(&fake.mu);
    ck_assert_str_eq(fake.last_auth, "");
    pthread_mutex_unlock(&fake.mu);
    ck_assert_int_eq(issued(), 4);

    /* backendAuth whose secret variable is unset: nothing is sent. */
    unsetenv("TEST_OAUTH_BACKEND_SECRET");
    ck_assert_int_eq(backend_call(&op, hc, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "TEST_OAUTH_BACKEND_SECRET"));

    json_decref(plain);
    json_decref(op.json);
    http_client_free(hc);
}
END_TEST

/* backend_auth_cached, for offer-resolver's backend loop: the cached
 * token's header or -1, never a fetch; a token in its refresh margin
 * still serves, marked due, until it expires; 0 without backendAuth. */
START_TEST(backend_auth_cached_never_fetches) {
    tenant_operator op = {
        .id = "tp", .backend_url = base, .json = operator_json("clientSecret", fake.secret)};
    http_client *hc = http_client_new();
    char h[BACKEND_AUTH_HEADER_MAX] = "x", err[256];
    int due = -1;
    ck_assert_int_eq(backend_auth_cached(&op, h, sizeof h, &due), -1);
    ck_assert_int_eq(due, 0);
    ck_assert_int_eq(issued(), 0);
    ck_assert_int_eq(backend_call(&op, hc, err, sizeof err), 200);
    ck_assert_int_eq(issued(), 1);
    ck_assert_int_eq(backend_auth_cached(&op, h, sizeof h, &due), 1);
    ck_assert_str_eq(h, "Authorization: Bearer t1");
    ck_assert_int_eq(due, 0);
    /* 95 s of its 100: due for a refresh (margin 10 s), still served */
    atomic_store(&fake_now, 1000000 + 95000);
    ck_assert_int_eq(backend_auth_cached(&op, h, sizeof h, &due), 1);
    ck_assert_str_eq(h, "Authorization: Bearer t1");
    ck_assert_int_eq(due, 1);
    /* expired: no longer */
    atomic_store(&fake_now, 1000000 + 100000);
    ck_assert_int_eq(backend_auth_cached(&op, h, sizeof h, &due), -1);
    atomic_store(&fake_now, 1000000);
    /* A 401 to it drops it: -1 again until someone fetches. */
    ck_assert_int_eq(backend_auth_cached(&op, h, sizeof h, &due), 1);
    backend_auth_rejected(&op, h);
    ck_assert_int_eq(backend_auth_cached(&op, h, sizeof h, &due), -1);
    ck_assert_int_eq(issued(), 1);
    json_t *plain = json_pack("{s:s}", "id", "tp");
    tenant_operator op2 = {.id = "tp", .backend_url = base, .json = plain};
    ck_assert_int_eq(backend_auth_cached(&op2, h, sizeof h, &due), 0);
    ck_assert_str_eq(h, "");
    json_decref(plain);
    json_decref(op.json);
    http_client_free(hc);
}
END_TEST

/* token_refused (the loop's call got a 401 already): one fresh token and
 * one call, no second retry; a refused fresh token is dropped too. */
START_TEST(backend_get_after_a_refused_token) {
    tenant_operator op = {
        .id = "tp", .backend_url = base, .json = operator_json("clientSecret", fake.secret)};
    http_client *hc = http_client_new();
    char h[BACKEND_AUTH_HEADER_MAX], err[256];
    ck_assert_int_eq(backend_call(&op, hc, err, sizeof err), 200);
    pthread_mutex_lock(&fake.mu);
    fake.valid_min = 1000; /* every token refused */
    int calls = fake.backend_calls;
    pthread_mutex_unlock(&fake.mu);
    backend_auth_cached(&op, h, sizeof h, &(int){0});
    backend_auth_rejected(&op, h);
    ck_assert_int_eq(backend_call_as(&op, hc, 1, err, sizeof err), 401);
    ck_assert_int_eq(issued(), 2);
    pthread_mutex_lock(&fake.mu);
    ck_assert_int_eq(fake.backend_calls, calls + 1);
    pthread_mutex_unlock(&fake.mu);
    ck_assert_int_eq(backend_auth_cached(&op, h, sizeof h, &(int){0}), -1);
    json_decref(op.json);
    http_client_free(hc);
}
END_TEST

/* backend_url: every value percent-encoded, empty ones left out, and -1
 * when the URL does not fit. */
START_TEST(backend_url_encodes_and_bounds) {
    tenant_operator op = {.id = "tp", .backend_url = "http://b.example/api"};
    backend_request br = {.op = &op,
                          .resource = "offers",
                          .customer_id = "+92 45",
                          .customer_id_type = "MSISDN",
                          .channel_id = "App",
                          .lang = "en",
                          .trans_id = "t&1",
                          .dealer_code = "",
                          .max_price = "9.99"};
    char url[BACKEND_URL_MAX];
    ck_assert_int_eq(backend_url(&br, url, sizeof url), 0);
    ck_assert_str_eq(url, "http://b.example/api/offers/%2B92%2045?customerIdType=MSISDN"
                          "&channelId=App&lang=en&transId=t%261&maxPrice=9.99");
    char small[40];
    ck_assert_int_eq(backend_url(&br, small, sizeof small), -1);
}
END_TEST

START_TEST(failures) {
    http_client *hc = http_client_new();
    char h[256];
    /* Wrong secret: -1, a message without the secret, nothing cached. */
    oauth_token_source *bad =
        oauth_source_get(token_url, fake.client_id, "wrong-secret", fake.scope);
    ck_assert_ptr_nonnull(bad);
    ck_assert_int_eq(oauth_authorization(bad, hc, h, sizeof h), -1);
    ck_assert_ptr_nonnull(strstr(h, "401"));
    ck_assert_ptr_null(strstr(h, "wrong-secret"));
    ck_assert_int_eq(oauth_authorization(bad, hc, h, sizeof h), -1);
    pthread_mutex_lock(&fake.mu);
    ck_assert_int_eq(fake.requests, 2); /* each call tried: nothing was cached */
    pthread_mutex_unlock(&fake.mu);
    ck_assert_int_eq(issued(), 0);

    /* Concurrent callers share one failing fetch's outcome. */
    caller c[THREADS];
    run_concurrently(bad, NULL, c);
    for (int i = 0; i < THREADS; i++) ck_assert_int_eq(c[i].rc, -1);

    /* The right secret for the same client replaces the wrong one. */
    ck_assert_ptr_eq(oauth_source_get(token_url, fake.client_id, fake.secret, fake.scope), bad);
    ck_assert_int_eq(oauth_authorization(bad, hc, h, sizeof h), 0);
    ck_assert_str_eq(h, "Authorization: Bearer t1");

    /* Bad credentials through backendAuth: backend_get sends nothing. */
    tenant_operator op = {.id = "tp", .backend_url = base, .json = NULL};
    op.json = json_pack("{s:s, s:{s:s, s:s, s:s}}", "id", "tp", "backendAuth", "tokenUrl",
                        token_url, "clientId", "someone-else", "clientSecret", "nope");
    int calls_before;
    pthread_mutex_lock(&fake.mu);
    calls_before = fake.backend_calls;
    pthread_mutex_unlock(&fake.mu);
    char err[256];
    ck_assert_int_eq(backend_call(&op, hc, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "backend auth"));
    ck_assert_ptr_null(strstr(err, "nope"));
    pthread_mutex_lock(&fake.mu);
    ck_assert_int_eq(fake.backend_calls, calls_before);
    pthread_mutex_unlock(&fake.mu);
    json_decref(op.json);

    /* Token server down: -1. */
    char down_url[128];
    snprintf(down_url, sizeof down_url, "%s", token_url);
    http_server_stop(server);
    server = NULL;
    oauth_token_source *down = oauth_source_get(down_url, "down-client", "x", NULL);
    ck_assert_ptr_nonnull(down);
    ck_assert_int_eq(oauth_authorization(down, hc, h, sizeof h), -1);
    ck_assert_ptr_nonnull(strstr(h, "unreachable"));
    /* Missing parts. */
    ck_assert_ptr_null(oauth_source_get(NULL, "a", "b", NULL));
    ck_assert_ptr_null(oauth_source_get(down_url, "", "b", NULL));
    http_client_free(hc);
    char err2[256];
    http_server_opts opts = {.bind_addr = "127.0.0.1", .port = 0, .threads = 4, .handler = handle};
    server = http_server_start(&opts, err2, sizeof err2); /* for teardown */
    ck_assert_ptr_nonnull(server);
}
END_TEST

int main(void) {
    log_init("test_shared_oauth_client");
    http_client_global_init();
    Suite *s = suite_create("shared oauth client");
    TCase *tc = tcase_create("oauth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, concurrent_first_fetch_issues_once);
    tcase_add_test(tc, refresh_before_expiry_issues_once_more);
    tcase_add_test(tc, reuse_within_lifetime);
    tcase_add_test(tc, cached_never_fetches);
    tcase_add_test(tc, refresh_after_401);
    tcase_add_test(tc, backend_auth_cached_never_fetches);
    tcase_add_test(tc, backend_get_after_a_refused_token);
    tcase_add_test(tc, backend_url_encodes_and_bounds);
    tcase_add_test(tc, failures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
