/* Transactional outbox: see outbox.h.
 *
 * The relay's delivery bookkeeping lives in a heap "batch" with its own
 * lock, separate from the relay: if a stop gives up waiting for delivery
 * reports (broker gone), the relay frees itself and the batch is freed by
 * the last delivery callback instead (kafka_producer_free purges, so every
 * callback does run). */
#include "shared/plumbing/settings.h"
#include "shared/patterns/outbox.h"
#include "shared/plumbing/stmt_cache.h"
#include "shared/plumbing/store.h"
#include "shared/plumbing/clock.h"
#include "shared/plumbing/correlator.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"

/* Rows produced and awaited at once; their payloads stay copied in the
 * producer until delivered (500 kept 0.37 MB of purchase-executor's heap
 * peak there). */
#define BATCH_MAX 128
#define IDLE_WAKE_MS 100
#define FAILURE_PAUSE_MS 500
#define FAILURE_PAUSE_MAX_MS 10000 /* after repeated failures (a full disk) */
#define STOP_WAIT_MS 10000         /* MILLOM_OUTBOX_STOP_WAIT_MS */

const char *const outbox_migration_sql = "CREATE TABLE outbox ("
                                         " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                         " topic TEXT NOT NULL,"
                                         " key BLOB,"
                                         " payload BLOB,"
                                         " created_ms INTEGER NOT NULL)";

const char *const outbox_correlator_migration_sql = "ALTER TABLE outbox ADD COLUMN correlator TEXT";

int outbox_add(sqlite3 *db, const char *topic, const void *key, size_t klen, const void *payload,
               size_t plen) {
    return outbox_add_correlated(db, correlator_current(), topic, key, klen, payload, plen);
}

int outbox_add_correlated(sqlite3 *db, const char *correlator, const char *topic, const void *key,
                          size_t klen, const void *payload, size_t plen) {
    static const char insert_sql[] = "INSERT INTO outbox (topic, key, payload, created_ms, "
                                     "correlator) VALUES (?, ?, ?, ?, ?)";
    sqlite3_stmt *st = stmt_get(db, insert_sql);
    if (!st) return sqlite3_errcode(db) != SQLITE_OK ? sqlite3_errcode(db) : SQLITE_ERROR;
    int rc;
    sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
    if (klen > 0)
        sqlite3_bind_blob(st, 2, key, (int)klen, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    /* A zero-length blob, not NULL, for an empty payload. */
    sqlite3_bind_blob(st, 3, plen ? payload : "", (int)plen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms());
    if (correlator && *correlator)
        sqlite3_bind_text(st, 5, correlator, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    rc = sqlite3_step(st);
    stmt_done(db, st);
    if (rc != SQLITE_DONE) {
        log_error("outbox insert: %s", sqlite3_errmsg(db));
        return rc;
    }
    return SQLITE_OK;
}

/* ------------------------------------------------------------ a batch */

enum { SLOT_IN_FLIGHT = 0, SLOT_DELIVERED, SLOT_FAILED };

typedef struct outbox_batch outbox_batch;

typedef struct {
    outbox_batch *batch;
    int64_t id;
    int state;
} slot;

struct outbox_batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;   /* produced, no delivery report yet */
    int abandoned; /* the relay stopped waiting: the last callback frees */
    size_t n;      /* slots in use */
    slot slots[BATCH_MAX];
};

static outbox_batch *batch_new(void) {
    outbox_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->mu, NULL);
    /* await_batch's deadlines are CLOCK_MONOTONIC (clock_deadline_in): a
     * default (CLOCK_REALTIME) condition variable took them as long past
     * and the relay spun until the last delivery report. */
    clock_cond_init(&b->cv);
    return b;
}

static void batch_free(outbox_batch *b) {
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static void on_delivery(void *arg, rd_kafka_resp_err_t err) {
    slot *s = arg;
    outbox_batch *b = s->batch;
    pthread_mutex_lock(&b->mu);
    s->state = err ? SLOT_FAILED : SLOT_DELIVERED;
    b->pending--;
    int free_it = b->abandoned && b->pending == 0;
    /* The relay waits for the whole batch: one wake-up, at the last. */
    if (!free_it && b->pending == 0) pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (free_it) batch_free(b);
}

/* ------------------------------------------------------------ the relay */

struct outbox_relay {
    sqlite3 *db;
    kafka_producer *producer;
    int has_partition; /* the table has kafka_partition */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int notified;
    atomic_int stop;
    atomic_long depth;
    long stop_wait_ms;
    int delete_failures; /* consecutive settle_batch delete failures */
    metric *depth_gauge;
    metric *relayed;
};

/* Waits until notified, stopped or `ms` passed. */
static void relay_wait(outbox_relay *r, long ms) {
    struct timespec ts;
    clock_deadline_in(&ts, ms);
    pthread_mutex_lock(&r->mu);
    while (!r->notified && !atomic_load(&r->stop)) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) break;
    }
    r->notified = 0;
    pthread_mutex_unlock(&r->mu);
}

static void update_depth(outbox_relay *r) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM outbox", -1, &st, NULL) != SQLITE_OK)
        return;
    if (sqlite3_step(st) == SQLITE_ROW) {
        long n = (long)sqlite3_column_int64(st, 0);
        atomic_store(&r->depth, n);
        metric_set(r->depth_gauge, n);
    }
    sqlite3_finalize(st);
}

/* Reads up to BATCH_MAX rows in id order and produces them into b. Stops
 * at the first row that cannot be queued (so later rows never overtake
 * it). Returns the rows read, or -1 on a database error. */
static int produce_batch(outbox_relay *r, outbox_batch *b, int *queue_failed) {
    sqlite3_stmt *st;
    *queue_failed = 0;
    /* kafka_partition exists where changelog_migration_sql ran: changelog
     * records go to the partition their row belongs to. */
    const char *sql = r->has_partition
                          ? "SELECT id, topic, key, payload, kafka_partition, correlator "
                            "FROM outbox ORDER BY id LIMIT ?"
                          : "SELECT id, topic, key, payload, -1, correlator FROM outbox "
                            "ORDER BY id LIMIT ?";
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("outbox relay: %s", sqlite3_errmsg(r->db));
        return -1;
    }
    sqlite3_bind_int(st, 1, BATCH_MAX);
    int rows = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        slot *s = &b->slots[b->n];
        s->batch = b;
        s->id = sqlite3_column_int64(st, 0);
        s->state = SLOT_IN_FLIGHT;
        const char *topic = (const char *)sqlite3_column_text(st, 1);
        const void *key = sqlite3_column_blob(st, 2);
        size_t klen = (size_t)sqlite3_column_bytes(st, 2);
        const void *payload = sqlite3_column_blob(st, 3);
        /* SQLite hands out NULL for a zero-length blob too; only an SQL
         * NULL (a changelog tombstone) is produced as a null value. */
        if (!payload && sqlite3_column_type(st, 3) != SQLITE_NULL) payload = "";
        size_t plen = (size_t)sqlite3_column_bytes(st, 3);
        int32_t partition = (int32_t)sqlite3_column_int(st, 4);
        /* The event goes out with the request id it was written under
         * (kafka_produce_cb adds the thread's current one as a header). */
        correlator_set((const char *)sqlite3_column_text(st, 5));
        pthread_mutex_lock(&b->mu);
        b->pending++;
        b->n++;
        pthread_mutex_unlock(&b->mu);
        if (!topic || kafka_produce_cb(r->producer, topic, partition, klen ? key : NULL, klen,
                                       payload, plen, on_delivery, s) != 0) {
            pthread_mutex_lock(&b->mu);
            b->pending--;
            s->state = SLOT_FAILED;
            pthread_mutex_unlock(&b->mu);
            *queue_failed = 1;
            break;
        }
    }
    correlator_clear();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_error("outbox relay read: %s", sqlite3_errmsg(r->db));
        rows = rows ? rows : -1;
    }
    sqlite3_finalize(st);
    return rows;
}

/* Waits for every delivery report of b. Returns 0, or -1 when it gave up
 * (stopping and stop_wait_ms passed): b is then owned by the callbacks. */
static int await_batch(outbox_relay *r, outbox_batch *b) {
    int64_t give_up = 0;
    pthread_mutex_lock(&b->mu);
    while (b->pending > 0) {
        if (atomic_load(&r->stop)) {
            int64_t now = mono_ms();
            if (!give_up) give_up = now + r->stop_wait_ms;
            if (now >= give_up) {
                b->abandoned = 1;
                log_warn("outbox relay: %d event(s) without delivery report at stop; "
                         "they stay in the outbox and go out again on the next start",
                         b->pending);
                pthread_mutex_unlock(&b->mu);
                return -1;
            }
        }
        struct timespec ts;
        clock_deadline_in(&ts, 100);
        pthread_cond_timedwait(&b->cv, &b->mu, &ts);
    }
    pthread_mutex_unlock(&b->mu);
    return 0;
}

/* Deletes the delivered rows of b. Returns how many failed delivery, or
 * (at least 1) when the rows could not be deleted (a full disk). */
static int settle_batch(outbox_relay *r, outbox_batch *b) {
    int failed = 0, delivered = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->slots[i].state == SLOT_DELIVERED)
            delivered++;
        else
            failed++;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK && !failed && b->n) {
        /* All delivered: one range. Ids only grow and a batch holds every
         * row between its first and last id (it read them in id order). */
        rc =
            sqlite3_prepare_v2(r->db, "DELETE FROM outbox WHERE id BETWEEN ? AND ?", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, b->slots[0].id);
            sqlite3_bind_int64(st, 2, b->slots[b->n - 1].id);
            if (sqlite3_step(st) != SQLITE_DONE) rc = SQLITE_ERROR;
        }
    } else if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(r->db, "DELETE FROM outbox WHERE id = ?", -1, &st, NULL);
        for (size_t i = 0; i < b->n && rc == SQLITE_OK; i++) {
            if (b->slots[i].state != SLOT_DELIVERED) continue;
            sqlite3_bind_int64(st, 1, b->slots[i].id);
            if (sqlite3_step(st) != SQLITE_DONE) rc = SQLITE_ERROR;
            sqlite3_reset(st);
        }
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK) rc = sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        /* Delivered but not deleted: they go out once more (consumers
         * de-duplicate). Never lost. Counted as a failure, so the relay
         * pauses (longer each time) instead of resending them every round
         * while the disk stays full; logged once per streak. */
        if (r->delete_failures++ == 0)
            log_warn("outbox relay: cannot delete %d delivered event(s): %s; they go out "
                     "again after a pause",
                     delivered, sqlite3_errmsg(r->db));
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        return failed + 1;
    }
    if (r->delete_failures) log_info("outbox relay: deleting delivered events works again");
    r->delete_failures = 0;
    metric_add(r->relayed, delivered);
    return failed;
}

/* Relays until the table is empty or something failed. 0 = drained,
 * 1 = a failure (pause before trying again), -1 = abandoned at stop. */
static int relay_pass(outbox_relay *r) {
    for (;;) {
        outbox_batch *b = batch_new();
        if (!b) return 1;
        int queue_failed = 0;
        int rows = produce_batch(r, b, &queue_failed);
        if (rows <= 0) { /* empty, or the read failed before any row */
            batch_free(b);
            return rows < 0 ? 1 : 0;
        }
        if (await_batch(r, b) != 0) return -1;
        int failed = settle_batch(r, b);
        batch_free(b);
        if (failed || queue_failed) return 1;
        if (rows < BATCH_MAX) return 0;
    }
}

static void *relay_thread(void *arg) {
    service_thread_name("outbox-relay");
    outbox_relay *r = arg;
    for (;;) {
        int stopping = atomic_load(&r->stop);
        int rc = relay_pass(r);
        update_depth(r);
        if (rc < 0 || stopping) break;
        long pause = FAILURE_PAUSE_MS;
        for (int i = 1; i < r->delete_failures && pause < FAILURE_PAUSE_MAX_MS; i++) pause *= 2;
        if (pause > FAILURE_PAUSE_MAX_MS) pause = FAILURE_PAUSE_MAX_MS;
        relay_wait(r, rc > 0 ? pause : IDLE_WAKE_MS);
    }
    return NULL;
}

outbox_relay *outbox_relay_start(const char *db_path, kafka_producer *p) {
    outbox_relay *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->producer = p;
    settings_reader set = SETTINGS_INIT;
    r->stop_wait_ms = settings_ms(&set, "MILLOM_OUTBOX_STOP_WAIT_MS", STOP_WAIT_MS, 0, 3600000);
    if (!settings_ok(&set)) free(r);
    settings_exit_on_error(&set);
    int rc = sqlite3_open_v2(db_path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        log_error("outbox relay: open %s: %s", db_path,
                  r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
        sqlite3_close(r->db);
        free(r);
        return NULL;
    }
    sqlite3_busy_timeout(r->db, 5000);
    store_set_cache_size(r->db); /* as store.c: not SQLite's default 2 MB */
    /* As on the service's own connections (store.c): in WAL mode NORMAL
     * syncs at checkpoints only. The default (FULL) synced the WAL on every
     * delete of a delivered batch, holding the write lock that long. */
    sqlite3_exec(r->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    /* Checkpoints by the file's checkpointer thread, as on store_open's
     * connections: with SQLite's default hook, every delete of a delivered
     * batch ran a checkpoint (and its fdatasyncs) itself while the WAL
     * stayed past 1,000 pages: 7% of purchase-executor's CPU. */
    store_checkpoint_attach(r->db);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM outbox LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
        log_error("outbox relay: %s has no outbox table: %s", db_path, sqlite3_errmsg(r->db));
        store_checkpoint_detach(r->db);
        sqlite3_close(r->db);
        free(r);
        return NULL;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(r->db, "SELECT kafka_partition FROM outbox LIMIT 0", -1, &st, NULL) ==
        SQLITE_OK) {
        r->has_partition = 1;
        sqlite3_finalize(st);
    }
    r->depth_gauge = metric_gauge("millom_outbox_depth", "Events waiting in the outbox.", NULL);
    r->relayed =
        metric_counter("millom_outbox_relayed_total", "Outbox events delivered to Kafka.", NULL);
    pthread_mutex_init(&r->mu, NULL);
    clock_cond_init(&r->cv);
    rc = pthread_create(&r->thread, NULL, relay_thread, r);
    if (rc) {
        log_error("outbox relay thread: %s", strerror(rc));
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        store_checkpoint_detach(r->db);
        sqlite3_close(r->db);
        free(r);
        return NULL;
    }
    return r;
}

void outbox_relay_notify(outbox_relay *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    int pending = r->notified; /* the relay will see it without a wake-up */
    r->notified = 1;
    pthread_mutex_unlock(&r->mu);
    /* After unlocking: woken under the lock, the relay would only block
     * again on it (see wake-ups in group_commit.c). */
    if (!pending) pthread_cond_signal(&r->cv);
}

int outbox_flush(outbox_relay *r, sqlite3 *db, int timeout_ms) {
    if (!r) return 0;
    sqlite3_int64 target = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM outbox", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW) target = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (target == 0) return 0;
    if (sqlite3_prepare_v2(db, "SELECT EXISTS (SELECT 1 FROM outbox WHERE id <= ?)", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, target);
    outbox_relay_notify(r);
    int64_t give_up = mono_ms() + timeout_ms;
    int rc = -1;
    for (;;) {
        int waiting = 1;
        if (sqlite3_step(st) == SQLITE_ROW) waiting = sqlite3_column_int(st, 0);
        sqlite3_reset(st);
        if (!waiting) {
            rc = 0;
            break;
        }
        if (mono_ms() >= give_up) break;
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    sqlite3_finalize(st);
    return rc;
}

long outbox_relay_depth(const outbox_relay *r) { return r ? atomic_load(&r->depth) : 0; }

void outbox_relay_stop(outbox_relay *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stop, 1);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    store_checkpoint_detach(r->db);
    sqlite3_close(r->db);
    free(r);
}
