/* SettlementReports: the current state of one daily aggregate, published
 * to the compacted topic millom.settlement.reports under the key
 * day|operator|provider|currency after every change. */
#include "settlement.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/stmt_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/log.h"

static char *dup_col(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

static void bind_key(sqlite3_stmt *st, const report_key *k) {
    sqlite3_bind_text(st, 1, k->day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->service_provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, k->currency, -1, SQLITE_STATIC);
}

static int load_plans(sqlite3 *db, const report_key *k, Millom__V1__SettlementReport *r) {
    static const char sql[] =
        "SELECT plan_id, count, gross, operator_share, provider_share, millom_share"
        " FROM daily_plans WHERE day = ? AND operator = ? AND service_provider = ?"
        " AND currency = ? ORDER BY plan_id";
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return -1;
    bind_key(st, k);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        Millom__V1__PlanTotal **grown = realloc(r->plans, (r->n_plans + 1) * sizeof *r->plans);
        Millom__V1__PlanTotal *p = malloc(sizeof *p);
        if (grown) r->plans = grown;
        if (!grown || !p) {
            free(p);
            rc = SQLITE_NOMEM;
            break;
        }
        millom__v1__plan_total__init(p);
        p->plan_id = dup_col(st, 0);
        p->count = sqlite3_column_int64(st, 1);
        p->gross_minor = sqlite3_column_int64(st, 2);
        p->operator_share_minor = sqlite3_column_int64(st, 3);
        p->provider_share_minor = sqlite3_column_int64(st, 4);
        p->millom_share_minor = sqlite3_column_int64(st, 5);
        r->plans[r->n_plans++] = p;
    }
    stmt_done(db, st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int report_load(sqlite3 *db, const report_key *k, Millom__V1__SettlementReport *r) {
    static const char sql[] =
        "SELECT currency_scale, count, gross, operator_share, provider_share, millom_share,"
        " closed, closed_at_ms, late_count, updated_at_ms FROM daily"
        " WHERE day = ? AND operator = ? AND service_provider = ? AND currency = ?";
    millom__v1__settlement_report__init(r);
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return -1;
    bind_key(st, k);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r->day = strdup(k->day);
        r->operator_ = strdup(k->op);
        r->service_provider = strdup(k->service_provider);
        r->currency = strdup(k->currency);
        r->currency_scale = sqlite3_column_int(st, 0);
        r->count = sqlite3_column_int64(st, 1);
        r->gross_minor = sqlite3_column_int64(st, 2);
        r->operator_share_minor = sqlite3_column_int64(st, 3);
        r->provider_share_minor = sqlite3_column_int64(st, 4);
        r->millom_share_minor = sqlite3_column_int64(st, 5);
        r->closed = sqlite3_column_int(st, 6) != 0;
        r->closed_at_ms = sqlite3_column_int64(st, 7);
        r->late_count = sqlite3_column_int64(st, 8);
        r->updated_at_ms = sqlite3_column_int64(st, 9);
    }
    stmt_done(db, st);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return -1;
    if (!r->day || !r->operator_ || !r->service_provider || !r->currency ||
        load_plans(db, k, r) != 0) {
        report_clear(r);
        return -1;
    }
    return 1;
}

void report_clear(Millom__V1__SettlementReport *r) {
    /* Strings report_load did not set still point at protobuf-c's static
     * empty string. */
    if (r->day != protobuf_c_empty_string) free(r->day);
    if (r->operator_ != protobuf_c_empty_string) free(r->operator_);
    if (r->service_provider != protobuf_c_empty_string) free(r->service_provider);
    if (r->currency != protobuf_c_empty_string) free(r->currency);
    for (size_t i = 0; i < r->n_plans; i++) {
        free(r->plans[i]->plan_id);
        free(r->plans[i]);
    }
    free(r->plans);
    millom__v1__settlement_report__init(r);
}

/* day|operator|provider|currency */
static int report_key_text(const report_key *k, char *out, size_t len) {
    int n = snprintf(out, len, "%s|%s|%s|%s", k->day, k->op, k->service_provider, k->currency);
    return n > 0 && (size_t)n < len ? n : -1;
}

int report_publish(sqlite3 *db, const report_key *k) {
    static const char drop_sql[] = "DELETE FROM outbox WHERE topic = ? AND key = ?";
    char key[256];
    int klen = report_key_text(k, key, sizeof key);
    if (klen < 0) return -1;
    Millom__V1__SettlementReport r;
    int found = report_load(db, k, &r);
    if (found <= 0) return found; /* nothing to publish is not an error */
    size_t len = millom__v1__settlement_report__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    int rc = -1;
    sqlite3_stmt *st = buf ? stmt_get(db, drop_sql) : NULL;
    if (st) {
        millom__v1__settlement_report__pack(&r, buf);
        /* An unsent older report of this key is superseded (see header);
         * one already in flight is unaffected and goes out first. */
        sqlite3_bind_text(st, 1, TOPIC_SETTLEMENT_REPORTS, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, key, klen, SQLITE_STATIC);
        int step = sqlite3_step(st);
        stmt_done(db, st);
        if (step == SQLITE_DONE &&
            outbox_add(db, TOPIC_SETTLEMENT_REPORTS, key, (size_t)klen, buf, len) == SQLITE_OK)
            rc = 0;
    }
    if (rc) log_error("cannot queue the report %s", key);
    free(buf);
    report_clear(&r);
    return rc;
}
