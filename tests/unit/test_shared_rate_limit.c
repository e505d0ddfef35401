/* shared/plumbing/rate_limit.h: a bucket per key (burst, refill, Retry-After), keys
 * apart, a bounded table that forgets the key used longest ago, and many
 * threads on one table. Time is injected: no sleeping. */
#include "shared/plumbing/rate_limit.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>

#define T0 1800000000000LL

START_TEST(burst_then_refill) {
    rate_limit *l = rate_limit_new(1.0 / 6.0, 3, 64); /* 10 a minute, 3 at once */
    ck_assert_ptr_nonnull(l);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(rate_limit_take(l, "link-a", T0), 0);
    int retry = rate_limit_take(l, "link-a", T0);
    ck_assert_int_eq(retry, 6); /* one token per 6 s */
    ck_assert_int_eq(rate_limit_take(l, "link-a", T0 + 3000), 3);
    ck_assert_int_eq(rate_limit_take(l, "link-a", T0 + 6000), 0);
    ck_assert_int_ne(rate_limit_take(l, "link-a", T0 + 6000), 0);
    /* never more than the burst, however long it waited */
    for (int i = 0; i < 3; i++) ck_assert_int_eq(rate_limit_take(l, "link-a", T0 + 3600000), 0);
    ck_assert_int_ne(rate_limit_take(l, "link-a", T0 + 3600000), 0);
    /* another key has its own bucket */
    ck_assert_int_eq(rate_limit_take(l, "link-b", T0), 0);
    /* a clock going back takes nothing */
    ck_assert_int_ne(rate_limit_take(l, "link-a", T0), 0);
    rate_limit_free(l);
    ck_assert_int_eq(rate_limit_take(NULL, "x", T0), 0);
}
END_TEST

START_TEST(bad_settings) {
    ck_assert_ptr_null(rate_limit_new(0, 3, 8));
    ck_assert_ptr_null(rate_limit_new(1, 0.5, 8));
    ck_assert_ptr_null(rate_limit_new(1, 3, 0));
}
END_TEST

START_TEST(table_is_bounded) {
    rate_limit *l = rate_limit_new(1.0 / 60.0, 1, 16);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(rate_limit_take(l, "first", T0), 0);
    ck_assert_int_ne(rate_limit_take(l, "first", T0 + 1), 0);
    /* 1000 other keys through a 16-slot table: each is limited while it
     * is there, and "first", used longest ago, is forgotten */
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ck_assert_int_eq(rate_limit_take(l, key, T0 + 10 + i), 0);
        ck_assert_int_ne(rate_limit_take(l, key, T0 + 10 + i), 0);
    }
    ck_assert_int_eq(rate_limit_take(l, "first", T0 + 2000), 0);
    rate_limit_free(l);
}
END_TEST

static rate_limit *shared;
static int granted[4];

static void *taker(void *arg) {
    int n = (int)(long)arg;
    for (int i = 0; i < 1000; i++)
        if (rate_limit_take(shared, "same", T0) == 0) granted[n]++;
    return NULL;
}

START_TEST(threads_share_one_bucket) {
    shared = rate_limit_new(1, 100, 8);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, taker, (void *)i);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(granted[0] + granted[1] + granted[2] + granted[3], 100);
    rate_limit_free(shared);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rate_limit");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, burst_then_refill);
    tcase_add_test(tc, bad_settings);
    tcase_add_test(tc, table_is_bounded);
    tcase_add_test(tc, threads_share_one_bucket);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
