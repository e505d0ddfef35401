/* The steps every handler of purchase-executor takes (purchase_flow.c):
 * answer the requester (flow_reply), make one activation call and store
 * its outcome (flow_activate), and what follows a committed state change
 * (flow_after_change: wake the outbox relay, count, invalidate
 * offer-resolver's cached balance after a completion).
 *
 * purchase_flow is the state the handlers share: the executor (executor.c)
 * fills it at start and owns what it points to; the handlers
 * (purchase_commands.c, callbacks.c, lookups.c, retry_worker.c) get it
 * instead of the executor. Calls go one way: executor -> handlers -> flow
 * -> activation_client / purchase_outcome -> purchase store. */
#ifndef PURCHASE_EXECUTOR_PURCHASE_FLOW_H
#define PURCHASE_EXECUTOR_PURCHASE_FLOW_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "activation_client.h"
#include "executor_config.h"
#include "operator_slots.h"
#include "purchase.h"
#include "purchase_outcome.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/store_pool.h"
#include "shared/patterns/group_commit.h"
#include "shared/patterns/outbox.h"
#include "millom/v1/common.pb-c.h"

typedef struct {
    metric *completed, *failed, *pending, *processing, *conflict, *rejected;
    metric *activation_seconds; /* backend POST /activate latency */
    metric *stuck;              /* gauge: millom_purchases_stuck */
    metric *overdue;            /* gauge: millom_purchases_overdue */
    metric *rechecks;           /* counter: millom_pending_rechecks_total */
    metric *callbacks;
} flow_metrics;

typedef struct purchase_flow {
    executor_config cfg;
    tenants *tenants;
    kafka_producer *producer;
    char db_path[512]; /* each writer and background thread opens its own connection */
    /* shared: the lanes' connections, taken for each read (and for a
     * top-up's own small transaction, topups.c) and given back */
    store_pool *db_pool;
    http_client *http;     /* this thread's client (keep-alive connections) */
    operator_slots *slots; /* shared: calls in flight per operator (maxInFlight) */
    outbox_relay *relay;
    /* shared: the one thread that commits every write to the store
     * (group commit; reads go through db_pool) */
    group_commit *writes;
    flow_metrics m;
    /* Wakes the retry thread (it may be sleeping towards a lease's end
     * when an outcome makes a purchase due sooner); NULL: nobody to wake. */
    void (*wake_retry)(void *arg);
    void *wake_retry_arg;
} purchase_flow;

/* Registers the service's metrics into *m (at start). */
void flow_metrics_init(flow_metrics *m);

/* Produces Reply(status, body) when meta asks for one and has not expired. */
void flow_reply(purchase_flow *f, const Millom__V1__RequestMeta *meta, int status,
                const char *body);
/* 1 when flow_reply would still answer meta now: an outcome decided now
 * reaches the provider in its purchasePlan answer (unless api-edge's
 * deadline passes on the way, and then its answered_processing says so). */
int flow_reply_expected(const Millom__V1__RequestMeta *meta);

/* After a committed state change: wakes the relay, counts the outcome, and
 * for a completed purchase produces the INVALIDATE query and waits for its
 * delivery (so offer-resolver drops the cached balance before the SP can
 * ask again). Call before replying. */
void flow_after_change(purchase_flow *f, const purchase *before, const purchase *after);

/* One activation call for a claimed purchase (p: activating, or pending
 * for a re-check; attempts already counting this call) and the
 * application of its outcome (outcome_after_activation or, for a pending
 * row, outcome_after_recheck), compare-and-set on p's state and
 * expect_attempts, through hc (the calling thread's own) and flow_update. On
 * return *after holds the row as stored (the outcome, or whatever another
 * actor stored first). Returns 0, or -1 when the outcome could not be
 * stored (the row stays activating and the retry thread calls again). */
int flow_activate(purchase_flow *f, http_client *hc, const purchase *p, int expect_attempts,
                  purchase *after);

/* purchase_create and purchase_update (purchase.h) as one write among
 * those f->writes commits together: same arguments and answers; a
 * transaction that could not commit is CREATE_BUSY, or -1. The row of
 * flow_create belongs to the calling thread's changelog partition. */
create_result flow_create(purchase_flow *f, const purchase *p, int64_t timer_ms, purchase *existing,
                          int64_t *other_created_ms);
int flow_update(purchase_flow *f, const purchase *next, unsigned expect_states, int expect_attempts,
                purchase *current);
/* purchase_owe_callback (purchase.h) as one of those writes, waking the
 * outbox relay when it re-published the event: 1, 0 or -1 as it. */
int flow_owe_callback(purchase_flow *f, const char *sp, const char *transid);

/* When a call started now may be retried by the retry thread: the call's
 * timeout plus a grace period (the row's lease while a call runs). */
int64_t flow_lease_until(const purchase_flow *f, int64_t now);

#endif
