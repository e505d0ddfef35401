/* Durability of notification delivery (issue 6): sp-sandbox is "down"
 * (every request answered 503) while 1,000 SubscriberEvents are produced
 * straight to millom.subscriber.events; notifier is killed with SIGKILL
 * once mid-way and restarted. After sp-sandbox comes back, every event must
 * have been delivered at least once (answered 200), and after
 * de-duplication by transactionId each appears exactly once. Raw
 * duplicates are allowed (delivery is at least once) and only reported.
 *
 * Everything is polled with a bound; nothing measures wall-clock time (the
 * elapsed time is printed for information only). */
#include "tests/lib/stack.h"
#include "shared/plumbing/kafka.h"
#include "millom/v1/subscriber.pb-c.h"

#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BASE_PORT 18880
#define SP "testserviceprovider"
#define EVENTS 1000
#define SUBSCRIBERS 8
#define TYPE "low-data"

static test_stack stack;
static char edge[64], sp[64], notifier_admin[64];
static kafka_producer *producer;
static char tids[EVENTS][64];
static char prefix[48];
static int delivered_ok[EVENTS]; /* 200 answers per transactionId */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *subscriber(int i, char *buf, size_t len) {
    snprintf(buf, len, "9230011102%02d", i % SUBSCRIBERS);
    return buf;
}

static void do_register(const char *msisdn) {
    char tid[128];
    snprintf(tid, sizeof tid, "%s-consent-%s", prefix, msisdn);
    long status = test_register_consent(edge, SP, msisdn, tid, "[\"" TYPE "\"]");
    ck_assert_msg(status == 200, "register %s: %ld", msisdn, status);
}

static void set_behaviour(const char *json) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/behaviour", sp);
    test_response r;
    test_http("POST", url, NULL, json, &r);
    ck_assert_int_eq(r.status, 200);
    test_response_free(&r);
}

static long sp_admin_post(const char *path) {
    char url[128];
    snprintf(url, sizeof url, "%s%s", sp, path);
    long status = 0;
    json_t *j = test_post_json(url, "{}", &status);
    ck_assert_int_eq(status, 200);
    long cleared = (long)json_integer_value(json_object_get(j, "cleared"));
    json_decref(j);
    return cleared;
}

static void produce_event(int k) {
    char msisdn[32];
    subscriber(k, msisdn, sizeof msisdn);
    Millom__V1__SubscriberRef s = MILLOM__V1__SUBSCRIBER_REF__INIT;
    s.operator_ = "tp";
    s.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    s.subscriber_id = msisdn;
    Millom__V1__SubscriberEvent ev = MILLOM__V1__SUBSCRIBER_EVENT__INIT;
    ev.operator_ = "tp";
    ev.subscriber = &s;
    ev.type = TYPE;
    ev.transaction_id = tids[k];
    uint8_t buf[512];
    ck_assert_uint_le(millom__v1__subscriber_event__get_packed_size(&ev), sizeof buf);
    size_t len = millom__v1__subscriber_event__pack(&ev, buf);
    ck_assert_int_eq(kafka_produce(producer, "millom.subscriber.events", -1, msisdn, strlen(msisdn),
                                   buf, len, NULL, 0),
                     0);
}

/* Pages through sp-sandbox's notifications after *since; counts 200
 * answers per transactionId of this test and the other answers in *other. */
static void scan_received(long *since, long *raw_ok, long *other) {
    for (;;) {
        long status = 0;
        json_t *j = test_sp_received(sp, "notification", *since, 1000, &status);
        ck_assert_int_eq(status, 200);
        json_t *list = json_object_get(j, "received");
        size_t n = json_array_size(list), i;
        json_t *rec;
        json_array_foreach(list, i, rec) {
            long id = (long)json_integer_value(json_object_get(rec, "id"));
            if (id > *since) *since = id;
            const char *t = json_string_value(json_object_get(rec, "transactionId"));
            size_t plen = strlen(prefix);
            if (!t || strncmp(t, prefix, plen) != 0 || t[plen] != '-') continue;
            int k = atoi(t + plen + 1);
            if (k < 0 || k >= EVENTS || strcmp(t, tids[k]) != 0) continue;
            if (json_integer_value(json_object_get(rec, "status")) == 200) {
                delivered_ok[k]++;
                (*raw_ok)++;
            } else {
                (*other)++;
            }
        }
        json_decref(j);
        if (n < 1000) break;
    }
}

static int distinct_delivered(void) {
    int d = 0;
    for (int k = 0; k < EVENTS; k++) d += delivered_ok[k] > 0;
    return d;
}

START_TEST(outage_and_kill_lose_nothing) {
    double t0 = now_s();
    snprintf(prefix, sizeof prefix, "dur%ld", (long)getpid());
    for (int k = 0; k < EVENTS; k++) snprintf(tids[k], sizeof tids[k], "%s-%d", prefix, k);
    char msisdn[32];
    for (int i = 0; i < SUBSCRIBERS; i++) do_register(subscriber(i, msisdn, sizeof msisdn));

    /* sp-sandbox "down": every request 503 until reset. */
    set_behaviour("{\"failStatus\":503,\"failCount\":0}");

    for (int k = 0; k < EVENTS / 2; k++) produce_event(k);
    ck_assert_int_eq(kafka_producer_flush(producer, 10000), 0);
    /* Kill as soon as about half of the first batch is queued (the gauge is
     * refreshed per batch of the worker, so it may be more). */
    long depth = 0;
    for (int i = 0; i < 3000 && (depth = test_metric(notifier_admin,
                                                     "millom_delivery_queue_depth")) < EVENTS / 4;
         i++)
        test_sleep_ms(10);
    int st = stack_kill(&stack, "notifier", SIGKILL);
    ck_assert(WIFSIGNALED(st));
    fprintf(stderr, "durability: killed notifier -9 with queue depth %ld (%.1f s)\n", depth,
            now_s() - t0);
    test_sleep_ms(200);
    ck_assert_int_gt(stack_spawn(&stack, "notifier", NULL), 0);
    ck_assert_int_eq(stack_wait_ready(stack.notifier_port, 60000), 0);

    for (int k = EVENTS / 2; k < EVENTS; k++) produce_event(k);
    ck_assert_int_eq(kafka_producer_flush(producer, 10000), 0);
    /* Let the outage cover (nearly) all of them: wait until all are queued
     * (bounded), then bring sp-sandbox back. */
    for (int i = 0;
         i < 600 && (depth = test_metric(notifier_admin, "millom_delivery_queue_depth")) < EVENTS;
         i++)
        test_sleep_ms(50);
    fprintf(stderr, "durability: queue depth %ld before sp-sandbox comes back (%.1f s)\n", depth,
            now_s() - t0);
    long dead_before = test_metric(notifier_admin, "millom_notifications_dead_lettered_total");

    /* Nothing was answered 200 during the outage: drop those records. */
    long failed_attempts = sp_admin_post("/admin/clear");
    sp_admin_post("/admin/reset");
    double t_back = now_s();

    long since = 0, raw_ok = 0, other = 0;
    for (int i = 0; i < 1200; i++) {
        scan_received(&since, &raw_ok, &other);
        if (distinct_delivered() == EVENTS) break;
        test_sleep_ms(100);
    }
    /* Let the queue drain (bounded), then count once more for late copies. */
    for (int i = 0; i < 200 && test_metric(notifier_admin, "millom_delivery_queue_depth") > 0; i++)
        test_sleep_ms(50);
    scan_received(&since, &raw_ok, &other);
    int distinct = distinct_delivered();
    long dups = raw_ok - distinct;
    int max_copies = 0;
    for (int k = 0; k < EVENTS; k++)
        if (delivered_ok[k] > max_copies) max_copies = delivered_ok[k];
    fprintf(stderr,
            "durability: events %d, distinct delivered %d, raw 200 deliveries %ld, raw "
            "duplicates %ld (max copies of one id %d), non-200 after reset %ld, failed attempts "
            "during the outage %ld, dead-lettered %ld/%ld; %.1f s after sp-sandbox came back, "
            "%.1f s total\n",
            EVENTS, distinct, raw_ok, dups, max_copies, other, failed_attempts, dead_before,
            test_metric(notifier_admin, "millom_notifications_dead_lettered_total"),
            now_s() - t_back, now_s() - t0);
    for (int k = 0; k < EVENTS; k++)
        ck_assert_msg(delivered_ok[k] > 0, "%s was never delivered (%d of %d were)", tids[k],
                      distinct, EVENTS);
    ck_assert_int_eq(distinct, EVENTS);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char public_url[64];
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    const char *env[] = {"MILLOM_NOTIFY_BACKOFF_MS=50",
                         "MILLOM_NOTIFY_BACKOFF_MAX_MS=500",
                         "MILLOM_NOTIFY_MAX_ATTEMPTS=1000",
                         "MILLOM_NOTIFY_QUOTA=100000",
                         "MILLOM_KAFKA_SESSION_TIMEOUT_MS=5000",
                         "MILLOM_PURCHASE_TIMER_S=0",
                         public_url,
                         NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp, sizeof sp, "http://127.0.0.1:%d", stack.sp_port);
    snprintf(notifier_admin, sizeof notifier_admin, "http://127.0.0.1:%d", stack.notifier_port);
    char err[256];
    producer = kafka_producer_new("test-notify-durability", 0, err, sizeof err);
    if (!producer) {
        fprintf(stderr, "producer: %s\n", err);
        stack_stop(&stack);
        return 1;
    }
    Suite *s = suite_create("notify durability");
    TCase *tc = tcase_create("outage and kill -9");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, outage_and_kill_lose_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    kafka_producer_free(producer);
    int bad_exit = stack_stop(&stack);
    curl_global_cleanup();
    return failed || bad_exit ? 1 : 0;
}
