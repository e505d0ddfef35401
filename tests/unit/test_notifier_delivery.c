/* The delivery worker's pure parts (services/notifier/delivery.h): the
 * tenants fields maxInFlight and maxPerSecond, the rate bucket driven by
 * an explicit clock, the offers cache without an rpc client (every ask
 * fails at once: nothing shared, nothing kept), and the rendering of a
 * stored rich notification. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/notifier/delivery.h"

static int limits(const char *json, provider_limits *l, char *err) {
    json_t *j = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(j);
    int rc = provider_limits_read(j, 16, l, err, 128);
    json_decref(j);
    return rc;
}

START_TEST(limits_default_and_given) {
    provider_limits l;
    char err[128];
    ck_assert_int_eq(limits("{\"id\":\"a\"}", &l, err), 0);
    ck_assert_int_eq(l.max_in_flight, 16);
    ck_assert(l.max_per_second == 0);
    ck_assert_int_eq(limits("{\"maxInFlight\":3,\"maxPerSecond\":2.5}", &l, err), 0);
    ck_assert_int_eq(l.max_in_flight, 3);
    ck_assert(l.max_per_second == 2.5);
    ck_assert_int_eq(provider_limits_read(NULL, 7, &l, err, sizeof err), 0);
    ck_assert_int_eq(l.max_in_flight, 7);
}
END_TEST

START_TEST(limits_refused) {
    provider_limits l;
    char err[128];
    const char *bad[] = {"{\"maxInFlight\":0}",      "{\"maxInFlight\":10001}",
                         "{\"maxInFlight\":2.5}",    "{\"maxInFlight\":\"4\"}",
                         "{\"maxPerSecond\":0}",     "{\"maxPerSecond\":-1}",
                         "{\"maxPerSecond\":\"x\"}", "{\"maxPerSecond\":1e9}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(limits(bad[i], &l, err) == -1, "%s accepted", bad[i]);
        ck_assert_msg(strstr(err, strstr(bad[i], "maxInFlight") ? "maxInFlight" : "maxPerSecond"),
                      "%s: %s", bad[i], err);
    }
    json_t *doc = json_loads("{\"serviceProviders\":[{\"id\":\"ok\"},"
                             "{\"id\":\"slow\",\"maxInFlight\":-2}]}",
                             0, NULL);
    ck_assert_int_eq(provider_limits_check(doc, 16, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "slow"));
    ck_assert_ptr_nonnull(strstr(err, "maxInFlight"));
    json_decref(doc);
}
END_TEST

START_TEST(rate_bucket_paces) {
    rate_bucket b;
    rate_bucket_init(&b, 10, 1000); /* 10 a second, 10 stored */
    ck_assert_int_eq(rate_bucket_take(&b, 4, 1000), 4);
    ck_assert_int_eq(rate_bucket_take(&b, 100, 1000), 6);
    ck_assert_int_eq(rate_bucket_take(&b, 1, 1000), 0);
    ck_assert_int_eq(rate_bucket_wait_ms(&b, 1000), 100);
    ck_assert_int_eq(rate_bucket_take(&b, 5, 1050), 0); /* half a token */
    ck_assert_int_eq(rate_bucket_wait_ms(&b, 1050), 50);
    ck_assert_int_eq(rate_bucket_take(&b, 5, 1300), 3);
    /* never more than a second's worth stored */
    ck_assert_int_eq(rate_bucket_take(&b, 100, 60000), 10);
    /* over 10 s at most 10 a second (plus the first second's store) */
    long total = 0;
    for (int64_t t = 100000; t < 110000; t += 7) total += rate_bucket_take(&b, 1000, t);
    ck_assert_int_le(total, 110);
    ck_assert_int_ge(total, 99);
    /* slower than one a second: one stored */
    rate_bucket_init(&b, 0.5, 0);
    ck_assert_int_eq(rate_bucket_take(&b, 3, 0), 1);
    ck_assert_int_eq(rate_bucket_wait_ms(&b, 0), 2000);
    ck_assert_int_eq(rate_bucket_take(&b, 3, 1999), 0);
    ck_assert_int_eq(rate_bucket_take(&b, 3, 2010), 1);
    /* unlimited */
    rate_bucket_init(&b, 0, 0);
    ck_assert_int_eq(rate_bucket_take(&b, 12345, 0), 12345);
    ck_assert_int_eq(rate_bucket_wait_ms(&b, 0), 0);
}
END_TEST

static int wakes;
static void count_wake(void *arg) {
    (void)arg;
    wakes++;
}

START_TEST(offers_cache_without_rpc_fails_at_once_and_keeps_nothing) {
    notifier n;
    memset(&n, 0, sizeof n);
    n.offers_timeout_ms = 100;
    offers_cache *c = offers_cache_new(&n, 60000, 10);
    ck_assert_ptr_nonnull(c);
    wakes = 0;
    offers_cache_set_wake(c, count_wake, NULL);
    offers_ticket *t = offers_cache_ask(c, "sp", "tp", "924542610003", "en", 1000);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(offers_ticket_done(t), 1);
    const char *why = NULL;
    ck_assert_ptr_null(offers_ticket_offers(t, &why));
    ck_assert_ptr_nonnull(strstr(why, "rpc"));
    ck_assert_int_eq(wakes, 1);
    /* A failure is not shared: the next ask is a new ticket. */
    offers_ticket *t2 = offers_cache_ask(c, "sp", "tp", "924542610003", "en", 1001);
    ck_assert_ptr_ne(t, t2);
    ck_assert_int_le(offers_cache_size(c), 1);
    offers_ticket_release(t2);
    /* Many keys: the cache stays within its bound. */
    for (int i = 0; i < 50; i++) {
        char msisdn[32];
        snprintf(msisdn, sizeof msisdn, "9245426100%02d", i);
        offers_ticket_release(offers_cache_ask(c, "sp", "tp", msisdn, "en", 2000 + i));
    }
    ck_assert_int_le(offers_cache_size(c), 10);
    offers_cache_free(c);
    /* A ticket outlives its cache. */
    ck_assert_int_eq(offers_ticket_done(t), 1);
    offers_ticket_release(t);
}
END_TEST

START_TEST(rich_notification_target_and_render) {
    const char *stored = "{\"eventType\":\"low-data\",\"transactionId\":\"t1\",\"cpid\":\"C1\","
                         "\"offers\":[],\"_millom\":{\"operator\":\"tp\",\"msisdn\":"
                         "\"924542610003\",\"language\":\"ur\"}}";
    rich_target t;
    ck_assert_int_eq(rich_notification_target(stored, &t), 1);
    ck_assert_str_eq(t.op, "tp");
    ck_assert_str_eq(t.msisdn, "924542610003");
    ck_assert_str_eq(t.language, "ur");
    ck_assert_int_eq(rich_notification_target("{\"transactionId\":\"x\",\"appId\":\"a\"}", &t), 0);
    ck_assert_int_eq(rich_notification_target("not json", &t), 0);

    notifier n;
    memset(&n, 0, sizeof n);
    snprintf(n.public_url, sizeof n.public_url, "http://127.0.0.1:8080");
    n.link_ttl_s = 600;
    n.shop_link_ttl_s = 60;
    json_t *offers = json_loads("[{\"planId\":\"p1\"}]", 0, NULL);
    char *sent = rich_notification_render(&n, "sp", stored, offers);
    ck_assert_ptr_nonnull(sent);
    json_t *j = json_loads(sent, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_null(json_object_get(j, "_millom"));
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(j, "offers"), 0), "planId")),
                     "p1");
    ck_assert_ptr_nonnull(
        strstr(json_string_value(json_object_get(j, "refresh")), "/rnf/sp/tp/C1/"));
    json_decref(j);
    free(sent);
    /* the shared offers were not changed */
    ck_assert_int_eq(json_array_size(offers), 1);
    json_decref(offers);
    sent = rich_notification_render(&n, "sp", stored, NULL);
    j = json_loads(sent, 0, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(j, "offers")), 0);
    json_decref(j);
    free(sent);
    ck_assert_ptr_null(rich_notification_render(&n, "sp", "{\"transactionId\":\"x\"}", NULL));
}
END_TEST

int main(void) {
    Suite *s = suite_create("notifier delivery");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, limits_default_and_given);
    tcase_add_test(tc, limits_refused);
    tcase_add_test(tc, rate_bucket_paces);
    tcase_add_test(tc, offers_cache_without_rpc_fails_at_once_and_keeps_nothing);
    tcase_add_test(tc, rich_notification_target_and_render);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
