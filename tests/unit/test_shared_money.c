/* Unit tests of money amounts: parsing, formatting and JSON numbers (shared/contracts/money.c). Runs with and without CK_FORK. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/contracts/money.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *text;
    int scale;
    int rc;
    int64_t minor;
} parse_cases[] = {
    {"160.5", 2, 0, 16050},
    {"160.50", 2, 0, 16050},
    {"160", 2, 0, 16000},
    {"0", 2, 0, 0},
    {"0.01", 2, 0, 1},
    {"-0.01", 2, 0, -1},
    {"-160.5", 2, 0, -16050},
    {"-0", 2, 0, 0},
    {"007.10", 2, 0, 710},
    {"42", 0, 0, 42},
    {"-42", 0, 0, -42},
    {"1.234", 3, 0, 1234},
    {"1.2", 3, 0, 1200},
    {"92233720368547758.07", 2, 0, INT64_MAX},
    {"-92233720368547758.07", 2, 0, -INT64_MAX},
    {"9223372036854775807", 0, 0, INT64_MAX},
    /* rejects */
    {"92233720368547758.08", 2, -1, 0},
    {"9223372036854775808", 0, -1, 0},
    {"92233720368547758080", 0, -1, 0},
    {"92233720368547759", 2, -1, 0}, /* overflows while padding */
    {"160.505", 2, -1, 0},
    {"1.0", 0, -1, 0},
    {"", 2, -1, 0},
    {".", 2, -1, 0},
    {".5", 2, -1, 0},
    {"1.", 2, -1, 0},
    {"-", 2, -1, 0},
    {"-.5", 2, -1, 0},
    {"--1", 2, -1, 0},
    {"+1", 2, -1, 0},
    {" 1", 2, -1, 0},
    {"1 ", 2, -1, 0},
    {"1e3", 2, -1, 0},
    {"abc", 2, -1, 0},
    {"1.2.3", 2, -1, 0},
    {"1,50", 2, -1, 0},
    {"0x10", 2, -1, 0},
    {"1", -1, -1, 0},
    {"1", 19, -1, 0},
};

START_TEST(test_money_parse) {
    const char *text = parse_cases[_i].text;
    int64_t minor = 777;
    int rc = money_parse(text, parse_cases[_i].scale, &minor);
    ck_assert_msg(rc == parse_cases[_i].rc, "money_parse(\"%s\", %d) = %d", text,
                  parse_cases[_i].scale, rc);
    if (rc == 0)
        ck_assert_msg(minor == parse_cases[_i].minor, "money_parse(\"%s\") -> %lld", text,
                      (long long)minor);
    else
        ck_assert_msg(minor == 777, "output written on failure for \"%s\"", text);
}
END_TEST

START_TEST(test_money_parse_null) {
    int64_t minor;
    ck_assert_int_eq(money_parse(NULL, 2, &minor), -1);
    ck_assert_int_eq(money_parse("1", 2, NULL), -1);
}
END_TEST

static const struct {
    int64_t minor;
    int scale;
    const char *text;
} format_cases[] = {
    {16050, 2, "160.50"},
    {16000, 2, "160.00"},
    {1, 2, "0.01"},
    {-1, 2, "-0.01"},
    {-16050, 2, "-160.50"},
    {0, 2, "0.00"},
    {0, 0, "0"},
    {42, 0, "42"},
    {-42, 0, "-42"},
    {5, 3, "0.005"},
    {1234, 3, "1.234"},
    {INT64_MAX, 2, "92233720368547758.07"},
    {INT64_MIN, 2, "-92233720368547758.08"},
    {INT64_MIN, 0, "-9223372036854775808"},
    {1, 18, "0.000000000000000001"},
};

START_TEST(test_money_format) {
    char buf[64];
    int n = money_format(format_cases[_i].minor, format_cases[_i].scale, buf, sizeof buf);
    ck_assert_str_eq(buf, format_cases[_i].text);
    ck_assert_int_eq(n, (int)strlen(format_cases[_i].text));

    /* Round trip (INT64_MIN has no positive twin and does not parse back). */
    if (format_cases[_i].minor != INT64_MIN) {
        int64_t back = 0;
        ck_assert_int_eq(money_parse(buf, format_cases[_i].scale, &back), 0);
        ck_assert(back == format_cases[_i].minor);
    }
}
END_TEST

START_TEST(test_money_format_buffer) {
    char buf[7];
    ck_assert_int_eq(money_format(16050, 2, buf, 7), 6); /* "160.50" + NUL fits exactly */
    ck_assert_str_eq(buf, "160.50");
    ck_assert_int_eq(money_format(16050, 2, buf, 6), -1);
    ck_assert_int_eq(money_format(-16050, 2, buf, 7), -1);
    ck_assert_int_eq(money_format(1, 2, buf, 0), -1);
    ck_assert_int_eq(money_format(1, 2, NULL, 10), -1);
    ck_assert_int_eq(money_format(1, -1, buf, sizeof buf), -1);
}
END_TEST

START_TEST(test_money_round_trip_range) {
    char buf[64];
    for (int scale = 0; scale <= 4; scale++) {
        for (int64_t v = -2500; v <= 2500; v += 7) {
            int64_t back = 0;
            ck_assert_int_gt(money_format(v, scale, buf, sizeof buf), 0);
            ck_assert_int_eq(money_parse(buf, scale, &back), 0);
            ck_assert(back == v);
        }
    }
}
END_TEST

/* Reals are interpreted as the decimal the backend wrote (15 significant
 * digits), then rounded half away from zero; see money.c. */
static const struct {
    double value;
    int scale;
    int rc;
    int64_t minor;
} real_cases[] = {
    {160.1, 2, 0, 16010},
    {160.0, 2, 0, 16000},
    {15.5, 2, 0, 1550},
    {15.5, 0, 0, 16},
    {14.5, 0, 0, 15}, /* printf would say 14 (half to even) */
    {-14.5, 0, 0, -15},
    {0.125, 2, 0, 13}, /* exact binary tie, away from zero */
    {-0.125, 2, 0, -13},
    {0.1 + 0.2, 2, 0, 30},
    {0.3, 2, 0, 30},
    {1e9, 2, 0, 100000000000LL},
    {-3.005, 2, 0, -301}, /* the backend wrote -3.005; the double is -3.00499999... */
    {3.005, 2, 0, 301},
    {1.005, 2, 0, 101},
    {2.675, 2, 0, 268},
    {0.004, 2, 0, 0},
    {0.005, 2, 0, 1},
    {-0.005, 2, 0, -1},
    {-0.004, 2, 0, 0},
    {0.0, 2, 0, 0},
    {-0.0, 2, 0, 0},
    {1e-300, 2, 0, 0},
    {0.1, 0, 0, 0},
    {0.5, 0, 0, 1},
    {123.456, 3, 0, 123456},
    {9e15, 0, 0, 9000000000000000LL},
    {-9e15, 0, 0, -9000000000000000LL},
    {9e15, 2, 0, 900000000000000000LL},
    {9e15, 4, -1, 0}, /* does not fit int64 minor units */
    {9.000000000000002e15, 0, -1, 0},
    {1e16, 2, -1, 0},
    {-1e300, 2, -1, 0},
};

START_TEST(test_money_from_json_real) {
    json_t *v = json_real(real_cases[_i].value);
    ck_assert_ptr_nonnull(v);
    int64_t minor = 777;
    int rc = money_from_json(v, real_cases[_i].scale, &minor);
    json_decref(v);
    ck_assert_msg(rc == real_cases[_i].rc, "money_from_json(%.17g, %d) = %d", real_cases[_i].value,
                  real_cases[_i].scale, rc);
    if (rc == 0)
        ck_assert_msg(minor == real_cases[_i].minor, "money_from_json(%.17g, %d) -> %lld",
                      real_cases[_i].value, real_cases[_i].scale, (long long)minor);
}
END_TEST

START_TEST(test_money_from_json_parsed_text) {
    /* The same through jansson's own parser, as a backend body arrives. */
    static const struct {
        const char *json;
        int64_t minor;
    } cases[] = {
        {"[160.1]", 16010},
        {"[15.5]", 1550},
        {"[-3.005]", -301},
        {"[1e9]", 100000000000LL},
        {"[160]", 16000},
        {"[-7]", -700},
        {"[0.30000000000000004]", 30},
        {"[1.23e2]", 12300},
        {"[99.999]", 10000},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        json_t *doc = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(doc);
        int64_t minor = 0;
        ck_assert_int_eq(money_from_json(json_array_get(doc, 0), 2, &minor), 0);
        ck_assert_msg(minor == cases[i].minor, "%s -> %lld", cases[i].json, (long long)minor);
        json_decref(doc);
    }
}
END_TEST

START_TEST(test_money_from_json_non_finite) {
    /* jansson refuses to build NaN/inf reals, so hand them over the only way
     * a caller could: json_real() returns NULL, which is rejected. */
    int64_t minor = 777;
    ck_assert_int_eq(money_from_json(json_real(NAN), 2, &minor), -1);
    ck_assert_int_eq(money_from_json(json_real(INFINITY), 2, &minor), -1);
    ck_assert_int_eq(money_from_json(json_real(-INFINITY), 2, &minor), -1);
    /* And a real that json_real_set tried to turn into NaN keeps its value. */
    json_t *r = json_real(1.5);
    json_real_set(r, NAN);
    ck_assert_int_eq(money_from_json(r, 2, &minor), 0);
    ck_assert(minor == 150);
    json_decref(r);
}
END_TEST

START_TEST(test_money_from_json_integer) {
    static const struct {
        json_int_t value;
        int scale;
        int rc;
        int64_t minor;
    } cases[] = {
        {160, 2, 0, 16000},
        {-160, 2, 0, -16000},
        {0, 2, 0, 0},
        {42, 0, 0, 42},
        {INT64_MAX, 0, 0, INT64_MAX},
        {INT64_MAX / 100, 2, 0, INT64_MAX / 100 * 100},
        {INT64_MAX / 100 + 1, 2, -1, 0},
        {-(INT64_MAX / 100) - 1, 2, -1, 0},
        {INT64_MIN, 0, -1, 0},
        {1, 18, 0, 1000000000000000000LL},
        {10, 18, -1, 0},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        json_t *v = json_integer(cases[i].value);
        int64_t minor = 0;
        int rc = money_from_json(v, cases[i].scale, &minor);
        json_decref(v);
        ck_assert_msg(rc == cases[i].rc, "case %zu: rc %d", i, rc);
        if (rc == 0) ck_assert_msg(minor == cases[i].minor, "case %zu: %lld", i, (long long)minor);
    }
}
END_TEST

START_TEST(test_money_from_json_not_number) {
    int64_t minor = 0;
    json_t *vals[] = {json_string("160.50"), json_true(), json_null(), json_object(), json_array()};
    for (size_t i = 0; i < N_ELEMS(vals); i++) {
        ck_assert_int_eq(money_from_json(vals[i], 2, &minor), -1);
        json_decref(vals[i]);
    }
    ck_assert_int_eq(money_from_json(NULL, 2, &minor), -1);
    json_t *v = json_integer(1);
    ck_assert_int_eq(money_from_json(v, 2, NULL), -1);
    ck_assert_int_eq(money_from_json(v, -1, &minor), -1);
    ck_assert_int_eq(money_from_json(v, 19, &minor), -1);
    json_decref(v);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_money");
    TCase *tc = tcase_create("money");
    tcase_add_loop_test(tc, test_money_parse, 0, N_ELEMS(parse_cases));
    tcase_add_test(tc, test_money_parse_null);
    tcase_add_loop_test(tc, test_money_format, 0, N_ELEMS(format_cases));
    tcase_add_test(tc, test_money_format_buffer);
    tcase_add_test(tc, test_money_round_trip_range);
    tcase_add_loop_test(tc, test_money_from_json_real, 0, N_ELEMS(real_cases));
    tcase_add_test(tc, test_money_from_json_parsed_text);
    tcase_add_test(tc, test_money_from_json_non_finite);
    tcase_add_test(tc, test_money_from_json_integer);
    tcase_add_test(tc, test_money_from_json_not_number);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
