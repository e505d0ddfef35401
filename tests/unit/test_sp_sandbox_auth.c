/* sp-sandbox as a provider that checks Millom's webhooks
 * (services/sp-sandbox/provider_auth.c, routes_token.c), over HTTP on an
 * ephemeral port: its token endpoint (client credentials in Basic or the
 * form, every refusal of RFC 6749 §5.2, a simulated outage), and the
 * receiving routes with a bearer token and a Standard Webhooks signature
 * required: a good request is accepted and recorded as verified; no
 * token, a foreign or revoked token, a tampered body, an old timestamp and
 * another key's signature are refused with 401 and recorded with the
 * reason. Also the secrets setting's parser. Works with CK_FORK=no. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/sp-sandbox/sp_sandbox.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/service.h"

#define SECRET_A "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define SECRET_B "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define CLIENT "millom"
#define CLIENT_SECRET "sp-client-secret"
/* base64("millom:sp-client-secret") */
#define BASIC_OK "Authorization: Basic bWlsbG9tOnNwLWNsaWVudC1zZWNyZXQ="
/* base64("millom:wrong") */
#define BASIC_WRONG "Authorization: Basic bWlsbG9tOndyb25n"
#define BODY "{\"transactionId\":\"tx-auth-1\",\"appId\":\"facebook\"}"

static char dir[256];
static sp_app app;
static http_server *server;
static http_client *client;
static char base[64];
static webhook_key key_a, key_b;

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/test_sp_sandbox_auth.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("MILLOM_DATA_DIR", dir, 1);
    char err[256] = "";
    sp_auth_cfg cfg = {0};
    ck_assert_int_eq(sp_auth_parse_secrets(SECRET_A, &cfg, err, sizeof err), 0);
    snprintf(cfg.client_id, sizeof cfg.client_id, CLIENT);
    snprintf(cfg.client_secret, sizeof cfg.client_secret, CLIENT_SECRET);
    app.auth = sp_auth_new(&cfg);
    ck_assert_ptr_nonnull(app.auth);
    ck_assert_int_eq(webhook_key_parse(SECRET_A, &key_a, err, sizeof err), 0);
    ck_assert_int_eq(webhook_key_parse(SECRET_B, &key_b, err, sizeof err), 0);
    app.store = sp_store_open(err, sizeof err);
    ck_assert_msg(app.store != NULL, "store: %s", err);
    app.behaviour = sp_behaviour_new();
    ck_assert_ptr_nonnull(app.behaviour);
    http_server_opts opts = {
        .bind_addr = "127.0.0.1", .port = 0, .threads = 1, .handler = sp_handle, .app = &app};
    server = http_server_start(&opts, err, sizeof err);
    ck_assert_msg(server != NULL, "server: %s", err);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", http_server_port(server));
    client = http_client_new();
}

static void teardown(void) {
    sp_behaviour_shutdown(app.behaviour);
    http_server_stop(server);
    sp_behaviour_free(app.behaviour);
    sp_store_close(app.store);
    sp_auth_free(app.auth);
    http_client_free(client);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[320];
        snprintf(path, sizeof path, "%s/sp-sandbox.db%s", dir, suffix[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* ---- helpers ---- */

typedef struct {
    long status;
    json_t *json;
} answer;

static answer post(const char *path, const char *content_type, const char *body,
                   const char *const *headers) {
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    http_result r = {0};
    http_post(client, url, headers, content_type, body, strlen(body), 10000, &r);
    answer a = {r.status, r.status ? json_loads(r.body, 0, NULL) : NULL};
    http_result_free(&r);
    return a;
}

static const char *error_of(const answer *a) {
    return json_string_value(json_object_get(a->json, "error"));
}

/* A token from the endpoint (the test fails without one). */
static void get_token(char *auth, size_t len) {
    const char *h[] = {BASIC_OK, NULL};
    answer a = post("/oauth/token", "application/x-www-form-urlencoded",
                    "grant_type=client_credentials&scope=notifications", h);
    ck_assert_int_eq(a.status, 200);
    const char *tok = json_string_value(json_object_get(a.json, "access_token"));
    ck_assert_ptr_nonnull(tok);
    snprintf(auth, len, "Authorization: Bearer %s", tok);
    json_decref(a.json);
}

/* POSTs body to /callbacks with a token header (NULL: none), signed with
 * key (NULL: no signature headers) over sign_body at timestamp ts. */
static answer webhook(const char *auth, const webhook_key *key, long long ts, const char *sign_body,
                      const char *body) {
    char sig[WEBHOOK_SIGNATURE_HEADER_MAX], h_id[64], h_ts[64], h_sig[64 + sizeof sig];
    const char *headers[5] = {NULL};
    size_t n = 0;
    if (auth) headers[n++] = auth;
    if (key) {
        ck_assert_int_eq(webhook_signature_header(key, 1, "77", ts, sign_body, strlen(sign_body),
                                                  sig, sizeof sig),
                         0);
        snprintf(h_id, sizeof h_id, "webhook-id: 77");
        snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", ts);
        snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
        headers[n++] = h_id;
        headers[n++] = h_ts;
        headers[n++] = h_sig;
    }
    return post("/callbacks", "application/json", body, headers);
}

/* The last record /admin/received lists. */
static json_t *last_record(void) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/received", base);
    http_result r = {0};
    http_get(client, url, NULL, 10000, &r);
    ck_assert_int_eq(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    http_result_free(&r);
    json_t *list = json_object_get(j, "received");
    ck_assert_int_gt(json_array_size(list), 0);
    json_t *rec = json_incref(json_array_get(list, json_array_size(list) - 1));
    json_decref(j);
    return rec;
}

static void assert_refused(answer a, const char *why) {
    ck_assert_int_eq(a.status, 401);
    ck_assert_msg(error_of(&a) && strstr(error_of(&a), why), "answer %s, wanted \"%s\"",
                  error_of(&a), why);
    json_decref(a.json);
    json_t *rec = last_record();
    ck_assert_int_eq(json_integer_value(json_object_get(rec, "status")), 401);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(rec, "error")), why));
    json_decref(rec);
}

/* ---- tests ---- */

START_TEST(token_endpoint) {
    char auth[128];
    get_token(auth, sizeof auth);
    ck_assert_uint_eq(strlen(auth), strlen("Authorization: Bearer ") + 43);

    /* form credentials work too */
    answer a = post(
        "/oauth/token", "application/x-www-form-urlencoded",
        "grant_type=client_credentials&client_id=" CLIENT "&client_secret=" CLIENT_SECRET, NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(a.json, "token_type")), "Bearer");
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "expires_in")), SP_TOKEN_TTL_S);
    json_decref(a.json);

    static const struct {
        const char *header, *content_type, *body;
        long status;
        const char *error;
    } bad[] = {
        {BASIC_WRONG, "application/x-www-form-urlencoded", "grant_type=client_credentials", 401,
         "invalid_client"},
        {NULL, "application/x-www-form-urlencoded", "grant_type=client_credentials", 401,
         "invalid_client"},
        {BASIC_OK, "application/x-www-form-urlencoded", "scope=x", 400, "invalid_request"},
        {BASIC_OK, "application/x-www-form-urlencoded", "grant_type=password", 400,
         "unsupported_grant_type"},
        {BASIC_OK, "application/x-www-form-urlencoded",
         "grant_type=client_credentials&client_secret=" CLIENT_SECRET, 400, "invalid_request"},
        {BASIC_OK, "application/json", "{}", 400, "invalid_request"},
        {BASIC_OK, "application/x-www-form-urlencoded",
         "grant_type=client_credentials&grant_type=client_credentials", 400, "invalid_request"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *h[] = {bad[i].header, NULL};
        a = post("/oauth/token", bad[i].content_type, bad[i].body, h);
        ck_assert_msg(a.status == bad[i].status, "case %zu: %ld", i, a.status);
        ck_assert_str_eq(error_of(&a), bad[i].error);
        json_decref(a.json);
    }

    /* a token endpoint that is down */
    sp_behaviour_cfg down = {.token_fail_status = 503};
    sp_behaviour_set(app.behaviour, &down);
    const char *h[] = {BASIC_OK, NULL};
    a = post("/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials",
             h);
    ck_assert_int_eq(a.status, 503);
    json_decref(a.json);
    sp_behaviour_reset(app.behaviour);
    get_token(auth, sizeof auth);
}
END_TEST

START_TEST(webhooks_accepted_and_refused) {
    char auth[128];
    get_token(auth, sizeof auth);
    long long now = now_ms() / 1000;

    answer a = webhook(auth, &key_a, now, BODY, BODY);
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    json_t *rec = last_record();
    json_t *verified = json_object_get(rec, "verified");
    ck_assert_int_eq(json_array_size(verified), 2);
    ck_assert_str_eq(json_string_value(json_array_get(verified, 0)), "token");
    ck_assert_str_eq(json_string_value(json_array_get(verified, 1)), "signature");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "webhookId")), "77");
    ck_assert_ptr_nonnull(json_object_get(rec, "webhookSignature"));
    ck_assert_str_eq(json_string_value(json_object_get(rec, "transactionId")), "tx-auth-1");
    json_decref(rec);

    assert_refused(webhook(NULL, &key_a, now, BODY, BODY), "bearer token: none");
    assert_refused(webhook("Authorization: Bearer not-one-of-ours", &key_a, now, BODY, BODY),
                   "bearer token: not one this provider issued");
    assert_refused(webhook(auth, NULL, now, BODY, BODY), "signature: webhook-id");
    assert_refused(webhook(auth, &key_a, now, BODY, "{\"transactionId\":\"tx-auth-2\"}"),
                   "signature: no webhook-signature matches");
    assert_refused(webhook(auth, &key_b, now, BODY, BODY),
                   "signature: no webhook-signature matches");
    assert_refused(webhook(auth, &key_a, now - 301, BODY, BODY),
                   "signature: webhook-timestamp is too old");
    assert_refused(webhook(auth, &key_a, now + 400, BODY, BODY),
                   "signature: webhook-timestamp is in the future");

    /* revoked: the same token is refused, a new one works */
    ck_assert_int_ge(sp_auth_revoke_all(app.auth), 1);
    assert_refused(webhook(auth, &key_a, now, BODY, BODY), "bearer token: not one");
    get_token(auth, sizeof auth);
    a = webhook(auth, &key_a, now, BODY, BODY);
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
}
END_TEST

START_TEST(secrets_setting) {
    sp_auth_cfg cfg = {0};
    char err[200];
    ck_assert_int_eq(sp_auth_parse_secrets("", &cfg, err, sizeof err), 0);
    ck_assert_uint_eq(cfg.n_keys, 0);
    ck_assert_int_eq(sp_auth_parse_secrets(" " SECRET_A ", " SECRET_B " ", &cfg, err, sizeof err),
                     0);
    ck_assert_uint_eq(cfg.n_keys, 2);
    ck_assert_int_eq(cfg.keys[1].bytes[0], 0x20);
    ck_assert_int_eq(
        sp_auth_parse_secrets(SECRET_A " " SECRET_B " " SECRET_A, &cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "one or two whsec_ secrets, space-separated");
    ck_assert_uint_eq(cfg.n_keys, 0);
    ck_assert_int_eq(sp_auth_parse_secrets(SECRET_A " whsec_c2hvcnQ=", &cfg, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "bytes"));
    ck_assert_uint_eq(cfg.n_keys, 0);
    ck_assert_uint_eq(cfg.keys[0].len, 0); /* wiped */
}
END_TEST

int main(void) {
    Suite *s = suite_create("sp-sandbox auth");
    TCase *tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, token_endpoint);
    tcase_add_test(tc, webhooks_accepted_and_refused);
    tcase_add_test(tc, secrets_setting);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
