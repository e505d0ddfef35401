/* The offers cache: the operator backend's /offers answer per operator,
 * subscriber and everything else the backend call carries (language,
 * service provider, channel, dealer code), kept for cache_ttl_ms
 * (MILLOM_CACHE_TTL_S), the validity upsellOffer answers declare. Same
 * table file and lock as the balance cache (balance_cache.c, which also
 * creates the table and forgets a subscriber's entries after a purchase).
 *
 * Here rather than in api-edge: offer-resolver makes the backend calls
 * and serves every api-edge instance and notifier, so one entry saves
 * calls for all of them; the offerContexts are still minted fresh from
 * the cached body on every answer. */
#include "resolver.h"
#include "shared/log.h"

#include <stdlib.h>
#include <string.h>

char *offers_cache_get(resolver *r, const char *op, const char *subscriber, const char *key,
                       int64_t now, int64_t *fetched_ms) {
    char *body = NULL;
    pthread_mutex_lock(&r->db_lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(r->db,
                           "SELECT body, fetched_ms FROM offers_cache WHERE operator=?1 AND "
                           "subscriber=?2 AND k=?3 AND expires_ms>?4",
                           -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) == SQLITE_OK) {
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

void offers_cache_put(resolver *r, const char *op, const char *subscriber, const char *key,
                      const char *body, int64_t fetched_ms) {
    pthread_mutex_lock(&r->db_lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db,
                           "INSERT OR REPLACE INTO offers_cache VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, subscriber, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, fetched_ms);
        sqlite3_bind_int64(st, 6, fetched_ms + r->cache_ttl_ms);
        if (sqlite3_step(st) != SQLITE_DONE)
            log_warn("offers cache put: %s", sqlite3_errmsg(r->db));
        sqlite3_finalize(st);
    }
    /* Expired rows go now and then, not on every write. */
    if (rand() % 256 == 0) {
        if (sqlite3_prepare_v2(r->db, "DELETE FROM offers_cache WHERE expires_ms<=?1", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, fetched_ms);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
    }
    pthread_mutex_unlock(&r->db_lock);
}
