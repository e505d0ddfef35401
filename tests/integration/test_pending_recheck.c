/* Pending purchases end without the operator's callback: the whole stack
 * with purchase-executor's callbackUrl pointing at a dead port (so
 * mno-sandbox's callbacks never reach Millom) and MILLOM_PENDING_RECHECK_S=1.
 * An async purchase (tp-data-weekly-async) is answered PENDING; the retry
 * thread re-sends POST /activate with the same transId and takes the
 * operator's stored outcome:
 *   - completed: the management look-up shows it with mno-sandbox's
 *     confirmation code, exactly one debit, no callback applied, and the
 *     provider's purchase callback reaches sp-sandbox;
 *   - failed (callbackFail): failed by re-check, charged once and refunded;
 *   - still PENDING (a completion 10 minutes away) past
 *     MILLOM_PENDING_MAX_AGE_S=2: listed by GET /mgmt/tp/purchases?overdue=true
 *     and counted in millom_purchases_overdue. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_PORT 19180
#define SP "testserviceprovider"
#define MSISDN "924542610006" /* 2500.00 PKR: ten of the 250.00 async plan */
#define ASYNC_PLAN "tp-data-weekly-async"

static test_stack stack;
static char edge[64], mno[64], sp[64], executor[64];

static const char *new_transid(char *buf, size_t len, const char *tag) {
    static int seq;
    snprintf(buf, len, "recheck-%s-%ld-%d", tag, (long)getpid(), ++seq);
    return buf;
}

/* Buys the async plan; the answer must be 202 processing (PENDING). */
static void buy_async(const char *transid) {
    char url[256], body[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/" MSISDN "/purchasePlan", edge);
    snprintf(body, sizeof body, "{\"transid\":\"%s\",\"planid\":\"" ASYNC_PLAN "\"}", transid);
    long status = 0;
    json_t *j = test_post_json(url, body, &status);
    ck_assert_msg(status == 202, "purchase %s: status %ld", transid, status);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "processing");
    json_decref(j);
}

static void set_behaviour(const char *json) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/behaviour", mno);
    long status = 0;
    json_decref(test_post_json(url, json, &status));
    ck_assert_int_eq(status, 200);
}

/* The look-up of a purchase (200 expected); caller decrefs. */
static json_t *lookup(const char *transid) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s", edge, transid);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_msg(status == 200, "look-up %s: %ld", transid, status);
    return j;
}

/* Polls the look-up until the purchase is final (bounded: 30 s); returns
 * the last look-up (caller decrefs). */
static json_t *wait_final(const char *transid) {
    json_t *j = NULL;
    for (int i = 0; i < 300; i++) {
        json_decref(j);
        j = lookup(transid);
        const char *state = json_string_value(json_object_get(j, "state"));
        if (state && (strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0)) break;
        test_sleep_ms(100);
    }
    return j;
}

/* mno-sandbox's one activation of a transId; caller decrefs. */
static json_t *mno_activation(const char *transid) {
    char url[256], op_tid[37];
    test_operator_transid(SP, transid, op_tid); /* what the operator was sent */
    snprintf(url, sizeof url, "%s/admin/activations?transId=%s", mno, op_tid);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    json_t *list = json_object_get(j, "activations");
    ck_assert_int_eq(json_array_size(list), 1);
    json_t *a = json_incref(json_array_get(list, 0));
    json_decref(j);
    return a;
}

START_TEST(pending_purchase_completes_by_recheck_without_callback) {
    char tid[64];
    buy_async(new_transid(tid, sizeof tid, "ok"));
    json_t *p = wait_final(tid);
    ck_assert_str_eq(json_string_value(json_object_get(p, "state")), "completed");
    /* At least the first call and one re-check. */
    ck_assert_int_ge(json_integer_value(json_object_get(p, "attempts")), 2);
    ck_assert_ptr_null(json_object_get(p, "nextCheckAt"));

    json_t *a = mno_activation(tid);
    ck_assert_str_eq(json_string_value(json_object_get(a, "status")), "OK");
    ck_assert_str_eq(json_string_value(json_object_get(p, "confirmationCode")),
                     json_string_value(json_object_get(a, "confirmationCode")));
    /* The operator did try its callback, and it never reached Millom. */
    json_t *cb_status = json_object_get(a, "callbackStatus");
    ck_assert_msg(!json_is_integer(cb_status) || json_integer_value(cb_status) != 200,
                  "the callback reached someone");
    json_decref(a);
    json_decref(p);

    long debits = -1, refunds = -1;
    ck_assert_int_eq(test_mno_activations(mno, tid, &debits, &refunds), 200);
    ck_assert_int_eq(debits, 1);
    ck_assert_int_eq(refunds, 0);
    ck_assert_int_eq(test_metric_sum(executor, "millom_activation_callbacks_total", NULL), 0);
    ck_assert_int_ge(test_metric_sum(executor, "millom_pending_rechecks_total", NULL), 1);

    /* The purchase event follows: the provider's purchase callback. */
    int n = 0;
    for (int i = 0; i < 300 && (n = test_sp_received_count(sp, "callback", tid, 1, NULL, NULL)) < 1;
         i++)
        test_sleep_ms(100);
    ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(pending_purchase_fails_by_recheck_when_the_operator_failed_it) {
    set_behaviour("{\"callbackFail\":true,\"callbackDelayMs\":100}");
    char tid[64];
    buy_async(new_transid(tid, sizeof tid, "fail"));
    json_t *p = wait_final(tid);
    set_behaviour("{}");
    ck_assert_str_eq(json_string_value(json_object_get(p, "state")), "failed");
    ck_assert_str_eq(json_string_value(json_object_get(p, "errorType")), "INTERNAL_ERROR");
    ck_assert_ptr_null(json_object_get(p, "confirmationCode"));
    json_decref(p);
    long debits = -1, refunds = -1;
    ck_assert_int_eq(test_mno_activations(mno, tid, &debits, &refunds), 200);
    ck_assert_int_eq(debits, 1);
    ck_assert_int_eq(refunds, 1);
    ck_assert_int_eq(test_metric_sum(executor, "millom_activation_callbacks_total", NULL), 0);
}
END_TEST

/* Whether the overdue listing holds transid; the listing's status in *status. */
static int overdue_lists(const char *query, const char *transid, long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases?%s", edge, query);
    json_t *j = test_get_json(url, NULL, status);
    int found = 0;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "purchases"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "transid")), transid) == 0) {
            ck_assert_str_eq(json_string_value(json_object_get(o, "state")), "pending");
            ck_assert_ptr_nonnull(json_object_get(o, "nextCheckAt"));
            found = 1;
        }
    }
    if (*status == 200)
        ck_assert_int_eq(json_integer_value(json_object_get(j, "overdueAfterSeconds")), 2);
    json_decref(j);
    return found;
}

START_TEST(purchases_pending_too_long_are_listed_and_counted) {
    /* The operator keeps answering PENDING: its completion is 10 min away. */
    set_behaviour("{\"callbackDelayMs\":600000}");
    char tid[64];
    buy_async(new_transid(tid, sizeof tid, "overdue"));
    set_behaviour("{}");
    long status = 0;
    int listed = 0;
    for (int i = 0; i < 300 && !listed; i++) {
        listed = overdue_lists("overdue=true", tid, &status);
        ck_assert_int_eq(status, 200);
        if (!listed) test_sleep_ms(100);
    }
    ck_assert_msg(listed, "%s never listed as overdue", tid);
    long gauge = -1;
    for (int i = 0; i < 100 && (gauge = test_metric(executor, "millom_purchases_overdue")) < 1; i++)
        test_sleep_ms(100);
    ck_assert_int_ge(gauge, 1);
    /* Re-checked meanwhile (same transId: still one debit), still pending. */
    json_t *p = lookup(tid);
    ck_assert_str_eq(json_string_value(json_object_get(p, "state")), "pending");
    json_decref(p);
    long debits = -1;
    ck_assert_int_eq(test_mno_activations(mno, tid, &debits, NULL), 200);
    ck_assert_int_eq(debits, 1);

    /* Per provider, and the refusals. */
    ck_assert(overdue_lists("overdue=true&serviceProvider=" SP, tid, &status));
    ck_assert_int_eq(status, 200);
    ck_assert(!overdue_lists("overdue=true&serviceProvider=otherprovider", tid, &status));
    ck_assert_int_eq(status, 200);
    overdue_lists("overdue=yes", tid, &status);
    ck_assert_int_eq(status, 400);
    overdue_lists("overdue=true&subscriberId=" MSISDN, tid, &status);
    ck_assert_int_eq(status, 400);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Port 9 (discard) on loopback: nothing listens, callbacks are refused. */
    const char *env[] = {
        "MILLOM_PURCHASE_TIMER_S=0",        "MILLOM_CALLBACK_BASE_URL=http://127.0.0.1:9",
        "MILLOM_MNO_CALLBACK_DELAY_MS=200", "MILLOM_MNO_CALLBACK_ATTEMPTS=1",
        "MILLOM_PENDING_RECHECK_S=1",       "MILLOM_PENDING_RECHECK_MAX_S=2",
        "MILLOM_PENDING_MAX_AGE_S=2",       NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);
    snprintf(sp, sizeof sp, "http://127.0.0.1:%d", stack.sp_port);
    snprintf(executor, sizeof executor, "http://127.0.0.1:%d", stack.executor_port);

    Suite *s = suite_create("pending_recheck");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pending_purchase_completes_by_recheck_without_callback);
    tcase_add_test(tc, pending_purchase_fails_by_recheck_when_the_operator_failed_it);
    tcase_add_test(tc, purchases_pending_too_long_are_listed_and_counted);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
