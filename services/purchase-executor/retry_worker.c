/* The retry thread: re-sends activating purchases whose outcome is not
 * known yet (no answer, timeout, 5xx, TIMEOUT/CONGESTED/INTERNAL_ERROR),
 * with the SAME transId, until the operator gives a definite answer (see
 * purchase_outcome.c for when it gives up). It has its own SQLite
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
#include "executor.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shared/log.h"
#include "shared/service.h"
#include "shared/store.h"

#define IDLE_MAX_WAIT_MS 1000
#define ERROR_PAUSE_MS 500

struct retry_worker {
    executor *ex;
    sqlite3 *db;
    http_client *http;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int woken;
    atomic_int stop;
    atomic_int busy;              /* inside a claim and its activation call */
};

static void wait_ms(retry_worker *w, long ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->woken && !atomic_load(&w->stop)) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT) break;
    }
    w->woken = 0;
    pthread_mutex_unlock(&w->mu);
}

static void *retry_thread(void *arg) {
    retry_worker *w = arg;
    executor *ex = w->ex;
    purchase p = {0}, after = {0};
    while (!atomic_load(&w->stop)) {
        int64_t now = now_ms();
        atomic_store(&w->busy, 1);
        int claimed = purchase_claim_due(w->db, now, executor_lease_until(ex, now), &p);
        if (claimed == 1) {
            log_info("retrying activation of %s/%s (attempt %d)", p.service_provider, p.transid,
                     p.attempts);
            executor_activate(ex, w->http, w->db, &p, p.attempts, &after);
            atomic_store(&w->busy, 0);
            continue;
        }
        atomic_store(&w->busy, 0);
        if (claimed < 0) {
            wait_ms(w, ERROR_PAUSE_MS);
            continue;
        }
        long stuck = purchase_count_stuck(w->db, ex->cfg.max_attempts);
        if (stuck >= 0) metric_set(ex->m.stuck, stuck);
        int64_t due = purchase_next_due_ms(w->db);
        int64_t wait = due == INT64_MAX ? IDLE_MAX_WAIT_MS : due - now_ms();
        if (wait < 1) wait = 1;
        if (wait > IDLE_MAX_WAIT_MS) wait = IDLE_MAX_WAIT_MS;
        wait_ms(w, (long)wait);
    }
    purchase_clear(&p);
    purchase_clear(&after);
    return NULL;
}

retry_worker *retry_worker_start(executor *ex, char *err, size_t errlen) {
    retry_worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->ex = ex;
    w->db = purchase_store_open(ex->db_path, err, errlen);
    w->http = http_client_new();
    if (!w->db || !w->http) {
        if (w->db && !w->http) snprintf(err, errlen, "cannot create an HTTP client");
        store_close(w->db);
        http_client_free(w->http);
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&w->thread, NULL, retry_thread, w);
    if (rc) {
        snprintf(err, errlen, "retry thread: %s", strerror(rc));
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        store_close(w->db);
        http_client_free(w->http);
        free(w);
        return NULL;
    }
    return w;
}

void retry_worker_wake(retry_worker *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->woken = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int retry_worker_quiesce(retry_worker *w, int timeout_ms) {
    if (!w) return 0;
    for (int waited = 0; atomic_load(&w->busy); waited += 5) {
        if (waited >= timeout_ms) return -1;
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void retry_worker_stop(retry_worker *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->stop, 1);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    store_close(w->db);
    http_client_free(w->http);
    free(w);
}
