/* purchase-executor's lanes (MILLOM_EXECUTOR_LANES) and the operator's
 * maxInFlight, end to end: api-edge -> millom.purchase.commands ->
 * purchase-executor (16 lanes) -> mno-sandbox, whose answers are held
 * back a moment (delayMs) so that calls overlap.
 *
 * - 48 purchases for three subscribers, all sent at once (distinct
 *   transids: the commands' key, so they spread over the lanes): each is
 *   completed and activated exactly once at mno-sandbox (one activation
 *   record for its operator transId, debited once).
 * - purchase-executor runs with a tenants file giving the operator
 *   maxInFlight 3: mno-sandbox never holds more than 3 of its calls at
 *   once (GET /admin/stats "pending", sampled all along), and does hold
 *   more than one (the lanes run at once).
 * - A repeat of every transid afterwards is answered from the store with
 *   the same confirmation code and activates nothing more.
 * The purchase timer is off here (each subscriber buys one plan many
 * times). Waits are bounded polls. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_PORT 21000
#define SP "testserviceprovider"
#define MAX_IN_FLIGHT 3
#define N_BUYS 48

static test_stack stack;
static char edge[64], mno[64];

typedef struct {
    const char *msisdn, *plan;
    char transid[64];
    long status;
    char code[128];
} buy;

static buy buys[N_BUYS];

static json_t *purchase(const char *msisdn, const char *transid, const char *plan, long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, msisdn);
    json_t *body = json_pack("{s:s, s:s}", "transid", transid, "planid", plan);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_t *answer = test_post_json(url, text, status);
    free(text);
    return answer;
}

static void *buy_one(void *arg) {
    buy *b = arg;
    json_t *j = purchase(b->msisdn, b->transid, b->plan, &b->status);
    const char *code = json_string_value(json_object_get(j, "confirmationCode"));
    snprintf(b->code, sizeof b->code, "%s", code ? code : "");
    json_decref(j);
    return NULL;
}

/* mno-sandbox's answers waiting for their delay, sampled until stopped. */
static atomic_int sampling, most_pending, samples;

static void *sample_pending(void *arg) {
    (void)arg;
    char url[128];
    snprintf(url, sizeof url, "%s/admin/stats", mno);
    while (atomic_load(&sampling)) {
        long status = 0;
        json_t *j = test_get_json(url, NULL, &status);
        if (status == 200) {
            int p = (int)json_integer_value(json_object_get(j, "pending"));
            if (p > atomic_load(&most_pending)) atomic_store(&most_pending, p);
            atomic_fetch_add(&samples, 1);
        }
        json_decref(j);
        test_sleep_ms(5);
    }
    return NULL;
}

/* The state the look-up shows once final (bounded poll). */
static char *wait_final_state(const char *transid) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s", edge, transid);
    for (int i = 0; i < 600; i++) {
        long status = 0;
        json_t *j = test_get_json(url, NULL, &status);
        const char *state = json_string_value(json_object_get(j, "state"));
        if (status == 200 && state &&
            (strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0)) {
            char *copy = strdup(state);
            json_decref(j);
            return copy;
        }
        json_decref(j);
        test_sleep_ms(100);
    }
    return strdup("(not final)");
}

/* mno-sandbox's activation records for the transid's operator transId. */
static long activations(const char *transid) {
    char url[256], op_tid[37];
    test_operator_transid(SP, transid, op_tid);
    snprintf(url, sizeof url, "%s/admin/activations?transId=%s", mno, op_tid);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    long n = (long)json_array_size(json_object_get(j, "activations"));
    json_decref(j);
    return n;
}

static void set_behaviour(const char *body) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/behaviour", mno);
    long status = 0;
    json_decref(test_post_json(url, body, &status));
    ck_assert_int_eq(status, 200);
}

START_TEST(many_purchases_at_once_each_activated_once_within_max_in_flight) {
    /* Within each subscriber's balance: 0003 16 x 15.50 + 8 x 25.00 of
     * 520.75, 0001 16 x 15.50 of 300.00, 0006 (postpaid) 8 x 160.00. */
    for (int i = 0; i < N_BUYS; i++) {
        buy *b = &buys[i];
        if (i < 16) {
            b->msisdn = "924542610003";
            b->plan = "tp-video-hour";
        } else if (i < 24) {
            b->msisdn = "924542610003";
            b->plan = "tp-music-daily";
        } else if (i < 40) {
            b->msisdn = "924542610001";
            b->plan = "tp-video-hour";
        } else {
            b->msisdn = "924542610006";
            b->plan = "tp-data-daily-3gb";
        }
        snprintf(b->transid, sizeof b->transid, "lanes-%ld-%02d", (long)getpid(), i);
    }
    set_behaviour("{\"delayMs\": 200}");
    atomic_store(&sampling, 1);
    pthread_t sampler, th[N_BUYS];
    ck_assert_int_eq(pthread_create(&sampler, NULL, sample_pending, NULL), 0);
    for (int i = 0; i < N_BUYS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, buy_one, &buys[i]), 0);
    for (int i = 0; i < N_BUYS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_BUYS; i++) {
        /* The outcome, or 202 while it is still being activated. */
        ck_assert_msg(buys[i].status == 200 || buys[i].status == 202, "%s: status %ld",
                      buys[i].transid, buys[i].status);
        char *state = wait_final_state(buys[i].transid);
        ck_assert_msg(strcmp(state, "completed") == 0, "%s: %s", buys[i].transid, state);
        free(state);
    }
    atomic_store(&sampling, 0);
    pthread_join(sampler, NULL);
    set_behaviour("{}");
    fprintf(stderr, "purchase_lanes: at most %d calls held at once (%d samples)\n",
            atomic_load(&most_pending), atomic_load(&samples));
    ck_assert_int_gt(atomic_load(&samples), 0);
    ck_assert_msg(atomic_load(&most_pending) <= MAX_IN_FLIGHT,
                  "mno-sandbox held %d calls at once; maxInFlight is %d",
                  atomic_load(&most_pending), MAX_IN_FLIGHT);
    ck_assert_msg(atomic_load(&most_pending) >= 2, "never more than one call at once");

    for (int i = 0; i < N_BUYS; i++) {
        ck_assert_msg(activations(buys[i].transid) == 1, "%s activated %ld times", buys[i].transid,
                      activations(buys[i].transid));
        if (strcmp(buys[i].msisdn, "924542610006") != 0) {
            long debits = 0;
            ck_assert_int_eq(test_mno_activations(mno, buys[i].transid, &debits, NULL), 200);
            ck_assert_int_eq(debits, 1);
        }
    }

    /* Repeats: the stored answer, nothing activated again. */
    for (int i = 0; i < N_BUYS; i++) {
        char first[128];
        snprintf(first, sizeof first, "%s", buys[i].code);
        buy_one(&buys[i]);
        ck_assert_int_eq(buys[i].status, 200);
        if (first[0]) ck_assert_str_eq(buys[i].code, first);
        ck_assert_int_eq(activations(buys[i].transid), 1);
    }
}
END_TEST

/* purchase-executor again, with the stack's tenants but maxInFlight 3. */
static int restart_executor_with_limit(void) {
    json_error_t jerr;
    json_t *t = json_load_file(stack.tenants_file, 0, &jerr);
    if (!t) return -1;
    size_t i;
    json_t *op;
    json_array_foreach(json_object_get(t, "operators"), i, op)
        json_object_set_new(op, "maxInFlight", json_integer(MAX_IN_FLIGHT));
    static char path[400], env_tenants[420];
    snprintf(path, sizeof path, "%s/tenants-limited.json", stack.dir);
    int rc = json_dump_file(t, path, JSON_INDENT(2));
    json_decref(t);
    if (rc != 0) return -1;
    snprintf(env_tenants, sizeof env_tenants, "MILLOM_TENANTS=%s", path);
    const char *env[] = {env_tenants, NULL};
    if (stack_stop_one(&stack, "purchase-executor") != 0) return -1;
    if (stack_respawn_in_place(&stack, "purchase-executor", env) < 0) return -1;
    return stack_wait_ready(stack.executor_port, 60000);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char cb_url[128];
    const char *env[] = {"MILLOM_PURCHASE_TIMER_S=0", "MILLOM_EXECUTOR_LANES=16", cb_url, NULL};
    snprintf(cb_url, sizeof cb_url, "MILLOM_CALLBACK_BASE_URL=http://127.0.0.1:%d", BASE_PORT);
    if (stack_start(&stack, BASE_PORT, env) != 0 || restart_executor_with_limit() != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);

    Suite *s = suite_create("purchase_lanes");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, many_purchases_at_once_each_activated_once_within_max_in_flight);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
