/* Simulated provider behaviour, set by tests through /admin/behaviour:
 * failure (failStatus for the next failCount requests, or always), delay
 * and hang, and the most answers waiting at once (maxPending).
 *
 * A delayed or hung answer never holds a server thread: the handler
 * decides its answer at once and hands it to shared/http_delayed, which
 * defers the connection and sends the answer when due, or when hang is
 * lifted; at shutdown a hung request gets 503. */
#include "sp_sandbox.h"

#include "shared/plumbing/http_delayed.h"
#include "shared/plumbing/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct sp_behaviour {
    pthread_mutex_t lock;
    sp_behaviour_cfg cur;
    http_delayed *delayed; /* its hang follows cur.hang, set under lock */
    long max_pending;      /* most answers waiting at once since the last set */
};

sp_behaviour *sp_behaviour_new(void) {
    sp_behaviour *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->lock, NULL);
    b->delayed = http_delayed_new();
    if (!b->delayed) {
        log_error("sp-sandbox: cannot start the timer thread");
        sp_behaviour_free(b);
        return NULL;
    }
    return b;
}

size_t sp_behaviour_shutdown(sp_behaviour *b) {
    if (!b) return 0;
    return http_delayed_shutdown(b->delayed, 503, "application/json",
                                 "{\"error\":\"sp-sandbox shutting down\"}");
}

void sp_behaviour_free(sp_behaviour *b) {
    if (!b) return;
    sp_behaviour_shutdown(b);
    http_delayed_free(b->delayed);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

void sp_behaviour_get(sp_behaviour *b, sp_behaviour_cfg *out) {
    pthread_mutex_lock(&b->lock);
    *out = b->cur;
    pthread_mutex_unlock(&b->lock);
}

void sp_behaviour_set(sp_behaviour *b, const sp_behaviour_cfg *cfg) {
    pthread_mutex_lock(&b->lock);
    b->cur = *cfg;
    b->max_pending = 0;
    /* Under the lock, so concurrent sets leave cur.hang and the queue's
     * hang agreeing. */
    http_delayed_set_hang(b->delayed, cfg->hang);
    pthread_mutex_unlock(&b->lock);
    log_info("behaviour: failStatus=%d failCount=%ld delayMs=%ld hang=%s tokenFailStatus=%d",
             cfg->fail_status, cfg->fail_count, cfg->delay_ms, cfg->hang ? "true" : "false",
             cfg->token_fail_status);
}

void sp_behaviour_reset(sp_behaviour *b) {
    sp_behaviour_cfg normal = {0};
    sp_behaviour_set(b, &normal);
}

int sp_behaviour_decide(sp_behaviour *b, int normal, sp_behaviour_cfg *applied) {
    pthread_mutex_lock(&b->lock);
    *applied = b->cur;
    int status = normal;
    if (b->cur.fail_status) {
        status = b->cur.fail_status;
        /* The last counted failure: answer normally from the next one on. */
        if (b->cur.fail_count > 0 && --b->cur.fail_count == 0) b->cur.fail_status = 0;
    }
    pthread_mutex_unlock(&b->lock);
    return status;
}

long sp_behaviour_pending(sp_behaviour *b) { return (long)http_delayed_pending(b->delayed); }

long sp_behaviour_max_pending(sp_behaviour *b) {
    pthread_mutex_lock(&b->lock);
    long m = b->max_pending;
    pthread_mutex_unlock(&b->lock);
    return m;
}

void sp_behaviour_answer(sp_behaviour *b, const sp_behaviour_cfg *applied, http_request *req,
                         int status, char *body, size_t len) {
    if (!applied->hang && applied->delay_ms <= 0) {
        http_respond(req, status, "application/json", body, len);
        free(body);
        return;
    }
    /* The queue's current hang, not applied's, decides whether it waits. */
    http_delayed_add(b->delayed, req, applied->delay_ms, status, "application/json", body, len);
    /* Counted after the add: a request's answer waiting is a caller's
     * call in flight, so this is how many calls a client had open at once
     * (at least). */
    long now_pending = sp_behaviour_pending(b);
    pthread_mutex_lock(&b->lock);
    if (now_pending > b->max_pending) b->max_pending = now_pending;
    pthread_mutex_unlock(&b->lock);
}
