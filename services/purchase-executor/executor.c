/* The service's life cycle and the parts the consumer thread and the retry
 * thread share: configuration, start/stop, the dispatch by topic, replies,
 * one activation attempt, and what follows a committed state change. */
#include "executor.h"
#include "shared/settings.h"
#include "shared/topics.h"
#include "shared/files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shared/crypto.h"
#include "shared/log.h"
#include "shared/rpc.h"
#include "shared/service.h"
#include "shared/store.h"
#include "millom/v1/query.pb-c.h"

/* Through shared/settings.h, once at the start: a bad value exits 1 with a
 * message naming the variable and its range. */
void executor_config_load(executor_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    settings_reader s = SETTINGS_INIT;
    cfg->timer_s = settings_seconds(&s, "MILLOM_PURCHASE_TIMER_S", 60, 0, 86400); /* 0: off */
    cfg->activate_timeout_ms = settings_ms(&s, "MILLOM_ACTIVATE_TIMEOUT_MS", 5000, 1, 600000);
    cfg->backend_timeout_ms = settings_ms(&s, "MILLOM_BACKEND_TIMEOUT_MS", 2000, 1, 600000);
    cfg->max_attempts = settings_long(&s, "MILLOM_ACTIVATE_MAX_ATTEMPTS", 20, 1, 100000);
    cfg->invalidate_timeout_ms = settings_ms(&s, "MILLOM_INVALIDATE_TIMEOUT_MS", 1000, 0, 600000);
    copy_text(cfg->callback_base, sizeof cfg->callback_base,
              settings_url(&s, "MILLOM_CALLBACK_BASE_URL", "http://127.0.0.1:8080"));
    size_t n = strlen(cfg->callback_base);
    while (n > 0 && cfg->callback_base[n - 1] == '/') cfg->callback_base[--n] = '\0';
    copy_text(cfg->channel_id, sizeof cfg->channel_id,
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
    settings_exit_on_error(&s);
}

static void metrics_init(executor_metrics *m) {
#define OUTCOME(name)                                                                     \
    metric_counter("millom_purchases_total",                                               \
                   "Purchase commands and their answers, by outcome.", "outcome=\"" name "\"")
    m->completed = OUTCOME("completed");
    m->failed = OUTCOME("failed");
    m->pending = OUTCOME("pending");
    m->processing = OUTCOME("processing");
    m->conflict = OUTCOME("conflict");
    m->rejected = OUTCOME("rejected");
#undef OUTCOME
    m->activation_seconds = metric_histogram(
        "millom_activation_seconds", "Operator backend POST /activate latency.", NULL);
    m->stuck = metric_gauge("millom_purchases_stuck",
                            "Activating purchases past MILLOM_ACTIVATE_MAX_ATTEMPTS whose outcome "
                            "is still unknown (retried at the maximum backoff).",
                            NULL);
    m->overdue = metric_gauge("millom_purchases_overdue",
                              "Purchases not final MILLOM_PENDING_MAX_AGE_S after their creation "
                              "(management look-up: GET /mgmt/{operator}/purchases?overdue=true).",
                              NULL);
    m->rechecks = metric_counter("millom_pending_rechecks_total",
                                 "Re-checks of pending purchases (POST /activate, same transId) "
                                 "for want of a callback.",
                                 NULL);
    m->callbacks = metric_counter("millom_activation_callbacks_total",
                                  "Operator activation callbacks applied.", NULL);
}

executor *executor_new(const executor_config *cfg, tenants *t, kafka_producer *producer,
                       const char *db_path, char *err, size_t errlen) {
    executor *ex = calloc(1, sizeof *ex);
    if (!ex) {
        tenants_free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ex->cfg = *cfg;
    ex->tenants = t;
    ex->producer = producer;
    copy_text(ex->db_path, sizeof ex->db_path, db_path);
    metrics_init(&ex->m);
    if (files_mkdir_parents(db_path) != 0) {
        snprintf(err, errlen, "cannot create the directory of %s: %s", db_path, strerror(errno));
        goto fail;
    }
    ex->db = purchase_store_open(db_path, err, errlen);
    if (!ex->db) goto fail;
    ex->http = http_client_new();
    if (!ex->http) {
        snprintf(err, errlen, "cannot create an HTTP client");
        goto fail;
    }
    /* Ownership comes with the next assignment; until then nobody's rows
     * are retried here. The follower starts before the consumer, so an
     * assignment can wait for it to restore. */
    if (changelog_disown_all(ex->db) != 0) {
        snprintf(err, errlen, "cannot reset partition ownership");
        goto fail;
    }
    ex->follower = changelog_follower_start(db_path, &purchase_changelog, err, errlen);
    if (!ex->follower) goto fail;
    ex->relay = outbox_relay_start(db_path, producer);
    if (!ex->relay) {
        snprintf(err, errlen, "cannot start the outbox relay");
        goto fail;
    }
    ex->retry = retry_worker_start(ex, err, errlen);
    if (!ex->retry) goto fail;
    log_info("purchase-executor: timer %ld s, activate timeout %ld ms, max attempts %ld, "
             "callbacks to %s/activationCallback/{operator}; pending re-checked after %lld s "
             "(at most %lld s apart), overdue after %ld s",
             cfg->timer_s, cfg->activate_timeout_ms, cfg->max_attempts, cfg->callback_base,
             (long long)(cfg->recheck.first_ms / 1000), (long long)(cfg->recheck.max_ms / 1000),
             cfg->pending_max_age_s);
    return ex;
fail:
    executor_free(ex);
    return NULL;
}

void executor_free(executor *ex) {
    if (!ex) return;
    retry_worker_stop(ex->retry);   /* may finish one backend call first */
    outbox_relay_stop(ex->relay);   /* last pass while the producer still runs */
    changelog_follower_stop(ex->follower);
    http_client_free(ex->http);
    store_close(ex->db);
    tenants_free(ex->tenants);
    free(ex);
}

kafka_verdict executor_handle(void *arg, const rd_kafka_message_t *msg, char *err,
                              size_t errlen) {
    executor *ex = arg;
    const char *topic = rd_kafka_topic_name(msg->rkt);
    if (strcmp(topic, TOPIC_PURCHASE_COMMANDS) == 0) {
        changelog_set_partition(msg->partition); /* the new row's partition */
        kafka_verdict v = executor_on_command(ex, msg->payload, msg->len, err, errlen);
        changelog_set_partition(-1);
        return v;
    }
    if (strcmp(topic, TOPIC_ACTIVATION_CALLBACKS) == 0)
        return executor_on_callback(ex, msg->payload, msg->len, err, errlen);
    if (strcmp(topic, TOPIC_PURCHASE_LOOKUPS) == 0)
        return executor_on_lookup(ex, msg->payload, msg->len, err, errlen);
    snprintf(err, errlen, "purchase-executor does not handle topic %s", topic);
    return KAFKA_DEAD_LETTER;
}

void executor_on_assign(void *arg, const rd_kafka_topic_partition_list_t *parts) {
    executor *ex = arg;
    changelog_take_over(ex->follower, ex->db, parts, TOPIC_PURCHASE_COMMANDS);
    /* Purchases the previous owner left activating are re-sent now, with
     * the same transId. */
    int resumed = purchase_resume_owned(ex->db);
    if (resumed > 0) log_info("resuming %d purchase(s) left activating (same transId)", resumed);
    retry_worker_wake(ex->retry);
}

void executor_on_revoke(void *arg, const rd_kafka_topic_partition_list_t *parts) {
    executor *ex = arg;
    changelog_own(ex->db, parts, TOPIC_PURCHASE_COMMANDS, 0);
    /* An activation call in flight finishes and stores its outcome before
     * the changelog is flushed for the next owner. */
    if (retry_worker_quiesce(ex->retry, (int)ex->cfg.activate_timeout_ms + 1000) != 0)
        log_warn("revoke: an activation call is still running; the next owner re-sends it");
    if (outbox_flush(ex->relay, ex->db, 10000) != 0)
        log_warn("revoke: changelog not fully delivered within 10 s");
}

int executor_before_commit(void *arg) {
    executor *ex = arg;
    return outbox_flush(ex->relay, ex->db, 5000);
}

void executor_reply(executor *ex, const Millom__V1__RequestMeta *meta, int status,
                    const char *body) {
    if (!meta || !meta->correlation_id || !*meta->correlation_id) return;
    if (rpc_expired(meta)) return; /* api-edge answered 202 itself */
    if (!body) body = "";
    int retry_after = status == 503 || status == 429 ? 1 : 0;
    if (rpc_reply(ex->producer, meta, status, "application/json", body, strlen(body),
                  retry_after) != 0)
        log_warn("cannot produce the reply for %s", meta->correlation_id);
}

/* ------------------------------------------------------ invalidation */

static Millom__V1__KeyType key_type_proto(const char *s) {
    return strcmp(s, "OPET") == 0 ? MILLOM__V1__KEY_TYPE__KEY_TYPE_OPET
                                  : MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
}

/* Produces Query{INVALIDATE} keyed by the subscriber (the partition of
 * that subscriber's later queries, so it is read before them) and waits
 * for its delivery report, at most invalidate_timeout_ms. */
static void invalidate_subscriber(executor *ex, const purchase *p) {
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)p->op;
    sub.key_type = key_type_proto(p->key_type);
    sub.subscriber_id = (char *)p->subscriber;
    Millom__V1__Query q = MILLOM__V1__QUERY__INIT;
    q.kind = MILLOM__V1__QUERY_KIND__QUERY_KIND_INVALIDATE;
    q.service_provider = (char *)p->service_provider;
    q.subscriber = &sub;
    q.trans_id = (char *)p->transid;
    size_t len = millom__v1__query__get_packed_size(&q);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        log_warn("invalidate %s: out of memory", p->transid);
        return;
    }
    millom__v1__query__pack(&q, buf);
    rd_kafka_resp_err_t err;
    kafka_wait_result r =
        kafka_produce_wait(ex->producer, TOPIC_QUERIES, -1, p->subscriber,
                           strlen(p->subscriber), buf, len, ex->cfg.invalidate_timeout_ms, &err);
    free(buf);
    if (r == KAFKA_WAIT_TIMED_OUT)
        log_warn("invalidate %s: not delivered within %ld ms; answering anyway", p->transid,
                 ex->cfg.invalidate_timeout_ms);
    else if (r == KAFKA_WAIT_FAILED)
        log_warn("invalidate %s: not delivered to %s: %s", p->transid, TOPIC_QUERIES,
                 err ? rd_kafka_err2str(err) : "cannot produce");
}

void executor_after_change(executor *ex, const purchase *before, const purchase *after) {
    if (before->state == after->state) return;
    outbox_relay_notify(ex->relay);
    switch (after->state) {
    case PS_COMPLETED:
        metric_add(ex->m.completed, 1);
        invalidate_subscriber(ex, after);
        break;
    case PS_FAILED: metric_add(ex->m.failed, 1); break;
    case PS_PENDING: metric_add(ex->m.pending, 1); break;
    default: break;
    }
    log_info("purchase %s/%s: %s -> %s (attempts %d%s%s)", after->service_provider,
             after->transid, purchase_state_name(before->state), purchase_state_name(after->state),
             after->attempts, after->error_type[0] ? ", " : "", after->error_type);
}

/* ------------------------------------------------------ one activation */

#define LEASE_GRACE_MS 2000

int executor_activate(executor *ex, http_client *hc, sqlite3 *db, const purchase *p,
                      int expect_attempts, purchase *after) {
    activation_result r;
    const tenant_operator *op = tenants_operator(ex->tenants, p->op);
    if (!op) {
        memset(&r, 0, sizeof r);
        r.kind = ACT_NOT_EXECUTED;
        snprintf(r.detail, sizeof r.detail, "operator %s is not configured", p->op);
    } else {
        char callback_url[400];
        snprintf(callback_url, sizeof callback_url, "%s/activationCallback/%s",
                 ex->cfg.callback_base, op->id);
        activation_target t = {
            .op = op,
            .channel_id = ex->cfg.channel_id,
            .callback_url = callback_url,
            .timeout_ms = ex->cfg.activate_timeout_ms,
        };
        int64_t t0 = mono_ms();
        activation_call(hc, &t, p, &r);
        metric_observe_ms(ex->m.activation_seconds, (double)(mono_ms() - t0));
    }
    if (r.kind == ACT_UNKNOWN || r.kind == ACT_NOT_EXECUTED)
        log_warn("activate %s/%s attempt %d: outcome %s (%s)", p->service_provider, p->transid,
                 p->attempts, activation_kind_name(r.kind),
                 r.detail[0] ? r.detail : r.error_type);

    uint32_t rnd = 0;
    crypto_random(&rnd, sizeof rnd);
    purchase next = {0};
    int recheck = p->state == PS_PENDING;
    int built = recheck ? outcome_after_recheck(p, &r, &ex->cfg.recheck, now_ms(), rnd, &next)
                        : outcome_after_activation(p, &r, ex->cfg.max_attempts, &ex->cfg.recheck,
                                                   now_ms(), rnd, &next);
    if (built != 0) {
        purchase_clear(&next);
        purchase_copy(after, p);
        return -1;
    }
    if (recheck) {
        metric_add(ex->m.rechecks, 1);
        if (next.state == PS_PENDING)
            log_info("re-check of pending %s/%s: %s%s%s; next in %lld ms", p->service_provider,
                     p->transid, activation_kind_name(r.kind), r.error_type[0] ? " " : "",
                     r.error_type, (long long)(next.next_attempt_ms - next.updated_ms));
    }
    /* Compare-and-set: the row must still be as claimed (a callback may
     * have decided meanwhile). */
    int rc = purchase_update(db, &next, PS_MASK(p->state), expect_attempts, after);
    if (rc == 1) {
        executor_after_change(ex, p, &next);
        /* The retry thread may be sleeping towards the lease's end. */
        if (next.state == PS_ACTIVATING || next.state == PS_PENDING)
            retry_worker_wake(ex->retry);
        if (next.state == PS_ACTIVATING && next.attempts == ex->cfg.max_attempts)
            log_warn("purchase %s/%s: %d attempts without a definite answer; it stays "
                     "activating and is retried at most 30 s apart (millom_purchases_stuck)",
                     next.service_provider, next.transid, next.attempts);
        purchase_copy(after, &next);
    } else if (rc < 0) {
        /* Not stored: the row stays activating under its lease and the
         * retry thread asks the operator again (same transId). */
        purchase_copy(after, p);
    }
    /* rc == 0: someone else (a callback) decided first; *after has it. */
    purchase_clear(&next);
    return rc < 0 ? -1 : 0;
}

int64_t executor_lease_until(const executor *ex, int64_t now) {
    return now + ex->cfg.activate_timeout_ms + LEASE_GRACE_MS;
}
