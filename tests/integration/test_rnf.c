/* Signed links end to end (routes_rnf.c): offers, ping, purchasePlan and
 * the shop page on api-edge with links made here by signed_link_make (the
 * stack runs with the sandbox link key, as this process does), tampered
 * and expired links refused, another provider's CPID refused. */
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

#define BASE_PORT 18780
#define SP "testserviceprovider"
#define SUB "924542610003"

static test_stack stack;
static char edge[64];

static int64_t wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* GET /cpid?app=<app> with X-MSISDN from 127.0.0.1. Caller frees. */
static char *new_cpid(const char *app) {
    char url[256];
    snprintf(url, sizeof url, "%s/cpid?app=%s", edge, app);
    const char *hdr[] = {"X-MSISDN: " SUB, NULL};
    long status = 0;
    json_t *j = test_get_json(url, hdr, &status);
    ck_assert_int_eq(status, 200);
    const char *cpid = json_string_value(json_object_get(j, "cpid"));
    ck_assert_ptr_nonnull(cpid);
    char *copy = strdup(cpid);
    json_decref(j);
    return copy;
}

/* A signed link to /rnf/SP/tp/<cpid>/<action>. Caller frees. */
static char *link_to(const char *sp, const char *cpid, const char *action,
                     const signed_link_param *params, size_t n, long ttl_s) {
    char path[512];
    snprintf(path, sizeof path, "/rnf/%s/tp/%s/%s", sp, cpid, action);
    char *url = signed_link_make(edge, path, params, n, ttl_s, wall_ms());
    ck_assert_ptr_nonnull(url);
    return url;
}

static const char *cause_of(json_t *j) { return json_string_value(json_object_get(j, "cause")); }

START_TEST(offers_through_a_signed_link) {
    char *cpid = new_cpid(SP);
    char *url = link_to(SP, cpid, "offers", NULL, 0, 600);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_gt(json_array_size(json_object_get(j, "offers")), 0);
    ck_assert_ptr_nonnull(json_string_value(
        json_object_get(json_array_get(json_object_get(j, "offers"), 0), "planId")));
    json_decref(j);
    free(url);
    free(cpid);
}
END_TEST

START_TEST(ping) {
    char *cpid = new_cpid(SP);
    char *url = link_to(SP, cpid, "ping", NULL, 0, 600);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    free(url);
    free(cpid);
}
END_TEST

START_TEST(tampered_and_expired_links_are_401) {
    char *cpid = new_cpid(SP);
    char *url = link_to(SP, cpid, "offers", NULL, 0, 600);
    long status = 0;
    /* the signature changed */
    char *bad = strdup(url);
    char *sig = strstr(bad, "signature=") + 10;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    json_t *j = test_get_json(bad, NULL, &status);
    ck_assert_int_eq(status, 401);
    ck_assert_str_eq(cause_of(j), "UNAUTHORIZED");
    json_decref(j);
    free(bad);
    /* the same signature on another endpoint */
    char *at = strstr(url, "/offers?");
    ck_assert_ptr_nonnull(at);
    char moved[2048];
    snprintf(moved, sizeof moved, "%.*s/ping%s", (int)(at - url), url, at + 7);
    j = test_get_json(moved, NULL, &status);
    ck_assert_int_eq(status, 401);
    json_decref(j);
    /* expiry pushed out */
    bad = strdup(url);
    char *exp = strstr(bad, "expirySeconds=") + 14;
    exp[0] = exp[0] == '9' ? '8' : '9';
    j = test_get_json(bad, NULL, &status);
    ck_assert_int_eq(status, 401);
    json_decref(j);
    free(bad);
    /* no signature at all */
    bad = strdup(url);
    *strstr(bad, "&signature=") = '\0';
    j = test_get_json(bad, NULL, &status);
    ck_assert_int_eq(status, 401);
    json_decref(j);
    free(bad);
    free(url);
    /* expired: a ttl in the past */
    url = link_to(SP, cpid, "offers", NULL, 0, -5);
    j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 401);
    ck_assert_str_eq(cause_of(j), "UNAUTHORIZED");
    json_decref(j);
    free(url);
    /* a purchase link whose plan was changed */
    signed_link_param p[] = {{"planId", "tp-video-hour"}, {"transactionId", "rnf-test-tampered-1"}};
    url = link_to(SP, cpid, "purchasePlan", p, 2, 600);
    char *bad2 = strdup(url);
    at = strstr(bad2, "tp-video-hour");
    memcpy(at, "tp-music-", 9); /* "tp-music-hour" */
    j = test_get_json(bad2, NULL, &status);
    ck_assert_int_eq(status, 401);
    json_decref(j);
    free(bad2);
    free(url);
    free(cpid);
}
END_TEST

START_TEST(another_providers_cpid_is_403) {
    char *cpid = new_cpid("otherprovider");
    char *url = link_to(SP, cpid, "offers", NULL, 0, 600);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 403);
    ck_assert_str_eq(cause_of(j), "NOT_ALLOWED");
    json_decref(j);
    free(url);
    free(cpid);
}
END_TEST

START_TEST(purchase_through_a_signed_link) {
    char *cpid = new_cpid(SP);
    char tid[64];
    snprintf(tid, sizeof tid, "rnf-test-buy-%ld", (long)getpid());
    signed_link_param p[] = {
        {"planId", "tp-music-daily"}, {"transactionId", tid}, {"fundSource", "WALLET"}};
    char *url = link_to(SP, cpid, "purchasePlan", p, 3, 600);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_msg(status == 200, "status %ld", status);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "completed");
    ck_assert_str_eq(json_string_value(json_object_get(j, "transid")), tid);
    json_decref(j);
    /* the same link again: the same transaction, not a second purchase */
    j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "transid")), tid);
    json_decref(j);
    free(url);
    /* the look-up */
    char lurl[256];
    snprintf(lurl, sizeof lurl, "%s/mgmt/tp/purchases/%s", edge, tid);
    const char *state = NULL;
    for (int i = 0; i < 100; i++) {
        j = test_get_json(lurl, NULL, &status);
        state = json_string_value(json_object_get(j, "state"));
        if (status == 200 && state && strcmp(state, "completed") == 0) break;
        json_decref(j);
        j = NULL;
        test_sleep_ms(100);
    }
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "planId")), "tp-music-daily");
    json_decref(j);
    /* a bad transactionId, correctly signed: 400 */
    signed_link_param q[] = {{"planId", "tp-music-daily"}, {"transactionId", "short"}};
    url = link_to(SP, cpid, "purchasePlan", q, 2, 600);
    j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 400);
    json_decref(j);
    free(url);
    free(cpid);
}
END_TEST

START_TEST(shop_page_lists_offers_and_buys) {
    char *cpid = new_cpid(SP);
    /* the names the offers carry, from the offers link */
    char *url = link_to(SP, cpid, "offers", NULL, 0, 600);
    long status = 0;
    json_t *offers = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    free(url);

    url = link_to(SP, cpid, "shop", NULL, 0, 600);
    test_response r = {0};
    ck_assert_int_eq(test_http("GET", url, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "<meta name=\"viewport\""));
    ck_assert_ptr_null(strstr(r.body, "<script"));
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(offers, "offers"), i, o) {
        const char *name = json_string_value(
            json_object_get(json_array_get(json_object_get(o, "planName"), 0), "text"));
        ck_assert_ptr_nonnull(name);
        ck_assert_msg(strstr(r.body, name) != NULL, "shop lacks %s", name);
    }
    json_decref(offers);
    /* one purchase form per offer, no purchase link to follow */
    ck_assert_int_gt(test_shop_form_count(r.body), 0);
    ck_assert_ptr_null(strstr(r.body, "<a "));
    ck_assert_ptr_null(strstr(r.body, "purchasePlan?"));
    char *buy = NULL, *form = NULL;
    ck_assert_int_eq(test_shop_form(r.body, 0, edge, &buy, &form, NULL, 0), 0);
    ck_assert_ptr_nonnull(strstr(buy, "/purchasePlan"));
    test_response_free(&r);
    /* a tampered shop link: 401 */
    char *bad = strdup(url);
    strstr(bad, "signature=")[10] ^= 1;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(test_http("GET", bad, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 401);
    test_response_free(&r);
    free(bad);
    free(url);
    free(cpid);
    /* The first offer's form, posted, buys it. */
    const char *const ft[] = {TEST_FORM_TYPE, NULL};
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(test_http("POST", buy, ft, form, &r), 0);
    ck_assert_msg(r.status == 200 || r.status == 202, "purchase from the shop: %ld %s", r.status,
                  r.body ? r.body : "");
    ck_assert_ptr_nonnull(strstr(r.body, "\"transid\":\"rnf-"));
    test_response_free(&r);
    free(buy);
    free(form);
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

    Suite *s = suite_create("rnf");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, offers_through_a_signed_link);
    tcase_add_test(tc, ping);
    tcase_add_test(tc, tampered_and_expired_links_are_401);
    tcase_add_test(tc, another_providers_cpid_is_403);
    tcase_add_test(tc, purchase_through_a_signed_link);
    tcase_add_test(tc, shop_page_lists_offers_and_buys);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
