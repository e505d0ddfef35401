/* The delivery worker: one thread with its own connection to notifier.db
 * and its own HTTP client. It POSTs due rows of the `deliveries` table
 * (rich notifications and purchase callbacks) to the provider's URL:
 *   - 2xx: delivered (the row stays, state 'delivered', so callbacks keep
 *     their de-duplication key);
 *   - a provider's 4xx other than 408 and 429: not retried, dead-lettered;
 *   - anything else (5xx, 408, 429, no answer): retried after an
 *     exponential backoff with jitter, base MILLOM_NOTIFY_BACKOFF_MS (1000)
 *     doubling per attempt up to MILLOM_NOTIFY_BACKOFF_MAX_MS (600000), the
 *     delay drawn uniformly from [d/2, d]; after MILLOM_NOTIFY_MAX_ATTEMPTS
 *     (8) attempts it is dead-lettered.
 * Dead-lettering marks the row 'dead' and adds a NotificationDeadLetter for
 * millom.notifications.dlq to the outbox in the same transaction.
 * Delivery is at least once: a crash between the POST and the row update
 * sends it again; each POST carries X-Millom-Delivery-Id for providers to
 * de-duplicate. HTTP timeout: MILLOM_NOTIFY_TIMEOUT_MS (5000). */
#include "notifier.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/topics.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"
#include "shared/plumbing/worker.h"
#include "millom/v1/notification.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 32

struct delivery_worker {
    notifier *n;
    sqlite3 *db;
    http_client *http;
    worker *thread;
    long max_attempts, backoff_ms, backoff_max_ms, timeout_ms;
    unsigned seed;
    metric *delivered, *retried, *dead, *depth;
};

typedef struct {
    int64_t id;
    char *kind, *provider, *url, *body;
    int attempts;
    int64_t first_ms;
} row;

static char *col(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

static int64_t backoff(delivery_worker *w, int attempts) {
    int64_t d = w->backoff_ms;
    for (int i = 1; i < attempts && d < w->backoff_max_ms; i++) d *= 2;
    if (d > w->backoff_max_ms) d = w->backoff_max_ms;
    if (d < 2) return d;
    return d / 2 + (int64_t)(rand_r(&w->seed) % (unsigned)(d / 2 + 1));
}

static int update(delivery_worker *w, const row *r, const char *state, int attempts,
                  int64_t next_ms, int64_t first_ms, const char *error) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(w->db,
                           "UPDATE deliveries SET state=?2, attempts=?3, next_ms=?4, "
                           "first_attempt_ms=?5, last_error=?6 WHERE id=?1",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, r->id);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, attempts);
    sqlite3_bind_int64(st, 4, next_ms);
    sqlite3_bind_int64(st, 5, first_ms);
    sqlite3_bind_text(st, 6, error, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

static void dead_letter(delivery_worker *w, const row *r, int attempts, int64_t first_ms,
                        int64_t now, const char *error) {
    Millom__V1__NotificationDeadLetter d = MILLOM__V1__NOTIFICATION_DEAD_LETTER__INIT;
    d.service_provider = r->provider;
    d.url = r->url;
    d.kind = r->kind;
    d.body.data = (uint8_t *)r->body;
    d.body.len = strlen(r->body);
    d.attempts = attempts;
    d.last_error = (char *)error;
    d.first_attempt_ms = first_ms;
    d.last_attempt_ms = now;
    size_t len = millom__v1__notification_dead_letter__get_packed_size(&d);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return;
    millom__v1__notification_dead_letter__pack(&d, buf);
    int ok = store_begin(w->db) == SQLITE_OK &&
             update(w, r, "dead", attempts, now, first_ms, error) == 0 &&
             outbox_add(w->db, TOPIC_NOTIFICATIONS_DLQ, r->provider, strlen(r->provider), buf,
                        len) == SQLITE_OK &&
             store_commit(w->db) == SQLITE_OK;
    free(buf);
    if (!ok) {
        log_warn("cannot dead-letter delivery %lld: %s", (long long)r->id, sqlite3_errmsg(w->db));
        store_rollback(w->db);
        return;
    }
    outbox_relay_notify(w->n->outbox);
    metric_add(w->dead, 1);
    log_warn("delivery %lld (%s to %s) dead-lettered after %d attempt(s): %s", (long long)r->id,
             r->kind, r->provider, attempts, error);
}

static void deliver(delivery_worker *w, row *r) {
    /* A rich notification gets its offers and signed links now, so they
     * are fresh at each attempt (rich_notification.c); the dead letter
     * records what was sent last. */
    if (strcmp(r->kind, "notification") == 0) {
        char *sent = rich_notification_body(w->n, r->provider, r->body);
        if (sent) {
            free(r->body);
            r->body = sent;
        }
    }
    char idh[64];
    snprintf(idh, sizeof idh, "X-Millom-Delivery-Id: %lld", (long long)r->id);
    const char *headers[] = {idh, NULL};
    http_result res;
    memset(&res, 0, sizeof res);
    http_post(w->http, r->url, headers, "application/json", r->body, strlen(r->body), w->timeout_ms,
              &res);
    int64_t now = now_ms();
    int attempts = r->attempts + 1;
    int64_t first_ms = r->first_ms ? r->first_ms : now;
    char error[300];
    if (res.status >= 200 && res.status < 300) {
        if (update(w, r, "delivered", attempts, now, first_ms, "") == 0)
            metric_add(w->delivered, 1);
        else
            log_warn("cannot mark delivery %lld: %s", (long long)r->id, sqlite3_errmsg(w->db));
    } else {
        if (res.status)
            snprintf(error, sizeof error, "HTTP %ld", res.status);
        else
            snprintf(error, sizeof error, "%s", res.timed_out ? "timed out" : res.error);
        int permanent =
            res.status >= 400 && res.status < 500 && res.status != 408 && res.status != 429;
        if (permanent || attempts >= w->max_attempts) {
            dead_letter(w, r, attempts, first_ms, now, error);
        } else if (update(w, r, "pending", attempts, now + backoff(w, attempts), first_ms, error) ==
                   0) {
            metric_add(w->retried, 1);
        }
    }
    http_result_free(&res);
}

/* Sends the due deliveries; returns how many it took (BATCH: maybe more).
 * thread is the round's own handle: w->thread is stored by the starting
 * thread only after worker_start() returned, so a round never reads it. */
static int run_batch(delivery_worker *w, worker *thread) {
    sqlite3_stmt *st;
    row rows[BATCH];
    int n = 0;
    int epoch = worker_epoch(thread);
    /* Only deliveries of partitions this instance owns (shared/patterns/changelog.h). */
    if (sqlite3_prepare_v2(
            w->db,
            "SELECT id, kind, provider, url, body, attempts, first_attempt_ms "
            "FROM deliveries WHERE state='pending' AND next_ms<=?1 AND " CHANGELOG_OWNED_SQL(
                "cl_partition") " ORDER BY next_ms, id LIMIT ?2",
            -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int64(st, 1, now_ms());
    sqlite3_bind_int(st, 2, BATCH);
    while (n < BATCH && sqlite3_step(st) == SQLITE_ROW) {
        row *r = &rows[n++];
        r->id = sqlite3_column_int64(st, 0);
        r->kind = col(st, 1);
        r->provider = col(st, 2);
        r->url = col(st, 3);
        r->body = col(st, 4);
        r->attempts = sqlite3_column_int(st, 5);
        r->first_ms = sqlite3_column_int64(st, 6);
    }
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) {
        /* After a revoke the rest of the batch may belong to another owner. */
        int stop = worker_stopping(thread) || worker_epoch(thread) != epoch;
        if (!stop && rows[i].kind && rows[i].provider && rows[i].url && rows[i].body)
            deliver(w, &rows[i]);
        free(rows[i].kind);
        free(rows[i].provider);
        free(rows[i].url);
        free(rows[i].body);
    }
    return n;
}

static void refresh_depth(delivery_worker *w) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            w->db,
            "SELECT count(*) FROM deliveries WHERE state='pending' AND " CHANGELOG_OWNED_SQL(
                "cl_partition"),
            -1, &st, NULL) != SQLITE_OK)
        return;
    if (sqlite3_step(st) == SQLITE_ROW) metric_set(w->depth, sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
}

/* One batch; the next at once when it was full, else after 100 ms (or a
 * wake-up). */
static long delivery_round(void *arg, worker *thread) {
    delivery_worker *w = arg;
    int n = run_batch(w, thread);
    refresh_depth(w);
    return n < BATCH ? 100 : 0;
}

static void delivery_worker_free(delivery_worker *w) {
    store_close(w->db);
    http_client_free(w->http);
    free(w);
}

delivery_worker *delivery_worker_start(notifier *n, char *err, size_t errlen) {
    delivery_worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->n = n;
    settings_reader s = SETTINGS_INIT; /* shared/plumbing/settings.h, at the start */
    w->max_attempts = settings_long(&s, "MILLOM_NOTIFY_MAX_ATTEMPTS", 8, 1, 1000000);
    w->backoff_ms = settings_ms(&s, "MILLOM_NOTIFY_BACKOFF_MS", 1000, 1, 86400000);
    w->backoff_max_ms = settings_ms(&s, "MILLOM_NOTIFY_BACKOFF_MAX_MS", 600000, 1, 86400000);
    w->timeout_ms = settings_ms(&s, "MILLOM_NOTIFY_TIMEOUT_MS", 5000, 1, 600000);
    if (!settings_ok(&s)) {
        snprintf(err, errlen, "%s", settings_error(&s));
        free(w);
        return NULL;
    }
    if (w->backoff_max_ms < w->backoff_ms) w->backoff_max_ms = w->backoff_ms;
    w->seed = (unsigned)now_ms() ^ (unsigned)(uintptr_t)w;
    w->delivered = metric_counter("millom_notifications_delivered_total",
                                  "webhook deliveries (notifications, callbacks) accepted", NULL);
    w->retried = metric_counter("millom_notifications_retried_total",
                                "webhook deliveries scheduled again after a failure", NULL);
    w->dead =
        metric_counter("millom_notifications_dead_lettered_total",
                       "webhook deliveries given up and sent to millom.notifications.dlq", NULL);
    w->depth = metric_gauge("millom_delivery_queue_depth", "deliveries waiting to be sent", NULL);
    w->db = notifier_store_open(n->db_path, err, errlen);
    w->http = http_client_new();
    if (w->db && !w->http) snprintf(err, errlen, "cannot create an HTTP client");
    if (!w->db || !w->http || !(w->thread = worker_start(delivery_round, w, err, errlen))) {
        delivery_worker_free(w);
        return NULL;
    }
    return w;
}

void delivery_worker_wake(delivery_worker *w) {
    if (w) worker_wake(w->thread);
}

int delivery_worker_quiesce(delivery_worker *w, int timeout_ms) {
    return w ? worker_quiesce(w->thread, timeout_ms) : 0;
}

void delivery_worker_stop(delivery_worker *w) {
    if (!w) return;
    worker_stop(w->thread);
    delivery_worker_free(w);
}
