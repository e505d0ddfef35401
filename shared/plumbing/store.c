/* SQLite state with migrations. WAL with synchronous=NORMAL: a commit is
 * durable against a process crash (what a service restart needs); an OS
 * crash can lose the last transactions, never corrupt the file. */
#include "shared/plumbing/settings.h"
#include "shared/plumbing/store.h"
#include "shared/plumbing/stmt_cache.h"
#include "shared/plumbing/files.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files opened by this process, for store_ready(). Kept for the process's
 * lifetime (a handful of paths). */
static pthread_mutex_t opened_mu = PTHREAD_MUTEX_INITIALIZER;
static char **opened;
static size_t n_opened, cap_opened;

static void remember_path(const char *path) {
    if (!path || !*path || strcmp(path, ":memory:") == 0) return;
    pthread_mutex_lock(&opened_mu);
    for (size_t i = 0; i < n_opened; i++) {
        if (strcmp(opened[i], path) == 0) {
            pthread_mutex_unlock(&opened_mu);
            return;
        }
    }
    if (n_opened == cap_opened) {
        size_t cap = cap_opened ? cap_opened * 2 : 4;
        char **p = realloc(opened, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&opened_mu);
            return;
        }
        opened = p;
        cap_opened = cap;
    }
    char *copy = strdup(path);
    if (copy) opened[n_opened++] = copy;
    pthread_mutex_unlock(&opened_mu);
}

static int path_ready(const char *path) {
    sqlite3 *db = NULL;
    int ok = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 1000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            ok = 1;
        sqlite3_finalize(st);
    }
    if (!ok) log_warn("store %s not ready: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_close(db);
    return ok;
}

/* ------------------------------------------------------ write errors
 *
 * A full disk, an I/O error or a lock held too long fails a handler's
 * transaction; the handler leaves its message uncommitted (KAFKA_RETRY)
 * and it is retried with backoff. Meanwhile /readyz should say the
 * service cannot do its work, and say so until the disk can take writes
 * again. SQLite reports every failed statement to its global error log
 * (SQLITE_CONFIG_LOG), so one callback sees the errors of every statement
 * of the process without each caller reporting them; store_exec reports
 * too (BEGIN IMMEDIATE's SQLITE_BUSY is not logged by SQLite). */

static atomic_llong last_write_error_ms; /* mono_ms of the last one; 0: none */
static atomic_int write_errors_logged;   /* this episode was logged */

static int is_storage_error(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_BUSY ||
           primary == SQLITE_READONLY;
}

/* MILLOM_STORE_ERROR_READY_S, read when the first store opens. */
static long error_ready_ms_value = 10000;
static pthread_once_t error_ready_once = PTHREAD_ONCE_INIT;

static void read_error_ready(void) {
    error_ready_ms_value = setting_long("MILLOM_STORE_ERROR_READY_S", 10, 0, 86399) * 1000;
}

static long error_ready_ms(void) {
    pthread_once(&error_ready_once, read_error_ready);
    return error_ready_ms_value;
}

void store_note_error(int rc, const char *what) {
    if (!is_storage_error(rc)) return;
    atomic_store(&last_write_error_ms, (long long)mono_ms());
    if (atomic_exchange(&write_errors_logged, 1) == 0)
        log_error("store: %s (%s): not ready until the disk takes writes again", sqlite3_errstr(rc),
                  what && *what ? what : "sqlite");
}

static void sqlite_error_log(void *arg, int rc, const char *msg) {
    (void)arg;
    store_note_error(rc, msg);
}

static atomic_long default_heap_kb; /* store_default_heap_kb; 0: no budget */

void store_default_heap_kb(long kb) { atomic_store(&default_heap_kb, kb); }

/* Process-wide SQLite settings, accepted only before SQLite's first use in
 * the process (else SQLITE_MISUSE: then SQLite runs with its defaults):
 *   - the error log callback (store_note_error);
 *   - no bulk page-cache allocation per connection: SQLite otherwise
 *     allocates and touches room for 20 pages (~80 kB) when a connection
 *     first reads, 107 kB per connection in all for purchase-executor's
 *     file against 29 kB without; a service opens many connections
 *     (purchase-executor the lanes' shared ones, the writes thread, the
 *     follower, the relay, the retry thread...), and most read a few
 *     pages. Pages are still cached up to MILLOM_SQLITE_CACHE_KB, each
 *     allocated when first needed. */
static void configure_sqlite(void) {
    if (sqlite3_config(SQLITE_CONFIG_LOG, sqlite_error_log, NULL) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0) != SQLITE_OK)
        log_debug("store: SQLite was initialised already; its error log is not watched");
    /* One memory budget for all of the process's connections: past it,
     * SQLite reports memory pressure and a connection that needs a page
     * recycles its least recently used one instead of allocating another
     * (nothing fails; a page that left the cache is read again from the
     * kernel's page cache). MILLOM_SQLITE_CACHE_KB bounds each connection;
     * this bounds their sum, which otherwise grows with the connections a
     * service opens (store_default_heap_kb). */
    settings_reader set = SETTINGS_INIT;
    long heap_kb =
        settings_long(&set, "MILLOM_SQLITE_HEAP_KB", atomic_load(&default_heap_kb), 0, 1024 * 1024);
    settings_exit_on_error(&set);
    sqlite3_soft_heap_limit64((sqlite3_int64)heap_kb * 1024);
}
static pthread_once_t configure_once = PTHREAD_ONCE_INIT;

/* 0 when a 4 KiB file can be written and synced in dir, else the errno
 * (EROFS, ENOSPC, EACCES...). */
static int probe_dir(const char *dir) {
    char probe[600];
    snprintf(probe, sizeof probe, "%s/.store-probe-%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    static const char zeros[4096];
    int e = 0;
    if (write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros)
        e = errno ? errno : ENOSPC;
    else if (fsync(fd) != 0)
        e = errno;
    close(fd);
    unlink(probe);
    return e;
}

/* 1 when the directory of the file `path` takes a small write. */
static int dir_takes_writes(const char *path) {
    char dir[512];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    return probe_dir(dir) == 0;
}

int store_ready(void) {
    /* Copy the list so a slow check never holds up a store_open. */
    pthread_mutex_lock(&opened_mu);
    size_t n = n_opened;
    char **paths = n ? calloc(n, sizeof *paths) : NULL;
    if (n && !paths) {
        pthread_mutex_unlock(&opened_mu);
        return 0;
    }
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        if (!(paths[i] = strdup(opened[i]))) ok = 0;
    pthread_mutex_unlock(&opened_mu);
    for (size_t i = 0; i < n && ok; i++) ok = path_ready(paths[i]);
    /* After a write error: not ready while the directories refuse a small
     * write (errors are then noted again), nor until no error came for
     * MILLOM_STORE_ERROR_READY_S (default 10, longer than the consumer's
     * retry backoff, so a retried message that fails again keeps it so). */
    long long last = atomic_load(&last_write_error_ms);
    if (ok && last != 0) {
        for (size_t i = 0; i < n && ok; i++)
            if (!dir_takes_writes(paths[i])) {
                store_note_error(SQLITE_FULL, "the data directory refuses writes");
                ok = 0;
            }
        last = atomic_load(&last_write_error_ms);
        if (ok && (long long)mono_ms() - last < error_ready_ms()) ok = 0;
        if (ok && atomic_compare_exchange_strong(&last_write_error_ms, &last, 0) &&
            atomic_exchange(&write_errors_logged, 0))
            log_info("store: writes succeed again: ready");
    }
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
    return ok;
}

int store_exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        store_note_error(rc, sql);
        log_error("sqlite: %s (in: %.80s)", msg ? msg : sqlite3_errstr(rc), sql);
        sqlite3_free(msg);
    }
    return rc;
}

/* The connection whose batch this thread has open (store_batch_begin). */
static _Thread_local sqlite3 *batch_db;

static int in_batch(sqlite3 *db) { return db && db == batch_db && !sqlite3_get_autocommit(db); }

int store_begin(sqlite3 *db) {
    return store_exec(db, in_batch(db) ? "SAVEPOINT message" : "BEGIN IMMEDIATE");
}

int store_commit(sqlite3 *db) {
    return store_exec(db, in_batch(db) ? "RELEASE message" : "COMMIT");
}

void store_rollback(sqlite3 *db) {
    if (in_batch(db))
        sqlite3_exec(db, "ROLLBACK TO message; RELEASE message", NULL, NULL, NULL);
    else
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int store_batch_begin(sqlite3 *db) {
    int rc = store_exec(db, "BEGIN IMMEDIATE");
    batch_db = rc == SQLITE_OK ? db : NULL;
    return rc;
}

int store_batch_commit(sqlite3 *db) {
    batch_db = NULL;
    int rc = store_exec(db, "COMMIT");
    if (rc != SQLITE_OK) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

void store_batch_rollback(sqlite3 *db) {
    batch_db = NULL;
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static int user_version(sqlite3 *db) {
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static pthread_once_t cache_size_once = PTHREAD_ONCE_INIT;
static long cache_size_kb; /* MILLOM_SQLITE_CACHE_KB (512) */

static void read_cache_size(void) {
    settings_reader set = SETTINGS_INIT;
    cache_size_kb = settings_long(&set, "MILLOM_SQLITE_CACHE_KB", 512, 64, 1024 * 1024);
    settings_exit_on_error(&set);
}

int store_set_cache_size(sqlite3 *db) {
    pthread_once(&cache_size_once, read_cache_size);
    char cache_sql[64];
    snprintf(cache_sql, sizeof cache_sql, "PRAGMA cache_size=-%ld", cache_size_kb);
    return store_exec(db, cache_sql);
}

sqlite3 *store_open_path(const char *path, const char *const *migrations, size_t n_migrations,
                         char *err, size_t errlen) {
    pthread_once(&configure_once, configure_sqlite);
    pthread_once(&error_ready_once, read_error_ready);
    /* A read-only or full data directory: say so in one line before SQLite
     * fails on it with a vaguer message ("unable to open database file"). */
    if (strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0) {
        char dir[512];
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        int e = probe_dir(*dir ? dir : "/");
        if (e) {
            snprintf(err, errlen, "data dir %s cannot be written: %s", dir, strerror(e));
            return NULL;
        }
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "open %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_handler(db, store_busy_wait, NULL);
    /* SQLite's page cache is per connection (2 MB by default), and a
     * service opens many: purchase-executor the lanes' shared ones, the writes
     * thread, the follower, the relay, the checkpointer. The hot pages (the
     * indexes' upper levels, the rows in flight) fit in far less; the rest
     * stays in the kernel's page cache. MILLOM_SQLITE_CACHE_KB per
     * connection, read once per process. */
    if (store_exec(db, "PRAGMA journal_mode=WAL") != SQLITE_OK ||
        store_set_cache_size(db) != SQLITE_OK ||
        store_exec(db, "PRAGMA synchronous=NORMAL") != SQLITE_OK ||
        /* Statement journals (a savepoint per INSERT or UPDATE that fires
         * the changelog's triggers) in memory, not in a temp file. */
        store_exec(db, "PRAGMA temp_store=MEMORY") != SQLITE_OK ||
        store_exec(db, "PRAGMA foreign_keys=ON") != SQLITE_OK) {
        snprintf(err, errlen, "configure %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    int version = user_version(db);
    if (version < 0 || (size_t)version > n_migrations) {
        snprintf(err, errlen, "%s has schema version %d, this build knows %zu", path, version,
                 n_migrations);
        sqlite3_close(db);
        return NULL;
    }
    for (size_t i = (size_t)version; i < n_migrations; i++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%zu", i + 1);
        if (store_begin(db) != SQLITE_OK || store_exec(db, migrations[i]) != SQLITE_OK ||
            store_exec(db, bump) != SQLITE_OK || store_commit(db) != SQLITE_OK) {
            snprintf(err, errlen, "migration %zu of %s failed: %s", i + 1, path,
                     sqlite3_errmsg(db));
            store_rollback(db);
            sqlite3_close(db);
            return NULL;
        }
        log_info("store %s migrated to version %zu", path, i + 1);
    }
    remember_path(path);
    store_checkpoint_attach(db);
    return db;
}

/* SQLite's own busy timeout sleeps 1, 2, 5, 10, ... then 100 ms between
 * tries: sixteen purchase lanes queueing for the write lock waited up to
 * 100 ms each after the lock was long free (the tail of purchasePlan's
 * latency). This one tries again after 0.1 ms, growing by 0.1 ms to at
 * most 2 ms, and gives up after about 5 s, as the timeout did. */
int store_busy_wait(void *arg, int tries) {
    (void)arg;
    long us = tries < 20 ? 100L * (tries + 1) : 2000L;
    long waited_ms = tries < 20 ? 5L * tries * (tries + 1) / 100 : 21 + 2L * (tries - 20);
    if (waited_ms >= 5000) return 0;
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
    return 1;
}

sqlite3 *store_open(const char *name, const char *const *migrations, size_t n_migrations, char *err,
                    size_t errlen) {
    const char *dir = service_data_dir();
    if (files_mkdir_p(dir) != 0) {
        snprintf(err, errlen, "cannot create data dir %s: %s", dir, strerror(errno));
        return NULL;
    }

    char path[512];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    return store_open_path(path, migrations, n_migrations, err, errlen);
}

void store_close(sqlite3 *db) {
    if (!db) return;
    stmt_cache_close(db);
    store_checkpoint_detach(db);
    sqlite3_close_v2(db);
}
