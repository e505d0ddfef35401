/* Unit tests of MSISDN normalisation (shared/contracts/msisdn.c). Runs with and without CK_FORK. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/contracts/msisdn.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *in;
    const char *out; /* NULL: rejected */
} msisdn_cases[] = {
    {"+924542610003", "924542610003"},
    {"00924542610003", "924542610003"},
    {"924542610003", "924542610003"},
    {"12345678", "12345678"}, /* 8 digits */
    {"+12345678", "12345678"},
    {"123456789012345", "123456789012345"}, /* 15 digits */
    {"00123456789012345", "123456789012345"},
    {"1234567", NULL}, /* 7 digits */
    {"+1234567", NULL},
    {"001234567", NULL},
    {"1234567890123456", NULL}, /* 16 digits */
    {"+1234567890123456", NULL},
    {"0924542610003", NULL},   /* leading 0 (national format) */
    {"000924542610003", NULL}, /* leading 0 after "00" */
    {"+0924542610003", NULL},
    {"+00924542610003", NULL},
    {"", NULL},
    {"+", NULL},
    {"00", NULL},
    {"++924542610003", NULL},
    {"92454261000a", NULL},
    {"abcdefghij", NULL},
    {"92 4542610003", NULL},
    {" 924542610003", NULL},
    {"924542610003 ", NULL},
    {"924-542-610003", NULL},
    {"+92(454)2610003", NULL},
    {"924542610003\n", NULL},
    {"0x924542610003", NULL},
};

START_TEST(test_msisdn) {
    char out[32];
    strcpy(out, "untouched");
    bool ok = msisdn_normalize(msisdn_cases[_i].in, out, sizeof out);
    if (msisdn_cases[_i].out != NULL) {
        ck_assert_msg(ok, "rejected \"%s\"", msisdn_cases[_i].in);
        ck_assert_str_eq(out, msisdn_cases[_i].out);
    } else {
        ck_assert_msg(!ok, "accepted \"%s\" as %s", msisdn_cases[_i].in, out);
        ck_assert_str_eq(out, "untouched");
    }
}
END_TEST

START_TEST(test_msisdn_edges) {
    char out[16];
    ck_assert(!msisdn_normalize(NULL, out, sizeof out));
    ck_assert(!msisdn_normalize("924542610003", NULL, 16));
    ck_assert(msisdn_normalize("924542610003", out, 13)); /* 12 digits + NUL */
    ck_assert_str_eq(out, "924542610003");
    ck_assert(!msisdn_normalize("924542610003", out, 12));
    ck_assert(!msisdn_normalize("924542610003", out, 0));
    ck_assert(msisdn_normalize("123456789012345", out, 16));
    ck_assert_str_eq(out, "123456789012345");
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_msisdn");
    TCase *tc = tcase_create("msisdn");
    tcase_add_loop_test(tc, test_msisdn, 0, N_ELEMS(msisdn_cases));
    tcase_add_test(tc, test_msisdn_edges);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
