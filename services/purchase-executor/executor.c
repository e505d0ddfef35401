/* The service's life cycle: configuration, start/stop, the consumer's
 * hooks (partitions assigned and revoked, before a commit) and the dispatch
 * of each message to its topic's handler. */
#include "executor.h"
#include "topups.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/files.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/store.h"
#include "shared/plumbing/text.h"
#include "shared/plumbing/topics.h"

/* Through shared/plumbing/settings.h, once at the start: a bad value exits 1 with a
 * message naming the variable and its range. */
void executor_config_load(executor_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    settings_reader s = SETTINGS_INIT;
    cfg->timer_s = settings_seconds(&s, "MILLOM_PURCHASE_TIMER_S", 60, 0, 86400); /* 0: off */
    cfg->activate_timeout_ms = settings_ms(&s, "MILLOM_ACTIVATE_TIMEOUT_MS", 5000, 1, 600000);
    cfg->backend_timeout_ms = settings_ms(&s, "MILLOM_BACKEND_TIMEOUT_MS", 2000, 1, 600000);
    cfg->max_attempts = settings_long(&s, "MILLOM_ACTIVATE_MAX_ATTEMPTS", 20, 1, 100000);
    cfg->invalidate_timeout_ms = settings_ms(&s, "MILLOM_INVALIDATE_TIMEOUT_MS", 1000, 0, 600000);
    text_copy(cfg->callback_base, sizeof cfg->callback_base,
              settings_url(&s, "MILLOM_CALLBACK_BASE_URL", "http://127.0.0.1:8080"));
    size_t n = strlen(cfg->callback_base);
    while (n > 0 && cfg->callback_base[n - 1] == '/') cfg->callback_base[--n] = '\0';
    text_copy(cfg->channel_id, sizeof cfg->channel_id,
              settings_str(&s, "MILLOM_CHANNEL_ID", "App"));
    /* Pending purchases: how long a callback may take before the operator
     * is asked again, the longest wait between re-checks (never below the
     * first), and when a purchase that is still not final needs a human
     * (overdue). */
    long recheck_s = settings_seconds(&s, "MILLOM_PENDING_RECHECK_S", 60, 1, 7 * 86400);
    long recheck_max_s = settings_seconds(&s, "MILLOM_PENDING_RECHECK_MAX_S", 600, 1, 7 * 86400);
    if (recheck_max_s < recheck_s) recheck_max_s = recheck_s;
    cfg->recheck.first_ms = (int64_t)recheck_s * 1000;
    cfg->recheck.max_ms = (int64_t)recheck_max_s * 1000;
    cfg->pending_max_age_s = settings_seconds(&s, "MILLOM_PENDING_MAX_AGE_S", 3600, 1, 365 * 86400);
    /* Messages handled at once, each lane on its own thread; one key (a
     * subscriber's MSISDN) always in one lane, in order. 1: one at a time
     * on the consumer's thread, as before lanes. A lane waits for its
     * operator call, its group commit and its deliveries, so the lanes
     * bound the purchases per second at lanes / a purchase's time in a
     * lane. A lane costs about 100 kB under load: its stack pages (52 kB,
     * 18 kB of them the static thread-local storage of librdkafka and
     * Millom) and malloc's cache of freed blocks per thread. In the bench
     * 16 made about 8% fewer purchases/s than 24 for 0.8 MB less (runs
     * alternated, 2026-12-03); an operator slower than mno-sandbox needs
     * more. */
    cfg->lanes = settings_long(&s, "MILLOM_EXECUTOR_LANES", 16, 1, 256);
    /* The SQLite connections the lanes share for their reads (a lane
     * takes one for each read: microseconds, against the operator call's
     * milliseconds). A connection each cost about 100 kB per lane: its
     * copy of the schema, the change-capture triggers, the prepared
     * statements and the page cache. A purchase's writes go through the
     * group commit's own connection; a top-up's small transaction through
     * one of these. Never more than the lanes. */
    cfg->db_connections = settings_long(&s, "MILLOM_EXECUTOR_DB_CONNECTIONS", 4, 1, 256);
    if (cfg->db_connections > cfg->lanes) cfg->db_connections = cfg->lanes;
    settings_exit_on_error(&s);
}

/* The flow's hook: an outcome made a purchase due sooner than the retry
 * thread may be sleeping. */
static void wake_retry(void *arg) {
    executor *ex = arg;
    retry_worker_wake(ex->retry);
}

/* With more than one lane, each gets a copy of the flow with its own
 * HTTP client on the executor's loop; config, tenants, producer, relay,
 * the read connections, metrics and operator slots stay shared. With one,
 * the consumer's thread uses the executor's flow as before. */
static int lanes_open(executor *ex, char *err, size_t errlen) {
    if (ex->flow.cfg.lanes <= 1) return 0;
    ex->lanes = calloc((size_t)ex->flow.cfg.lanes, sizeof *ex->lanes);
    if (!ex->lanes) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (long i = 0; i < ex->flow.cfg.lanes; i++) {
        purchase_flow *l = &ex->lanes[i];
        *l = ex->flow;
        l->http = NULL;
        ex->n_lanes++;
        l->http = http_client_on_loop(ex->calls);
        if (!l->http) {
            snprintf(err, errlen, "cannot create an HTTP client");
            return -1;
        }
    }
    return 0;
}

static void lanes_close(executor *ex) {
    for (int i = 0; i < ex->n_lanes; i++) http_client_free(ex->lanes[i].http);
    free(ex->lanes);
    ex->lanes = NULL;
    ex->n_lanes = 0;
}

executor *executor_new(const executor_config *cfg, tenants *t, kafka_producer *producer,
                       const char *db_path, char *err, size_t errlen) {
    executor *ex = calloc(1, sizeof *ex);
    if (!ex) {
        tenants_free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    purchase_flow *f = &ex->flow;
    f->cfg = *cfg;
    f->tenants = t;
    f->producer = producer;
    text_copy(f->db_path, sizeof f->db_path, db_path);
    flow_metrics_init(&f->m);
    f->wake_retry = wake_retry;
    f->wake_retry_arg = ex;
    if (files_mkdir_parents(db_path) != 0) {
        snprintf(err, errlen, "cannot create the directory of %s: %s", db_path, strerror(errno));
        goto fail;
    }
    f->db_pool =
        store_pool_open(db_path, (int)cfg->db_connections, purchase_store_open, err, errlen);
    if (!f->db_pool) goto fail;
    /* One call per client at a time: the lanes' and the flow's. Each
     * operator's maxInFlight (operator_slots) bounds its connections. */
    http_loop_opts calls = {.name = "operator-calls",
                            .max_in_flight = cfg->lanes + 1,
                            .max_host_connections = cfg->lanes + 1,
                            .max_waiting = cfg->lanes + 1};
    ex->calls = http_loop_start(&calls, err, errlen);
    if (!ex->calls) goto fail;
    f->http = http_client_on_loop(ex->calls);
    if (!f->http) {
        snprintf(err, errlen, "cannot create an HTTP client");
        goto fail;
    }
    /* Ownership comes with the next assignment; until then nobody's rows
     * are retried here. The follower starts before the consumer, so an
     * assignment can wait for it to restore. */
    ex->consumer_db = purchase_store_open(db_path, err, errlen);
    if (!ex->consumer_db) goto fail;
    if (changelog_disown_all(ex->consumer_db) != 0) {
        snprintf(err, errlen, "cannot reset partition ownership");
        goto fail;
    }
    ex->follower = changelog_follower_start(db_path, &purchase_changelog, err, errlen);
    if (!ex->follower) goto fail;
    f->relay = outbox_relay_start(db_path, producer);
    if (!f->relay) {
        snprintf(err, errlen, "cannot start the outbox relay");
        goto fail;
    }
    f->slots = operator_slots_new(t);
    if (!f->slots) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    f->writes = group_commit_start(db_path, purchase_store_open, "writes", err, errlen);
    if (!f->writes) goto fail;
    ex->retry = retry_worker_start(f, err, errlen);
    if (!ex->retry) goto fail;
    if (lanes_open(ex, err, errlen) != 0) goto fail;
    log_info("purchase-executor: %ld lane(s), timer %ld s, activate timeout %ld ms, max attempts "
             "%ld, callbacks to %s/activationCallback/{operator}; pending re-checked after %lld s "
             "(at most %lld s apart), overdue after %ld s",
             cfg->lanes, cfg->timer_s, cfg->activate_timeout_ms, cfg->max_attempts,
             cfg->callback_base, (long long)(cfg->recheck.first_ms / 1000),
             (long long)(cfg->recheck.max_ms / 1000), cfg->pending_max_age_s);
    return ex;
fail:
    executor_free(ex);
    return NULL;
}

void executor_free(executor *ex) {
    if (!ex) return;
    lanes_close(ex);                    /* the consumer (and with it every lane) stopped first */
    retry_worker_stop(ex->retry);       /* may finish one backend call first */
    group_commit_stop(ex->flow.writes); /* after the last writer, before the relay's last pass */
    outbox_relay_stop(ex->flow.relay);  /* last pass while the producer still runs */
    changelog_follower_stop(ex->follower);
    http_client_free(ex->flow.http);
    http_loop_stop(ex->calls); /* after every client on it */
    store_pool_close(ex->flow.db_pool);
    store_close(ex->consumer_db);
    operator_slots_free(ex->flow.slots);
    tenants_free(ex->flow.tenants);
    free(ex);
}

void *executor_lane_arg(void *arg, int lane) {
    executor *ex = arg;
    return lane >= 0 && lane < ex->n_lanes ? &ex->lanes[lane] : &ex->flow;
}

int executor_lanes(void *arg) {
    executor *ex = arg;
    return (int)ex->flow.cfg.lanes;
}

kafka_verdict executor_handle(void *arg, const rd_kafka_message_t *msg, char *err, size_t errlen) {
    purchase_flow *f = arg; /* executor_lane_arg: the lane's own */
    const char *topic = rd_kafka_topic_name(msg->rkt);
    if (strcmp(topic, TOPIC_PURCHASE_COMMANDS) == 0) {
        changelog_set_partition(msg->partition); /* the new row's partition */
        kafka_verdict v = handle_command(f, msg->payload, msg->len, err, errlen);
        changelog_set_partition(-1);
        return v;
    }
    if (strcmp(topic, TOPIC_ACTIVATION_CALLBACKS) == 0)
        return handle_callback(f, msg->payload, msg->len, err, errlen);
    if (strcmp(topic, TOPIC_PURCHASE_LOOKUPS) == 0)
        return handle_lookup(f, msg->payload, msg->len, err, errlen);
    if (strcmp(topic, TOPIC_TOPUP_COMMANDS) == 0)
        return handle_topup(f, msg->payload, msg->len, err, errlen);
    snprintf(err, errlen, "purchase-executor does not handle topic %s", topic);
    return KAFKA_DEAD_LETTER;
}

void executor_on_assign(void *arg, const rd_kafka_topic_partition_list_t *parts) {
    executor *ex = arg;
    changelog_take_over(ex->follower, ex->consumer_db, parts, TOPIC_PURCHASE_COMMANDS);
    /* Purchases the previous owner left activating are re-sent now, with
     * the same transId. */
    int resumed = purchase_resume_owned(ex->consumer_db);
    if (resumed > 0) log_info("resuming %d purchase(s) left activating (same transId)", resumed);
    retry_worker_wake(ex->retry);
}

void executor_on_revoke(void *arg, const rd_kafka_topic_partition_list_t *parts) {
    executor *ex = arg;
    changelog_own(ex->consumer_db, parts, TOPIC_PURCHASE_COMMANDS, 0);
    /* An activation call in flight finishes and stores its outcome before
     * the changelog is flushed for the next owner. */
    if (retry_worker_quiesce(ex->retry, (int)ex->flow.cfg.activate_timeout_ms + 1000) != 0)
        log_warn("revoke: an activation call is still running; the next owner re-sends it");
    if (outbox_flush(ex->flow.relay, ex->consumer_db, 10000) != 0)
        log_warn("revoke: changelog not fully delivered within 10 s");
}

int executor_before_commit(void *arg) {
    executor *ex = arg;
    return outbox_flush(ex->flow.relay, ex->consumer_db, 5000);
}
