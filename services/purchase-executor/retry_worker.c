/* The retry thread: re-sends activating purchases whose outcome is not
 * known yet (no answer, timeout, 5xx, TIMEOUT/CONGESTED/INTERNAL_ERROR),
 * with the SAME transId, until the operator gives a definite answer (see
 * purchase_outcome.c for when it gives up), and re-checks pending
 * purchases whose callback did not come in time the same way (purchase.h).
 * Between claims it refreshes the gauges millom_purchases_stuck and
 * millom_purchases_overdue. It has its own SQLite
 * connection and HTTP client: SQLite transactions are per connection, so
 * it never shares one with the consumer thread.
 *
 * When partitions are assigned (executor_on_assign), their activating
 * purchases are made due at once: a purchase left activating by a crash,
 * a stop during its call or the previous owner of the partition is
 * resumed before new ones. Only purchases of owned partitions are claimed. Each attempt is claimed in a transaction that counts it and leases
 * the row for the call's timeout plus a grace period, so a crash mid-call
 * still counts the attempt and the row comes back due afterwards; the
 * outcome is stored only if nobody (a callback) decided meanwhile.
 *
 * Purchases are retried one at a time. A long operator outage therefore
 * drains slowly (one timeout per purchase), which is the gentle thing to
 * do to a backend that is struggling. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>

#include "shared/plumbing/correlator.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"
#include "shared/plumbing/worker.h"

#define IDLE_MAX_WAIT_MS 1000
#define ERROR_PAUSE_MS 500

struct retry_worker {
    purchase_flow *f;
    sqlite3 *db;
    http_client *http;
    purchase p, after; /* the round's rows, reused */
    /* Atomic: stored after the thread started, and its own rounds may
     * already wake it (flow_activate -> the executor's wake_retry); NULL
     * is a no-op for worker_wake. */
    _Atomic(worker *) thread;
};

/* One claimed purchase (then at once the next), or the sleep until the
 * next one is due. */
static long retry_round(void *arg, worker *thread) {
    (void)thread;
    retry_worker *w = arg;
    purchase_flow *f = w->f;
    int64_t now = now_ms();
    int claimed = purchase_claim_due(w->db, now, flow_lease_until(f, now), &w->p);
    if (claimed == 1) {
        correlator_set(w->p.correlator); /* the retry works for the purchase's request */
        if (w->p.state == PS_PENDING)
            log_info("no callback for pending %s/%s: asking the operator again (same transId, "
                     "re-check %d)",
                     w->p.service_provider, w->p.transid, w->p.rechecks + 1);
        else
            log_info("retrying activation of %s/%s (attempt %d)", w->p.service_provider,
                     w->p.transid, w->p.attempts);
        flow_activate(f, w->http, &w->p, w->p.attempts, &w->after);
        correlator_clear();
        return 0;
    }
    if (claimed < 0) return ERROR_PAUSE_MS;
    long stuck = purchase_count_stuck(w->db, f->cfg.max_attempts);
    if (stuck >= 0) metric_set(f->m.stuck, stuck);
    long overdue =
        purchase_count_overdue(w->db, now_ms() - (int64_t)f->cfg.pending_max_age_s * 1000);
    if (overdue >= 0) metric_set(f->m.overdue, overdue);
    int64_t due = purchase_next_due_ms(w->db);
    int64_t wait = due == INT64_MAX ? IDLE_MAX_WAIT_MS : due - now_ms();
    if (wait < 1) wait = 1;
    if (wait > IDLE_MAX_WAIT_MS) wait = IDLE_MAX_WAIT_MS;
    return (long)wait;
}

static void retry_worker_free(retry_worker *w) {
    store_close(w->db);
    http_client_free(w->http);
    purchase_clear(&w->p);
    purchase_clear(&w->after);
    free(w);
}

retry_worker *retry_worker_start(purchase_flow *f, char *err, size_t errlen) {
    retry_worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->f = f;
    w->db = purchase_store_open(f->db_path, err, errlen);
    w->http = http_client_new();
    if (w->db && !w->http) snprintf(err, errlen, "cannot create an HTTP client");
    if (!w->db || !w->http || !(w->thread = worker_start(retry_round, w, err, errlen))) {
        retry_worker_free(w);
        return NULL;
    }
    return w;
}

void retry_worker_wake(retry_worker *w) {
    if (w) worker_wake(w->thread);
}

int retry_worker_quiesce(retry_worker *w, int timeout_ms) {
    return w ? worker_quiesce(w->thread, timeout_ms) : 0;
}

void retry_worker_stop(retry_worker *w) {
    if (!w) return;
    worker_stop(w->thread); /* may finish one backend call first */
    retry_worker_free(w);
}
