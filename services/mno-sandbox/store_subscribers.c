/* Subscriber look-ups and the backend API's JSON (accountStatus,
 * offersInfo, errorResponse).
 *
 * The hot path never writes: the file is opened once with store_open (which
 * migrates and seeds it, and stays open as the one writer, see
 * store_activations.c) and then read through a pool of connections with
 * PRAGMA query_only, each with its statements prepared once. A thread picks
 * its reader once (thread-local index) and keeps it, so with as many readers
 * as server threads the per-reader locks are never contended. The balance,
 * which takes two statements (subscriber, plans), runs them in one read
 * transaction: with WAL, it sees an activation's debit and its plan
 * together or neither.
 *
 * Plans bought through /activate carry an absolute expiry (expires_at_s)
 * and disappear from the balance once expired; seeded plans expire
 * relative to the current hour (expires_in_s).
 *
 * Non-spec extension: accountStatus carries "loanBalance" {currency, value}
 * when the subscriber has an outstanding loan (loan_minor > 0). The backend
 * spec has no such field; offer-resolver maps it to a "loan" balance.
 * Likewise "ewalletBalance" {currency, value} when the subscriber's
 * e-wallet (what EWALLET offers are paid from) holds money
 * (ewallet_minor > 0); offer-resolver maps it to an "ewallet" balance. */
#include "store_internal.h"

#include "shared/plumbing/log.h"
#include "shared/plumbing/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { Q_SUB_MSISDN, Q_SUB_OPET, Q_PLANS, Q_OFFERS, Q_BEGIN, Q_END, Q_COUNT };

#define SUBSCRIBER_COLUMNS                                                                        \
    "SELECT subscription_type, price_plan, balance_minor, loan_minor, subscriber_state, status, " \
    "msisdn, ewallet_minor"                                                                       \
    " FROM subscribers"
const char mno_sql_subscriber_by_msisdn[] = SUBSCRIBER_COLUMNS " WHERE msisdn = ?1";
const char mno_sql_subscriber_by_opet[] = SUBSCRIBER_COLUMNS " WHERE opet = ?1";

static const char *const queries[Q_COUNT] = {
    [Q_SUB_MSISDN] = mno_sql_subscriber_by_msisdn,
    [Q_SUB_OPET] = mno_sql_subscriber_by_opet,
    /* ?3: the base of relative expiries, ?4: now (both Unix seconds). */
    [Q_PLANS] = "SELECT p.plan_id, coalesce(tl.name, te.name, p.plan_id),"
                "       coalesce(p.expires_at_s, ?3 + p.expires_in_s), p.app_type, p.unit,"
                "       p.quota, p.remaining, p.overusage_policy, p.speed_limit, p.recurrence_days"
                " FROM subscribed_plans p"
                " LEFT JOIN plan_texts te ON te.plan_id = p.plan_id AND te.lang = 'en'"
                " LEFT JOIN plan_texts tl ON tl.plan_id = p.plan_id AND tl.lang = ?2"
                " WHERE p.msisdn = ?1 AND (p.expires_at_s IS NULL OR p.expires_at_s > ?4)"
                " ORDER BY p.position",
    [Q_OFFERS] =
        "SELECT o.offer_id, coalesce(tl.name, te.name), coalesce(tl.description, te.description),"
        "       coalesce(tl.short_description, te.short_description), o.fund_source, o.unit, "
        "o.quota,"
        "       o.app_type, o.overusage_policy, o.speed_limit, o.duration_s, o.cost_minor, "
        "o.recurrence"
        " FROM subscriber_offers so"
        " JOIN offers o ON o.offer_id = so.offer_id"
        " JOIN offer_texts te ON te.offer_id = o.offer_id AND te.lang = 'en'"
        " LEFT JOIN offer_texts tl ON tl.offer_id = o.offer_id AND tl.lang = ?2"
        " WHERE so.msisdn = ?1"
        "   AND (?3 IS NULL OR o.offer_type = ?3 COLLATE NOCASE)"
        "   AND (?4 IS NULL OR o.cost_minor <= ?4)"
        " ORDER BY so.position LIMIT ?5",
    [Q_BEGIN] = "BEGIN",
    [Q_END] = "COMMIT",
};

typedef struct mno_reader {
    pthread_mutex_t lock;
    sqlite3 *db;
    sqlite3_stmt *st[Q_COUNT];
} reader;

static atomic_uint next_thread_slot;
static _Thread_local unsigned thread_slot_plus1;

static void reader_close(reader *r) {
    for (int i = 0; i < Q_COUNT; i++) sqlite3_finalize(r->st[i]);
    if (r->db) sqlite3_close_v2(r->db);
    pthread_mutex_destroy(&r->lock);
}

static int reader_open(reader *r, const char *path, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    int rc = sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(r->db, 5000);
        rc = sqlite3_exec(r->db, "PRAGMA query_only=1", NULL, NULL, NULL);
    }
    for (int i = 0; rc == SQLITE_OK && i < Q_COUNT; i++)
        rc = sqlite3_prepare_v3(r->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i], NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "reader on %s: %s", path,
                 r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
        return -1;
    }
    return 0;
}

mno_store *mno_store_open_path(const char *path, size_t readers, char *err, size_t errlen) {
    if (readers == 0) readers = 1;
    mno_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->wlock, NULL);
    s->writer = path ? store_open_path(path, mno_migrations, mno_migration_count, err, errlen)
                     : store_open("mno-sandbox", mno_migrations, mno_migration_count, err, errlen);
    if (!s->writer) {
        pthread_mutex_destroy(&s->wlock);
        free(s);
        return NULL;
    }
    const char *file = sqlite3_db_filename(s->writer, "main");
    if (!file || !*file) {
        snprintf(err, errlen, "mno-sandbox needs a database file, not an in-memory database");
        mno_store_close(s);
        return NULL;
    }
    s->readers = calloc(readers, sizeof *s->readers);
    if (!s->readers) {
        snprintf(err, errlen, "out of memory");
        mno_store_close(s);
        return NULL;
    }
    for (size_t i = 0; i < readers; i++) {
        if (reader_open(&s->readers[i], file, err, errlen) != 0) {
            s->n_readers = i + 1;
            mno_store_close(s);
            return NULL;
        }
    }
    s->n_readers = readers;
    return s;
}

mno_store *mno_store_open(size_t readers, char *err, size_t errlen) {
    return mno_store_open_path(NULL, readers, err, errlen);
}

void mno_store_close(mno_store *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_readers; i++) reader_close(&s->readers[i]);
    free(s->readers);
    for (int i = 0; i < MNO_WRITER_STMTS; i++) sqlite3_finalize(s->wst[i]);
    store_close(s->writer);
    pthread_mutex_destroy(&s->wlock);
    free(s);
}

static reader *reader_acquire(mno_store *s) {
    if (thread_slot_plus1 == 0) thread_slot_plus1 = atomic_fetch_add(&next_thread_slot, 1) + 1;
    reader *r = &s->readers[(thread_slot_plus1 - 1) % s->n_readers];
    pthread_mutex_lock(&r->lock);
    return r;
}

static void reader_release(reader *r) { pthread_mutex_unlock(&r->lock); }

static sqlite3_stmt *stmt_begin(reader *r, int q) {
    sqlite3_stmt *st = r->st[q];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* ---- JSON helpers ---- */

json_t *mno_error_json(const char *error_type, const char *message) {
    json_t *o = json_object();
    json_object_set_new(o, "errorType", json_string(error_type));
    if (message) json_object_set_new(o, "message", json_string(message));
    return o;
}

mno_reply mno_reply_error(int status, const char *type, const char *message) {
    return (mno_reply){status, mno_error_json(type, message)};
}

char *mno_json_text(const json_t *body, size_t *len) {
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (len) *len = text ? strlen(text) : 0;
    return text;
}

/* {currency, value} with value a JSON number. Printed with 15 significant
 * digits, any amount of up to 13 integer digits comes out exactly (52075
 * is 520.75). */
json_t *mno_money_json(int64_t minor) {
    double div = 1;
    for (int i = 0; i < MNO_CURRENCY_SCALE; i++) div *= 10;
    json_t *o = json_object();
    json_object_set_new(o, "currency", json_string(MNO_CURRENCY));
    json_object_set_new(o, "value", json_real((double)minor / div));
    return o;
}

/* "SOCIAL,MESSAGING" -> ["SOCIAL", "MESSAGING"] */
static json_t *app_types_json(const char *csv) {
    json_t *a = json_array();
    while (csv && *csv) {
        const char *comma = strchr(csv, ',');
        size_t n = comma ? (size_t)(comma - csv) : strlen(csv);
        if (n) json_array_append_new(a, json_stringn(csv, n));
        csv = comma ? comma + 1 : NULL;
    }
    if (json_array_size(a) == 0) json_array_append_new(a, json_string("GENERIC"));
    return a;
}

void mno_iso8601_utc(int64_t epoch_s, char *buf, size_t len) {
    time_t t = (time_t)epoch_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *mno_col_text(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static void set_text(json_t *o, const char *key, sqlite3_stmt *st, int col) {
    json_object_set_new(o, key, json_string(mno_col_text(st, col)));
}

/* ---- look-ups ---- */

/* 1 found, 0 unknown, -1 SQLite error. */
static int find_subscriber(sqlite3 *db, sqlite3_stmt *st, const char *id, mno_id_type id_type,
                           mno_subscriber *out) {
    if (id_type == MNO_ID_MSISDN && id[0] == '+') id++;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        log_error("subscriber look-up: %s", sqlite3_errmsg(db));
        sqlite3_reset(st);
        return -1;
    }
    snprintf(out->subscription_type, sizeof out->subscription_type, "%s", mno_col_text(st, 0));
    snprintf(out->price_plan, sizeof out->price_plan, "%s", mno_col_text(st, 1));
    out->balance_minor = sqlite3_column_int64(st, 2);
    out->loan_minor = sqlite3_column_int64(st, 3);
    snprintf(out->state, sizeof out->state, "%s", mno_col_text(st, 4));
    snprintf(out->status, sizeof out->status, "%s", mno_col_text(st, 5));
    snprintf(out->msisdn, sizeof out->msisdn, "%s", mno_col_text(st, 6));
    out->ewallet_minor = sqlite3_column_int64(st, 7);
    sqlite3_reset(st);
    return 1;
}

int mno_admit(sqlite3 *db, sqlite3_stmt *st, const char *customer_id, mno_id_type id_type,
              mno_subscriber *sub, mno_reply *err) {
    int found = find_subscriber(db, st, customer_id, id_type, sub);
    if (found < 0) {
        *err = mno_reply_error(500, "INTERNAL_ERROR", "subscriber look-up failed");
        return 0;
    }
    if (found == 0) {
        *err = mno_reply_error(404, "UNKNOWN_SUBSCRIBER_ID",
                               id_type == MNO_ID_OPET ? "unknown OPET customer id"
                                                      : "unknown subscriber");
        return 0;
    }
    if (strcmp(sub->status, "BARRED") == 0) {
        *err = mno_reply_error(403, "USER_BARRED", "subscriber is barred");
        return 0;
    }
    if (strcmp(sub->status, "ROAMING") == 0) {
        /* The spec has no roaming errorType; Millom maps FORBIDDEN to USER_ROAMING. */
        *err = mno_reply_error(403, "FORBIDDEN", "subscriber is roaming");
        return 0;
    }
    return 1;
}

/* Looks the subscriber up on reader r. Returns 1 when it may be served. */
static int admit(reader *r, const mno_request *rq, mno_subscriber *sub, mno_reply *err) {
    sqlite3_stmt *st = stmt_begin(r, rq->id_type == MNO_ID_OPET ? Q_SUB_OPET : Q_SUB_MSISDN);
    return mno_admit(r->db, st, rq->customer_id, rq->id_type, sub, err);
}

static json_t *plan_json(sqlite3_stmt *st) {
    json_t *p = json_object();
    char when[32];
    mno_iso8601_utc(sqlite3_column_int64(st, 2), when, sizeof when);
    set_text(p, "planId", st, 0);
    set_text(p, "planName", st, 1);
    json_object_set_new(p, "expirationTime", json_string(when));
    json_object_set_new(p, "appType", app_types_json(mno_col_text(st, 3)));
    bool minutes = strcmp(mno_col_text(st, 4), "MINUTES") == 0;
    json_t *bal = json_object();
    json_object_set_new(bal, minutes ? "quotaMinutes" : "quotaBytes",
                        json_integer(sqlite3_column_int64(st, 5)));
    json_object_set_new(bal, minutes ? "remainingMinutes" : "remainingBytes",
                        json_integer(sqlite3_column_int64(st, 6)));
    json_object_set_new(p, "balance", bal);
    set_text(p, "overusagePolicy", st, 7);
    if (sqlite3_column_type(st, 8) != SQLITE_NULL)
        json_object_set_new(p, "speedLimit", json_integer(sqlite3_column_int64(st, 8)));
    if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
        json_t *rec = json_object();
        json_object_set_new(rec, "frequency", json_integer(sqlite3_column_int64(st, 9)));
        json_object_set_new(rec, "resetDate", json_string(when));
        json_object_set_new(p, "recurrence", rec);
    }
    return p;
}

/* BEGIN / COMMIT of a read transaction on r; 0 or -1 (logged). */
static int read_txn(reader *r, int q) {
    sqlite3_stmt *st = stmt_begin(r, q);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        log_error("read transaction %s: %s", q == Q_BEGIN ? "begin" : "end", sqlite3_errmsg(r->db));
        if (!sqlite3_get_autocommit(r->db)) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

mno_reply mno_balance(mno_store *s, const mno_request *rq, int64_t now_ms) {
    reader *r = reader_acquire(s);
    if (read_txn(r, Q_BEGIN) != 0) {
        reader_release(r);
        return mno_reply_error(500, "INTERNAL_ERROR", "subscriber look-up failed");
    }
    mno_subscriber sub;
    mno_reply out;
    if (!admit(r, rq, &sub, &out)) {
        read_txn(r, Q_END);
        reader_release(r);
        return out;
    }
    json_t *plans = json_array();
    sqlite3_stmt *st = stmt_begin(r, Q_PLANS);
    sqlite3_bind_text(st, 1, sub.msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rq->lang, -1, SQLITE_STATIC);
    int64_t now_s = now_ms / 1000;
    int64_t base_s = now_s - now_s % 3600; /* stable within the hour */
    sqlite3_bind_int64(st, 3, base_s);
    sqlite3_bind_int64(st, 4, now_s);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(plans, plan_json(st));
    if (rc != SQLITE_DONE) log_error("plans look-up: %s", sqlite3_errmsg(r->db));
    sqlite3_reset(st);
    if (read_txn(r, Q_END) != 0) rc = SQLITE_ERROR;
    reader_release(r);
    if (rc != SQLITE_DONE) {
        json_decref(plans);
        return mno_reply_error(500, "INTERNAL_ERROR", "plans look-up failed");
    }

    json_t *o = json_object();
    json_object_set_new(o, "subscriptionType", json_string(sub.subscription_type));
    json_object_set_new(o, "pricePlan", json_string(sub.price_plan));
    json_object_set_new(o, "monetaryBalance", mno_money_json(sub.balance_minor));
    if (sub.loan_minor > 0) json_object_set_new(o, "loanBalance", mno_money_json(sub.loan_minor));
    if (sub.ewallet_minor > 0)
        json_object_set_new(o, "ewalletBalance", mno_money_json(sub.ewallet_minor));
    json_object_set_new(o, "subscribedPlans", plans);
    return (mno_reply){200, o};
}

static json_t *offer_json(sqlite3_stmt *st) {
    json_t *o = json_object();
    set_text(o, "id", st, 0);
    set_text(o, "name", st, 1);
    set_text(o, "description", st, 2);
    set_text(o, "shortDescription", st, 3);
    set_text(o, "fundSource", st, 4);
    json_t *quota = json_object();
    json_object_set_new(quota,
                        strcmp(mno_col_text(st, 5), "MINUTES") == 0 ? "quotaMinutes" : "quotaBytes",
                        json_integer(sqlite3_column_int64(st, 6)));
    json_object_set_new(o, "quota", quota);
    json_object_set_new(o, "appType", app_types_json(mno_col_text(st, 7)));
    set_text(o, "overusagePolicy", st, 8);
    if (sqlite3_column_type(st, 9) != SQLITE_NULL)
        json_object_set_new(o, "speedLimit", json_integer(sqlite3_column_int64(st, 9)));
    json_object_set_new(o, "duration", json_integer(sqlite3_column_int64(st, 10)));
    json_object_set_new(o, "cost", mno_money_json(sqlite3_column_int64(st, 11)));
    if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
        json_t *rec = json_object();
        set_text(rec, "frequency", st, 12);
        json_object_set_new(o, "recurrenceFrequency", rec);
    }
    return o;
}

static atomic_uint upstream_seq;

mno_reply mno_offers(mno_store *s, const mno_request *rq, int64_t now_ms) {
    reader *r = reader_acquire(s);
    mno_subscriber sub;
    mno_reply out;
    if (!admit(r, rq, &sub, &out)) {
        reader_release(r);
        return out;
    }
    json_t *offers = json_array();
    sqlite3_stmt *st = stmt_begin(r, Q_OFFERS);
    sqlite3_bind_text(st, 1, sub.msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, rq->lang, -1, SQLITE_STATIC);
    if (rq->offer_type) sqlite3_bind_text(st, 3, rq->offer_type, -1, SQLITE_STATIC);
    if (rq->max_price_minor >= 0) sqlite3_bind_int64(st, 4, rq->max_price_minor);
    sqlite3_bind_int64(st, 5, rq->max_offers > 0 ? rq->max_offers : -1);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(offers, offer_json(st));
    if (rc != SQLITE_DONE) log_error("offers look-up: %s", sqlite3_errmsg(r->db));
    sqlite3_reset(st);
    reader_release(r);
    if (rc != SQLITE_DONE) {
        json_decref(offers);
        return mno_reply_error(500, "INTERNAL_ERROR", "offers look-up failed");
    }

    char upstream[48];
    snprintf(upstream, sizeof upstream, "%s-%lld-%u", MNO_OPERATOR, (long long)now_ms,
             atomic_fetch_add(&upstream_seq, 1) + 1);
    json_t *o = json_object();
    json_object_set_new(o, "subscriberState", json_string(sub.state));
    json_object_set_new(o, "offers", offers);
    json_object_set_new(o, "upstreamTransId", json_string(upstream));
    return (mno_reply){200, o};
}

/* ---- admin: add or replace a subscriber ---- */

static const char sql_put_subscriber[] =
    "INSERT INTO subscribers (msisdn, opet, subscription_type, price_plan, balance_minor,"
    " loan_minor, subscriber_state, status, ewallet_minor)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT (msisdn) DO UPDATE SET opet = excluded.opet,"
    " subscription_type = excluded.subscription_type, price_plan = excluded.price_plan,"
    " balance_minor = excluded.balance_minor, loan_minor = excluded.loan_minor,"
    " subscriber_state = excluded.subscriber_state, status = excluded.status,"
    " ewallet_minor = excluded.ewallet_minor";

/* One statement, prepared for this call only (admin calls are rare). */
static int put_step(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
    if (!*st && sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) return SQLITE_ERROR;
    return SQLITE_OK;
}

int mno_subscriber_put(mno_store *s, const mno_subscriber_spec *spec, bool *created, char *msg,
                       size_t msglen) {
    sqlite3_stmt *exists = NULL, *put = NULL, *offer = NULL, *clear = NULL, *add = NULL;
    int result = -1, rc;
    pthread_mutex_lock(&s->wlock);
    if (store_begin(s->writer) != SQLITE_OK) goto out;
    if (put_step(s->writer, "SELECT 1 FROM subscribers WHERE msisdn = ?1", &exists) ||
        put_step(s->writer, sql_put_subscriber, &put))
        goto fail;
    sqlite3_bind_text(exists, 1, spec->msisdn, -1, SQLITE_STATIC);
    rc = sqlite3_step(exists);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) goto fail;
    *created = rc == SQLITE_DONE;

    sqlite3_bind_text(put, 1, spec->msisdn, -1, SQLITE_STATIC);
    if (spec->opet)
        sqlite3_bind_text(put, 2, spec->opet, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(put, 2);
    sqlite3_bind_text(put, 3, spec->subscription_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(put, 4, spec->price_plan, -1, SQLITE_STATIC);
    sqlite3_bind_int64(put, 5, spec->balance_minor);
    sqlite3_bind_int64(put, 6, spec->loan_minor);
    sqlite3_bind_text(put, 7, spec->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(put, 8, spec->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(put, 9, spec->ewallet_minor);
    rc = sqlite3_step(put);
    if (rc == SQLITE_CONSTRAINT && spec->opet) {
        snprintf(msg, msglen, "opet %.64s belongs to another subscriber", spec->opet);
        result = 1;
        goto fail;
    }
    if (rc != SQLITE_DONE) goto fail;

    if (spec->offers_set) {
        if (put_step(s->writer, "SELECT 1 FROM offers WHERE offer_id = ?1", &offer) ||
            put_step(s->writer, "DELETE FROM subscriber_offers WHERE msisdn = ?1", &clear) ||
            put_step(
                s->writer,
                "INSERT INTO subscriber_offers (msisdn, position, offer_id) VALUES (?1, ?2, ?3)",
                &add))
            goto fail;
        sqlite3_bind_text(clear, 1, spec->msisdn, -1, SQLITE_STATIC);
        if (sqlite3_step(clear) != SQLITE_DONE) goto fail;
        for (size_t i = 0; i < spec->n_offers; i++) {
            sqlite3_reset(offer);
            sqlite3_bind_text(offer, 1, spec->offers[i], -1, SQLITE_STATIC);
            rc = sqlite3_step(offer);
            if (rc == SQLITE_DONE) {
                snprintf(msg, msglen, "offers: no offer %.64s in the catalogue", spec->offers[i]);
                result = 1;
                goto fail;
            }
            if (rc != SQLITE_ROW) goto fail;
            sqlite3_reset(add);
            sqlite3_bind_text(add, 1, spec->msisdn, -1, SQLITE_STATIC);
            sqlite3_bind_int64(add, 2, (sqlite3_int64)i + 1);
            sqlite3_bind_text(add, 3, spec->offers[i], -1, SQLITE_STATIC);
            if (sqlite3_step(add) != SQLITE_DONE) goto fail;
        }
    }
    if (store_commit(s->writer) != SQLITE_OK) goto fail;
    result = 0;
    goto out;
fail:
    if (result < 0) {
        log_error("subscriber put: %s", sqlite3_errmsg(s->writer));
        snprintf(msg, msglen, "store failure");
    }
    store_rollback(s->writer);
out:
    sqlite3_finalize(exists);
    sqlite3_finalize(put);
    sqlite3_finalize(offer);
    sqlite3_finalize(clear);
    sqlite3_finalize(add);
    pthread_mutex_unlock(&s->wlock);
    return result;
}
