/* settlement-reporter's pure logic: the revenue split (always sums to the
 * gross, floors for operator and provider, remainder to Millom), shares
 * from the tenants file, UTC days, conversion rates as decimal strings,
 * RFC 4180 CSV fields and the record built from a PurchaseEvent. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "services/settlement-reporter/csv.h"
#include "services/settlement-reporter/settlement.h"
#include "shared/contracts/subscriber_hash.h"

static const revenue_shares sandbox = {70, 20, 10};

START_TEST(split_sums_to_gross_for_awkward_amounts) {
    const revenue_shares odd[] = {{70, 20, 10}, {33, 33, 34}, {1, 1, 98}, {0, 0, 100},
                                  {100, 0, 0},  {49, 49, 2},  {67, 29, 4}};
    const int64_t amounts[] = {
        0, 1, 2, 3, 7, 9, 10, 11, 99, 101, 333, 1001, 16050, 99999, INT64_MAX / 2, INT64_MAX};
    for (size_t s = 0; s < sizeof odd / sizeof odd[0]; s++) {
        for (size_t a = 0; a < sizeof amounts / sizeof amounts[0]; a++) {
            share_split x;
            shares_split(amounts[a], &odd[s], &x);
            ck_assert_int_ge(x.operator_minor, 0);
            ck_assert_int_ge(x.provider_minor, 0);
            ck_assert_int_ge(x.millom_minor, 0);
            ck_assert_msg(x.operator_minor + x.provider_minor + x.millom_minor == amounts[a],
                          "shares of %lld do not sum", (long long)amounts[a]);
            /* Millom gets its exact part plus less than 2 minor units. */
            __int128 exact = (__int128)amounts[a] * odd[s].millom_pct;
            ck_assert((__int128)x.millom_minor * 100 >= exact);
            ck_assert((__int128)x.millom_minor * 100 < exact + 200);
        }
    }
}
END_TEST

START_TEST(split_rule_examples) {
    share_split x;
    shares_split(1, &sandbox, &x); /* 0.01: 0.007 / 0.002 / 0.001 */
    ck_assert_int_eq(x.operator_minor, 0);
    ck_assert_int_eq(x.provider_minor, 0);
    ck_assert_int_eq(x.millom_minor, 1);
    shares_split(15938, &sandbox, &x);         /* 159.38 */
    ck_assert_int_eq(x.operator_minor, 11156); /* floor(111.566) */
    ck_assert_int_eq(x.provider_minor, 3187);  /* floor(31.876) */
    ck_assert_int_eq(x.millom_minor, 1595);
    shares_split(6000, &sandbox, &x);
    ck_assert_int_eq(x.operator_minor, 4200);
    ck_assert_int_eq(x.provider_minor, 1200);
    ck_assert_int_eq(x.millom_minor, 600);
}
END_TEST

START_TEST(shares_from_tenants_file) {
    char err[256];
    tenants *t = tenants_load("config/tenants.sandbox.json", err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    revenue_shares s;
    ck_assert_int_eq(shares_from_tenant(tenants_operator(t, "tp"), &s, err, sizeof err), 0);
    ck_assert_int_eq(s.operator_pct, 70);
    ck_assert_int_eq(s.provider_pct, 20);
    ck_assert_int_eq(s.millom_pct, 10);
    tenants_free(t);
    /* Wrong sums and non-integers are refused. */
    tenant_operator op = {.id = "x"};
    op.json =
        json_loads("{\"revenueShares\":{\"operator\":70,\"provider\":20,\"millom\":20}}", 0, NULL);
    ck_assert_int_eq(shares_from_tenant(&op, &s, err, sizeof err), -1);
    json_decref(op.json);
    op.json = json_loads("{\"revenueShares\":{\"operator\":70.5,\"provider\":20,\"millom\":9.5}}",
                         0, NULL);
    ck_assert_int_eq(shares_from_tenant(&op, &s, err, sizeof err), -1);
    json_decref(op.json);
    op.json = json_loads("{}", 0, NULL);
    ck_assert_int_eq(shares_from_tenant(&op, &s, err, sizeof err), -1);
    json_decref(op.json);
}
END_TEST

START_TEST(utc_days) {
    char d[11];
    utc_day(0, d);
    ck_assert_str_eq(d, "1970-01-01");
    utc_day(1795910399999LL, d); /* 2026-11-28T23:59:59.999Z */
    ck_assert_str_eq(d, "2026-11-28");
    utc_day(1795910400000LL, d);
    ck_assert_str_eq(d, "2026-11-29");
    ck_assert_int_eq(utc_day_start("2026-11-29"), 1795910400000LL);
    ck_assert_int_eq(utc_day_start("2026-11"), -1);
}
END_TEST

START_TEST(conversion_rates) {
    char r[32];
    conversion_rate(1, 4, r);
    ck_assert_str_eq(r, "0.2500");
    conversion_rate(1, 3, r);
    ck_assert_str_eq(r, "0.3333");
    conversion_rate(2, 3, r);
    ck_assert_str_eq(r, "0.6667");
    conversion_rate(1, 20000, r); /* 0.00005 rounds half up */
    ck_assert_str_eq(r, "0.0001");
    conversion_rate(0, 5, r);
    ck_assert_str_eq(r, "0.0000");
    conversion_rate(3, 2, r);
    ck_assert_str_eq(r, "1.5000");
    conversion_rate(3, 0, r);
    ck_assert_str_eq(r, "");
}
END_TEST

START_TEST(csv_quoting) {
    csv_buf b = {0};
    csv_field(&b, "plain", 1);
    csv_field(&b, "a,b", 0);
    csv_field(&b, "say \"hi\"", 0);
    csv_field(&b, "two\nlines", 0);
    csv_field(&b, "", 0);
    csv_field_int(&b, -42, 0);
    csv_end_row(&b);
    char *text = csv_take(&b);
    ck_assert_str_eq(text, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,-42\r\n");
    free(text);
}
END_TEST

START_TEST(record_from_event) {
    char err[256];
    tenants *t = tenants_load("config/tenants.sandbox.json", err, sizeof err);
    ck_assert_ptr_nonnull(t);
    Millom__V1__PurchaseEvent ev = MILLOM__V1__PURCHASE_EVENT__INIT;
    ev.transid = "t-1";
    ev.operator_ = "tp";
    ev.service_provider = "testserviceprovider";
    ev.msisdn = "924542610003";
    ev.plan_id = "tp-social-daily";
    ev.price_minor = 6001;
    ev.currency = "PKR";
    ev.state = MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED;
    ev.occurred_at_ms = 1795910399999LL;
    settled_record r;
    ck_assert_int_eq(settlement_record_from_event(t, &ev, 42, &r, err, sizeof err), 0);
    ck_assert_str_eq(r.day, "2026-11-28");
    ck_assert_int_eq(r.currency_scale, 2);
    ck_assert_int_eq(r.split.operator_minor + r.split.provider_minor + r.split.millom_minor, 6001);
    ck_assert_int_eq(strlen(r.subscriber_hash), 64);
    ck_assert(strstr(r.subscriber_hash, "924542610003") == NULL);
    char again[65];
    subscriber_hash("924542610003", again);
    ck_assert_str_eq(again, r.subscriber_hash);
    /* Unknown operator, negative price, missing transid: refused. */
    ev.operator_ = "zz";
    ck_assert_int_eq(settlement_record_from_event(t, &ev, 42, &r, err, sizeof err), -1);
    ev.operator_ = "tp";
    ev.price_minor = -1;
    ck_assert_int_eq(settlement_record_from_event(t, &ev, 42, &r, err, sizeof err), -1);
    ev.price_minor = 1;
    ev.transid = "";
    ck_assert_int_eq(settlement_record_from_event(t, &ev, 42, &r, err, sizeof err), -1);
    tenants_free(t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("settlement-reporter logic");
    TCase *tc = tcase_create("logic");
    tcase_add_test(tc, split_sums_to_gross_for_awkward_amounts);
    tcase_add_test(tc, split_rule_examples);
    tcase_add_test(tc, shares_from_tenants_file);
    tcase_add_test(tc, utc_days);
    tcase_add_test(tc, conversion_rates);
    tcase_add_test(tc, csv_quoting);
    tcase_add_test(tc, record_from_event);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
