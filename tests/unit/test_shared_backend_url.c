/* The operator backend's URLs (shared/patterns/backend_client.c
 * backend_url) and the percent-encoding they are written with
 * (shared/plumbing/http_client.c http_escape_to): the same bytes as
 * curl_easy_escape, truncation as snprintf, and a URL that does not fit
 * refused rather than cut. Works with CK_FORK=no. */
#include <check.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "shared/contracts/config.h"
#include "shared/patterns/backend_client.h"
#include "shared/plumbing/http_client.h"

START_TEST(escaping_matches_curl) {
    /* Every byte but NUL, alone and within text. */
    for (int b = 1; b < 256; b++) {
        char in[4] = {'a', (char)b, 'z', 0};
        char *want = curl_easy_escape(NULL, in, 0);
        ck_assert_ptr_nonnull(want);
        char got[16];
        size_t n = http_escape_to(got, sizeof got, in);
        ck_assert_str_eq(got, want);
        ck_assert_uint_eq(n, strlen(want));
        char *copy = http_escape(in);
        ck_assert_str_eq(copy, want);
        free(copy);
        curl_free(want);
    }
    char *empty = http_escape("");
    ck_assert_str_eq(empty, "");
    free(empty);
    ck_assert_ptr_null(http_escape(NULL));
}
END_TEST

START_TEST(escaping_truncates_as_snprintf) {
    const char *in = "a b"; /* "a%20b": 5 */
    char out[8];
    memset(out, 'x', sizeof out);
    ck_assert_uint_eq(http_escape_to(out, 6, in), 5);
    ck_assert_str_eq(out, "a%20b");
    memset(out, 'x', sizeof out);
    ck_assert_uint_eq(http_escape_to(out, 5, in), 5); /* one short: cut, terminated */
    ck_assert_str_eq(out, "a%20");
    ck_assert_int_eq(out[5], 'x');
    memset(out, 'x', sizeof out);
    ck_assert_uint_eq(http_escape_to(out, 3, in), 5); /* cut inside an escape */
    ck_assert_str_eq(out, "a%");
    ck_assert_uint_eq(http_escape_to(NULL, 0, in), 5);
}
END_TEST

static const tenant_operator OP = {.id = "op1", .backend_url = "http://127.0.0.1:9090/api"};

START_TEST(url_path_and_query) {
    backend_request req = {
        .op = &OP,
        .resource = "offers",
        .customer_id = "92 300/1",
        .customer_id_type = "MSISDN",
        .channel_id = "app",
        .service_provider = "sp&co",
        .lang = "en",
        .trans_id = "t-1",
        .dealer_code = "", /* empty: left out */
        .offer_type = "DATA",
        .max_price = "10.5",
        .number_of_offers = NULL,
    };
    char url[BACKEND_URL_MAX];
    ck_assert_int_eq(backend_url(&req, url, sizeof url), 0);
    ck_assert_str_eq(url, "http://127.0.0.1:9090/api/offers/92%20300%2F1?customerIdType=MSISDN"
                          "&channelId=app&serviceProviderId=sp%26co&lang=en&transId=t-1"
                          "&offerType=DATA&maxPrice=10.5");

    backend_request bare = {.op = &OP, .resource = "balance", .customer_id = "923001234567"};
    ck_assert_int_eq(backend_url(&bare, url, sizeof url), 0);
    ck_assert_str_eq(url, "http://127.0.0.1:9090/api/balance/923001234567");
    bare.customer_id = NULL;
    ck_assert_int_eq(backend_url(&bare, url, sizeof url), -1);
}
END_TEST

START_TEST(url_that_does_not_fit_is_refused) {
    backend_request req = {.op = &OP, .resource = "balance", .customer_id = "9230", .lang = "e n"};
    const char *want = "http://127.0.0.1:9090/api/balance/9230?lang=e%20n";
    size_t len = strlen(want);
    char url[128];
    ck_assert_int_eq(backend_url(&req, url, len + 1), 0); /* exactly room */
    ck_assert_str_eq(url, want);
    for (size_t cap = 1; cap <= len; cap++) /* every shorter room: in the path, a name, a value */
        ck_assert_int_eq(backend_url(&req, url, cap), -1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_backend_url");
    TCase *tc = tcase_create("backend_url");
    tcase_add_test(tc, escaping_matches_curl);
    tcase_add_test(tc, escaping_truncates_as_snprintf);
    tcase_add_test(tc, url_path_and_query);
    tcase_add_test(tc, url_that_does_not_fit_is_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
