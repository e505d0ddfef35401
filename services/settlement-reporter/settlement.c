/* settlement-reporter's state and its life cycle: the database (one
 * connection per thread that uses it), the outbox relay, the day-close
 * timer and the query consumer. Settings are read here; see main.c. */
#include "settlement.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/files.h"
#include "shared/plumbing/stmt_cache.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"

static void metrics_init(settlement *s) {
    s->settled = metric_counter("millom_settlement_records_total",
                                "Completed purchases settled (one per transid).", NULL);
    s->duplicates =
        metric_counter("millom_settlement_duplicates_total",
                       "Completed purchase events already settled (redeliveries).", NULL);
    s->ignored = metric_counter("millom_settlement_ignored_events_total",
                                "Purchase events in a state that is not settled.", NULL);
    s->impressions =
        metric_counter("millom_settlement_impressions_total", "Offer impressions recorded.", NULL);
    s->queries_answered =
        metric_counter("millom_settlement_queries_total", "Management queries answered.", NULL);
}

/* Warns at start-up about operators whose purchases cannot be settled. */
static void check_shares(const tenants *t) {
    for (size_t i = 0; i < tenants_operator_count(t); i++) {
        revenue_shares sh;
        char err[160];
        if (shares_from_tenant(tenants_operator_at(t, i), &sh, err, sizeof err) != 0)
            log_warn("%s: its completed purchases go to the DLQ until it is fixed", err);
    }
}

/* The database is opened by path (several connections, and tests use
 * their own), so the data dir is created here rather than by store_open. */
settlement *settlement_new(kafka_producer *producer, char *err, size_t errlen) {
    settlement *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    metrics_init(s);
    s->producer = producer;
    snprintf(s->db_path, sizeof s->db_path, "%s/settlement-reporter.db", service_data_dir());
    if (!(s->tenants = tenants_load_default(err, errlen))) goto fail;
    check_shares(s->tenants);
    if (files_mkdir_p(service_data_dir()) != 0) {
        snprintf(err, errlen, "cannot create %s", service_data_dir());
        goto fail;
    }
    if (!(s->db = settle_store_open(s->db_path, err, errlen))) goto fail;
    if (!(s->query_db = settle_store_open(s->db_path, err, errlen))) goto fail;
    if (!(s->relay = outbox_relay_start(s->db_path, producer))) {
        snprintf(err, errlen, "cannot start the outbox relay");
        goto fail;
    }
    settings_reader set = SETTINGS_INIT; /* shared/plumbing/settings.h */
    int64_t grace_ms =
        settings_seconds(&set, "MILLOM_SETTLEMENT_CLOSE_GRACE_S", 3600, 0, 7 * 86400) * 1000;
    long check_ms = settings_ms(&set, "MILLOM_SETTLEMENT_CLOSE_CHECK_MS", 60000, 1, 86400000);
    if (!settings_ok(&set)) {
        snprintf(err, errlen, "%s", settings_error(&set));
        goto fail;
    }
    if (!(s->closer = day_closer_start(s->db_path, grace_ms, check_ms, s->relay, err, errlen)))
        goto fail;
    static const char *const topics[] = {TOPIC_SETTLEMENT_QUERIES, NULL};
    kafka_consumer_opts q = {
        .group_id = "settlement-reporter-queries",
        .client_id = "settlement-reporter-queries",
        .topics = topics,
        .handler = settlement_on_query,
        .handler_arg = s,
        .dlq = producer,
    };
    if (!(s->queries = kafka_consumer_new(&q, err, errlen)) ||
        kafka_consumer_start(s->queries) != 0) {
        if (s->queries) snprintf(err, errlen, "cannot start the query consumer");
        goto fail;
    }
    return s;
fail:
    settlement_free(s);
    return NULL;
}

/* After the event consumer stopped (runner), before the producer flushes:
 * queries first, then the timer, then the relay's last pass. */
void settlement_free(settlement *s) {
    if (!s) return;
    kafka_consumer_free(s->queries);
    day_closer_stop(s->closer);
    outbox_relay_stop(s->relay);
    stmt_cache_close(s->query_db);
    store_close(s->query_db);
    stmt_cache_close(s->db);
    store_close(s->db);
    tenants_free(s->tenants);
    settle_batch_free(&s->batch.agg);
    free(s);
}
