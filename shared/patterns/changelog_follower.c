/* The reading half of the changelog (see changelog.h): a thread that
 * consumes every partition of a changelog topic without a consumer group
 * and applies each record to the local SQLite copy, newest version wins,
 * together with its position, one transaction per batch. */
#include "shared/plumbing/settings.h"
#include "shared/patterns/changelog.h"
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"
#include "millom/v1/changelog.pb-c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_MAX 500
#define METADATA_WAIT_MS 30000

/* What the follower knows of one tracked table. */
typedef struct {
    const changelog_table *spec;
    char **columns; /* replicated columns, schema order */
    int n_columns;
    const char *const *keys; /* the uid column, or the key columns */
    const char *uid_key[2];
    char *upsert_sig; /* column names of the cached upsert */
    sqlite3_stmt *upsert;
    sqlite3_stmt *remove;
} table_state;

struct changelog_follower {
    int restore_timeout_ms; /* MILLOM_CHANGELOG_RESTORE_TIMEOUT_MS, read at the start */
    const changelog_spec *spec;
    sqlite3 *db;
    int checkpoints_attached; /* db reports its commits to the checkpointer */
    rd_kafka_t *rk;
    int n_parts;
    int64_t *applied; /* next offset to apply, per partition (under mu) */
    table_state *tables;
    sqlite3_stmt *save_position;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    atomic_int stop;
    /* Set by a catch-up that found a position past the end of the topic;
     * the follower thread checks every partition and clears it (under mu,
     * with a broadcast). */
    atomic_int check_past_end;
    metric *m_applied, *m_stale, *m_own, *m_failed, *m_catch_up;
    const char *origin; /* what our own process writes into this file's records */
};

static table_state *table_for(changelog_follower *f, const char *name) {
    for (size_t i = 0; i < f->spec->n_tables; i++)
        if (name && strcmp(f->tables[i].spec->table, name) == 0) return &f->tables[i];
    return NULL;
}

static int has_column(const table_state *t, const char *name) {
    for (int i = 0; i < t->n_columns; i++)
        if (strcmp(t->columns[i], name) == 0) return 1;
    return 0;
}

static int is_key(const table_state *t, const char *name) {
    for (const char *const *k = t->keys; *k; k++)
        if (strcmp(*k, name) == 0) return 1;
    return 0;
}

static void bind_value(sqlite3_stmt *st, int i, const Millom__V1__ChangelogValue *v) {
    if (!v) {
        sqlite3_bind_null(st, i);
        return;
    }
    switch (v->value_case) {
    case MILLOM__V1__CHANGELOG_VALUE__VALUE_INTEGER: sqlite3_bind_int64(st, i, v->integer); break;
    case MILLOM__V1__CHANGELOG_VALUE__VALUE_REAL: sqlite3_bind_double(st, i, v->real); break;
    case MILLOM__V1__CHANGELOG_VALUE__VALUE_TEXT:
        sqlite3_bind_text(st, i, v->text, -1, SQLITE_TRANSIENT);
        break;
    case MILLOM__V1__CHANGELOG_VALUE__VALUE_BLOB:
        sqlite3_bind_blob(st, i, v->blob.data, (int)v->blob.len, SQLITE_TRANSIENT);
        break;
    default: sqlite3_bind_null(st, i);
    }
}

/* The upsert for the record's columns (those the local table has):
 * inserts a missing row, replaces an older one, leaves a newer one. The
 * statement is cached while records keep the same column list. NULL if
 * the record lacks a key column or cl_version. */
static sqlite3_stmt *upsert_for(changelog_follower *f, table_state *t,
                                const Millom__V1__ChangelogRecord *r, int *used) {
    char sig[4096];
    size_t o = 0;
    int n_keys = 0, n_used = 0, has_version = 0;
    for (size_t i = 0; i < r->n_columns; i++) {
        const char *name = r->columns[i]->name;
        used[i] = name && has_column(t, name);
        if (!used[i]) continue;
        n_used++;
        n_keys += is_key(t, name);
        has_version |= strcmp(name, "cl_version") == 0;
        int w = snprintf(sig + o, sizeof sig - o, "%s,", name);
        if (w < 0 || (size_t)w >= sizeof sig - o) return NULL;
        o += (size_t)w;
    }
    int want_keys = 0;
    for (const char *const *k = t->keys; *k; k++) want_keys++;
    if (n_keys != want_keys || !has_version || n_used == 0) return NULL;
    if (t->upsert && t->upsert_sig && strcmp(t->upsert_sig, sig) == 0) {
        sqlite3_reset(t->upsert);
        sqlite3_clear_bindings(t->upsert);
        return t->upsert;
    }
    sqlite3_finalize(t->upsert);
    t->upsert = NULL;
    free(t->upsert_sig);
    t->upsert_sig = NULL;

    size_t cap = 256 + r->n_columns * 160;
    char *sql = malloc(cap);
    if (!sql) return NULL;
    size_t n = (size_t)snprintf(sql, cap, "INSERT INTO \"%s\" (", t->spec->table);
    int first = 1;
    for (size_t i = 0; i < r->n_columns; i++) {
        if (!used[i]) continue;
        n += (size_t)snprintf(sql + n, cap - n, "%s\"%s\"", first ? "" : ", ", r->columns[i]->name);
        first = 0;
    }
    n += (size_t)snprintf(sql + n, cap - n, ") VALUES (");
    for (int i = 0; i < n_used; i++) n += (size_t)snprintf(sql + n, cap - n, "%s?", i ? ", " : "");
    n += (size_t)snprintf(sql + n, cap - n, ") ON CONFLICT (");
    for (const char *const *k = t->keys; *k; k++)
        n += (size_t)snprintf(sql + n, cap - n, "%s\"%s\"", k == t->keys ? "" : ", ", *k);
    n += (size_t)snprintf(sql + n, cap - n, ") DO UPDATE SET ");
    first = 1;
    for (size_t i = 0; i < r->n_columns; i++) {
        if (!used[i] || is_key(t, r->columns[i]->name)) continue;
        n += (size_t)snprintf(sql + n, cap - n, "%s\"%s\" = excluded.\"%s\"", first ? "" : ", ",
                              r->columns[i]->name, r->columns[i]->name);
        first = 0;
    }
    snprintf(sql + n, cap - n, " WHERE excluded.cl_version > \"%s\".cl_version", t->spec->table);
    int rc = sqlite3_prepare_v3(f->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &t->upsert, NULL);
    if (rc != SQLITE_OK) log_error("changelog follower: %s: %s", sql, sqlite3_errmsg(f->db));
    free(sql);
    if (rc != SQLITE_OK) return NULL;
    t->upsert_sig = strdup(sig);
    return t->upsert;
}

/* APPLY_OWN: written by this process, so its row is here already. */
typedef enum { APPLY_OK, APPLY_STALE, APPLY_SKIPPED, APPLY_OWN, APPLY_DB_ERROR } apply_result;

/* The batch's transaction, begun by the first record that writes: a batch
 * of this process's own records touches no database at all. */
static int batch_begin(changelog_follower *f, int *in_txn) {
    if (*in_txn) return 0;
    if (sqlite3_exec(f->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return -1;
    *in_txn = 1;
    return 0;
}

static apply_result apply_tombstone(changelog_follower *f, const rd_kafka_message_t *m,
                                    int *in_txn) {
    Millom__V1__ChangelogKey *key =
        millom__v1__changelog_key__unpack(NULL, m->key_len, (const uint8_t *)m->key);
    if (!key) return APPLY_SKIPPED;
    table_state *t = table_for(f, key->table);
    apply_result res = APPLY_SKIPPED;
    if (t) {
        size_t want = 0;
        for (const char *const *k = t->keys; *k; k++) want++;
        if (key->n_values == want && batch_begin(f, in_txn) != 0) {
            res = APPLY_DB_ERROR;
        } else if (key->n_values == want) {
            if (!t->remove) {
                char sql[512];
                size_t n =
                    (size_t)snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE ", t->spec->table);
                int i = 0;
                for (const char *const *k = t->keys; *k; k++, i++)
                    n += (size_t)snprintf(sql + n, sizeof sql - n, "%s\"%s\" = ?", i ? " AND " : "",
                                          *k);
                if (n < sizeof sql)
                    sqlite3_prepare_v3(f->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &t->remove, NULL);
            }
            if (t->remove) {
                sqlite3_reset(t->remove);
                for (size_t i = 0; i < key->n_values; i++)
                    bind_value(t->remove, (int)i + 1, key->values[i]);
                int rc = sqlite3_step(t->remove);
                res = rc == SQLITE_DONE ? APPLY_OK : APPLY_DB_ERROR;
                sqlite3_reset(t->remove);
            }
        }
    }
    millom__v1__changelog_key__free_unpacked(key, NULL);
    return res;
}

static apply_result apply_one(changelog_follower *f, const rd_kafka_message_t *m, int *in_txn) {
    if (!m->payload) return apply_tombstone(f, m, in_txn);
    Millom__V1__ChangelogRecord *r =
        millom__v1__changelog_record__unpack(NULL, m->len, (const uint8_t *)m->payload);
    if (!r) return APPLY_SKIPPED;
    changelog_clock_observe(r->version);
    /* Tombstones carry no origin and are applied even when our own: rare. */
    if (f->origin && r->origin && strcmp(r->origin, f->origin) == 0) {
        millom__v1__changelog_record__free_unpacked(r, NULL);
        return APPLY_OWN;
    }
    if (batch_begin(f, in_txn) != 0) {
        millom__v1__changelog_record__free_unpacked(r, NULL);
        return APPLY_DB_ERROR;
    }
    table_state *t = table_for(f, r->table);
    apply_result res = APPLY_SKIPPED;
    int *used = t ? calloc(r->n_columns ? r->n_columns : 1, sizeof *used) : NULL;
    sqlite3_stmt *st = used ? upsert_for(f, t, r, used) : NULL;
    if (st) {
        int b = 1;
        for (size_t i = 0; i < r->n_columns; i++)
            if (used[i]) bind_value(st, b++, r->columns[i]->value);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            res = sqlite3_changes(f->db) > 0 ? APPLY_OK : APPLY_STALE;
        else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
            /* Another unique key of the row clashes with a local row (a race
             * of two owners during a move): keep the local one. */
            log_warn("changelog follower: %s record not applied: %s", r->table,
                     sqlite3_errmsg(f->db));
            res = APPLY_SKIPPED;
        } else {
            res = APPLY_DB_ERROR;
        }
        sqlite3_reset(st);
    } else if (t) {
        log_warn("changelog follower: %s record without its key or version, skipped", r->table);
    }
    free(used);
    millom__v1__changelog_record__free_unpacked(r, NULL);
    return res;
}

/* Re-assigns every partition at the positions applied so far (after a
 * batch rolled back). */
static void reassign(changelog_follower *f) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(f->n_parts);
    pthread_mutex_lock(&f->mu);
    for (int p = 0; p < f->n_parts; p++)
        rd_kafka_topic_partition_list_add(l, f->spec->topic, p)->offset =
            f->applied[p] > 0 ? f->applied[p] : RD_KAFKA_OFFSET_BEGINNING;
    pthread_mutex_unlock(&f->mu);
    rd_kafka_resp_err_t e = rd_kafka_assign(f->rk, l);
    if (e) log_error("changelog follower: assign: %s", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

/* Applies one batch: the message m and whatever else is ready. The
 * positions reached are saved with the batch's writes; a batch of only
 * our own records saves none (after a restart those records are read
 * again, under a new origin, and found stale). */
static void apply_batch(changelog_follower *f, rd_kafka_message_t *m) {
    int64_t *next = malloc((size_t)f->n_parts * sizeof *next);
    if (!next) {
        rd_kafka_message_destroy(m);
        reassign(f);
        return;
    }
    int in_txn = 0;
    pthread_mutex_lock(&f->mu);
    memcpy(next, f->applied, (size_t)f->n_parts * sizeof *next);
    pthread_mutex_unlock(&f->mu);
    long applied = 0, stale = 0, skipped = 0, own = 0;
    int failed = 0;
    for (int n = 0; m && n < BATCH_MAX;) {
        if (!m->err && m->partition >= 0 && m->partition < f->n_parts) {
            apply_result r = apply_one(f, m, &in_txn);
            if (r == APPLY_DB_ERROR) {
                log_error("changelog follower: apply: %s", sqlite3_errmsg(f->db));
                failed = 1;
                rd_kafka_message_destroy(m);
                break;
            }
            applied += r == APPLY_OK;
            stale += r == APPLY_STALE;
            skipped += r == APPLY_SKIPPED;
            own += r == APPLY_OWN;
            next[m->partition] = m->offset + 1;
            n++;
        } else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* librdkafka retries by itself; say so at most every 10 s. */
            static _Thread_local int64_t last_warn;
            if (mono_ms() - last_warn > 10000) {
                log_warn("changelog follower: %s", rd_kafka_message_errstr(m));
                last_warn = mono_ms();
            }
        }
        rd_kafka_message_destroy(m);
        m = rd_kafka_consumer_poll(f->rk, 0);
    }
    if (m && !failed) {
        /* BATCH_MAX reached with one more in hand: it is not applied, so
         * make the next poll return it again. */
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, f->spec->topic, m->partition)->offset = m->offset;
        rd_kafka_error_t *e = rd_kafka_seek_partitions(f->rk, l, 5000);
        if (e) rd_kafka_error_destroy(e);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_message_destroy(m);
    }
    for (int p = 0; in_txn && !failed && p < f->n_parts; p++) {
        sqlite3_reset(f->save_position);
        sqlite3_bind_int(f->save_position, 1, p);
        sqlite3_bind_int64(f->save_position, 2, next[p]);
        if (sqlite3_step(f->save_position) != SQLITE_DONE) failed = 1;
        sqlite3_reset(f->save_position);
    }
    if (failed || (in_txn && sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)) {
        if (in_txn) sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL);
        free(next);
        reassign(f);
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    metric_add(f->m_applied, applied);
    metric_add(f->m_stale, stale);
    metric_add(f->m_own, own);
    metric_add(f->m_failed, skipped);
    pthread_mutex_lock(&f->mu);
    memcpy(f->applied, next, (size_t)f->n_parts * sizeof *next);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    free(next);
}

/* A position past the end of its partition means the topic was created
 * anew and is shorter than what was applied (devbroker keeps topics in
 * memory: after its restart every changelog is empty). Such a partition
 * restarts from the beginning of the new topic; its records are versioned,
 * so applying them over the local rows changes only what is newer. Runs in
 * the follower thread, so no batch is under way. */
static void restart_partitions_past_end(changelog_follower *f) {
    int moved = 0;
    for (int p = 0; p < f->n_parts; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(f->rk, f->spec->topic, p, &lo, &hi, 5000)) continue;
        pthread_mutex_lock(&f->mu);
        if (f->applied[p] > hi) {
            log_warn("changelog %s [%d]: position %lld is past the end of the topic (%lld), "
                     "which was created anew (devbroker restarted?); reading it from the "
                     "beginning",
                     f->spec->topic, p, (long long)f->applied[p], (long long)hi);
            f->applied[p] = lo;
            moved = 1;
        }
        pthread_mutex_unlock(&f->mu);
    }
    if (moved) reassign(f);
    pthread_mutex_lock(&f->mu);
    atomic_store(&f->check_past_end, 0);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void *follower_thread(void *arg) {
    service_thread_name("changelog");
    changelog_follower *f = arg;
    while (!atomic_load(&f->stop) && !service_stopping()) {
        if (atomic_load(&f->check_past_end)) restart_partitions_past_end(f);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, 100);
        if (m) apply_batch(f, m);
    }
    return NULL;
}

/* ------------------------------------------------------------ life cycle */

static void tables_free(changelog_follower *f) {
    for (size_t i = 0; f->tables && i < f->spec->n_tables; i++) {
        table_state *t = &f->tables[i];
        changelog_columns_free(t->columns, t->n_columns);
        free(t->upsert_sig);
        sqlite3_finalize(t->upsert);
        sqlite3_finalize(t->remove);
    }
    free(f->tables);
}

static void follower_free(changelog_follower *f) {
    if (f->rk) {
        rd_kafka_consumer_close(f->rk);
        rd_kafka_destroy(f->rk);
    }
    tables_free(f);
    sqlite3_finalize(f->save_position);
    if (f->checkpoints_attached) store_checkpoint_detach(f->db);
    if (f->db) sqlite3_close(f->db);
    free(f->applied);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int load_tables(changelog_follower *f, char *err, size_t errlen) {
    f->tables = calloc(f->spec->n_tables, sizeof *f->tables);
    if (!f->tables) return -1;
    for (size_t i = 0; i < f->spec->n_tables; i++) {
        table_state *t = &f->tables[i];
        t->spec = &f->spec->tables[i];
        t->uid_key[0] = t->spec->uid_column;
        t->keys = t->spec->uid_column ? t->uid_key : t->spec->key_columns;
        t->n_columns = changelog_table_columns(f->db, t->spec, &t->columns);
        if (t->n_columns <= 0) {
            t->n_columns = 0;
            snprintf(err, errlen, "changelog follower: no table %s", t->spec->table);
            return -1;
        }
    }
    return 0;
}

/* Partition count of the topic, waiting for it to exist. */
static int partition_count(rd_kafka_t *rk, const char *topic) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) return -1;
    int n = -1;
    int64_t give_up = mono_ms() + METADATA_WAIT_MS;
    while (n <= 0 && mono_ms() < give_up && !service_stopping()) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && !md->topics[0].err) n = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        if (n <= 0) {
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

changelog_follower *changelog_follower_start(const char *db_path, const changelog_spec *spec,
                                             char *err, size_t errlen) {
    changelog_follower *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->spec = spec;
    settings_reader set = SETTINGS_INIT;
    f->restore_timeout_ms =
        (int)settings_ms(&set, "MILLOM_CHANGELOG_RESTORE_TIMEOUT_MS", 60000, 1, 86399999);
    if (!settings_ok(&set)) free(f);
    settings_exit_on_error(&set);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (sqlite3_open_v2(db_path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "changelog follower: open %s: %s", db_path,
                 f->db ? sqlite3_errmsg(f->db) : "?");
        follower_free(f);
        return NULL;
    }
    sqlite3_busy_timeout(f->db, 5000);
    sqlite3_exec(f->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL); /* as store.c */
    store_set_cache_size(f->db);
    store_checkpoint_attach(f->db); /* not SQLite's inline checkpoints (outbox.c) */
    f->checkpoints_attached = 1;
    f->origin = changelog_origin(sqlite3_db_filename(f->db, "main"));
    if (load_tables(f, err, errlen) ||
        sqlite3_prepare_v2(f->db,
                           "INSERT INTO changelog_positions (topic, partition, next_offset) "
                           "VALUES (?3, ?1, ?2) ON CONFLICT (topic, partition) DO UPDATE SET "
                           "next_offset = excluded.next_offset",
                           -1, &f->save_position, NULL) != SQLITE_OK) {
        if (!*err) snprintf(err, errlen, "changelog follower: %s", sqlite3_errmsg(f->db));
        follower_free(f);
        return NULL;
    }
    sqlite3_bind_text(f->save_position, 3, spec->topic, -1, SQLITE_STATIC);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[512];
    if (kafka_conf_common(conf, "changelog-follower", err, errlen) ||
        kafka_conf_background(conf, err, errlen) ||
        /* librdkafka wants a group id even for assign(); the follower never
         * subscribes or commits (its positions live in SQLite), so the
         * group never forms. */
        rd_kafka_conf_set(conf, "group.id", "millom-changelog-follower", e, sizeof e) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof e) ||
        /* A stored position that compaction or retention has passed must
         * restart from the oldest record, never skip to the end. */
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", e, sizeof e) ||
        rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", e, sizeof e) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "false", e, sizeof e)) {
        if (!*err) snprintf(err, errlen, "changelog follower: %s", e);
        rd_kafka_conf_destroy(conf);
        follower_free(f);
        return NULL;
    }
    f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!f->rk) {
        snprintf(err, errlen, "changelog follower: %s", e);
        rd_kafka_conf_destroy(conf);
        follower_free(f);
        return NULL;
    }
    rd_kafka_poll_set_consumer(f->rk);
    f->n_parts = partition_count(f->rk, spec->topic);
    if (f->n_parts <= 0) {
        snprintf(err, errlen, "changelog follower: topic %s not found", spec->topic);
        follower_free(f);
        return NULL;
    }
    f->applied = calloc((size_t)f->n_parts, sizeof *f->applied);
    if (!f->applied) {
        snprintf(err, errlen, "out of memory");
        follower_free(f);
        return NULL;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(f->db,
                           "SELECT partition, next_offset FROM changelog_positions WHERE topic = ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, spec->topic, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int p = sqlite3_column_int(st, 0);
            if (p >= 0 && p < f->n_parts) f->applied[p] = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
    }
    /* Versions already stored outrank new ones only if the clock knows them. */
    for (size_t i = 0; i < spec->n_tables; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT max(cl_version) FROM \"%s\"", spec->tables[i].table);
        if (sqlite3_prepare_v2(f->db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                changelog_clock_observe(sqlite3_column_int64(st, 0));
            sqlite3_finalize(st);
        }
    }
    /* max(cl_version) read every page of the tables (no index on it): give
     * those pages back, the follower's own work touches a few. With
     * SQLite's default cache this scan alone was 2 MB of
     * purchase-executor's peak once the file held ~10,000 purchases. */
    sqlite3_db_release_memory(f->db);
    f->m_applied = metric_counter("millom_changelog_applied_total",
                                  "Changelog records applied to the local state.", NULL);
    f->m_stale = metric_counter("millom_changelog_stale_total",
                                "Changelog records older than the local row (not applied).", NULL);
    f->m_own = metric_counter("millom_changelog_own_total",
                              "Changelog records this process wrote (its rows have them).", NULL);
    f->m_failed = metric_counter("millom_changelog_skipped_total",
                                 "Changelog records that could not be applied.", NULL);
    f->m_catch_up = metric_histogram("millom_changelog_catch_up_seconds",
                                     "Time to restore an assigned partition.", NULL);
    reassign(f);
    int rc = pthread_create(&f->thread, NULL, follower_thread, f);
    if (rc) {
        snprintf(err, errlen, "changelog follower thread: %s", strerror(rc));
        follower_free(f);
        return NULL;
    }
    log_info("changelog follower: %s, %d partitions", spec->topic, f->n_parts);
    return f;
}

int changelog_follower_catch_up(changelog_follower *f, int32_t partition, int timeout_ms) {
    if (!f || partition < 0 || partition >= f->n_parts) return -1;
    int64_t t0 = mono_ms();
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(f->rk, f->spec->topic, partition, &lo, &hi, timeout_ms);
    if (e) {
        log_error("changelog %s [%d]: high watermark: %s", f->spec->topic, (int)partition,
                  rd_kafka_err2str(e));
        return -1;
    }
    int rc = 0;
    pthread_mutex_lock(&f->mu);
    /* Past the end: either records written since the watermark query, or
     * a topic created anew; the follower thread tells which (and then
     * restarts the partition from its beginning). */
    if (f->applied[partition] > hi) atomic_store(&f->check_past_end, 1);
    while (f->applied[partition] < hi || atomic_load(&f->check_past_end)) {
        int64_t left = t0 + timeout_ms - mono_ms();
        if (left <= 0) {
            rc = -1;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long wait_ms = left < 100 ? (long)left : 100;
        ts.tv_nsec += wait_ms * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    }
    int64_t at = f->applied[partition];
    pthread_mutex_unlock(&f->mu);
    metric_observe_ms(f->m_catch_up, (double)(mono_ms() - t0));
    if (rc)
        log_error("changelog %s [%d]: not restored within %d ms (at %lld of %lld)", f->spec->topic,
                  (int)partition, timeout_ms, (long long)at, (long long)hi);
    else
        log_info("changelog %s [%d]: restored up to offset %lld in %lld ms", f->spec->topic,
                 (int)partition, (long long)hi, (long long)(mono_ms() - t0));
    return rc;
}

int changelog_take_over(changelog_follower *f, sqlite3 *db,
                        const rd_kafka_topic_partition_list_t *parts, const char *topic) {
    int failed = 0, timeout_ms = f->restore_timeout_ms;
    for (int i = 0; i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, topic) == 0 &&
            changelog_follower_catch_up(f, parts->elems[i].partition, timeout_ms) != 0)
            failed++;
    changelog_own(db, parts, topic, 1);
    return failed;
}

void changelog_follower_stop(changelog_follower *f) {
    if (!f) return;
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    follower_free(f);
}
