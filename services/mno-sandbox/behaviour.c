/* Simulated operator behaviour: delay, failure and hang, set by tests
 * through /admin/behaviour, plus counters of backend calls. The same
 * setting carries the activation knobs (repeatAnswer, callbackDelayMs,
 * callbackStyle, callbackFail), which routes_backend.c reads.
 *
 * A delayed or hung answer never holds a server thread: the handler
 * computes its answer at once and hands it to shared/http_delayed, which
 * defers the connection and sends the answer when due, or when hang is
 * lifted; at shutdown a hung request gets 503 CONGESTED. */
#include "mno_sandbox.h"

#include "shared/plumbing/http_delayed.h"
#include "shared/plumbing/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct mno_behaviour {
    pthread_mutex_t lock;
    mno_behaviour_cfg cur, initial;
    atomic_int plain;      /* cur is all-default: lock-free fast path */
    http_delayed *delayed; /* its hang follows cur.hang, set under lock */
    atomic_long calls[MNO_CALL_COUNT];
};

/* Everything default, so mno_behaviour_get may answer all zeros. */
static bool cfg_plain(const mno_behaviour_cfg *c) {
    return c->delay_ms <= 0 && c->fail_status == 0 && !c->hang &&
           c->repeat_answer == MNO_REPEAT_ORIGINAL && !c->callback_delay_set &&
           c->callback_style == MNO_CALLBACK_BACKEND && !c->callback_fail;
}

mno_behaviour *mno_behaviour_new(const mno_behaviour_cfg *initial) {
    mno_behaviour *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->lock, NULL);
    if (initial) b->initial = *initial;
    b->cur = b->initial;
    atomic_store(&b->plain, cfg_plain(&b->cur));
    b->delayed = http_delayed_new();
    if (!b->delayed) {
        log_error("mno-sandbox: cannot start the timer thread");
        mno_behaviour_free(b);
        return NULL;
    }
    http_delayed_set_hang(b->delayed, b->cur.hang);
    return b;
}

size_t mno_behaviour_shutdown(mno_behaviour *b) {
    if (!b) return 0;
    static const char stopping_body[] =
        "{\"errorType\":\"CONGESTED\",\"message\":\"sandbox shutting down\"}";
    return http_delayed_shutdown(b->delayed, 503, "application/json", stopping_body);
}

void mno_behaviour_free(mno_behaviour *b) {
    if (!b) return;
    mno_behaviour_shutdown(b);
    http_delayed_free(b->delayed);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

void mno_behaviour_get(mno_behaviour *b, mno_behaviour_cfg *out) {
    if (atomic_load_explicit(&b->plain, memory_order_acquire)) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&b->lock);
    *out = b->cur;
    pthread_mutex_unlock(&b->lock);
}

void mno_behaviour_set(mno_behaviour *b, const mno_behaviour_cfg *cfg) {
    pthread_mutex_lock(&b->lock);
    b->cur = *cfg;
    atomic_store_explicit(&b->plain, cfg_plain(cfg), memory_order_release);
    /* Under the lock, so concurrent sets leave cur.hang and the queue's
     * hang agreeing. */
    http_delayed_set_hang(b->delayed, cfg->hang);
    pthread_mutex_unlock(&b->lock);
    log_info("behaviour: delayMs=%ld failStatus=%d failErrorType=%s hang=%s repeatAnswer=%s"
             " callbackDelayMs=%ld callbackStyle=%s callbackFail=%s",
             cfg->delay_ms, cfg->fail_status, cfg->fail_error_type[0] ? cfg->fail_error_type : "-",
             cfg->hang ? "true" : "false",
             cfg->repeat_answer == MNO_REPEAT_ALREADY_EXECUTED ? "ALREADY_EXECUTED" : "ORIGINAL",
             cfg->callback_delay_set ? cfg->callback_delay_ms : -1L,
             cfg->callback_style == MNO_CALLBACK_MILLOM ? "millom" : "backend",
             cfg->callback_fail ? "true" : "false");
}

void mno_behaviour_reset(mno_behaviour *b) {
    mno_behaviour_set(b, &b->initial);
    for (int i = 0; i < MNO_CALL_COUNT; i++) atomic_store(&b->calls[i], 0);
}

const char *mno_behaviour_error_type(const mno_behaviour_cfg *cfg) {
    if (cfg->fail_error_type[0]) return cfg->fail_error_type;
    switch (cfg->fail_status) {
    case 400: return "BAD_REQUEST";
    case 402: return "INSUFFICIENT_FUNDS";
    case 403: return "FORBIDDEN";
    case 404: return "UNKNOWN_SUBSCRIBER_ID";
    case 408:
    case 504: return "TIMEOUT";
    case 409: return "CONFLICT";
    case 429:
    case 503: return "CONGESTED";
    case 501: return "NOT_IMPLEMENTED";
    default: return "INTERNAL_ERROR";
    }
}

void mno_behaviour_count(mno_behaviour *b, mno_call call) {
    atomic_fetch_add_explicit(&b->calls[call], 1, memory_order_relaxed);
}

long mno_behaviour_calls(mno_behaviour *b, mno_call call) { return atomic_load(&b->calls[call]); }

long mno_behaviour_pending(mno_behaviour *b) { return (long)http_delayed_pending(b->delayed); }

void mno_behaviour_answer(mno_behaviour *b, const mno_behaviour_cfg *cfg, http_request *req,
                          int status, char *body, size_t len) {
    if (!cfg->hang && cfg->delay_ms <= 0) {
        http_respond(req, status, "application/json", body, len);
        free(body);
        return;
    }
    /* The queue's current hang, not cfg's, decides whether it waits. */
    http_delayed_add(b->delayed, req, cfg->delay_ms, status, "application/json", body, len);
}
