/* settlement-reporter's database: a purchase is settled once per
 * (operator, transid); aggregates and plan totals add up to the records;
 * the watermark and the timer close days; a late purchase lands on its
 * own (closed) day; reports in the outbox are coalesced per key; the
 * management answers in JSON and CSV agree. SQLite in memory. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/settlement-reporter/settlement.h"
#include "shared/plumbing/stmt_cache.h"
#include "shared/plumbing/store.h"
#include "shared/contracts/subscriber_hash.h"

#define DAY1 1795824000000LL /* 2026-11-28T00:00:00Z */
#define DAY_MS 86400000LL

static sqlite3 *db;

static void setup(void) {
    char err[256];
    db = settle_store_open(":memory:", err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
}

static void teardown(void) {
    stmt_cache_close(db);
    store_close(db);
}

static settled_record rec(const char *transid, const char *sp, const char *plan, int64_t amount,
                          int64_t at) {
    static const revenue_shares sh = {70, 20, 10};
    settled_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.transid, sizeof r.transid, "%s", transid);
    snprintf(r.op, sizeof r.op, "tp");
    snprintf(r.service_provider, sizeof r.service_provider, "%s", sp);
    snprintf(r.plan_id, sizeof r.plan_id, "%s", plan);
    subscriber_hash("924542610003", r.subscriber_hash);
    r.amount_minor = amount;
    snprintf(r.currency, sizeof r.currency, "PKR");
    r.currency_scale = 2;
    r.completed_at_ms = at;
    utc_day(at, r.day);
    shares_split(amount, &sh, &r.split);
    r.settled_at_ms = at + 1000;
    return r;
}

static settle_result apply(const settled_record *r) {
    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    settle_result res = settle_apply(db, r, NULL);
    if (res == SETTLE_NEW)
        ck_assert_int_eq(store_commit(db), SQLITE_OK);
    else
        store_rollback(db);
    return res;
}

static long scalar(const char *sql) {
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    long v = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static Millom__V1__SettlementReport load(const char *day, const char *sp) {
    report_key k = {.op = "tp", .currency = "PKR"};
    snprintf(k.day, sizeof k.day, "%s", day);
    snprintf(k.service_provider, sizeof k.service_provider, "%s", sp);
    Millom__V1__SettlementReport r;
    ck_assert_int_eq(report_load(db, &k, &r), 1);
    return r;
}

START_TEST(settles_once_per_transid) {
    settled_record a = rec("t1", "sp1", "p1", 6001, DAY1 + 1000);
    ck_assert_int_eq(apply(&a), SETTLE_NEW);
    ck_assert_int_eq(apply(&a), SETTLE_DUPLICATE);
    /* The same transid at another moment or price is still the same purchase. */
    settled_record again = rec("t1", "sp1", "p1", 9999, DAY1 + 5000);
    ck_assert_int_eq(apply(&again), SETTLE_DUPLICATE);
    ck_assert_int_eq(scalar("SELECT count(*) FROM records"), 1);
    ck_assert_int_eq(
        scalar("SELECT count(*) FROM outbox WHERE topic = 'millom.settlement.records'"), 1);
    Millom__V1__SettlementReport r = load("2026-11-28", "sp1");
    ck_assert_int_eq(r.count, 1);
    ck_assert_int_eq(r.gross_minor, 6001);
    ck_assert_int_eq(r.operator_share_minor + r.provider_share_minor + r.millom_share_minor, 6001);
    report_clear(&r);
}
END_TEST

START_TEST(providers_may_share_a_transid) {
    /* Transids are per provider: another provider's t1 is another purchase. */
    settled_record a = rec("t1", "sp1", "p1", 6001, DAY1 + 1000);
    settled_record b = rec("t1", "sp2", "p1", 5000, DAY1 + 2000);
    ck_assert_int_eq(apply(&a), SETTLE_NEW);
    ck_assert_int_eq(apply(&b), SETTLE_NEW);
    ck_assert_int_eq(apply(&b), SETTLE_DUPLICATE);
    ck_assert_int_eq(scalar("SELECT count(*) FROM records"), 2);
    Millom__V1__SettlementReport r = load("2026-11-28", "sp2");
    ck_assert_int_eq(r.count, 1);
    ck_assert_int_eq(r.gross_minor, 5000);
    report_clear(&r);
}
END_TEST

START_TEST(aggregates_match_records_and_plans) {
    int64_t gross = 0;
    for (int i = 0; i < 50; i++) {
        char t[16];
        snprintf(t, sizeof t, "t%d", i);
        int64_t amount = 1 + (i * 7919) % 10007;
        gross += amount;
        settled_record r = rec(t, "sp1", i % 3 ? "p1" : "p2", amount, DAY1 + i * 1000);
        ck_assert_int_eq(apply(&r), SETTLE_NEW);
    }
    Millom__V1__SettlementReport r = load("2026-11-28", "sp1");
    ck_assert_int_eq(r.count, 50);
    ck_assert_int_eq(r.gross_minor, gross);
    ck_assert_int_eq(r.gross_minor, scalar("SELECT sum(amount_minor) FROM records"));
    ck_assert_int_eq(r.operator_share_minor, scalar("SELECT sum(operator_share) FROM records"));
    ck_assert_int_eq(r.operator_share_minor + r.provider_share_minor + r.millom_share_minor, gross);
    ck_assert_int_eq(r.n_plans, 2);
    ck_assert_int_eq(r.plans[0]->count + r.plans[1]->count, 50);
    ck_assert_int_eq(r.plans[0]->gross_minor + r.plans[1]->gross_minor, gross);
    ck_assert(!r.closed);
    report_clear(&r);
    /* One unsent report per key, however many changes (compacted topic). */
    ck_assert_int_eq(
        scalar("SELECT count(*) FROM outbox WHERE topic = 'millom.settlement.reports'"), 1);
    ck_assert_int_eq(
        scalar("SELECT count(*) FROM outbox WHERE topic = 'millom.settlement.records'"), 50);
}
END_TEST

START_TEST(later_day_closes_earlier_and_late_event_lands_on_its_day) {
    settled_record a = rec("a", "sp1", "p1", 1000, DAY1 + 3600000);
    ck_assert_int_eq(apply(&a), SETTLE_NEW);
    settled_record b = rec("b", "sp1", "p1", 2000, DAY1 + DAY_MS + 60000);
    ck_assert_int_eq(apply(&b), SETTLE_NEW);
    Millom__V1__SettlementReport r = load("2026-11-28", "sp1");
    ck_assert(r.closed);
    ck_assert_int_gt(r.closed_at_ms, 0);
    ck_assert_int_eq(r.late_count, 0);
    report_clear(&r);
    /* Late: a purchase of the 28th after the 29th was seen. */
    settled_record late = rec("late", "sp1", "p2", 333, DAY1 + 23 * 3600000LL);
    ck_assert_int_eq(apply(&late), SETTLE_NEW);
    r = load("2026-11-28", "sp1");
    ck_assert(r.closed);
    ck_assert_int_eq(r.count, 2);
    ck_assert_int_eq(r.gross_minor, 1333);
    ck_assert_int_eq(r.late_count, 1);
    report_clear(&r);
    r = load("2026-11-29", "sp1");
    ck_assert(!r.closed);
    ck_assert_int_eq(r.count, 1);
    report_clear(&r);
    /* A late purchase of a day never seen before is born closed. */
    settled_record older = rec("older", "sp2", "p1", 100, DAY1 - 5 * DAY_MS);
    ck_assert_int_eq(apply(&older), SETTLE_NEW);
    r = load("2026-11-23", "sp2");
    ck_assert(r.closed);
    ck_assert_int_eq(r.late_count, 1);
    report_clear(&r);
}
END_TEST

/* The daily table as text, one line per aggregate, for comparing. */
static char *daily_dump(void) {
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT day, service_provider, count, gross, closed,"
                                        " late_count FROM daily ORDER BY 1, 2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    while (sqlite3_step(st) == SQLITE_ROW)
        fprintf(f, "%s %s %lld %lld %d %lld\n", sqlite3_column_text(st, 0),
                sqlite3_column_text(st, 1), (long long)sqlite3_column_int64(st, 2),
                (long long)sqlite3_column_int64(st, 3), sqlite3_column_int(st, 4),
                (long long)sqlite3_column_int64(st, 5));
    sqlite3_finalize(st);
    fclose(f);
    return out;
}

/* The events of the later-day test, in an order that moves the watermark
 * inside the batch, then comes back to the closed day (late) twice. */
static const struct {
    const char *tid, *sp;
    int64_t amount, at;
} batch_events[] = {
    {"b1", "sp-a", 100, DAY1 + 1000},          {"b2", "sp-b", 200, DAY1 + 2000},
    {"b1", "sp-a", 100, DAY1 + 1000},          /* a duplicate */
    {"b3", "sp-a", 300, DAY1 + DAY_MS + 5000}, /* day 2: closes day 1 */
    {"b4", "sp-a", 400, DAY1 + 3000},          /* late, day 1 */
    {"b5", "sp-b", 500, DAY1 + 4000},          /* late, day 1 */
    {"b6", "sp-a", 600, DAY1 + DAY_MS + 6000},
};
#define N_BATCH_EVENTS (sizeof batch_events / sizeof batch_events[0])

/* One transaction with a settle_batch ends where one transaction per
 * event ends: the same aggregates (closed, late counts included), and one
 * report per aggregate in the outbox. */
START_TEST(a_batch_ends_where_one_by_one_ends) {
    for (size_t i = 0; i < N_BATCH_EVENTS; i++) {
        settled_record r = rec(batch_events[i].tid, batch_events[i].sp, "tp-plan",
                               batch_events[i].amount, batch_events[i].at);
        apply(&r);
    }
    char *one_by_one = daily_dump();
    long records = scalar("SELECT count(*) FROM records");
    teardown();
    setup();
    settle_batch b = {0};
    ck_assert_int_eq(store_batch_begin(db), SQLITE_OK);
    int dups = 0;
    for (size_t i = 0; i < N_BATCH_EVENTS; i++) {
        settled_record r = rec(batch_events[i].tid, batch_events[i].sp, "tp-plan",
                               batch_events[i].amount, batch_events[i].at);
        ck_assert_int_eq(store_begin(db), SQLITE_OK); /* a savepoint in the batch */
        settle_result res = settle_apply(db, &r, &b);
        ck_assert_int_ne(res, SETTLE_ERROR);
        if (res == SETTLE_DUPLICATE) {
            dups++;
            store_rollback(db);
        } else {
            ck_assert_int_eq(store_commit(db), SQLITE_OK);
        }
    }
    ck_assert_int_eq(dups, 1);
    ck_assert_int_eq(settle_batch_publish(db, &b), 0);
    ck_assert_int_eq(store_batch_commit(db), SQLITE_OK);
    char *batched = daily_dump();
    ck_assert_str_eq(batched, one_by_one);
    ck_assert_int_eq(scalar("SELECT count(*) FROM records"), records);
    /* Aggregates (day 1, sp-a), (day 1, sp-b), (day 2, sp-a): one report
     * each (the ones day 2 closed went out then, and were superseded). */
    ck_assert_int_eq(b.n_keys, 3);
    ck_assert_int_eq(
        scalar("SELECT count(*) FROM outbox WHERE topic = 'millom.settlement.reports'"), 3);
    ck_assert_int_eq(scalar("SELECT count(*) FROM daily WHERE closed = 1"), 2);
    settle_batch_free(&b);
    free(one_by_one);
    free(batched);
}
END_TEST

START_TEST(timer_closes_days_past_grace) {
    settled_record a = rec("a", "sp1", "p1", 1000, DAY1 + 1000);
    ck_assert_int_eq(apply(&a), SETTLE_NEW);
    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    /* 30 min after midnight with a one-hour grace: still open. */
    ck_assert_int_eq(close_expired_days(db, DAY1 + DAY_MS + 1800000, 3600000), 0);
    ck_assert_int_eq(close_expired_days(db, DAY1 + DAY_MS + 3600001, 3600000), 1);
    ck_assert_int_eq(store_commit(db), SQLITE_OK);
    Millom__V1__SettlementReport r = load("2026-11-28", "sp1");
    ck_assert(r.closed);
    report_clear(&r);
}
END_TEST

/* Moves *p past one RFC 4180 field (quoted or not) and its separator;
 * copies the unquoted value into out. */
static void csv_next(const char **p, char *out, size_t len) {
    const char *s = *p;
    size_t n = 0;
    if (*s == '"') {
        for (s++; *s && !(*s == '"' && s[1] != '"'); s++) {
            if (*s == '"') s++; /* a doubled quote */
            if (n + 1 < len) out[n++] = *s;
        }
        s++;
    } else {
        for (; *s && *s != ',' && *s != '\r'; s++)
            if (n + 1 < len) out[n++] = *s;
    }
    out[n] = '\0';
    if (*s == ',') s++;
    *p = s;
}

/* Sums the gross column (7th) of a settlements CSV, in minor units. */
static int64_t csv_gross(const char *csv, int *rows) {
    int64_t sum = 0;
    *rows = 0;
    const char *line = strstr(csv, "\r\n");
    while (line && line[2]) {
        const char *f = line + 2;
        char field[64];
        for (int i = 0; i < 7; i++) csv_next(&f, field, sizeof field);
        long units = 0, cents = 0;
        ck_assert_int_eq(sscanf(field, "%ld.%2ld", &units, &cents), 2);
        sum += units * 100 + cents;
        (*rows)++;
        line = strstr(f, "\r\n");
    }
    return sum;
}

START_TEST(json_and_csv_agree) {
    for (int i = 0; i < 30; i++) {
        char t[16];
        snprintf(t, sizeof t, "t%d", i);
        settled_record r = rec(t, (i / 2) % 2 ? "sp1" : "sp2", i % 3 ? "p1" : "p,\"2\"",
                               101 + i * 37, DAY1 + (i % 2) * DAY_MS + i);
        ck_assert_int_eq(apply(&r), SETTLE_NEW);
    }
    query_filter f = {.op = "tp"};
    char *json = render_settlements(db, &f, 0);
    char *csv = render_settlements(db, &f, 1);
    ck_assert_ptr_nonnull(json);
    ck_assert_ptr_nonnull(csv);
    ck_assert(strncmp(csv, "day,operator,serviceProvider,currency,planId,", 45) == 0);
    ck_assert_ptr_nonnull(strstr(csv, ",\"p,\"\"2\"\"\","));
    json_t *doc = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    json_t *total = json_array_get(json_object_get(doc, "totals"), 0);
    int64_t units = 0, cents = 0;
    sscanf(json_string_value(json_object_get(total, "gross")), "%ld.%2ld", &units, &cents);
    int rows;
    ck_assert_int_eq(csv_gross(csv, &rows), units * 100 + cents);
    ck_assert_int_eq(units * 100 + cents, scalar("SELECT sum(amount_minor) FROM records"));
    ck_assert_int_eq(json_integer_value(json_object_get(total, "count")), 30);
    /* 2 days x 2 providers x 2 plans. */
    ck_assert_int_eq(rows, 8);
    ck_assert_int_eq(json_array_size(json_object_get(doc, "days")), 4);
    json_decref(doc);
    free(json);
    free(csv);
    /* A day filter and a provider filter. */
    f.from_ms = DAY1 + DAY_MS;
    f.service_provider = "sp1";
    json = render_settlements(db, &f, 0);
    doc = json_loads(json, 0, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(doc, "days")), 1);
    json_decref(doc);
    free(json);
}
END_TEST

START_TEST(offer_performance_counts) {
    static const char *ins[] = {
        "INSERT INTO impressions VALUES ('i1','tp','sp1','h',1000)",
        "INSERT INTO impressions VALUES ('i2','tp','sp1','h',2000)",
        "INSERT INTO impressions VALUES ('i3','tp','sp1','h',3000)",
        "INSERT INTO impressions VALUES ('i4','tp','sp1','h',4000)",
        "INSERT INTO impression_plans VALUES ('i1','p1'),('i2','p1'),('i3','p1'),('i4','p1'),"
        "('i1','p2')",
    };
    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++)
        ck_assert_int_eq(store_exec(db, ins[i]), SQLITE_OK);
    settled_record a = rec("a", "sp1", "p1", 100, 5000);
    settled_record b = rec("b", "sp1", "p3", 100, 6000);
    ck_assert_int_eq(apply(&a), SETTLE_NEW);
    ck_assert_int_eq(apply(&b), SETTLE_NEW);
    query_filter f = {.op = "tp"};
    char *csv = render_offer_performance(db, &f, 1);
    ck_assert_str_eq(csv, "serviceProvider,planId,impressions,purchases,conversionRate\r\n"
                          "sp1,p1,4,1,0.2500\r\n"
                          "sp1,p2,1,0,0.0000\r\n"
                          "sp1,p3,0,1,\r\n");
    free(csv);
    char *json = render_offer_performance(db, &f, 0);
    json_t *doc = json_loads(json, 0, NULL);
    json_t *p3 = json_array_get(json_object_get(doc, "plans"), 2);
    ck_assert(json_is_null(json_object_get(p3, "conversionRate")));
    json_decref(doc);
    free(json);
}
END_TEST

int main(void) {
    Suite *s = suite_create("settlement-reporter store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, settles_once_per_transid);
    tcase_add_test(tc, providers_may_share_a_transid);
    tcase_add_test(tc, aggregates_match_records_and_plans);
    tcase_add_test(tc, later_day_closes_earlier_and_late_event_lands_on_its_day);
    tcase_add_test(tc, a_batch_ends_where_one_by_one_ends);
    tcase_add_test(tc, timer_closes_days_past_grace);
    tcase_add_test(tc, json_and_csv_agree);
    tcase_add_test(tc, offer_performance_counts);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
