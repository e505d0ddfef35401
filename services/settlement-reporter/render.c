/* The management API's answers, from the settlement database:
 *
 * settlements: the daily aggregates of an operator whose UTC day lies in
 *   [day of from, day of to] (aggregates are per day, so a time inside a
 *   day selects the whole day), optionally of one provider.
 *   JSON {"operator","days":[{day, serviceProvider, currency, count, gross,
 *   operatorShare, providerShare, millomShare, closed, lateCount,
 *   plans:[{planId, count, gross, operatorShare, providerShare,
 *   millomShare}]}], "totals":[{currency, count, gross, ...}]}
 *   CSV: one row per (day, provider, currency, plan) under a header, so a
 *   spreadsheet's SUM over any column gives the JSON totals.
 * offer-performance: per (provider, plan), impressions shown and purchases
 *   completed in [from, to] (to the millisecond), and their ratio.
 *
 * Amounts are decimal strings at the currency's scale ("160.50"), never
 * floats; counts are integers. */
#include "settlement.h"
#include "csv.h"
#include "shared/plumbing/stmt_cache.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "shared/contracts/money.h"

#define SETTLEMENTS_HEADER                                                                  \
    "day,operator,serviceProvider,currency,planId,count,gross,operatorShare,providerShare," \
    "millomShare,closed\r\n"
#define PERFORMANCE_HEADER "serviceProvider,planId,impressions,purchases,conversionRate\r\n"

static void money_text(int64_t minor, int scale, char out[48]) {
    if (money_format(minor, scale, out, 48) < 0) snprintf(out, 48, "%" PRId64, minor);
}

void conversion_rate(int64_t purchases, int64_t impressions, char out[32]) {
    if (impressions <= 0 || purchases < 0) {
        out[0] = '\0';
        return;
    }
    /* round(purchases * 10^4 / impressions), half up, in integers;
     * __int128 because purchases * 20000 may not fit 64 bits. */
    __int128 scaled = ((__int128)purchases * 20000 + impressions) / ((__int128)impressions * 2);
    snprintf(out, 32, "%" PRId64 ".%04d", (int64_t)(scaled / 10000), (int)(scaled % 10000));
}

/* Every key of the operator's aggregates in the filter's days. */
static int select_keys(sqlite3 *db, const query_filter *f, report_key **keys, size_t *n) {
    static const char sql[] =
        "SELECT day, service_provider, currency FROM daily WHERE operator = ?1"
        " AND day >= ?2 AND day <= ?3 AND (?4 IS NULL OR service_provider = ?4)"
        " ORDER BY day, service_provider, currency";
    char from[11] = "0000-00-00", to[11] = "9999-99-99";
    if (f->from_ms > 0) utc_day(f->from_ms, from);
    if (f->to_ms > 0) utc_day(f->to_ms, to);
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, f->op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, from, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, to, -1, SQLITE_TRANSIENT);
    if (f->service_provider) sqlite3_bind_text(st, 4, f->service_provider, -1, SQLITE_STATIC);
    int rc;
    *keys = NULL;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        report_key *grown = realloc(*keys, (*n + 1) * sizeof **keys);
        if (!grown) {
            rc = SQLITE_NOMEM;
            break;
        }
        *keys = grown;
        report_key *k = &(*keys)[(*n)++];
        snprintf(k->day, sizeof k->day, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(k->op, sizeof k->op, "%s", f->op);
        snprintf(k->service_provider, sizeof k->service_provider, "%s",
                 (const char *)sqlite3_column_text(st, 1));
        snprintf(k->currency, sizeof k->currency, "%s", (const char *)sqlite3_column_text(st, 2));
    }
    stmt_done(db, st);
    return rc == SQLITE_DONE ? 0 : -1;
}

typedef struct {
    int64_t count, gross, op, sp, millom;
} sums;

static void set_sums(json_t *o, const sums *s, int scale) {
    char a[48];
    json_object_set_new(o, "count", json_integer(s->count));
    money_text(s->gross, scale, a);
    json_object_set_new(o, "gross", json_string(a));
    money_text(s->op, scale, a);
    json_object_set_new(o, "operatorShare", json_string(a));
    money_text(s->sp, scale, a);
    json_object_set_new(o, "providerShare", json_string(a));
    money_text(s->millom, scale, a);
    json_object_set_new(o, "millomShare", json_string(a));
}

static void csv_sums(csv_buf *b, const sums *s, int scale) {
    char a[48];
    csv_field_int(b, s->count, 0);
    money_text(s->gross, scale, a);
    csv_field(b, a, 0);
    money_text(s->op, scale, a);
    csv_field(b, a, 0);
    money_text(s->sp, scale, a);
    csv_field(b, a, 0);
    money_text(s->millom, scale, a);
    csv_field(b, a, 0);
}

/* Adds one aggregate to the per-currency totals (a JSON object keyed by
 * currency, with the scale kept alongside). */
static void add_total(json_t *totals, const Millom__V1__SettlementReport *r) {
    json_t *t = json_object_get(totals, r->currency);
    sums acc = {0};
    if (t) {
        acc.count = json_integer_value(json_object_get(t, "n"));
        acc.gross = json_integer_value(json_object_get(t, "g"));
        acc.op = json_integer_value(json_object_get(t, "o"));
        acc.sp = json_integer_value(json_object_get(t, "p"));
        acc.millom = json_integer_value(json_object_get(t, "m"));
    }
    acc.count += r->count;
    acc.gross += r->gross_minor;
    acc.op += r->operator_share_minor;
    acc.sp += r->provider_share_minor;
    acc.millom += r->millom_share_minor;
    json_object_set_new(totals, r->currency,
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:i}", "n", (json_int_t)acc.count, "g",
                                  (json_int_t)acc.gross, "o", (json_int_t)acc.op, "p",
                                  (json_int_t)acc.sp, "m", (json_int_t)acc.millom, "s",
                                  r->currency_scale));
}

char *render_settlements(sqlite3 *db, const query_filter *f, int csv) {
    report_key *keys;
    size_t n;
    if (select_keys(db, f, &keys, &n) != 0) return NULL;
    csv_buf b = {0};
    json_t *days = json_array(), *totals = json_object();
    if (csv) csv_append(&b, SETTLEMENTS_HEADER, strlen(SETTLEMENTS_HEADER));
    int ok = days && totals;
    for (size_t i = 0; i < n && ok; i++) {
        Millom__V1__SettlementReport r;
        if (report_load(db, &keys[i], &r) != 1) {
            ok = 0;
            break;
        }
        int scale = r.currency_scale;
        for (size_t p = 0; csv && p < r.n_plans; p++) {
            const Millom__V1__PlanTotal *pt = r.plans[p];
            csv_field(&b, r.day, 1);
            csv_field(&b, r.operator_, 0);
            csv_field(&b, r.service_provider, 0);
            csv_field(&b, r.currency, 0);
            csv_field(&b, pt->plan_id, 0);
            sums s = {pt->count, pt->gross_minor, pt->operator_share_minor,
                      pt->provider_share_minor, pt->millom_share_minor};
            csv_sums(&b, &s, scale);
            csv_field(&b, r.closed ? "true" : "false", 0);
            csv_end_row(&b);
        }
        if (!csv) {
            json_t *day = json_pack("{s:s,s:s,s:s}", "day", r.day, "serviceProvider",
                                    r.service_provider, "currency", r.currency);
            sums s = {r.count, r.gross_minor, r.operator_share_minor, r.provider_share_minor,
                      r.millom_share_minor};
            set_sums(day, &s, scale);
            json_object_set_new(day, "closed", json_boolean(r.closed));
            json_object_set_new(day, "lateCount", json_integer(r.late_count));
            json_t *plans = json_array();
            for (size_t p = 0; p < r.n_plans; p++) {
                const Millom__V1__PlanTotal *pt = r.plans[p];
                json_t *pj = json_pack("{s:s}", "planId", pt->plan_id);
                sums ps = {pt->count, pt->gross_minor, pt->operator_share_minor,
                           pt->provider_share_minor, pt->millom_share_minor};
                set_sums(pj, &ps, scale);
                json_array_append_new(plans, pj);
            }
            json_object_set_new(day, "plans", plans);
            json_array_append_new(days, day);
            add_total(totals, &r);
        }
        report_clear(&r);
    }
    free(keys);
    char *text = NULL;
    if (ok && csv) {
        text = csv_take(&b);
    } else if (ok) {
        json_t *tl = json_array();
        const char *cur;
        json_t *t;
        json_object_foreach(totals, cur, t) {
            json_t *o = json_pack("{s:s}", "currency", cur);
            sums s = {json_integer_value(json_object_get(t, "n")),
                      json_integer_value(json_object_get(t, "g")),
                      json_integer_value(json_object_get(t, "o")),
                      json_integer_value(json_object_get(t, "p")),
                      json_integer_value(json_object_get(t, "m"))};
            set_sums(o, &s, (int)json_integer_value(json_object_get(t, "s")));
            json_array_append_new(tl, o);
        }
        json_t *doc = json_pack("{s:s,s:O,s:o}", "operator", f->op, "days", days, "totals", tl);
        text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(doc);
    }
    if (!text) free(csv_take(&b));
    json_decref(days);
    json_decref(totals);
    return text;
}

char *render_offer_performance(sqlite3 *db, const query_filter *f, int csv) {
    static const char sql[] =
        "WITH imp AS (SELECT i.service_provider AS sp, p.plan_id AS plan, count(*) AS n"
        "  FROM impressions i JOIN impression_plans p USING (impression_id)"
        "  WHERE i.operator = ?1 AND i.shown_at_ms BETWEEN ?2 AND ?3"
        "  AND (?4 IS NULL OR i.service_provider = ?4) GROUP BY 1, 2),"
        " pur AS (SELECT service_provider AS sp, plan_id AS plan, count(*) AS n FROM records"
        "  WHERE operator = ?1 AND completed_at_ms BETWEEN ?2 AND ?3"
        "  AND (?4 IS NULL OR service_provider = ?4) GROUP BY 1, 2),"
        " k AS (SELECT sp, plan FROM imp UNION SELECT sp, plan FROM pur)"
        " SELECT k.sp, k.plan, coalesce(imp.n, 0), coalesce(pur.n, 0) FROM k"
        " LEFT JOIN imp USING (sp, plan) LEFT JOIN pur USING (sp, plan) ORDER BY 1, 2";
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return NULL;
    sqlite3_bind_text(st, 1, f->op, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, f->from_ms > 0 ? f->from_ms : 0);
    sqlite3_bind_int64(st, 3, f->to_ms > 0 ? f->to_ms : INT64_MAX);
    if (f->service_provider) sqlite3_bind_text(st, 4, f->service_provider, -1, SQLITE_STATIC);
    csv_buf b = {0};
    json_t *rows = json_array();
    if (csv) csv_append(&b, PERFORMANCE_HEADER, strlen(PERFORMANCE_HEADER));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sp = (const char *)sqlite3_column_text(st, 0);
        const char *plan = (const char *)sqlite3_column_text(st, 1);
        int64_t shown = sqlite3_column_int64(st, 2), bought = sqlite3_column_int64(st, 3);
        char rate[32];
        conversion_rate(bought, shown, rate);
        if (csv) {
            csv_field(&b, sp, 1);
            csv_field(&b, plan, 0);
            csv_field_int(&b, shown, 0);
            csv_field_int(&b, bought, 0);
            csv_field(&b, rate, 0);
            csv_end_row(&b);
        } else {
            /* No impressions: the rate is undefined (null), not 0 or infinite. */
            json_array_append_new(rows, json_pack("{s:s,s:s,s:I,s:I,s:o}", "serviceProvider",
                                                  sp ? sp : "", "planId", plan ? plan : "",
                                                  "impressions", (json_int_t)shown, "purchases",
                                                  (json_int_t)bought, "conversionRate",
                                                  rate[0] ? json_string(rate) : json_null()));
        }
    }
    stmt_done(db, st);
    char *text = NULL;
    if (rc == SQLITE_DONE && csv) {
        text = csv_take(&b);
    } else if (rc == SQLITE_DONE && rows) {
        json_t *doc = json_pack("{s:s,s:O}", "operator", f->op, "plans", rows);
        text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(doc);
    }
    if (!text) free(csv_take(&b));
    json_decref(rows);
    return text;
}
