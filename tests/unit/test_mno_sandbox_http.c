/* services/mno-sandbox over HTTP: the real handler on shared/plumbing/http_server.c
 * on an ephemeral port, called with shared/plumbing/http_client.c. Backend routes
 * (balance, offers, 400, 403, 404, 405) and the admin API (stats, delay,
 * failure, hang, shutdown with hung requests). Works with CK_FORK=no. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "services/mno-sandbox/mno_sandbox.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/log.h"
#include "shared/contracts/money.h"
#include "shared/plumbing/service.h"

#define Q                                                                                       \
    "customerIdType=MSISDN&channelId=App&serviceProviderId=testserviceprovider&transId=t-0001-" \
    "abcdef"

static char dir[256];
static mno_app app;
static http_server *server;
static http_client *client;
static char base[64];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/test_mno_sandbox_http.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("MILLOM_DATA_DIR", dir, 1);
    char err[256] = "";
    app.store = mno_store_open(4, err, sizeof err);
    ck_assert_msg(app.store != NULL, "store: %s", err);
    app.behaviour = mno_behaviour_new(NULL);
    ck_assert_ptr_nonnull(app.behaviour);
    http_server_opts opts = {
        .bind_addr = "127.0.0.1", .port = 0, .threads = 2, .handler = mno_handle, .app = &app};
    server = http_server_start(&opts, err, sizeof err);
    ck_assert_msg(server != NULL, "server: %s", err);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", http_server_port(server));
    client = http_client_new();
}

static void teardown(void) {
    mno_behaviour_shutdown(app.behaviour);
    http_server_stop(server);
    mno_behaviour_free(app.behaviour);
    mno_store_close(app.store);
    http_client_free(client);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[320];
        snprintf(path, sizeof path, "%s/mno-sandbox.db%s", dir, suffix[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* ---- helpers ---- */

typedef struct {
    long status;
    int timed_out;
    json_t *json;
} answer;

static answer request(http_client *c, const char *method, const char *path, const char *body,
                      long timeout_ms) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    http_result r = {0};
    if (strcmp(method, "POST") == 0)
        http_post(c, url, NULL, "application/json", body ? body : "", body ? strlen(body) : 0,
                  timeout_ms, &r);
    else
        http_get(c, url, NULL, timeout_ms, &r);
    answer a = {r.status, r.timed_out, NULL};
    if (r.status) {
        json_error_t jerr;
        a.json = json_loads(r.body, 0, &jerr);
        ck_assert_msg(a.json != NULL, "%s %s: not JSON: %s", method, path, r.body);
    }
    http_result_free(&r);
    return a;
}

static answer get(const char *path) { return request(client, "GET", path, NULL, 5000); }
static answer post(const char *path, const char *body) {
    return request(client, "POST", path, body, 5000);
}

static const char *str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    ck_assert_msg(s != NULL, "missing string %s", key);
    return s;
}

static void assert_error(answer a, long status, const char *type) {
    ck_assert_int_eq(a.status, status);
    ck_assert_str_eq(str(a.json, "errorType"), type);
    json_decref(a.json);
}

static long stat_of(const char *key) {
    answer a = get("/admin/stats");
    ck_assert_int_eq(a.status, 200);
    long v = (long)json_integer_value(json_object_get(a.json, key));
    json_decref(a.json);
    return v;
}

/* Polls /admin/stats until pending == want (at most ~2 s). */
static void wait_pending(long want) {
    for (int i = 0; i < 200 && stat_of("pending") != want; i++) usleep(10 * 1000);
    ck_assert_int_eq(stat_of("pending"), want);
}

/* ---- backend routes ---- */

START_TEST(http_balance) {
    answer a = get("/balance/924542610003?" Q);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(str(a.json, "subscriptionType"), "PREPAID");
    int64_t minor;
    json_t *money = json_object_get(a.json, "monetaryBalance");
    ck_assert_str_eq(str(money, "currency"), "PKR");
    ck_assert_int_eq(money_from_json(json_object_get(money, "value"), 2, &minor), 0);
    ck_assert_int_eq(minor, 52075);
    ck_assert_uint_eq(json_array_size(json_object_get(a.json, "subscribedPlans")), 3);
    json_decref(a.json);

    a = get("/balance/924542610000?" Q);
    ck_assert_int_eq(a.status, 200);
    ck_assert(json_is_object(json_object_get(a.json, "loanBalance")));
    json_decref(a.json);

    /* OPET and the spec's /v1 prefix. */
    a = get("/v1/balance/OPET-tp-0003?customerIdType=OPET&channelId=App&serviceProviderId=sp");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(str(a.json, "pricePlan"), "djuice");
    json_decref(a.json);
}
END_TEST

START_TEST(http_offers) {
    answer a = get("/offers/924542610003?" Q "&maxPrice=60.00&numberofOffers=2&lang=ur");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(str(a.json, "subscriberState"), "GOOD_TO_GO");
    json_t *offers = json_object_get(a.json, "offers");
    ck_assert_uint_eq(json_array_size(offers), 2);
    ck_assert_str_eq(str(json_array_get(offers, 0), "id"), "tp-social-daily");
    ck_assert_str_eq(str(json_array_get(offers, 0), "name"), "روزانہ سوشل پیک");
    ck_assert_str_eq(str(json_array_get(offers, 1), "id"), "tp-video-hour");
    ck_assert_str_ne(str(a.json, "upstreamTransId"), "");
    json_decref(a.json);

    a = get("/offers/924542610003?" Q "&offerType=video");
    offers = json_object_get(a.json, "offers");
    ck_assert_uint_eq(json_array_size(offers), 1);
    ck_assert_str_eq(str(json_array_get(offers, 0), "name"), "Video Hour");
    json_decref(a.json);

    a = get("/offers/924542610002?" Q);
    ck_assert_str_eq(str(a.json, "subscriberState"), "NEED_LOANS");
    json_decref(a.json);
}
END_TEST

START_TEST(http_errors) {
    answer a = get("/balance/924542610003?customerIdType=MSISDN&channelId=App");
    ck_assert_int_eq(a.status, 400);
    ck_assert_str_eq(str(a.json, "errorType"), "BAD_REQUEST");
    ck_assert_ptr_nonnull(strstr(str(a.json, "message"), "serviceProviderId"));
    json_decref(a.json);
    a = get("/offers/924542610003?" Q "&maxPrice=cheap");
    ck_assert_int_eq(a.status, 400);
    ck_assert_ptr_nonnull(strstr(str(a.json, "message"), "maxPrice"));
    json_decref(a.json);

    assert_error(get("/balance/924542619999?" Q), 404, "UNKNOWN_SUBSCRIBER_ID");
    assert_error(get("/offers/924542610005?" Q), 403, "USER_BARRED");
    a = get("/offers/924542610004?" Q);
    ck_assert_str_eq(str(a.json, "message"), "subscriber is roaming");
    assert_error(a, 403, "FORBIDDEN");
    assert_error(get("/nowhere"), 404, "BAD_REQUEST");
    assert_error(get("/balance/"), 404, "BAD_REQUEST");
    assert_error(get("/balance/924542610003/extra?" Q), 404, "BAD_REQUEST");
    assert_error(post("/balance/924542610003?" Q, "{}"), 405, "BAD_REQUEST");

    /* The server's own health endpoint still works. */
    a = get("/healthz");
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
}
END_TEST

/* ---- admin ---- */

START_TEST(admin_stats_and_reset) {
    ck_assert_int_eq(stat_of("balance"), 0);
    json_decref(get("/balance/924542610003?" Q).json);
    json_decref(get("/balance/924542619999?" Q).json); /* errors count too */
    json_decref(get("/offers/924542610003?" Q).json);
    ck_assert_int_eq(stat_of("balance"), 2);
    ck_assert_int_eq(stat_of("offers"), 1);
    ck_assert_int_eq(stat_of("pending"), 0);
    answer a = post("/admin/reset", NULL);
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    ck_assert_int_eq(stat_of("balance"), 0);
    ck_assert_int_eq(stat_of("offers"), 0);
}
END_TEST

START_TEST(admin_fail) {
    answer a = post("/admin/behaviour", "{\"failStatus\": 503}");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(str(a.json, "failErrorType"), "CONGESTED");
    json_decref(a.json);
    assert_error(get("/balance/924542610003?" Q), 503, "CONGESTED");
    assert_error(get("/offers/924542610003?" Q), 503, "CONGESTED");

    json_decref(
        post("/admin/behaviour", "{\"failStatus\": 500, \"failErrorType\": \"TIMEOUT\"}").json);
    assert_error(get("/balance/924542610003?" Q), 500, "TIMEOUT");
    /* Admin routes are never affected. */
    ck_assert_int_eq(stat_of("balance"), 2);

    json_decref(post("/admin/reset", "").json);
    a = get("/balance/924542610003?" Q);
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
}
END_TEST

START_TEST(admin_bad_requests) {
    static const char *const bodies[] = {
        "",
        "[]",
        "not json",
        "{\"delayMs\": -1}",
        "{\"delayMs\": \"10\"}",
        "{\"failStatus\": 200}",
        "{\"failErrorType\": \"CONGESTED\"}",
        "{\"failStatus\": 503, \"failErrorType\": \"SLOW\"}",
        "{\"hang\": 1}",
        "{\"delay\": 5}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++)
        assert_error(post("/admin/behaviour", bodies[i]), 400, "BAD_REQUEST");
    assert_error(get("/admin/reset"), 405, "BAD_REQUEST");
    assert_error(post("/admin/stats", "{}"), 405, "BAD_REQUEST");
    assert_error(get("/admin/nothing"), 404, "BAD_REQUEST");
    answer a = get("/admin/behaviour");
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "delayMs")), 0);
    json_decref(a.json);
}
END_TEST

typedef struct {
    const char *path;
    long timeout_ms;
    answer result;
    int64_t elapsed_ms;
} call_job;

static void *call_thread(void *arg) {
    call_job *j = arg;
    http_client *c = http_client_new();
    int64_t t0 = mono_ms();
    j->result = request(c, "GET", j->path, NULL, j->timeout_ms);
    j->elapsed_ms = mono_ms() - t0;
    http_client_free(c);
    return NULL;
}

START_TEST(admin_delay_does_not_block_threads) {
    json_decref(post("/admin/behaviour", "{\"delayMs\": 300}").json);
    /* Six delayed calls on a 2-thread server: if a delay held a thread they
     * would take 3 x 300 ms; deferred, they all finish in about 300 ms. */
    enum { N = 6 };
    call_job jobs[N];
    pthread_t t[N];
    int64_t t0 = mono_ms();
    for (int i = 0; i < N; i++) {
        jobs[i] = (call_job){.path = i % 2 ? "/offers/924542610003?" Q : "/balance/924542610003?" Q,
                             .timeout_ms = 5000};
        ck_assert_int_eq(pthread_create(&t[i], NULL, call_thread, &jobs[i]), 0);
    }
    /* Meanwhile the admin API answers at once. */
    usleep(100 * 1000);
    int64_t s0 = mono_ms();
    ck_assert_int_ge(stat_of("pending"), 1);
    ck_assert_int_lt(mono_ms() - s0, 150);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(jobs[i].result.status, 200);
        ck_assert_int_ge(jobs[i].elapsed_ms, 290);
        json_decref(jobs[i].result.json);
    }
    ck_assert_int_lt(mono_ms() - t0, 800);
    json_decref(post("/admin/reset", NULL).json);
}
END_TEST

START_TEST(admin_hang_and_release) {
    answer a = post("/admin/behaviour", "{\"hang\": true}");
    ck_assert(json_is_true(json_object_get(a.json, "hang")));
    json_decref(a.json);

    a = request(client, "GET", "/balance/924542610003?" Q, NULL, 300);
    ck_assert_int_eq(a.status, 0);
    ck_assert(a.timed_out);
    wait_pending(1); /* the server still holds it, and still answers stats */

    /* A hung call is answered once the hang is lifted. */
    call_job job = {.path = "/offers/924542610001?" Q, .timeout_ms = 5000};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, call_thread, &job), 0);
    wait_pending(2);
    json_decref(post("/admin/behaviour", "{}").json);
    pthread_join(t, NULL);
    ck_assert_int_eq(job.result.status, 200);
    ck_assert_str_eq(str(job.result.json, "subscriberState"), "NEED_OFFERS");
    json_decref(job.result.json);
    wait_pending(0);
}
END_TEST

START_TEST(admin_hang_at_shutdown) {
    json_decref(post("/admin/behaviour", "{\"hang\": true, \"delayMs\": 50}").json);
    call_job job = {.path = "/balance/924542610003?" Q, .timeout_ms = 5000};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, call_thread, &job), 0);
    wait_pending(1);
    ck_assert_uint_eq(mno_behaviour_shutdown(app.behaviour), 1);
    pthread_join(t, NULL);
    assert_error(job.result, 503, "CONGESTED");
    /* After shutdown nothing is deferred any more. */
    answer a = get("/balance/924542610003?" Q);
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("mno_sandbox_http");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, http_balance);
    tcase_add_test(tc, http_offers);
    tcase_add_test(tc, http_errors);
    tcase_add_test(tc, admin_stats_and_reset);
    tcase_add_test(tc, admin_fail);
    tcase_add_test(tc, admin_bad_requests);
    tcase_add_test(tc, admin_delay_does_not_block_threads);
    tcase_add_test(tc, admin_hang_and_release);
    tcase_add_test(tc, admin_hang_at_shutdown);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    setenv("MILLOM_LOG_LEVEL", "warn", 0);
    log_init("test_mno_sandbox_http");
    signal(SIGPIPE, SIG_IGN);
    http_client_global_init();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
