/* Closing a day. Settlement needs a point after which a day's figures are
 * "final" for analysts, but purchase events arrive at least once, in
 * order only per subscriber, and sometimes late (an async activation
 * completing after midnight, a relay catching up after an outage). So:
 *
 *  - the watermark is the latest UTC day of any settled purchase; when a
 *    purchase of a later day is settled, every open aggregate of an
 *    earlier day is closed (the stream has moved on);
 *  - a timer closes open days whose end passed more than
 *    MILLOM_SETTLEMENT_CLOSE_GRACE_S ago on the wall clock, for quiet
 *    periods in which no later event comes;
 *  - closing publishes the report with closed = true; a purchase of a
 *    closed day is still added to its own day and counted in late_count,
 *    and the report is published again (still closed). */
#include "settlement.h"
#include "shared/plumbing/stmt_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"

int watermark_get(sqlite3 *db, char out[11]) {
    static const char sql[] = "SELECT value FROM meta WHERE name = 'watermark_day'";
    out[0] = '\0';
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        snprintf(out, 11, "%s", v ? (const char *)v : "");
    }
    stmt_done(db, st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Closes the open aggregates with day < before_day (a "YYYY-MM-DD"
 * compares like the date) and publishes them. Returns how many, or -1. */
static int close_before(sqlite3 *db, const char *before_day, int64_t now) {
    static const char find_sql[] = "SELECT day, operator, service_provider, currency"
                                   " FROM daily WHERE closed = 0 AND day < ?";
    static const char close_sql[] =
        "UPDATE daily SET closed = 1, closed_at_ms = ?, updated_at_ms = ? WHERE day = ?"
        " AND operator = ? AND service_provider = ? AND currency = ?";
    /* Collect first: the keys are published after the update, and a
     * statement should not be stepped while the table changes under it. */
    report_key *keys = NULL;
    size_t n = 0;
    sqlite3_stmt *st = stmt_get(db, find_sql);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, before_day, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        report_key *grown = realloc(keys, (n + 1) * sizeof *keys);
        if (!grown) {
            rc = SQLITE_NOMEM;
            break;
        }
        keys = grown;
        report_key *k = &keys[n++];
        snprintf(k->day, sizeof k->day, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(k->op, sizeof k->op, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(k->service_provider, sizeof k->service_provider, "%s",
                 (const char *)sqlite3_column_text(st, 2));
        snprintf(k->currency, sizeof k->currency, "%s", (const char *)sqlite3_column_text(st, 3));
    }
    stmt_done(db, st);
    int result = rc == SQLITE_DONE ? 0 : -1;
    for (size_t i = 0; i < n && result >= 0; i++) {
        st = stmt_get(db, close_sql);
        if (!st) {
            result = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, keys[i].day, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, keys[i].op, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, keys[i].service_provider, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, keys[i].currency, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        stmt_done(db, st);
        if (rc != SQLITE_DONE || report_publish(db, &keys[i]) != 0)
            result = -1;
        else
            result++;
    }
    free(keys);
    return result;
}

int watermark_advance(sqlite3 *db, const char *day, int64_t now) {
    static const char sql[] = "INSERT INTO meta (name, value) VALUES ('watermark_day', ?)"
                              " ON CONFLICT DO UPDATE SET value = excluded.value";
    char wm[11];
    if (watermark_get(db, wm) != 0) return -1;
    if (wm[0] && strcmp(day, wm) <= 0) return 0;
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    stmt_done(db, st);
    if (rc != SQLITE_DONE) return -1;
    return close_before(db, day, now);
}

int close_expired_days(sqlite3 *db, int64_t now, int64_t grace_ms) {
    /* Days that ended before now - grace: day < the day of (now - grace). */
    char day[11];
    utc_day(now - grace_ms, day);
    return close_before(db, day, now);
}

/* ---------------------------------------------------------- the timer */

struct day_closer {
    sqlite3 *db;
    outbox_relay *relay;
    int64_t grace_ms;
    long interval_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static void close_once(day_closer *d) {
    if (store_begin(d->db) != SQLITE_OK) return; /* busy: next tick */
    int n = close_expired_days(d->db, now_ms(), d->grace_ms);
    if (n < 0) {
        store_rollback(d->db);
        log_warn("day close: database error, trying again later");
        return;
    }
    if (store_commit(d->db) != SQLITE_OK) {
        store_rollback(d->db);
        return;
    }
    if (n > 0) {
        log_info("day close: closed %d daily aggregate(s)", n);
        outbox_relay_notify(d->relay);
    }
}

static void *closer_thread(void *arg) {
    service_thread_name("day-close");
    day_closer *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        pthread_mutex_unlock(&d->mu);
        close_once(d);
        pthread_mutex_lock(&d->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += d->interval_ms / 1000;
        ts.tv_nsec += (d->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

day_closer *day_closer_start(const char *db_path, int64_t grace_ms, long interval_ms,
                             outbox_relay *relay, char *err, size_t errlen) {
    day_closer *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->db = settle_store_open(db_path, err, errlen);
    if (!d->db) {
        free(d);
        return NULL;
    }
    d->relay = relay;
    d->grace_ms = grace_ms;
    d->interval_ms = interval_ms > 0 ? interval_ms : 60000;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (pthread_create(&d->thread, NULL, closer_thread, d) != 0) {
        snprintf(err, errlen, "cannot start the day-close thread");
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        store_close(d->db);
        free(d);
        return NULL;
    }
    return d;
}

void day_closer_stop(day_closer *d) {
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    stmt_cache_close(d->db);
    store_close(d->db);
    free(d);
}
