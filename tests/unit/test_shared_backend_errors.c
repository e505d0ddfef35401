/* The operator backend's errorTypes seen from Millom (shared/contracts/backend_errors.c):
 * the cause each one becomes, the status-only fallbacks, the list of known
 * types, and masking of digit runs in operator texts. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/contracts/backend_errors.h"
#include "shared/plumbing/errors.h"

static const struct {
    const char *error_type;
    long status;
    const char *cause;
} cases[] = {
    {"UNKNOWN_SUBSCRIBER_ID", 404, CAUSE_INVALID_NUMBER},
    {"unknown_subscriber_id", 404, CAUSE_INVALID_NUMBER}, /* case is ignored */
    {"FORBIDDEN", 403, CAUSE_USER_ROAMING},
    {"USER_BARRED", 403, CAUSE_NOT_ALLOWED},
    {"INSUFFICIENT_FUNDS", 402, CAUSE_INSUFFICIENT_FUNDS},
    {"PURCHASE_IN_PROGRESS", 409, CAUSE_PURCHASE_CONFLICT},
    {"CONGESTED", 200, CAUSE_SERVICE_UNAVAILABLE},
    {"INVALID_TRANSID", 400, CAUSE_BAD_REQUEST},
    {NULL, 0, CAUSE_SERVICE_UNAVAILABLE}, /* no answer */
    {NULL, 503, CAUSE_SERVICE_UNAVAILABLE},
    {NULL, 408, CAUSE_SERVICE_UNAVAILABLE},
    {NULL, 429, CAUSE_SERVICE_UNAVAILABLE}, /* the operator is overloaded, not the SP */
    {NULL, 404, CAUSE_INVALID_NUMBER},
    {"SOMETHING_NEW", 404, CAUSE_UNSPECIFIED},
    {NULL, 418, CAUSE_UNSPECIFIED},
};

START_TEST(causes) {
    const char *message = NULL;
    const char *cause = backend_error_cause(cases[_i].error_type, cases[_i].status, &message);
    ck_assert_msg(strcmp(cause, cases[_i].cause) == 0, "%s/%ld: %s, expected %s",
                  cases[_i].error_type ? cases[_i].error_type : "-", cases[_i].status, cause,
                  cases[_i].cause);
    ck_assert_ptr_nonnull(message);
    ck_assert_uint_gt(strlen(message), 0);
    ck_assert_str_eq(backend_error_cause(cases[_i].error_type, cases[_i].status, NULL), cause);
}
END_TEST

START_TEST(known_types) {
    const char *const spec[] = {"TIMEOUT",
                                "PARSING_ERROR",
                                "INTERNAL_ERROR",
                                "UNKNOWN_SUBSCRIBER_ID",
                                "INVALID_PRODUCT",
                                "USER_BARRED",
                                "CONGESTED",
                                "PURCHASE_IN_PROGRESS",
                                "PURCHASE_ALREADY_EXECUTED",
                                "NOT_IMPLEMENTED",
                                "INSUFFICIENT_FUNDS",
                                "BAD_REQUEST",
                                "CONFLICT",
                                "FORBIDDEN",
                                "INVALID_TRANSID"};
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
        ck_assert_msg(backend_error_type_known(spec[i]), "%s", spec[i]);
        /* Every known type has its own cause, never the fallback. */
        ck_assert_str_ne(backend_error_cause(spec[i], 418, NULL), CAUSE_UNSPECIFIED);
    }
    ck_assert_int_eq(backend_error_type_known("timeout"), 1);
    ck_assert_int_eq(backend_error_type_known(NULL), 0);
    ck_assert_int_eq(backend_error_type_known(""), 0);
    ck_assert_int_eq(backend_error_type_known("TIMEOUTS"), 0);
}
END_TEST

START_TEST(masking) {
    char out[64];
    backend_mask_digits("number 924542610003 unknown", out, sizeof out);
    ck_assert_str_eq(out, "number 9245****0003 unknown");
    backend_mask_digits("code 1234567 and 123456", out, sizeof out);
    ck_assert_str_eq(out, "code 12***67 and 123456");
    backend_mask_digits("tab\there\nnewline", out, sizeof out);
    ck_assert_str_eq(out, "tab here newline");
    backend_mask_digits(NULL, out, sizeof out);
    ck_assert_str_eq(out, "");
    /* A cut never splits a UTF-8 character ("é" is two bytes). */
    backend_mask_digits("abcé", out, 5);
    ck_assert_str_eq(out, "abc");
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_backend_errors");
    TCase *tc = tcase_create("backend_errors");
    tcase_add_loop_test(tc, causes, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, known_types);
    tcase_add_test(tc, masking);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
