/* See purchase_flow.h: the steps the handlers share (replies, one
 * activation call and its outcome, what follows a state change). */
#include "purchase_flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/crypto.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/changelog.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/topics.h"
#include "millom/v1/query.pb-c.h"

void flow_metrics_init(flow_metrics *m) {
#define OUTCOME(name)                                                                            \
    metric_counter("millom_purchases_total", "Purchase commands and their answers, by outcome.", \
                   "outcome=\"" name "\"")
    m->completed = OUTCOME("completed");
    m->failed = OUTCOME("failed");
    m->pending = OUTCOME("pending");
    m->processing = OUTCOME("processing");
    m->conflict = OUTCOME("conflict");
    m->rejected = OUTCOME("rejected");
#undef OUTCOME
    m->activation_seconds = metric_histogram("millom_activation_seconds",
                                             "Operator backend POST /activate latency.", NULL);
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

int flow_reply_expected(const Millom__V1__RequestMeta *meta) {
    /* Expired: api-edge answered 202 itself. */
    return meta && meta->correlation_id && *meta->correlation_id && !rpc_expired(meta);
}

void flow_reply(purchase_flow *f, const Millom__V1__RequestMeta *meta, int status,
                const char *body) {
    if (!flow_reply_expected(meta)) return;
    if (!body) body = "";
    int retry_after = status == 503 || status == 429 ? 1 : 0;
    if (rpc_reply(f->producer, meta, status, "application/json", body, strlen(body), retry_after) !=
        0)
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
static void invalidate_subscriber(purchase_flow *f, const purchase *p) {
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
        kafka_produce_wait(f->producer, TOPIC_QUERIES, -1, p->subscriber, strlen(p->subscriber),
                           buf, len, f->cfg.invalidate_timeout_ms, &err);
    free(buf);
    if (r == KAFKA_WAIT_TIMED_OUT)
        log_warn("invalidate %s: not delivered within %ld ms; answering anyway", p->transid,
                 f->cfg.invalidate_timeout_ms);
    else if (r == KAFKA_WAIT_FAILED)
        log_warn("invalidate %s: not delivered to %s: %s", p->transid, TOPIC_QUERIES,
                 err ? rd_kafka_err2str(err) : "cannot produce");
}

void flow_after_change(purchase_flow *f, const purchase *before, const purchase *after) {
    if (before->state == after->state) return;
    outbox_relay_notify(f->relay);
    switch (after->state) {
    case PS_COMPLETED:
        metric_add(f->m.completed, 1);
        invalidate_subscriber(f, after);
        break;
    case PS_FAILED: metric_add(f->m.failed, 1); break;
    case PS_PENDING: metric_add(f->m.pending, 1); break;
    default: break;
    }
    log_info("purchase %s/%s: %s -> %s (attempts %d%s%s)", after->service_provider, after->transid,
             purchase_state_name(before->state), purchase_state_name(after->state), after->attempts,
             after->error_type[0] ? ", " : "", after->error_type);
}

/* ------------------------------------------------------ one activation */

#define LEASE_GRACE_MS 2000

int flow_activate(purchase_flow *f, http_client *hc, const purchase *p, int expect_attempts,
                  purchase *after) {
    activation_result r;
    const tenant_operator *op = tenants_operator(f->tenants, p->op);
    if (!op) {
        memset(&r, 0, sizeof r);
        r.kind = ACT_NOT_EXECUTED;
        snprintf(r.detail, sizeof r.detail, "operator %s is not configured", p->op);
    } else {
        char callback_url[400];
        snprintf(callback_url, sizeof callback_url, "%s/activationCallback/%s",
                 f->cfg.callback_base, op->id);
        activation_target t = {
            .op = op,
            .channel_id = f->cfg.channel_id,
            .callback_url = callback_url,
            .timeout_ms = f->cfg.activate_timeout_ms,
        };
        operator_slot_take(f->slots, op); /* at most maxInFlight calls at once */
        int64_t t0 = mono_ms();
        activation_call(hc, &t, p, &r);
        metric_observe_ms(f->m.activation_seconds, (double)(mono_ms() - t0));
        operator_slot_give(f->slots, op);
    }
    if (r.kind == ACT_UNKNOWN || r.kind == ACT_NOT_EXECUTED)
        log_warn("activate %s/%s attempt %d: outcome %s (%s)", p->service_provider, p->transid,
                 p->attempts, activation_kind_name(r.kind), r.detail[0] ? r.detail : r.error_type);

    uint32_t rnd = 0;
    crypto_random(&rnd, sizeof rnd);
    purchase next = {0};
    int recheck = p->state == PS_PENDING;
    int built = recheck ? outcome_after_recheck(p, &r, &f->cfg.recheck, now_ms(), rnd, &next)
                        : outcome_after_activation(p, &r, f->cfg.max_attempts, &f->cfg.recheck,
                                                   now_ms(), rnd, &next);
    if (built != 0) {
        purchase_clear(&next);
        purchase_copy(after, p);
        return -1;
    }
    if (recheck) {
        metric_add(f->m.rechecks, 1);
        if (next.state == PS_PENDING)
            log_info("re-check of pending %s/%s: %s%s%s; next in %lld ms", p->service_provider,
                     p->transid, activation_kind_name(r.kind), r.error_type[0] ? " " : "",
                     r.error_type, (long long)(next.next_attempt_ms - next.updated_ms));
    }
    /* Compare-and-set: the row must still be as claimed (a callback may
     * have decided meanwhile). */
    int rc = flow_update(f, &next, PS_MASK(p->state), expect_attempts, after);
    if (rc == 1) {
        flow_after_change(f, p, &next);
        /* The retry thread may be sleeping towards the lease's end. */
        if ((next.state == PS_ACTIVATING || next.state == PS_PENDING) && f->wake_retry)
            f->wake_retry(f->wake_retry_arg);
        if (next.state == PS_ACTIVATING && next.attempts == f->cfg.max_attempts)
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

int64_t flow_lease_until(const purchase_flow *f, int64_t now) {
    return now + f->cfg.activate_timeout_ms + LEASE_GRACE_MS;
}

/* ------------------------------------------------------ writes */

typedef struct {
    const purchase *p;
    int64_t timer_ms;
    purchase *existing;
    int64_t *other_created_ms;
    int32_t partition; /* the caller's changelog partition */
    create_result result;
} create_write;

static void run_create(sqlite3 *db, void *arg) {
    create_write *w = arg;
    changelog_set_partition(w->partition);
    /* On the committer's thread: its log lines and changelog records are
     * about this purchase's request. */
    correlator_set(w->p->correlator);
    w->result = purchase_create(db, w->p, w->timer_ms, w->existing, w->other_created_ms);
    correlator_clear();
    changelog_set_partition(-1);
}

create_result flow_create(purchase_flow *f, const purchase *p, int64_t timer_ms, purchase *existing,
                          int64_t *other_created_ms) {
    create_write w = {.p = p,
                      .timer_ms = timer_ms,
                      .existing = existing,
                      .other_created_ms = other_created_ms,
                      .partition = changelog_get_partition(),
                      .result = CREATE_ERROR};
    if (group_commit_run(f->writes, run_create, &w) != 0) return CREATE_BUSY;
    return w.result;
}

typedef struct {
    const purchase *next;
    unsigned expect_states;
    int expect_attempts;
    purchase *current;
    int result;
} update_write;

static void run_update(sqlite3 *db, void *arg) {
    update_write *w = arg;
    correlator_set(w->next->correlator); /* as in run_create */
    w->result = purchase_update(db, w->next, w->expect_states, w->expect_attempts, w->current);
    correlator_clear();
}

int flow_update(purchase_flow *f, const purchase *next, unsigned expect_states, int expect_attempts,
                purchase *current) {
    update_write w = {.next = next,
                      .expect_states = expect_states,
                      .expect_attempts = expect_attempts,
                      .current = current,
                      .result = -1};
    if (group_commit_run(f->writes, run_update, &w) != 0) return -1;
    return w.result;
}

typedef struct {
    const char *sp, *transid;
    int result;
} owe_write;

static void run_owe_callback(sqlite3 *db, void *arg) {
    owe_write *w = arg;
    w->result = purchase_owe_callback(db, w->sp, w->transid, now_ms());
}

int flow_owe_callback(purchase_flow *f, const char *sp, const char *transid) {
    owe_write w = {.sp = sp, .transid = transid, .result = -1};
    if (group_commit_run(f->writes, run_owe_callback, &w) != 0) return -1;
    if (w.result == 1) outbox_relay_notify(f->relay);
    return w.result;
}
