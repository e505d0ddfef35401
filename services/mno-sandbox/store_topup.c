/* The top-up extension's records (README, "Top-up"): the messages Millom
 * asked the operator to send a subscriber (SMS or USSD; the sandbox sends
 * nothing, it keeps them for GET /admin/messages) and the credits Millom
 * asked for (each transId credits once). The backend-integration spec has
 * neither; a real operator's SMS gateway and recharge API take their place.
 * Every call runs on the one writable connection under its lock, in one
 * transaction. */
#include "store_internal.h"
#include "shared/plumbing/log.h"

#include <stdio.h>
#include <string.h>

/* Prepares sql into *st unless it is already. SQLITE_OK or the error. */
static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
    return *st ? SQLITE_OK : sqlite3_prepare_v2(db, sql, -1, st, NULL);
}

int mno_message_record(mno_store *s, const char *msisdn, const char *channel, const char *text,
                       const char *reference, int64_t now_ms, int64_t *message_id) {
    sqlite3_stmt *find = NULL, *add = NULL;
    int result = -1, rc;
    int has_ref = reference && *reference;
    pthread_mutex_lock(&s->wlock);
    if (store_begin(s->writer) != SQLITE_OK) goto out;
    if (prepare(s->writer, "SELECT message_id FROM messages WHERE reference = ?1", &find) ||
        prepare(s->writer,
                "INSERT INTO messages (msisdn, channel, text, reference, created_ms)"
                " VALUES (?1, ?2, ?3, ?4, ?5)",
                &add))
        goto fail;
    if (has_ref) {
        sqlite3_bind_text(find, 1, reference, -1, SQLITE_STATIC);
        rc = sqlite3_step(find);
        if (rc == SQLITE_ROW) { /* the same message again: recorded once */
            *message_id = sqlite3_column_int64(find, 0);
            result = 0;
            goto fail; /* nothing to commit */
        }
        if (rc != SQLITE_DONE) goto fail;
    }
    sqlite3_bind_text(add, 1, msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_text(add, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(add, 3, text, -1, SQLITE_STATIC);
    if (has_ref)
        sqlite3_bind_text(add, 4, reference, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(add, 4);
    sqlite3_bind_int64(add, 5, now_ms);
    if (sqlite3_step(add) != SQLITE_DONE) goto fail;
    *message_id = sqlite3_last_insert_rowid(s->writer);
    if (store_commit(s->writer) != SQLITE_OK) goto fail;
    result = 0;
    goto out;
fail:
    if (result < 0) log_error("message record: %s", sqlite3_errmsg(s->writer));
    store_rollback(s->writer);
out:
    sqlite3_finalize(find);
    sqlite3_finalize(add);
    pthread_mutex_unlock(&s->wlock);
    return result;
}

json_t *mno_messages_json(mno_store *s, const char *msisdn) {
    sqlite3_stmt *st = NULL;
    json_t *list = json_array(), *out = NULL;
    pthread_mutex_lock(&s->wlock);
    if (!list || prepare(s->writer,
                         "SELECT message_id, msisdn, channel, text, reference, created_ms"
                         " FROM messages WHERE ?1 IS NULL OR msisdn = ?1 ORDER BY message_id",
                         &st))
        goto out;
    if (msisdn)
        sqlite3_bind_text(st, 1, msisdn, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 1);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char at[32];
        mno_iso8601_utc(sqlite3_column_int64(st, 5) / 1000, at, sizeof at);
        json_array_append_new(list,
                              json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s}", "messageId",
                                        (json_int_t)sqlite3_column_int64(st, 0), "to",
                                        mno_col_text(st, 1), "channel", mno_col_text(st, 2), "text",
                                        mno_col_text(st, 3), "reference",
                                        (const char *)sqlite3_column_text(st, 4), "createdAt", at));
    }
    if (rc != SQLITE_DONE) goto out;
    out = json_pack("{s:O, s:I}", "messages", list, "count", (json_int_t)json_array_size(list));
out:
    if (!out) log_error("messages listing: %s", sqlite3_errmsg(s->writer));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->wlock);
    json_decref(list);
    return out;
}

/* The answer to a credit (first or repeated). */
static mno_reply credit_answer(const char *trans_id, const char *msisdn, int64_t amount_minor,
                               int64_t balance_minor) {
    mno_reply r = {200, json_pack("{s:s, s:s, s:I, s:o}", "transId", trans_id, "customerId", msisdn,
                                  "creditedMinor", (json_int_t)amount_minor, "balance",
                                  mno_money_json(balance_minor))};
    return r;
}

mno_reply mno_credit(mno_store *s, const char *msisdn, const char *trans_id, int64_t amount_minor,
                     int64_t now_ms) {
    sqlite3_stmt *who = NULL, *known = NULL, *add = NULL, *credit = NULL;
    mno_reply reply = {0, NULL};
    mno_subscriber sub;
    pthread_mutex_lock(&s->wlock);
    if (store_begin(s->writer) != SQLITE_OK) goto fail;
    if (prepare(s->writer, mno_sql_subscriber_by_msisdn, &who) ||
        prepare(s->writer, "SELECT msisdn, amount_minor FROM credits WHERE trans_id = ?1",
                &known) ||
        prepare(s->writer,
                "INSERT INTO credits (trans_id, msisdn, amount_minor, created_ms)"
                " VALUES (?1, ?2, ?3, ?4)",
                &add) ||
        prepare(s->writer,
                "UPDATE subscribers SET balance_minor = balance_minor + ?2 WHERE msisdn = ?1",
                &credit))
        goto fail;
    if (!mno_admit(s->writer, who, msisdn, MNO_ID_MSISDN, &sub, &reply)) {
        store_rollback(s->writer);
        goto out;
    }
    sqlite3_bind_text(known, 1, trans_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(known);
    if (rc == SQLITE_ROW) {
        int same = strcmp(mno_col_text(known, 0), sub.msisdn) == 0 &&
                   sqlite3_column_int64(known, 1) == amount_minor;
        reply = same ? credit_answer(trans_id, sub.msisdn, amount_minor, sub.balance_minor)
                     : mno_reply_error(409, "CONFLICT", "transId was used for another credit");
        store_rollback(s->writer);
        goto out;
    }
    if (rc != SQLITE_DONE) goto fail;
    sqlite3_bind_text(add, 1, trans_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(add, 2, sub.msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(add, 3, amount_minor);
    sqlite3_bind_int64(add, 4, now_ms);
    sqlite3_bind_text(credit, 1, sub.msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(credit, 2, amount_minor);
    if (sqlite3_step(add) != SQLITE_DONE || sqlite3_step(credit) != SQLITE_DONE) goto fail;
    if (store_commit(s->writer) != SQLITE_OK) goto fail;
    reply = credit_answer(trans_id, sub.msisdn, amount_minor, sub.balance_minor + amount_minor);
    goto out;
fail:
    log_error("credit: %s", sqlite3_errmsg(s->writer));
    store_rollback(s->writer);
    json_decref(reply.body);
    reply = mno_reply_error(500, "INTERNAL_ERROR", "the credit could not be stored");
out:
    sqlite3_finalize(who);
    sqlite3_finalize(known);
    sqlite3_finalize(add);
    sqlite3_finalize(credit);
    pthread_mutex_unlock(&s->wlock);
    return reply;
}
