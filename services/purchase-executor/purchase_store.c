/* The purchases table: every SQL statement of purchase-executor. Each
 * state change and its PurchaseEvent (outbox) commit in one transaction;
 * the checks that decide whether a purchase may start (idempotency,
 * purchase timer) run in the same BEGIN IMMEDIATE
 * transaction as its insert, so two commands cannot both pass them. */
#include "purchase.h"
#include "shared/plumbing/topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "shared/contracts/fund_source.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/changelog.h"
#include "shared/patterns/outbox.h"
#include "shared/plumbing/stmt_cache.h"
#include "shared/plumbing/store.h"
#include "shared/plumbing/text.h"

static const char PURCHASES_SQL[] =
    "CREATE TABLE purchases ("
    " service_provider TEXT NOT NULL,"
    " transid TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL,"
    " operator TEXT NOT NULL,"
    " subscriber TEXT NOT NULL,"
    " key_type TEXT NOT NULL,"
    " plan_id TEXT NOT NULL,"
    " price_minor INTEGER NOT NULL,"
    " currency TEXT NOT NULL,"
    " fund_source TEXT NOT NULL,"
    " state TEXT NOT NULL"
    "   CHECK (state IN ('received','activating','pending','completed','failed')),"
    " confirmation_code TEXT,"
    " error_type TEXT,"
    " message TEXT,"
    " http_status INTEGER,"
    " response_body TEXT,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " maybe_executed INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_ms INTEGER,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " completed_ms INTEGER,"
    " channel TEXT,"
    " language TEXT,"
    " client_name TEXT,"
    " PRIMARY KEY (service_provider, transid));"
    /* The purchase timer and subscriber look-ups. */
    "CREATE INDEX purchases_timer ON purchases (operator, subscriber, plan_id, created_ms);"
    /* Callbacks and transid look-ups. Unique: the operator de-duplicates
     * activations by transId alone, so two providers must not share one
     * at the same operator (purchase_create refuses the second). */
    "CREATE UNIQUE INDEX purchases_operator_transid ON purchases (operator, transid);"
    /* The retry thread's due query. */
    "CREATE INDEX purchases_due ON purchases (state, next_attempt_ms);";

/* Rows follow their partition (shared/patterns/changelog.h): the partition of the
 * command that created the row, and the version of its last change. */
static const char PURCHASES_CHANGELOG_SQL[] =
    "ALTER TABLE purchases ADD COLUMN cl_version INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE purchases ADD COLUMN cl_partition INTEGER NOT NULL DEFAULT -1;";

/* Pending purchases are re-checked (executor.h): their due time lives in
 * next_attempt_ms like an activating retry's, and `rechecks` counts the
 * re-checks that found them still pending (the backoff). Rows left pending
 * by an older version have no due time: they are re-checked at once. */
static const char PURCHASES_RECHECK_SQL[] =
    "ALTER TABLE purchases ADD COLUMN rechecks INTEGER NOT NULL DEFAULT 0;"
    "UPDATE purchases SET next_attempt_ms = 0"
    " WHERE state = 'pending' AND next_attempt_ms IS NULL;";

/* The transId sent to the operator is namespaced per provider
 * (purchase_operator_transid), so two providers may use the same transid
 * at one operator: the operator's de-duplication key is op_transid, unique
 * per operator, and callbacks find their purchase by it. Rows stored
 * before keep the transId they were sent with (the provider's transid), so
 * a purchase in flight at the upgrade resumes with the same one. */
static const char PURCHASES_OP_TRANSID_SQL[] =
    "ALTER TABLE purchases ADD COLUMN op_transid TEXT;"
    "UPDATE purchases SET op_transid = transid WHERE op_transid IS NULL;"
    "DROP INDEX purchases_operator_transid;"
    "CREATE UNIQUE INDEX purchases_operator_op_transid ON purchases (operator, op_transid);"
    "CREATE INDEX purchases_operator_transid ON purchases (operator, transid);";

/* Each purchase keeps the request id of the command that created it
 * (purchase.h); the outbox keeps each event's. */
static const char PURCHASES_CORRELATOR_SQL[] = "ALTER TABLE purchases ADD COLUMN correlator TEXT;";

/* An operator callback's errorCode and redirectLink (millom-callback.yaml),
 * kept with the purchase and passed on to its provider. */
static const char PURCHASES_CALLBACK_DETAILS_SQL[] =
    "ALTER TABLE purchases ADD COLUMN error_code TEXT;"
    "ALTER TABLE purchases ADD COLUMN redirect_link TEXT;";

/* Whether the provider's answer carried the final state (purchase.h's
 * outcome_answered): a later "answered 202 after all" knows from it
 * whether the callback is still owed. */
static const char PURCHASES_OUTCOME_ANSWERED_SQL[] =
    "ALTER TABLE purchases ADD COLUMN outcome_answered INTEGER NOT NULL DEFAULT 0;";

/* Top-up requests (topups.h, which reads and writes them): one row each,
 * kept here with the store's other tables. */
static const char TOPUPS_SQL[] = "CREATE TABLE topups ("
                                 " topup_id TEXT PRIMARY KEY,"
                                 " service_provider TEXT NOT NULL,"
                                 " operator TEXT NOT NULL,"
                                 " partner_reference TEXT NOT NULL,"
                                 " requestor_msisdn TEXT NOT NULL,"
                                 " requestor_name TEXT NOT NULL,"
                                 " donor_msisdn TEXT NOT NULL,"
                                 " donor_name TEXT NOT NULL,"
                                 " donor_link TEXT NOT NULL,"
                                 " state INTEGER NOT NULL,"
                                 " amount_minor INTEGER NOT NULL DEFAULT 0,"
                                 " error TEXT NOT NULL DEFAULT '',"
                                 " created_ms INTEGER NOT NULL,"
                                 " updated_ms INTEGER NOT NULL)";

static const char *const purchase_keys[] = {"service_provider", "transid", NULL};
static const changelog_table purchase_tables[] = {
    {.table = "purchases", .key_columns = purchase_keys}};
const changelog_spec purchase_changelog = {
    .topic = TOPIC_PURCHASE_CHANGELOG,
    .tables = purchase_tables,
    .n_tables = sizeof purchase_tables / sizeof purchase_tables[0],
};

/* Migration 1: purchases; 2: the outbox; 3: changelog tables; 4: the
 * purchases' changelog columns; 5: pending re-checks; 6: operator transIds;
 * 7 and 8: request ids of purchases and of outbox events; 9: callback
 * details; 10: top-up requests (topups.h); 11: outcome_answered. Append,
 * never edit. Every
 * connection captures its changes for the changelog (purchases only). */
sqlite3 *purchase_store_open(const char *path, char *err, size_t errlen) {
    const char *const migrations[] = {PURCHASES_SQL,
                                      outbox_migration_sql,
                                      changelog_migration_sql,
                                      PURCHASES_CHANGELOG_SQL,
                                      PURCHASES_RECHECK_SQL,
                                      PURCHASES_OP_TRANSID_SQL,
                                      PURCHASES_CORRELATOR_SQL,
                                      outbox_correlator_migration_sql,
                                      PURCHASES_CALLBACK_DETAILS_SQL,
                                      TOPUPS_SQL,
                                      PURCHASES_OUTCOME_ANSWERED_SQL};
    sqlite3 *db =
        store_open_path(path, migrations, sizeof migrations / sizeof migrations[0], err, errlen);
    if (db && changelog_capture(db, &purchase_changelog, err, errlen) != 0) {
        store_close(db);
        return NULL;
    }
    return db;
}

/* ------------------------------------------------------------- helpers */

static const char *const STATE_NAMES[] = {"received", "activating", "pending", "completed",
                                          "failed"};

const char *purchase_state_name(purchase_state s) {
    return (unsigned)s < sizeof STATE_NAMES / sizeof STATE_NAMES[0] ? STATE_NAMES[s] : "unknown";
}

int purchase_state_parse(const char *name) {
    for (size_t i = 0; name && i < sizeof STATE_NAMES / sizeof STATE_NAMES[0]; i++)
        if (strcmp(STATE_NAMES[i], name) == 0) return (int)i;
    return -1;
}

Millom__V1__PurchaseState purchase_state_proto(purchase_state s) {
    switch (s) {
    case PS_RECEIVED: return MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_RECEIVED;
    case PS_ACTIVATING: return MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_ACTIVATING;
    case PS_PENDING: return MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_PENDING;
    case PS_COMPLETED: return MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED;
    case PS_FAILED: return MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_FAILED;
    }
    return MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_UNSPECIFIED;
}

void purchase_clear(purchase *p) {
    if (!p) return;
    free(p->response_body);
    p->response_body = NULL;
}

int purchase_copy(purchase *dst, const purchase *src) {
    if (dst == src) return 0;
    char *body = src->response_body ? strdup(src->response_body) : NULL;
    if (src->response_body && !body) return -1;
    free(dst->response_body);
    *dst = *src;
    dst->response_body = body;
    return 0;
}

void purchase_fingerprint(const char *op, const char *key_type, const char *subscriber,
                          const char *plan_id, const char *offer_context, const char *fund_source,
                          char out[65]) {
    /* Length-prefixed fields, so no two requests share a canonical form. */
    const char *fields[] = {op, key_type, subscriber, plan_id, offer_context, fund_source};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!ctx) return;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, "millom.purchase.v1\n", 19);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *f = fields[i] ? fields[i] : "";
        char len[24];
        int n = snprintf(len, sizeof len, "%zu:", strlen(f));
        EVP_DigestUpdate(ctx, len, (size_t)n);
        EVP_DigestUpdate(ctx, f, strlen(f));
        EVP_DigestUpdate(ctx, "\n", 1);
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < mdlen && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * (mdlen < 32 ? mdlen : 32)] = '\0';
}

void purchase_operator_transid(const char *sp, const char *transid, char out[37]) {
    const char *fields[] = {sp, transid};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!ctx) return;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, "millom.operator-transid.v1\n", 27);
    for (size_t i = 0; ok && i < sizeof fields / sizeof fields[0]; i++) {
        const char *f = fields[i] ? fields[i] : "";
        char len[24];
        int n = snprintf(len, sizeof len, "%zu:", strlen(f));
        ok = EVP_DigestUpdate(ctx, len, (size_t)n) && EVP_DigestUpdate(ctx, f, strlen(f)) &&
             EVP_DigestUpdate(ctx, "\n", 1);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen >= 16;
    EVP_MD_CTX_free(ctx);
    if (!ok) return;
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x80); /* version 8 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* variant 10 */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (unsigned i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[md[i] >> 4];
        out[o++] = hex[md[i] & 15];
    }
    out[o] = '\0';
}

/* ----------------------------------------------------------- rows */

#define COLUMNS                                                                           \
    "service_provider, transid, fingerprint, operator, subscriber, key_type, plan_id,"    \
    " price_minor, currency, fund_source, state, confirmation_code, error_type, message," \
    " http_status, response_body, attempts, maybe_executed, next_attempt_ms, created_ms," \
    " updated_ms, completed_ms, channel, language, client_name, rechecks, op_transid,"    \
    " correlator, error_code, redirect_link, outcome_answered"

static const char *col_text(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* Fills p from a row selected with COLUMNS. -1 out of memory. */
static int read_row(sqlite3_stmt *st, purchase *p) {
    purchase_clear(p);
    memset(p, 0, sizeof *p);
    text_copy(p->service_provider, sizeof p->service_provider, col_text(st, 0));
    text_copy(p->transid, sizeof p->transid, col_text(st, 1));
    text_copy(p->fingerprint, sizeof p->fingerprint, col_text(st, 2));
    text_copy(p->op, sizeof p->op, col_text(st, 3));
    text_copy(p->subscriber, sizeof p->subscriber, col_text(st, 4));
    text_copy(p->key_type, sizeof p->key_type, col_text(st, 5));
    text_copy(p->plan_id, sizeof p->plan_id, col_text(st, 6));
    p->price_minor = sqlite3_column_int64(st, 7);
    text_copy(p->currency, sizeof p->currency, col_text(st, 8));
    text_copy(p->fund_source, sizeof p->fund_source, col_text(st, 9));
    int s = purchase_state_parse(col_text(st, 10));
    p->state = s < 0 ? PS_RECEIVED : (purchase_state)s;
    text_copy(p->confirmation_code, sizeof p->confirmation_code, col_text(st, 11));
    text_copy(p->error_type, sizeof p->error_type, col_text(st, 12));
    text_copy(p->message, sizeof p->message, col_text(st, 13));
    p->http_status = sqlite3_column_int(st, 14);
    if (sqlite3_column_type(st, 15) != SQLITE_NULL) {
        const void *b = sqlite3_column_text(st, 15);
        int n = sqlite3_column_bytes(st, 15);
        p->response_body = malloc((size_t)n + 1);
        if (!p->response_body) return -1;
        memcpy(p->response_body, b ? b : "", (size_t)n);
        p->response_body[n] = '\0';
    }
    p->attempts = sqlite3_column_int(st, 16);
    p->maybe_executed = sqlite3_column_int(st, 17);
    p->next_attempt_ms = sqlite3_column_int64(st, 18);
    p->created_ms = sqlite3_column_int64(st, 19);
    p->updated_ms = sqlite3_column_int64(st, 20);
    p->completed_ms = sqlite3_column_int64(st, 21);
    text_copy(p->channel, sizeof p->channel, col_text(st, 22));
    text_copy(p->language, sizeof p->language, col_text(st, 23));
    text_copy(p->client_name, sizeof p->client_name, col_text(st, 24));
    p->rechecks = sqlite3_column_int(st, 25);
    /* NULL only in a row replicated from an instance older than migration
     * 6, which sent the provider's transid. */
    text_copy(p->op_transid, sizeof p->op_transid,
              sqlite3_column_type(st, 26) == SQLITE_NULL ? p->transid : col_text(st, 26));
    text_copy(p->correlator, sizeof p->correlator, col_text(st, 27));
    text_copy(p->error_code, sizeof p->error_code, col_text(st, 28));
    text_copy(p->redirect_link, sizeof p->redirect_link, col_text(st, 29));
    p->outcome_answered = sqlite3_column_int(st, 30);
    return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
    if (s && *s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_int64_or_null(sqlite3_stmt *st, int i, int64_t v) {
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* The statement for sql (a string literal) from the connection's cache
 * (stmt_cache.h): a purchase runs the same dozen statements, and preparing
 * them (with the changelog's triggers) cost more than running them. Give
 * it back with stmt_done. */
static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
    *st = stmt_get(db, sql);
    return *st ? SQLITE_OK : SQLITE_ERROR;
}

static int is_busy(int rc) {
    rc &= 0xff;
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

/* Steps st (finalizing it) for at most one purchase: 1 with *out, 0 when
 * there is none, -1 on a store error (logged under `what`). */
static int get_one(sqlite3 *db, sqlite3_stmt *st, purchase *out, const char *what) {
    int rc = sqlite3_step(st), found;
    if (rc == SQLITE_ROW)
        found = read_row(st, out) == 0 ? 1 : -1;
    else if (rc == SQLITE_DONE)
        found = 0;
    else {
        log_warn("sqlite %s: %s", what, sqlite3_errmsg(db));
        found = -1;
    }
    stmt_done(db, st);
    return found;
}

int purchase_get(sqlite3 *db, const char *sp, const char *transid, purchase *out) {
    sqlite3_stmt *st;
    if (prepare(db, "SELECT " COLUMNS " FROM purchases WHERE service_provider = ? AND transid = ?",
                &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, sp, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, transid, -1, SQLITE_STATIC);
    return get_one(db, st, out, "purchase_get");
}

/* ---------------------------------------------------------- events */

/* What p's row and event say of outcome_answered: only a final state can
 * have been in the provider's answer (purchase.h). */
static int outcome_answered_of(const purchase *p) {
    return PS_FINAL(p->state) && p->outcome_answered;
}

/* p's operator transId: its own, or derived when the caller left it empty. */
static const char *op_transid_of(const purchase *p, char buf[37]) {
    if (p->op_transid[0]) return p->op_transid;
    purchase_operator_transid(p->service_provider, p->transid, buf);
    return buf;
}

/* The stored name (fund_source.h's; "" in rows older than the column's
 * use) as the enum; WALLET, the spec's default, for anything else. */
static Millom__V1__FundSource fund_source_proto(const char *s) {
    Millom__V1__FundSource f = MILLOM__V1__FUND_SOURCE__FUND_SOURCE_WALLET;
    (void)fund_source_parse(s, &f);
    return f;
}

uint8_t *purchase_event_pack(const purchase *p, int64_t occurred_ms, size_t *len) {
    Millom__V1__PurchaseEvent ev = MILLOM__V1__PURCHASE_EVENT__INIT;
    ev.transid = (char *)p->transid;
    ev.service_provider = (char *)p->service_provider;
    ev.operator_ = (char *)p->op;
    ev.msisdn = (char *)p->subscriber;
    ev.plan_id = (char *)p->plan_id;
    ev.price_minor = p->price_minor;
    ev.currency = (char *)p->currency;
    ev.fund_source = fund_source_proto(p->fund_source);
    ev.state = purchase_state_proto(p->state);
    ev.confirmation_code = (char *)p->confirmation_code;
    ev.error_type = (char *)p->error_type;
    ev.message = (char *)p->message;
    ev.occurred_at_ms = occurred_ms;
    ev.channel = (char *)p->channel;
    ev.created_at_ms = p->created_ms;
    ev.attempts = p->attempts;
    char derived[37];
    ev.operator_trans_id = (char *)op_transid_of(p, derived);
    ev.error_code = (char *)p->error_code;
    ev.redirect_link = (char *)p->redirect_link;
    ev.outcome_answered = outcome_answered_of(p);
    size_t n = millom__v1__purchase_event__get_packed_size(&ev);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return NULL;
    millom__v1__purchase_event__pack(&ev, buf);
    *len = n;
    return buf;
}

/* p's event, under the request id of the purchase (correlator: the
 * stored row's), whichever thread writes it. */
static int add_event(sqlite3 *db, const purchase *p, const char *correlator, int64_t occurred_ms) {
    size_t len = 0;
    uint8_t *buf = purchase_event_pack(p, occurred_ms, &len);
    if (!buf) return SQLITE_NOMEM;
    int rc = outbox_add_correlated(db, correlator, TOPIC_PURCHASE_EVENTS, p->subscriber,
                                   strlen(p->subscriber), buf, len);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------- create */

int purchase_timer_hit(sqlite3 *db, const purchase *p, int64_t since_ms, int64_t *created) {
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT created_ms FROM purchases"
                " WHERE operator = ? AND subscriber = ? AND plan_id = ? AND created_ms > ?"
                " AND state IN ('received','activating','pending','completed')"
                " AND NOT (service_provider = ? AND transid = ?)"
                " ORDER BY created_ms DESC LIMIT 1",
                &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, p->op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->subscriber, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->plan_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, since_ms);
    sqlite3_bind_text(st, 5, p->service_provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, p->transid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), hit;
    if (rc == SQLITE_ROW) {
        if (created) *created = sqlite3_column_int64(st, 0);
        hit = 1;
    } else {
        hit = rc == SQLITE_DONE ? 0 : -1;
    }
    stmt_done(db, st);
    return hit;
}

/* 1 when (operator, op_transid) is already stored, 0 no, -1 error. With
 * derived transIds only a row from before them could hold one. */
static int op_transid_taken(sqlite3 *db, const char *op, const char *op_transid) {
    sqlite3_stmt *st;
    if (prepare(db, "SELECT 1 FROM purchases WHERE operator = ? AND op_transid = ?", &st) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op_transid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    stmt_done(db, st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int insert_row(sqlite3 *db, const purchase *p) {
    sqlite3_stmt *st;
    int rc = prepare(db,
                     "INSERT INTO purchases (" COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                     " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     &st);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_text(st, 1, p->service_provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->transid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->subscriber, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, p->key_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, p->plan_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, p->price_minor);
    sqlite3_bind_text(st, 9, p->currency, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, p->fund_source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, purchase_state_name(p->state), -1, SQLITE_STATIC);
    bind_text_or_null(st, 12, p->confirmation_code);
    bind_text_or_null(st, 13, p->error_type);
    bind_text_or_null(st, 14, p->message);
    bind_int64_or_null(st, 15, p->http_status);
    bind_text_or_null(st, 16, p->response_body);
    sqlite3_bind_int(st, 17, p->attempts);
    sqlite3_bind_int(st, 18, p->maybe_executed);
    sqlite3_bind_int64(st, 19, p->next_attempt_ms);
    sqlite3_bind_int64(st, 20, p->created_ms);
    sqlite3_bind_int64(st, 21, p->updated_ms);
    bind_int64_or_null(st, 22, p->completed_ms);
    bind_text_or_null(st, 23, p->channel);
    bind_text_or_null(st, 24, p->language);
    bind_text_or_null(st, 25, p->client_name);
    sqlite3_bind_int(st, 26, p->rechecks);
    char derived[37];
    sqlite3_bind_text(st, 27, op_transid_of(p, derived), -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 28, p->correlator);
    bind_text_or_null(st, 29, p->error_code);
    bind_text_or_null(st, 30, p->redirect_link);
    sqlite3_bind_int(st, 31, outcome_answered_of(p));
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) log_warn("sqlite insert purchase: %s", sqlite3_errmsg(db));
    stmt_done(db, st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

create_result purchase_create(sqlite3 *db, const purchase *p, int64_t timer_ms, purchase *existing,
                              int64_t *other_created_ms) {
    int rc = store_begin(db);
    if (rc != SQLITE_OK) {
        log_warn("purchase_create: BEGIN: %s", sqlite3_errmsg(db));
        return is_busy(rc) ? CREATE_BUSY : CREATE_ERROR;
    }
    create_result res = CREATE_ERROR;
    int found = purchase_get(db, p->service_provider, p->transid, existing);
    if (found < 0) goto rollback;
    if (found) {
        res = CREATE_EXISTS;
        goto rollback;
    }
    char derived[37];
    int taken = op_transid_taken(db, p->op, op_transid_of(p, derived));
    if (taken < 0) goto rollback;
    if (taken) {
        res = CREATE_TRANSID_TAKEN;
        goto rollback;
    }
    if (timer_ms > 0) {
        int hit = purchase_timer_hit(db, p, p->created_ms - timer_ms, other_created_ms);
        if (hit < 0) goto rollback;
        if (hit) {
            res = CREATE_TIMER;
            goto rollback;
        }
    }
    rc = insert_row(db, p);
    if (rc == SQLITE_OK) rc = add_event(db, p, p->correlator, p->created_ms);
    if (rc == SQLITE_OK) rc = store_commit(db);
    if (rc == SQLITE_OK) return CREATE_OK;
    log_warn("purchase_create: %s", sqlite3_errmsg(db));
    res = is_busy(rc) ? CREATE_BUSY : CREATE_ERROR;
rollback:
    store_rollback(db);
    return res;
}

/* ---------------------------------------------------------- update */

int purchase_update(sqlite3 *db, const purchase *next, unsigned expect_states, int expect_attempts,
                    purchase *current) {
    int rc = store_begin(db);
    if (rc != SQLITE_OK) {
        log_warn("purchase_update: BEGIN: %s", sqlite3_errmsg(db));
        return -1;
    }
    purchase cur = {0};
    int result = -1;
    int found = purchase_get(db, next->service_provider, next->transid, &cur);
    if (found <= 0) {
        if (found == 0) log_warn("purchase_update: no purchase %s", next->transid);
        goto rollback;
    }
    if (!(expect_states & PS_MASK(cur.state)) ||
        (expect_attempts >= 0 && cur.attempts != expect_attempts)) {
        result = 0;
        if (current && purchase_copy(current, &cur) != 0) result = -1;
        goto rollback;
    }
    sqlite3_stmt *st;
    rc = prepare(db,
                 "UPDATE purchases SET state = ?, confirmation_code = ?, error_type = ?,"
                 " message = ?, http_status = ?, response_body = ?, attempts = ?,"
                 " maybe_executed = ?, next_attempt_ms = ?, updated_ms = ?, completed_ms = ?,"
                 " rechecks = ?, error_code = ?, redirect_link = ?, outcome_answered = ?"
                 " WHERE service_provider = ? AND transid = ?",
                 &st);
    if (rc != SQLITE_OK) goto rollback;
    sqlite3_bind_text(st, 1, purchase_state_name(next->state), -1, SQLITE_STATIC);
    bind_text_or_null(st, 2, next->confirmation_code);
    bind_text_or_null(st, 3, next->error_type);
    bind_text_or_null(st, 4, next->message);
    bind_int64_or_null(st, 5, next->http_status);
    bind_text_or_null(st, 6, next->response_body);
    sqlite3_bind_int(st, 7, next->attempts);
    sqlite3_bind_int(st, 8, next->maybe_executed);
    /* Only rows the retry thread still calls about have a due time. */
    if (next->state == PS_ACTIVATING || next->state == PS_PENDING)
        sqlite3_bind_int64(st, 9, next->next_attempt_ms);
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_int64(st, 10, next->updated_ms);
    bind_int64_or_null(st, 11, next->completed_ms);
    sqlite3_bind_int(st, 12, next->rechecks);
    bind_text_or_null(st, 13, next->error_code);
    bind_text_or_null(st, 14, next->redirect_link);
    sqlite3_bind_int(st, 15, outcome_answered_of(next));
    sqlite3_bind_text(st, 16, next->service_provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 17, next->transid, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    stmt_done(db, st);
    if (rc != SQLITE_DONE) goto rollback;
    rc = SQLITE_OK;
    if (next->state != cur.state) rc = add_event(db, next, cur.correlator, next->updated_ms);
    if (rc == SQLITE_OK) rc = store_commit(db);
    if (rc == SQLITE_OK) {
        purchase_clear(&cur);
        return 1;
    }
rollback:
    if (result < 0) log_warn("purchase_update %s: %s", next->transid, sqlite3_errmsg(db));
    store_rollback(db);
    purchase_clear(&cur);
    return result;
}

int purchase_owe_callback(sqlite3 *db, const char *sp, const char *transid, int64_t now) {
    if (store_begin(db) != SQLITE_OK) {
        log_warn("purchase_owe_callback: BEGIN: %s", sqlite3_errmsg(db));
        return -1;
    }
    purchase cur = {0};
    int result = -1;
    sqlite3_stmt *st;
    if (prepare(db,
                "UPDATE purchases SET outcome_answered = 0"
                " WHERE service_provider = ? AND transid = ? AND outcome_answered = 1"
                " AND state IN ('completed','failed')",
                &st) != SQLITE_OK)
        goto rollback;
    sqlite3_bind_text(st, 1, sp, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, transid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    stmt_done(db, st);
    if (rc != SQLITE_DONE) goto rollback;
    if (sqlite3_changes(db) == 0) {
        result = 0;
        goto rollback;
    }
    if (purchase_get(db, sp, transid, &cur) != 1) goto rollback;
    rc = add_event(db, &cur, cur.correlator, now);
    if (rc == SQLITE_OK) rc = store_commit(db);
    if (rc == SQLITE_OK) {
        purchase_clear(&cur);
        return 1;
    }
rollback:
    if (result < 0) log_warn("purchase_owe_callback %s: %s", transid, sqlite3_errmsg(db));
    store_rollback(db);
    purchase_clear(&cur);
    return result;
}

/* ---------------------------------------------------------- retries */

int purchase_claim_due(sqlite3 *db, int64_t now, int64_t lease_until_ms, purchase *out) {
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return -1;
    sqlite3_stmt *st;
    int result = -1;
    if (prepare(db,
                "SELECT " COLUMNS " FROM purchases WHERE state IN ('activating', 'pending')"
                " AND next_attempt_ms <= ? AND " CHANGELOG_OWNED_SQL(
                    "cl_partition") " ORDER BY next_attempt_ms LIMIT 1",
                &st) != SQLITE_OK)
        goto rollback;
    sqlite3_bind_int64(st, 1, now);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        result = read_row(st, out) == 0 ? 1 : -1;
    else
        result = rc == SQLITE_DONE ? 0 : -1;
    stmt_done(db, st);
    if (result != 1) goto rollback;
    if (prepare(db,
                "UPDATE purchases SET attempts = attempts + 1, next_attempt_ms = ?,"
                " updated_ms = ?, maybe_executed = 1"
                " WHERE service_provider = ? AND transid = ?",
                &st) != SQLITE_OK) {
        result = -1;
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, lease_until_ms);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, out->service_provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, out->transid, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    stmt_done(db, st);
    if (rc != SQLITE_DONE || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        result = -1;
        goto rollback;
    }
    out->attempts++;
    out->next_attempt_ms = lease_until_ms;
    out->updated_ms = now;
    return 1;
rollback:
    if (result < 0) log_warn("purchase_claim_due: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return result;
}

int purchase_resume_owned(sqlite3 *db) {
    int rc = sqlite3_exec(db,
                          "UPDATE purchases SET next_attempt_ms = 0 WHERE state = 'activating'"
                          " AND next_attempt_ms > 0 AND " CHANGELOG_OWNED_SQL("cl_partition"),
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        log_warn("purchase_resume_owned: %s", sqlite3_errmsg(db));
        return -1;
    }
    return sqlite3_changes(db);
}

static int64_t scalar_int64(sqlite3 *db, const char *sql, int64_t bind, int64_t fallback) {
    sqlite3_stmt *st;
    if (prepare(db, sql, &st) != SQLITE_OK) return fallback;
    if (sqlite3_bind_parameter_count(st) > 0) sqlite3_bind_int64(st, 1, bind);
    int64_t v = fallback;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    stmt_done(db, st);
    return v;
}

int64_t purchase_next_due_ms(sqlite3 *db) {
    return scalar_int64(db,
                        "SELECT min(next_attempt_ms) FROM purchases"
                        " WHERE state IN ('activating', 'pending')"
                        " AND " CHANGELOG_OWNED_SQL("cl_partition"),
                        0, INT64_MAX);
}

long purchase_count_stuck(sqlite3 *db, long max_attempts) {
    return (long)scalar_int64(db,
                              "SELECT count(*) FROM purchases WHERE state = 'activating' AND "
                              "attempts >= ? AND " CHANGELOG_OWNED_SQL("cl_partition"),
                              max_attempts, -1);
}

long purchase_count_overdue(sqlite3 *db, int64_t created_before_ms) {
    return (long)scalar_int64(
        db,
        "SELECT count(*) FROM purchases WHERE state IN ('received', 'activating', 'pending')"
        " AND created_ms < ? AND " CHANGELOG_OWNED_SQL("cl_partition"),
        created_before_ms, -1);
}

/* ---------------------------------------------------------- look-ups */

static int each_row(sqlite3 *db, sqlite3_stmt *st, purchase_each_fn each, void *arg) {
    int n = 0, rc;
    purchase p = {0};
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (read_row(st, &p) != 0) {
            n = -1;
            break;
        }
        each(arg, &p);
        n++;
    }
    if (n >= 0 && rc != SQLITE_DONE) {
        log_warn("sqlite look-up: %s", sqlite3_errmsg(db));
        n = -1;
    }
    purchase_clear(&p);
    stmt_done(db, st);
    return n;
}

int purchase_find_transid(sqlite3 *db, const char *op, const char *transid, const char *sp,
                          int limit, purchase_each_fn each, void *arg) {
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT " COLUMNS " FROM purchases WHERE operator = ?1"
                " AND (op_transid = ?2 OR transid = ?2)"
                " AND (?3 IS NULL OR service_provider = ?3)"
                " ORDER BY created_ms, service_provider LIMIT ?4",
                &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, transid, -1, SQLITE_STATIC);
    bind_text_or_null(st, 3, sp);
    sqlite3_bind_int(st, 4, limit);
    return each_row(db, st, each, arg);
}

int purchase_get_operator_transid(sqlite3 *db, const char *op, const char *op_transid,
                                  const char *sp, purchase *out) {
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT " COLUMNS " FROM purchases WHERE operator = ?1 AND op_transid = ?2"
                " AND (?3 IS NULL OR service_provider = ?3)",
                &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op_transid, -1, SQLITE_STATIC);
    bind_text_or_null(st, 3, sp);
    return get_one(db, st, out, "purchase_get_operator_transid");
}

int purchase_find_subscriber(sqlite3 *db, const char *op, const char *subscriber, const char *sp,
                             int64_t from_ms, int64_t to_ms, int limit, purchase_each_fn each,
                             void *arg) {
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT " COLUMNS " FROM purchases WHERE operator = ?1 AND subscriber = ?2"
                " AND (?3 IS NULL OR service_provider = ?3)"
                " AND (?4 = 0 OR created_ms >= ?4) AND (?5 = 0 OR created_ms <= ?5)"
                " ORDER BY created_ms, rowid LIMIT ?6",
                &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subscriber, -1, SQLITE_STATIC);
    bind_text_or_null(st, 3, sp);
    sqlite3_bind_int64(st, 4, from_ms);
    sqlite3_bind_int64(st, 5, to_ms);
    sqlite3_bind_int(st, 6, limit);
    return each_row(db, st, each, arg);
}

int purchase_find_overdue(sqlite3 *db, const char *op, const char *sp, int64_t created_before_ms,
                          int limit, purchase_each_fn each, void *arg) {
    sqlite3_stmt *st;
    if (prepare(db,
                "SELECT " COLUMNS " FROM purchases WHERE operator = ?1"
                " AND state IN ('received', 'activating', 'pending') AND created_ms < ?2"
                " AND (?3 IS NULL OR service_provider = ?3)"
                " ORDER BY created_ms, rowid LIMIT ?4",
                &st) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, created_before_ms);
    bind_text_or_null(st, 3, sp);
    sqlite3_bind_int(st, 4, limit);
    return each_row(db, st, each, arg);
}
