/* shared/plumbing/store.c: migrations run once, in order, each atomically; the file
 * is in WAL mode; a newer file than the code knows is refused. Real SQLite
 * files in a temporary directory. */
#include "shared/plumbing/store.h"

#include <check.h>
#include <pthread.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

/* A connection opened without store_open (the outbox relay's, the
 * changelog follower's) gets store_open's page cache, not SQLite's 2 MB. */
START_TEST(connections_opened_elsewhere_get_the_store_cache_size) {
    char err[256], path[128];
    sqlite3 *db = store_open("svc", v1, 2, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    long want = scalar(db, "PRAGMA cache_size");
    ck_assert_int_eq(want, -512); /* MILLOM_SQLITE_CACHE_KB's default */
    snprintf(path, sizeof path, "%s/svc.db", dir);
    sqlite3 *raw = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    ck_assert_int_eq(scalar(raw, "PRAGMA cache_size"), -2000); /* SQLite's own */
    ck_assert_int_eq(store_set_cache_size(raw), SQLITE_OK);
    ck_assert_int_eq(scalar(raw, "PRAGMA cache_size"), want);
    sqlite3_close(raw);
    store_close(db);
}
END_TEST

/* MILLOM_SQLITE_HEAP_KB (this test's default: 1024, as purchase-executor's)
 * bounds the page caches of all the process's connections together: four
 * connections that each read a 3 MB table would otherwise keep 512 kB each
 * (MILLOM_SQLITE_CACHE_KB). */
START_TEST(one_budget_bounds_every_connections_cache) {
    static const char *const big[] = {
        "CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB NOT NULL)",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
        "INSERT INTO big (b) SELECT zeroblob(1000) FROM n",
    };
    char err[256];
    sqlite3 *db[4];
    for (int i = 0; i < 4; i++) {
        db[i] = store_open("budget", big, 2, err, sizeof err);
        ck_assert_msg(db[i] != NULL, "%s", err);
    }
    ck_assert_int_eq(sqlite3_soft_heap_limit64(-1), 1024 * 1024);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(scalar(db[i], "SELECT sum(length(b)) FROM big"), 3000 * 1000);
    /* Within the budget and a little over it (what is pinned while a page
     * is read, schemas, statements); without it, over 2 MB. */
    sqlite3_int64 used = sqlite3_memory_used();
    ck_assert_msg(used < 1280 * 1024, "SQLite holds %lld bytes", (long long)used);
    for (int i = 0; i < 4; i++) store_close(db[i]);
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

/* Threads of this process named `name` (/proc/self/task/<tid>/comm). */
static int threads_named(const char *name) {
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

static long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Commits of store_open's connections are checkpointed by one thread per
 * file, not inline: the database file grows while two connections write
 * (only a checkpoint copies pages into it), one "checkpoint" thread serves
 * both, and it ends with the last store_close. */
START_TEST(checkpoints_run_in_their_own_thread) {
    make_dir();
    static const char *const schema[] = {"CREATE TABLE t (id INTEGER PRIMARY KEY, pad BLOB)"};
    char err[256], path[128];
    snprintf(path, sizeof path, "%s/ckpt.db", dir);
    sqlite3 *a = store_open("ckpt", schema, 1, err, sizeof err);
    sqlite3 *b = store_open("ckpt", schema, 1, err, sizeof err);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(threads_named("checkpoint"), 1);
    long before = file_size(path);
    /* 3,000 commits of a page each: three times the checkpoint size. */
    for (int i = 0; i < 3000; i++)
        ck_assert_int_eq(store_exec(i % 2 ? a : b, "INSERT INTO t (pad) VALUES (zeroblob(3000))"),
                         SQLITE_OK);
    long after = before;
    for (int i = 0; i < 100 && after < before + 1000L * 4096; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        after = file_size(path);
    }
    ck_assert_msg(after >= before + 1000L * 4096, "database file %ld -> %ld bytes: no checkpoint",
                  before, after);
    store_close(a);
    ck_assert_int_eq(threads_named("checkpoint"), 1);
    store_close(b);
    ck_assert_int_eq(threads_named("checkpoint"), 0);
    remove_dir();
}
END_TEST

static void *hold_write_lock(void *arg) {
    sqlite3 *db = arg;
    ck_assert_int_eq(store_exec(db, "BEGIN IMMEDIATE"), SQLITE_OK);
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(store_exec(db, "COMMIT"), SQLITE_OK);
    return NULL;
}

/* A writer that finds the write lock taken waits for it (short sleeps,
 * store_busy_wait) instead of failing, and gives up after about 5 s. */
START_TEST(a_busy_writer_waits_for_the_lock) {
    make_dir();
    static const char *const schema[] = {"CREATE TABLE t (id INTEGER PRIMARY KEY)"};
    char err[256];
    sqlite3 *a = store_open("busy", schema, 1, err, sizeof err);
    sqlite3 *b = store_open("busy", schema, 1, err, sizeof err);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    pthread_t holder;
    ck_assert_int_eq(pthread_create(&holder, NULL, hold_write_lock, a), 0);
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL); /* the holder has the lock by now */
    ck_assert_int_eq(store_exec(b, "INSERT INTO t DEFAULT VALUES"), SQLITE_OK);
    pthread_join(holder, NULL);
    ck_assert_int_eq(scalar(b, "SELECT count(*) FROM t"), 1);
    ck_assert_int_eq(store_busy_wait(NULL, 0), 1);
    ck_assert_int_eq(store_busy_wait(NULL, 1000), 1); /* about 2 s waited */
    ck_assert_int_eq(store_busy_wait(NULL, 2600), 0); /* about 5 s: give up */
    store_close(a);
    store_close(b);
    remove_dir();
}
END_TEST

int main(void) {
    store_default_heap_kb(1024); /* before the first store_open */
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("sqlite");
    tcase_add_checked_fixture(tc, make_dir, remove_dir);
    tcase_add_test(tc, migrations_apply_once);
    tcase_add_test(tc, failed_migration_rolls_back);
    tcase_add_test(tc, newer_file_is_refused);
    tcase_add_test(tc, transactions);
    tcase_add_test(tc, connections_opened_elsewhere_get_the_store_cache_size);
    tcase_add_test(tc, one_budget_bounds_every_connections_cache);
    tcase_add_test(tc, checkpoints_run_in_their_own_thread);
    tcase_add_test(tc, a_busy_writer_waits_for_the_lock);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
