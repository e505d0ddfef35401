/* services/mno-sandbox activations: POST /activate over HTTP (the real
 * handler on shared/plumbing/http_server.c, an ephemeral port), the async worker
 * posting callbacks to a small test server (shared/plumbing/http_server.c on another
 * ephemeral port), and the store directly for consistency under
 * concurrency. Works with CK_FORK=no. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

#define GOOD "924542610003"
#define TOPUP "924542610000"
#define LOANS "924542610002"
#define ROAMING "924542610004"
#define BARRED "924542610005"
#define POSTPAID "924542610006"
#define SP "testserviceprovider"
#define ASYNC_OFFER "tp-data-weekly-async"
#define READ_Q "?customerIdType=MSISDN&channelId=App&serviceProviderId=" SP

/* ---- the callback receiver ---- */

enum { MAX_CALLBACKS = 64 };

typedef struct {
    char path[128];
    char id_value[32];
    char id_type[16];
    json_t *body;
} callback;

static struct {
    pthread_mutex_t lock;
    callback got[MAX_CALLBACKS];
    size_t n;
    int script[8]; /* statuses to answer, in order; then 200 */
    size_t n_script, next_script;
} cb = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void cb_handle(void *app, http_request *req) {
    (void)app;
    size_t len;
    const char *body = http_body(req, &len);
    const char *v = http_query(req, "idValue"), *t = http_query(req, "idType");
    pthread_mutex_lock(&cb.lock);
    int status = cb.next_script < cb.n_script ? cb.script[cb.next_script++] : 200;
    if (cb.n < MAX_CALLBACKS) {
        callback *c = &cb.got[cb.n++];
        snprintf(c->path, sizeof c->path, "%s", http_path(req));
        snprintf(c->id_value, sizeof c->id_value, "%s", v ? v : "");
        snprintf(c->id_type, sizeof c->id_type, "%s", t ? t : "");
        c->body = json_loadb(body, len, 0, NULL);
    }
    pthread_mutex_unlock(&cb.lock);
    http_respond(req, status, "application/json", "{\"status\":\"OK\"}", 15);
}

static void cb_reset(void) {
    pthread_mutex_lock(&cb.lock);
    for (size_t i = 0; i < cb.n; i++) json_decref(cb.got[i].body);
    cb.n = cb.n_script = cb.next_script = 0;
    pthread_mutex_unlock(&cb.lock);
}

static size_t cb_count(void) {
    pthread_mutex_lock(&cb.lock);
    size_t n = cb.n;
    pthread_mutex_unlock(&cb.lock);
    return n;
}

/* ---- fixture ---- */

static char dir[256];
static mno_app app;
static http_server *server, *cb_server;
static http_client *client;
static char base[64], cb_base[64], cb_backend_url[128];
static mno_callback_cfg cb_cfg;

static void start_activations(long delay_ms) {
    cb_cfg = (mno_callback_cfg){.callback_url = cb_backend_url,
                                .millom_url = cb_base,
                                .delay_ms = delay_ms,
                                .max_attempts = 5,
                                .backoff_ms = 20,
                                .timeout_ms = 2000};
    app.activations = mno_activations_new(app.store, &cb_cfg);
    ck_assert_ptr_nonnull(app.activations);
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/test_mno_sandbox_activate.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("MILLOM_DATA_DIR", dir, 1);
    char err[256] = "";
    cb_reset();
    http_server_opts cb_opts = {
        .bind_addr = "127.0.0.1", .port = 0, .threads = 2, .handler = cb_handle, .app = NULL};
    cb_server = http_server_start(&cb_opts, err, sizeof err);
    ck_assert_msg(cb_server != NULL, "callback server: %s", err);
    snprintf(cb_base, sizeof cb_base, "http://127.0.0.1:%d", http_server_port(cb_server));
    snprintf(cb_backend_url, sizeof cb_backend_url, "%s/activationCallback/tp", cb_base);

    app.store = mno_store_open(4, err, sizeof err);
    ck_assert_msg(app.store != NULL, "store: %s", err);
    app.behaviour = mno_behaviour_new(NULL);
    ck_assert_ptr_nonnull(app.behaviour);
    start_activations(50);
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
    mno_activations_free(app.activations);
    app.activations = NULL;
    mno_behaviour_free(app.behaviour);
    mno_store_close(app.store);
    http_server_stop(cb_server);
    http_client_free(client);
    cb_reset();
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
    json_t *json;
    int64_t elapsed_ms;
} answer;

static answer request(http_client *c, const char *method, const char *path, const char *body) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    http_result r = {0};
    int64_t t0 = mono_ms();
    if (strcmp(method, "POST") == 0)
        http_post(c, url, NULL, "application/json", body ? body : "", body ? strlen(body) : 0,
                  10000, &r);
    else
        http_get(c, url, NULL, 10000, &r);
    answer a = {r.status, NULL, mono_ms() - t0};
    if (r.status) a.json = json_loads(r.body, 0, NULL);
    http_result_free(&r);
    return a;
}

static answer get(const char *path) { return request(client, "GET", path, NULL); }
static answer post(const char *path, const char *body) {
    return request(client, "POST", path, body);
}

static void admin(const char *path, const char *body) {
    answer a = post(path, body);
    ck_assert_msg(a.status == 200, "%s %s: %ld", path, body, a.status);
    json_decref(a.json);
}

static const char *str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    ck_assert_msg(s != NULL, "missing string %s", key);
    return s;
}

static json_int_t num(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "missing integer %s", key);
    return json_integer_value(v);
}

static json_t *body_for(const char *offer, const char *trans) {
    return json_pack("{s:s, s:s, s:s, s:s}", "channelId", "App", "serviceProviderId", SP, "offerId",
                     offer, "transId", trans);
}

/* POSTs body (stolen) to /activate/{customer}?customerIdType=type. */
static answer activate_with(http_client *c, const char *customer, const char *type, json_t *body) {
    char path[160], *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    snprintf(path, sizeof path, "/activate/%s?customerIdType=%s", customer, type);
    answer a = request(c, "POST", path, text);
    free(text);
    return a;
}

static answer activate(const char *customer, const char *offer, const char *trans) {
    return activate_with(client, customer, "MSISDN", body_for(offer, trans));
}

static const char *activation_status(const answer *a) {
    return str(json_object_get(a->json, "activationStatus"), "status");
}

static void assert_error(answer a, long status, const char *type) {
    ck_assert_msg(a.status == status, "status %ld, expected %ld", a.status, status);
    ck_assert_str_eq(str(a.json, "errorType"), type);
    json_decref(a.json);
}

/* The accountStatus of msisdn (caller decrefs). */
static json_t *balance_json(const char *msisdn, const char *lang) {
    char path[192];
    snprintf(path, sizeof path, "/balance/%s" READ_Q "&lang=%s", msisdn, lang);
    answer a = get(path);
    ck_assert_int_eq(a.status, 200);
    return a.json;
}

static int64_t money_of(const json_t *o, const char *key) {
    json_t *m = json_object_get(o, key);
    if (!m) return 0;
    int64_t minor;
    ck_assert_int_eq(money_from_json(json_object_get(m, "value"), 2, &minor), 0);
    return minor;
}

static int64_t wallet(const char *msisdn) {
    json_t *b = balance_json(msisdn, "en");
    int64_t v = money_of(b, "monetaryBalance");
    json_decref(b);
    return v;
}

static int64_t loan(const char *msisdn) {
    json_t *b = balance_json(msisdn, "en");
    int64_t v = money_of(b, "loanBalance");
    json_decref(b);
    return v;
}

static int64_t ewallet(const char *msisdn) {
    json_t *b = balance_json(msisdn, "en");
    int64_t v = money_of(b, "ewalletBalance");
    json_decref(b);
    return v;
}

/* How many subscribed plans of msisdn have planId plan_id. */
static int plans_with(const char *msisdn, const char *plan_id) {
    json_t *b = balance_json(msisdn, "en");
    int n = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(b, "subscribedPlans"), i, p) n +=
        strcmp(str(p, "planId"), plan_id) == 0;
    json_decref(b);
    return n;
}

/* GET /admin/activations?transId=X: the one activation (caller decrefs),
 * or NULL when there is none. */
static json_t *activation_row(const char *trans) {
    char path[192];
    snprintf(path, sizeof path, "/admin/activations?transId=%s", trans);
    answer a = get(path);
    ck_assert_int_eq(a.status, 200);
    json_int_t count = num(a.json, "count");
    ck_assert_int_le(count, 1);
    json_t *row =
        count ? json_incref(json_array_get(json_object_get(a.json, "activations"), 0)) : NULL;
    json_decref(a.json);
    return row;
}

static long stat_of(const char *key) {
    answer a = get("/admin/stats");
    ck_assert_int_eq(a.status, 200);
    long v = (long)num(a.json, key);
    json_decref(a.json);
    return v;
}

static void wait_callbacks(size_t n) {
    for (int i = 0; i < 500 && cb_count() < n; i++) usleep(10 * 1000);
    ck_assert_uint_eq(cb_count(), n);
}

static void wait_async_idle(void) {
    for (int i = 0; i < 500 && stat_of("asyncQueued") != 0; i++) usleep(10 * 1000);
    ck_assert_int_eq(stat_of("asyncQueued"), 0);
}

/* "2026-11-28T17:00:00Z" -> Unix seconds. */
static int64_t parse_time(const char *iso) {
    struct tm tm = {0};
    const char *end = strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    ck_assert_msg(end && *end == '\0', "not ISO 8601 UTC: %s", iso);
    return (int64_t)timegm(&tm);
}

static void assert_confirmation_code(const char *code) {
    ck_assert_uint_eq(strlen(code), 19);
    ck_assert(strncmp(code, "tp-", 3) == 0);
    ck_assert_uint_eq(strspn(code + 3, "0123456789abcdef"), 16);
}

/* ---- synchronous activations ---- */

START_TEST(activate_debits_and_adds_plan) {
    int64_t t0 = now_ms() / 1000;
    answer a = activate(GOOD, "tp-video-hour", "trans-video-0001");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(activation_status(&a), "OK");
    ck_assert_str_eq(str(a.json, "fundSource"), "WALLET");
    assert_confirmation_code(str(a.json, "confirmationCode"));
    int64_t at = parse_time(str(a.json, "activationTime"));
    ck_assert_int_ge(at, t0 - 1);
    ck_assert_int_le(at, t0 + 5);
    json_decref(a.json);

    /* Right after: debited, and the plan is there in both languages. */
    json_t *b = balance_json(GOOD, "en");
    ck_assert_int_eq(money_of(b, "monetaryBalance"), 52075 - 1550);
    json_t *plans = json_object_get(b, "subscribedPlans");
    ck_assert_uint_eq(json_array_size(plans), 4);
    json_t *p = json_array_get(plans, 3);
    ck_assert_str_eq(str(p, "planId"), "tp-video-hour");
    ck_assert_str_eq(str(p, "planName"), "Video Hour");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(p, "appType"), 0)), "VIDEO");
    ck_assert_int_eq(num(json_object_get(p, "balance"), "quotaBytes"), 2147483648LL);
    ck_assert_int_eq(num(json_object_get(p, "balance"), "remainingBytes"), 2147483648LL);
    ck_assert_str_eq(str(p, "overusagePolicy"), "BLOCKED");
    ck_assert_int_eq(num(p, "speedLimit"), 2048);
    ck_assert_ptr_null(json_object_get(p, "recurrence")); /* a one-off offer */
    int64_t exp = parse_time(str(p, "expirationTime"));
    ck_assert_int_ge(exp, t0 + 3600 - 1);
    ck_assert_int_le(exp, t0 + 3600 + 5);
    json_decref(b);
    b = balance_json(GOOD, "ur");
    p = json_array_get(json_object_get(b, "subscribedPlans"), 3);
    ck_assert_str_eq(str(p, "planName"), "ویڈیو گھنٹہ");
    json_decref(b);

    /* A recurring offer gets its recurrence; minutes stay minutes. */
    a = activate(GOOD, "tp-voice-weekly", "trans-voice-0001");
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    b = balance_json(GOOD, "en");
    p = json_array_get(json_object_get(b, "subscribedPlans"), 4);
    ck_assert_str_eq(str(p, "planId"), "tp-voice-weekly");
    ck_assert_int_eq(num(json_object_get(p, "balance"), "remainingMinutes"), 300);
    ck_assert_int_eq(num(json_object_get(p, "recurrence"), "frequency"), 7);
    ck_assert_int_eq(money_of(b, "monetaryBalance"), 52075 - 1550 - 12000);
    json_decref(b);

    json_t *row = activation_row("trans-video-0001");
    ck_assert_ptr_nonnull(row);
    ck_assert_str_eq(str(row, "status"), "OK");
    ck_assert_str_eq(str(row, "customerId"), GOOD);
    ck_assert_str_eq(str(row, "offerId"), "tp-video-hour");
    ck_assert_int_eq(num(row, "amountMinor"), 1550);
    ck_assert_int_eq(num(row, "debits"), 1);
    ck_assert_int_eq(num(row, "callbackAttempts"), 0);
    json_decref(row);
    ck_assert_int_eq(stat_of("activate"), 2);
    /* Synchronous activations post no callback. */
    ck_assert_uint_eq(cb_count(), 0);
}
END_TEST

START_TEST(activate_by_opet_and_plus) {
    answer a = activate_with(client, "OPET-tp-0003", "OPET",
                             body_for("tp-music-daily", "trans-opet-0001"));
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    a = activate_with(client, "+" GOOD, "msisdn", body_for("tp-music-daily", "trans-plus-0001"));
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    ck_assert_int_eq(wallet(GOOD), 52075 - 2 * 2500);
    json_t *row = activation_row("trans-opet-0001");
    ck_assert_str_eq(str(row, "customerId"), GOOD);
    json_decref(row);
}
END_TEST

START_TEST(activate_insufficient_funds) {
    /* NEED_TOPUP has no money: no WALLET offer, not even one it is not
     * offered (the catalogue is sold). */
    assert_error(activate(TOPUP, "tp-video-hour", "trans-topup-0001"), 402, "INSUFFICIENT_FUNDS");
    assert_error(activate(TOPUP, ASYNC_OFFER, "trans-topup-0002"), 402, "INSUFFICIENT_FUNDS");
    ck_assert_int_eq(wallet(TOPUP), 0);
    /* More than the balance: 1000.00 > 520.75. */
    assert_error(activate(GOOD, "tp-data-monthly-10gb", "trans-mega-0001"), 402,
                 "INSUFFICIENT_FUNDS");
    ck_assert_int_eq(wallet(GOOD), 52075);
    ck_assert_int_eq(plans_with(GOOD, "tp-data-monthly-10gb"), 0);

    /* Recorded as FAIL without a debit; a repeat answers the same. */
    json_t *row = activation_row("trans-mega-0001");
    ck_assert_str_eq(str(row, "status"), "FAIL");
    ck_assert_str_eq(str(row, "errorType"), "INSUFFICIENT_FUNDS");
    ck_assert_int_eq(num(row, "debits"), 0);
    json_decref(row);
    assert_error(activate(GOOD, "tp-data-monthly-10gb", "trans-mega-0001"), 402,
                 "INSUFFICIENT_FUNDS");

    /* Postpaid has 2500.00: the mega bundle is fine there. */
    answer a = activate(POSTPAID, "tp-data-monthly-10gb", "trans-mega-0002");
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    ck_assert_int_eq(wallet(POSTPAID), 250000 - 100000);
}
END_TEST

START_TEST(activate_invalid_product) {
    assert_error(activate(GOOD, "tp-no-such-offer", "trans-inv-0001"), 400, "INVALID_PRODUCT");
    /* A WALLET purchase of a LOAN-only offer. */
    json_t *body = body_for("tp-loan-data-500mb", "trans-inv-0002");
    json_object_set_new(body, "fundSource", json_string("WALLET"));
    assert_error(activate_with(client, GOOD, "MSISDN", body), 400, "INVALID_PRODUCT");
    body = body_for("tp-loan-data-500mb", "trans-inv-0003");
    json_object_set_new(body, "fundSource", json_string("WALLET"));
    assert_error(activate_with(client, LOANS, "MSISDN", body), 400, "INVALID_PRODUCT");
    /* A LOAN purchase of a WALLET offer. */
    body = body_for("tp-video-hour", "trans-inv-0004");
    json_object_set_new(body, "fundSource", json_string("LOAN"));
    assert_error(activate_with(client, GOOD, "MSISDN", body), 400, "INVALID_PRODUCT");
    ck_assert_int_eq(wallet(GOOD), 52075);
    ck_assert_int_eq(loan(GOOD), 0);
    ck_assert_int_eq(loan(LOANS), 0);

    /* Subscriber errors come first, as for reads, and are not recorded. */
    assert_error(activate("924542619999", "tp-video-hour", "trans-sub-0001"), 404,
                 "UNKNOWN_SUBSCRIBER_ID");
    assert_error(
        activate_with(client, "OPET-nobody", "OPET", body_for("tp-video-hour", "trans-sub-0002")),
        404, "UNKNOWN_SUBSCRIBER_ID");
    assert_error(activate(BARRED, "tp-video-hour", "trans-sub-0003"), 403, "USER_BARRED");
    answer a = activate(ROAMING, "tp-video-hour", "trans-sub-0004");
    ck_assert_str_eq(str(a.json, "message"), "subscriber is roaming");
    assert_error(a, 403, "FORBIDDEN");
    ck_assert_ptr_null(activation_row("trans-sub-0003"));
    ck_assert_ptr_null(activation_row("trans-sub-0004"));
}
END_TEST

START_TEST(activate_on_loan) {
    /* The offer's own fund source by default. */
    answer a = activate(LOANS, "tp-loan-data-500mb", "trans-loan-0001");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(activation_status(&a), "OK");
    ck_assert_str_eq(str(a.json, "fundSource"), "LOAN");
    json_decref(a.json);
    ck_assert_int_eq(loan(LOANS), 2000);
    ck_assert_int_eq(wallet(LOANS), 0);
    ck_assert_int_eq(plans_with(LOANS, "tp-loan-data-500mb"), 1);

    json_t *body = body_for("tp-loan-social-200mb", "trans-loan-0002");
    json_object_set_new(body, "fundSource", json_string("LOAN"));
    a = activate_with(client, LOANS, "MSISDN", body);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(str(a.json, "fundSource"), "LOAN");
    json_decref(a.json);
    ck_assert_int_eq(loan(LOANS), 3000);

    /* An existing loan grows; no money needed. */
    a = activate(TOPUP, "tp-loan-data-500mb", "trans-loan-0003");
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    ck_assert_int_eq(loan(TOPUP), 7000);
    json_t *row = activation_row("trans-loan-0003");
    ck_assert_str_eq(str(row, "fundSource"), "LOAN");
    ck_assert_int_eq(num(row, "debits"), 1);
    json_decref(row);
}
END_TEST

START_TEST(activate_ewallet_and_free) {
    const char *sub = "924542610007"; /* 5.00 airtime, 150.00 e-wallet */
    /* EWALLET: the e-wallet pays, the airtime stays */
    answer a = activate(sub, "tp-ewallet-data-2gb", "trans-ew-0001");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(activation_status(&a), "OK");
    ck_assert_str_eq(str(a.json, "fundSource"), "EWALLET");
    json_decref(a.json);
    ck_assert_int_eq(ewallet(sub), 3000);
    ck_assert_int_eq(wallet(sub), 500);
    ck_assert_int_eq(plans_with(sub, "tp-ewallet-data-2gb"), 1);
    /* 30.00 left: a second one is short, nothing charged */
    assert_error(activate(sub, "tp-ewallet-data-2gb", "trans-ew-0002"), 402, "INSUFFICIENT_FUNDS");
    ck_assert_int_eq(ewallet(sub), 3000);
    /* FREE: nothing charged, debits 0 */
    a = activate(sub, "tp-free-social-trial", "trans-free-0001");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(str(a.json, "fundSource"), "FREE");
    json_decref(a.json);
    json_t *row = activation_row("trans-free-0001");
    ck_assert_int_eq(num(row, "debits"), 0);
    ck_assert_int_eq(num(row, "amountMinor"), 0);
    json_decref(row);
    ck_assert_int_eq(wallet(sub), 500);
    ck_assert_int_eq(ewallet(sub), 3000);
    /* another fund source than the offer's */
    json_t *body = body_for("tp-free-social-trial", "trans-free-0002");
    json_object_set_new(body, "fundSource", json_string("WALLET"));
    a = activate_with(client, sub, "MSISDN", body);
    ck_assert_ptr_nonnull(strstr(str(a.json, "message"), "FREE only"));
    assert_error(a, 400, "INVALID_PRODUCT");
    body = body_for("tp-ewallet-data-2gb", "trans-ew-0003");
    json_object_set_new(body, "fundSource", json_string("WALLET"));
    assert_error(activate_with(client, sub, "MSISDN", body), 400, "INVALID_PRODUCT");
}
END_TEST

START_TEST(activate_bad_requests) {
    static const char *const bad[][2] = {
        {"{\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\",\"transId\":\"trans-bad-"
         "0001\"}",
         "channelId"},
        {"{\"channelId\":\"App\",\"offerId\":\"tp-video-hour\",\"transId\":\"trans-bad-0001\"}",
         "serviceProviderId"},
        {"{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"transId\":\"trans-bad-0001\"}",
         "offerId"},
        {"{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\"}",
         "transId"},
        {"{\"channelId\":7,\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\",\"transId\":"
         "\"trans-bad-0001\"}",
         "channelId"},
        {"{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":[],\"transId\":\"trans-"
         "bad-0001\"}",
         "offerId"},
        {"{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\","
         "\"transId\":\"short\"}",
         "transId"},
        {"{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\","
         "\"transId\":\"trans bad 0001\"}",
         "transId"},
        {"{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\","
         "\"transId\":12345678901}",
         "transId"},
        {"{\"channelId\":\"\",\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\","
         "\"transId\":\"trans-bad-0001\"}",
         "channelId"},
        {"{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\","
         "\"transId\":\"trans-bad-0001\",\"fundSource\":\"CARD\"}",
         "fundSource"},
        {"{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\","
         "\"transId\":\"trans-bad-0001\",\"fundSource\":1}",
         "fundSource"},
        {"{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\","
         "\"transId\":\"trans-bad-0001\",\"callbackUrl\":\"ftp://x\"}",
         "callbackUrl"},
        {"{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\","
         "\"transId\":\"trans-bad-0001\",\"callbackUrl\":false}",
         "callbackUrl"},
        {"[]", "object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        answer a = post("/activate/" GOOD "?customerIdType=MSISDN", bad[i][0]);
        ck_assert_msg(a.status == 400, "%s: %ld", bad[i][0], a.status);
        ck_assert_str_eq(str(a.json, "errorType"), "BAD_REQUEST");
        ck_assert_msg(strstr(str(a.json, "message"), bad[i][1]), "%s: message %s does not name %s",
                      bad[i][0], str(a.json, "message"), bad[i][1]);
        json_decref(a.json);
    }
    static const char *const unparsable[] = {"", "{", "not json", "{\"channelId\":\"App\",}"};
    for (size_t i = 0; i < sizeof unparsable / sizeof *unparsable; i++)
        assert_error(post("/activate/" GOOD "?customerIdType=MSISDN", unparsable[i]), 400,
                     "PARSING_ERROR");
    const char *ok =
        "{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"tp-video-hour\","
        "\"transId\":\"trans-bad-0001\"}";
    answer a = post("/activate/" GOOD, ok);
    ck_assert_ptr_nonnull(strstr(str(a.json, "message"), "customerIdType"));
    assert_error(a, 400, "BAD_REQUEST");
    assert_error(post("/activate/" GOOD "?customerIdType=Email", ok), 400, "BAD_REQUEST");
    assert_error(get("/activate/" GOOD "?customerIdType=MSISDN"), 405, "BAD_REQUEST");
    assert_error(post("/activate/?customerIdType=MSISDN", ok), 404, "BAD_REQUEST");
    /* Nothing was activated; /v1 works too. */
    ck_assert_int_eq(wallet(GOOD), 52075);
    a = post("/v1/activate/" GOOD "?customerIdType=MSISDN", ok);
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    /* Unknown fields are ignored, a 128-character transId is fine. */
    char long_id[129];
    memset(long_id, 'a', 128);
    long_id[128] = '\0';
    json_t *body = body_for("tp-video-hour", long_id);
    json_object_set_new(body, "extra", json_true());
    a = activate_with(client, GOOD, "MSISDN", body);
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    long_id[127] = 'a';
    char longer[140];
    snprintf(longer, sizeof longer, "%sb", long_id);
    assert_error(activate(GOOD, "tp-video-hour", longer), 400, "BAD_REQUEST");
}
END_TEST

static const char *id_type_param(void *ctx, const char *name) {
    return strcmp(name, "customerIdType") == 0 ? ctx : NULL;
}

START_TEST(parse_activate_unit) {
    mno_activate_request rq;
    const char *type;
    char msg[160];
    const char *body = "{\"channelId\":\"USSD\",\"serviceProviderId\":\"sp\",\"offerId\":\"o\","
                       "\"transId\":\"0b6c9a4e-1d5f-4c1b-9f1e-3a2b4c5d6e7f\","
                       "\"callbackUrl\":\"https://sp.example/cb?x=1\",\"fundSource\":\"LOAN\"}";
    ck_assert_int_eq(mno_parse_activate("OPET-tp-0003", id_type_param, "opet", body, strlen(body),
                                        &rq, &type, msg, sizeof msg),
                     0);
    ck_assert_int_eq(rq.id_type, MNO_ID_OPET);
    ck_assert_str_eq(rq.customer_id, "OPET-tp-0003");
    ck_assert_str_eq(rq.channel_id, "USSD");
    ck_assert_str_eq(rq.service_provider, "sp");
    ck_assert_str_eq(rq.offer_id, "o");
    ck_assert_str_eq(rq.trans_id, "0b6c9a4e-1d5f-4c1b-9f1e-3a2b4c5d6e7f");
    ck_assert_str_eq(rq.callback_url, "https://sp.example/cb?x=1");
    ck_assert_str_eq(rq.fund_source, "LOAN");

    const char *minimal = "{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"o\","
                          "\"transId\":\"abcdefghij\",\"callbackUrl\":null}";
    ck_assert_int_eq(mno_parse_activate(GOOD, id_type_param, "MSISDN", minimal, strlen(minimal),
                                        &rq, &type, msg, sizeof msg),
                     0);
    ck_assert_str_eq(rq.callback_url, "");
    ck_assert_str_eq(rq.fund_source, "");

    /* A duplicate key is not JSON we accept; a short transId is named. */
    const char *dup = "{\"offerId\":\"a\",\"offerId\":\"b\"}";
    ck_assert_int_eq(mno_parse_activate(GOOD, id_type_param, "MSISDN", dup, strlen(dup), &rq, &type,
                                        msg, sizeof msg),
                     -1);
    ck_assert_str_eq(type, "PARSING_ERROR");
    const char *shorty = "{\"channelId\":\"App\",\"serviceProviderId\":\"sp\",\"offerId\":\"o\","
                         "\"transId\":\"abcdefghi\"}";
    ck_assert_int_eq(mno_parse_activate(GOOD, id_type_param, "MSISDN", shorty, strlen(shorty), &rq,
                                        &type, msg, sizeof msg),
                     -1);
    ck_assert_str_eq(type, "BAD_REQUEST");
    ck_assert_ptr_nonnull(strstr(msg, "transId"));
    ck_assert_int_eq(mno_parse_activate(GOOD, id_type_param, NULL, minimal, strlen(minimal), &rq,
                                        &type, msg, sizeof msg),
                     -1);
    ck_assert_ptr_nonnull(strstr(msg, "customerIdType"));
}
END_TEST

/* ---- idempotency ---- */

START_TEST(activate_idempotent_repeat) {
    answer first = activate(GOOD, "tp-social-daily", "trans-idem-0001");
    ck_assert_int_eq(first.status, 200);
    for (int i = 0; i < 3; i++) {
        answer again = activate(GOOD, "tp-social-daily", "trans-idem-0001");
        ck_assert_int_eq(again.status, 200);
        ck_assert(json_equal(first.json, again.json)); /* same code, time, status */
        json_decref(again.json);
    }
    /* By OPET it is the same customer. */
    answer opet = activate_with(client, "OPET-tp-0003", "OPET",
                                body_for("tp-social-daily", "trans-idem-0001"));
    ck_assert_int_eq(opet.status, 200);
    ck_assert(json_equal(first.json, opet.json));
    json_decref(opet.json);
    json_decref(first.json);

    ck_assert_int_eq(wallet(GOOD), 52075 - 6000);
    /* The seeded Daily Social Pack is a different plan id; one new plan. */
    ck_assert_int_eq(plans_with(GOOD, "tp-social-daily"), 1);
    json_t *row = activation_row("trans-idem-0001");
    ck_assert_int_eq(num(row, "debits"), 1);
    json_decref(row);
    answer all = get("/admin/activations");
    ck_assert_int_eq(num(all.json, "count"), 1);
    json_decref(all.json);
    ck_assert_int_eq(stat_of("activate"), 5);
}
END_TEST

START_TEST(activate_conflicting_repeat) {
    answer a = activate(GOOD, "tp-social-daily", "trans-conf-0001");
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    assert_error(activate(GOOD, "tp-music-daily", "trans-conf-0001"), 409, "CONFLICT");
    assert_error(activate(POSTPAID, "tp-social-daily", "trans-conf-0001"), 409, "CONFLICT");
    ck_assert_int_eq(wallet(GOOD), 52075 - 6000);
    ck_assert_int_eq(wallet(POSTPAID), 250000);
    /* A refused transId is taken too. */
    assert_error(activate(TOPUP, "tp-video-hour", "trans-conf-0002"), 402, "INSUFFICIENT_FUNDS");
    assert_error(activate(GOOD, "tp-video-hour", "trans-conf-0002"), 409, "CONFLICT");
    ck_assert_int_eq(wallet(GOOD), 52075 - 6000);
}
END_TEST

START_TEST(activate_already_executed_mode) {
    answer a = activate(GOOD, "tp-social-daily", "trans-done-0001");
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
    admin("/admin/behaviour",
          "{\"repeatAnswer\": \"ALREADY_EXECUTED\", \"callbackDelayMs\": 60000}");
    assert_error(activate(GOOD, "tp-social-daily", "trans-done-0001"), 409,
                 "PURCHASE_ALREADY_EXECUTED");
    /* Still PENDING: in progress. */
    a = activate(GOOD, ASYNC_OFFER, "trans-done-0002");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(activation_status(&a), "PENDING");
    json_decref(a.json);
    assert_error(activate(GOOD, ASYNC_OFFER, "trans-done-0002"), 409, "PURCHASE_IN_PROGRESS");
    /* A refused one is answered as before; a conflict stays a conflict. */
    assert_error(activate(GOOD, "tp-data-monthly-10gb", "trans-done-0003"), 402,
                 "INSUFFICIENT_FUNDS");
    assert_error(activate(GOOD, "tp-data-monthly-10gb", "trans-done-0003"), 402,
                 "INSUFFICIENT_FUNDS");
    assert_error(activate(GOOD, "tp-music-daily", "trans-done-0001"), 409, "CONFLICT");
    answer beh = get("/admin/behaviour");
    ck_assert_str_eq(str(beh.json, "repeatAnswer"), "ALREADY_EXECUTED");
    ck_assert_int_eq(num(beh.json, "callbackDelayMs"), 60000);
    json_decref(beh.json);

    /* Back to the default: the original outcome. */
    admin("/admin/reset", NULL);
    a = activate(GOOD, "tp-social-daily", "trans-done-0001");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(activation_status(&a), "OK");
    json_decref(a.json);
    ck_assert_int_eq(wallet(GOOD), 52075 - 6000 - 25000);
}
END_TEST

typedef struct {
    const char *customer;
    const char *offer;
    char trans[40];
    answer result;
} job;

static void *activate_thread(void *arg) {
    job *j = arg;
    http_client *c = http_client_new();
    j->result = activate_with(c, j->customer, "MSISDN", body_for(j->offer, j->trans));
    http_client_free(c);
    return NULL;
}

static void run_jobs(job *jobs, size_t n) {
    pthread_t t[32];
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, activate_thread, &jobs[i]), 0);
    for (size_t i = 0; i < n; i++) pthread_join(t[i], NULL);
}

START_TEST(activate_concurrent_identical) {
    enum { N = 20 };
    job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (job){.customer = GOOD, .offer = "tp-data-daily-3gb"};
        snprintf(jobs[i].trans, sizeof jobs[i].trans, "trans-race-0001");
    }
    run_jobs(jobs, N);
    const char *code = NULL;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].result.status, 200);
        ck_assert_str_eq(activation_status(&jobs[i].result), "OK");
        const char *c = str(jobs[i].result.json, "confirmationCode");
        if (!code) code = c;
        ck_assert_str_eq(c, code);
    }
    for (int i = 0; i < N; i++) json_decref(jobs[i].result.json);
    ck_assert_int_eq(wallet(GOOD), 52075 - 16000);
    ck_assert_int_eq(plans_with(GOOD, "tp-data-daily-3gb"), 1);
    json_t *row = activation_row("trans-race-0001");
    ck_assert_int_eq(num(row, "debits"), 1);
    json_decref(row);
}
END_TEST

START_TEST(activate_concurrent_drain) {
    /* 20 different purchases of 60.00 from 520.75: exactly 8 fit. */
    enum { N = 20 };
    job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (job){.customer = GOOD, .offer = "tp-social-daily"};
        snprintf(jobs[i].trans, sizeof jobs[i].trans, "trans-drain-%04d", i);
    }
    run_jobs(jobs, N);
    int ok = 0, poor = 0;
    for (int i = 0; i < N; i++) {
        if (jobs[i].result.status == 200) ok++;
        if (jobs[i].result.status == 402) poor++;
        json_decref(jobs[i].result.json);
    }
    ck_assert_int_eq(ok, 8);
    ck_assert_int_eq(poor, 12);
    ck_assert_int_eq(wallet(GOOD), 52075 - 8 * 6000);
    ck_assert_int_eq(plans_with(GOOD, "tp-social-daily"), 8);
}
END_TEST

/* Readers see a debit and its plan together: balance + 25.00 x (music
 * plans) stays 520.75 in every answer while activations run. */
static atomic_bool stop_reading;

static void *consistency_reader(void *arg) {
    long *bad = arg;
    mno_request rq = {.customer_id = GOOD, .id_type = MNO_ID_MSISDN, .lang = "en"};
    while (!atomic_load(&stop_reading)) {
        mno_reply r = mno_balance(app.store, &rq, now_ms());
        if (r.status != 200) {
            (*bad)++;
            json_decref(r.body);
            continue;
        }
        int64_t minor;
        money_from_json(json_object_get(json_object_get(r.body, "monetaryBalance"), "value"), 2,
                        &minor);
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(r.body, "subscribedPlans"), i,
                           p) if (strcmp(json_string_value(json_object_get(p, "planId")),
                                         "tp-music-daily") == 0) minor += 2500;
        if (minor != 52075) (*bad)++;
        json_decref(r.body);
    }
    return NULL;
}

START_TEST(activate_reads_stay_consistent) {
    atomic_store(&stop_reading, false);
    long bad[2] = {0, 0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, consistency_reader, &bad[i]), 0);
    for (int i = 0; i < 20; i++) {
        mno_activate_request rq = {.customer_id = GOOD,
                                   .id_type = MNO_ID_MSISDN,
                                   .channel_id = "App",
                                   .service_provider = SP,
                                   .offer_id = "tp-music-daily"};
        snprintf(rq.trans_id, sizeof rq.trans_id, "trans-cons-%04d", i);
        mno_reply r = mno_activate(app.store, &rq, MNO_REPEAT_ORIGINAL, now_ms(), NULL);
        ck_assert_int_eq(r.status, 200);
        json_decref(r.body);
    }
    atomic_store(&stop_reading, true);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(bad[0] + bad[1], 0);
    ck_assert_int_eq(plans_with(GOOD, "tp-music-daily"), 20);
}
END_TEST

/* ---- behaviour knobs on /activate ---- */

START_TEST(activate_behaviour_knobs) {
    admin("/admin/behaviour", "{\"failStatus\": 503}");
    assert_error(activate(GOOD, "tp-video-hour", "trans-knob-0001"), 503, "CONGESTED");
    ck_assert_ptr_null(activation_row("trans-knob-0001")); /* nothing happened */

    admin("/admin/behaviour", "{\"delayMs\": 300}");
    answer a = activate(GOOD, "tp-video-hour", "trans-knob-0001");
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_ge(a.elapsed_ms, 290);
    json_decref(a.json);

    /* A hung answer: the activation happened, the answer is held; a retry
     * after the hang gets the same outcome. */
    admin("/admin/behaviour", "{\"hang\": true}");
    http_result r = {0};
    char url[256];
    snprintf(url, sizeof url, "%s/activate/" GOOD "?customerIdType=MSISDN", base);
    json_t *body = body_for("tp-music-daily", "trans-knob-0002");
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    http_post(client, url, NULL, "application/json", text, strlen(text), 300, &r);
    free(text);
    ck_assert(r.timed_out);
    http_result_free(&r);
    json_t *row = activation_row("trans-knob-0002");
    ck_assert_str_eq(str(row, "status"), "OK");
    json_decref(row);
    admin("/admin/reset", NULL);
    a = activate(GOOD, "tp-music-daily", "trans-knob-0002");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(activation_status(&a), "OK");
    json_decref(a.json);
    ck_assert_int_eq(wallet(GOOD), 52075 - 1550 - 2500);
    ck_assert_int_eq(stat_of("activate"), 1); /* reset zeroed the counters */
}
END_TEST

/* ---- async activations and callbacks ---- */

static callback cb_at(size_t i) {
    pthread_mutex_lock(&cb.lock);
    callback c = cb.got[i];
    pthread_mutex_unlock(&cb.lock);
    ck_assert_ptr_nonnull(c.body);
    return c;
}

START_TEST(async_backend_callback) {
    char cb_url[160];
    snprintf(cb_url, sizeof cb_url, "%s/sp/callback", cb_base);
    admin("/admin/behaviour", "{\"callbackDelayMs\": 300}");
    json_t *body = body_for(ASYNC_OFFER, "trans-async-0001");
    json_object_set_new(body, "callbackUrl", json_string(cb_url));
    json_object_set_new(body, "channelId", json_string("USSD"));
    answer a = activate_with(client, GOOD, "MSISDN", body);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(activation_status(&a), "PENDING");
    ck_assert_ptr_null(json_object_get(a.json, "confirmationCode"));
    ck_assert_str_eq(str(a.json, "fundSource"), "WALLET");
    json_decref(a.json);

    /* Charged at once, the plan comes with the completion. */
    ck_assert_int_eq(wallet(GOOD), 52075 - 25000);
    ck_assert_int_eq(plans_with(GOOD, ASYNC_OFFER), 0);
    a = activate(GOOD, ASYNC_OFFER, "trans-async-0001");
    ck_assert_str_eq(activation_status(&a), "PENDING");
    json_decref(a.json);
    ck_assert_uint_eq(cb_count(), 0);

    wait_callbacks(1);
    callback c = cb_at(0);
    ck_assert_str_eq(c.path, "/sp/callback");
    ck_assert_str_eq(str(c.body, "transId"), "trans-async-0001");
    ck_assert_str_eq(str(c.body, "channelId"), "USSD");
    ck_assert_str_eq(str(c.body, "serviceProviderId"), SP);
    ck_assert_str_eq(str(c.body, "offerId"), ASYNC_OFFER);
    json_t *st = json_object_get(c.body, "activationStatus");
    ck_assert_str_eq(str(st, "status"), "OK");
    ck_assert_ptr_null(json_object_get(st, "errorMessage"));
    const char *code = str(c.body, "confirmationCode");
    assert_confirmation_code(code);

    wait_async_idle();
    json_t *b = balance_json(GOOD, "en");
    ck_assert_int_eq(money_of(b, "monetaryBalance"), 52075 - 25000);
    json_t *p = json_array_get(json_object_get(b, "subscribedPlans"), 3);
    ck_assert_str_eq(str(p, "planId"), ASYNC_OFFER);
    ck_assert_str_eq(str(p, "planName"), "Weekly Data Bundle");
    ck_assert_int_eq(num(json_object_get(p, "balance"), "remainingBytes"), 5368709120LL);
    ck_assert_int_eq(num(json_object_get(p, "recurrence"), "frequency"), 7);
    json_decref(b);

    /* A repeat now answers OK with the code of the callback. */
    a = activate(GOOD, ASYNC_OFFER, "trans-async-0001");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(activation_status(&a), "OK");
    ck_assert_str_eq(str(a.json, "confirmationCode"), code);
    json_decref(a.json);
    json_t *row = activation_row("trans-async-0001");
    ck_assert_str_eq(str(row, "status"), "OK");
    ck_assert_int_eq(num(row, "debits"), 1);
    ck_assert_int_eq(num(row, "callbackAttempts"), 1);
    ck_assert_int_eq(num(row, "callbackStatus"), 200);
    ck_assert_int_ge(num(row, "completedMs") - num(row, "createdMs"), 290);
    json_decref(row);

    /* Without a callbackUrl: the configured default. */
    a = activate(POSTPAID, ASYNC_OFFER, "trans-async-0002");
    ck_assert_str_eq(activation_status(&a), "PENDING");
    json_decref(a.json);
    wait_callbacks(2);
    c = cb_at(1);
    ck_assert_str_eq(c.path, "/activationCallback/tp");
    ck_assert_str_eq(str(c.body, "transId"), "trans-async-0002");
    ck_assert_uint_eq(cb_count(), 2);
}
END_TEST

START_TEST(async_millom_callback) {
    admin("/admin/behaviour", "{\"callbackStyle\": \"millom\", \"callbackDelayMs\": 0}");
    json_t *body = body_for(ASYNC_OFFER, "trans-millom-0001");
    json_object_set_new(body, "callbackUrl", json_string("http://127.0.0.1:1/ignored"));
    answer a = activate_with(client, POSTPAID, "MSISDN", body);
    ck_assert_str_eq(activation_status(&a), "PENDING");
    json_decref(a.json);
    wait_callbacks(1);
    callback c = cb_at(0);
    ck_assert_str_eq(c.path, "/callback/v1/tp/");
    ck_assert_str_eq(c.id_value, POSTPAID);
    ck_assert_str_eq(c.id_type, "MSISDN");
    ck_assert_str_eq(str(c.body, "transactionId"), "trans-millom-0001");
    ck_assert_str_eq(str(c.body, "appId"), SP);
    ck_assert_ptr_nonnull(strstr(str(c.body, "message"), "tp-"));
    ck_assert_ptr_null(json_object_get(c.body, "errorType"));
    ck_assert_ptr_null(json_object_get(c.body, "errorCode"));
    wait_async_idle();
    ck_assert_int_eq(plans_with(POSTPAID, ASYNC_OFFER), 1);
    ck_assert_int_eq(wallet(POSTPAID), 250000 - 25000);
}
END_TEST

START_TEST(async_callback_fail_refunds) {
    admin("/admin/behaviour", "{\"callbackFail\": true, \"callbackDelayMs\": 100}");
    answer a = activate(GOOD, ASYNC_OFFER, "trans-fail-0001");
    ck_assert_str_eq(activation_status(&a), "PENDING");
    json_decref(a.json);
    ck_assert_int_eq(wallet(GOOD), 52075 - 25000);
    wait_callbacks(1);
    callback c = cb_at(0);
    json_t *st = json_object_get(c.body, "activationStatus");
    ck_assert_str_eq(str(st, "status"), "FAIL");
    ck_assert_str_eq(str(json_object_get(st, "errorMessage"), "errorType"), "INTERNAL_ERROR");
    ck_assert_ptr_null(json_object_get(c.body, "confirmationCode"));
    wait_async_idle();

    /* Refunded, no plan; the repeat answers the FAIL. */
    ck_assert_int_eq(wallet(GOOD), 52075);
    ck_assert_int_eq(plans_with(GOOD, ASYNC_OFFER), 0);
    json_t *row = activation_row("trans-fail-0001");
    ck_assert_str_eq(str(row, "status"), "FAIL");
    ck_assert_str_eq(str(row, "errorType"), "INTERNAL_ERROR");
    ck_assert_int_eq(num(row, "debits"), 1);
    ck_assert_int_eq(num(row, "refunds"), 1);
    json_decref(row);
    a = activate(GOOD, ASYNC_OFFER, "trans-fail-0001");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(activation_status(&a), "FAIL");
    ck_assert_str_eq(
        str(json_object_get(json_object_get(a.json, "activationStatus"), "errorMessage"),
            "errorType"),
        "INTERNAL_ERROR");
    json_decref(a.json);

    /* Millom style: FAILURE_IN_BU. */
    admin("/admin/behaviour",
          "{\"callbackFail\": true, \"callbackStyle\": \"millom\", \"callbackDelayMs\": 0}");
    a = activate(GOOD, ASYNC_OFFER, "trans-fail-0002");
    json_decref(a.json);
    wait_callbacks(2);
    c = cb_at(1);
    ck_assert_str_eq(c.path, "/callback/v1/tp/");
    ck_assert_str_eq(str(c.body, "transactionId"), "trans-fail-0002");
    ck_assert_str_eq(str(c.body, "errorType"), "FAILURE_IN_BU");
    ck_assert_str_eq(str(c.body, "errorCode"), "500");
    wait_async_idle();
    ck_assert_int_eq(wallet(GOOD), 52075);
}
END_TEST

START_TEST(async_callback_retries) {
    pthread_mutex_lock(&cb.lock);
    cb.script[0] = 503;
    cb.script[1] = 500;
    cb.n_script = 2;
    pthread_mutex_unlock(&cb.lock);
    admin("/admin/behaviour", "{\"callbackDelayMs\": 0}");
    answer a = activate(GOOD, ASYNC_OFFER, "trans-retry-0001");
    json_decref(a.json);
    wait_callbacks(3);
    wait_async_idle();
    json_t *row = activation_row("trans-retry-0001");
    ck_assert_int_eq(num(row, "callbackAttempts"), 3);
    ck_assert_int_eq(num(row, "callbackStatus"), 200);
    json_decref(row);

    /* 404 (unknown transaction at Millom) is final. */
    pthread_mutex_lock(&cb.lock);
    cb.script[0] = 404;
    cb.n_script = 1;
    cb.next_script = 0;
    pthread_mutex_unlock(&cb.lock);
    a = activate(POSTPAID, ASYNC_OFFER, "trans-retry-0002");
    json_decref(a.json);
    wait_callbacks(4);
    wait_async_idle();
    row = activation_row("trans-retry-0002");
    ck_assert_int_eq(num(row, "callbackAttempts"), 1);
    ck_assert_int_eq(num(row, "callbackStatus"), 404);
    json_decref(row);

    /* Nobody listening: 5 attempts (20, 40, 80, 160 ms apart), then it gives up. */
    json_t *body = body_for(ASYNC_OFFER, "trans-retry-0003");
    json_object_set_new(body, "callbackUrl", json_string("http://127.0.0.1:1/nobody"));
    a = activate_with(client, GOOD, "MSISDN", body);
    json_decref(a.json);
    wait_async_idle();
    row = activation_row("trans-retry-0003");
    ck_assert_str_eq(str(row, "status"), "OK");
    ck_assert_int_eq(num(row, "callbackAttempts"), 5);
    ck_assert_int_eq(num(row, "callbackStatus"), 0);
    json_decref(row);
    ck_assert_uint_eq(cb_count(), 4);
}
END_TEST

START_TEST(async_pending_survives_restart) {
    admin("/admin/behaviour", "{\"callbackDelayMs\": 600000}");
    answer a = activate(GOOD, ASYNC_OFFER, "trans-restart-01");
    ck_assert_str_eq(activation_status(&a), "PENDING");
    json_decref(a.json);
    ck_assert_int_eq(stat_of("asyncQueued"), 1);
    /* The worker stops with the completion queued; a new one finds the
     * PENDING row and completes it after the default delay. */
    mno_activations_free(app.activations);
    app.activations = NULL;
    ck_assert_int_eq(stat_of("asyncQueued"), 0);
    start_activations(0);
    wait_callbacks(1);
    wait_async_idle();
    json_t *row = activation_row("trans-restart-01");
    ck_assert_str_eq(str(row, "status"), "OK");
    json_decref(row);
    ck_assert_int_eq(plans_with(GOOD, ASYNC_OFFER), 1);
}
END_TEST

/* ---- admin ---- */

START_TEST(admin_activations_reset_and_reseed) {
    answer a = activate(GOOD, "tp-video-hour", "trans-admin-0001");
    json_decref(a.json);
    a = activate(LOANS, "tp-loan-data-500mb", "trans-admin-0002");
    json_decref(a.json);
    a = activate(TOPUP, "tp-video-hour", "trans-admin-0003");
    json_decref(a.json);

    a = get("/admin/activations");
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(num(a.json, "count"), 3);
    json_t *first = json_array_get(json_object_get(a.json, "activations"), 0);
    ck_assert_str_eq(str(first, "transId"), "trans-admin-0001");
    ck_assert_str_eq(str(first, "fundSource"), "WALLET");
    ck_assert_str_eq(str(json_object_get(first, "amount"), "currency"), "PKR");
    ck_assert_int_gt(num(first, "createdMs"), 0);
    ck_assert_int_eq(num(first, "completedMs"), num(first, "createdMs"));
    json_decref(a.json);
    a = get("/admin/activations?transId=trans-admin-0002");
    ck_assert_int_eq(num(a.json, "count"), 1);
    json_decref(a.json);
    a = get("/admin/activations?transId=nothing-like-it");
    ck_assert_int_eq(num(a.json, "count"), 0);
    json_decref(a.json);
    assert_error(post("/admin/activations", "{}"), 405, "BAD_REQUEST");
    assert_error(get("/admin/reseed"), 405, "BAD_REQUEST");

    /* reset keeps activations, balances and plans. */
    admin("/admin/reset", NULL);
    ck_assert_int_eq(wallet(GOOD), 52075 - 1550);
    json_t *row = activation_row("trans-admin-0001");
    ck_assert_ptr_nonnull(row);
    json_decref(row);

    /* reseed restores the seed and forgets activations. */
    a = post("/admin/reseed", NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(num(a.json, "activationsDeleted"), 3);
    json_decref(a.json);
    ck_assert_int_eq(wallet(GOOD), 52075);
    ck_assert_int_eq(loan(LOANS), 0);
    ck_assert_int_eq(plans_with(GOOD, "tp-video-hour"), 0);
    json_t *b = balance_json(GOOD, "en");
    ck_assert_uint_eq(json_array_size(json_object_get(b, "subscribedPlans")), 3);
    json_decref(b);
    a = get("/offers/" GOOD READ_Q);
    ck_assert_uint_eq(json_array_size(json_object_get(a.json, "offers")), 7);
    json_decref(a.json);
    a = get("/admin/activations");
    ck_assert_int_eq(num(a.json, "count"), 0);
    json_decref(a.json);
    /* The transId is free again. */
    a = activate(GOOD, "tp-video-hour", "trans-admin-0003");
    ck_assert_int_eq(a.status, 200);
    json_decref(a.json);
}
END_TEST

START_TEST(admin_behaviour_activation_fields) {
    answer a =
        post("/admin/behaviour", "{\"repeatAnswer\":\"ALREADY_EXECUTED\",\"callbackDelayMs\":5,"
                                 "\"callbackStyle\":\"millom\",\"callbackFail\":true}");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(str(a.json, "repeatAnswer"), "ALREADY_EXECUTED");
    ck_assert_int_eq(num(a.json, "callbackDelayMs"), 5);
    ck_assert_str_eq(str(a.json, "callbackStyle"), "millom");
    ck_assert(json_is_true(json_object_get(a.json, "callbackFail")));
    json_decref(a.json);
    static const char *const bad[] = {
        "{\"repeatAnswer\":\"AGAIN\"}", "{\"callbackDelayMs\":-1}", "{\"callbackDelayMs\":\"5\"}",
        "{\"callbackStyle\":\"soap\"}", "{\"callbackFail\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_error(post("/admin/behaviour", bad[i]), 400, "BAD_REQUEST");
    admin("/admin/reset", NULL);
    a = get("/admin/behaviour");
    ck_assert_str_eq(str(a.json, "repeatAnswer"), "ORIGINAL");
    ck_assert_str_eq(str(a.json, "callbackStyle"), "backend");
    ck_assert_ptr_null(json_object_get(a.json, "callbackDelayMs"));
    json_decref(a.json);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("mno_sandbox_activate");
    TCase *tc = tcase_create("activate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, activate_debits_and_adds_plan);
    tcase_add_test(tc, activate_by_opet_and_plus);
    tcase_add_test(tc, activate_insufficient_funds);
    tcase_add_test(tc, activate_invalid_product);
    tcase_add_test(tc, activate_on_loan);
    tcase_add_test(tc, activate_ewallet_and_free);
    tcase_add_test(tc, activate_bad_requests);
    tcase_add_test(tc, parse_activate_unit);
    tcase_add_test(tc, activate_idempotent_repeat);
    tcase_add_test(tc, activate_conflicting_repeat);
    tcase_add_test(tc, activate_already_executed_mode);
    tcase_add_test(tc, activate_concurrent_identical);
    tcase_add_test(tc, activate_concurrent_drain);
    tcase_add_test(tc, activate_reads_stay_consistent);
    tcase_add_test(tc, activate_behaviour_knobs);
    tcase_add_test(tc, async_backend_callback);
    tcase_add_test(tc, async_millom_callback);
    tcase_add_test(tc, async_callback_fail_refunds);
    tcase_add_test(tc, async_callback_retries);
    tcase_add_test(tc, async_pending_survives_restart);
    tcase_add_test(tc, admin_activations_reset_and_reseed);
    tcase_add_test(tc, admin_behaviour_activation_fields);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    setenv("MILLOM_LOG_LEVEL", "warn", 0);
    log_init("test_mno_sandbox_activate");
    signal(SIGPIPE, SIG_IGN);
    http_client_global_init();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
