/* The writing half of the changelog (see changelog.h): the version clock,
 * the SQL functions the capture triggers call, the triggers themselves and
 * the ownership table. */
#include "shared/patterns/changelog.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/crypto.h"
#include "shared/plumbing/log.h"
#include "millom/v1/changelog.pb-c.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const changelog_migration_sql =
    "CREATE TABLE changelog_owned (partition INTEGER PRIMARY KEY);"
    "CREATE TABLE changelog_positions ("
    " topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,"
    " PRIMARY KEY (topic, partition));"
    "ALTER TABLE outbox ADD COLUMN kafka_partition INTEGER NOT NULL DEFAULT -1;";

/* ---------------------------------------------------------------- clock */

/* Hybrid logical clock: wall-clock µs, but always above the last version
 * given or seen, so a new owner's writes outrank what it restored even if
 * its clock is behind the previous owner's. */
static _Atomic int64_t clock_last;

static int64_t wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t changelog_clock_next(void) {
    int64_t last = atomic_load(&clock_last), next;
    do {
        int64_t now = wall_us();
        next = now > last ? now : last + 1;
    } while (!atomic_compare_exchange_weak(&clock_last, &last, next));
    return next;
}

void changelog_clock_observe(int64_t version) {
    int64_t last = atomic_load(&clock_last);
    while (version > last && !atomic_compare_exchange_weak(&clock_last, &last, version)) {
    }
}

/* Origins: a random id per database file and process, made on first use
 * and kept until exit (a service opens a handful of files). The follower
 * of a file skips the records its own process wrote into that file. Per
 * file, not per process, so two databases in one process (the unit tests)
 * still replicate to each other; per process, so two instances started
 * from copies of one file never take each other's records for their own. */
#define MAX_ORIGINS 16
static struct {
    char *path;
    char id[37];
} origins[MAX_ORIGINS];
static size_t n_origins;
static pthread_mutex_t origins_lock = PTHREAD_MUTEX_INITIALIZER;

const char *changelog_origin(const char *db_file) {
    const char *id = NULL;
    pthread_mutex_lock(&origins_lock);
    for (size_t i = 0; !id && i < n_origins; i++)
        if (strcmp(origins[i].path, db_file) == 0) id = origins[i].id;
    if (!id && n_origins < MAX_ORIGINS && (origins[n_origins].path = strdup(db_file))) {
        crypto_uuid(origins[n_origins].id);
        id = origins[n_origins++].id;
    }
    pthread_mutex_unlock(&origins_lock);
    return id; /* NULL: out of slots; records then carry no origin */
}

static _Thread_local int32_t current_partition = -1;

void changelog_set_partition(int32_t partition) { current_partition = partition; }

int32_t changelog_get_partition(void) { return current_partition; }

/* -------------------------------------------------------- SQL functions */

static void fn_version(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_int64(ctx, changelog_clock_next());
}

static void fn_partition(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_int(ctx, current_partition);
}

static void fn_now_ms(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_int64(ctx, wall_us() / 1000);
}

/* The writing thread's request id (correlator.h), NULL when none: a
 * changelog record carries the id of the request that changed the row. */
static void fn_correlator(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    const char *id = correlator_current();
    if (*id)
        sqlite3_result_text(ctx, id, -1, SQLITE_TRANSIENT);
    else
        sqlite3_result_null(ctx);
}

/* Fills v from an SQL value. Text and blobs point into the sqlite3_value,
 * valid for the duration of the function call. */
static void value_from_sql(Millom__V1__ChangelogValue *v, sqlite3_value *s) {
    millom__v1__changelog_value__init(v);
    switch (sqlite3_value_type(s)) {
    case SQLITE_INTEGER:
        v->value_case = MILLOM__V1__CHANGELOG_VALUE__VALUE_INTEGER;
        v->integer = sqlite3_value_int64(s);
        break;
    case SQLITE_FLOAT:
        v->value_case = MILLOM__V1__CHANGELOG_VALUE__VALUE_REAL;
        v->real = sqlite3_value_double(s);
        break;
    case SQLITE_TEXT:
        v->value_case = MILLOM__V1__CHANGELOG_VALUE__VALUE_TEXT;
        v->text = (char *)sqlite3_value_text(s);
        break;
    case SQLITE_BLOB:
        v->value_case = MILLOM__V1__CHANGELOG_VALUE__VALUE_BLOB;
        v->blob.len = (size_t)sqlite3_value_bytes(s);
        v->blob.data = (uint8_t *)sqlite3_value_blob(s);
        break;
    default: break; /* NULL: no field set */
    }
}

/* Makes the packed message the function's BLOB result. */
static void result_packed(sqlite3_context *ctx, const ProtobufCMessage *m) {
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    protobuf_c_message_pack(m, buf);
    sqlite3_result_blob(ctx, buf, (int)len, free);
}

/* changelog_key(table, key values...) -> packed ChangelogKey */
static void fn_key(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (argc < 2) {
        sqlite3_result_error(ctx, "changelog_key(table, key...)", -1);
        return;
    }
    size_t n = (size_t)argc - 1;
    Millom__V1__ChangelogValue *vals = calloc(n, sizeof *vals);
    Millom__V1__ChangelogValue **ptrs = calloc(n, sizeof *ptrs);
    if (!vals || !ptrs) {
        free(vals);
        free(ptrs);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        value_from_sql(&vals[i], argv[i + 1]);
        ptrs[i] = &vals[i];
    }
    Millom__V1__ChangelogKey key = MILLOM__V1__CHANGELOG_KEY__INIT;
    key.table = (char *)sqlite3_value_text(argv[0]);
    key.n_values = n;
    key.values = ptrs;
    result_packed(ctx, &key.base);
    free(vals);
    free(ptrs);
}

/* changelog_row(table, version, name1, value1, ...) -> packed ChangelogRecord */
static void fn_row(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (argc < 2 || (argc - 2) % 2 != 0) {
        sqlite3_result_error(ctx, "changelog_row(table, version, name, value...)", -1);
        return;
    }
    size_t n = (size_t)(argc - 2) / 2;
    Millom__V1__ChangelogColumn *cols = calloc(n ? n : 1, sizeof *cols);
    Millom__V1__ChangelogValue *vals = calloc(n ? n : 1, sizeof *vals);
    Millom__V1__ChangelogColumn **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!cols || !vals || !ptrs) {
        free(cols);
        free(vals);
        free(ptrs);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        millom__v1__changelog_column__init(&cols[i]);
        cols[i].name = (char *)sqlite3_value_text(argv[2 + 2 * i]);
        value_from_sql(&vals[i], argv[3 + 2 * i]);
        cols[i].value = &vals[i];
        ptrs[i] = &cols[i];
    }
    Millom__V1__ChangelogRecord rec = MILLOM__V1__CHANGELOG_RECORD__INIT;
    rec.table = (char *)sqlite3_value_text(argv[0]);
    rec.version = sqlite3_value_int64(argv[1]);
    rec.origin = sqlite3_user_data(ctx);
    rec.n_columns = n;
    rec.columns = ptrs;
    result_packed(ctx, &rec.base);
    free(cols);
    free(vals);
    free(ptrs);
}

/* -------------------------------------------------------------- triggers */

/* A growing string; `failed` sticks once an allocation failed. */
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static int listed(const char *const *list, const char *name) {
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0) return 1;
    return 0;
}

/* Table and column names come from the service's own spec and schema,
 * never from input; they are still quoted as identifiers. */
static void build_triggers(sbuf *b, const char *topic, const changelog_table *t, char **cols,
                           size_t n_cols) {
    const char *T = t->table;
    char match_new[512] = "", match_t[512] = "";
    if (t->uid_column) {
        snprintf(match_new, sizeof match_new, "rowid = NEW.rowid");
        snprintf(match_t, sizeof match_t, "t.rowid = NEW.rowid");
    } else {
        size_t o1 = 0, o2 = 0;
        for (const char *const *k = t->key_columns; *k; k++) {
            o1 += (size_t)snprintf(match_new + o1, sizeof match_new - o1, "%s\"%s\" = NEW.\"%s\"",
                                   o1 ? " AND " : "", *k, *k);
            o2 += (size_t)snprintf(match_t + o2, sizeof match_t - o2, "%st.\"%s\" = NEW.\"%s\"",
                                   o2 ? " AND " : "", *k, *k);
            if (o1 >= sizeof match_new || o2 >= sizeof match_t) {
                b->failed = 1;
                return;
            }
        }
    }
    /* The statement that puts the row, as stored now, into the outbox. */
    sbuf emit = {0};
    sb_add(&emit,
           "INSERT INTO outbox (topic, key, payload, kafka_partition, created_ms, correlator) "
           "SELECT '%s', changelog_key('%s'",
           topic, T);
    const char *const uid_key[] = {t->uid_column, NULL};
    const char *const *keys = t->uid_column ? uid_key : t->key_columns;
    for (const char *const *k = keys; *k; k++) sb_add(&emit, ", t.\"%s\"", *k);
    sb_add(&emit, "), changelog_row('%s', t.cl_version", T);
    for (size_t i = 0; i < n_cols; i++) sb_add(&emit, ", '%s', t.\"%s\"", cols[i], cols[i]);
    sb_add(&emit,
           "), t.cl_partition, changelog_now_ms(), changelog_correlator() FROM \"%s\" t WHERE %s;",
           T, match_t);
    if (emit.failed) {
        free(emit.s);
        b->failed = 1;
        return;
    }

    sb_add(b,
           "CREATE TEMP TRIGGER IF NOT EXISTS \"changelog_ins_%s\" AFTER INSERT ON main.\"%s\" "
           "BEGIN ",
           T, T);
    /* One UPDATE that also changes cl_version: a separate one (say, for
     * the uid) would fire the update trigger and emit an extra record. */
    char uid_set[160] = "";
    if (t->uid_column)
        snprintf(uid_set, sizeof uid_set, "\"%s\" = coalesce(\"%s\", lower(hex(randomblob(16)))), ",
                 t->uid_column, t->uid_column);
    sb_add(b,
           "UPDATE \"%s\" SET %scl_version = changelog_version(), cl_partition = CASE WHEN "
           "cl_partition < 0 THEN changelog_partition() ELSE cl_partition END WHERE %s; %s END;",
           T, uid_set, match_new, emit.s);
    /* The version bump inside the triggers changes cl_version, so the
     * update trigger does not fire for it (WHEN). */
    sb_add(b,
           "CREATE TEMP TRIGGER IF NOT EXISTS \"changelog_upd_%s\" AFTER UPDATE ON main.\"%s\" "
           "WHEN NEW.cl_version IS OLD.cl_version BEGIN "
           "UPDATE \"%s\" SET cl_version = changelog_version() WHERE %s; %s END;",
           T, T, T, match_new, emit.s);
    sb_add(b,
           "CREATE TEMP TRIGGER IF NOT EXISTS \"changelog_del_%s\" AFTER DELETE ON main.\"%s\" "
           "BEGIN INSERT INTO outbox (topic, key, payload, kafka_partition, created_ms, "
           "correlator) VALUES ('%s', changelog_key('%s'",
           T, T, topic, T);
    for (const char *const *k = keys; *k; k++) sb_add(b, ", OLD.\"%s\"", *k);
    sb_add(b, "), NULL, OLD.cl_partition, changelog_now_ms(), changelog_correlator()); END;");
    free(emit.s);
}

int changelog_table_columns(sqlite3 *db, const changelog_table *t, char ***out) {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s')", t->table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    char **cols = NULL;
    int n = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name || listed(t->local_columns, name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **c = realloc(cols, (size_t)cap * sizeof *c);
            if (!c) break;
            cols = c;
        }
        cols[n] = strdup(name);
        if (cols[n]) n++;
    }
    sqlite3_finalize(st);
    *out = cols;
    return n;
}

void changelog_columns_free(char **cols, int n) {
    for (int i = 0; i < n; i++) free(cols[i]);
    free(cols);
}

int changelog_capture(sqlite3 *db, const changelog_spec *spec, char *err, size_t errlen) {
    int flags = SQLITE_UTF8;
    if (sqlite3_create_function(db, "changelog_version", 0, flags, NULL, fn_version, NULL, NULL) ||
        sqlite3_create_function(db, "changelog_partition", 0, flags, NULL, fn_partition, NULL,
                                NULL) ||
        sqlite3_create_function(db, "changelog_now_ms", 0, flags, NULL, fn_now_ms, NULL, NULL) ||
        sqlite3_create_function(db, "changelog_correlator", 0, flags, NULL, fn_correlator, NULL,
                                NULL) ||
        sqlite3_create_function(db, "changelog_key", -1, flags | SQLITE_DETERMINISTIC, NULL, fn_key,
                                NULL, NULL) ||
        sqlite3_create_function(db, "changelog_row", -1, flags | SQLITE_DETERMINISTIC,
                                (void *)changelog_origin(sqlite3_db_filename(db, "main")), fn_row,
                                NULL, NULL)) {
        snprintf(err, errlen, "changelog functions: %s", sqlite3_errmsg(db));
        return -1;
    }
    for (size_t i = 0; i < spec->n_tables; i++) {
        const changelog_table *t = &spec->tables[i];
        char **cols = NULL;
        int n = changelog_table_columns(db, t, &cols);
        int has_version = 0, has_partition = 0;
        for (int c = 0; c < n; c++) {
            has_version |= strcmp(cols[c], "cl_version") == 0;
            has_partition |= strcmp(cols[c], "cl_partition") == 0;
        }
        sbuf b = {0};
        if (n > 0 && has_version && has_partition)
            build_triggers(&b, spec->topic, t, cols, (size_t)n);
        changelog_columns_free(cols, n);
        if (n <= 0 || !has_version || !has_partition || b.failed || !b.s) {
            snprintf(err, errlen, "changelog: table %s missing or without cl_version/cl_partition",
                     t->table);
            free(b.s);
            return -1;
        }
        char *msg = NULL;
        int rc = sqlite3_exec(db, b.s, NULL, NULL, &msg);
        free(b.s);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "changelog triggers for %s: %s", t->table, msg ? msg : "?");
            sqlite3_free(msg);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- ownership */

int changelog_own(sqlite3 *db, const rd_kafka_topic_partition_list_t *parts, const char *topic,
                  int owned) {
    sqlite3_stmt *st;
    const char *sql = owned ? "INSERT OR IGNORE INTO changelog_owned (partition) VALUES (?)"
                            : "DELETE FROM changelog_owned WHERE partition = ?";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("changelog_own: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < parts->cnt; i++) {
        if (strcmp(parts->elems[i].topic, topic) != 0) continue;
        sqlite3_bind_int(st, 1, parts->elems[i].partition);
        if (sqlite3_step(st) != SQLITE_DONE) {
            log_error("changelog_own: %s", sqlite3_errmsg(db));
            rc = -1;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

int changelog_disown_all(sqlite3 *db) {
    return sqlite3_exec(db, "DELETE FROM changelog_owned", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}
