/* mno-sandbox's callback authentication (callback_auth.c): the token URL
 * derived from a callback URL, the settings and the default client id from
 * the tenants file, and the real worker posting async-activation callbacks
 * to a small fake Millom (shared/plumbing/http_server.c on an ephemeral port) that
 * issues tokens at /oauth/v1/token and refuses callbacks without a good
 * one: a token is fetched once and reused, a 401 drops it and the POST is
 * made once more at once with a new token, and without a secret callbacks
 * go without a token as before. Works with CK_FORK=no. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/mno-sandbox/mno_sandbox.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/http_server.h"

#define GOOD "924542610006" /* 2500.00 PKR: enough for three 250.00 async buys */
#define ASYNC_OFFER "tp-data-weekly-async"

/* ---- the fake Millom ---- */

static struct {
    pthread_mutex_t lock;
    int tokens_issued;      /* tok-1, tok-2, ... */
    int valid_token;        /* the one callbacks accept (0: none) */
    int token_requests_bad; /* token requests without Basic credentials or scope */
    int callbacks_ok, callbacks_401, callbacks_without_token;
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void fake_handle(void *app, http_request *req) {
    (void)app;
    const char *path = http_path(req);
    const char *authz = http_header(req, "Authorization");
    pthread_mutex_lock(&fake.lock);
    if (strcmp(path, "/oauth/v1/token") == 0) {
        size_t len;
        const char *body = http_body(req, &len);
        char form[512];
        snprintf(form, sizeof form, "%.*s", (int)len, body ? body : "");
        if (!authz || strncmp(authz, "Basic ", 6) != 0 ||
            !strstr(form, "grant_type=client_credentials") ||
            !strstr(form, "scope=cco.dd.data-plan.inquire"))
            fake.token_requests_bad++;
        int n = ++fake.tokens_issued;
        fake.valid_token = n;
        pthread_mutex_unlock(&fake.lock);
        char answer[160];
        int alen = snprintf(answer, sizeof answer,
                            "{\"access_token\":\"tok-%d\",\"token_type\":\"Bearer\","
                            "\"expires_in\":300}",
                            n);
        http_respond(req, 200, "application/json", answer, (size_t)alen);
        return;
    }
    char want[64];
    snprintf(want, sizeof want, "Bearer tok-%d", fake.valid_token);
    int status = 200;
    if (!authz) {
        fake.callbacks_without_token++;
        status = fake.valid_token ? 401 : 200; /* no tokens issued: the sandbox profile */
    } else if (fake.valid_token && strcmp(authz, want) == 0) {
        fake.callbacks_ok++;
    } else {
        fake.callbacks_401++;
        status = 401;
    }
    pthread_mutex_unlock(&fake.lock);
    http_respond(req, status, "application/json", "{\"status\":\"OK\"}", 15);
}

/* Makes the current token invalid, as a key rotation would. */
static void fake_revoke(void) {
    pthread_mutex_lock(&fake.lock);
    fake.valid_token = -1;
    pthread_mutex_unlock(&fake.lock);
}

static int fake_get(const int *field) {
    pthread_mutex_lock(&fake.lock);
    int v = *field;
    pthread_mutex_unlock(&fake.lock);
    return v;
}

/* ---- fixture: the sandbox (store, worker, HTTP) and the fake Millom ---- */

static char dir[256];
static mno_app app;
static http_server *server, *fake_server;
static http_client *client;
static char base[64], fake_base[64];

static void start(const char *secret) {
    memset(&fake, 0, sizeof fake);
    pthread_mutex_init(&fake.lock, NULL);
    snprintf(dir, sizeof dir, "/tmp/test_mno_sandbox_callback_auth.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("MILLOM_DATA_DIR", dir, 1);
    char err[256] = "";
    http_server_opts fopts = {
        .bind_addr = "127.0.0.1", .port = 0, .threads = 2, .handler = fake_handle};
    fake_server = http_server_start(&fopts, err, sizeof err);
    ck_assert_msg(fake_server != NULL, "fake millom: %s", err);
    snprintf(fake_base, sizeof fake_base, "http://127.0.0.1:%d", http_server_port(fake_server));

    app.store = mno_store_open(4, err, sizeof err);
    ck_assert_msg(app.store != NULL, "store: %s", err);
    app.behaviour = mno_behaviour_new(NULL);
    ck_assert_ptr_nonnull(app.behaviour);
    if (secret)
        setenv("MILLOM_MNO_OAUTH_CLIENT_SECRET", secret, 1);
    else
        unsetenv("MILLOM_MNO_OAUTH_CLIENT_SECRET");
    setenv("MILLOM_MNO_OAUTH_CLIENT_ID", "tp-test", 1);
    mno_callback_cfg cfg;
    mno_callback_cfg_from_env(&cfg);
    cfg.delay_ms = 20;
    cfg.max_attempts = 3;
    cfg.backoff_ms = 20;
    app.activations = mno_activations_new(app.store, &cfg);
    ck_assert_ptr_nonnull(app.activations);
    http_server_opts opts = {
        .bind_addr = "127.0.0.1", .port = 0, .threads = 2, .handler = mno_handle, .app = &app};
    server = http_server_start(&opts, err, sizeof err);
    ck_assert_msg(server != NULL, "server: %s", err);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", http_server_port(server));
    client = http_client_new();
}

static void stop(void) {
    mno_behaviour_shutdown(app.behaviour);
    http_server_stop(server);
    mno_activations_free(app.activations);
    mno_behaviour_free(app.behaviour);
    mno_store_close(app.store);
    http_server_stop(fake_server);
    http_client_free(client);
    unsetenv("MILLOM_MNO_OAUTH_CLIENT_SECRET");
    unsetenv("MILLOM_MNO_OAUTH_CLIENT_ID");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* An async activation whose callback goes to the fake Millom. */
static void activate_async(const char *trans_id) {
    char url[256], body[512];
    snprintf(url, sizeof url, "%s/activate/" GOOD "?customerIdType=MSISDN", base);
    snprintf(body, sizeof body,
             "{\"channelId\":\"App\",\"serviceProviderId\":\"testserviceprovider\","
             "\"offerId\":\"" ASYNC_OFFER "\",\"transId\":\"%s\","
             "\"callbackUrl\":\"%s/activationCallback/tp\"}",
             trans_id, fake_base);
    http_result r = {0};
    http_post(client, url, NULL, "application/json", body, strlen(body), 5000, &r);
    ck_assert_msg(r.status == 200, "activate: %ld %s", r.status, r.body ? r.body : "");
    ck_assert_ptr_nonnull(strstr(r.body, "PENDING"));
    http_result_free(&r);
}

/* Waits (bounded) until the sandbox has no completion or callback queued. */
static void wait_idle(void) {
    for (int i = 0; i < 500 && mno_activations_queued(app.activations) != 0; i++) usleep(10 * 1000);
    ck_assert_int_eq(mno_activations_queued(app.activations), 0);
}

/* The activation's callbackStatus and callbackAttempts. */
static void callback_result(const char *trans_id, long *status, long *attempts) {
    json_t *j = mno_activations_json(app.store, trans_id);
    json_t *a = json_array_get(json_object_get(j, "activations"), 0);
    ck_assert_ptr_nonnull(a);
    *status = (long)json_integer_value(json_object_get(a, "callbackStatus"));
    *attempts = (long)json_integer_value(json_object_get(a, "callbackAttempts"));
    json_decref(j);
}

/* ---- tests ---- */

START_TEST(token_url_from_the_callback_origin) {
    char out[128];
    ck_assert_int_eq(
        mno_token_url_for("http://127.0.0.1:19280/activationCallback/tp", out, sizeof out), 0);
    ck_assert_str_eq(out, "http://127.0.0.1:19280/oauth/v1/token");
    ck_assert_int_eq(
        mno_token_url_for("https://millom.example/callback/v1/tp/?idValue=92&x=1", out, sizeof out),
        0);
    ck_assert_str_eq(out, "https://millom.example/oauth/v1/token");
    ck_assert_int_eq(mno_token_url_for("http://api-edge:8080", out, sizeof out), 0);
    ck_assert_str_eq(out, "http://api-edge:8080/oauth/v1/token");
    ck_assert_int_eq(mno_token_url_for("not a url at all", out, sizeof out), -1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(mno_token_url_for(NULL, out, sizeof out), -1);
    char tiny[16];
    ck_assert_int_eq(mno_token_url_for("http://127.0.0.1:1/cb", tiny, sizeof tiny), -1);
}
END_TEST

START_TEST(settings_and_the_default_client_from_the_tenants_file) {
    /* A tenants file whose enabled tp client is "tp-ops" (tp-demo disabled). */
    json_error_t jerr;
    json_t *t = json_load_file("config/tenants.sandbox.json", 0, &jerr);
    ck_assert_msg(t != NULL, "%s", jerr.text);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(t, "clients"), i, c) {
        const char *op = json_string_value(json_object_get(c, "operator"));
        if (op && strcmp(op, "tp") == 0) json_object_set_new(c, "enabled", json_false());
    }
    json_array_append_new(json_object_get(t, "clients"),
                          json_pack("{s:s, s:s, s:[], s:[s], s:b}", "id", "tp-ops", "operator",
                                    "tp", "secretHashes", "scopes", "cco.dd.data-plan.inquire",
                                    "enabled", 1));
    char path[] = "/tmp/test_mno_callback_auth_tenants.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(json_dump_file(t, path, 0), 0);
    json_decref(t);

    mno_callback_auth a;
    unsetenv("MILLOM_MNO_OAUTH_CLIENT_ID");
    unsetenv("MILLOM_MNO_OAUTH_TOKEN_URL");
    unsetenv("MILLOM_MNO_OAUTH_SCOPE");
    setenv("MILLOM_TENANTS", path, 1);
    /* No secret: no token, the id is only the fallback. */
    unsetenv("MILLOM_MNO_OAUTH_CLIENT_SECRET");
    mno_callback_auth_from_env(&a);
    ck_assert_str_eq(a.client_secret, "");
    ck_assert_str_eq(a.client_id, "tp-demo");
    char hdr[256] = "x";
    ck_assert_int_eq(mno_callback_auth_header(&a, NULL, "http://127.0.0.1:1/cb", hdr, sizeof hdr),
                     0);
    ck_assert_str_eq(hdr, "");
    /* A secret: the tenants file's tp client, the callbacks' scope. */
    setenv("MILLOM_MNO_OAUTH_CLIENT_SECRET", "s3cret", 1);
    mno_callback_auth_from_env(&a);
    ck_assert_str_eq(a.client_id, "tp-ops");
    ck_assert_str_eq(a.client_secret, "s3cret");
    ck_assert_str_eq(a.token_url, "");
    ck_assert_str_eq(a.scope, "cco.dd.data-plan.inquire");
    /* Explicit settings win; an unreadable tenants file falls back. */
    setenv("MILLOM_MNO_OAUTH_CLIENT_ID", "tp-explicit", 1);
    setenv("MILLOM_MNO_OAUTH_TOKEN_URL", "http://millom.example/oauth/v1/token", 1);
    mno_callback_auth_from_env(&a);
    ck_assert_str_eq(a.client_id, "tp-explicit");
    ck_assert_str_eq(a.token_url, "http://millom.example/oauth/v1/token");
    unsetenv("MILLOM_MNO_OAUTH_CLIENT_ID");
    setenv("MILLOM_TENANTS", "/nonexistent/tenants.json", 1);
    mno_callback_auth_from_env(&a);
    ck_assert_str_eq(a.client_id, "tp-demo");
    unsetenv("MILLOM_TENANTS");
    unsetenv("MILLOM_MNO_OAUTH_TOKEN_URL");
    unsetenv("MILLOM_MNO_OAUTH_CLIENT_SECRET");
    unlink(path);
}
END_TEST

START_TEST(callbacks_carry_a_cached_token_and_retry_once_on_401) {
    start("s3cret");
    activate_async("trans-auth-000001");
    wait_idle();
    long status, attempts;
    callback_result("trans-auth-000001", &status, &attempts);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(attempts, 1);
    ck_assert_int_eq(fake_get(&fake.tokens_issued), 1);
    ck_assert_int_eq(fake_get(&fake.token_requests_bad), 0);
    ck_assert_int_eq(fake_get(&fake.callbacks_ok), 1);

    /* The token is reused. */
    activate_async("trans-auth-000002");
    wait_idle();
    ck_assert_int_eq(fake_get(&fake.tokens_issued), 1);
    ck_assert_int_eq(fake_get(&fake.callbacks_ok), 2);

    /* Revoked: 401, a new token at once, the same attempt succeeds. */
    fake_revoke();
    activate_async("trans-auth-000003");
    wait_idle();
    callback_result("trans-auth-000003", &status, &attempts);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(attempts, 1);
    ck_assert_int_eq(fake_get(&fake.callbacks_401), 1);
    ck_assert_int_eq(fake_get(&fake.tokens_issued), 2);
    ck_assert_int_eq(fake_get(&fake.callbacks_ok), 3);
    ck_assert_int_eq(fake_get(&fake.callbacks_without_token), 0);
    stop();
}
END_TEST

START_TEST(without_a_secret_callbacks_go_without_a_token) {
    start(NULL);
    activate_async("trans-noauth-0001");
    wait_idle();
    long status, attempts;
    callback_result("trans-noauth-0001", &status, &attempts);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(fake_get(&fake.callbacks_without_token), 1);
    ck_assert_int_eq(fake_get(&fake.tokens_issued), 0);
    stop();
}
END_TEST

int main(void) {
    http_client_global_init();
    setenv("MILLOM_LOG_LEVEL", "error", 0);
    Suite *s = suite_create("mno_sandbox_callback_auth");
    TCase *tc = tcase_create("callback_auth");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, token_url_from_the_callback_origin);
    tcase_add_test(tc, settings_and_the_default_client_from_the_tenants_file);
    tcase_add_test(tc, callbacks_carry_a_cached_token_and_retry_once_on_401);
    tcase_add_test(tc, without_a_secret_callbacks_go_without_a_token);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
