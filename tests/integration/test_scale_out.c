/* Scaling out on one machine: two instances each of api-edge,
 * offer-resolver, purchase-executor and notifier share the work through
 * their consumer groups, and state follows its partition.
 *
 *  1. Purchases through both api-edges and notifications for many
 *     subscribers: both executors and both notifiers did some of the work.
 *  2. Deliveries are left pending (sp-sandbox answers 503), a subscriber
 *     has used its notification quota, and more purchases are in flight
 *     while purchase-executor #2 and notifier #2 are stopped: their
 *     partitions move to #1, which restores their rows from the changelog
 *     topics before it handles those partitions.
 *  3. After the move: every purchase is final and was debited exactly once;
 *     every transid sent again (same body) gets the same answer without a
 *     new debit, a different body gets 409; duplicate notification
 *     transactionIds get 409, the used quota still holds (429), consents
 *     still hold, and every pending delivery reaches the provider.
 *  4. purchase-executor #2 comes back (its old SQLite plus the changelog):
 *     partitions are shared again and duplicates are still recognised.
 *
 * Everything is polled with a bound; nothing measures wall-clock time. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BASE_PORT 19080
#define EDGE2_PORT (BASE_PORT + 10)
#define RESOLVER2_PORT (BASE_PORT + 11)
#define EXECUTOR2_PORT (BASE_PORT + 12)
#define NOTIFIER2_PORT (BASE_PORT + 13)
#define SP "testserviceprovider"
#define BUYER "924542610002"
#define PLAN "{\"planid\":\"tp-loan-social-200mb\",\"fundSource\":\"LOAN\""
#define PARTITIONS 4 /* devbroker's default per topic */
#define N_BEFORE 24  /* purchases before the move */
#define N_DURING 16  /* purchases sent while #2 stops */
#define N_SUBS 16    /* notified subscribers */
#define N_PENDING 8  /* deliveries left pending at the move */

/* The topics each group consumes (their main.c): purchase-executor's
 * commands, callbacks, look-ups and top-up commands; notifier's subscriber
 * events, consents, purchase events, CPID registrations, consent queries
 * and top-up events. */
#define EXECUTOR_TOPICS 4
#define NOTIFIER_TOPICS 6

static test_stack stack;
static char edge[2][64], mno[64], sp[64], executor[2][64], notifier[2][64];
static char data2[300];

/* ------------------------------------------------------------ helpers */

static long assigned(const char *base) {
    return test_metric_sum(base, "millom_kafka_assigned_partitions", NULL);
}

/* Polls until cond holds, up to ms. */
#define WAIT_FOR(cond, ms)                                                             \
    ({                                                                                 \
        int ok_ = 0;                                                                   \
        for (int i_ = 0; i_ < (ms) / 100 && !(ok_ = (cond)); i_++) test_sleep_ms(100); \
        ok_ || (cond);                                                                 \
    })

static const char *transid(int i, char *buf, size_t len) {
    snprintf(buf, len, "scale-out-%04d", i);
    return buf;
}

/* purchasePlan through api-edge #(i % 2); the answer's status and state. */
static long buy(int i, const char *plan_body, char *state, size_t slen, char *code, size_t clen) {
    char url[256], body[256], tid[32];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/" BUYER "/purchasePlan", edge[i % 2]);
    snprintf(body, sizeof body, "%s,\"transid\":\"%s\"}", plan_body, transid(i, tid, sizeof tid));
    long status = 0;
    json_t *j = test_post_json(url, body, &status);
    if (state) snprintf(state, slen, "%s", json_string_value(json_object_get(j, "status")) ?: "");
    if (code)
        snprintf(code, clen, "%s", json_string_value(json_object_get(j, "confirmationCode")) ?: "");
    json_decref(j);
    return status;
}

/* The state through the look-up API (either api-edge), polled until final. */
static int final_state(int i, char *state, size_t len) {
    char url[256], tid[32];
    for (int k = 0; k < 300; k++) {
        snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s", edge[k % 2],
                 transid(i, tid, sizeof tid));
        long status = 0;
        json_t *j = test_get_json(url, NULL, &status);
        const char *s = json_string_value(json_object_get(j, "state"));
        int done = status == 200 && s && (!strcmp(s, "completed") || !strcmp(s, "failed"));
        if (done) snprintf(state, len, "%s", s);
        json_decref(j);
        if (done) return 0;
        test_sleep_ms(100);
    }
    return -1;
}

/* Debits net of refunds at mno-sandbox for purchase i. */
static long debits(int i) {
    char tid[32];
    long d = 0, r = 0;
    test_mno_activations(mno, transid(i, tid, sizeof tid), &d, &r);
    return d - r;
}

/* POST /activate calls the operator has seen. */
static long activate_calls(void) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/stats", mno);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    long n = status == 200 ? (long)json_integer_value(json_object_get(j, "activate")) : -1;
    json_decref(j);
    return n;
}

static const char *subscriber(int i, char *buf, size_t len) {
    snprintf(buf, len, "92300112%04d", i);
    return buf;
}

static void do_register(const char *msisdn) {
    long status = test_register_consent(edge[0], SP, msisdn, "scale-consent",
                                        "[\"low-data\",\"out-of-data\"]");
    ck_assert_msg(status == 200, "register %s: %ld", msisdn, status);
}

/* POST /notify/tp/v1/single through api-edge #edge_i; the status. */
static long notify(int edge_i, const char *msisdn, const char *tid) {
    char url[256], body[512];
    snprintf(url, sizeof url, "%s/notify/tp/v1/single?idValue=%s&idType=MSISDN", edge[edge_i],
             msisdn);
    snprintf(body, sizeof body,
             "{\"transactionId\":\"%s\",\"type\":\"low-data\",\"messages\":[{\"language\":"
             "\"en\",\"message\":\"almost out\"}],\"planDetails\":{\"planId\":\"p1\","
             "\"balance\":10,\"quota\":\"2000\",\"expiry\":\"2019-02-28T23:59:59.723+05:00\"}}",
             tid);
    test_response r;
    test_http("POST", url, NULL, body, &r);
    long status = r.status;
    test_response_free(&r);
    return status;
}

/* Notifications sp-sandbox answered 200 for transactionId tid. */
static int delivered(const char *tid) {
    return test_sp_received_count(sp, "notification", tid, 1, NULL, NULL);
}

static void sp_behaviour(const char *json) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/behaviour", sp);
    long status = 0;
    json_decref(test_post_json(url, json, &status));
    ck_assert_int_eq(status, 200);
}

static char *pending_tid(int i, char *buf, size_t len) {
    snprintf(buf, len, "scale-pending-%d", i);
    return buf;
}

/* ------------------------------------------------------------- the test */

static pid_t spawn_executor2(void) {
    char port[64], dir[340];
    snprintf(port, sizeof port, "MILLOM_EXECUTOR_PORT=%d", EXECUTOR2_PORT);
    snprintf(dir, sizeof dir, "MILLOM_DATA_DIR=%s", data2);
    const char *env[] = {port, dir, NULL};
    return stack_spawn_as(&stack, "purchase-executor", "purchase-executor-2", env);
}

static void start_second_instances(void) {
    snprintf(data2, sizeof data2, "%s/2", stack.dir);
    ck_assert_int_eq(mkdir(data2, 0700), 0);
    char dir[340], p1[64], p2[64], p3[64];
    snprintf(dir, sizeof dir, "MILLOM_DATA_DIR=%s", data2);
    snprintf(p1, sizeof p1, "MILLOM_EDGE_PORT=%d", EDGE2_PORT);
    snprintf(p2, sizeof p2, "MILLOM_RESOLVER_PORT=%d", RESOLVER2_PORT);
    snprintf(p3, sizeof p3, "MILLOM_NOTIFIER_PORT=%d", NOTIFIER2_PORT);
    /* Each reader of millom.replies has its own partition. */
    const char *edge_env[] = {dir, p1, "MILLOM_REPLY_PARTITION=1", NULL};
    const char *resolver_env[] = {dir, p2, NULL};
    const char *notifier_env[] = {dir, p3, "MILLOM_REPLY_PARTITION=6", NULL};
    ck_assert_int_gt(stack_spawn_as(&stack, "offer-resolver", "offer-resolver-2", resolver_env), 0);
    ck_assert_int_gt(spawn_executor2(), 0);
    ck_assert_int_gt(stack_spawn_as(&stack, "notifier", "notifier-2", notifier_env), 0);
    ck_assert_int_gt(stack_spawn_as(&stack, "api-edge", "api-edge-2", edge_env), 0);
    int ports[] = {RESOLVER2_PORT, EXECUTOR2_PORT, NOTIFIER2_PORT, EDGE2_PORT};
    for (size_t i = 0; i < 4; i++) ck_assert_int_eq(stack_wait_ready(ports[i], 60000), 0);
}

/* Both instances hold partitions and together all of them. */
static int shared_by_two(const char *a, const char *b, long topics) {
    long x = assigned(a), y = assigned(b);
    return x > 0 && y > 0 && x + y == topics * PARTITIONS;
}

typedef struct {
    int from, to;
    long status[N_DURING];
} buyer_job;

static void *buyer(void *arg) {
    buyer_job *job = arg;
    for (int i = job->from; i < job->to; i++) {
        job->status[i - job->from] = buy(i, PLAN, NULL, 0, NULL, 0);
        test_sleep_ms(50);
    }
    return NULL;
}

START_TEST(state_follows_its_partition) {
    start_second_instances();
    /* The groups settle: purchase-executor's, notifier's and
     * offer-resolver's 2 topics, each split between the two instances. */
    ck_assert_msg(WAIT_FOR(shared_by_two(executor[0], executor[1], EXECUTOR_TOPICS), 60000),
                  "executors hold %ld + %ld partitions", assigned(executor[0]),
                  assigned(executor[1]));
    ck_assert_msg(WAIT_FOR(shared_by_two(notifier[0], notifier[1], NOTIFIER_TOPICS), 60000),
                  "notifiers hold %ld + %ld partitions", assigned(notifier[0]),
                  assigned(notifier[1]));

    /* 1. Work is spread. */
    char state[32], code[64];
    char codes[N_BEFORE][64];
    for (int i = 0; i < N_BEFORE; i++) {
        ck_assert_int_eq(buy(i, PLAN, state, sizeof state, codes[i], sizeof codes[i]), 200);
        ck_assert_str_eq(state, "completed");
    }
    const char *cmds = "topic=\"millom.purchase.commands\"";
    long handled0 = test_metric_sum(executor[0], "millom_kafka_consumed_total", cmds);
    long handled1 = test_metric_sum(executor[1], "millom_kafka_consumed_total", cmds);
    ck_assert_msg(handled0 > 0 && handled1 > 0 && handled0 + handled1 == N_BEFORE,
                  "commands handled: %ld + %ld", handled0, handled1);

    char msisdn[32], tid[64];
    for (int i = 0; i < N_SUBS; i++) do_register(subscriber(i, msisdn, sizeof msisdn));
    for (int i = 0; i < N_SUBS; i++) {
        snprintf(tid, sizeof tid, "scale-first-%d", i);
        ck_assert_int_eq(notify(i % 2, subscriber(i, msisdn, sizeof msisdn), tid), 202);
    }
    for (int i = 0; i < N_SUBS; i++) {
        snprintf(tid, sizeof tid, "scale-first-%d", i);
        ck_assert_msg(WAIT_FOR(delivered(tid) >= 1, 20000), "%s not delivered", tid);
    }
    long sent0 = test_metric_sum(notifier[0], "millom_notifications_delivered_total", NULL);
    long sent1 = test_metric_sum(notifier[1], "millom_notifications_delivered_total", NULL);
    ck_assert_msg(sent0 > 0 && sent1 > 0, "delivered: %ld + %ld", sent0, sent1);

    /* 2. State to carry over: every subscriber uses up its quota (3; the
     * 4th is refused), and one more notification each stays pending. */
    for (int i = 0; i < N_SUBS; i++) {
        subscriber(i, msisdn, sizeof msisdn);
        for (int k = 0; k < 2; k++) {
            snprintf(tid, sizeof tid, "scale-quota-%d-%d", i, k);
            ck_assert_int_eq(notify(0, msisdn, tid), 202);
        }
        snprintf(tid, sizeof tid, "scale-over-%d", i);
        ck_assert_int_eq(notify(1, msisdn, tid), 429);
    }
    sp_behaviour("{\"failStatus\":503}");
    for (int i = 0; i < N_PENDING; i++) {
        /* New subscribers, with consent, not yet over quota. */
        subscriber(100 + i, msisdn, sizeof msisdn);
        do_register(msisdn);
        ck_assert_int_eq(notify(i % 2, msisdn, pending_tid(i, tid, sizeof tid)), 202);
    }
    ck_assert(
        WAIT_FOR(test_metric_sum(notifier[0], "millom_notifications_retried_total", NULL) +
                         test_metric_sum(notifier[1], "millom_notifications_retried_total", NULL) >=
                     N_PENDING,
                 20000));

    /* Purchases keep coming while purchase-executor #2 and notifier #2 stop. */
    buyer_job job = {.from = N_BEFORE, .to = N_BEFORE + N_DURING};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, buyer, &job), 0);
    test_sleep_ms(200);
    int st = stack_stop_one(&stack, "purchase-executor-2");
    int st2 = stack_stop_one(&stack, "notifier-2");
    pthread_join(t, NULL); /* before any assertion can leave this function */
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "purchase-executor-2 status 0x%x", st);
    ck_assert_msg(WIFEXITED(st2) && WEXITSTATUS(st2) == 0, "notifier-2 status 0x%x", st2);
    ck_assert_msg(WAIT_FOR(assigned(executor[0]) == EXECUTOR_TOPICS * PARTITIONS, 60000),
                  "executor #1 holds %ld partitions", assigned(executor[0]));
    ck_assert_msg(WAIT_FOR(assigned(notifier[0]) == NOTIFIER_TOPICS * PARTITIONS, 60000),
                  "notifier #1 holds %ld partitions", assigned(notifier[0]));

    /* 3. Nothing lost, nothing twice. */
    for (int i = 0; i < N_DURING; i++)
        ck_assert_msg(job.status[i] == 200 || job.status[i] == 202, "purchase %d: %ld",
                      N_BEFORE + i, job.status[i]);
    for (int i = 0; i < N_BEFORE + N_DURING; i++) {
        ck_assert_msg(final_state(i, state, sizeof state) == 0, "purchase %d not final", i);
        ck_assert_str_eq(state, "completed");
        ck_assert_msg(debits(i) == 1, "purchase %d debited %ld times", i, debits(i));
    }
    /* Every transid again, now all handled by #1: the same answer, no new
     * debit, and no call to the operator at all — #1 knows the transids #2
     * had handled from the changelog. */
    long calls = activate_calls();
    for (int i = 0; i < N_BEFORE + N_DURING; i++) {
        ck_assert_int_eq(buy(i, PLAN, state, sizeof state, code, sizeof code), 200);
        ck_assert_str_eq(state, "completed");
        if (i < N_BEFORE) ck_assert_str_eq(code, codes[i]);
        ck_assert_int_eq(debits(i), 1);
    }
    ck_assert_int_eq(activate_calls(), calls);
    /* The same transid with another body is a conflict. */
    ck_assert_int_eq(
        buy(0, "{\"planid\":\"tp-loan-data-500mb\",\"fundSource\":\"LOAN\"", NULL, 0, NULL, 0),
        409);
    ck_assert_int_eq(
        buy(1, "{\"planid\":\"tp-loan-data-500mb\",\"fundSource\":\"LOAN\"", NULL, 0, NULL, 0),
        409);

    for (int i = 0; i < N_SUBS; i++) {
        subscriber(i, msisdn, sizeof msisdn);
        snprintf(tid, sizeof tid, "scale-first-%d", i);
        ck_assert_msg(notify(i % 2, msisdn, tid) == 409, "duplicate %s not recognised", tid);
        snprintf(tid, sizeof tid, "scale-after-%d", i);
        ck_assert_msg(notify(i % 2, msisdn, tid) == 429, "quota of %s forgotten", msisdn);
    }
    sp_behaviour("{}");
    for (int i = 0; i < N_PENDING; i++)
        ck_assert_msg(WAIT_FOR(delivered(pending_tid(i, tid, sizeof tid)) >= 1, 30000),
                      "pending %s never delivered", tid);
    /* Consents moved too: a new notification reaches the provider. */
    subscriber(100, msisdn, sizeof msisdn);
    ck_assert_int_eq(notify(1, msisdn, "scale-late"), 202);
    ck_assert(WAIT_FOR(delivered("scale-late") >= 1, 20000));

    /* 4. #2 comes back with its old SQLite; partitions are shared again and
     * every purchase is still recognised. */
    ck_assert_int_gt(spawn_executor2(), 0);
    ck_assert_int_eq(stack_wait_ready(EXECUTOR2_PORT, 60000), 0);
    ck_assert_msg(WAIT_FOR(shared_by_two(executor[0], executor[1], EXECUTOR_TOPICS), 60000),
                  "executors hold %ld + %ld partitions", assigned(executor[0]),
                  assigned(executor[1]));
    long before = test_metric_sum(executor[1], "millom_kafka_consumed_total", cmds);
    calls = activate_calls();
    for (int i = 0; i < N_BEFORE + N_DURING; i++) {
        ck_assert_int_eq(buy(i, PLAN, state, sizeof state, NULL, 0), 200);
        ck_assert_str_eq(state, "completed");
        ck_assert_int_eq(debits(i), 1);
    }
    ck_assert_int_eq(activate_calls(), calls);
    ck_assert_int_gt(test_metric_sum(executor[1], "millom_kafka_consumed_total", cmds), before);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *env[] = {"MILLOM_PURCHASE_TIMER_S=0", "MILLOM_NOTIFY_BACKOFF_MS=50",
                         "MILLOM_NOTIFY_BACKOFF_MAX_MS=200", "MILLOM_NOTIFY_MAX_ATTEMPTS=100000",
                         NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge[0], sizeof edge[0], "http://127.0.0.1:%d", stack.edge_port);
    snprintf(edge[1], sizeof edge[1], "http://127.0.0.1:%d", EDGE2_PORT);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);
    snprintf(sp, sizeof sp, "http://127.0.0.1:%d", stack.sp_port);
    snprintf(executor[0], sizeof executor[0], "http://127.0.0.1:%d", stack.executor_port);
    snprintf(executor[1], sizeof executor[1], "http://127.0.0.1:%d", EXECUTOR2_PORT);
    snprintf(notifier[0], sizeof notifier[0], "http://127.0.0.1:%d", stack.notifier_port);
    snprintf(notifier[1], sizeof notifier[1], "http://127.0.0.1:%d", NOTIFIER2_PORT);

    Suite *s = suite_create("scale out");
    TCase *tc = tcase_create("two instances");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, state_follows_its_partition);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    int bad = stack_stop(&stack);
    curl_global_cleanup();
    return failed || bad ? EXIT_FAILURE : EXIT_SUCCESS;
}
