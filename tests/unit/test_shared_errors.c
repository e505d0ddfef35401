/* Unit tests of the ErrorDocument table: causes, statuses and bodies (shared/plumbing/errors.c). Runs with and without CK_FORK. */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/errors.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *cause;
    int status;
    int retry_after;
} status_cases[] = {
    {CAUSE_UNSPECIFIED, 500, 0},
    {CAUSE_INVALID_NUMBER, 404, 0},
    {CAUSE_BAD_REQUEST, 400, 0},
    {CAUSE_USER_ROAMING, 403, 0},
    {CAUSE_USER_OPT_OUT, 403, 0},
    {CAUSE_TOO_MANY_REQUESTS, 429, 1},
    {CAUSE_SERVICE_UNAVAILABLE, 503, 1},
    {CAUSE_PURCHASE_CONFLICT, 409, 0},
    {CAUSE_INSUFFICIENT_FUNDS, 402, 0},
    {CAUSE_NOT_ALLOWED, 403, 0},
    {CAUSE_BAD_CPID, 410, 0},
    {CAUSE_UNAUTHORIZED, 401, 0},
    {CAUSE_PAYLOAD_TOO_LARGE, 413, 0},
    {CAUSE_NOT_FOUND, 404, 0},
    {CAUSE_METHOD_NOT_ALLOWED, 405, 0},
    {"SOMETHING_ELSE", 500, 0},
    {"", 500, 0},
    {"bad_request", 500, 0},
    {NULL, 500, 0},
};

START_TEST(test_error_status) {
    ck_assert_int_eq(error_status(status_cases[_i].cause), status_cases[_i].status);
    ck_assert_int_eq(error_retry_after(status_cases[_i].cause), status_cases[_i].retry_after);
}
END_TEST

START_TEST(test_error_document) {
    json_t *doc = error_document(CAUSE_BAD_REQUEST, "msisdn is malformed");
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "errorMessage")),
                     "msisdn is malformed");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "cause")), "BAD_REQUEST");
    ck_assert_int_eq(json_object_size(doc), 2);
    json_decref(doc);

    doc = error_document(CAUSE_NOT_FOUND, NULL);
    ck_assert_ptr_null(json_object_get(doc, "errorMessage"));
    ck_assert_str_eq(json_string_value(json_object_get(doc, "cause")), "NOT_FOUND");
    ck_assert_int_eq(json_object_size(doc), 1);
    json_decref(doc);

    char *text = error_document_text(CAUSE_BAD_REQUEST, "msisdn is malformed");
    ck_assert_str_eq(text, "{\"errorMessage\":\"msisdn is malformed\",\"cause\":\"BAD_REQUEST\"}");
    free(text);
    text = error_document_text(CAUSE_PURCHASE_CONFLICT, NULL);
    ck_assert_str_eq(text, "{\"cause\":\"PURCHASE_CONFLICT\"}");
    free(text);
    text = error_document_text(NULL, "x");
    ck_assert_str_eq(text, "{\"errorMessage\":\"x\",\"cause\":\"ERROR_CAUSE_UNSPECIFIED\"}");
    free(text);

    /* Quotes and control characters are escaped by jansson. */
    text = error_document_text(CAUSE_BAD_REQUEST, "field \"a\"\n\\");
    ck_assert_str_eq(text,
                     "{\"errorMessage\":\"field \\\"a\\\"\\n\\\\\",\"cause\":\"BAD_REQUEST\"}");
    free(text);

    /* Invalid UTF-8 from a hostile request still yields a document. */
    text = error_document_text(CAUSE_BAD_REQUEST, "bad \xff\xfe byte");
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, "{\"errorMessage\":\"bad ?? byte\",\"cause\":\"BAD_REQUEST\"}");
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_errors");
    TCase *tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_error_status, 0, N_ELEMS(status_cases));
    tcase_add_test(tc, test_error_document);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
