/* services/sp-sandbox over HTTP: the real handler on shared/plumbing/http_server.c
 * (one polling thread, so a blocked thread would show) on an ephemeral
 * port, called with shared/plumbing/http_client.c. Receiving and listing, failure
 * for N requests then recovery, malformed bodies, delay and hang without
 * blocking the server, admin validation. Works with CK_FORK=no. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/sp-sandbox/sp_sandbox.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

static char dir[256];
static sp_app app;
static http_server *server;
static http_client *client;
static char base[64];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/test_sp_sandbox_http.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("MILLOM_DATA_DIR", dir, 1);
    char err[256] = "";
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

static answer request(http_client *c, const char *method, const char *path, const char *body,
                      const char *const *headers) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    http_result r = {0};
    if (strcmp(method, "POST") == 0)
        http_post(c, url, headers, "application/json", body ? body : "", body ? strlen(body) : 0,
                  10000, &r);
    else
        http_get(c, url, headers, 10000, &r);
    answer a = {r.status, NULL};
    if (r.status) {
        a.json = json_loads(r.body, 0, NULL);
        ck_assert_msg(a.json != NULL, "%s %s: not JSON: %s", method, path, r.body);
    }
    http_result_free(&r);
    return a;
}

static long post_status(const char *path, const char *body) {
    answer a = request(client, "POST", path, body, NULL);
    json_decref(a.json);
    return a.status;
}

/* GET /admin/received?<query>; checks count == size and returns the list. */
static json_t *received(const char *query) {
    char path[256];
    snprintf(path, sizeof path, "/admin/received%s%s", query ? "?" : "", query ? query : "");
    answer a = request(client, "GET", path, NULL, NULL);
    ck_assert_int_eq(a.status, 200);
    json_t *list = json_incref(json_object_get(a.json, "received"));
    ck_assert(json_is_array(list));
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "count")), json_array_size(list));
    json_decref(a.json);
    return list;
}

static long behaviour(const char *body) {
    answer a = request(client, "POST", "/admin/behaviour", body, NULL);
    json_decref(a.json);
    return a.status;
}

static json_int_t int_of(json_t *o, const char *key) {
    return json_integer_value(json_object_get(o, key));
}

/* ---- receiving and listing ---- */

#define NOTIFICATION                                                           \
    "{\"cpid\":\"0uZmrnhb,51001\",\"transactionId\":\"tx-n-1\",\"offers\":[]," \
    "\"refresh\":\"http://r\",\"ping\":\"http://p\",\"shop\":\"http://s\"}"
#define CALLBACK "{\"transactionId\":\"tx-c-1\",\"appId\":\"facebook\",\"message\":\"ok\"}"

START_TEST(http_receive_and_list) {
    const char *auth[] = {"Authorization: Bearer abc", NULL};
    answer a = request(client, "POST", "/notifications", NOTIFICATION, auth);
    ck_assert_int_eq(a.status, 200);
    json_int_t first = int_of(a.json, "id");
    ck_assert_int_gt(first, 0);
    json_decref(a.json);
    ck_assert_int_eq(post_status("/callbacks", CALLBACK), 200);

    json_t *all = received(NULL);
    ck_assert_uint_eq(json_array_size(all), 2);
    json_t *n = json_array_get(all, 0), *c = json_array_get(all, 1);
    ck_assert_str_eq(json_string_value(json_object_get(n, "kind")), "notification");
    ck_assert_str_eq(json_string_value(json_object_get(c, "kind")), "callback");
    ck_assert_int_eq(int_of(n, "id"), first);
    ck_assert_int_eq(int_of(n, "status"), 200);
    ck_assert_str_eq(json_string_value(json_object_get(n, "contentType")), "application/json");
    ck_assert(json_is_true(json_object_get(n, "authorization")));
    ck_assert(json_is_false(json_object_get(c, "authorization")));
    ck_assert_ptr_nonnull(json_string_value(json_object_get(n, "receivedAt")));
    ck_assert_ptr_null(json_object_get(n, "error"));
    /* The body comes back parsed, as sent. */
    json_t *sent = json_loads(NOTIFICATION, 0, NULL);
    ck_assert(json_equal(json_object_get(n, "body"), sent));
    json_decref(sent);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "body"), "appId")),
                     "facebook");
    ck_assert_str_eq(json_string_value(json_object_get(c, "transactionId")), "tx-c-1");
    json_decref(all);

    /* Filters: kind and since. */
    json_t *l = received("kind=callback");
    ck_assert_uint_eq(json_array_size(l), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 0), "kind")), "callback");
    json_decref(l);
    char q[64];
    snprintf(q, sizeof q, "since=%lld", (long long)first);
    l = received(q);
    ck_assert_uint_eq(json_array_size(l), 1);
    ck_assert_int_eq(int_of(json_array_get(l, 0), "id"), first + 1);
    json_decref(l);
    answer bad = request(client, "GET", "/admin/received?kind=other", NULL, NULL);
    ck_assert_int_eq(bad.status, 400);
    json_decref(bad.json);

    /* Clear: empty list, ids keep growing. */
    answer cl = request(client, "POST", "/admin/clear", "", NULL);
    ck_assert_int_eq(cl.status, 200);
    ck_assert_int_eq(int_of(cl.json, "cleared"), 2);
    json_decref(cl.json);
    l = received(NULL);
    ck_assert_uint_eq(json_array_size(l), 0);
    json_decref(l);
    a = request(client, "POST", "/notifications", NOTIFICATION, NULL);
    ck_assert_int_gt(int_of(a.json, "id"), first + 1);
    json_decref(a.json);
}
END_TEST

START_TEST(http_malformed_recorded) {
    answer a = request(client, "POST", "/notifications", "{\"cpid\": ", NULL);
    ck_assert_int_eq(a.status, 400);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(a.json, "error")));
    json_decref(a.json);
    ck_assert_int_eq(post_status("/callbacks", "[1,2]"), 400);
    ck_assert_int_eq(post_status("/callbacks", ""), 400);

    json_t *l = received(NULL);
    ck_assert_uint_eq(json_array_size(l), 3);
    json_t *r = json_array_get(l, 0);
    ck_assert_int_eq(int_of(r, "status"), 400);
    ck_assert_str_eq(json_string_value(json_object_get(r, "body")), "{\"cpid\": ");
    ck_assert(strstr(json_string_value(json_object_get(r, "error")), "not JSON") != NULL);
    r = json_array_get(l, 1);
    ck_assert_str_eq(json_string_value(json_object_get(r, "body")), "[1,2]");
    ck_assert_str_eq(json_string_value(json_object_get(r, "error")), "body must be a JSON object");
    json_decref(l);
}
END_TEST

/* ---- behaviour ---- */

START_TEST(http_fail_then_recover) {
    ck_assert_int_eq(behaviour("{\"failStatus\":503,\"failCount\":2}"), 200);
    ck_assert_int_eq(post_status("/notifications", NOTIFICATION), 503);
    ck_assert_int_eq(post_status("/callbacks", CALLBACK), 503);
    ck_assert_int_eq(post_status("/notifications", NOTIFICATION), 200);
    ck_assert_int_eq(post_status("/notifications", NOTIFICATION), 200);
    answer b = request(client, "GET", "/admin/behaviour", NULL, NULL);
    ck_assert_int_eq(int_of(b.json, "failStatus"), 0);
    json_decref(b.json);

    json_t *l = received(NULL);
    ck_assert_uint_eq(json_array_size(l), 4);
    long want[] = {503, 503, 200, 200};
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(int_of(json_array_get(l, i), "status"), want[i]);
    json_decref(l);

    /* failCount 0: always, until reset. */
    ck_assert_int_eq(behaviour("{\"failStatus\":500}"), 200);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(post_status("/callbacks", CALLBACK), 500);
    answer r = request(client, "POST", "/admin/reset", "", NULL);
    ck_assert_int_eq(r.status, 200);
    json_decref(r.json);
    ck_assert_int_eq(post_status("/callbacks", CALLBACK), 200);
}
END_TEST

typedef struct {
    const char *path;
    long status;
    int64_t ms;
} slow_call;

static void *slow_post(void *arg) {
    slow_call *c = arg;
    http_client *own = http_client_new();
    int64_t t0 = mono_ms();
    answer a = request(own, "POST", c->path, CALLBACK, NULL);
    c->ms = mono_ms() - t0;
    c->status = a.status;
    json_decref(a.json);
    http_client_free(own);
    return NULL;
}

START_TEST(http_delay_does_not_block) {
    ck_assert_int_eq(behaviour("{\"delayMs\":700}"), 200);
    slow_call calls[2] = {{"/callbacks", 0, 0}, {"/notifications", 0, 0}};
    pthread_t t[2];
    int64_t t0 = mono_ms();
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, slow_post, &calls[i]), 0);
    /* Meanwhile the admin API answers at once on the one server thread. */
    usleep(100 * 1000);
    int64_t a0 = mono_ms();
    json_t *l = received(NULL);
    ck_assert_int_lt(mono_ms() - a0, 400);
    json_decref(l);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    int64_t total = mono_ms() - t0;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(calls[i].status, 200);
        ck_assert_int_ge(calls[i].ms, 650);
    }
    /* Two delays in parallel, not one after the other. */
    ck_assert_int_lt(total, 1300);
}
END_TEST

START_TEST(http_hang_then_lift) {
    ck_assert_int_eq(behaviour("{\"hang\":true,\"failStatus\":503,\"failCount\":1}"), 200);
    slow_call c = {"/notifications", 0, 0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, slow_post, &c), 0);
    for (int i = 0; i < 200 && sp_behaviour_pending(app.behaviour) == 0; i++) usleep(10 * 1000);
    ck_assert_int_eq(sp_behaviour_pending(app.behaviour), 1);
    usleep(200 * 1000);
    ck_assert_int_eq(c.status, 0); /* still waiting */
    ck_assert_int_eq(behaviour("{}"), 200);
    pthread_join(t, NULL);
    ck_assert_int_eq(c.status, 503);
    ck_assert_int_ge(c.ms, 200);
    ck_assert_int_eq(post_status("/notifications", NOTIFICATION), 200);
}
END_TEST

START_TEST(http_admin_validation) {
    ck_assert_int_eq(behaviour("{\"failStatus\":200}"), 400);
    ck_assert_int_eq(behaviour("{\"failCount\":2}"), 400);
    ck_assert_int_eq(behaviour("{\"delayMs\":-1}"), 400);
    ck_assert_int_eq(behaviour("{\"hang\":1}"), 400);
    ck_assert_int_eq(behaviour("{\"other\":1}"), 400);
    ck_assert_int_eq(behaviour("nope"), 400);
    answer a = request(client, "GET", "/notifications", NULL, NULL);
    ck_assert_int_eq(a.status, 405);
    json_decref(a.json);
    a = request(client, "GET", "/nowhere", NULL, NULL);
    ck_assert_int_eq(a.status, 404);
    json_decref(a.json);
    a = request(client, "GET", "/admin/clear", NULL, NULL);
    ck_assert_int_eq(a.status, 405);
    json_decref(a.json);
}
END_TEST

int main(void) {
    log_init("test_sp_sandbox_http");
    http_client_global_init();
    Suite *s = suite_create("sp_sandbox_http");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, http_receive_and_list);
    tcase_add_test(tc, http_malformed_recorded);
    tcase_add_test(tc, http_fail_then_recover);
    tcase_add_test(tc, http_delay_does_not_block);
    tcase_add_test(tc, http_hang_then_lift);
    tcase_add_test(tc, http_admin_validation);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
