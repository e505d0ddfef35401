/* The settlement database: settled purchases, daily aggregates with their
 * per-plan totals, offer impressions, and the outbox, in one SQLite file
 * so a purchase, its aggregates and its outgoing messages commit together.
 *
 * De-duplication: `records` has the primary key (operator,
 * service_provider, transid) and a purchase is counted only when its row
 * was inserted. A transid is unique per provider (two providers may use
 * the same one at an operator: purchase-executor sends the operator a
 * transId derived per provider), so the outbox's re-sends, a consumer restarted from
 * an earlier offset or a purchase's COMPLETED event published twice all
 * land on the existing row and change nothing. */
#include "settlement.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/stmt_cache.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/log.h"
#include "shared/contracts/money.h"
#include "shared/plumbing/store.h"

static const char *const migrations[] = {
    /* 1: settled purchases */
    "CREATE TABLE records ("
    " operator TEXT NOT NULL, transid TEXT NOT NULL,"
    " service_provider TEXT NOT NULL, plan_id TEXT NOT NULL, subscriber_hash TEXT NOT NULL,"
    " amount_minor INTEGER NOT NULL, currency TEXT NOT NULL, currency_scale INTEGER NOT NULL,"
    " fund_source INTEGER NOT NULL, completed_at_ms INTEGER NOT NULL, day TEXT NOT NULL,"
    " operator_share INTEGER NOT NULL, provider_share INTEGER NOT NULL,"
    " millom_share INTEGER NOT NULL, settled_at_ms INTEGER NOT NULL,"
    " late INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (operator, transid)) WITHOUT ROWID;"
    "CREATE INDEX records_completed ON records (operator, completed_at_ms);",
    /* 2: daily aggregates per (day, operator, provider, currency) and plan */
    "CREATE TABLE daily ("
    " day TEXT NOT NULL, operator TEXT NOT NULL, service_provider TEXT NOT NULL,"
    " currency TEXT NOT NULL, currency_scale INTEGER NOT NULL,"
    " count INTEGER NOT NULL, gross INTEGER NOT NULL, operator_share INTEGER NOT NULL,"
    " provider_share INTEGER NOT NULL, millom_share INTEGER NOT NULL,"
    " closed INTEGER NOT NULL DEFAULT 0, closed_at_ms INTEGER NOT NULL DEFAULT 0,"
    " late_count INTEGER NOT NULL DEFAULT 0, updated_at_ms INTEGER NOT NULL,"
    " PRIMARY KEY (day, operator, service_provider, currency)) WITHOUT ROWID;"
    "CREATE INDEX daily_open ON daily (closed, day);"
    "CREATE TABLE daily_plans ("
    " day TEXT NOT NULL, operator TEXT NOT NULL, service_provider TEXT NOT NULL,"
    " currency TEXT NOT NULL, plan_id TEXT NOT NULL,"
    " count INTEGER NOT NULL, gross INTEGER NOT NULL, operator_share INTEGER NOT NULL,"
    " provider_share INTEGER NOT NULL, millom_share INTEGER NOT NULL,"
    " PRIMARY KEY (day, operator, service_provider, currency, plan_id)) WITHOUT ROWID;"
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
    /* 3: offer impressions (one row per impression, one per plan shown) */
    "CREATE TABLE impressions ("
    " impression_id TEXT PRIMARY KEY, operator TEXT NOT NULL,"
    " service_provider TEXT NOT NULL, subscriber_hash TEXT NOT NULL,"
    " shown_at_ms INTEGER NOT NULL);"
    "CREATE INDEX impressions_shown ON impressions (operator, shown_at_ms);"
    "CREATE TABLE impression_plans ("
    " impression_id TEXT NOT NULL, plan_id TEXT NOT NULL,"
    " PRIMARY KEY (impression_id, plan_id)) WITHOUT ROWID;",
    /* 4: the outbox, and an index to find an unsent report by key */
    NULL, /* outbox_migration_sql, filled in settle_store_open */
    "CREATE INDEX outbox_topic_key ON outbox (topic, key);",
    /* 5: records keyed per provider (migration 1 keyed them by (operator,
     * transid), which counted only one of two providers' equal transids) */
    "CREATE TABLE records_v5 ("
    " operator TEXT NOT NULL, transid TEXT NOT NULL,"
    " service_provider TEXT NOT NULL, plan_id TEXT NOT NULL, subscriber_hash TEXT NOT NULL,"
    " amount_minor INTEGER NOT NULL, currency TEXT NOT NULL, currency_scale INTEGER NOT NULL,"
    " fund_source INTEGER NOT NULL, completed_at_ms INTEGER NOT NULL, day TEXT NOT NULL,"
    " operator_share INTEGER NOT NULL, provider_share INTEGER NOT NULL,"
    " millom_share INTEGER NOT NULL, settled_at_ms INTEGER NOT NULL,"
    " late INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (operator, service_provider, transid)) WITHOUT ROWID;"
    "INSERT INTO records_v5 (operator, transid, service_provider, plan_id, subscriber_hash,"
    " amount_minor, currency, currency_scale, fund_source, completed_at_ms, day,"
    " operator_share, provider_share, millom_share, settled_at_ms, late)"
    " SELECT operator, transid, service_provider, plan_id, subscriber_hash, amount_minor,"
    " currency, currency_scale, fund_source, completed_at_ms, day, operator_share,"
    " provider_share, millom_share, settled_at_ms, late FROM records;"
    "DROP TABLE records;"
    "ALTER TABLE records_v5 RENAME TO records;"
    "CREATE INDEX records_completed ON records (operator, completed_at_ms);",
    /* 6: the outbox's request ids */
    NULL, /* outbox_correlator_migration_sql, filled in settle_store_open */
};

sqlite3 *settle_store_open(const char *path, char *err, size_t errlen) {
    /* The NULL steps above, in their order: shared/patterns/outbox.h's,
     * which are not constant expressions here. */
    const char *const shared_steps[] = {outbox_migration_sql, outbox_correlator_migration_sql};
    const char *m[sizeof migrations / sizeof migrations[0]];
    size_t next_shared = 0;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        m[i] = migrations[i];
        if (!m[i]) {
            assert(next_shared < sizeof shared_steps / sizeof shared_steps[0]);
            m[i] = shared_steps[next_shared++];
        }
    }
    return store_open_path(path, m, sizeof m / sizeof m[0], err, errlen);
}

static int insert_record(sqlite3 *db, const settled_record *r, int late) {
    static const char sql[] =
        "INSERT OR IGNORE INTO records (operator, transid, service_provider, plan_id,"
        " subscriber_hash, amount_minor, currency, currency_scale, fund_source,"
        " completed_at_ms, day, operator_share, provider_share, millom_share,"
        " settled_at_ms, late) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, r->op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->transid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->service_provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->plan_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->subscriber_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, r->amount_minor);
    sqlite3_bind_text(st, 7, r->currency, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, r->currency_scale);
    sqlite3_bind_int(st, 9, r->fund_source);
    sqlite3_bind_int64(st, 10, r->completed_at_ms);
    sqlite3_bind_text(st, 11, r->day, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 12, r->split.operator_minor);
    sqlite3_bind_int64(st, 13, r->split.provider_minor);
    sqlite3_bind_int64(st, 14, r->split.millom_minor);
    sqlite3_bind_int64(st, 15, r->settled_at_ms);
    sqlite3_bind_int(st, 16, late);
    int rc = sqlite3_step(st);
    stmt_done(db, st);
    if (rc != SQLITE_DONE) return -1;
    return sqlite3_changes(db) == 1 ? 1 : 0;
}

/* 1 when the aggregate of key exists and is closed, 0 otherwise, -1 error. */
static int aggregate_closed(sqlite3 *db, const report_key *k) {
    static const char sql[] = "SELECT closed FROM daily WHERE day = ? AND operator = ?"
                              " AND service_provider = ? AND currency = ?";
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, k->day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->service_provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, k->currency, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), closed = 0;
    if (rc == SQLITE_ROW) closed = sqlite3_column_int(st, 0);
    stmt_done(db, st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? closed : -1;
}

/* The aggregates' key (day, operator, provider, currency) as ?1..?4. */
static void bind_day_key(sqlite3_stmt *st, const report_key *k) {
    sqlite3_bind_text(st, 1, k->day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->service_provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, k->currency, -1, SQLITE_STATIC);
}

/* Count, gross and the three shares as parameters first..first+4. */
static void bind_sums(sqlite3_stmt *st, int first, const settle_sums *s) {
    sqlite3_bind_int64(st, first, s->count);
    sqlite3_bind_int64(st, first + 1, s->gross);
    sqlite3_bind_int64(st, first + 2, s->shares.operator_minor);
    sqlite3_bind_int64(st, first + 3, s->shares.provider_minor);
    sqlite3_bind_int64(st, first + 4, s->shares.millom_minor);
}

/* Adds a key's pending sums to its `daily` row (created when missing):
 * the same row as one upsert per record would leave, closed if any of them
 * was late, closed_at from the first late one, updated_at from the last. */
static int add_to_daily(sqlite3 *db, const struct settle_batch_key *k) {
    static const char sql[] =
        "INSERT INTO daily (day, operator, service_provider, currency, currency_scale, count,"
        " gross, operator_share, provider_share, millom_share, closed, closed_at_ms,"
        " late_count, updated_at_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
        " ON CONFLICT DO UPDATE SET count = count + excluded.count,"
        " gross = gross + excluded.gross,"
        " operator_share = operator_share + excluded.operator_share,"
        " provider_share = provider_share + excluded.provider_share,"
        " millom_share = millom_share + excluded.millom_share,"
        " closed = max(closed, excluded.closed),"
        " closed_at_ms = CASE WHEN closed_at_ms = 0 THEN excluded.closed_at_ms"
        "  ELSE closed_at_ms END,"
        " late_count = late_count + excluded.late_count,"
        " updated_at_ms = excluded.updated_at_ms";
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return -1;
    bind_day_key(st, &k->key);
    sqlite3_bind_int(st, 5, k->currency_scale);
    bind_sums(st, 6, &k->pending);
    sqlite3_bind_int(st, 11, k->pending_late > 0);
    sqlite3_bind_int64(st, 12, k->first_late_ms);
    sqlite3_bind_int64(st, 13, k->pending_late);
    sqlite3_bind_int64(st, 14, k->last_ms);
    int rc = sqlite3_step(st);
    stmt_done(db, st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int add_to_plan(sqlite3 *db, const report_key *key, const struct settle_batch_plan *p) {
    static const char sql[] =
        "INSERT INTO daily_plans (day, operator, service_provider, currency, plan_id, count,"
        " gross, operator_share, provider_share, millom_share)"
        " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
        " ON CONFLICT DO UPDATE SET count = count + excluded.count,"
        " gross = gross + excluded.gross,"
        " operator_share = operator_share + excluded.operator_share,"
        " provider_share = provider_share + excluded.provider_share,"
        " millom_share = millom_share + excluded.millom_share";
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return -1;
    bind_day_key(st, key);
    sqlite3_bind_text(st, 5, p->plan_id, -1, SQLITE_STATIC);
    bind_sums(st, 6, &p->pending);
    int rc = sqlite3_step(st);
    stmt_done(db, st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int record_to_outbox(sqlite3 *db, const settled_record *r) {
    char amount[48];
    Millom__V1__SettlementRecord m = MILLOM__V1__SETTLEMENT_RECORD__INIT;
    if (money_format(r->amount_minor, r->currency_scale, amount, sizeof amount) < 0)
        snprintf(amount, sizeof amount, "%lld", (long long)r->amount_minor);
    m.transid = (char *)r->transid;
    m.operator_ = (char *)r->op;
    m.service_provider = (char *)r->service_provider;
    m.plan_id = (char *)r->plan_id;
    m.subscriber_hash = (char *)r->subscriber_hash;
    m.amount_minor = r->amount_minor;
    m.amount = amount;
    m.currency = (char *)r->currency;
    m.fund_source = (Millom__V1__FundSource)r->fund_source;
    m.completed_at_ms = r->completed_at_ms;
    m.operator_share_minor = r->split.operator_minor;
    m.provider_share_minor = r->split.provider_minor;
    m.millom_share_minor = r->split.millom_minor;
    m.currency_scale = r->currency_scale;
    m.day = (char *)r->day;
    m.settled_at_ms = r->settled_at_ms;
    size_t len = millom__v1__settlement_record__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return -1;
    millom__v1__settlement_record__pack(&m, buf);
    int rc = outbox_add(db, TOPIC_SETTLEMENT_RECORDS, r->op, strlen(r->op), buf, len);
    free(buf);
    return rc == SQLITE_OK ? 0 : -1;
}

/* The batch's entry for k, or NULL. */
static struct settle_batch_key *batch_key(settle_batch *b, const report_key *k) {
    for (size_t i = 0; i < b->n_keys; i++)
        if (memcmp(&b->keys[i].key, k, sizeof *k) == 0) return &b->keys[i];
    return NULL;
}

/* A new entry for k in the batch (open, nothing pending); NULL when out of
 * memory. */
static struct settle_batch_key *batch_key_add(settle_batch *b, const report_key *k) {
    if (b->n_keys == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct settle_batch_key *grown = realloc(b->keys, cap * sizeof *grown);
        if (!grown) return NULL;
        b->keys = grown;
        b->cap = cap;
    }
    b->keys[b->n_keys] = (struct settle_batch_key){.key = *k};
    return &b->keys[b->n_keys++];
}

static void sums_add(settle_sums *s, const settled_record *r) {
    s->count++;
    s->gross += r->amount_minor;
    s->shares.operator_minor += r->split.operator_minor;
    s->shares.provider_minor += r->split.provider_minor;
    s->shares.millom_minor += r->split.millom_minor;
}

/* Adds r to the pending sums of its aggregate (entry) and plan total. */
static int batch_add(settle_batch *b, struct settle_batch_key *entry, const settled_record *r,
                     int late) {
    size_t key = (size_t)(entry - b->keys);
    struct settle_batch_plan *plan = NULL;
    for (size_t i = 0; i < b->n_plans && !plan; i++)
        if (b->plans[i].key == key && strcmp(b->plans[i].plan_id, r->plan_id) == 0)
            plan = &b->plans[i];
    if (!plan) {
        if (b->n_plans == b->cap_plans) {
            size_t cap = b->cap_plans ? b->cap_plans * 2 : 16;
            struct settle_batch_plan *grown = realloc(b->plans, cap * sizeof *grown);
            if (!grown) return -1;
            b->plans = grown;
            b->cap_plans = cap;
        }
        plan = &b->plans[b->n_plans++];
        *plan = (struct settle_batch_plan){.key = key};
        snprintf(plan->plan_id, sizeof plan->plan_id, "%s", r->plan_id);
    }
    sums_add(&plan->pending, r);
    sums_add(&entry->pending, r);
    entry->currency_scale = r->currency_scale;
    entry->last_ms = r->settled_at_ms;
    if (late) {
        if (!entry->pending_late) entry->first_late_ms = r->settled_at_ms;
        entry->pending_late++;
    }
    return 0;
}

/* Writes the pending sums to `daily` and `daily_plans` and clears them. */
static int batch_flush(sqlite3 *db, settle_batch *b) {
    for (size_t i = 0; i < b->n_keys; i++) {
        struct settle_batch_key *k = &b->keys[i];
        if (!k->pending.count) continue;
        if (add_to_daily(db, k) != 0) return -1;
        k->pending = (settle_sums){0};
        k->pending_late = 0;
        k->first_late_ms = 0;
    }
    for (size_t i = 0; i < b->n_plans; i++)
        if (add_to_plan(db, &b->keys[b->plans[i].key].key, &b->plans[i]) != 0) return -1;
    b->n_plans = 0;
    return 0;
}

void settle_batch_reset(settle_batch *b) {
    b->n_keys = 0;
    b->n_plans = 0;
    b->wm_known = 0;
    b->wm[0] = '\0';
}

void settle_batch_free(settle_batch *b) {
    free(b->keys);
    free(b->plans);
    *b = (settle_batch){0};
}

int settle_batch_publish(sqlite3 *db, settle_batch *b) {
    if (batch_flush(db, b) != 0) return -1;
    for (size_t i = 0; i < b->n_keys; i++)
        if (report_publish(db, &b->keys[i].key) != 0) return -1;
    return 0;
}

/* settle_apply with the batch b (never NULL). */
static settle_result apply(sqlite3 *db, const settled_record *rec, settle_batch *b) {
    report_key k;
    memset(&k, 0, sizeof k); /* compared with memcmp */
    snprintf(k.day, sizeof k.day, "%s", rec->day);
    snprintf(k.op, sizeof k.op, "%s", rec->op);
    snprintf(k.service_provider, sizeof k.service_provider, "%s", rec->service_provider);
    snprintf(k.currency, sizeof k.currency, "%s", rec->currency);
    /* Closed, and the watermark: from the batch when it knows them. */
    struct settle_batch_key *entry = batch_key(b, &k);
    int closed = entry ? entry->closed : aggregate_closed(db, &k);
    if (closed < 0) return SETTLE_ERROR;
    if (!b->wm_known) {
        if (watermark_get(db, b->wm) != 0) return SETTLE_ERROR;
        b->wm_known = 1;
    }
    /* Late: its day closed already, or the stream has moved past it. */
    int late = closed || (b->wm[0] && strcmp(rec->day, b->wm) < 0);
    int inserted = insert_record(db, rec, late);
    if (inserted < 0) return SETTLE_ERROR;
    if (inserted == 0) return SETTLE_DUPLICATE;
    if (!entry && !(entry = batch_key_add(b, &k))) return SETTLE_ERROR;
    entry->closed |= late;
    if (batch_add(b, entry, rec, late) != 0) return SETTLE_ERROR;
    /* A later day moves the watermark and closes every earlier open day
     * (watermark_advance), so the sums so far go to their rows first; the
     * batch's own keys follow. */
    if (!b->wm[0] || strcmp(rec->day, b->wm) > 0) {
        if (batch_flush(db, b) != 0 || watermark_advance(db, rec->day, rec->settled_at_ms) < 0)
            return SETTLE_ERROR;
        snprintf(b->wm, sizeof b->wm, "%s", rec->day);
        for (size_t i = 0; i < b->n_keys; i++)
            if (strcmp(b->keys[i].key.day, rec->day) < 0) b->keys[i].closed = 1;
    }
    if (record_to_outbox(db, rec)) return SETTLE_ERROR;
    return SETTLE_NEW;
}

settle_result settle_apply(sqlite3 *db, const settled_record *rec, settle_batch *b) {
    if (b) return apply(db, rec, b);
    /* Alone: a batch of one, its aggregate written and published now. */
    settle_batch one = {0};
    settle_result r = apply(db, rec, &one);
    if (r == SETTLE_NEW && settle_batch_publish(db, &one) != 0) r = SETTLE_ERROR;
    settle_batch_free(&one);
    return r;
}
