/* settlement-reporter: settles every completed purchase exactly once and
 * keeps daily aggregates for analysts.
 *
 *   millom.purchase.events ──> settle_events.c: a COMPLETED event becomes one
 *       row of `records` (primary key operator + transid, so a redelivered
 *       or re-published event changes nothing), its daily aggregate and
 *       per-plan totals are updated, and the SettlementRecord plus the new
 *       SettlementReport go into the outbox: all in one SQLite transaction
 *       inside the Kafka handler, so the offset is stored only after it.
 *   millom.offer.impressions ──> impressions.c: which plans a provider
 *       showed (de-duplicated by impression id).
 *   millom.settlement.queries ──> queries.c, on a consumer of its own so a
 *       backlog of events never delays the management API.
 *   outbox ──relay──> millom.settlement.records (key operator) and
 *       millom.settlement.reports (key day|operator|provider|currency).
 *
 * Revenue split (shares.c): the operator's and the provider's shares are
 * floor(gross * percent / 100); Millom takes the rest. The three parts
 * always add up to the gross, and Millom's part absorbs the rounding
 * (at most 2 minor units more than its exact percentage).
 *
 * Day close (day_close.c): a UTC day closes when an event of a later day
 * has been settled (the stream moved on) or when the wall clock passed the
 * day's end plus MILLOM_SETTLEMENT_CLOSE_GRACE_S. A purchase of a closed
 * day still lands on its own day ("late"): the aggregate stays closed,
 * late_count grows and the report is published again. */
#ifndef SETTLEMENT_REPORTER_SETTLEMENT_H
#define SETTLEMENT_REPORTER_SETTLEMENT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "shared/contracts/config.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/metrics.h"
#include "shared/patterns/outbox.h"
#include "millom/v1/purchase.pb-c.h"
#include "millom/v1/settlement.pb-c.h"

/* ------------------------------------------------------------ shares.c */

typedef struct {
    int operator_pct, provider_pct, millom_pct; /* integers summing to 100 */
} revenue_shares;

typedef struct {
    int64_t operator_minor, provider_minor, millom_minor;
} share_split;

/* Reads "revenueShares": {"operator":70,"provider":20,"millom":10} of a
 * tenant operator: integers 0..100 summing to 100. -1 with a message. */
int shares_from_tenant(const tenant_operator *op, revenue_shares *out, char *err, size_t errlen);
/* Splits gross (>= 0) by the documented rule; parts sum to gross. */
void shares_split(int64_t gross_minor, const revenue_shares *s, share_split *out);

/* ----------------------------------------------------------- days.c */

/* ms since the epoch -> "YYYY-MM-DD" (UTC). */
void utc_day(int64_t ms, char out[11]);
/* "YYYY-MM-DD" -> ms of its 00:00:00 UTC, or -1. */
int64_t utc_day_start(const char *day);

/* ------------------------------------------------------ settle_store.c */

/* Opens (creating, migrating) the service's database. */
sqlite3 *settle_store_open(const char *path, char *err, size_t errlen);

/* One settled purchase as stored. */
typedef struct {
    char transid[129];
    char op[33];
    char service_provider[65];
    char plan_id[129];
    char subscriber_hash[65];
    int64_t amount_minor;
    char currency[8];
    int currency_scale;
    int fund_source; /* Millom__V1__FundSource */
    int64_t completed_at_ms;
    char day[11];
    share_split split;
    int64_t settled_at_ms;
} settled_record;

/* The key of one daily aggregate. */
typedef struct {
    char day[11];
    char op[33];
    char service_provider[65];
    char currency[8];
} report_key;

typedef enum {
    SETTLE_NEW = 0,   /* inserted, aggregates updated, outbox written */
    SETTLE_DUPLICATE, /* this (operator, transid) was settled before */
    SETTLE_ERROR,     /* database error: retry the message */
} settle_result;

/* Sums of records not yet added to one `daily` or `daily_plans` row. */
typedef struct {
    long count;
    int64_t gross;
    share_split shares;
} settle_sums;

/* What one batch of settlements (one transaction) has learned, so each
 * event costs fewer statements: the watermark, the aggregates the batch
 * changed with whether each is closed, and what the batch's records add to
 * each aggregate and plan total, written with one statement per row at
 * the batch's end (or before the watermark moves) instead of two per
 * record. The reports are published once, at the batch's end
 * (settle_batch_publish), not once per event. */
typedef struct {
    char wm[11];
    int wm_known;
    struct settle_batch_key {
        report_key key;
        int closed;
        int currency_scale;
        settle_sums pending;   /* not yet in `daily` */
        long pending_late;     /* of which late */
        int64_t first_late_ms; /* settled_at of the first late one, 0: none */
        int64_t last_ms;       /* settled_at of the last one */
    } * keys;
    size_t n_keys, cap;
    struct settle_batch_plan {
        size_t key; /* index into keys */
        char plan_id[129];
        settle_sums pending; /* not yet in `daily_plans` */
    } * plans;
    size_t n_plans, cap_plans;
} settle_batch;

/* In the caller's open transaction: inserts rec, adds it to its daily
 * aggregate and plan totals (marking the aggregate closed and counting it
 * late when its day is closed or before the watermark), advances the
 * watermark, and writes the record to the outbox. Without a batch (NULL)
 * the report goes to the outbox too; with one, the changed aggregate is
 * remembered in it for settle_batch_publish. */
settle_result settle_apply(sqlite3 *db, const settled_record *rec, settle_batch *batch);
/* Writes the report of every aggregate the batch changed to the outbox
 * (in the batch's transaction). 0, or -1. */
int settle_batch_publish(sqlite3 *db, settle_batch *b);
/* Forgets what the batch learned (at the start of the next one). */
void settle_batch_reset(settle_batch *b);
void settle_batch_free(settle_batch *b);

/* Writes the current SettlementReport of key to the outbox, first deleting
 * an unsent older report of the same key: the topic is compacted, so only
 * the latest value per key matters, and under load this keeps the outbox
 * from carrying one report per event. In the caller's transaction. */
int report_publish(sqlite3 *db, const report_key *key);
/* Fills a SettlementReport for key (plans malloc'd: report_clear frees).
 * 1 found, 0 no such aggregate, -1 error. */
int report_load(sqlite3 *db, const report_key *key, Millom__V1__SettlementReport *out);
void report_clear(Millom__V1__SettlementReport *r);

/* ---------------------------------------------------------- day_close.c */

/* The latest day settled so far ("" before the first), from `meta`. */
int watermark_get(sqlite3 *db, char out[11]);
/* In the caller's transaction: when day is later than the watermark,
 * moves the watermark and closes every open aggregate of an earlier day
 * (publishing them). Returns the number closed, or -1. */
int watermark_advance(sqlite3 *db, const char *day, int64_t now);
/* In the caller's transaction: closes every open aggregate whose day
 * ended before now - grace_ms. Returns the number closed, or -1. */
int close_expired_days(sqlite3 *db, int64_t now, int64_t grace_ms);

typedef struct day_closer day_closer;
/* A thread with its own connection that runs close_expired_days every
 * interval_ms and wakes the relay when it closed something. */
day_closer *day_closer_start(const char *db_path, int64_t grace_ms, long interval_ms,
                             outbox_relay *relay, char *err, size_t errlen);
void day_closer_stop(day_closer *d);

/* -------------------------------------------------------------- service */

typedef struct {
    tenants *tenants;
    kafka_producer *producer;
    char db_path[512];
    sqlite3 *db;       /* the event consumer's connection */
    sqlite3 *query_db; /* the query consumer's connection */
    outbox_relay *relay;
    day_closer *closer;
    kafka_consumer *queries; /* millom.settlement.queries */
    metric *settled, *duplicates, *ignored, *impressions, *queries_answered;
    /* The open batch of the event consumer (settle_events.c): the
     * aggregates it changed, whose reports go out once at its commit, and
     * its counts, added to the metrics only once it committed. */
    struct {
        int open;
        settle_batch agg;
        long settled, duplicates, ignored, impressions;
    } batch;
} settlement;

/* settle_events.c: the handler of the main consumer (dispatch by topic). */
kafka_verdict settlement_handle(void *arg, const rd_kafka_message_t *msg, char *err, size_t errlen);
/* The consumer's batch hooks (kafka_consumer_opts.batch_begin): many
 * events in one transaction, each aggregate's report published once. */
int settlement_batch_begin(void *arg);
int settlement_batch_commit(void *arg);
void settlement_batch_rollback(void *arg);
/* Counts one outcome: now, or at the open batch's commit. */
void settlement_count(settlement *s, metric *m, long *batch_count);
/* One PurchaseEvent (raw payload): settles it when it is COMPLETED. */
kafka_verdict settlement_on_event(settlement *s, const void *payload, size_t len, char *err,
                                  size_t errlen);
/* Builds the record of a COMPLETED event. 0, or -1 with err (DLQ). */
int settlement_record_from_event(const tenants *t, const Millom__V1__PurchaseEvent *ev, int64_t now,
                                 settled_record *out, char *err, size_t errlen);

/* impressions.c */
kafka_verdict settlement_on_impression(settlement *s, const void *payload, size_t len, char *err,
                                       size_t errlen);

/* queries.c: the query consumer's handler. */
kafka_verdict settlement_on_query(void *arg, const rd_kafka_message_t *msg, char *err,
                                  size_t errlen);

/* render.c: the answers of the management API (malloc'd text). */
typedef struct {
    const char *op;
    int64_t from_ms, to_ms;       /* 0 = open */
    const char *service_provider; /* NULL = all */
} query_filter;
/* Daily aggregates with their plans: JSON or CSV. NULL on error. */
char *render_settlements(sqlite3 *db, const query_filter *f, int csv);
/* Impressions vs purchases per (provider, plan): JSON or CSV. */
char *render_offer_performance(sqlite3 *db, const query_filter *f, int csv);
/* purchases / impressions as a decimal with 4 digits, rounded half up
 * ("0.2500"); "" when impressions is 0. */
void conversion_rate(int64_t purchases, int64_t impressions, char out[32]);

/* settlement.c: life cycle. */
settlement *settlement_new(kafka_producer *producer, char *err, size_t errlen);
void settlement_free(settlement *s);

#endif
