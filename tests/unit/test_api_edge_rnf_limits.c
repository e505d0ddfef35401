/* services/api-edge/rnf_limits.h: the hourly purchase cap per subscriber
 * (new transactions counted, repeats not, Retry-After until the oldest
 * leaves the hour) and the settings from the environment. Time injected. */
#include "services/api-edge/rnf_limits.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define T0 1800000000000LL
#define HOUR 3600000LL

START_TEST(settings_from_the_environment) {
    const rnf_settings *s = rnf_limits_settings();
    ck_assert_int_eq(s->purchases_per_hour, 3);
    ck_assert_int_eq(s->per_link_per_min, 20); /* default */
    ck_assert_int_eq(s->purchase_ttl_s, 600);  /* default */
    ck_assert_int_eq(s->shop_ttl_s, 3600);     /* default */
    ck_assert_int_eq(s->max_keys, 16);
}
END_TEST

START_TEST(hourly_cap_counts_new_transactions) {
    ck_assert_int_eq(rnf_purchase_admit("sp|tp|1", "tx-1", T0), 0);
    ck_assert_int_eq(rnf_purchase_admit("sp|tp|1", "tx-2", T0 + 1000), 0);
    ck_assert_int_eq(rnf_purchase_admit("sp|tp|1", "tx-1", T0 + 2000), 0); /* a repeat */
    ck_assert_int_eq(rnf_purchase_admit("sp|tp|1", "tx-3", T0 + 2000), 0);
    int retry = rnf_purchase_admit("sp|tp|1", "tx-4", T0 + 10000);
    ck_assert_int_eq(retry, 3590); /* tx-1 leaves the hour at T0 + 1 h */
    ck_assert_int_eq(rnf_purchase_admit("sp|tp|1", "tx-2", T0 + 20000), 0); /* still a repeat */
    /* another subscriber is not affected */
    ck_assert_int_eq(rnf_purchase_admit("sp|tp|2", "tx-4", T0 + 10000), 0);
    /* an hour later tx-1's place is free again */
    ck_assert_int_eq(rnf_purchase_admit("sp|tp|1", "tx-4", T0 + HOUR), 0);
    ck_assert_int_ne(rnf_purchase_admit("sp|tp|1", "tx-5", T0 + HOUR), 0);
}
END_TEST

START_TEST(many_subscribers_stay_bounded) {
    /* 16 slots: 500 subscribers each get their purchases; memory is fixed */
    char key[32], tid[32];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "sp|tp|x%d", i);
        for (int k = 0; k < 3; k++) {
            snprintf(tid, sizeof tid, "t-%d-%d", i, k);
            ck_assert_int_eq(rnf_purchase_admit(key, tid, T0 + 5 * HOUR + i), 0);
        }
        ck_assert_int_ne(rnf_purchase_admit(key, "one-more", T0 + 5 * HOUR + i), 0);
    }
}
END_TEST

int main(void) {
    setenv("MILLOM_LINK_PURCHASES_PER_HOUR", "3", 1);
    setenv("MILLOM_LINK_LIMIT_KEYS", "16", 1);
    unsetenv("MILLOM_LINK_RATE_PER_LINK");
    unsetenv("MILLOM_LINK_PURCHASE_TTL_S");
    unsetenv("MILLOM_LINK_SHOP_TTL_S");
    rnf_limits_init();
    Suite *s = suite_create("rnf_limits");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, settings_from_the_environment);
    tcase_add_test(tc, hourly_cap_counts_new_transactions);
    tcase_add_test(tc, many_subscribers_stay_bounded);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
