/* What providers get beyond the plain calls (issue 17), end to end through
 * api-edge, Kafka and the services:
 *   - GET /rnf/.../offers answers a RefreshableOffers: fresh refresh, ping
 *     and shop links, and a signed purchaseLink on every offer (also in a
 *     rich notification) that buys, with the offer's fundSource (an
 *     EWALLET plan's link buys from the e-wallet); the new routes echo the
 *     request id (x-correlator);
 *   - an operator callback's errorCode and redirectLink reach the
 *     provider's purchase callback;
 *   - upsellOffer's planType, maxPrice and limit reach the backend's
 *     /offers as offerType, maxPrice and numberofOffers, each its own
 *     cache entry; bad values are 400;
 *   - GET /std/{sp}/[{op}/]{sub}/purchasePlan/{transid}: a provider's own
 *     purchase, 404 for anyone else's;
 *   - answers without a body carry no Content-Type.
 * mno-sandbox's own async callbacks wait 10 minutes here
 * (MILLOM_MNO_CALLBACK_DELAY_MS), so the test's callback decides. */
#include "shared/contracts/signed_link.h"
#include "tests/lib/raw_http.h"
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#define BASE_PORT 22400
#define SP "testserviceprovider"
#define RICH "924542610003" /* GOOD_TO_GO, 520.75 PKR, six offers */
#define POSTPAID "924542610006"
#define EWALLET_SUB "924542610007" /* EWALLET and FREE offers, PKR 150.00 e-wallet */

static test_stack stack;
static char edge[64], sp_base[64], mno_base[64];

static int64_t wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const char *new_tid(char *buf, size_t len, const char *tag) {
    static int seq;
    snprintf(buf, len, "contract-%s-%ld-%d", tag, (long)getpid(), ++seq);
    return buf;
}

static json_t *get(const char *path, long *status) {
    char url[1024];
    snprintf(url, sizeof url, "%s%s", edge, path);
    return test_get_json(url, NULL, status);
}

static const char *str(const json_t *j, const char *field) {
    return json_string_value(json_object_get(j, field));
}

/* The offer of plan in an answer's "offers", or NULL (borrowed). */
static json_t *offer_of(const json_t *answer, const char *plan) {
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(answer, "offers"), i, o) {
        if (str(o, "planId") && strcmp(str(o, "planId"), plan) == 0) return o;
    }
    return NULL;
}

/* POST purchasePlan without offerContext (the executor asks /offers). */
static json_t *buy(const char *msisdn, const char *tid, const char *plan, long *status) {
    char url[256], body[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, msisdn);
    snprintf(body, sizeof body, "{\"transid\":\"%s\",\"planid\":\"%s\"}", tid, plan);
    return test_post_json(url, body, status);
}

/* ---- RefreshableOffers and purchase links ---- */

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

/* Asserts body's refresh, ping and shop links point at this api-edge's
 * endpoints, and that every offer has a purchaseLink of its own. */
static void assert_refreshable(const json_t *body) {
    static const char *const links[][2] = {
        {"refresh", "/offers?"}, {"ping", "/ping?"}, {"shop", "/shop?"}};
    for (size_t i = 0; i < 3; i++) {
        const char *l = str(body, links[i][0]);
        ck_assert_msg(l != NULL, "no %s link", links[i][0]);
        ck_assert_msg(strncmp(l, edge, strlen(edge)) == 0, "%s: %s", links[i][0], l);
        ck_assert_ptr_nonnull(strstr(l, links[i][1]));
        ck_assert_ptr_nonnull(strstr(l, "signature="));
    }
    json_t *offers = json_object_get(body, "offers");
    ck_assert_uint_gt(json_array_size(offers), 0);
    size_t i;
    json_t *o;
    json_array_foreach(offers, i, o) {
        const char *l = str(o, "purchaseLink");
        ck_assert_msg(l != NULL, "offer %s has no purchaseLink", str(o, "planId"));
        ck_assert_int_eq(strncmp(l, edge, strlen(edge)), 0);
        ck_assert_ptr_nonnull(strstr(l, "/purchasePlan?"));
        ck_assert_ptr_nonnull(strstr(l, "transactionId=rnf-"));
        char plan[160];
        snprintf(plan, sizeof plan, "planId=%s&", str(o, "planId"));
        ck_assert_msg(strstr(l, plan) != NULL, "%s not in %s", plan, l);
        for (size_t k = 0; k < i; k++)
            ck_assert_str_ne(l, str(json_array_get(offers, k), "purchaseLink"));
    }
}

START_TEST(rnf_offers_answer_refreshable_offers) {
    char *cpid = new_cpid(RICH);
    char path[512];
    snprintf(path, sizeof path, "/rnf/" SP "/tp/%s/offers", cpid);
    char *url = signed_link_make(edge, path, NULL, 0, 600, wall_ms());
    long status = 0;
    json_t *first = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    assert_refreshable(first);
    /* The fresh links work: refresh gives new ones again, ping answers. */
    json_t *again = test_get_json(str(first, "refresh"), NULL, &status);
    ck_assert_int_eq(status, 200);
    assert_refreshable(again);
    ck_assert_str_ne(str(again, "refresh"), str(first, "refresh"));
    json_t *pong = test_get_json(str(first, "ping"), NULL, &status);
    ck_assert_int_eq(status, 200);
    json_decref(pong);
    /* An offer's purchaseLink buys that plan, once. */
    const char *link = str(offer_of(again, "tp-music-daily"), "purchaseLink");
    ck_assert_ptr_nonnull(link);
    json_t *bought = test_get_json(link, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(str(bought, "status"), "completed");
    ck_assert_int_eq(strncmp(str(bought, "transid"), "rnf-", 4), 0);
    long debits = 0;
    ck_assert_int_eq(test_mno_activations_of(mno_base, SP, str(bought, "transid"), &debits, NULL),
                     200);
    ck_assert_int_eq(debits, 1);
    json_decref(bought);
    json_decref(again);
    json_decref(first);
    free(url);
    free(cpid);
}
END_TEST

/* A purchaseLink carries its offer's fundSource (an EWALLET plan bought
 * with the default WALLET would be refused), and the new routes echo the
 * request id (x-correlator) like every other. */
START_TEST(purchase_link_carries_the_offers_fund_source) {
    char *cpid = new_cpid(EWALLET_SUB);
    char path[512];
    snprintf(path, sizeof path, "/rnf/" SP "/tp/%s/offers", cpid);
    char *url = signed_link_make(edge, path, NULL, 0, 600, wall_ms());
    const char *const offers_id[] = {"x-correlator: contract-offers-corr-1", NULL};
    test_response r;
    ck_assert_int_eq(test_http("GET", url, offers_id, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.correlator, "contract-offers-corr-1");
    json_t *offers = json_loadb(r.body, r.len, 0, NULL);
    test_response_free(&r);
    ck_assert_ptr_nonnull(offers);
    assert_refreshable(offers);
    const json_t *ewallet = offer_of(offers, "tp-ewallet-data-2gb");
    ck_assert_ptr_nonnull(ewallet);
    ck_assert_str_eq(str(ewallet, "fundSource"), "EWALLET");
    const char *link = str(ewallet, "purchaseLink");
    ck_assert_msg(strstr(link, "fundSource=EWALLET") != NULL, "%s", link);
    ck_assert_str_eq(str(offer_of(offers, "tp-free-social-trial"), "fundSource"), "FREE");
    ck_assert_ptr_nonnull(
        strstr(str(offer_of(offers, "tp-free-social-trial"), "purchaseLink"), "fundSource=FREE"));

    const char *const buy_id[] = {"x-correlator: contract-link-corr-2", NULL};
    ck_assert_int_eq(test_http("GET", link, buy_id, NULL, &r), 0);
    ck_assert_msg(r.status == 200, "%ld %.*s", r.status, (int)r.len, r.body);
    ck_assert_str_eq(r.correlator, "contract-link-corr-2");
    json_t *bought = json_loadb(r.body, r.len, 0, NULL);
    test_response_free(&r);
    ck_assert_str_eq(str(bought, "status"), "completed");
    ck_assert_str_eq(str(bought, "fundSource"), "EWALLET");
    long debits = 0;
    ck_assert_int_eq(test_mno_activations_of(mno_base, SP, str(bought, "transid"), &debits, NULL),
                     200);
    ck_assert_int_eq(debits, 1);

    /* The provider's purchase status of it, under its own request id. */
    char status_url[512];
    snprintf(status_url, sizeof status_url, "%s/std/" SP "/tp/" EWALLET_SUB "/purchasePlan/%s",
             edge, str(bought, "transid"));
    const char *const status_id[] = {"x-correlator: contract-status-corr-3", NULL};
    ck_assert_int_eq(test_http("GET", status_url, status_id, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.correlator, "contract-status-corr-3");
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    test_response_free(&r);
    ck_assert_str_eq(str(j, "fundSource"), "EWALLET");
    ck_assert_str_eq(str(j, "planId"), "tp-ewallet-data-2gb");
    json_decref(j);
    json_decref(bought);
    json_decref(offers);
    free(url);
    free(cpid);
}
END_TEST

START_TEST(notification_offers_carry_purchase_links) {
    char tid[64];
    ck_assert_int_eq(test_register_consent(edge, SP, POSTPAID, new_tid(tid, sizeof tid, "consent"),
                                           "[\"low-data\"]"),
                     200);
    char url[256], body[160];
    snprintf(url, sizeof url, "%s/notify/tp/v1/single?idValue=" POSTPAID "&idType=MSISDN", edge);
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"type\":\"low-data\"}",
             new_tid(tid, sizeof tid, "notify"));
    test_response r;
    ck_assert_int_eq(test_http("POST", url, NULL, body, &r), 0);
    ck_assert_int_eq(r.status, 202);
    test_response_free(&r);
    json_t *note = NULL;
    for (int i = 0; i < 400 && !note; i++) {
        if (test_sp_received_count(sp_base, "notification", tid, 1, &note, NULL) < 1) {
            json_decref(note);
            note = NULL;
            test_sleep_ms(50);
        }
    }
    ck_assert_msg(note != NULL, "the notification did not arrive");
    assert_refreshable(note);
    const char *link = str(offer_of(note, "tp-voice-weekly"), "purchaseLink");
    ck_assert_ptr_nonnull(link);
    long status = 0;
    json_t *bought = test_get_json(link, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(str(bought, "status"), "completed");
    json_decref(bought);
    json_decref(note);
}
END_TEST

/* ---- the operator callback's details reach the provider ---- */

START_TEST(callback_error_code_and_redirect_link_reach_the_provider) {
    char tid[64], op_tid[37];
    long status = 0;
    json_t *j = buy(POSTPAID, new_tid(tid, sizeof tid, "async"), "tp-data-weekly-async", &status);
    ck_assert_int_eq(status, 202);
    json_decref(j);
    test_operator_transid(SP, tid, op_tid);
    char url[256], body[512];
    snprintf(url, sizeof url, "%s/callback/v1/tp/?idValue=" POSTPAID "&idType=MSISDN", edge);
    /* A redirectLink a webview must not follow is refused, nothing applied. */
    snprintf(body, sizeof body,
             "{\"transactionId\":\"%s\",\"appId\":\"" SP "\",\"errorType\":\"PIN_ENTRY_ERROR\","
             "\"redirectLink\":\"javascript:alert(1)\"}",
             op_tid);
    j = test_post_json(url, body, &status);
    ck_assert_int_eq(status, 400);
    ck_assert_ptr_nonnull(strstr(str(j, "message"), "redirectLink"));
    json_decref(j);
    snprintf(body, sizeof body,
             "{\"transactionId\":\"%s\",\"appId\":\"" SP "\",\"errorType\":\"PIN_ENTRY_ERROR\","
             "\"errorCode\":\"400.70.2\",\"redirectLink\":\"https://op.example/pin?retry=1\"}",
             op_tid);
    j = test_post_json(url, body, &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
    json_t *cb = NULL;
    for (int i = 0; i < 400 && !cb; i++) {
        if (test_sp_received_count(sp_base, "callback", tid, 1, &cb, NULL) < 1) {
            json_decref(cb);
            cb = NULL;
            test_sleep_ms(50);
        }
    }
    ck_assert_msg(cb != NULL, "the provider got no callback");
    ck_assert_str_eq(str(cb, "transactionId"), tid);
    ck_assert_str_eq(str(cb, "errorType"), "PIN_ENTRY_ERROR");
    ck_assert_str_eq(str(cb, "errorCode"), "400.70.2");
    ck_assert_str_eq(str(cb, "redirectLink"), "https://op.example/pin?retry=1");
    json_decref(cb);
    /* The provider's status look-up says the same. */
    char path[256];
    snprintf(path, sizeof path, "/std/" SP "/tp/" POSTPAID "/purchasePlan/%s", tid);
    j = get(path, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(str(j, "status"), "failed");
    ck_assert_str_eq(str(j, "errorCode"), "400.70.2");
    ck_assert_str_eq(str(j, "redirectLink"), "https://op.example/pin?retry=1");
    json_decref(j);
}
END_TEST

/* ---- upsellOffer's filters ---- */

static json_t *offers(const char *query) {
    char path[256];
    snprintf(path, sizeof path, "/std/" SP "/tp/" RICH "/upsellOffer%s", query);
    long status = 0;
    json_t *j = get(path, &status);
    ck_assert_msg(status == 200, "%s: %ld", path, status);
    return j;
}

static size_t n_offers(const json_t *j) { return json_array_size(json_object_get(j, "offers")); }

START_TEST(offer_filters_reach_the_backend) {
    json_t *all = offers("");
    ck_assert_ptr_nonnull(offer_of(all, "tp-voice-weekly"));
    /* principal: offerType=Data at the backend, which leaves out its
     * general voice plan (Millom's own rule would keep it: appType GENERIC) */
    json_t *principal = offers("?planType=principal");
    ck_assert_ptr_null(offer_of(principal, "tp-voice-weekly"));
    ck_assert_ptr_nonnull(offer_of(principal, "tp-data-daily-3gb"));
    /* maxPrice: at most 60.00 PKR */
    json_t *cheap = offers("?maxPrice=60");
    ck_assert_uint_gt(n_offers(cheap), 0);
    ck_assert_uint_lt(n_offers(cheap), n_offers(all));
    ck_assert_ptr_nonnull(offer_of(cheap, "tp-social-daily")); /* 60.00 exactly */
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(cheap, "offers"), i, o) {
        ck_assert_msg(atof(str(o, "cost")) <= 60.0, "%s costs %s", str(o, "planId"),
                      str(o, "cost"));
    }
    /* limit: the first two, in the operator's order */
    json_t *two = offers("?limit=2");
    ck_assert_uint_eq(n_offers(two), 2);
    for (size_t k = 0; k < 2; k++)
        ck_assert_str_eq(str(json_array_get(json_object_get(two, "offers"), k), "planId"),
                         str(json_array_get(json_object_get(all, "offers"), k), "planId"));
    /* Each filter is its own cache entry: the plain call still gets all. */
    json_t *again = offers("");
    ck_assert_uint_eq(n_offers(again), n_offers(all));
    json_t *both = offers("?maxPrice=25.00&limit=1&planType=supplementary");
    ck_assert_uint_eq(n_offers(both), 1);
    ck_assert_double_le(atof(str(json_array_get(json_object_get(both, "offers"), 0), "cost")),
                        25.0);
    json_decref(both);
    json_decref(again);
    json_decref(two);
    json_decref(cheap);
    json_decref(principal);
    json_decref(all);
    /* Bad values: 400 naming the parameter, before any backend call. */
    static const char *const bad[] = {"?maxPrice=abc", "?maxPrice=-1", "?maxPrice=1.234",
                                      "?limit=0",      "?limit=101",   "?limit=2x"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char path[256];
        snprintf(path, sizeof path, "/std/" SP "/tp/" RICH "/upsellOffer%s", bad[k]);
        long status = 0;
        json_t *j = get(path, &status);
        ck_assert_msg(status == 400, "%s: %ld", bad[k], status);
        ck_assert_str_eq(str(j, "cause"), "BAD_REQUEST");
        char name[16];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(bad[k] + 1, "="), bad[k] + 1);
        ck_assert_msg(strstr(str(j, "errorMessage"), name) != NULL, "%s", str(j, "errorMessage"));
        json_decref(j);
    }
}
END_TEST

/* ---- the provider's purchase status ---- */

START_TEST(provider_sees_its_own_purchase_only) {
    char tid[64];
    long status = 0;
    json_t *answer = buy(RICH, new_tid(tid, sizeof tid, "status"), "tp-video-hour", &status);
    ck_assert_int_eq(status, 200);
    char path[256];
    snprintf(path, sizeof path, "/std/" SP "/tp/" RICH "/purchasePlan/%s", tid);
    json_t *j = get(path, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(str(j, "transid"), tid);
    ck_assert_str_eq(str(j, "status"), "completed");
    ck_assert_str_eq(str(j, "confirmationCode"), str(answer, "confirmationCode"));
    ck_assert_str_eq(str(j, "fundSource"), "WALLET");
    ck_assert_str_eq(str(j, "planId"), "tp-video-hour");
    ck_assert_ptr_nonnull(str(j, "createdAt"));
    ck_assert_ptr_nonnull(str(j, "completedAt"));
    json_decref(j);
    json_decref(answer);
    /* The operator may be left out, as on every /std path. */
    snprintf(path, sizeof path, "/std/" SP "/" RICH "/purchasePlan/%s", tid);
    j = get(path, &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
    /* Another provider, another subscriber, an unknown transid: the same
     * 404, so nobody learns which transids exist. */
    const char *const others[] = {"/std/otherprovider/tp/" RICH "/purchasePlan/%s",
                                  "/std/" SP "/tp/" POSTPAID "/purchasePlan/%s",
                                  "/std/" SP "/tp/" RICH "/purchasePlan/%s-unknown"};
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) {
        snprintf(path, sizeof path, others[k], tid);
        j = get(path, &status);
        ck_assert_msg(status == 404, "%s: %ld", path, status);
        ck_assert_str_eq(str(j, "cause"), "NOT_FOUND");
        json_decref(j);
    }
    j = get("/std/" SP "/tp/" RICH "/purchasePlan/short", &status);
    ck_assert_int_eq(status, 400);
    json_decref(j);
}
END_TEST

/* ---- no Content-Type without a body ---- */

/* Sends a request with a JSON body (or none) on a fresh connection; the
 * status, and the answer's headers in head. */
static int exchange(const char *method, const char *target, const char *body, char *head,
                    size_t headlen) {
    char req[2048];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "%sContent-Length: %zu\r\n\r\n%s",
                     method, target, body ? "Content-Type: application/json\r\n" : "", blen,
                     body ? body : "");
    ck_assert_int_lt(n, (int)sizeof req);
    int status = raw_exchange(NULL, stack.edge_port, req, (size_t)n, head, headlen, 10000);
    char *end = strstr(head, "\r\n\r\n");
    if (end) end[2] = '\0';
    return status;
}

static void assert_no_content_type(const char *what, const char *head) {
    ck_assert_msg(strcasestr(head, "\r\nContent-Type:") == NULL, "%s: %s", what, head);
    ck_assert_msg(strcasestr(head, "\r\nContent-Length: 0") != NULL, "%s: %s", what, head);
}

START_TEST(bodiless_answers_have_no_content_type) {
    char head[4096], tid[64], body[256], target[512];
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"types\":[\"out-of-data\"]}",
             new_tid(tid, sizeof tid, "reg"));
    ck_assert_int_eq(exchange("POST", "/std/" SP "/" RICH "/register", body, head, sizeof head),
                     200);
    assert_no_content_type("register", head);
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"type\":\"out-of-data\"}",
             new_tid(tid, sizeof tid, "n"));
    ck_assert_int_eq(exchange("POST", "/notify/tp/v1/single?idValue=" RICH "&idType=MSISDN", body,
                              head, sizeof head),
                     202);
    assert_no_content_type("notify", head);
    char *cpid = new_cpid(RICH);
    snprintf(target, sizeof target, "/" SP "/tp/registerCpid?app=" SP);
    snprintf(body, sizeof body, "{\"cpid\":\"%s\"}", cpid);
    ck_assert_int_eq(exchange("POST", target, body, head, sizeof head), 200);
    assert_no_content_type("registerCpid", head);
    free(cpid);
    /* An answer with a body keeps its type. */
    ck_assert_int_eq(exchange("GET", "/std/" SP "/tp/" RICH "/balance", NULL, head, sizeof head),
                     200);
    ck_assert_ptr_nonnull(strcasestr(head, "\r\nContent-Type: application/json"));
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char public_url[64];
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    const char *env[] = {"MILLOM_MNO_CALLBACK_DELAY_MS=600000", "MILLOM_PURCHASE_TIMER_S=60",
                         public_url, NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp_base, sizeof sp_base, "http://127.0.0.1:%d", stack.sp_port);
    snprintf(mno_base, sizeof mno_base, "http://127.0.0.1:%d", stack.mno_port);
    Suite *s = suite_create("provider_contract");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rnf_offers_answer_refreshable_offers);
    tcase_add_test(tc, purchase_link_carries_the_offers_fund_source);
    tcase_add_test(tc, notification_offers_carry_purchase_links);
    tcase_add_test(tc, callback_error_code_and_redirect_link_reach_the_provider);
    tcase_add_test(tc, offer_filters_reach_the_backend);
    tcase_add_test(tc, provider_sees_its_own_purchase_only);
    tcase_add_test(tc, bodiless_answers_have_no_content_type);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
