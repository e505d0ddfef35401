/* shared/patterns/group_commit.c: writes of many threads committed by one
 * thread, several per transaction; a write that rolls back loses only its
 * own changes; a caller is answered after the commit (another connection
 * sees the write at once); and what a caller is told matches what is
 * stored, also when the disk fills up mid-batch. Real SQLite files. */
#include "shared/patterns/group_commit.h"

#include <check.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/plumbing/store.h"

static char dir[64], path[128];
static atomic_int commits;  /* transactions the committer's connection committed */
static long max_page_count; /* > 0: the committer's file may not grow past it */
static atomic_int held;     /* the committer is waiting in a held write */

static int count_commit(void *arg) {
    (void)arg;
    atomic_fetch_add(&commits, 1);
    return 0; /* let it commit */
}

static const char *const schema[] = {
    "CREATE TABLE t (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, pad TEXT)"};

static sqlite3 *open_counted(const char *p, char *err, size_t errlen) {
    sqlite3 *db = store_open_path(p, schema, 1, err, errlen);
    if (!db) return NULL;
    sqlite3_commit_hook(db, count_commit, NULL);
    if (max_page_count > 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA max_page_count = %ld", max_page_count);
        ck_assert_int_eq(store_exec(db, sql), SQLITE_OK);
    }
    return db;
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/millom-gc-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/gc.db", dir);
    char err[256];
    sqlite3 *db = store_open_path(path, schema, 1, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    store_close(db);
    atomic_store(&commits, 0);
    atomic_store(&held, 0);
    max_page_count = 0;
}

static void teardown(void) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static long count_rows(const char *where) {
    char err[256], sql[160];
    sqlite3 *db = store_open_path(path, schema, 1, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM t WHERE %s", where);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    store_close(db);
    return n;
}

/* One write: inserts row id for writer; rolls it back when asked to. */
typedef struct {
    long id;
    int writer;
    int roll_back;
    int pad_bytes; /* > 0: a blob of this size, to fill the disk */
    sem_t *hold;   /* non-NULL: wait for it first (keeps the committer busy) */
    int stored;    /* out: 1 when its INSERT and savepoint succeeded */
} insert_write;

static void run_insert(sqlite3 *db, void *arg) {
    insert_write *w = arg;
    if (w->hold) {
        atomic_store(&held, 1);
        sem_wait(w->hold);
    }
    w->stored = 0;
    if (store_begin(db) != SQLITE_OK) return;
    sqlite3_stmt *st;
    ck_assert_int_eq(
        sqlite3_prepare_v2(db, "INSERT INTO t (id, writer, pad) VALUES (?, ?, ?)", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(st, 1, w->id);
    sqlite3_bind_int(st, 2, w->writer);
    if (w->pad_bytes > 0)
        sqlite3_bind_zeroblob(st, 3, w->pad_bytes);
    else
        sqlite3_bind_null(st, 3);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE || w->roll_back) {
        store_rollback(db);
        return;
    }
    w->stored = store_commit(db) == SQLITE_OK;
}

#define THREADS 8
#define WRITES_PER_THREAD 200

typedef struct {
    group_commit *gc;
    int writer;
    int visible_after_answer; /* out: every committed write was seen at once */
} writer_arg;

static void *writer_main(void *arg) {
    writer_arg *a = arg;
    char err[256];
    sqlite3 *reader = store_open_path(path, schema, 1, err, sizeof err);
    a->visible_after_answer = reader != NULL;
    for (int i = 0; reader && i < WRITES_PER_THREAD; i++) {
        insert_write w = {.id = (long)a->writer * 100000 + i, .writer = a->writer};
        if (group_commit_run(a->gc, run_insert, &w) != 0 || !w.stored) {
            a->visible_after_answer = 0;
            break;
        }
        sqlite3_stmt *st;
        sqlite3_prepare_v2(reader, "SELECT 1 FROM t WHERE id = ?", -1, &st, NULL);
        sqlite3_bind_int64(st, 1, w.id);
        if (sqlite3_step(st) != SQLITE_ROW) a->visible_after_answer = 0;
        sqlite3_finalize(st);
    }
    store_close(reader);
    return NULL;
}

START_TEST(many_threads_share_transactions) {
    char err[256];
    group_commit *gc = group_commit_start(path, open_counted, "test-writes", err, sizeof err);
    ck_assert_msg(gc != NULL, "%s", err);
    pthread_t th[THREADS];
    writer_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (writer_arg){.gc = gc, .writer = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, writer_main, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args[i].visible_after_answer,
                      "writer %d: a write was not visible on another connection once answered", i);
    }
    group_commit_stop(gc);
    ck_assert_int_eq(count_rows("1"), THREADS * WRITES_PER_THREAD);
    /* Each writer waits for its answer before its next write, so a
     * transaction holds at most one write per writer; with one write per
     * transaction there would be exactly THREADS * WRITES_PER_THREAD. */
    int n = atomic_load(&commits);
    ck_assert_msg(n >= WRITES_PER_THREAD && n <= THREADS * WRITES_PER_THREAD, "%d commits", n);
}
END_TEST

/* Queued behind a held write, several writes share one transaction; the
 * one that rolls back leaves no row, its neighbours commit. */
typedef struct {
    group_commit *gc;
    insert_write w;
    int result;
} queued_arg;

static void *queued_main(void *arg) {
    queued_arg *q = arg;
    q->result = group_commit_run(q->gc, run_insert, &q->w);
    return NULL;
}

START_TEST(a_rolled_back_write_loses_only_its_own_changes) {
    char err[256];
    group_commit *gc = group_commit_start(path, open_counted, "test-writes", err, sizeof err);
    ck_assert_msg(gc != NULL, "%s", err);
    sem_t hold;
    sem_init(&hold, 0, 0);
    enum { N = 6 };
    queued_arg q[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        q[i] = (queued_arg){.gc = gc, .w = {.id = i + 1, .writer = i, .roll_back = i == 3}};
        if (i == 0) q[i].w.hold = &hold; /* the committer waits in it */
        ck_assert_int_eq(pthread_create(&th[i], NULL, queued_main, &q[i]), 0);
        /* the first is taken alone; the others queue up behind it */
        while (i == 0 ? !atomic_load(&held) : group_commit_waiting(gc) < i) usleep(1000);
    }
    int before = atomic_load(&commits);
    sem_post(&hold);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(q[i].result, 0); /* the transaction committed */
        ck_assert_int_eq(q[i].w.stored, i != 3);
    }
    group_commit_stop(gc);
    ck_assert_int_eq(count_rows("1"), N - 1);
    ck_assert_int_eq(count_rows("id = 4"), 0);
    /* The held write's transaction, then one for the five queued. */
    ck_assert_int_eq(atomic_load(&commits) - before, 2);
    sem_destroy(&hold);
}
END_TEST

/* A full disk: whatever each caller is told matches what is stored. */
START_TEST(answers_match_the_file_when_the_disk_fills) {
    max_page_count = 40; /* 40 pages of 4 KB */
    char err[256];
    group_commit *gc = group_commit_start(path, open_counted, "test-writes", err, sizeof err);
    ck_assert_msg(gc != NULL, "%s", err);
    /* The first FIRST one at a time (they fit), the others at once (they
     * do not all fit: 24 x 16 KB against 160 KB). */
    enum { N = 24, FIRST = 4 };
    queued_arg q[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        q[i] = (queued_arg){.gc = gc, .w = {.id = i + 1, .writer = i, .pad_bytes = 16 * 1024}};
        ck_assert_int_eq(pthread_create(&th[i], NULL, queued_main, &q[i]), 0);
        if (i < FIRST) pthread_join(th[i], NULL);
    }
    int told_stored = 0;
    for (int i = 0; i < N; i++) {
        if (i >= FIRST) pthread_join(th[i], NULL);
        char where[32];
        snprintf(where, sizeof where, "id = %d", i + 1);
        int is_stored = count_rows(where) == 1;
        int said_stored = q[i].result == 0 && q[i].w.stored;
        ck_assert_msg(is_stored == said_stored, "write %d: told %s, file has %s", i + 1,
                      said_stored ? "stored" : "not stored", is_stored ? "it" : "nothing");
        told_stored += said_stored;
    }
    group_commit_stop(gc);
    ck_assert_msg(told_stored >= FIRST, "%d of %d stored: the first ones fit", told_stored, N);
    ck_assert_msg(told_stored < N, "all %d stored: the disk never filled", N);
}
END_TEST

int main(void) {
    Suite *s = suite_create("group_commit");
    TCase *tc = tcase_create("sqlite");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, many_threads_share_transactions);
    tcase_add_test(tc, a_rolled_back_write_loses_only_its_own_changes);
    tcase_add_test(tc, answers_match_the_file_when_the_disk_fills);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
