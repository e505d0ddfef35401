/* Prepared statements kept per connection. Settling one event runs about
 * ten statements; preparing them anew each time cost more than running
 * them, so each (connection, SQL text) is prepared once and reset after
 * use. The SQL is identified by its address: callers pass string
 * literals. A connection is used by one thread at a time; the lock only
 * guards the table itself. */
#include "stmt_cache.h"

#include <pthread.h>
#include <stddef.h>

#include "shared/plumbing/log.h"

#define CACHE_MAX 96

typedef struct {
    sqlite3 *db;
    const char *sql;
    sqlite3_stmt *st;
} entry;

static entry cache[CACHE_MAX];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

sqlite3_stmt *stmt_get(sqlite3 *db, const char *sql) {
    pthread_mutex_lock(&mu);
    for (int i = 0; i < CACHE_MAX; i++) {
        if (cache[i].db == db && cache[i].sql == sql) {
            sqlite3_stmt *st = cache[i].st;
            pthread_mutex_unlock(&mu);
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return st;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        log_error("sqlite prepare: %s (in: %.80s)", sqlite3_errmsg(db), sql);
        pthread_mutex_unlock(&mu);
        return NULL;
    }
    for (int i = 0; i < CACHE_MAX; i++) {
        if (!cache[i].db) {
            cache[i] = (entry){db, sql, st};
            pthread_mutex_unlock(&mu);
            return st;
        }
    }
    pthread_mutex_unlock(&mu);
    /* Table full: still correct, the statement is finalized by the
     * caller's stmt_done. Never happens with this service's SQL. */
    log_warn("statement cache full");
    return st;
}

void stmt_done(sqlite3 *db, sqlite3_stmt *st) {
    if (!st) return;
    pthread_mutex_lock(&mu);
    int cached = 0;
    for (int i = 0; i < CACHE_MAX && !cached; i++) cached = cache[i].db == db && cache[i].st == st;
    pthread_mutex_unlock(&mu);
    if (cached)
        sqlite3_reset(st);
    else
        sqlite3_finalize(st);
}

void stmt_cache_close(sqlite3 *db) {
    if (!db) return;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < CACHE_MAX; i++) {
        if (cache[i].db != db) continue;
        sqlite3_finalize(cache[i].st);
        cache[i] = (entry){0};
    }
    pthread_mutex_unlock(&mu);
}
