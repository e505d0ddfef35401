/* shared/plumbing/store_pool.c: n connections opened with the caller's
 * opener, each handed to one thread at a time; a thread that finds none
 * free waits until one is given back; many threads sharing two
 * connections all get their reads done; an opener's failure is reported
 * and what was opened is closed. Real SQLite files. */
#include "shared/plumbing/store_pool.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/plumbing/store.h"

static char dir[64], path[128];
static atomic_int opened;   /* connections the opener made */
static int fail_after = -1; /* >= 0: the opener fails once it made this many */

static const char *const schema[] = {"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
                                     "INSERT INTO t VALUES (1, 'one')"};

static sqlite3 *open_counted(const char *p, char *err, size_t errlen) {
    if (fail_after >= 0 && atomic_load(&opened) >= fail_after) {
        snprintf(err, errlen, "opener refused");
        return NULL;
    }
    sqlite3 *db = store_open_path(p, schema, 2, err, errlen);
    if (db) atomic_fetch_add(&opened, 1);
    return db;
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/millom-pool-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pool.db", dir);
    atomic_store(&opened, 0);
    fail_after = -1;
}

static void teardown(void) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int read_value(sqlite3 *db) {
    sqlite3_stmt *st;
    ck_assert_int_eq(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE v = 'one'", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

START_TEST(opens_n_connections_with_the_opener) {
    char err[256] = "";
    store_pool *p = store_pool_open(path, 3, open_counted, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_int_eq(store_pool_size(p), 3);
    ck_assert_int_eq(atomic_load(&opened), 3);
    /* Three distinct connections, each migrated by the opener. */
    sqlite3 *a = store_pool_take(p), *b = store_pool_take(p), *c = store_pool_take(p);
    ck_assert(a != b && b != c && a != c);
    ck_assert_int_eq(read_value(a) + read_value(b) + read_value(c), 3);
    store_pool_give(p, a);
    /* The one given back last is the one taken next. */
    ck_assert_ptr_eq(store_pool_take(p), a);
    store_pool_give(p, a);
    store_pool_give(p, b);
    store_pool_give(p, c);
    store_pool_close(p);
}
END_TEST

START_TEST(a_failing_opener_is_reported) {
    char err[256] = "";
    fail_after = 2;
    ck_assert_ptr_null(store_pool_open(path, 4, open_counted, err, sizeof err));
    ck_assert_str_eq(err, "opener refused");
    ck_assert_ptr_null(store_pool_open(path, 0, open_counted, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "at least one"));
}
END_TEST

typedef struct {
    store_pool *pool;
    atomic_int *took;
    sqlite3 *got;
} taker_arg;

static void *taker_main(void *arg) {
    taker_arg *t = arg;
    t->got = store_pool_take(t->pool);
    atomic_store(t->took, 1);
    return NULL;
}

START_TEST(a_taker_waits_until_one_is_given_back) {
    char err[256] = "";
    store_pool *p = store_pool_open(path, 1, open_counted, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    sqlite3 *only = store_pool_take(p);
    atomic_int took = 0;
    taker_arg t = {.pool = p, .took = &took};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, taker_main, &t), 0);
    usleep(200 * 1000);
    ck_assert_msg(atomic_load(&took) == 0, "took a connection while none was free");
    store_pool_give(p, only);
    pthread_join(th, NULL);
    ck_assert_int_eq(atomic_load(&took), 1);
    ck_assert_ptr_eq(t.got, only);
    store_pool_give(p, t.got);
    store_pool_close(p);
}
END_TEST

enum { THREADS = 24, READS = 200 };

typedef struct {
    store_pool *pool;
    atomic_int *in_use; /* connections taken right now */
    atomic_int *most;   /* the most ever taken at once */
    int reads;
} reader_arg;

static void *reader_main(void *arg) {
    reader_arg *r = arg;
    for (int i = 0; i < READS; i++) {
        sqlite3 *db = store_pool_take(r->pool);
        int now = atomic_fetch_add(r->in_use, 1) + 1;
        int most = atomic_load(r->most);
        while (now > most && !atomic_compare_exchange_weak(r->most, &most, now)) {
        }
        r->reads += read_value(db);
        atomic_fetch_sub(r->in_use, 1);
        store_pool_give(r->pool, db);
    }
    return NULL;
}

START_TEST(many_threads_share_two_connections) {
    char err[256] = "";
    store_pool *p = store_pool_open(path, 2, open_counted, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    atomic_int in_use = 0, most = 0;
    reader_arg r[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        r[i] = (reader_arg){.pool = p, .in_use = &in_use, .most = &most};
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(r[i].reads, READS);
    }
    ck_assert_int_le(atomic_load(&most), 2);
    ck_assert_int_eq(atomic_load(&opened), 2);
    store_pool_close(p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("store_pool");
    TCase *tc = tcase_create("sqlite");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, opens_n_connections_with_the_opener);
    tcase_add_test(tc, a_failing_opener_is_reported);
    tcase_add_test(tc, a_taker_waits_until_one_is_given_back);
    tcase_add_test(tc, many_threads_share_two_connections);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
