/* shared/plumbing/store.c store_ready(): ready with no store, ready while every
 * opened file answers, not ready once one of them cannot be opened. Works
 * as root (no chmod): the file is deleted, replaced by a directory or by
 * garbage, or its directory removed. The tests run in order in this one
 * process (store_ready sees every file the process ever opened), all in
 * one temporary data directory. */
#include "shared/plumbing/log.h"
#include "shared/plumbing/store.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *const schema[] = {"CREATE TABLE t (id INTEGER PRIMARY KEY)"};

START_TEST(no_store_is_ready) {
    ck_assert_int_eq(store_ready(), 1);
    /* An in-memory store is no file to check. */
    char err[256];
    sqlite3 *db = store_open_path(":memory:", schema, 1, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(store_ready(), 1);
    store_close(db);
    ck_assert_int_eq(store_ready(), 1);
}
END_TEST

START_TEST(file_gone_or_directory_is_not_ready) {
    char err[256], path[128];
    sqlite3 *db = store_open("svc", schema, 1, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(store_ready(), 1);
    /* While the service holds its connection and has written (WAL). */
    ck_assert_int_eq(store_exec(db, "INSERT INTO t DEFAULT VALUES"), SQLITE_OK);
    ck_assert_int_eq(store_ready(), 1);
    store_close(db);
    ck_assert_int_eq(store_ready(), 1); /* closed files are still checked */

    snprintf(path, sizeof path, "%s/svc.db", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(store_ready(), 0); /* gone */
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(store_ready(), 0); /* a directory of that name */
    ck_assert_int_eq(rmdir(path), 0);

    /* A healthy file again: ready again. */
    db = store_open("svc", schema, 1, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(store_ready(), 1);
    store_close(db);
}
END_TEST

START_TEST(one_bad_file_of_several_is_not_ready) {
    char err[256], path[128];
    snprintf(path, sizeof path, "%s/a.db", dir);
    sqlite3 *a = store_open_path(path, schema, 1, err, sizeof err);
    ck_assert_msg(a != NULL, "%s", err);
    sqlite3 *b = store_open("b", schema, 1, err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    ck_assert_int_eq(store_ready(), 1);
    store_close(b);

    /* b.db is no SQLite file any more. */
    char bpath[128];
    snprintf(bpath, sizeof bpath, "%s/b.db", dir);
    FILE *f = fopen(bpath, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 256; i++) fputs("this is not a database file ", f);
    fclose(f);
    ck_assert_int_eq(store_ready(), 0);

    ck_assert_int_eq(unlink(bpath), 0);
    b = store_open("b", schema, 1, err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    ck_assert_int_eq(store_ready(), 1);

    /* The whole data directory removed under open connections. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(store_ready(), 0);
    store_close(a);
    store_close(b);
    ck_assert_int_eq(store_ready(), 0);
}
END_TEST

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/millom-ready-XXXXXX");
    if (!mkdtemp(dir)) return EXIT_FAILURE;
    setenv("MILLOM_DATA_DIR", dir, 1);
    if (!getenv("MILLOM_LOG_LEVEL")) setenv("MILLOM_LOG_LEVEL", "error", 1);
    log_init("test_shared_store_ready");

    Suite *s = suite_create("store_ready");
    TCase *tc = tcase_create("files");
    tcase_add_test(tc, no_store_is_ready);
    tcase_add_test(tc, file_gone_or_directory_is_not_ready);
    tcase_add_test(tc, one_bad_file_of_several_is_not_ready);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* the order above matters */
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) failed++;
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
