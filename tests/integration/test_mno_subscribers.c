/* mno-sandbox's POST /admin/subscribers (the bench creates its purchase
 * subscribers with it): a new subscriber is served by the backend API and
 * can buy through Millom; posting again replaces its fields and offers but
 * keeps its plans; bad bodies are 400 naming the field and store nothing. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_PORT 21200
#define SP "testserviceprovider"
#define NEW_MSISDN "924542619001"
#define BACKEND_QUERY "customerIdType=MSISDN&channelId=App&serviceProviderId=" SP

static test_stack stack;
static char edge[64], mno[64];

static json_t *put(const char *body, long *status) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/subscribers", mno);
    return test_post_json(url, body, status);
}

/* GET mno /{what}/{msisdn} (balance or offers) as Millom calls it. */
static json_t *backend(const char *what, const char *msisdn, long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s/%s/%s?" BACKEND_QUERY, mno, what, msisdn);
    return test_get_json(url, NULL, status);
}

static double monetary_balance(json_t *account) {
    return json_number_value(json_object_get(json_object_get(account, "monetaryBalance"), "value"));
}

/* The offer ids of GET mno /offers, comma-separated, into out. */
static void offer_ids(const char *msisdn, char *out, size_t len) {
    long status = 0;
    json_t *j = backend("offers", msisdn, &status);
    ck_assert_int_eq(status, 200);
    out[0] = '\0';
    json_t *arr = json_object_get(j, "offers");
    ck_assert_msg(json_is_array(arr), "no offers array in the answer");
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        const char *id = json_string_value(json_object_get(o, "id"));
        ck_assert_ptr_nonnull(id);
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", used ? "," : "", id);
    }
    json_decref(j);
}

START_TEST(unknown_before_created_after) {
    long status = 0;
    json_t *j = backend("balance", NEW_MSISDN, &status);
    ck_assert_int_eq(status, 404);
    json_decref(j);

    j = put("{\"msisdn\":\"" NEW_MSISDN "\",\"balanceMinor\":12345,\"subscriberState\":"
            "\"NEED_LOANS\",\"offers\":[\"tp-loan-social-200mb\",\"tp-loan-data-500mb\"]}",
            &status);
    ck_assert_int_eq(status, 201);
    ck_assert(json_is_true(json_object_get(j, "created")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "msisdn")), NEW_MSISDN);
    json_decref(j);

    j = backend("balance", NEW_MSISDN, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(monetary_balance(j) > 123.44 && monetary_balance(j) < 123.46);
    json_decref(j);
    char ids[256];
    offer_ids(NEW_MSISDN, ids, sizeof ids);
    ck_assert_str_eq(ids, "tp-loan-social-200mb,tp-loan-data-500mb");

    /* Again: the fields are replaced, 200 and created false; offers absent
     * means unchanged. */
    j = put("{\"msisdn\":\"" NEW_MSISDN "\",\"balanceMinor\":500}", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_false(json_object_get(j, "created")));
    json_decref(j);
    j = backend("balance", NEW_MSISDN, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(monetary_balance(j) > 4.99 && monetary_balance(j) < 5.01);
    json_decref(j);
    offer_ids(NEW_MSISDN, ids, sizeof ids);
    ck_assert_str_eq(ids, "tp-loan-social-200mb,tp-loan-data-500mb");

    /* A barred one is refused by the backend API like a seeded one. */
    j = put("{\"msisdn\":\"924542619002\",\"status\":\"BARRED\"}", &status);
    ck_assert_int_eq(status, 201);
    json_decref(j);
    j = backend("balance", "924542619002", &status);
    ck_assert_int_eq(status, 403);
    json_decref(j);
}
END_TEST

START_TEST(created_subscriber_buys_through_millom) {
    const char *m = "924542619010";
    long status = 0;
    json_t *j = put("{\"msisdn\":\"924542619010\",\"subscriberState\":\"NEED_LOANS\","
                    "\"offers\":[\"tp-loan-social-200mb\"]}",
                    &status);
    ck_assert_int_eq(status, 201);
    json_decref(j);

    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/upsellOffer", edge, m);
    j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    json_t *offer = json_array_get(json_object_get(j, "offers"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(offer, "planId")), "tp-loan-social-200mb");
    const char *ctx = json_string_value(json_object_get(offer, "offerContext"));
    ck_assert_ptr_nonnull(ctx);

    char tid[64];
    snprintf(tid, sizeof tid, "mno-subs-%ld", (long)getpid());
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "transid", tid, "planid",
                             "tp-loan-social-200mb", "fundSource", "LOAN", "offercontext", ctx);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_decref(j);
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, m);
    j = test_post_json(url, text, &status);
    free(text);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "completed");
    json_decref(j);
    long debits = 0;
    ck_assert_int_eq(test_mno_activations(mno, tid, &debits, NULL), 200);
    ck_assert_int_eq(debits, 1);

    /* Replacing the subscriber keeps the plan it bought. */
    j = put("{\"msisdn\":\"924542619010\",\"subscriberState\":\"NEED_LOANS\"}", &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
    j = backend("balance", m, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(j, "subscribedPlans"), 0), "planId")),
                     "tp-loan-social-200mb");
    json_decref(j);
}
END_TEST

START_TEST(bad_bodies_are_refused_and_store_nothing) {
    static const struct {
        const char *body, *word; /* word: part of the message */
    } cases[] = {
        {"{}", "msisdn"},
        {"[1]", "JSON object"},
        {"{\"msisdn\":\"92454x\"}", "msisdn"},
        {"{\"msisdn\":\"1234\"}", "msisdn"},
        {"{\"msisdn\":\"924542619020\",\"balanceMinor\":-1}", "balanceMinor"},
        {"{\"msisdn\":\"924542619020\",\"balanceMinor\":1.5}", "balanceMinor"},
        {"{\"msisdn\":\"924542619020\",\"subscriberState\":\"RICH\"}", "subscriberState"},
        {"{\"msisdn\":\"924542619020\",\"status\":\"active\"}", "status"},
        {"{\"msisdn\":\"924542619020\",\"subscriptionType\":\"PAYG\"}", "subscriptionType"},
        {"{\"msisdn\":\"924542619020\",\"pricePlan\":\"\"}", "pricePlan"},
        {"{\"msisdn\":\"924542619020\",\"offers\":\"tp-social-daily\"}", "offers"},
        {"{\"msisdn\":\"924542619020\",\"offers\":[\"tp-social-daily\",\"tp-social-daily\"]}",
         "twice"},
        {"{\"msisdn\":\"924542619020\",\"offers\":[\"no-such-offer\"]}", "no-such-offer"},
        {"{\"msisdn\":\"924542619020\",\"opet\":\"OPET-tp-0003\"}", "opet"},
        {"{\"msisdn\":\"924542619020\",\"colour\":\"red\"}", "colour"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long status = 0;
        json_t *j = put(cases[i].body, &status);
        ck_assert_msg(status == 400, "%s: status %ld", cases[i].body, status);
        const char *msg = json_string_value(json_object_get(j, "message"));
        ck_assert_msg(msg && strstr(msg, cases[i].word), "%s: message %s", cases[i].body,
                      msg ? msg : "(none)");
        ck_assert_str_eq(json_string_value(json_object_get(j, "errorType")), "BAD_REQUEST");
        json_decref(j);
    }
    long status = 0;
    json_t *j = backend("balance", "924542619020", &status);
    ck_assert_int_eq(status, 404);
    json_decref(j);

    char url[128];
    snprintf(url, sizeof url, "%s/admin/subscribers", mno);
    test_response r = {0};
    ck_assert_int_eq(test_http("GET", url, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 405);
    test_response_free(&r);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *env[] = {"MILLOM_PURCHASE_TIMER_S=0", NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);
    Suite *s = suite_create("mno subscribers");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, unknown_before_created_after);
    tcase_add_test(tc, created_subscriber_buys_through_millom);
    tcase_add_test(tc, bad_bodies_are_refused_and_store_nothing);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
