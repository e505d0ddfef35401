/* The delivery worker's parts that stand on their own
 * (services/notifier/delivery.h): the tenants fields maxInFlight and
 * maxPerSecond, the rate bucket driven by an explicit clock, the offers
 * cache without an rpc client (every ask fails at once: nothing shared,
 * nothing kept), the rendering of a stored rich notification, which
 * answers are retried, a provider's webhook credentials from the
 * environment, and the token fetcher against a fake token endpoint on
 * loopback. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/notifier/delivery.h"
#include "shared/plumbing/http_server.h"

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

START_TEST(which_answers_are_retried) {
    /* no answer, 408, 429, 5xx and non-4xx: again; a 4xx: dead-lettered */
    long again[] = {0, 301, 408, 429, 500, 502, 503};
    for (size_t i = 0; i < sizeof again / sizeof *again; i++) {
        ck_assert_msg(delivery_retried(again[i], 0), "%ld", again[i]);
        ck_assert_msg(delivery_retried(again[i], 1), "%ld", again[i]);
    }
    long final[] = {400, 403, 404, 410, 422};
    for (size_t i = 0; i < sizeof final / sizeof *final; i++) {
        ck_assert_msg(!delivery_retried(final[i], 0), "%ld", final[i]);
        ck_assert_msg(!delivery_retried(final[i], 1), "%ld", final[i]);
    }
    /* 401: final without a token (a wrong signature stays wrong), retried
     * with a fresh token when one was sent */
    ck_assert(!delivery_retried(401, 0));
    ck_assert(delivery_retried(401, 1));
}
END_TEST

#define SECRET_A "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define SECRET_B "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

START_TEST(credentials_from_the_environment) {
    tenant_provider tp = {.id = "sp1"};
    webhook_credentials c;
    char err[256];
    /* nothing configured: nothing to send */
    ck_assert_int_eq(webhook_credentials_load(&tp, &c, err, sizeof err), 0);
    ck_assert_uint_eq(c.n_keys, 0);
    ck_assert_ptr_null(c.token_source);
    ck_assert_int_eq(webhook_credentials_load(NULL, &c, err, sizeof err), 0);

    tp.webhook_secret_envs[0] = "TEST_DELIVERY_SECRET_OLD";
    tp.webhook_secret_envs[1] = "TEST_DELIVERY_SECRET_NEW";
    unsetenv("TEST_DELIVERY_SECRET_OLD");
    setenv("TEST_DELIVERY_SECRET_NEW", SECRET_B, 1);
    ck_assert_int_eq(webhook_credentials_load(&tp, &c, err, sizeof err), -1);
    ck_assert_str_eq(err, "provider sp1: webhookSecrets names $TEST_DELIVERY_SECRET_OLD, which is "
                          "not set");
    setenv("TEST_DELIVERY_SECRET_OLD", "whsec_tooShort=", 1);
    ck_assert_int_eq(webhook_credentials_load(&tp, &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "provider sp1: $TEST_DELIVERY_SECRET_OLD: "));
    ck_assert_ptr_null(strstr(err, "tooShort")); /* the secret is never repeated */
    setenv("TEST_DELIVERY_SECRET_OLD", SECRET_A, 1);
    ck_assert_int_eq(webhook_credentials_load(&tp, &c, err, sizeof err), 0);
    ck_assert_uint_eq(c.n_keys, 2);
    ck_assert_uint_eq(c.keys[0].len, 32);
    ck_assert_int_eq(c.keys[0].bytes[31], 0x1f); /* the file's order: old first */
    ck_assert_int_eq(c.keys[1].bytes[0], 0x20);
    webhook_credentials_clear(&c);
    ck_assert_uint_eq(c.n_keys, 0);
    ck_assert_uint_eq(c.keys[0].len, 0);

    tp.webhook_auth = (tenant_webhook_auth){.token_url = "http://127.0.0.1:9/token",
                                            .client_id = "millom",
                                            .client_secret_env = "TEST_DELIVERY_CLIENT_SECRET"};
    unsetenv("TEST_DELIVERY_CLIENT_SECRET");
    ck_assert_int_eq(webhook_credentials_load(&tp, &c, err, sizeof err), -1);
    ck_assert_str_eq(err, "provider sp1: webhookAuth.clientSecretEnv names "
                          "$TEST_DELIVERY_CLIENT_SECRET, which is not set");
    ck_assert_uint_eq(c.n_keys, 0); /* wiped on the way out */
    setenv("TEST_DELIVERY_CLIENT_SECRET", "s3cret", 1);
    ck_assert_int_eq(webhook_credentials_load(&tp, &c, err, sizeof err), 0);
    ck_assert_ptr_nonnull(c.token_source);
    ck_assert_ptr_eq(c.token_source,
                     oauth_source_get("http://127.0.0.1:9/token", "millom", "s3cret", NULL));
    webhook_credentials_clear(&c);
}
END_TEST

/* ---- the token fetcher against a fake token endpoint ---- */

static struct {
    pthread_mutex_t mu;
    int requests, fail_status, delay_ms;
} token_server = {.mu = PTHREAD_MUTEX_INITIALIZER};
static atomic_int fetcher_wakes;

static void token_endpoint(void *app, http_request *req) {
    (void)app;
    pthread_mutex_lock(&token_server.mu);
    int n = ++token_server.requests, fail = token_server.fail_status, delay = token_server.delay_ms;
    pthread_mutex_unlock(&token_server.mu);
    if (delay) usleep((useconds_t)delay * 1000);
    if (fail) {
        http_respond_json(req, fail, json_pack("{s:s}", "error", "temporarily_unavailable"));
        return;
    }
    char tok[32];
    snprintf(tok, sizeof tok, "tok%d", n);
    http_respond_json(req, 200,
                      json_pack("{s:s, s:s, s:i}", "access_token", tok, "token_type", "Bearer",
                                "expires_in", 3600));
}

static int token_requests(void) {
    pthread_mutex_lock(&token_server.mu);
    int n = token_server.requests;
    pthread_mutex_unlock(&token_server.mu);
    return n;
}

static void count_fetcher_wake(void *arg) {
    (void)arg;
    atomic_fetch_add(&fetcher_wakes, 1);
}

/* Polls (bounded) until the ticket's fetch ended. */
static int wait_done(token_fetcher *f, token_fetch *t, unsigned long ticket, char *err,
                     size_t errlen) {
    int rc = 0;
    for (int i = 0; i < 500 && (rc = token_fetch_done(f, t, ticket, err, errlen)) == 0; i++)
        usleep(10 * 1000);
    return rc;
}

START_TEST(token_fetcher_shares_a_fetch_and_reports_failures) {
    char err[256] = "";
    http_server_opts opts = {
        .bind_addr = "127.0.0.1", .port = 0, .threads = 2, .handler = token_endpoint};
    http_server *server = http_server_start(&opts, err, sizeof err);
    ck_assert_msg(server != NULL, "%s", err);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/token", http_server_port(server));
    oauth_token_source *src = oauth_source_get(url, "millom", "s3cret", "notifications");
    ck_assert_ptr_nonnull(src);
    token_fetcher *f = token_fetcher_start(count_fetcher_wake, NULL, err, sizeof err);
    ck_assert_msg(f != NULL, "%s", err);
    token_fetch *t = token_fetcher_add(f, src);
    ck_assert_ptr_nonnull(t);

    /* two asks while one slow fetch is under way share it */
    pthread_mutex_lock(&token_server.mu);
    token_server.delay_ms = 200;
    pthread_mutex_unlock(&token_server.mu);
    unsigned long a = token_fetch_ask(f, t), b = token_fetch_ask(f, t);
    ck_assert_int_eq(token_fetch_done(f, t, a, err, sizeof err), 0);
    ck_assert_int_eq(wait_done(f, t, a, err, sizeof err), 1);
    ck_assert_int_eq(wait_done(f, t, b, err, sizeof err), 1);
    ck_assert_int_eq(token_requests(), 1);
    ck_assert_int_ge(atomic_load(&fetcher_wakes), 1);
    char header[WEBHOOK_AUTH_HEADER_MAX];
    ck_assert_int_eq(oauth_cached_authorization(src, header, sizeof header), 0);
    ck_assert_str_eq(header, "Authorization: Bearer tok1");

    /* a token endpoint that is down: the fetch fails, nothing is cached */
    oauth_invalidate(src, header);
    pthread_mutex_lock(&token_server.mu);
    token_server.delay_ms = 0;
    token_server.fail_status = 503;
    pthread_mutex_unlock(&token_server.mu);
    unsigned long c = token_fetch_ask(f, t);
    ck_assert_int_eq(wait_done(f, t, c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "token endpoint answered 503"));
    ck_assert_int_eq(oauth_cached_authorization(src, header, sizeof header), -1);
    /* back again: the next ask gets a token */
    pthread_mutex_lock(&token_server.mu);
    token_server.fail_status = 0;
    pthread_mutex_unlock(&token_server.mu);
    unsigned long d = token_fetch_ask(f, t);
    ck_assert_uint_gt(d, c);
    ck_assert_int_eq(wait_done(f, t, d, err, sizeof err), 1);
    ck_assert_int_eq(oauth_cached_authorization(src, header, sizeof header), 0);
    ck_assert_str_eq(header, "Authorization: Bearer tok3");
    ck_assert_int_eq(token_requests(), 3);
    token_fetcher_stop(f);
    http_server_stop(server);
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
    tcase_add_test(tc, which_answers_are_retried);
    tcase_add_test(tc, credentials_from_the_environment);
    tcase_add_test(tc, token_fetcher_shares_a_fetch_and_reports_failures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
