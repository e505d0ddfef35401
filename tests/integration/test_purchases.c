/* Purchases end to end: api-edge → millom.purchase.commands →
 * purchase-executor → mno-sandbox /activate (sync and async with a
 * callback through api-edge) → replies, look-ups and the balance.
 * Each test buys a different plan or subscriber, since the purchase timer
 * (on here, 60 s) refuses the same plan twice. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static test_stack stack;
static char edge[64], mno[64];

#define SP "testserviceprovider"

/* A transid unique to this run. */
static const char *new_transid(char *buf, size_t len, const char *tag) {
    static int seq;
    snprintf(buf, len, "test-%s-%ld-%d", tag, (long)getpid(), ++seq);
    return buf;
}

/* The offerContext upsellOffer gives for a plan. Caller frees. */
static char *offer_context(const char *msisdn, const char *plan) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/upsellOffer", edge, msisdn);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    char *ctx = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "offers"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "planId")), plan) == 0)
            ctx = strdup(json_string_value(json_object_get(o, "offerContext")));
    }
    json_decref(j);
    ck_assert_msg(ctx != NULL, "plan %s not offered to %s", plan, msisdn);
    return ctx;
}

static json_t *purchase(const char *msisdn, const char *transid, const char *plan, const char *ctx,
                        const char *fund, long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, msisdn);
    json_t *body = json_pack("{s:s, s:s}", "transid", transid, "planid", plan);
    if (ctx) json_object_set_new(body, "offercontext", json_string(ctx));
    if (fund) json_object_set_new(body, "fundSource", json_string(fund));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_t *answer = test_post_json(url, text, status);
    free(text);
    return answer;
}

/* How many times mno-sandbox debited for a transId (0 or 1 if correct). */
static long debits(const char *transid) {
    long n = 0;
    ck_assert_int_eq(test_mno_activations(mno, transid, &n, NULL), 200);
    return n;
}

static json_t *lookup(const char *transid, long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s", edge, transid);
    return test_get_json(url, NULL, status);
}

/* Polls the look-up until the purchase is in a final state (bounded). */
static char *wait_final_state(const char *transid) {
    for (int i = 0; i < 300; i++) {
        long status = 0;
        json_t *j = lookup(transid, &status);
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

static int has_plan(const char *msisdn, const char *plan) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/balance", edge, msisdn);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    int found = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(j, "activePlans"), i,
                       p) if (strcmp(json_string_value(json_object_get(p, "planId")), plan) == 0)
        found = 1;
    json_decref(j);
    return found;
}

START_TEST(sync_purchase_then_balance_shows_plan) {
    /* Read (and cache) the balance first, so a stale cache would show. */
    ck_assert(!has_plan("924542610003", "tp-social-daily"));
    char *ctx = offer_context("924542610003", "tp-social-daily");
    char tid[64];
    long status = 0;
    json_t *j = purchase("924542610003", new_transid(tid, sizeof tid, "sync"), "tp-social-daily",
                         ctx, NULL, &status);
    free(ctx);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "completed");
    ck_assert_str_eq(json_string_value(json_object_get(j, "transid")), tid);
    ck_assert_str_eq(json_string_value(json_object_get(j, "fundSource")), "WALLET");
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "confirmationCode")));
    json_decref(j);
    ck_assert(has_plan("924542610003", "tp-social-daily"));
    ck_assert_int_eq(debits(tid), 1);
    /* The look-up agrees. */
    j = lookup(tid, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "completed");
    ck_assert_str_eq(json_string_value(json_object_get(j, "price")), "60.00");
    ck_assert_str_eq(json_string_value(json_object_get(j, "planId")), "tp-social-daily");
    json_decref(j);
}
END_TEST

START_TEST(no_money_no_purchase) {
    char tid[64];
    long status = 0;
    json_t *j = purchase("924542610000", new_transid(tid, sizeof tid, "poor"), "tp-data-daily-3gb",
                         NULL, NULL, &status);
    ck_assert_int_eq(status, 402);
    ck_assert_str_eq(json_string_value(json_object_get(j, "cause")), "INSUFFICIENT_FUNDS");
    json_decref(j);
    ck_assert_int_eq(debits(tid), 0);
}
END_TEST

START_TEST(same_transid_same_answer_one_activation) {
    char *ctx = offer_context("924542610003", "tp-video-hour");
    char tid[64];
    new_transid(tid, sizeof tid, "idem");
    long s1 = 0, s2 = 0;
    json_t *a = purchase("924542610003", tid, "tp-video-hour", ctx, NULL, &s1);
    json_t *b = purchase("924542610003", tid, "tp-video-hour", ctx, NULL, &s2);
    ck_assert_int_eq(s1, 200);
    ck_assert_int_eq(s2, 200);
    ck_assert_str_eq(json_string_value(json_object_get(a, "confirmationCode")),
                     json_string_value(json_object_get(b, "confirmationCode")));
    json_decref(a);
    json_decref(b);
    ck_assert_int_eq(debits(tid), 1);
    /* The same transid with another plan is a conflict, and buys nothing. */
    long s3 = 0;
    json_t *c = purchase("924542610003", tid, "tp-music-daily", NULL, NULL, &s3);
    ck_assert_int_eq(s3, 409);
    ck_assert_str_eq(json_string_value(json_object_get(c, "cause")), "PURCHASE_CONFLICT");
    json_decref(c);
    ck_assert_int_eq(debits(tid), 1);
    free(ctx);
}
END_TEST

typedef struct {
    const char *transid;
    long status;
    char code[128];
} racer;

static void *race(void *arg) {
    racer *r = arg;
    json_t *j = purchase("924542610006", r->transid, "tp-data-daily-3gb", NULL, NULL, &r->status);
    const char *code = json_string_value(json_object_get(j, "confirmationCode"));
    snprintf(r->code, sizeof r->code, "%s", code ? code : "");
    json_decref(j);
    return NULL;
}

START_TEST(concurrent_duplicates_activate_once) {
    char tid[64];
    new_transid(tid, sizeof tid, "race");
    racer racers[20];
    pthread_t threads[20];
    for (int i = 0; i < 20; i++) {
        racers[i] = (racer){.transid = tid};
        pthread_create(&threads[i], NULL, race, &racers[i]);
    }
    for (int i = 0; i < 20; i++) pthread_join(threads[i], NULL);
    const char *code = NULL;
    for (int i = 0; i < 20; i++) {
        /* Each gets the outcome (200) or, while the first is still being
         * activated, 202 processing; never an error, never another code. */
        ck_assert_msg(racers[i].status == 200 || racers[i].status == 202, "status %ld",
                      racers[i].status);
        if (racers[i].status == 200) {
            if (!code) code = racers[i].code;
            ck_assert_str_eq(racers[i].code, code);
        }
    }
    char *state = wait_final_state(tid);
    ck_assert_str_eq(state, "completed");
    free(state);
    ck_assert_int_eq(debits(tid), 1);
}
END_TEST

START_TEST(purchase_timer_refuses_the_same_plan_again) {
    char t1[64], t2[64];
    long status = 0;
    json_t *j = purchase("924542610001", new_transid(t1, sizeof t1, "timer"), "tp-video-hour", NULL,
                         NULL, &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
    j = purchase("924542610001", new_transid(t2, sizeof t2, "timer"), "tp-video-hour", NULL, NULL,
                 &status);
    ck_assert_int_eq(status, 409);
    ck_assert_str_eq(json_string_value(json_object_get(j, "cause")), "PURCHASE_CONFLICT");
    json_decref(j);
    ck_assert_int_eq(debits(t2), 0);
}
END_TEST

START_TEST(tampered_offer_context_is_refused) {
    char *ctx = offer_context("924542610003", "tp-data-daily-3gb");
    /* Flip one character of the signed claims. */
    ctx[5] = ctx[5] == 'A' ? 'B' : 'A';
    char tid[64];
    long status = 0;
    json_t *j = purchase("924542610003", new_transid(tid, sizeof tid, "tamper"),
                         "tp-data-daily-3gb", ctx, NULL, &status);
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(json_string_value(json_object_get(j, "cause")), "BAD_REQUEST");
    json_decref(j);
    free(ctx);
    ck_assert_int_eq(debits(tid), 0);
    /* Another subscriber's context does not buy for this one either. */
    ctx = offer_context("924542610001", "tp-data-daily-3gb");
    j = purchase("924542610003", new_transid(tid, sizeof tid, "foreign"), "tp-data-daily-3gb", ctx,
                 NULL, &status);
    ck_assert_int_eq(status, 400);
    json_decref(j);
    free(ctx);
    ck_assert_int_eq(debits(tid), 0);
}
END_TEST

START_TEST(invalid_bodies_are_refused_before_kafka) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/924542610003/purchasePlan", edge);
    const char *bodies[] = {
        "",
        "{",
        "[]",
        "{\"transid\":\"short\",\"planid\":\"p\"}",
        "{\"transid\":\"0123456789\",\"planid\":5}",
        "{\"transid\":\"0123456789\",\"planid\":\"p\",\"fundSource\":\"GOLD\"}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        long status = 0;
        json_t *j = test_post_json(url, bodies[i], &status);
        ck_assert_msg(status == 400, "body %zu: status %ld", i, status);
        ck_assert_str_eq(json_string_value(json_object_get(j, "cause")), "BAD_REQUEST");
        json_decref(j);
    }
}
END_TEST

START_TEST(async_purchase_completes_by_callback) {
    char tid[64];
    long status = 0;
    json_t *j = purchase("924542610006", new_transid(tid, sizeof tid, "async"),
                         "tp-data-weekly-async", NULL, NULL, &status);
    ck_assert_int_eq(status, 202);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "processing");
    json_decref(j);
    char *state = wait_final_state(tid);
    ck_assert_str_eq(state, "completed");
    free(state);
    ck_assert_int_eq(debits(tid), 1);
    /* The operator calling back again (with the transId it was sent):
     * already completed. */
    char url[256], body[256], op_tid[37];
    test_operator_transid(SP, tid, op_tid);
    snprintf(url, sizeof url, "%s/activationCallback/tp", edge);
    snprintf(body, sizeof body, "{\"transId\":\"%s\",\"activationStatus\":{\"status\":\"OK\"}}",
             op_tid);
    j = test_post_json(url, body, &status);
    ck_assert_int_eq(status, 409);
    json_decref(j);
    /* The other callback style, for the same transaction: also 409. */
    snprintf(url, sizeof url, "%s/callback/v1/tp/?idValue=924542610006&idType=MSISDN", edge);
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"appId\":\"" SP "\"}", op_tid);
    j = test_post_json(url, body, &status);
    ck_assert_int_eq(status, 409);
    json_decref(j);
}
END_TEST

START_TEST(unknown_transaction_callback_is_404) {
    char url[256];
    long status = 0;
    snprintf(url, sizeof url, "%s/activationCallback/tp", edge);
    json_t *j = test_post_json(
        url, "{\"transId\":\"never-seen-0001\",\"activationStatus\":{\"status\":\"OK\"}}", &status);
    ck_assert_int_eq(status, 404);
    json_decref(j);
    snprintf(url, sizeof url, "%s/callback/v1/tp/?idValue=924542610006&idType=MSISDN", edge);
    j = test_post_json(url, "{\"transactionId\":\"never-seen-0002\",\"appId\":\"" SP "\"}",
                       &status);
    ck_assert_int_eq(status, 404);
    json_decref(j);
    j = test_post_json(url, "{\"appId\":\"" SP "\"}", &status);
    ck_assert_int_eq(status, 400);
    json_decref(j);
}
END_TEST

START_TEST(lookup_by_subscriber) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases?subscriberId=924542610003&from=2020-01-01",
             edge);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_ge(json_array_size(json_object_get(j, "purchases")), 1);
    json_decref(j);
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases?subscriberId=abc", edge);
    j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 400);
    json_decref(j);
    j = lookup("no-such-transaction-1", &status);
    ck_assert_int_eq(status, 404);
    json_decref(j);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char cb_url[128];
    const char *env[] = {"MILLOM_PURCHASE_TIMER_S=60", "MILLOM_MNO_CALLBACK_DELAY_MS=200", cb_url,
                         NULL, NULL};
    snprintf(cb_url, sizeof cb_url, "MILLOM_CALLBACK_BASE_URL=http://127.0.0.1:%d", 18180);
    if (stack_start(&stack, 18180, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);

    Suite *s = suite_create("purchases");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sync_purchase_then_balance_shows_plan);
    tcase_add_test(tc, no_money_no_purchase);
    tcase_add_test(tc, same_transid_same_answer_one_activation);
    tcase_add_test(tc, concurrent_duplicates_activate_once);
    tcase_add_test(tc, purchase_timer_refuses_the_same_plan_again);
    tcase_add_test(tc, tampered_offer_context_is_refused);
    tcase_add_test(tc, invalid_bodies_are_refused_before_kafka);
    tcase_add_test(tc, async_purchase_completes_by_callback);
    tcase_add_test(tc, unknown_transaction_callback_is_404);
    tcase_add_test(tc, lookup_by_subscriber);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
