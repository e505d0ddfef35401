/* The Top-up API's request validation and top-up ids
 * (services/api-edge/request_topup.h), without I/O. */
#include "services/api-edge/request_topup.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static const char GOOD[] =
    "{\"requestor\": {\"userNumber\": {\"msisdn\": \"+924542610000\"}, \"name\": \"John Doe\"},"
    " \"donor\": {\"userNumber\": {\"msisdn\": \"+6582736491\"}, \"name\": \"Jane Doe\"},"
    " \"partnerReference\": \"order-4711\"}";

/* Parses body with the header reference; the message on failure. */
static int parse(const char *body, const char *header, topup_request *r, char *msg) {
    return topup_request_parse(body, strlen(body), header, r, msg, 256);
}

START_TEST(a_good_request) {
    topup_request r;
    char msg[256];
    ck_assert_int_eq(parse(GOOD, NULL, &r, msg), 0);
    ck_assert_str_eq(r.reference, "order-4711");
    ck_assert_str_eq(r.requestor, "924542610000");
    ck_assert_str_eq(r.requestor_name, "John Doe");
    ck_assert_str_eq(r.donor, "6582736491");
    ck_assert_str_eq(r.donor_name, "Jane Doe");
    /* the same reference in the header too */
    ck_assert_int_eq(parse(GOOD, "order-4711", &r, msg), 0);
    /* only in the header */
    const char *no_ref =
        "{\"requestor\": {\"userNumber\": {\"msisdn\": \"00924542610000\"}, \"name\": \"Ä\"},"
        " \"donor\": {\"userNumber\": {\"msisdn\": \"6582736491\"}, \"name\": \"J\"}}";
    ck_assert_int_eq(parse(no_ref, "ref:1", &r, msg), 0);
    ck_assert_str_eq(r.reference, "ref:1");
    ck_assert_str_eq(r.requestor, "924542610000");
}
END_TEST

/* body is refused with a message containing field. */
static void refused(const char *body, const char *header, const char *field) {
    topup_request r;
    char msg[256] = "";
    ck_assert_msg(parse(body, header, &r, msg) == -1, "accepted: %s", body);
    ck_assert_msg(strstr(msg, field) != NULL, "'%s' does not name %s", msg, field);
}

START_TEST(bad_requests_name_the_field) {
    char body[1024];
    refused("", NULL, "JSON object");
    refused("[]", NULL, "JSON object");
    refused(GOOD, "other", "differ");
    snprintf(body, sizeof body, "%s", GOOD);
    memcpy(strstr(body, "order-4711"), "order 4711", 10);
    refused(body, NULL, "partner reference");
    refused("{\"requestor\": {}, \"partnerReference\": 5}", NULL, "partnerReference");
    refused("{\"donor\": {}, \"partnerReference\": \"r\"}", NULL, "requestor");
    refused("{\"requestor\": {\"userNumber\": {\"msisdn\": \"+924542610000\"}, \"name\": \"J\"},"
            " \"partnerReference\": \"r\"}",
            NULL, "donor");
    const char *numbers[] = {"+0924542610000", "+92454", "+9245426100001234", "92-4542",
                             "+92 454 261"};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"requestor\": {\"userNumber\": {\"msisdn\": \"%s\"}, \"name\": \"J\"},"
                 " \"donor\": {\"userNumber\": {\"msisdn\": \"+6582736491\"}, \"name\": \"J\"},"
                 " \"partnerReference\": \"r\"}",
                 numbers[i]);
        refused(body, NULL, "requestor.userNumber.msisdn");
    }
    const char *names[] = {"", "   ", "a\\tb", "a\\u001bb", "x\\u007f"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(
            body, sizeof body,
            "{\"requestor\": {\"userNumber\": {\"msisdn\": \"+924542610000\"}, \"name\": \"J\"},"
            " \"donor\": {\"userNumber\": {\"msisdn\": \"+6582736491\"}, \"name\": \"%s\"},"
            " \"partnerReference\": \"r\"}",
            names[i]);
        refused(body, NULL, "donor.name");
    }
    char long_name[TOPUP_NAME_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    snprintf(body, sizeof body,
             "{\"requestor\": {\"userNumber\": {\"msisdn\": \"+924542610000\"}, \"name\": \"%s\"},"
             " \"donor\": {\"userNumber\": {\"msisdn\": \"+6582736491\"}, \"name\": \"J\"},"
             " \"partnerReference\": \"r\"}",
             long_name);
    refused(body, NULL, "requestor.name");
    refused("{\"requestor\": {\"userNumber\": {\"msisdn\": \"+924542610000\"}, \"name\": \"J\"},"
            " \"donor\": {\"userNumber\": {\"msisdn\": \"924542610000\"}, \"name\": \"K\"},"
            " \"partnerReference\": \"r\"}",
            NULL, "differ");
}
END_TEST

START_TEST(ids_are_stable_per_provider_and_reference) {
    char a[TOPUP_ID_LEN + 1], b[TOPUP_ID_LEN + 1], c[TOPUP_ID_LEN + 1], d[TOPUP_ID_LEN + 1];
    topup_id_for("sp", "ref-1", a);
    topup_id_for("sp", "ref-1", b);
    topup_id_for("sp", "ref-2", c);
    topup_id_for("sp2", "ref-1", d);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_str_ne(a, d);
    ck_assert_int_eq((int)strlen(a), TOPUP_ID_LEN);
    ck_assert(topup_id_valid(a) && topup_id_valid(c) && topup_id_valid(d));
    /* the fields are length-prefixed: moving a character between them changes the id */
    char e[TOPUP_ID_LEN + 1], f[TOPUP_ID_LEN + 1];
    topup_id_for("ab", "c", e);
    topup_id_for("a", "bc", f);
    ck_assert_str_ne(e, f);
    ck_assert(!topup_id_valid("tu-0"));
    ck_assert(!topup_id_valid("tx-00000000000000000000000000000000"));
    ck_assert(!topup_id_valid("tu-0000000000000000000000000000000G"));
    ck_assert(!topup_id_valid("tu-0000000000000000000000000000000A"));
    ck_assert(topup_id_valid("tu-0000000000000000000000000000000a"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("api-edge topup");
    TCase *tc = tcase_create("topup");
    tcase_add_test(tc, a_good_request);
    tcase_add_test(tc, bad_requests_name_the_field);
    tcase_add_test(tc, ids_are_stable_per_provider_and_reference);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
