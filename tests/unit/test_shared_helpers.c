/* The shared helper layer: text.h, clock.h, files.h. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/plumbing/clock.h"
#include "shared/plumbing/files.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/text.h"

START_TEST(text_helpers) {
    char buf[8];
    text_printf(buf, sizeof buf, "%s-%d", "abc", 12345);
    ck_assert_str_eq(buf, "abc-123"); /* cut, terminated */
    text_printf(NULL, 10, "ignored %d", 1);
    text_printf(buf, 0, "ignored");
    ck_assert_str_eq(buf, "abc-123");
    text_copy(buf, sizeof buf, "0123456789");
    ck_assert_str_eq(buf, "0123456");
    text_copy(buf, sizeof buf, NULL);
    ck_assert_str_eq(buf, "");
    text_copy(buf, sizeof buf, "abcdef\xc3\xa9"); /* never half a character */
    ck_assert_str_eq(buf, "abcdef");
}
END_TEST

START_TEST(rfc3339) {
    char buf[CLOCK_RFC3339_LEN];
    clock_rfc3339_ms(0, buf, sizeof buf);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    clock_rfc3339_ms(1796173830123LL, buf, sizeof buf);
    ck_assert_str_eq(buf, "2026-12-02T01:10:30.123Z");
    clock_rfc3339_ms(-1, buf, sizeof buf); /* floor, not "-00.-01" */
    ck_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
}
END_TEST

START_TEST(deadline_and_sleep) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_deadline_in(&b, 1999);
    int64_t diff_ms = (int64_t)(b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    ck_assert_int_ge(diff_ms, 1999);
    ck_assert_int_lt(b.tv_nsec, 1000000000L);
    int64_t t0 = mono_ms();
    clock_sleep_ms(20);
    ck_assert_int_ge(mono_ms() - t0, 20);
}
END_TEST

START_TEST(mkdir_helpers) {
    char dir[64], path[160];
    snprintf(dir, sizeof dir, "/tmp/millom-files-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    ck_assert_int_eq(files_mkdir_p(path), 0);
    ck_assert_int_eq(files_mkdir_p(path), 0); /* exists: fine */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    snprintf(path, sizeof path, "%s/x/y/file.db", dir);
    ck_assert_int_eq(files_mkdir_parents(path), 0);
    snprintf(path, sizeof path, "%s/x/y", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/x/y/file.db", dir);
    ck_assert_int_eq(stat(path, &st), -1); /* the file itself is not made */
    ck_assert_int_eq(files_mkdir_parents("bare-name.db"), 0);
    /* A file in the way is an error. */
    snprintf(path, sizeof path, "%s/plain", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/plain/sub", dir);
    ck_assert_int_eq(files_mkdir_p(path), -1);
    ck_assert_int_eq(errno, ENOTDIR);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(read_all_helper) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/millom-read-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    size_t len = 99;
    char *text = files_read_all(path, 16, &len); /* empty */
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(text, "");
    free(text);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 1000; i++) fputs("0123456789", f);
    fclose(f);
    text = files_read_all(path, 10000, &len); /* exactly the most allowed */
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, 10000);
    ck_assert_uint_eq(strlen(text), 10000);
    ck_assert(strncmp(text + 9990, "0123456789", 10) == 0);
    free(text);
    errno = 0;
    ck_assert_ptr_null(files_read_all(path, 9999, &len)); /* one byte too many */
    ck_assert_int_eq(errno, EFBIG);
    ck_assert_ptr_null(files_read_all("/tmp", 100, &len));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(files_read_all("/nonexistent/millom", 100, &len));
    ck_assert_int_eq(errno, ENOENT);
    unlink(path);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_helpers");
    TCase *tc = tcase_create("helpers");
    tcase_add_test(tc, text_helpers);
    tcase_add_test(tc, rfc3339);
    tcase_add_test(tc, deadline_and_sleep);
    tcase_add_test(tc, mkdir_helpers);
    tcase_add_test(tc, read_all_helper);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
