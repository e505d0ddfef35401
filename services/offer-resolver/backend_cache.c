/* The backend cache: the operator backend's answers, kept for
 * cache_ttl_ms (MILLOM_CACHE_TTL_S, the validity the answers declare), in
 * one SQLite table per resource:
 *   - /balance per (operator, subscriber, language): accountInfo and
 *     balance are both mapped from it, so one backend call serves both;
 *   - /offers per (operator, subscriber, everything else the backend call
 *     carries: language, provider, channel, dealer code, key type, and the
 *     filters offerType, maxPrice, numberofOffers).
 * Here rather than in api-edge: offer-resolver makes the backend calls and
 * serves every api-edge instance and notifier, so one entry saves calls for
 * all of them; offerContexts are still minted fresh from the cached body on
 * every answer. A purchase forgets the subscriber's entries. */
#include "resolver.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/store.h"

#include <stdlib.h>
#include <string.h>

static const char *const migrations[] = {
    "CREATE TABLE balance_cache ("
    "  operator TEXT NOT NULL, subscriber TEXT NOT NULL, lang TEXT NOT NULL,"
    "  body TEXT NOT NULL, fetched_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (operator, subscriber, lang)) WITHOUT ROWID;"
    "CREATE INDEX balance_cache_expiry ON balance_cache (expires_ms);",
    /* the backend's /offers bodies (since the signed-link limits) */
    "CREATE TABLE offers_cache ("
    "  operator TEXT NOT NULL, subscriber TEXT NOT NULL, k TEXT NOT NULL,"
    "  body TEXT NOT NULL, fetched_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (operator, subscriber, k)) WITHOUT ROWID;"
    "CREATE INDEX offers_cache_expiry ON offers_cache (expires_ms);",
};

int backend_cache_open(resolver *r, char *err, size_t errlen) {
    r->db = store_open("offer-resolver", migrations, sizeof migrations / sizeof migrations[0], err,
                       errlen);
    if (!r->db) return -1;
    /* A cache: losing the last writes in an OS crash costs one backend call. */
    store_exec(r->db, "PRAGMA synchronous=OFF");
    store_exec(r->db, "DELETE FROM balance_cache");
    store_exec(r->db, "DELETE FROM offers_cache");
    return 0;
}

/* The statements of one cache table; both tables have the same columns
 * (operator, subscriber, key, body, fetched_ms, expires_ms). */
typedef struct {
    const char *select_sql, *insert_sql, *expire_sql, *forget_sql;
} cache_table;

static const cache_table tables[] = {
    [BACKEND_CACHE_BALANCE] =
        {
            "SELECT body, fetched_ms FROM balance_cache WHERE operator=?1 AND subscriber=?2 AND "
            "lang=?3 AND expires_ms>?4",
            "INSERT OR REPLACE INTO balance_cache VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            "DELETE FROM balance_cache WHERE expires_ms<=?1",
            "DELETE FROM balance_cache WHERE operator=?1 AND subscriber=?2",
        },
    [BACKEND_CACHE_OFFERS] =
        {
            "SELECT body, fetched_ms FROM offers_cache WHERE operator=?1 AND subscriber=?2 AND "
            "k=?3 AND expires_ms>?4",
            "INSERT OR REPLACE INTO offers_cache VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            "DELETE FROM offers_cache WHERE expires_ms<=?1",
            "DELETE FROM offers_cache WHERE operator=?1 AND subscriber=?2",
        },
};

char *backend_cache_get(resolver *r, backend_cache_kind kind, const char *op,
                        const char *subscriber, const char *key, int64_t now, int64_t *fetched_ms) {
    char *body = NULL;
    pthread_mutex_lock(&r->db_lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(r->db, tables[kind].select_sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, subscriber, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        if (sqlite3_step(st) == SQLITE_ROW) {
            body = strdup((const char *)sqlite3_column_text(st, 0));
            *fetched_ms = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&r->db_lock);
    return body;
}

void backend_cache_put(resolver *r, backend_cache_kind kind, const char *op, const char *subscriber,
                       const char *key, const char *body, int64_t fetched_ms) {
    pthread_mutex_lock(&r->db_lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db, tables[kind].insert_sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, subscriber, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, fetched_ms);
        sqlite3_bind_int64(st, 6, fetched_ms + r->cache_ttl_ms);
        if (sqlite3_step(st) != SQLITE_DONE) log_warn("cache put: %s", sqlite3_errmsg(r->db));
        sqlite3_finalize(st);
    }
    /* Expired rows go now and then, not on every write. */
    if (rand() % 256 == 0 &&
        sqlite3_prepare_v2(r->db, tables[kind].expire_sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, fetched_ms);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&r->db_lock);
}

void backend_cache_forget(resolver *r, const char *op, const char *subscriber) {
    pthread_mutex_lock(&r->db_lock);
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(r->db, tables[i].forget_sql, -1, &st, NULL) != SQLITE_OK) continue;
        sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, subscriber, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&r->db_lock);
}
