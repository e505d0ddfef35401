/* The read path end to end: real HTTP into api-edge, real Kafka through
 * devbroker, offer-resolver calling mno-sandbox over HTTP, and back.
 * One stack serves every test in this file. */
#include "tests/lib/stack.h"
#include "shared/plumbing/kafka.h"
#include "millom/v1/query.pb-c.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static test_stack stack;
static char edge[64];

#define SP "testserviceprovider"

static json_t *get(const char *path, const char *const *headers, long *status) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", edge, path);
    return test_get_json(url, headers, status);
}

/* Asserts an ErrorDocument with this status and cause. */
static void expect_error(const char *path, long want_status, const char *want_cause) {
    long status = 0;
    json_t *j = get(path, NULL, &status);
    ck_assert_msg(j != NULL, "%s: body is not JSON", path);
    ck_assert_msg(status == want_status, "%s: status %ld, want %ld", path, status, want_status);
    const char *cause = json_string_value(json_object_get(j, "cause"));
    ck_assert_msg(cause && strcmp(cause, want_cause) == 0, "%s: cause %s, want %s", path,
                  cause ? cause : "(none)", want_cause);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "errorMessage")));
    json_decref(j);
}

static const char *offers_state(const char *msisdn, size_t *n_offers) {
    char path[256];
    snprintf(path, sizeof path, "/std/" SP "/tp/%s/upsellOffer", msisdn);
    long status = 0;
    json_t *j = get(path, NULL, &status);
    ck_assert_msg(status == 200, "%s: status %ld", path, status);
    static char state[32];
    snprintf(state, sizeof state, "%s", json_string_value(json_object_get(j, "subscriberState")));
    *n_offers = json_array_size(json_object_get(j, "offers"));
    json_decref(j);
    return state;
}

START_TEST(good_to_go_gets_offers) {
    long status = 0;
    json_t *j = get("/std/" SP "/tp/924542610003/upsellOffer", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "subscriberState")), "GOOD_TO_GO");
    json_t *offers = json_object_get(j, "offers");
    ck_assert_int_ge(json_array_size(offers), 2);
    size_t i;
    json_t *o;
    json_array_foreach(offers, i, o) {
        ck_assert_ptr_nonnull(json_string_value(json_object_get(o, "planId")));
        /* cost is a quoted decimal with the currency's two decimals */
        const char *cost = json_string_value(json_object_get(o, "cost"));
        ck_assert_ptr_nonnull(cost);
        ck_assert_ptr_nonnull(strchr(cost, '.'));
        ck_assert_int_eq(strlen(strchr(cost, '.')), 3);
        ck_assert_str_eq(json_string_value(json_object_get(o, "costCurrency")), "PKR");
        json_t *name = json_array_get(json_object_get(o, "planName"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(name, "language")), "en");
        ck_assert_ptr_nonnull(json_string_value(json_object_get(name, "text")));
        json_t *quota = json_array_get(json_object_get(o, "quota"), 0);
        ck_assert_ptr_nonnull(json_string_value(json_object_get(quota, "unit")));
        ck_assert(json_is_integer(json_object_get(quota, "quota")));
        ck_assert_ptr_nonnull(json_string_value(json_object_get(o, "offerContext")));
    }
    json_decref(j);
}
END_TEST

START_TEST(every_seeded_subscriber_has_its_state) {
    size_t n;
    ck_assert_str_eq(offers_state("924542610003", &n), "GOOD_TO_GO");
    ck_assert_uint_gt(n, 0);
    ck_assert_str_eq(offers_state("924542610000", &n), "NEED_TOPUP");
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(offers_state("924542610001", &n), "NEED_OFFERS");
    ck_assert_uint_gt(n, 0);
    ck_assert_str_eq(offers_state("924542610002", &n), "NEED_LOANS");
    ck_assert_uint_gt(n, 0);
    ck_assert_str_eq(offers_state("924542610006", &n), "GOOD_TO_GO");
}
END_TEST

START_TEST(balance_of_good_subscriber) {
    long status = 0;
    json_t *j = get("/std/" SP "/tp/924542610003/balance", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "operator")), "tp");
    ck_assert_str_eq(json_string_value(json_object_get(j, "accountType")), "PREPAID");
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "validUntil")));
    json_t *plans = json_object_get(j, "activePlans");
    ck_assert_int_ge(json_array_size(plans), 2);
    json_t *gauge = json_array_get(json_object_get(json_array_get(plans, 0), "gauge"), 0);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(gauge, "unit")));
    ck_assert(json_is_integer(json_object_get(gauge, "quota")));
    ck_assert(json_is_integer(json_object_get(gauge, "remaining")));
    const char *money =
        json_string_value(json_object_get(json_object_get(j, "monetaryBalance"), "balance"));
    ck_assert_ptr_nonnull(money);
    json_decref(j);
}
END_TEST

START_TEST(account_info_prepaid_postpaid_and_loan) {
    long status = 0;
    json_t *j = get("/std/" SP "/tp/924542610006/accountInfo", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "accountType")), "POSTPAID");
    json_decref(j);

    j = get("/std/" SP "/tp/924542610000/accountInfo", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "accountType")), "PREPAID");
    ck_assert_str_eq(json_string_value(json_object_get(j, "currency")), "PKR");
    int saw_main = 0, saw_loan = 0;
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(j, "balances"), i, b) {
        const char *type = json_string_value(json_object_get(b, "balanceType"));
        if (type && strcmp(type, "main") == 0) {
            saw_main = 1;
            ck_assert_str_eq(json_string_value(json_object_get(b, "balance")), "0.00");
        }
        if (type && strcmp(type, "loan") == 0) saw_loan = 1;
    }
    ck_assert(saw_main && saw_loan);
    json_decref(j);
}
END_TEST

START_TEST(path_without_operator) {
    long status = 0;
    json_t *j = get("/std/" SP "/924542610003/balance", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "operator")), "tp");
    json_decref(j);
    j = get("/std/" SP "/+924542610003/upsellOffer", NULL, &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
}
END_TEST

START_TEST(language_from_accept_language) {
    const char *const ur[] = {"Accept-Language: ur-PK,en;q=0.5", NULL};
    long status = 0;
    json_t *j = get("/std/" SP "/tp/924542610003/upsellOffer", ur, &status);
    ck_assert_int_eq(status, 200);
    json_t *name = json_array_get(
        json_object_get(json_array_get(json_object_get(j, "offers"), 0), "planName"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(name, "language")), "ur");
    json_decref(j);
    /* An unsupported language falls back to the operator's default. */
    const char *const fr[] = {"Accept-Language: fr", NULL};
    j = get("/std/" SP "/tp/924542610003/upsellOffer", fr, &status);
    ck_assert_int_eq(status, 200);
    name = json_array_get(
        json_object_get(json_array_get(json_object_get(j, "offers"), 0), "planName"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(name, "language")), "en");
    json_decref(j);
}
END_TEST

START_TEST(plan_type_filters_offers) {
    long status = 0;
    json_t *all = get("/std/" SP "/tp/924542610003/upsellOffer", NULL, &status);
    json_t *principal =
        get("/std/" SP "/tp/924542610003/upsellOffer?planType=principal", NULL, &status);
    ck_assert_int_eq(status, 200);
    json_t *supp =
        get("/std/" SP "/tp/924542610003/upsellOffer?planType=supplementary", NULL, &status);
    ck_assert_int_eq(status, 200);
    size_t n_all = json_array_size(json_object_get(all, "offers"));
    size_t n_p = json_array_size(json_object_get(principal, "offers"));
    size_t n_s = json_array_size(json_object_get(supp, "offers"));
    ck_assert_uint_gt(n_p, 0);
    ck_assert_uint_gt(n_s, 0);
    /* principal asks the backend for offerType=Data: the general voice
     * plan (Weekly Minutes) is neither principal nor supplementary. */
    ck_assert_uint_eq(n_p + n_s + 1, n_all);
    json_decref(all);
    json_decref(principal);
    json_decref(supp);
}
END_TEST

START_TEST(backend_errors_map_to_causes) {
    expect_error("/std/" SP "/tp/924542619999/balance", 404, "INVALID_NUMBER");
    expect_error("/std/" SP "/tp/924542610004/balance", 403, "USER_ROAMING");
    expect_error("/std/" SP "/tp/924542610005/upsellOffer", 403, "NOT_ALLOWED");
}
END_TEST

START_TEST(validation_errors) {
    expect_error("/std/nosuchprovider/tp/924542610003/balance", 403, "NOT_ALLOWED");
    expect_error("/std/" SP "/xx/924542610003/balance", 400, "BAD_REQUEST");
    expect_error("/std/" SP "/tp/92abc/balance", 404, "INVALID_NUMBER");
    expect_error("/std/" SP "/tp/4791234567/balance", 404, "INVALID_NUMBER");
    expect_error("/std/" SP "/tp/924542610003/balance?key_type=EMAIL", 400, "BAD_REQUEST");
    expect_error("/std/" SP "/tp/924542610003/upsellOffer?planType=huge", 400, "BAD_REQUEST");
    expect_error("/std/" SP "/4791234567/balance", 404, "INVALID_NUMBER");
    expect_error("/std/" SP "/tp/924542610003/nothing", 404, "NOT_FOUND");
}
END_TEST

START_TEST(wrong_method_and_huge_body) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/924542610003/balance", edge);
    test_response r;
    ck_assert_int_eq(test_http("DELETE", url, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 405);
    test_response_free(&r);
    size_t big = 100 * 1024;
    char *body = malloc(big + 1);
    memset(body, 'x', big);
    body[big] = '\0';
    ck_assert_int_eq(test_http("POST", url, NULL, body, &r), 0);
    ck_assert_int_eq(r.status, 413);
    test_response_free(&r);
    free(body);
}
END_TEST

START_TEST(opet_is_passed_to_the_operator) {
    long status = 0;
    json_t *j = get("/std/" SP "/tp/OPET-tp-0003/balance?key_type=OPET", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_ge(json_array_size(json_object_get(j, "activePlans")), 1);
    json_decref(j);
}
END_TEST

static long mno_stat(const char *name) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/admin/stats", stack.mno_port);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    long v = (long)json_integer_value(json_object_get(j, name));
    json_decref(j);
    return v;
}

START_TEST(balance_cache_and_no_cache) {
    long status = 0;
    json_t *first = get("/std/" SP "/tp/924542610006/balance", NULL, &status);
    ck_assert_int_eq(status, 200);
    long before = mno_stat("balance");
    /* Cached: no backend call, and the same answer (validUntil too: it
     * follows the cached entry's age). accountInfo is served from the
     * same entry. */
    json_t *j = get("/std/" SP "/tp/924542610006/balance", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(json_equal(first, j), "the cached answer differs from the first");
    json_decref(first);
    json_decref(j);
    j = get("/std/" SP "/tp/924542610006/accountInfo", NULL, &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
    ck_assert_int_eq(mno_stat("balance"), before);
    /* Cache-Control: no-cache goes to the backend. */
    const char *const nc[] = {"Cache-Control: no-cache", NULL};
    j = get("/std/" SP "/tp/924542610006/balance", nc, &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
    ck_assert_int_eq(mno_stat("balance"), before + 1);
}
END_TEST

static void mno_admin(const char *path, const char *body) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", stack.mno_port, path);
    test_response r;
    ck_assert_int_eq(test_http("POST", url, NULL, body, &r), 0);
    ck_assert_msg(r.status == 200 || r.status == 201, "%s: status %ld", path, r.status);
    test_response_free(&r);
}

/* The main balance of path's answer, read with headers: "12.34". */
static char *main_balance(const char *path, const char *const *headers) {
    long status = 0;
    json_t *j = get(path, headers, &status);
    ck_assert_int_eq(status, 200);
    const json_t *b = json_object_get(json_object_get(j, "monetaryBalance"), "balance");
    if (!b) { /* accountInfo: balances[] */
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(j, "balances"), i, item) {
            const char *type = json_string_value(json_object_get(item, "balanceType"));
            if (type && strcmp(type, "main") == 0) b = json_object_get(item, "balance");
        }
    }
    ck_assert_ptr_nonnull(json_string_value(b));
    char *money = strdup(json_string_value(b));
    json_decref(j);
    return money;
}

static void expect_main_balance(const char *path, const char *const *headers, const char *want) {
    char *money = main_balance(path, headers);
    ck_assert_msg(strcmp(money, want) == 0, "%s: main balance %s, want %s", path, money, want);
    free(money);
}

/* offer-resolver keeps a backend answer's text and the balance and
 * accountInfo mapped from it: the same text again reuses them; a changed
 * one must show at once, in both. */
START_TEST(a_changed_backend_answer_shows_at_once) {
    const char *const nc[] = {"Cache-Control: no-cache", NULL};
    const char *balance = "/std/" SP "/tp/924542619006/balance";
    const char *info = "/std/" SP "/tp/924542619006/accountInfo";
    mno_admin("/admin/subscribers", "{\"msisdn\": \"924542619006\", \"balanceMinor\": 10000}");
    expect_main_balance(balance, nc, "100.00");
    expect_main_balance(info, NULL, "100.00");
    expect_main_balance(balance, nc, "100.00"); /* the same text: reused */
    expect_main_balance(balance, NULL, "100.00");
    mno_admin("/admin/subscribers", "{\"msisdn\": \"924542619006\", \"balanceMinor\": 12345}");
    expect_main_balance(balance, NULL, "100.00"); /* still cached */
    expect_main_balance(balance, nc, "123.45");
    expect_main_balance(balance, NULL, "123.45");
    expect_main_balance(info, NULL, "123.45");
}
END_TEST

/* The planIds of path's upsellOffer (comma-separated, in order) and, in
 * contexts (at most 8, caller frees), its offerContexts. */
static char *upsell_plans(const char *path, const char *const *headers, char **contexts,
                          size_t *n) {
    long status = 0;
    json_t *j = get(path, headers, &status);
    ck_assert_int_eq(status, 200);
    char plans[512] = "";
    size_t i;
    json_t *o;
    *n = 0;
    json_array_foreach(json_object_get(j, "offers"), i, o) {
        const char *id = json_string_value(json_object_get(o, "planId"));
        const char *ctx = json_string_value(json_object_get(o, "offerContext"));
        ck_assert_ptr_nonnull(id);
        ck_assert_msg(ctx && *ctx, "%s: offer %s without an offerContext", path, id);
        size_t used = strlen(plans);
        snprintf(plans + used, sizeof plans - used, "%s%s", used ? "," : "", id);
        if (*n < 8) contexts[(*n)++] = strdup(ctx);
    }
    json_decref(j);
    return strdup(plans);
}

static void expect_upsell_plans(const char *path, const char *const *headers, const char *want) {
    char *contexts[8];
    size_t n;
    char *plans = upsell_plans(path, headers, contexts, &n);
    ck_assert_msg(strcmp(plans, want) == 0, "%s: offers %s, want %s", path, plans, want);
    for (size_t i = 0; i < n; i++) free(contexts[i]);
    free(plans);
}

/* offer-resolver writes an upsellOffer answer out once per cached /offers
 * answer and signs fresh offerContexts into it for each request: a cached
 * answer still gets new ones, and a changed backend answer shows at once. */
START_TEST(a_cached_upsell_answer_gets_fresh_offer_contexts) {
    const char *const nc[] = {"Cache-Control: no-cache", NULL};
    const char *upsell = "/std/" SP "/tp/924542619007/upsellOffer";
    mno_admin("/admin/subscribers", "{\"msisdn\": \"924542619007\", \"balanceMinor\": 10000, "
                                    "\"offers\": [\"tp-social-daily\", \"tp-voice-weekly\"]}");
    char *first[8], *again[8];
    size_t n_first, n_again;
    char *plans = upsell_plans(upsell, nc, first, &n_first);
    ck_assert_str_eq(plans, "tp-social-daily,tp-voice-weekly");
    free(plans);
    long before = mno_stat("offers");
    plans = upsell_plans(upsell, NULL, again, &n_again); /* from the cache */
    ck_assert_int_eq(mno_stat("offers"), before);
    ck_assert_str_eq(plans, "tp-social-daily,tp-voice-weekly");
    free(plans);
    ck_assert_uint_eq(n_again, n_first);
    for (size_t i = 0; i < n_first; i++) {
        ck_assert_msg(strcmp(first[i], again[i]) != 0, "offer %zu: the same offerContext twice", i);
        free(first[i]);
        free(again[i]);
    }
    mno_admin("/admin/subscribers", "{\"msisdn\": \"924542619007\", "
                                    "\"offers\": [\"tp-voice-weekly\"]}");
    expect_upsell_plans(upsell, NULL, "tp-social-daily,tp-voice-weekly"); /* still cached */
    expect_upsell_plans(upsell, nc, "tp-voice-weekly");
    expect_upsell_plans(upsell, NULL, "tp-voice-weekly");
}
END_TEST

START_TEST(hanging_backend_gives_503_within_deadline) {
    mno_admin("/admin/behaviour", "{\"hang\": true}");
    const char *const nc[] = {"Cache-Control: no-cache", NULL};
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/924542610003/balance", edge);
    test_response r;
    ck_assert_int_eq(test_http("GET", url, nc, NULL, &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "SERVICE_UNAVAILABLE"));
    ck_assert_str_ne(r.retry_after, "");
    test_response_free(&r);
    /* While the backend hangs, other requests are still answered (no
     * thread of api-edge or offer-resolver is stuck on the first). */
    ck_assert_int_eq(test_http("GET", url, nc, NULL, &r), 0);
    ck_assert_int_eq(r.status, 503);
    test_response_free(&r);
    mno_admin("/admin/reset", "{}");
    long status = 0;
    json_t *j = get("/std/" SP "/tp/924542610003/balance", nc, &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
}
END_TEST

/* A slow backend takes sockets, not threads: 64 misses at once, each
 * answered by the backend 400 ms later, are all answered before the
 * 1.5 s deadline. Calls made one per thread of a pool of 16 (the design
 * before the backend loop) would take four rounds of 400 ms and answer
 * the last ones 503. */
#define SLOW_CALLS 64

static void *slow_balance(void *arg) {
    long *status = arg;
    const char *const nc[] = {"Cache-Control: no-cache", NULL};
    json_t *j = get("/std/" SP "/tp/924542610003/balance", nc, status);
    json_decref(j);
    return NULL;
}

START_TEST(slow_backend_calls_run_at_once) {
    mno_admin("/admin/behaviour", "{\"delayMs\": 400}");
    pthread_t threads[SLOW_CALLS];
    long status[SLOW_CALLS] = {0};
    for (int i = 0; i < SLOW_CALLS; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, slow_balance, &status[i]), 0);
    for (int i = 0; i < SLOW_CALLS; i++) pthread_join(threads[i], NULL);
    mno_admin("/admin/reset", "{}");
    int ok = 0;
    for (int i = 0; i < SLOW_CALLS; i++) ok += status[i] == 200;
    ck_assert_msg(ok == SLOW_CALLS, "%d of %d answered 200", ok, SLOW_CALLS);
}
END_TEST

START_TEST(failing_backend_gives_503) {
    mno_admin("/admin/behaviour", "{\"failStatus\": 503}");
    /* no-cache: an earlier test's offers may be in offer-resolver's cache */
    const char *const nc[] = {"Cache-Control: no-cache", NULL};
    long status = 0;
    json_t *j = get("/std/" SP "/tp/924542610003/upsellOffer", nc, &status);
    ck_assert_int_eq(status, 503);
    ck_assert_str_eq(json_string_value(json_object_get(j, "cause")), "SERVICE_UNAVAILABLE");
    json_decref(j);
    mno_admin("/admin/reset", "{}");
}
END_TEST

/* A message that is not a Query lands in millom.queries.dlq, and the
 * resolver keeps answering. */
START_TEST(malformed_query_goes_to_dlq) {
    char err[256];
    kafka_producer *p = kafka_producer_new("test", 0, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    const char garbage[] = "\xff\xff\xff\xff not protobuf";
    ck_assert_int_eq(
        kafka_produce(p, "millom.queries", 0, "k", 1, garbage, sizeof garbage - 1, NULL, 0), 0);
    ck_assert_int_eq(kafka_producer_flush(p, 5000), 0);
    kafka_producer_free(p);

    /* Read the DLQ with a plain consumer. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(kafka_conf_common(conf, "test-dlq-reader", err, sizeof err), 0);
    rd_kafka_conf_set(conf, "group.id", "test-dlq-reader", NULL, 0);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, "millom.queries.dlq", RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    int found = 0;
    for (int i = 0; i < 200 && !found; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        if (!m->err && m->len == sizeof garbage - 1 && memcmp(m->payload, garbage, m->len) == 0) {
            rd_kafka_headers_t *h = NULL;
            const void *v;
            size_t vlen;
            if (rd_kafka_message_headers(m, &h) == 0 &&
                rd_kafka_header_get_last(h, "error", &v, &vlen) == 0 && vlen > 0)
                found = 1;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    ck_assert_msg(found, "the malformed message did not reach millom.queries.dlq with an error");
    long status = 0;
    json_t *j = get("/std/" SP "/tp/924542610003/upsellOffer", NULL, &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
}
END_TEST

START_TEST(health_and_metrics) {
    char url[128];
    test_response r;
    snprintf(url, sizeof url, "%s/metrics", edge);
    ck_assert_int_eq(test_http("GET", url, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "millom_http_requests_total"));
    test_response_free(&r);
    /* offer-resolver answered queries above: its consumer reports lag per
     * assigned partition (sampled once a second) and its replies were
     * timed to the broker's acknowledgement. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", stack.resolver_port);
    ck_assert_int_eq(test_http("GET", url, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\nmillom_kafka_consumer_lag{topic=\"millom.queries\""));
    ck_assert_ptr_nonnull(strstr(r.body, "\nmillom_kafka_assigned_partitions "));
    ck_assert_ptr_nonnull(strstr(r.body, "\nmillom_kafka_produce_seconds_bucket{le="));
    ck_assert_ptr_null(strstr(r.body, "\nmillom_kafka_produce_seconds_count 0\n"));
    test_response_free(&r);
    int ports[] = {stack.resolver_port, stack.executor_port, stack.notifier_port,
                   stack.settlement_port};
    for (size_t i = 0; i < 4; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", ports[i]);
        ck_assert_int_eq(test_http("GET", url, NULL, NULL, &r), 0);
        ck_assert_int_eq(r.status, 200);
        test_response_free(&r);
    }
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *const env[] = {"MILLOM_QUERY_DEADLINE_MS=1500", "MILLOM_BACKEND_TIMEOUT_MS=1000",
                               NULL};
    if (stack_start(&stack, 18080, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);

    Suite *s = suite_create("read path");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, good_to_go_gets_offers);
    tcase_add_test(tc, every_seeded_subscriber_has_its_state);
    tcase_add_test(tc, balance_of_good_subscriber);
    tcase_add_test(tc, account_info_prepaid_postpaid_and_loan);
    tcase_add_test(tc, path_without_operator);
    tcase_add_test(tc, language_from_accept_language);
    tcase_add_test(tc, plan_type_filters_offers);
    tcase_add_test(tc, backend_errors_map_to_causes);
    tcase_add_test(tc, validation_errors);
    tcase_add_test(tc, wrong_method_and_huge_body);
    tcase_add_test(tc, opet_is_passed_to_the_operator);
    tcase_add_test(tc, balance_cache_and_no_cache);
    tcase_add_test(tc, a_changed_backend_answer_shows_at_once);
    tcase_add_test(tc, a_cached_upsell_answer_gets_fresh_offer_contexts);
    tcase_add_test(tc, hanging_backend_gives_503_within_deadline);
    tcase_add_test(tc, slow_backend_calls_run_at_once);
    tcase_add_test(tc, failing_backend_gives_503);
    tcase_add_test(tc, malformed_query_goes_to_dlq);
    tcase_add_test(tc, health_and_metrics);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
