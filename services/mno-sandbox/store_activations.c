/* Activations: the only writes of the sandbox, on the one writable
 * connection under its mutex, each in one BEGIN IMMEDIATE transaction.
 *
 * mno_activate, in one transaction:
 *   1. the subscriber: unknown 404 UNKNOWN_SUBSCRIBER_ID, barred 403
 *      USER_BARRED, roaming 403 FORBIDDEN (as for reads; nothing recorded);
 *   2. a known transId (the idempotency key; one operator, so one table):
 *      another customer or offer is 409 CONFLICT; else the stored outcome
 *      is answered again (same status, confirmationCode, activationTime),
 *      or with repeatAnswer ALREADY_EXECUTED, 409 PURCHASE_ALREADY_EXECUTED
 *      for a completed OK one and 409 PURCHASE_IN_PROGRESS for a PENDING
 *      one (a FAIL is answered again: nothing was executed). Nothing is
 *      charged again;
 *   3. the offer must be in the operator's catalogue (offers), whether or
 *      not /offers proposes it to this subscriber (a real backend sells its
 *      catalogue), else 400 INVALID_PRODUCT. The fund source (requested, or
 *      the offer's own) must be the offer's: e.g. a LOAN purchase of a
 *      WALLET offer or a WALLET purchase of a FREE one is 400
 *      INVALID_PRODUCT;
 *   4. WALLET: the price must be at most the monetary (airtime) balance,
 *      else 402 INSUFFICIENT_FUNDS; the balance is debited. EWALLET: the
 *      same with the e-wallet balance, which is debited instead. LOAN: the
 *      price is added to the loan balance. FREE: nothing is charged (and
 *      nothing can be short), debits stays 0;
 *   5. a synchronous offer adds the plan (planId = offerId, texts from the
 *      offer, remaining = quota, expiry now + duration) and is OK with a
 *      confirmationCode "tp-" + 16 hex digits; an async offer is PENDING
 *      (charged now, plan and code when it completes);
 *   6. the activation is recorded, whatever the outcome of steps 3 to 5
 *      (a failed one as FAIL with its errorType and HTTP status), so a
 *      repeat is answered the same.
 * A 20-fold concurrent repeat finds the row of the first under the mutex:
 * one charge. `debits` (0 or 1) records whether the transId charged the
 * wallet or loan; `refunds` (0 or 1) whether a failed async completion
 * gave it back. */
#include "store_internal.h"

#include "shared/plumbing/crypto.h"
#include "shared/plumbing/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    W_SUB_MSISDN,
    W_SUB_OPET,
    W_FIND,
    W_OFFER,
    W_INSERT,
    W_DEBIT,
    W_LOAN,
    W_PLAN_TEXTS,
    W_ADD_PLAN,
    W_PENDING_ROW,
    W_COMPLETE_OK,
    W_COMPLETE_FAIL,
    W_REFUND_WALLET,
    W_REFUND_LOAN,
    W_DEBIT_EWALLET,
    W_REFUND_EWALLET,
    W_CALLBACK,
    W_EACH_PENDING,
    W_LIST_ALL,
    W_LIST_ONE,
};

#define ACTIVATION_COLUMNS                                                                      \
    "SELECT trans_id, customer, channel_id, service_provider, offer_id, fund_source,"           \
    " amount_minor, status, http_status, error_type, error_message, confirmation_code, debits," \
    " refunds, created_ms, completed_ms, callback_url, callback_attempts, callback_status"      \
    " FROM activations"

static const char sql_find[] = ACTIVATION_COLUMNS " WHERE trans_id = ?1";
static const char sql_list_all[] = ACTIVATION_COLUMNS " ORDER BY created_ms, rowid";
static const char sql_list_one[] = ACTIVATION_COLUMNS " WHERE trans_id = ?1";
static const char sql_offer[] =
    "SELECT fund_source, cost_minor, async FROM offers WHERE offer_id = ?1";
static const char sql_insert[] =
    "INSERT INTO activations (trans_id, customer, channel_id, service_provider, offer_id,"
    " fund_source, amount_minor, status, http_status, error_type, error_message,"
    " confirmation_code, debits, created_ms, completed_ms, callback_url)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
static const char sql_debit[] = "UPDATE subscribers SET balance_minor = balance_minor - ?2"
                                " WHERE msisdn = ?1 AND balance_minor >= ?2";
static const char sql_debit_ewallet[] = "UPDATE subscribers SET ewallet_minor = ewallet_minor - ?2"
                                        " WHERE msisdn = ?1 AND ewallet_minor >= ?2";
static const char sql_refund_ewallet[] =
    "UPDATE subscribers SET ewallet_minor = ewallet_minor + ?2 WHERE msisdn = ?1";
static const char sql_loan[] =
    "UPDATE subscribers SET loan_minor = loan_minor + ?2 WHERE msisdn = ?1";
static const char sql_plan_texts[] =
    "INSERT OR IGNORE INTO plan_texts (plan_id, lang, name)"
    " SELECT offer_id, lang, name FROM offer_texts WHERE offer_id = ?1";
/* ?1 msisdn, ?2 now (s), ?3 offer id. */
static const char sql_add_plan[] =
    "INSERT INTO subscribed_plans (msisdn, position, plan_id, expires_in_s, expires_at_s, app_type,"
    " unit, quota, remaining, overusage_policy, speed_limit, recurrence_days)"
    " SELECT ?1, coalesce((SELECT max(position) FROM subscribed_plans WHERE msisdn = ?1), 0) + 1,"
    "  o.offer_id, o.duration_s, ?2 + o.duration_s, o.app_type, o.unit, o.quota, o.quota,"
    "  o.overusage_policy, o.speed_limit,"
    "  CASE o.recurrence WHEN 'DAILY' THEN 1 WHEN 'WEEKLY' THEN 7 WHEN 'MONTHLY' THEN 30 END"
    " FROM offers o WHERE o.offer_id = ?3";
static const char sql_complete_ok[] =
    "UPDATE activations SET status = 'OK', confirmation_code = ?2, completed_ms = ?3"
    " WHERE trans_id = ?1 AND status = 'PENDING'";
static const char sql_complete_fail[] =
    "UPDATE activations SET status = 'FAIL', error_type = ?2, error_message = ?3,"
    " completed_ms = ?4, refunds = debits WHERE trans_id = ?1 AND status = 'PENDING'";
static const char sql_refund_wallet[] =
    "UPDATE subscribers SET balance_minor = balance_minor + ?2 WHERE msisdn = ?1";
static const char sql_refund_loan[] =
    "UPDATE subscribers SET loan_minor = max(0, loan_minor - ?2) WHERE msisdn = ?1";
static const char sql_callback[] =
    "UPDATE activations SET callback_attempts = callback_attempts + 1, callback_status = ?2"
    " WHERE trans_id = ?1";
static const char sql_each_pending[] =
    "SELECT trans_id FROM activations WHERE status = 'PENDING' ORDER BY created_ms, rowid";

sqlite3_stmt *mno_writer_stmt(mno_store *s, int id, const char *sql) {
    if (id < 0 || id >= MNO_WRITER_STMTS) return NULL;
    if (!s->wst[id] && sqlite3_prepare_v3(s->writer, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                          &s->wst[id], NULL) != SQLITE_OK) {
        log_error("prepare (%.60s): %s", sql, sqlite3_errmsg(s->writer));
        s->wst[id] = NULL;
        return NULL;
    }
    sqlite3_reset(s->wst[id]);
    sqlite3_clear_bindings(s->wst[id]);
    return s->wst[id];
}

/* Steps a statement without results. 0 or -1 (logged). */
static int run(mno_store *s, sqlite3_stmt *st) {
    if (!st) return -1;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        log_error("activation store: %s", sqlite3_errmsg(s->writer));
        return -1;
    }
    return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *t) {
    if (t && *t)
        sqlite3_bind_text(st, i, t, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* ---- an activation row ---- */

typedef struct {
    char trans_id[129];
    char customer[32];
    char channel_id[65];
    char service_provider[65];
    char offer_id[65];
    char fund_source[8]; /* "" = unknown */
    int64_t amount_minor;
    char status[8];
    int http_status;
    char error_type[32];
    char error_message[128];
    char confirmation_code[32];
    int debits, refunds;
    int64_t created_ms, completed_ms; /* completed_ms 0 = not yet */
    char callback_url[513];
    long callback_attempts;
    long callback_status; /* -1 = never called */
} activation;

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col) {
    snprintf(dst, cap, "%s", mno_col_text(st, col));
}

static void read_row(sqlite3_stmt *st, activation *a) {
    memset(a, 0, sizeof *a);
    copy_col(a->trans_id, sizeof a->trans_id, st, 0);
    copy_col(a->customer, sizeof a->customer, st, 1);
    copy_col(a->channel_id, sizeof a->channel_id, st, 2);
    copy_col(a->service_provider, sizeof a->service_provider, st, 3);
    copy_col(a->offer_id, sizeof a->offer_id, st, 4);
    copy_col(a->fund_source, sizeof a->fund_source, st, 5);
    a->amount_minor = sqlite3_column_int64(st, 6);
    copy_col(a->status, sizeof a->status, st, 7);
    a->http_status = sqlite3_column_int(st, 8);
    copy_col(a->error_type, sizeof a->error_type, st, 9);
    copy_col(a->error_message, sizeof a->error_message, st, 10);
    copy_col(a->confirmation_code, sizeof a->confirmation_code, st, 11);
    a->debits = sqlite3_column_int(st, 12);
    a->refunds = sqlite3_column_int(st, 13);
    a->created_ms = sqlite3_column_int64(st, 14);
    a->completed_ms = sqlite3_column_int64(st, 15);
    copy_col(a->callback_url, sizeof a->callback_url, st, 16);
    a->callback_attempts = (long)sqlite3_column_int64(st, 17);
    a->callback_status =
        sqlite3_column_type(st, 18) == SQLITE_NULL ? -1 : (long)sqlite3_column_int64(st, 18);
}

/* 1 found, 0 not, -1 error. */
static int find_activation(mno_store *s, const char *trans_id, activation *a) {
    sqlite3_stmt *st = mno_writer_stmt(s, W_FIND, sql_find);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, trans_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_row(st, a);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    log_error("activation look-up: %s", sqlite3_errmsg(s->writer));
    return -1;
}

/* The answer /activate gives for a stored activation: an errorResponse for
 * a refused one, else activateResponse. */
static mno_reply reply_for(const activation *a) {
    if (strcmp(a->status, "FAIL") == 0 && a->http_status != 200)
        return mno_reply_error(a->http_status, a->error_type,
                               a->error_message[0] ? a->error_message : NULL);
    json_t *o = json_object();
    json_t *st = json_object();
    json_object_set_new(st, "status", json_string(a->status));
    if (strcmp(a->status, "FAIL") == 0)
        json_object_set_new(
            st, "errorMessage",
            mno_error_json(a->error_type, a->error_message[0] ? a->error_message : NULL));
    json_object_set_new(o, "activationStatus", st);
    if (a->completed_ms > 0) {
        char when[32];
        mno_iso8601_utc(a->completed_ms / 1000, when, sizeof when);
        json_object_set_new(o, "activationTime", json_string(when));
    }
    if (a->confirmation_code[0])
        json_object_set_new(o, "confirmationCode", json_string(a->confirmation_code));
    if (a->fund_source[0]) json_object_set_new(o, "fundSource", json_string(a->fund_source));
    return (mno_reply){200, o};
}

static void new_confirmation_code(char out[32]) {
    unsigned char rnd[8];
    if (crypto_random(rnd, sizeof rnd) != 0) {
        /* Not expected; a code need only be unique, not secret. */
        static _Atomic unsigned long fallback;
        unsigned long n = ++fallback;
        memcpy(rnd, &n, sizeof rnd < sizeof n ? sizeof rnd : sizeof n);
    }
    strcpy(out, "tp-");
    for (size_t i = 0; i < sizeof rnd; i++) snprintf(out + 3 + 2 * i, 3, "%02x", rnd[i]);
}

static int add_plan(mno_store *s, const char *msisdn, const char *offer_id, int64_t now_ms) {
    sqlite3_stmt *st = mno_writer_stmt(s, W_PLAN_TEXTS, sql_plan_texts);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, offer_id, -1, SQLITE_STATIC);
    if (run(s, st) != 0) return -1;
    st = mno_writer_stmt(s, W_ADD_PLAN, sql_add_plan);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms / 1000);
    sqlite3_bind_text(st, 3, offer_id, -1, SQLITE_STATIC);
    if (run(s, st) != 0) return -1;
    return sqlite3_changes(s->writer) == 1 ? 0 : -1;
}

static int insert_activation(mno_store *s, const activation *a) {
    sqlite3_stmt *st = mno_writer_stmt(s, W_INSERT, sql_insert);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, a->trans_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->customer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->channel_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->service_provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->offer_id, -1, SQLITE_STATIC);
    bind_text_or_null(st, 6, a->fund_source);
    sqlite3_bind_int64(st, 7, a->amount_minor);
    sqlite3_bind_text(st, 8, a->status, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, a->http_status);
    bind_text_or_null(st, 10, a->error_type);
    bind_text_or_null(st, 11, a->error_message);
    bind_text_or_null(st, 12, a->confirmation_code);
    sqlite3_bind_int(st, 13, a->debits);
    sqlite3_bind_int64(st, 14, a->created_ms);
    if (a->completed_ms > 0) sqlite3_bind_int64(st, 15, a->completed_ms);
    bind_text_or_null(st, 16, a->callback_url);
    return run(s, st);
}

static void refuse(activation *a, int http_status, const char *type, const char *fmt,
                   const char *arg) {
    snprintf(a->status, sizeof a->status, "FAIL");
    a->http_status = http_status;
    snprintf(a->error_type, sizeof a->error_type, "%s", type);
    snprintf(a->error_message, sizeof a->error_message, fmt, arg);
}

/* Steps 3 to 5 for a new transId: fills a (status, charge, code). 0, or -1
 * on a store error. */
static int execute(mno_store *s, const mno_subscriber *sub, const mno_activate_request *rq,
                   int64_t now_ms, activation *a) {
    sqlite3_stmt *st = mno_writer_stmt(s, W_OFFER, sql_offer);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, rq->offer_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    char offer_fund[8] = "";
    int64_t cost = 0;
    bool async = false;
    if (rc == SQLITE_ROW) {
        copy_col(offer_fund, sizeof offer_fund, st, 0);
        cost = sqlite3_column_int64(st, 1);
        async = sqlite3_column_int(st, 2) != 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_error("offer look-up: %s", sqlite3_errmsg(s->writer));
        return -1;
    }
    snprintf(a->fund_source, sizeof a->fund_source, "%s",
             rq->fund_source[0] ? rq->fund_source : offer_fund);
    if (rc == SQLITE_DONE) {
        refuse(a, 400, "INVALID_PRODUCT", "unknown offerId %.64s", rq->offer_id);
        return 0;
    }
    a->amount_minor = cost;
    if (strcmp(a->fund_source, offer_fund) != 0) {
        char why[sizeof a->error_message];
        snprintf(why, sizeof why, "offer %.64s is sold with fundSource %s only", rq->offer_id,
                 offer_fund);
        refuse(a, 400, "INVALID_PRODUCT", "%s", why);
        return 0;
    }
    bool ewallet = strcmp(a->fund_source, "EWALLET") == 0;
    if (strcmp(a->fund_source, "WALLET") == 0 || ewallet) {
        if (cost > (ewallet ? sub->ewallet_minor : sub->balance_minor)) {
            refuse(a, 402, "INSUFFICIENT_FUNDS",
                   ewallet ? "e-wallet balance too low for offer %.64s"
                           : "monetary balance too low for offer %.64s",
                   rq->offer_id);
            return 0;
        }
        st = ewallet ? mno_writer_stmt(s, W_DEBIT_EWALLET, sql_debit_ewallet)
                     : mno_writer_stmt(s, W_DEBIT, sql_debit);
    } else if (strcmp(a->fund_source, "LOAN") == 0) {
        st = mno_writer_stmt(s, W_LOAN, sql_loan);
    } else {
        st = NULL; /* FREE: nothing to charge */
    }
    if (st) {
        sqlite3_bind_text(st, 1, sub->msisdn, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, cost);
        if (run(s, st) != 0 || sqlite3_changes(s->writer) != 1) return -1;
        a->debits = 1;
    } else if (strcmp(a->fund_source, "FREE") != 0) {
        return -1; /* a statement could not be prepared (logged) */
    }
    a->http_status = 200;
    if (async) {
        snprintf(a->status, sizeof a->status, "PENDING");
        return 0;
    }
    if (add_plan(s, sub->msisdn, rq->offer_id, now_ms) != 0) return -1;
    snprintf(a->status, sizeof a->status, "OK");
    new_confirmation_code(a->confirmation_code);
    a->completed_ms = now_ms;
    return 0;
}

mno_reply mno_activate(mno_store *s, const mno_activate_request *rq, mno_repeat_answer repeat,
                       int64_t now_ms, bool *new_pending) {
    if (new_pending) *new_pending = false;
    pthread_mutex_lock(&s->wlock);
    if (store_begin(s->writer) != SQLITE_OK) {
        pthread_mutex_unlock(&s->wlock);
        return mno_reply_error(500, "INTERNAL_ERROR", "cannot start the activation");
    }
    mno_reply out;
    mno_subscriber sub;
    sqlite3_stmt *st = rq->id_type == MNO_ID_OPET
                           ? mno_writer_stmt(s, W_SUB_OPET, mno_sql_subscriber_by_opet)
                           : mno_writer_stmt(s, W_SUB_MSISDN, mno_sql_subscriber_by_msisdn);
    if (!st) goto fail;
    if (!mno_admit(s->writer, st, rq->customer_id, rq->id_type, &sub, &out)) {
        store_rollback(s->writer);
        pthread_mutex_unlock(&s->wlock);
        return out;
    }

    activation a;
    int found = find_activation(s, rq->trans_id, &a);
    if (found < 0) goto fail;
    if (found) {
        store_rollback(s->writer); /* nothing written */
        pthread_mutex_unlock(&s->wlock);
        if (strcmp(a.customer, sub.msisdn) != 0 || strcmp(a.offer_id, rq->offer_id) != 0)
            return mno_reply_error(409, "CONFLICT",
                                   "transId already used for another customer or offer");
        if (repeat == MNO_REPEAT_ALREADY_EXECUTED && strcmp(a.status, "OK") == 0)
            return mno_reply_error(409, "PURCHASE_ALREADY_EXECUTED",
                                   "this transId was already executed");
        if (repeat == MNO_REPEAT_ALREADY_EXECUTED && strcmp(a.status, "PENDING") == 0)
            return mno_reply_error(409, "PURCHASE_IN_PROGRESS",
                                   "this transId is still in progress");
        return reply_for(&a);
    }

    memset(&a, 0, sizeof a);
    snprintf(a.trans_id, sizeof a.trans_id, "%s", rq->trans_id);
    snprintf(a.customer, sizeof a.customer, "%s", sub.msisdn);
    snprintf(a.channel_id, sizeof a.channel_id, "%s", rq->channel_id);
    snprintf(a.service_provider, sizeof a.service_provider, "%s", rq->service_provider);
    snprintf(a.offer_id, sizeof a.offer_id, "%s", rq->offer_id);
    snprintf(a.callback_url, sizeof a.callback_url, "%s", rq->callback_url);
    a.created_ms = now_ms;
    if (execute(s, &sub, rq, now_ms, &a) != 0 || insert_activation(s, &a) != 0 ||
        store_commit(s->writer) != SQLITE_OK)
        goto fail;
    pthread_mutex_unlock(&s->wlock);
    if (new_pending && strcmp(a.status, "PENDING") == 0) *new_pending = true;
    log_info("activation %s: offer %s %s (%s, %lld minor)", a.trans_id, a.offer_id, a.status,
             a.error_type[0] ? a.error_type : a.fund_source, (long long)a.amount_minor);
    return reply_for(&a);

fail:
    store_rollback(s->writer);
    pthread_mutex_unlock(&s->wlock);
    return mno_reply_error(500, "INTERNAL_ERROR", "activation failed in the store");
}

/* ---- async completion ---- */

int mno_activation_complete(mno_store *s, const char *trans_id, bool fail, int64_t now_ms,
                            mno_completion *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->wlock);
    if (store_begin(s->writer) != SQLITE_OK) {
        pthread_mutex_unlock(&s->wlock);
        return -1;
    }
    activation a;
    int found = find_activation(s, trans_id, &a);
    if (found <= 0 || strcmp(a.status, "PENDING") != 0) {
        store_rollback(s->writer);
        pthread_mutex_unlock(&s->wlock);
        return found < 0 ? -1 : 0;
    }
    sqlite3_stmt *st;
    if (fail) {
        snprintf(out->error_type, sizeof out->error_type, "INTERNAL_ERROR");
        snprintf(out->error_message, sizeof out->error_message,
                 "provisioning failed (simulated: callbackFail); the charge was refunded");
        if (a.debits) {
            st = strcmp(a.fund_source, "LOAN") == 0
                     ? mno_writer_stmt(s, W_REFUND_LOAN, sql_refund_loan)
                 : strcmp(a.fund_source, "EWALLET") == 0
                     ? mno_writer_stmt(s, W_REFUND_EWALLET, sql_refund_ewallet)
                     : mno_writer_stmt(s, W_REFUND_WALLET, sql_refund_wallet);
            if (!st) goto fail;
            sqlite3_bind_text(st, 1, a.customer, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, a.amount_minor);
            if (run(s, st) != 0) goto fail;
        }
        st = mno_writer_stmt(s, W_COMPLETE_FAIL, sql_complete_fail);
        if (!st) goto fail;
        sqlite3_bind_text(st, 1, trans_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, out->error_type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, out->error_message, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now_ms);
    } else {
        if (add_plan(s, a.customer, a.offer_id, now_ms) != 0) goto fail;
        new_confirmation_code(out->confirmation_code);
        st = mno_writer_stmt(s, W_COMPLETE_OK, sql_complete_ok);
        if (!st) goto fail;
        sqlite3_bind_text(st, 1, trans_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, out->confirmation_code, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now_ms);
    }
    if (run(s, st) != 0 || store_commit(s->writer) != SQLITE_OK) goto fail;
    pthread_mutex_unlock(&s->wlock);

    out->ok = !fail;
    snprintf(out->trans_id, sizeof out->trans_id, "%s", a.trans_id);
    snprintf(out->customer, sizeof out->customer, "%s", a.customer);
    snprintf(out->channel_id, sizeof out->channel_id, "%s", a.channel_id);
    snprintf(out->service_provider, sizeof out->service_provider, "%s", a.service_provider);
    snprintf(out->offer_id, sizeof out->offer_id, "%s", a.offer_id);
    snprintf(out->callback_url, sizeof out->callback_url, "%s", a.callback_url);
    log_info("activation %s completed %s", trans_id, fail ? "FAIL (refunded)" : "OK");
    return 1;

fail:
    store_rollback(s->writer);
    pthread_mutex_unlock(&s->wlock);
    return -1;
}

int mno_activation_callback_result(mno_store *s, const char *trans_id, long http_status) {
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = mno_writer_stmt(s, W_CALLBACK, sql_callback);
    int rc = -1;
    if (st) {
        sqlite3_bind_text(st, 1, trans_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, http_status);
        rc = run(s, st);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int mno_activations_each_pending(mno_store *s, void (*fn)(void *ctx, const char *trans_id),
                                 void *ctx) {
    /* Collected first: fn may take the writer lock. */
    char(*ids)[129] = NULL;
    size_t n = 0, cap = 0;
    int rc;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = mno_writer_stmt(s, W_EACH_PENDING, sql_each_pending);
    if (!st) {
        pthread_mutex_unlock(&s->wlock);
        return -1;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            void *grown = realloc(ids, cap * sizeof *ids);
            if (!grown) break;
            ids = grown;
        }
        snprintf(ids[n++], sizeof *ids, "%s", mno_col_text(st, 0));
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->wlock);
    for (size_t i = 0; i < n; i++) fn(ctx, ids[i]);
    free(ids);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- admin ---- */

static json_t *activation_json(const activation *a) {
    json_t *o = json_object();
    json_object_set_new(o, "transId", json_string(a->trans_id));
    json_object_set_new(o, "customerId", json_string(a->customer));
    json_object_set_new(o, "channelId", json_string(a->channel_id));
    json_object_set_new(o, "serviceProviderId", json_string(a->service_provider));
    json_object_set_new(o, "offerId", json_string(a->offer_id));
    json_object_set_new(o, "status", json_string(a->status));
    json_object_set_new(o, "httpStatus", json_integer(a->http_status));
    if (a->error_type[0]) json_object_set_new(o, "errorType", json_string(a->error_type));
    json_object_set_new(o, "fundSource",
                        a->fund_source[0] ? json_string(a->fund_source) : json_null());
    json_object_set_new(o, "amount", mno_money_json(a->amount_minor));
    json_object_set_new(o, "amountMinor", json_integer(a->amount_minor));
    json_object_set_new(o, "debits", json_integer(a->debits));
    json_object_set_new(o, "refunds", json_integer(a->refunds));
    json_object_set_new(o, "confirmationCode",
                        a->confirmation_code[0] ? json_string(a->confirmation_code) : json_null());
    json_object_set_new(o, "callbackUrl",
                        a->callback_url[0] ? json_string(a->callback_url) : json_null());
    json_object_set_new(o, "callbackAttempts", json_integer(a->callback_attempts));
    json_object_set_new(o, "callbackStatus",
                        a->callback_status >= 0 ? json_integer(a->callback_status) : json_null());
    json_object_set_new(o, "createdMs", json_integer(a->created_ms));
    json_object_set_new(o, "completedMs",
                        a->completed_ms > 0 ? json_integer(a->completed_ms) : json_null());
    return o;
}

json_t *mno_activations_json(mno_store *s, const char *trans_id) {
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = trans_id ? mno_writer_stmt(s, W_LIST_ONE, sql_list_one)
                                : mno_writer_stmt(s, W_LIST_ALL, sql_list_all);
    if (!st) {
        pthread_mutex_unlock(&s->wlock);
        return NULL;
    }
    if (trans_id) sqlite3_bind_text(st, 1, trans_id, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        activation a;
        read_row(st, &a);
        json_array_append_new(arr, activation_json(&a));
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->wlock);
    if (rc != SQLITE_DONE) {
        log_error("activations listing: %s", sqlite3_errmsg(s->writer));
        json_decref(arr);
        return NULL;
    }
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer((json_int_t)json_array_size(arr)));
    json_object_set_new(o, "activations", arr);
    return o;
}

long mno_store_reseed(mno_store *s) {
    static const char wipe[] =
        "DELETE FROM subscribed_plans; DELETE FROM subscriber_offers; DELETE FROM offer_texts;"
        " DELETE FROM offers; DELETE FROM plan_texts; DELETE FROM subscribers;"
        " DELETE FROM messages; DELETE FROM credits;";
    pthread_mutex_lock(&s->wlock);
    long deleted = -1;
    if (store_begin(s->writer) != SQLITE_OK) goto out;
    if (store_exec(s->writer, "DELETE FROM activations") != SQLITE_OK) goto rollback;
    deleted = (long)sqlite3_changes(s->writer);
    if (store_exec(s->writer, wipe) != SQLITE_OK) goto rollback;
    for (size_t i = 0; i < mno_seed_count; i++)
        if (store_exec(s->writer, mno_seeds[i]) != SQLITE_OK) goto rollback;
    if (store_commit(s->writer) != SQLITE_OK) goto rollback;
    log_info("reseeded: %ld activations deleted", deleted);
    goto out;
rollback:
    store_rollback(s->writer);
    deleted = -1;
out:
    pthread_mutex_unlock(&s->wlock);
    return deleted;
}
