/* All four fund sources end to end (WALLET, EWALLET, LOAN, FREE) and the
 * eligibility extension, through api-edge, Kafka and mno-sandbox:
 *   - upsellOffer shows each offer's fundSource, accountInfo the e-wallet;
 *   - an EWALLET purchase debits the e-wallet, not the airtime; one with
 *     too little in the e-wallet is 402;
 *   - a FREE plan costs 0.00, is bought with the standard API, a signed
 *     link and the shop's form, and settles at 0.00 with all shares 0.00,
 *     still counted (JSON and CSV);
 *   - a plan bought with another fund source than its own is 400 and
 *     reaches no operator;
 *   - eligibility answers what a purchase would (402, 400, 403 USER_BARRED,
 *     409 from the purchase timer, eligible) and buys nothing: no
 *     activation at the operator, no purchase, no timer started.
 * Sandbox subscriber 924542610007: PKR 5.00 airtime, PKR 150.00 e-wallet;
 * offers tp-ewallet-data-2gb (120.00 EWALLET), tp-free-social-trial (FREE),
 * tp-video-hour (15.50 WALLET). */
#include "shared/contracts/signed_link.h"
#include "tests/lib/shop_form.h"
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BASE_PORT 22500
#define SP "testserviceprovider"
#define EWALLET_SUB "924542610007"
#define BARRED_SUB "924542610005"

static test_stack stack;
static char edge[64], mno[64];

static const char *new_transid(char *buf, size_t len, const char *tag) {
    static int seq;
    snprintf(buf, len, "funds-%s-%ld-%d", tag, (long)getpid(), ++seq);
    return buf;
}

static const char *str(json_t *o, const char *name) {
    return json_string_value(json_object_get(o, name));
}

/* The offer of plan in an upsellOffer answer, or NULL. */
static json_t *offer_of(json_t *answer, const char *plan) {
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(answer, "offers"), i, o) {
        if (strcmp(str(o, "planId"), plan) == 0) return o;
    }
    return NULL;
}

/* The balance of type in an accountInfo answer (no cache), or NULL. Caller frees. */
static char *balance_of(const char *msisdn, const char *type) {
    return test_balance(edge, SP, "tp", msisdn, type);
}

static json_t *purchase(const char *msisdn, const char *transid, const char *plan, const char *fund,
                        long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, msisdn);
    json_t *body = json_pack("{s:s, s:s}", "transid", transid, "planid", plan);
    if (fund) json_object_set_new(body, "fundSource", json_string(fund));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_t *answer = test_post_json(url, text, status);
    free(text);
    return answer;
}

static json_t *eligibility(const char *msisdn, const char *plan, const char *fund, long *status) {
    char url[512];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/eligibility/%s%s%s", edge, msisdn, plan,
             fund ? "?fundSource=" : "", fund ? fund : "");
    return test_get_json(url, NULL, status);
}

/* mno-sandbox's activations of every transId, all providers. */
static long mno_activation_count(void) {
    char url[256];
    snprintf(url, sizeof url, "%s/admin/activations", mno);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    long n = (long)json_integer_value(json_object_get(j, "count"));
    json_decref(j);
    return n;
}

/* Millom's purchases of a subscriber (management look-up). */
static long purchase_count(const char *msisdn) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases?subscriberId=%s", edge, msisdn);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    long n = (long)json_array_size(json_object_get(j, "purchases"));
    json_decref(j);
    return n;
}

/* The activation mno-sandbox recorded for provider SP's transid. */
static json_t *mno_activation(const char *transid) {
    char op_transid[37], url[256];
    test_operator_transid(SP, transid, op_transid);
    snprintf(url, sizeof url, "%s/admin/activations?transId=%s", mno, op_transid);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    json_t *a = json_incref(json_array_get(json_object_get(j, "activations"), 0));
    json_decref(j);
    ck_assert_ptr_nonnull(a);
    return a;
}

static int64_t wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A CPID of msisdn for SP (GET /cpid from loopback). Caller frees. */
static char *new_cpid(const char *msisdn) {
    char url[256], hdr[64];
    snprintf(url, sizeof url, "%s/cpid?app=" SP, edge);
    snprintf(hdr, sizeof hdr, "X-MSISDN: %s", msisdn);
    const char *headers[] = {hdr, NULL};
    long status = 0;
    json_t *j = test_get_json(url, headers, &status);
    ck_assert_int_eq(status, 200);
    char *cpid = strdup(str(j, "cpid"));
    json_decref(j);
    return cpid;
}

START_TEST(offers_and_balances_show_the_fund_sources) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/" EWALLET_SUB "/upsellOffer", edge);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    json_t *ew = offer_of(j, "tp-ewallet-data-2gb"),
           *free_plan = offer_of(j, "tp-free-social-trial"), *video = offer_of(j, "tp-video-hour");
    ck_assert_ptr_nonnull(ew);
    ck_assert_ptr_nonnull(free_plan);
    ck_assert_ptr_nonnull(video);
    ck_assert_str_eq(str(ew, "fundSource"), "EWALLET");
    ck_assert_str_eq(str(ew, "cost"), "120.00");
    ck_assert_str_eq(str(free_plan, "fundSource"), "FREE");
    ck_assert_str_eq(str(free_plan, "cost"), "0.00");
    ck_assert_str_eq(str(video, "fundSource"), "WALLET");
    json_decref(j);
    /* the loan offers of NEED_LOANS 924542610002 say LOAN */
    snprintf(url, sizeof url, "%s/std/" SP "/tp/924542610002/upsellOffer", edge);
    j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(str(offer_of(j, "tp-loan-data-500mb"), "fundSource"), "LOAN");
    json_decref(j);
    /* the airtime and the e-wallet, apart */
    char *main_balance = balance_of(EWALLET_SUB, "main"),
         *ewallet = balance_of(EWALLET_SUB, "ewallet");
    ck_assert_str_eq(main_balance, "5.00");
    ck_assert_str_eq(ewallet, "150.00");
    free(main_balance);
    free(ewallet);
}
END_TEST

START_TEST(ewallet_purchase_debits_the_ewallet) {
    char tid[64];
    long status = 0, before = mno_activation_count();
    /* eligible first; asking buys nothing */
    json_t *e = eligibility(EWALLET_SUB, "tp-ewallet-data-2gb", "EWALLET", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_true(json_object_get(e, "eligible")));
    ck_assert_str_eq(str(e, "cost"), "120.00");
    ck_assert_str_eq(str(e, "fundSource"), "EWALLET");
    json_decref(e);
    ck_assert_int_eq(mno_activation_count(), before);

    json_t *a = purchase(EWALLET_SUB, new_transid(tid, sizeof tid, "ewallet"),
                         "tp-ewallet-data-2gb", "EWALLET", &status);
    ck_assert_msg(status == 200, "status %ld", status);
    ck_assert_str_eq(str(a, "status"), "completed");
    ck_assert_str_eq(str(a, "fundSource"), "EWALLET");
    ck_assert_ptr_nonnull(str(a, "confirmationCode"));
    json_decref(a);
    json_t *act = mno_activation(tid);
    ck_assert_str_eq(str(act, "fundSource"), "EWALLET");
    ck_assert_int_eq(json_integer_value(json_object_get(act, "debits")), 1);
    json_decref(act);
    char *main_balance = balance_of(EWALLET_SUB, "main"),
         *ewallet = balance_of(EWALLET_SUB, "ewallet");
    ck_assert_str_eq(main_balance, "5.00"); /* the airtime untouched */
    ck_assert_str_eq(ewallet, "30.00");
    free(main_balance);
    free(ewallet);

    /* the purchase timer: the same plan again is 409, and eligibility says so */
    e = eligibility(EWALLET_SUB, "tp-ewallet-data-2gb", "EWALLET", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_false(json_object_get(e, "eligible")));
    ck_assert_str_eq(str(e, "cause"), "PURCHASE_CONFLICT");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "status")), 409);
    json_decref(e);
    char tid2[64];
    a = purchase(EWALLET_SUB, new_transid(tid2, sizeof tid2, "ewallet"), "tp-ewallet-data-2gb",
                 "EWALLET", &status);
    ck_assert_int_eq(status, 409);
    ck_assert_str_eq(str(a, "cause"), "PURCHASE_CONFLICT");
    json_decref(a);
}
END_TEST

START_TEST(too_little_in_the_ewallet_is_402) {
    /* a subscriber of our own with PKR 50.00 in the e-wallet */
    char url[256];
    snprintf(url, sizeof url, "%s/admin/subscribers", mno);
    long status = 0;
    json_t *r = test_post_json(url,
                               "{\"msisdn\":\"924542619071\",\"balanceMinor\":100000,"
                               "\"ewalletMinor\":5000,\"offers\":[\"tp-ewallet-data-2gb\"]}",
                               &status);
    ck_assert_int_eq(status, 201);
    json_decref(r);
    json_t *e = eligibility("924542619071", "tp-ewallet-data-2gb", "EWALLET", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_false(json_object_get(e, "eligible")));
    ck_assert_str_eq(str(e, "cause"), "INSUFFICIENT_FUNDS");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "status")), 402);
    json_decref(e);
    /* the purchase gets what eligibility said; the airtime (PKR 1000.00) does not pay */
    char tid[64];
    json_t *a = purchase("924542619071", new_transid(tid, sizeof tid, "short"),
                         "tp-ewallet-data-2gb", "EWALLET", &status);
    ck_assert_int_eq(status, 402);
    ck_assert_str_eq(str(a, "cause"), "INSUFFICIENT_FUNDS");
    json_decref(a);
    char *main_balance = balance_of("924542619071", "main");
    ck_assert_str_eq(main_balance, "1000.00");
    free(main_balance);
}
END_TEST

START_TEST(another_fund_source_is_400_and_reaches_no_operator) {
    long status = 0, before = mno_activation_count();
    char tid[64];
    /* a FREE plan with the default WALLET */
    json_t *a = purchase(EWALLET_SUB, new_transid(tid, sizeof tid, "wrongfund"),
                         "tp-free-social-trial", NULL, &status);
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(str(a, "cause"), "BAD_REQUEST");
    ck_assert_ptr_nonnull(strstr(str(a, "errorMessage"), "FREE"));
    json_decref(a);
    json_t *e = eligibility(EWALLET_SUB, "tp-free-social-trial", "WALLET", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_false(json_object_get(e, "eligible")));
    ck_assert_str_eq(str(e, "cause"), "BAD_REQUEST");
    json_decref(e);
    ck_assert_int_eq(mno_activation_count(), before);
    /* an unknown fund source: 400 at api-edge */
    a = purchase(EWALLET_SUB, new_transid(tid, sizeof tid, "badfund"), "tp-free-social-trial",
                 "CARD", &status);
    ck_assert_int_eq(status, 400);
    ck_assert_ptr_nonnull(strstr(str(a, "errorMessage"), "EWALLET"));
    json_decref(a);
    e = eligibility(EWALLET_SUB, "tp-free-social-trial", "free", &status);
    ck_assert_int_eq(status, 400);
    json_decref(e);
}
END_TEST

START_TEST(eligibility_answers_what_a_purchase_would) {
    long status = 0, before = mno_activation_count(), bought = purchase_count(EWALLET_SUB);
    /* too little airtime (PKR 5.00) for the Video Hour (WALLET, 15.50) */
    json_t *e = eligibility(EWALLET_SUB, "tp-video-hour", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_false(json_object_get(e, "eligible")));
    ck_assert_str_eq(str(e, "cause"), "INSUFFICIENT_FUNDS");
    ck_assert_str_eq(str(e, "fundSource"), "WALLET");
    ck_assert_str_eq(str(e, "cost"), "15.50");
    ck_assert_str_eq(str(e, "costCurrency"), "PKR");
    json_decref(e);
    /* a plan not offered to this subscriber */
    e = eligibility(EWALLET_SUB, "tp-data-monthly-10gb", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_false(json_object_get(e, "eligible")));
    ck_assert_str_eq(str(e, "cause"), "BAD_REQUEST");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "status")), 400);
    ck_assert_ptr_null(json_object_get(e, "cost"));
    json_decref(e);
    /* a barred subscriber: the operator's refusal, its errorType kept */
    e = eligibility(BARRED_SUB, "tp-video-hour", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_false(json_object_get(e, "eligible")));
    ck_assert_str_eq(str(e, "cause"), "NOT_ALLOWED");
    ck_assert_str_eq(str(e, "errorType"), "USER_BARRED");
    json_decref(e);
    /* a loan needs no money: NEED_LOANS 924542610002 has none */
    e = eligibility("924542610002", "tp-loan-data-500mb", "LOAN", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_true(json_object_get(e, "eligible")));
    json_decref(e);
    /* a free plan, asked twice: eligibility starts no purchase timer */
    for (int i = 0; i < 2; i++) {
        e = eligibility(EWALLET_SUB, "tp-free-social-trial", "FREE", &status);
        ck_assert_int_eq(status, 200);
        ck_assert(json_is_true(json_object_get(e, "eligible")));
        ck_assert_str_eq(str(e, "cost"), "0.00");
        json_decref(e);
    }
    /* nothing was bought or sent to the operator */
    ck_assert_int_eq(mno_activation_count(), before);
    ck_assert_int_eq(purchase_count(EWALLET_SUB), bought);
    /* the operator unavailable: nothing is known, 503 */
    char url[256];
    snprintf(url, sizeof url, "%s/admin/behaviour", mno);
    json_decref(test_post_json(url, "{\"failStatus\":503}", &status));
    ck_assert_int_eq(status, 200);
    e = eligibility(EWALLET_SUB, "tp-video-hour", NULL, &status);
    ck_assert_int_eq(status, 503);
    ck_assert_str_eq(str(e, "cause"), "SERVICE_UNAVAILABLE");
    json_decref(e);
    snprintf(url, sizeof url, "%s/admin/reset", mno);
    json_decref(test_post_json(url, "{}", &status));
    ck_assert_int_eq(status, 200);
}
END_TEST

/* Polls the settlements until a day has plan's row; returns a copy. */
static json_t *wait_plan_settled(const char *plan) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/settlements?serviceProvider=" SP, edge);
    for (int i = 0; i < 200; i++) {
        long status = 0;
        json_t *doc = test_get_json(url, NULL, &status);
        size_t d, k;
        json_t *day, *row;
        json_array_foreach(json_object_get(doc, "days"), d, day) {
            json_array_foreach(json_object_get(day, "plans"), k, row) {
                if (strcmp(str(row, "planId"), plan) == 0) {
                    json_t *copy = json_deep_copy(row);
                    json_decref(doc);
                    return copy;
                }
            }
        }
        json_decref(doc);
        test_sleep_ms(100);
    }
    ck_abort_msg("%s was never settled", plan);
    return NULL;
}

START_TEST(free_plan_through_a_link_settles_at_zero) {
    char *cpid = new_cpid(EWALLET_SUB);
    char tid[64], path[512];
    new_transid(tid, sizeof tid, "rnf-free");
    signed_link_param p[] = {
        {"planId", "tp-free-social-trial"}, {"transactionId", tid}, {"fundSource", "FREE"}};
    snprintf(path, sizeof path, "/rnf/" SP "/tp/%s/purchasePlan", cpid);
    char *url = signed_link_make(edge, path, p, 3, 600, wall_ms());
    long status = 0;
    json_t *a = test_get_json(url, NULL, &status);
    ck_assert_msg(status == 200, "status %ld", status);
    ck_assert_str_eq(str(a, "status"), "completed");
    ck_assert_str_eq(str(a, "fundSource"), "FREE");
    json_decref(a);
    free(url);
    json_t *act = mno_activation(tid);
    ck_assert_str_eq(str(act, "fundSource"), "FREE");
    ck_assert_int_eq(json_integer_value(json_object_get(act, "amountMinor")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(act, "debits")), 0);
    json_decref(act);
    /* the management look-up */
    char lurl[256];
    snprintf(lurl, sizeof lurl, "%s/mgmt/tp/purchases/%s?serviceProvider=" SP, edge, tid);
    a = test_get_json(lurl, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(str(a, "fundSource"), "FREE");
    ck_assert_str_eq(str(a, "price"), "0.00");
    json_decref(a);

    /* settled at zero, and counted */
    json_t *row = wait_plan_settled("tp-free-social-trial");
    ck_assert_int_eq(json_integer_value(json_object_get(row, "count")), 1);
    ck_assert_str_eq(str(row, "gross"), "0.00");
    ck_assert_str_eq(str(row, "operatorShare"), "0.00");
    ck_assert_str_eq(str(row, "providerShare"), "0.00");
    ck_assert_str_eq(str(row, "millomShare"), "0.00");
    json_decref(row);
    snprintf(lurl, sizeof lurl, "%s/mgmt/tp/settlements?serviceProvider=" SP "&format=csv", edge);
    test_response r = {0};
    ck_assert_int_eq(test_http("GET", lurl, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, ",tp-free-social-trial,1,0.00,0.00,0.00,0.00,") != NULL, "%s",
                  r.body);
    test_response_free(&r);
    free(cpid);
}
END_TEST

START_TEST(shop_form_carries_the_offers_fund_source) {
    char *cpid = new_cpid(EWALLET_SUB);
    char path[512];
    snprintf(path, sizeof path, "/rnf/" SP "/tp/%s/shop", cpid);
    char *url = signed_link_make(edge, path, NULL, 0, 600, wall_ms());
    test_response r = {0};
    ck_assert_int_eq(test_http("GET", url, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    free(url);
    /* the offers keep the operator's order: e-wallet, free, video */
    ck_assert_int_eq(test_shop_form_count(r.body), 3);
    char *buy = NULL, *form = NULL, tid[64];
    ck_assert_int_eq(test_shop_form(r.body, 1, edge, &buy, &form, tid, sizeof tid), 0);
    ck_assert_msg(strstr(form, "fundSource=FREE") != NULL, "form %s", form);
    test_response_free(&r);
    const char *const ft[] = {TEST_FORM_TYPE, NULL};
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(test_http("POST", buy, ft, form, &r), 0);
    /* the free plan was bought through the link test a moment ago: the timer */
    ck_assert_msg(r.status == 409, "%ld %s", r.status, r.body ? r.body : "");
    test_response_free(&r);
    /* the form's fund source is signed: changed, the link is refused */
    char *changed = strdup(form);
    char *at = strstr(changed, "fundSource=FREE");
    memcpy(at + strlen("fundSource="), "LOAN", 4);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(test_http("POST", buy, ft, changed, &r), 0);
    ck_assert_int_eq(r.status, 401);
    test_response_free(&r);
    free(changed);
    free(buy);
    free(form);
    free(cpid);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    unsetenv("MILLOM_LINK_KEY"); /* the sandbox key, like the stack */
    if (stack_start(&stack, BASE_PORT, NULL) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);

    Suite *s = suite_create("fund_sources");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, offers_and_balances_show_the_fund_sources);
    tcase_add_test(tc, another_fund_source_is_400_and_reaches_no_operator);
    tcase_add_test(tc, eligibility_answers_what_a_purchase_would);
    tcase_add_test(tc, ewallet_purchase_debits_the_ewallet);
    tcase_add_test(tc, too_little_in_the_ewallet_is_402);
    tcase_add_test(tc, free_plan_through_a_link_settles_at_zero);
    tcase_add_test(tc, shop_form_carries_the_offers_fund_source);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
