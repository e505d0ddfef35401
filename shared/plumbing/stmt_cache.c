/* Prepared statements kept per connection. Settling one event, or adding
 * one outbox row, runs statements whose preparing cost more than running
 * them, so each (connection, SQL text) is prepared once and reset after
 * use. The SQL is identified by its address (callers pass string
 * literals). An open-addressing hash table of (connection, SQL) pairs;
 * the lock only guards the table, not the statements. */
#include "shared/plumbing/stmt_cache.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/plumbing/log.h"

#define CACHE_SLOTS 4096 /* a power of two; far more than all services' SQL x connections */

typedef struct {
    sqlite3 *db; /* NULL: free; TOMBSTONE: freed, keep probing */
    const char *sql;
    sqlite3_stmt *st;
} entry;

static entry cache[CACHE_SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char tombstone_mark;
#define TOMBSTONE ((sqlite3 *)(void *)&tombstone_mark)

static size_t slot_of(const sqlite3 *db, const char *sql) {
    uintptr_t h = (uintptr_t)db * 0x9E3779B97F4A7C15u ^ (uintptr_t)sql * 0xC2B2AE3D27D4EB4Fu;
    return (size_t)(h >> 17) & (CACHE_SLOTS - 1);
}

/* The slot holding (db, sql), or -1. Call with mu held. */
static long find(const sqlite3 *db, const char *sql) {
    size_t i = slot_of(db, sql);
    for (size_t n = 0; n < CACHE_SLOTS; n++, i = (i + 1) & (CACHE_SLOTS - 1)) {
        if (!cache[i].db) return -1;
        if (cache[i].db == db && cache[i].sql == sql) return (long)i;
    }
    return -1;
}

sqlite3_stmt *stmt_get(sqlite3 *db, const char *sql) {
    pthread_mutex_lock(&mu);
    long at = find(db, sql);
    if (at >= 0) {
        sqlite3_stmt *st = cache[at].st;
        pthread_mutex_unlock(&mu);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    pthread_mutex_unlock(&mu);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        log_error("sqlite prepare: %s (in: %.80s)", sqlite3_errmsg(db), sql);
        return NULL;
    }
    pthread_mutex_lock(&mu);
    size_t i = slot_of(db, sql);
    for (size_t n = 0; n < CACHE_SLOTS; n++, i = (i + 1) & (CACHE_SLOTS - 1)) {
        if (!cache[i].db || cache[i].db == TOMBSTONE) {
            cache[i] = (entry){db, sql, st};
            pthread_mutex_unlock(&mu);
            return st;
        }
    }
    pthread_mutex_unlock(&mu);
    /* Only reachable with thousands of connections open at once. */
    log_error("statement cache full (%d statements)", CACHE_SLOTS);
    sqlite3_finalize(st);
    return NULL;
}

void stmt_done(sqlite3 *db, sqlite3_stmt *st) {
    (void)db;
    if (st) sqlite3_reset(st);
}

void stmt_cache_close(sqlite3 *db) {
    if (!db) return;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].db != db) continue;
        sqlite3_finalize(cache[i].st);
        cache[i] = (entry){.db = TOMBSTONE};
    }
    pthread_mutex_unlock(&mu);
}
