/* shared/plumbing/settings.h: defaults for missing or empty variables, and a bad
 * value is an error that names the variable and what it accepts. */
#include "shared/plumbing/settings.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define V "MILLOM_TEST_SETTING"

START_TEST(missing_and_empty_give_default) {
    unsetenv(V);
    settings_reader s = SETTINGS_INIT;
    ck_assert_int_eq(settings_long(&s, V, 7, 1, 10), 7);
    ck_assert(settings_bool(&s, V, true));
    ck_assert_str_eq(settings_str(&s, V, "d"), "d");
    ck_assert_ptr_null(settings_str(&s, V, NULL));
    ck_assert_str_eq(settings_url(&s, V, "http://x"), "http://x");
    setenv(V, "", 1);
    ck_assert_int_eq(settings_long(&s, V, 7, 1, 10), 7);
    ck_assert(!settings_bool(&s, V, false));
    ck_assert(settings_ok(&s));
    ck_assert_str_eq(settings_error(&s), "");
}
END_TEST

START_TEST(long_in_range) {
    settings_reader s = SETTINGS_INIT;
    setenv(V, "100000", 1);
    ck_assert_int_eq(settings_long(&s, V, 5, 1, 100000), 100000);
    setenv(V, "1", 1);
    ck_assert_int_eq(settings_long(&s, V, 5, 1, 100000), 1);
    setenv(V, "-3", 1);
    ck_assert_int_eq(settings_long(&s, V, 5, -10, 10), -3);
    ck_assert(settings_ok(&s));
}
END_TEST

START_TEST(long_bad_values) {
    const char *bad[] = {"lots", "12x", "0", "100001", "1.5", " ", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        settings_reader s = SETTINGS_INIT;
        setenv(V, bad[i], 1);
        ck_assert_int_eq(settings_long(&s, V, 5, 1, 100000), 5);
        ck_assert(!settings_ok(&s));
        ck_assert_ptr_nonnull(
            strstr(settings_error(&s), V " must be a whole number from 1 to 100000"));
        ck_assert_ptr_nonnull(strstr(settings_error(&s), bad[i]));
    }
    settings_reader s = SETTINGS_INIT;
    setenv(V, "lots", 1);
    settings_long(&s, V, 5, 1, 100000);
    ck_assert_str_eq(settings_error(&s),
                     V " must be a whole number from 1 to 100000, not \"lots\"");
}
END_TEST

START_TEST(first_error_is_kept) {
    settings_reader s = SETTINGS_INIT;
    setenv(V, "x", 1);
    setenv("MILLOM_TEST_SETTING_2", "y", 1);
    settings_ms(&s, V, 1, 0, 10);
    settings_seconds(&s, "MILLOM_TEST_SETTING_2", 1, 0, 10);
    ck_assert_str_eq(settings_error(&s),
                     V " must be a whole number of milliseconds from 0 to 10, not \"x\"");
    unsetenv("MILLOM_TEST_SETTING_2");
}
END_TEST

START_TEST(units_in_message) {
    settings_reader s = SETTINGS_INIT;
    setenv(V, "-1", 1);
    settings_seconds(&s, V, 1, 0, 10);
    ck_assert_str_eq(settings_error(&s),
                     V " must be a whole number of seconds from 0 to 10, not \"-1\"");
}
END_TEST

START_TEST(numbers) {
    settings_reader s = SETTINGS_INIT;
    setenv(V, "0.5", 1);
    ck_assert(settings_number(&s, V, 2, 0.001, 1e6) == 0.5);
    ck_assert(settings_ok(&s));
    setenv(V, "nan", 1);
    ck_assert(settings_number(&s, V, 2, 0.001, 1e6) == 2);
    ck_assert_str_eq(settings_error(&s), V " must be a number from 0.001 to 1e+06, not \"nan\"");
}
END_TEST

START_TEST(bools) {
    const char *yes[] = {"1", "true", "YES", "on"}, *no[] = {"0", "False", "no", "OFF"};
    settings_reader s = SETTINGS_INIT;
    for (int i = 0; i < 4; i++) {
        setenv(V, yes[i], 1);
        ck_assert(settings_bool(&s, V, false));
        setenv(V, no[i], 1);
        ck_assert(!settings_bool(&s, V, true));
    }
    ck_assert(settings_ok(&s));
    setenv(V, "2", 1);
    ck_assert(settings_bool(&s, V, true));
    ck_assert_str_eq(settings_error(&s),
                     V " must be 1 or 0 (true/false, yes/no, on/off), not \"2\"");
}
END_TEST

START_TEST(enums) {
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    settings_reader s = SETTINGS_INIT;
    setenv(V, "warn", 1);
    ck_assert_int_eq(settings_enum(&s, V, levels, 1), 2);
    ck_assert(settings_ok(&s));
    setenv(V, "loud", 1);
    ck_assert_int_eq(settings_enum(&s, V, levels, 1), 1);
    ck_assert_str_eq(settings_error(&s),
                     V " must be one of debug, info, warn, error, not \"loud\"");
}
END_TEST

START_TEST(urls) {
    settings_reader s = SETTINGS_INIT;
    setenv(V, "https://millom.example:8443/x", 1);
    ck_assert_str_eq(settings_url(&s, V, NULL), "https://millom.example:8443/x");
    ck_assert(settings_ok(&s));
    const char *bad[] = {"millom.example", "ftp://x", "http://", "http:///x", "http://a b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        settings_reader t = SETTINGS_INIT;
        setenv(V, bad[i], 1);
        ck_assert_ptr_null(settings_url(&t, V, NULL));
        ck_assert_ptr_nonnull(strstr(settings_error(&t), V " must be an http:// or https:// URL"));
    }
}
END_TEST

START_TEST(own_checks) {
    settings_reader s = SETTINGS_INIT;
    settings_fail(&s, "%s must not be below %s", "A", "B");
    settings_fail(&s, "second");
    ck_assert_str_eq(settings_error(&s), "A must not be below B");
}
END_TEST

/* A bad value read at a module's init exits 1 (in a child process). */
START_TEST(exit_on_error_exits_1) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv(V, "lots", 1);
        setting_long(V, 5, 1, 100000);
        _exit(0); /* not reached when the check works */
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 1);
}
END_TEST

START_TEST(exit_on_error_is_quiet_when_ok) {
    settings_reader s = SETTINGS_INIT;
    settings_exit_on_error(&s);
    unsetenv(V);
    ck_assert_int_eq(setting_long(V, 5, 1, 10), 5);
}
END_TEST

int main(void) {
    Suite *s = suite_create("settings");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, missing_and_empty_give_default);
    tcase_add_test(tc, long_in_range);
    tcase_add_test(tc, long_bad_values);
    tcase_add_test(tc, first_error_is_kept);
    tcase_add_test(tc, units_in_message);
    tcase_add_test(tc, numbers);
    tcase_add_test(tc, bools);
    tcase_add_test(tc, enums);
    tcase_add_test(tc, urls);
    tcase_add_test(tc, own_checks);
    tcase_add_test(tc, exit_on_error_is_quiet_when_ok);
    tcase_add_test(tc, exit_on_error_exits_1);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
