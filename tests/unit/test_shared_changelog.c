/* shared/patterns/changelog_capture.c and shared/patterns/changelog_follower.c against an
 * in-process librdkafka mock cluster and real SQLite files:
 *  1. capture: triggers stamp rows (cl_version, cl_partition) and add one
 *     ChangelogRecord per change to the outbox (tombstones for deletes,
 *     uid keys and no local columns for rowid tables);
 *  2. follow and apply: database A captures and relays to the changelog
 *     topic, a follower on database B restores the same rows;
 *  3. newest version wins: a row of B with a higher version is kept, and
 *     millom_changelog_stale_total counts the older record;
 *  4. positions persist: a new follower resumes where the last one stopped
 *     and applies only the new records;
 *  5. ownership: changelog_own / changelog_disown_all and
 *     CHANGELOG_OWNED_SQL;
 *  6. own records: a follower of A's own file skips what this process
 *     wrote into A (millom_changelog_own_total) without a transaction,
 *     and still applies a record another writer put on the topic.
 * Works with CK_FORK=no. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "millom/v1/changelog.pb-c.h"
#include "shared/patterns/changelog.h"
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/patterns/outbox.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"
#include "tests/lib/mock_cluster.h"

#define N_PARTS 4
#define WAIT_MS 10000

static test_mock_cluster *mock;
static char dir[64], path_a[128], path_b[128], topic[64];
static int topic_seq;
static sqlite3 *db_a, *db_b; /* db_a captures; db_b is a plain connection */

static const char *const things_sql =
    "CREATE TABLE things (k TEXT PRIMARY KEY, v INTEGER, note TEXT,"
    " cl_version INTEGER NOT NULL DEFAULT 0, cl_partition INTEGER NOT NULL DEFAULT -1)";
static const char *const events_sql =
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT, uid TEXT UNIQUE,"
    " cl_version INTEGER NOT NULL DEFAULT 0, cl_partition INTEGER NOT NULL DEFAULT -1)";

static const char *const things_keys[] = {"k", NULL};
static const char *const events_local[] = {"id", NULL};
static const changelog_table tables[] = {
    {.table = "things", .key_columns = things_keys},
    {.table = "events", .key_columns = NULL, .uid_column = "uid", .local_columns = events_local},
};
static changelog_spec spec = {.topic = topic, .tables = tables, .n_tables = 2};

/* ------------------------------------------------------------- helpers */

static sqlite3 *open_db(const char *path) {
    const char *m[] = {things_sql, events_sql, outbox_migration_sql, changelog_migration_sql,
                       outbox_correlator_migration_sql};
    char err[512] = "";
    sqlite3 *db = store_open_path(path, m, sizeof m / sizeof m[0], err, sizeof err);
    ck_assert_msg(db != NULL, "store_open_path %s: %s", path, err);
    return db;
}

static void setup(void) {
    setenv("MILLOM_LOG_LEVEL", getenv("TEST_LOG_LEVEL") ? getenv("TEST_LOG_LEVEL") : "error", 1);
    log_init("test_shared_changelog");
    char err[512];
    if (!mock) mock = test_mock_cluster_start(1);
    snprintf(topic, sizeof topic, "test.changelog.%d", ++topic_seq);
    ck_assert_int_eq(test_mock_topic(mock, topic, N_PARTS), 0);

    snprintf(dir, sizeof dir, "/tmp/millom-changelog-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path_a, sizeof path_a, "%s/a.db", dir);
    snprintf(path_b, sizeof path_b, "%s/b.db", dir);
    db_a = open_db(path_a);
    db_b = open_db(path_b);
    ck_assert_msg(changelog_capture(db_a, &spec, err, sizeof err) == 0, "capture: %s", err);
    changelog_set_partition(-1);
}

static void free_outbox(void);

static void teardown(void) {
    free_outbox();
    changelog_set_partition(-1);
    store_close(db_a);
    store_close(db_b);
    db_a = db_b = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
}

/* The first column of the first row as an integer (-999 when no row). */
static int64_t query_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    int64_t v = -999;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Every row of a query, columns separated by '|', rows by ';'. */
static void dump(sqlite3 *db, const char *sql, char *out, size_t cap) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    size_t o = 0;
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *t = (const char *)sqlite3_column_text(st, c);
            o += (size_t)snprintf(out + o, cap - o, "%s%s", c ? "|" : "", t ? t : "NULL");
            ck_assert_uint_lt(o, cap);
        }
        o += (size_t)snprintf(out + o, cap - o, ";");
        ck_assert_uint_lt(o, cap);
    }
    sqlite3_finalize(st);
}

/* One outbox row of db_a, decoded. */
typedef struct {
    char *topic;
    int32_t partition;
    Millom__V1__ChangelogKey *key;
    Millom__V1__ChangelogRecord *rec; /* NULL for a tombstone */
    int payload_null;
} outbox_row;

/* The rows read last; freed by the next read and by teardown (so a failed
 * assertion under CK_FORK=no leaks nothing). */
static outbox_row rows[8];
static int n_rows;

static void free_outbox(void) {
    for (int i = 0; i < n_rows; i++) {
        free(rows[i].topic);
        millom__v1__changelog_key__free_unpacked(rows[i].key, NULL);
        if (rows[i].rec) millom__v1__changelog_record__free_unpacked(rows[i].rec, NULL);
    }
    n_rows = 0;
}

/* Reads db_a's outbox rows with id > after_id (in id order) into rows;
 * returns the count. */
static int read_outbox(int64_t after_id) {
    free_outbox();
    sqlite3 *db = db_a;
    const int max = (int)(sizeof rows / sizeof rows[0]);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT topic, key, payload, kafka_partition FROM outbox "
                                        "WHERE id > ? ORDER BY id",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, after_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        ck_assert_int_lt(n_rows, max);
        outbox_row *r = &rows[n_rows++];
        memset(r, 0, sizeof *r);
        r->topic = strdup((const char *)sqlite3_column_text(st, 0));
        r->partition = sqlite3_column_int(st, 3);
        r->key = millom__v1__changelog_key__unpack(NULL, (size_t)sqlite3_column_bytes(st, 1),
                                                   sqlite3_column_blob(st, 1));
        ck_assert_ptr_nonnull(r->key);
        r->payload_null = sqlite3_column_type(st, 2) == SQLITE_NULL;
        if (!r->payload_null) {
            r->rec = millom__v1__changelog_record__unpack(NULL, (size_t)sqlite3_column_bytes(st, 2),
                                                          sqlite3_column_blob(st, 2));
            ck_assert_ptr_nonnull(r->rec);
        }
    }
    sqlite3_finalize(st);
    return n_rows;
}

static int64_t max_outbox_id(sqlite3 *db) {
    return query_int(db, "SELECT coalesce(max(id), 0) FROM outbox");
}

/* The value of a named column in a record, or NULL when absent. */
static const Millom__V1__ChangelogValue *col(const Millom__V1__ChangelogRecord *r,
                                             const char *name) {
    for (size_t i = 0; i < r->n_columns; i++)
        if (r->columns[i]->name && strcmp(r->columns[i]->name, name) == 0)
            return r->columns[i]->value;
    return NULL;
}

static void assert_int_col(const Millom__V1__ChangelogRecord *r, const char *name, int64_t want) {
    const Millom__V1__ChangelogValue *v = col(r, name);
    ck_assert_msg(v != NULL, "record has no column %s", name);
    ck_assert_int_eq(v->value_case, MILLOM__V1__CHANGELOG_VALUE__VALUE_INTEGER);
    ck_assert_int_eq(v->integer, want);
}

static void assert_text_col(const Millom__V1__ChangelogRecord *r, const char *name,
                            const char *want) {
    const Millom__V1__ChangelogValue *v = col(r, name);
    ck_assert_msg(v != NULL, "record has no column %s", name);
    ck_assert_int_eq(v->value_case, MILLOM__V1__CHANGELOG_VALUE__VALUE_TEXT);
    ck_assert_str_eq(v->text, want);
}

static long counter(const char *name) { return metric_value(metric_counter(name, "test", NULL)); }

/* A's side of the pipeline: producer + outbox relay on path_a. */
typedef struct {
    kafka_producer *producer;
    outbox_relay *relay;
} relay_side;

static relay_side relay_begin(void) {
    char err[512];
    relay_side s;
    s.producer = kafka_producer_new("test-changelog", 0, err, sizeof err);
    ck_assert_msg(s.producer != NULL, "producer: %s", err);
    s.relay = outbox_relay_start(path_a, s.producer);
    ck_assert_ptr_nonnull(s.relay);
    return s;
}

static void relay_end(relay_side *s) {
    outbox_relay_stop(s->relay);
    kafka_producer_free(s->producer);
}

static changelog_follower *follow(const char *path) {
    char err[512] = "";
    changelog_follower *f = changelog_follower_start(path, &spec, err, sizeof err);
    ck_assert_msg(f != NULL, "follower: %s", err);
    return f;
}

static changelog_follower *follow_b(void) { return follow(path_b); }

/* Everything A committed is in Kafka, and B applied every partition. */
static void sync_b(relay_side *s, changelog_follower *f) {
    ck_assert_int_eq(outbox_flush(s->relay, db_a, WAIT_MS), 0);
    for (int p = 0; p < N_PARTS; p++)
        ck_assert_msg(changelog_follower_catch_up(f, p, WAIT_MS) == 0, "catch up [%d]", p);
}

static const char *const things_dump =
    "SELECT k, v, note, cl_version, cl_partition FROM things ORDER BY k";
static const char *const events_dump =
    "SELECT uid, what, cl_version, cl_partition FROM events WHERE uid NOT LIKE 'local%' "
    "ORDER BY uid";

static void assert_same(const char *sql) {
    char a[8192], b[8192];
    dump(db_a, sql, a, sizeof a);
    dump(db_b, sql, b, sizeof b);
    ck_assert_str_eq(a, b);
}

/* --------------------------------------------------------------- tests */

START_TEST(capture_stamps_rows_and_fills_the_outbox) {
    int64_t mark = max_outbox_id(db_a);

    /* INSERT: stamped with the handled partition and a version; one record. */
    changelog_set_partition(2);
    exec(db_a, "INSERT INTO things (k, v, note) VALUES ('a', 1, 'first')");
    changelog_set_partition(-1);
    ck_assert_int_eq(query_int(db_a, "SELECT cl_partition FROM things WHERE k = 'a'"), 2);
    int64_t v1 = query_int(db_a, "SELECT cl_version FROM things WHERE k = 'a'");
    ck_assert_int_gt(v1, 0);
    int n = read_outbox(mark);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(rows[0].topic, topic);
    ck_assert_int_eq(rows[0].partition, 2);
    ck_assert_ptr_nonnull(rows[0].rec);
    ck_assert_str_eq(rows[0].rec->table, "things");
    ck_assert_int_eq(rows[0].rec->version, v1);
    assert_text_col(rows[0].rec, "k", "a");
    assert_int_col(rows[0].rec, "v", 1);
    assert_text_col(rows[0].rec, "note", "first");
    assert_int_col(rows[0].rec, "cl_version", v1);
    assert_int_col(rows[0].rec, "cl_partition", 2);
    ck_assert_str_eq(rows[0].key->table, "things");
    ck_assert_uint_eq(rows[0].key->n_values, 1);
    ck_assert_str_eq(rows[0].key->values[0]->text, "a");

    /* UPDATE: a higher version, exactly one more record, same partition
     * even when another partition is being handled. */
    mark = max_outbox_id(db_a);
    changelog_set_partition(1);
    exec(db_a, "UPDATE things SET v = 2, note = NULL WHERE k = 'a'");
    changelog_set_partition(-1);
    int64_t v2 = query_int(db_a, "SELECT cl_version FROM things WHERE k = 'a'");
    ck_assert_int_gt(v2, v1);
    ck_assert_int_eq(query_int(db_a, "SELECT cl_partition FROM things WHERE k = 'a'"), 2);
    n = read_outbox(mark);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(rows[0].partition, 2);
    ck_assert_ptr_nonnull(rows[0].rec);
    ck_assert_int_eq(rows[0].rec->version, v2);
    assert_int_col(rows[0].rec, "v", 2);
    const Millom__V1__ChangelogValue *note = col(rows[0].rec, "note");
    ck_assert_ptr_nonnull(note);
    ck_assert_int_eq(note->value_case, MILLOM__V1__CHANGELOG_VALUE__VALUE__NOT_SET);

    /* DELETE: a tombstone keyed by table and key, on the row's partition. */
    mark = max_outbox_id(db_a);
    exec(db_a, "DELETE FROM things WHERE k = 'a'");
    n = read_outbox(mark);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(rows[0].payload_null, 1);
    ck_assert_ptr_null(rows[0].rec);
    ck_assert_int_eq(rows[0].partition, 2);
    ck_assert_str_eq(rows[0].key->table, "things");
    ck_assert_uint_eq(rows[0].key->n_values, 1);
    ck_assert_int_eq(rows[0].key->values[0]->value_case, MILLOM__V1__CHANGELOG_VALUE__VALUE_TEXT);
    ck_assert_str_eq(rows[0].key->values[0]->text, "a");

    /* Rowid table: a random 32-hex uid is the key; the local id is not
     * replicated. */
    mark = max_outbox_id(db_a);
    changelog_set_partition(3);
    exec(db_a, "INSERT INTO events (what) VALUES ('boot')");
    changelog_set_partition(-1);
    char uid[64];
    dump(db_a, "SELECT uid FROM events WHERE what = 'boot'", uid, sizeof uid);
    ck_assert_uint_eq(strlen(uid), 33); /* 32 hex + ';' */
    uid[32] = '\0';
    ck_assert_uint_eq(strspn(uid, "0123456789abcdef"), 32);
    ck_assert_int_eq(query_int(db_a, "SELECT cl_partition FROM events WHERE what = 'boot'"), 3);
    int64_t ev = query_int(db_a, "SELECT cl_version FROM events WHERE what = 'boot'");
    ck_assert_int_gt(ev, 0);
    /* The last record is the row as stored (uid, partition, version). */
    n = read_outbox(mark);
    ck_assert_int_ge(n, 1);
    const outbox_row *last = &rows[n - 1];
    ck_assert_int_eq(last->partition, 3);
    ck_assert_ptr_nonnull(last->rec);
    ck_assert_str_eq(last->rec->table, "events");
    ck_assert_int_eq(last->rec->version, ev);
    assert_text_col(last->rec, "uid", uid);
    assert_text_col(last->rec, "what", "boot");
    assert_int_col(last->rec, "cl_partition", 3);
    ck_assert_ptr_null(col(last->rec, "id"));
    ck_assert_str_eq(last->key->table, "events");
    ck_assert_uint_eq(last->key->n_values, 1);
    ck_assert_str_eq(last->key->values[0]->text, uid);
    /* ... and the only one: an insert is one change. */
    ck_assert_msg(n == 1,
                  "an events INSERT added %d outbox rows (want 1); kafka_partition of "
                  "the first: %d",
                  n, rows[0].partition);

    /* A given uid is kept, also one record. */
    mark = max_outbox_id(db_a);
    exec(db_a, "INSERT INTO events (what, uid) VALUES ('given', 'u-given')");
    ck_assert_int_eq(query_int(db_a, "SELECT count(*) FROM events WHERE uid = 'u-given'"), 1);
    ck_assert_int_eq(read_outbox(mark), 1);
}
END_TEST

START_TEST(follower_restores_a_copy) {
    relay_side s = relay_begin();
    changelog_follower *f = follow_b();
    /* A local-only events row in B, so B's ids differ from A's. */
    exec(db_b, "INSERT INTO events (what, uid) VALUES ('b only', 'local-b')");

    changelog_set_partition(0);
    exec(db_a, "INSERT INTO things (k, v, note) VALUES ('p0', 10, 'zero')");
    exec(db_a, "INSERT INTO things (k, v, note) VALUES ('gone', 99, 'bye')");
    exec(db_a, "INSERT INTO events (what) VALUES ('e0')");
    changelog_set_partition(3);
    exec(db_a, "INSERT INTO things (k, v, note) VALUES ('p3', 30, 'three')");
    exec(db_a, "INSERT INTO events (what) VALUES ('e3')");
    changelog_set_partition(-1);
    exec(db_a, "UPDATE things SET v = 31, note = NULL WHERE k = 'p3'");
    exec(db_a, "UPDATE things SET v = 11 WHERE k = 'p0'");
    exec(db_a, "DELETE FROM things WHERE k = 'gone'");
    outbox_relay_notify(s.relay);
    sync_b(&s, f);

    assert_same(things_dump);
    assert_same(events_dump);
    ck_assert_int_eq(query_int(db_b, "SELECT count(*) FROM things WHERE k = 'gone'"), 0);
    ck_assert_int_eq(query_int(db_b, "SELECT v FROM things WHERE k = 'p3'"), 31);
    ck_assert_int_eq(query_int(db_b, "SELECT count(*) FROM events"), 3);
    /* Replicated events rows got B's own ids (after the local row). */
    ck_assert_int_eq(
        query_int(db_b, "SELECT count(*) FROM events WHERE id = 1 AND uid = 'local-b'"), 1);
    char a_ids[256], b_ids[256];
    dump(db_a, "SELECT id FROM events ORDER BY uid", a_ids, sizeof a_ids);
    dump(db_b, "SELECT id FROM events WHERE uid <> 'local-b' ORDER BY uid", b_ids, sizeof b_ids);
    ck_assert_str_ne(a_ids, b_ids);
    /* The follower's writes are not captured (B has no triggers) and A's
     * outbox drained. */
    ck_assert_int_eq(query_int(db_b, "SELECT count(*) FROM outbox"), 0);
    ck_assert_int_eq(query_int(db_a, "SELECT count(*) FROM outbox"), 0);

    changelog_follower_stop(f);
    relay_end(&s);
}
END_TEST

START_TEST(newest_version_wins) {
    relay_side s = relay_begin();
    changelog_follower *f = follow_b();
    changelog_set_partition(1);
    exec(db_a, "INSERT INTO things (k, v, note) VALUES ('x', 1, 'from a')");
    changelog_set_partition(-1);
    outbox_relay_notify(s.relay);
    sync_b(&s, f);
    ck_assert_int_eq(query_int(db_b, "SELECT v FROM things WHERE k = 'x'"), 1);

    /* B's copy gets a version far above anything A's clock will give. */
    int64_t high = changelog_clock_next() + 1000LL * 1000 * 1000 * 1000;
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE things SET v = 777, note = 'b wins', cl_version = %lld WHERE k = 'x'",
             (long long)high);
    exec(db_b, sql);

    long stale0 = counter("millom_changelog_stale_total");
    exec(db_a, "UPDATE things SET v = 2, note = 'a again' WHERE k = 'x'");
    ck_assert_int_lt(query_int(db_a, "SELECT cl_version FROM things WHERE k = 'x'"), high);
    outbox_relay_notify(s.relay);
    sync_b(&s, f);

    ck_assert_int_eq(query_int(db_b, "SELECT v FROM things WHERE k = 'x'"), 777);
    ck_assert_int_eq(query_int(db_b, "SELECT cl_version FROM things WHERE k = 'x'"), high);
    char note[64];
    dump(db_b, "SELECT note FROM things WHERE k = 'x'", note, sizeof note);
    ck_assert_str_eq(note, "b wins;");
    ck_assert_int_eq(counter("millom_changelog_stale_total") - stale0, 1);

    changelog_follower_stop(f);
    relay_end(&s);
}
END_TEST

START_TEST(positions_persist_across_followers) {
    relay_side s = relay_begin();
    changelog_follower *f = follow_b();
    changelog_set_partition(0);
    exec(db_a, "INSERT INTO things (k, v) VALUES ('old0', 1)");
    exec(db_a, "INSERT INTO things (k, v) VALUES ('old1', 1)");
    changelog_set_partition(2);
    exec(db_a, "INSERT INTO things (k, v) VALUES ('old2', 1)");
    changelog_set_partition(-1);
    outbox_relay_notify(s.relay);
    sync_b(&s, f);
    changelog_follower_stop(f);

    /* One position per partition, at the end of what was applied. */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM changelog_positions WHERE topic = '%s'", topic);
    ck_assert_int_eq(query_int(db_b, sql), N_PARTS);
    snprintf(sql, sizeof sql,
             "SELECT next_offset FROM changelog_positions WHERE topic = '%s' AND partition = 0",
             topic);
    ck_assert_int_eq(query_int(db_b, sql), 2);
    snprintf(sql, sizeof sql,
             "SELECT next_offset FROM changelog_positions WHERE topic = '%s' AND partition = 2",
             topic);
    ck_assert_int_eq(query_int(db_b, sql), 1);

    /* B's copy of an old row changes at a version below A's record: a
     * re-read of the old records would overwrite it. */
    exec(db_b, "UPDATE things SET v = -5, cl_version = 1 WHERE k = 'old0'");

    changelog_set_partition(0);
    exec(db_a, "INSERT INTO things (k, v) VALUES ('new0', 2)");
    changelog_set_partition(-1);
    exec(db_a, "UPDATE things SET v = 3 WHERE k = 'old2'");
    ck_assert_int_eq(outbox_flush(s.relay, db_a, WAIT_MS), 0);

    long applied0 = counter("millom_changelog_applied_total");
    long stale0 = counter("millom_changelog_stale_total");
    f = follow_b();
    sync_b(&s, f);
    ck_assert_int_eq(query_int(db_b, "SELECT v FROM things WHERE k = 'new0'"), 2);
    ck_assert_int_eq(query_int(db_b, "SELECT v FROM things WHERE k = 'old2'"), 3);
    ck_assert_int_eq(query_int(db_b, "SELECT v FROM things WHERE k = 'old0'"), -5);
    ck_assert_int_eq(counter("millom_changelog_applied_total") - applied0, 2);
    ck_assert_int_eq(counter("millom_changelog_stale_total") - stale0, 0);
    snprintf(sql, sizeof sql,
             "SELECT next_offset FROM changelog_positions WHERE topic = '%s' AND partition = 0",
             topic);
    ck_assert_int_eq(query_int(db_b, sql), 3);

    changelog_follower_stop(f);
    relay_end(&s);
}
END_TEST

START_TEST(own_records_are_skipped) {
    /* A's records carry A's origin; B's file has another one. */
    const char *origin_a = changelog_origin(sqlite3_db_filename(db_a, "main"));
    ck_assert_ptr_nonnull(origin_a);
    ck_assert_str_eq(origin_a, changelog_origin(sqlite3_db_filename(db_a, "main")));
    ck_assert_str_ne(origin_a, changelog_origin(sqlite3_db_filename(db_b, "main")));
    changelog_set_partition(1);
    exec(db_a, "INSERT INTO things (k, v) VALUES ('mine', 1)");
    changelog_set_partition(-1);
    ck_assert_int_eq(read_outbox(0), 1);
    ck_assert_str_eq(rows[0].rec->origin, origin_a);

    relay_side s = relay_begin();
    long own0 = counter("millom_changelog_own_total");
    long applied0 = counter("millom_changelog_applied_total");
    changelog_follower *f = follow(path_a);
    outbox_relay_notify(s.relay);
    ck_assert_int_eq(outbox_flush(s.relay, db_a, WAIT_MS), 0);
    ck_assert_int_eq(changelog_follower_catch_up(f, 1, WAIT_MS), 0);
    ck_assert_int_eq(counter("millom_changelog_own_total") - own0, 1);
    ck_assert_int_eq(counter("millom_changelog_applied_total") - applied0, 0);
    /* No transaction: no position saved for a batch of own records. */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM changelog_positions WHERE topic = '%s'", topic);
    ck_assert_int_eq(query_int(db_a, sql), 0);

    /* A record from another writer (another origin) on the same topic is
     * applied to A: made by hand, as another instance's relay would send it. */
    Millom__V1__ChangelogValue key_value = MILLOM__V1__CHANGELOG_VALUE__INIT;
    key_value.value_case = MILLOM__V1__CHANGELOG_VALUE__VALUE_TEXT;
    key_value.text = "theirs";
    Millom__V1__ChangelogValue *key_values[] = {&key_value};
    Millom__V1__ChangelogKey key = MILLOM__V1__CHANGELOG_KEY__INIT;
    key.table = "things";
    key.n_values = 1;
    key.values = key_values;
    int64_t version = changelog_clock_next();
    Millom__V1__ChangelogValue v_k = key_value, v_v = MILLOM__V1__CHANGELOG_VALUE__INIT,
                               v_version = MILLOM__V1__CHANGELOG_VALUE__INIT;
    v_v.value_case = v_version.value_case = MILLOM__V1__CHANGELOG_VALUE__VALUE_INTEGER;
    v_v.integer = 7;
    v_version.integer = version;
    Millom__V1__ChangelogColumn c_k = MILLOM__V1__CHANGELOG_COLUMN__INIT,
                                c_v = MILLOM__V1__CHANGELOG_COLUMN__INIT,
                                c_version = MILLOM__V1__CHANGELOG_COLUMN__INIT;
    c_k.name = "k";
    c_k.value = &v_k;
    c_v.name = "v";
    c_v.value = &v_v;
    c_version.name = "cl_version";
    c_version.value = &v_version;
    Millom__V1__ChangelogColumn *cols[] = {&c_k, &c_v, &c_version};
    Millom__V1__ChangelogRecord rec = MILLOM__V1__CHANGELOG_RECORD__INIT;
    rec.table = "things";
    rec.version = version;
    rec.origin = "another-writer";
    rec.n_columns = 3;
    rec.columns = cols;
    uint8_t kbuf[256], vbuf[512];
    size_t klen = millom__v1__changelog_key__pack(&key, kbuf);
    size_t vlen = millom__v1__changelog_record__pack(&rec, vbuf);
    ck_assert_int_eq(
        kafka_produce(s.producer, topic, 1, (const char *)kbuf, klen, vbuf, vlen, NULL, 0), 0);
    ck_assert_int_eq(kafka_producer_flush(s.producer, WAIT_MS), 0);
    ck_assert_int_eq(changelog_follower_catch_up(f, 1, WAIT_MS), 0);
    ck_assert_int_eq(query_int(db_a, "SELECT v FROM things WHERE k = 'theirs'"), 7);
    ck_assert_int_eq(counter("millom_changelog_applied_total") - applied0, 1);
    ck_assert_int_eq(query_int(db_a, sql), N_PARTS); /* saved with that write */

    changelog_follower_stop(f);
    relay_end(&s);
}
END_TEST

START_TEST(ownership_selects_owned_rows) {
    /* Plain connection: explicit partitions, -1 is everyone's. */
    exec(db_b, "INSERT INTO things (k, cl_partition) VALUES ('none', -1), ('p0', 0), ('p1', 1),"
               " ('p2', 2), ('p3', 3)");
    const char *owned_sql =
        "SELECT k FROM things WHERE " CHANGELOG_OWNED_SQL("cl_partition") " ORDER BY k";
    char got[256];

    dump(db_b, owned_sql, got, sizeof got);
    ck_assert_str_eq(got, "none;");

    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    rd_kafka_topic_partition_list_add(l, topic, 0);
    rd_kafka_topic_partition_list_add(l, topic, 2);
    rd_kafka_topic_partition_list_add(l, "some.other.topic", 1); /* not ours */
    ck_assert_int_eq(changelog_own(db_b, l, topic, 1), 0);
    ck_assert_int_eq(changelog_own(db_b, l, topic, 1), 0); /* idempotent */
    dump(db_b, owned_sql, got, sizeof got);
    ck_assert_str_eq(got, "none;p0;p2;");
    rd_kafka_topic_partition_list_destroy(l);

    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0);
    ck_assert_int_eq(changelog_own(db_b, l, topic, 0), 0);
    rd_kafka_topic_partition_list_destroy(l);
    dump(db_b, owned_sql, got, sizeof got);
    ck_assert_str_eq(got, "none;p2;");

    ck_assert_int_eq(changelog_disown_all(db_b), 0);
    dump(db_b, owned_sql, got, sizeof got);
    ck_assert_str_eq(got, "none;");
    ck_assert_int_eq(query_int(db_b, "SELECT count(*) FROM changelog_owned"), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("changelog");
    TCase *tc = tcase_create("changelog");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, capture_stamps_rows_and_fills_the_outbox);
    tcase_add_test(tc, follower_restores_a_copy);
    tcase_add_test(tc, newest_version_wins);
    tcase_add_test(tc, positions_persist_across_followers);
    tcase_add_test(tc, ownership_selects_owned_rows);
    tcase_add_test(tc, own_records_are_skipped);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    test_mock_cluster_stop(mock);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
