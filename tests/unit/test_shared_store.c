/* shared/plumbing/store.c: migrations run once, in order, each atomically; the file
 * is in WAL mode; a newer file than the code knows is refused. Real SQLite
 * files in a temporary directory. */
#include "shared/plumbing/store.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void make_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/millom-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("MILLOM_DATA_DIR", dir, 1);
}

static void remove_dir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static long scalar(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    long v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static const char *const v1[] = {
    "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    "INSERT INTO t (name) VALUES ('seeded')",
};

START_TEST(migrations_apply_once) {
    char err[256];
    sqlite3 *db = store_open("svc", v1, 2, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(scalar(db, "PRAGMA user_version"), 2);
    ck_assert_int_eq(scalar(db, "SELECT count(*) FROM t"), 1);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    store_close(db);

    /* Reopening runs nothing again; a new migration runs alone. */
    const char *const v2[] = {v1[0], v1[1], "ALTER TABLE t ADD COLUMN extra INTEGER DEFAULT 7"};
    db = store_open("svc", v2, 3, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(scalar(db, "PRAGMA user_version"), 3);
    ck_assert_int_eq(scalar(db, "SELECT count(*) FROM t"), 1);
    ck_assert_int_eq(scalar(db, "SELECT extra FROM t"), 7);
    store_close(db);

    char path[128];
    snprintf(path, sizeof path, "%s/svc.db", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

START_TEST(failed_migration_rolls_back) {
    char err[256];
    const char *const bad[] = {v1[0],
                               "INSERT INTO t (name) VALUES ('a'); INSERT INTO nope VALUES (1)"};
    sqlite3 *db = store_open("bad", bad, 2, err, sizeof err);
    ck_assert_ptr_null(db);
    ck_assert_ptr_nonnull(strstr(err, "migration 2"));
    /* Version 1 stayed; the half of migration 2 that ran is gone. */
    db = store_open("bad", v1, 1, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(scalar(db, "PRAGMA user_version"), 1);
    ck_assert_int_eq(scalar(db, "SELECT count(*) FROM t"), 0);
    store_close(db);
}
END_TEST

START_TEST(newer_file_is_refused) {
    char err[256];
    sqlite3 *db = store_open("new", v1, 2, err, sizeof err);
    ck_assert_ptr_nonnull(db);
    store_close(db);
    db = store_open("new", v1, 1, err, sizeof err);
    ck_assert_ptr_null(db);
    ck_assert_ptr_nonnull(strstr(err, "version 2"));
}
END_TEST

START_TEST(transactions) {
    char err[256];
    sqlite3 *db = store_open("tx", v1, 1, err, sizeof err);
    ck_assert_ptr_nonnull(db);
    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    ck_assert_int_eq(store_exec(db, "INSERT INTO t (name) VALUES ('x')"), SQLITE_OK);
    store_rollback(db);
    ck_assert_int_eq(scalar(db, "SELECT count(*) FROM t"), 0);
    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    ck_assert_int_eq(store_exec(db, "INSERT INTO t (name) VALUES ('x')"), SQLITE_OK);
    ck_assert_int_eq(store_commit(db), SQLITE_OK);
    ck_assert_int_eq(scalar(db, "SELECT count(*) FROM t"), 1);
    ck_assert_int_ne(store_exec(db, "NOT SQL"), SQLITE_OK);
    store_close(db);
}
END_TEST

int main(void) {
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("sqlite");
    tcase_add_checked_fixture(tc, make_dir, remove_dir);
    tcase_add_test(tc, migrations_apply_once);
    tcase_add_test(tc, failed_migration_rolls_back);
    tcase_add_test(tc, newer_file_is_refused);
    tcase_add_test(tc, transactions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
