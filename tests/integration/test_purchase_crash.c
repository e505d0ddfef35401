/* Crash safety of purchases: while purchases flow, purchase-executor is
 * killed with SIGKILL twice (once between requests, once while the
 * operator is slow so activations are in flight) and restarted. Then every
 * accepted purchase must reach a final state, the operator must have
 * debited exactly once per completed transid (never for a failed one), and
 * millom.purchase.events must hold a COMPLETED event for every completed
 * purchase and none for the others, each with the x-correlator header of
 * the purchase's request (also when the purchase was resumed after a
 * crash: the id is kept with the purchase row). */
#include "tests/lib/stack.h"
#include "shared/plumbing/kafka.h"
#include "millom/v1/purchase.pb-c.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define PER_THREAD 12
#define TOTAL (THREADS * PER_THREAD)

static test_stack stack;
static char edge[64], mno[64];
static char transids[TOTAL][64];
static char correlators[TOTAL][64]; /* each purchase's x-correlator */
static long statuses[TOTAL];
static atomic_int done;

static void *buyer(void *arg) {
    int t = (int)(long)arg;
    char url[256];
    snprintf(url, sizeof url, "%s/std/testserviceprovider/tp/924542610002/purchasePlan", edge);
    for (int i = 0; i < PER_THREAD; i++) {
        int k = t * PER_THREAD + i;
        char body[256];
        snprintf(body, sizeof body,
                 "{\"transid\":\"%s\",\"planid\":\"tp-loan-social-200mb\",\"fundSource\":\"LOAN\"}",
                 transids[k]);
        char header[96];
        snprintf(header, sizeof header, "x-correlator: %s", correlators[k]);
        const char *headers[] = {header, NULL};
        test_response r;
        test_http("POST", url, headers, body, &r);
        statuses[k] = r.status;
        test_response_free(&r);
        atomic_fetch_add(&done, 1);
        test_sleep_ms(20);
    }
    return NULL;
}

static void mno_behaviour(const char *body) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/behaviour", mno);
    long status = 0;
    json_decref(test_post_json(url, body, &status));
    ck_assert_int_eq(status, 200);
}

static void crash_and_restart(void) {
    int st = stack_kill(&stack, "purchase-executor", SIGKILL);
    ck_assert(WIFSIGNALED(st));
    test_sleep_ms(200);
    ck_assert_int_gt(stack_spawn(&stack, "purchase-executor", NULL), 0);
    ck_assert_int_eq(stack_wait_ready(stack.executor_port, 60000), 0);
}

/* The final state of a purchase via the look-up API, polled (bounded). */
static int final_state(const char *transid, char *state, size_t len) {
    char url[256];
    if (snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s", edge, transid) >= (int)sizeof url)
        return -1;
    for (int i = 0; i < 600; i++) {
        long status = 0;
        json_t *j = test_get_json(url, NULL, &status);
        const char *s = json_string_value(json_object_get(j, "state"));
        if (status == 200 && s && (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0)) {
            snprintf(state, len, "%s", s);
            json_decref(j);
            return 0;
        }
        json_decref(j);
        test_sleep_ms(100);
    }
    return -1;
}

/* Debits net of refunds at mno-sandbox for a transId. */
static long debits(const char *transid) {
    long d = 0, r = 0;
    test_mno_activations(mno, transid, &d, &r);
    return d - r;
}

/* Reads millom.purchase.events from the start: which transids have a
 * COMPLETED event (duplicates allowed: at-least-once, de-duplicated by
 * transid), and which have an event whose x-correlator header is not the
 * purchase's. */
static int completed_events(int *has_completed, int *wrong_correlator) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (kafka_conf_common(conf, "crash-test-reader", err, sizeof err) != 0) return -1;
    /* rd_kafka_consumer_poll wants a group.id even with assign(). */
    rd_kafka_conf_set(conf, "group.id", "crash-test-reader", NULL, 0);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!c) return -1;
    /* Assign every partition from the beginning: no group needed. */
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, "millom.purchase.events", NULL);
    if (rd_kafka_metadata(c, 0, rkt, &md, 5000) != 0) return -1;
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    int64_t *high = calloc((size_t)parts, sizeof *high);
    for (int p = 0; p < parts; p++) {
        int64_t lo;
        rd_kafka_query_watermark_offsets(c, "millom.purchase.events", p, &lo, &high[p], 5000);
        rd_kafka_topic_partition_list_add(l, "millom.purchase.events", p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    int64_t remaining = 0;
    for (int p = 0; p < parts; p++) remaining += high[p];
    for (int idle = 0; remaining > 0 && idle < 100;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) {
            idle++;
            continue;
        }
        if (m->err) {
            fprintf(stderr, "events reader: %s\n", rd_kafka_message_errstr(m));
            idle++;
        } else {
            remaining--;
            Millom__V1__PurchaseEvent *ev =
                millom__v1__purchase_event__unpack(NULL, m->len, m->payload);
            rd_kafka_headers_t *h = NULL;
            const void *v = NULL;
            size_t vlen = 0;
            if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
                rd_kafka_header_get_last(h, "x-correlator", &v, &vlen) !=
                    RD_KAFKA_RESP_ERR_NO_ERROR)
                v = NULL;
            for (int k = 0; ev && k < TOTAL; k++) {
                if (strcmp(ev->transid, transids[k]) != 0) continue;
                if (ev->state == MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED)
                    has_completed[k] = 1;
                if (!v || vlen != strlen(correlators[k]) || memcmp(v, correlators[k], vlen) != 0)
                    wrong_correlator[k] = 1;
            }
            if (ev) millom__v1__purchase_event__free_unpacked(ev, NULL);
        }
        rd_kafka_message_destroy(m);
    }
    free(high);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return remaining == 0 ? 0 : -1;
}

START_TEST(kill_executor_while_buying) {
    for (int k = 0; k < TOTAL; k++) {
        snprintf(transids[k], sizeof transids[k], "crash-%ld-%02d", (long)getpid(), k);
        snprintf(correlators[k], sizeof correlators[k], "crash.%ld:%02d", (long)getpid(), k);
    }
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, buyer, (void *)t);

    /* First crash: between requests, early on. */
    while (atomic_load(&done) < TOTAL / 4) test_sleep_ms(10);
    crash_and_restart();
    /* Second crash: with a slow operator, so activations are in flight. */
    while (atomic_load(&done) < TOTAL / 2) test_sleep_ms(10);
    mno_behaviour("{\"delayMs\": 300}");
    test_sleep_ms(400);
    crash_and_restart();
    mno_behaviour("{}");
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);

    int completed = 0;
    for (int k = 0; k < TOTAL; k++) {
        ck_assert_msg(statuses[k] == 200 || statuses[k] == 202, "purchase %d answered %ld", k,
                      statuses[k]);
        char state[32];
        ck_assert_msg(final_state(transids[k], state, sizeof state) == 0,
                      "%s never reached a final state", transids[k]);
        long d = debits(transids[k]);
        if (strcmp(state, "completed") == 0) {
            completed++;
            ck_assert_msg(d == 1, "%s completed with %ld debits", transids[k], d);
        } else {
            ck_assert_msg(d == 0, "%s failed but was debited %ld times", transids[k], d);
        }
    }
    /* With no operator failure injected, every purchase completes. */
    ck_assert_int_eq(completed, TOTAL);
    int has_completed[TOTAL] = {0}, wrong_correlator[TOTAL] = {0};
    ck_assert_int_eq(completed_events(has_completed, wrong_correlator), 0);
    for (int k = 0; k < TOTAL; k++) {
        ck_assert_msg(has_completed[k], "no COMPLETED event for %s", transids[k]);
        ck_assert_msg(!wrong_correlator[k], "an event of %s lacks its x-correlator %s", transids[k],
                      correlators[k]);
    }
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *env[] = {"MILLOM_PURCHASE_TIMER_S=0", "MILLOM_PURCHASE_DEADLINE_MS=3000",
                         "MILLOM_KAFKA_SESSION_TIMEOUT_MS=5000", NULL};
    if (stack_start(&stack, 18280, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);
    Suite *s = suite_create("purchase crash");
    TCase *tc = tcase_create("kill -9");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, kill_executor_while_buying);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
