/* shared/plumbing/store.c write errors and readiness: a storage error (SQLITE_FULL,
 * _IOERR, _BUSY, _READONLY) makes store_ready() 0 until none came for
 * MILLOM_STORE_ERROR_READY_S (1 s here); other errors (a constraint) do
 * not count; store_exec reports its own errors. (The full-disk path
 * through SQLite's error log and the start on an unwritable directory run
 * for real in tests/integration/test_storage_faults.c, on tmpfs.) The
 * tests share this process's store state, so they run in order. Waits are
 * bounded polls. */
#include "shared/plumbing/store.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[64], path[128];
static const char *const schema[] = {"CREATE TABLE t (id INTEGER PRIMARY KEY)"};

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls (up to ~20 s) until store_ready() == want. */
static int wait_ready(int want) {
    for (int i = 0; i < 200; i++) {
        if (store_ready() == want) return 1;
        sleep_ms(100);
    }
    return 0;
}

START_TEST(storage_errors_make_it_not_ready_for_a_while) {
    char err[256];
    sqlite3 *db = store_open_path(path, schema, 1, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(store_ready(), 1);

    store_note_error(SQLITE_CONSTRAINT, "not a storage error");
    ck_assert_int_eq(store_ready(), 1);

    const int codes[] = {SQLITE_FULL, SQLITE_IOERR_WRITE, SQLITE_BUSY, SQLITE_READONLY};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        store_note_error(codes[i], "test");
        ck_assert_msg(store_ready() == 0, "ready right after %s", sqlite3_errstr(codes[i]));
        ck_assert_msg(wait_ready(1), "not ready again after %s", sqlite3_errstr(codes[i]));
    }
    store_close(db);
}
END_TEST

START_TEST(store_exec_reports_its_errors) {
    char err[256];
    sqlite3 *db = store_open_path(path, schema, 1, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    /* A second writer holds the write lock: BEGIN IMMEDIATE is SQLITE_BUSY. */
    sqlite3 *other = NULL;
    ck_assert_int_eq(sqlite3_open(path, &other), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10);
    ck_assert_int_eq(store_begin(db) & 0xff, SQLITE_BUSY);
    ck_assert_int_eq(store_ready(), 0);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    ck_assert(wait_ready(1));
    store_close(db);
}
END_TEST

START_TEST(unwritable_directory_is_refused_in_one_line) {
    char err[256] = "";
    sqlite3 *db = store_open_path("/proc/millom-no-such-dir/x.db", schema, 1, err, sizeof err);
    ck_assert_ptr_null(db);
    ck_assert_msg(strstr(err, "data dir /proc/millom-no-such-dir cannot be written: ") == err, "%s",
                  err);
    ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

int main(void) {
    setenv("MILLOM_STORE_ERROR_READY_S", "1", 1);
    snprintf(dir, sizeof dir, "/tmp/millom-store-errors-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/t.db", dir);
    Suite *s = suite_create("shared_store_errors");
    TCase *tc = tcase_create("errors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, storage_errors_make_it_not_ready_for_a_while);
    tcase_add_test(tc, store_exec_reports_its_errors);
    tcase_add_test(tc, unwritable_directory_is_refused_in_one_line);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return failed ? 1 : 0;
}
