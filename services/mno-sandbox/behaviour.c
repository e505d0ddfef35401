/* Simulated operator behaviour: delay, failure and hang, set by tests
 * through /admin/behaviour, plus counters of backend calls. The same
 * setting carries the activation knobs (repeatAnswer, callbackDelayMs,
 * callbackStyle, callbackFail), which routes_backend.c reads.
 *
 * A delayed answer never holds a server thread: the handler computes its
 * answer at once, defers the connection (http_defer) and queues the answer
 * here with a due time; one timer thread sends it when due. A hung answer
 * waits in a separate list until hang is lifted (then it is sent at once)
 * or the service stops (then it is 503 CONGESTED). Meanwhile the server
 * keeps accepting and answering other connections. */
#include "mno_sandbox.h"

#include "shared/log.h"
#include "shared/service.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int64_t due_ms; /* monotonic */
    uint64_t seq;   /* FIFO among equal due times */
    http_request *req;
    int status;
    char *body;
    size_t len;
} pending;

struct mno_behaviour {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    mno_behaviour_cfg cur, initial;
    atomic_int plain; /* cur is all-default: lock-free fast path */

    pending *heap; /* min-heap on (due_ms, seq) */
    size_t n_heap, cap_heap;
    pending *hung;
    size_t n_hung, cap_hung;
    uint64_t seq;

    bool stopping;
    bool thread_started;
    pthread_t thread;
    atomic_long calls[MNO_CALL_COUNT];
};

/* Everything default, so mno_behaviour_get may answer all zeros. */
static bool cfg_plain(const mno_behaviour_cfg *c) {
    return c->delay_ms <= 0 && c->fail_status == 0 && !c->hang &&
           c->repeat_answer == MNO_REPEAT_ORIGINAL && !c->callback_delay_set &&
           c->callback_style == MNO_CALLBACK_BACKEND && !c->callback_fail;
}

static bool before(const pending *a, const pending *b) {
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static int heap_push(mno_behaviour *b, pending p) {
    if (b->n_heap == b->cap_heap) {
        size_t cap = b->cap_heap ? b->cap_heap * 2 : 64;
        pending *h = realloc(b->heap, cap * sizeof *h);
        if (!h) return -1;
        b->heap = h;
        b->cap_heap = cap;
    }
    size_t i = b->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&p, &b->heap[parent])) break;
        b->heap[i] = b->heap[parent];
        i = parent;
    }
    b->heap[i] = p;
    return 0;
}

static pending heap_pop(mno_behaviour *b) {
    pending top = b->heap[0];
    pending last = b->heap[--b->n_heap];
    size_t i = 0, n = b->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const pending *best = &last;
        if (l < n && before(&b->heap[l], best)) { m = l; best = &b->heap[l]; }
        if (r < n && before(&b->heap[r], best)) m = r;
        if (m == i) break;
        b->heap[i] = b->heap[m];
        i = m;
    }
    if (n > 0) b->heap[i] = last;
    return top;
}

static int hung_push(mno_behaviour *b, pending p) {
    if (b->n_hung == b->cap_hung) {
        size_t cap = b->cap_hung ? b->cap_hung * 2 : 16;
        pending *h = realloc(b->hung, cap * sizeof *h);
        if (!h) return -1;
        b->hung = h;
        b->cap_hung = cap;
    }
    b->hung[b->n_hung++] = p;
    return 0;
}

/* Moves hung answers to the heap, due now. Called with the lock held. */
static void release_hung(mno_behaviour *b) {
    int64_t now = mono_ms();
    size_t kept = 0;
    for (size_t i = 0; i < b->n_hung; i++) {
        pending p = b->hung[i];
        p.due_ms = now;
        if (heap_push(b, p) != 0) b->hung[kept++] = p; /* out of memory: stays hung */
    }
    b->n_hung = kept;
    pthread_cond_signal(&b->wake);
}

static void send_pending(pending *p) {
    http_respond(p->req, p->status, "application/json", p->body, p->len);
    free(p->body);
}

static void *timer_main(void *arg) {
    mno_behaviour *b = arg;
    pthread_mutex_lock(&b->lock);
    while (!b->stopping) {
        if (b->n_heap == 0) {
            pthread_cond_wait(&b->wake, &b->lock);
            continue;
        }
        int64_t now = mono_ms();
        if (b->heap[0].due_ms > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = b->heap[0].due_ms - now;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&b->wake, &b->lock, &ts);
            continue;
        }
        pending p = heap_pop(b);
        pthread_mutex_unlock(&b->lock);
        send_pending(&p);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

mno_behaviour *mno_behaviour_new(const mno_behaviour_cfg *initial) {
    mno_behaviour *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (initial) b->initial = *initial;
    b->cur = b->initial;
    atomic_store(&b->plain, cfg_plain(&b->cur));
    if (pthread_create(&b->thread, NULL, timer_main, b) != 0) {
        log_error("mno-sandbox: cannot start the timer thread");
        mno_behaviour_free(b);
        return NULL;
    }
    b->thread_started = true;
    return b;
}

size_t mno_behaviour_shutdown(mno_behaviour *b) {
    if (!b) return 0;
    pthread_mutex_lock(&b->lock);
    bool was_stopping = b->stopping;
    b->stopping = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (b->thread_started && !was_stopping) pthread_join(b->thread, NULL);
    b->thread_started = false;

    /* Nobody else takes entries any more: answer what is left. */
    pthread_mutex_lock(&b->lock);
    pending *heap = b->heap, *hung = b->hung;
    size_t n_heap = b->n_heap, n_hung = b->n_hung;
    b->heap = b->hung = NULL;
    b->n_heap = b->cap_heap = b->n_hung = b->cap_hung = 0;
    pthread_mutex_unlock(&b->lock);

    for (size_t i = 0; i < n_heap; i++) send_pending(&heap[i]);
    static const char stopping_body[] =
        "{\"errorType\":\"CONGESTED\",\"message\":\"sandbox shutting down\"}";
    for (size_t i = 0; i < n_hung; i++) {
        free(hung[i].body);
        http_respond(hung[i].req, 503, "application/json", stopping_body, sizeof stopping_body - 1);
    }
    free(heap);
    free(hung);
    return n_heap + n_hung;
}

void mno_behaviour_free(mno_behaviour *b) {
    if (!b) return;
    mno_behaviour_shutdown(b);
    pthread_cond_destroy(&b->wake);
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
    if (!cfg->hang && b->n_hung) release_hung(b);
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
    case 408: case 504: return "TIMEOUT";
    case 409: return "CONFLICT";
    case 429: case 503: return "CONGESTED";
    case 501: return "NOT_IMPLEMENTED";
    default: return "INTERNAL_ERROR";
    }
}

void mno_behaviour_count(mno_behaviour *b, mno_call call) {
    atomic_fetch_add_explicit(&b->calls[call], 1, memory_order_relaxed);
}

long mno_behaviour_calls(mno_behaviour *b, mno_call call) { return atomic_load(&b->calls[call]); }

long mno_behaviour_pending(mno_behaviour *b) {
    pthread_mutex_lock(&b->lock);
    long n = (long)(b->n_heap + b->n_hung);
    pthread_mutex_unlock(&b->lock);
    return n;
}

void mno_behaviour_answer(mno_behaviour *b, const mno_behaviour_cfg *cfg, http_request *req,
                          int status, char *body, size_t len) {
    if (!cfg->hang && cfg->delay_ms <= 0) {
        http_respond(req, status, "application/json", body, len);
        free(body);
        return;
    }
    http_defer(req);
    pending p = {mono_ms() + (cfg->delay_ms > 0 ? cfg->delay_ms : 0), 0, req, status, body, len};
    pthread_mutex_lock(&b->lock);
    int rc = -1;
    if (!b->stopping) {
        p.seq = ++b->seq;
        /* The current setting decides, so a request cannot hang after the
         * hang was lifted between the caller's snapshot and now. */
        if (b->cur.hang) {
            rc = hung_push(b, p);
        } else {
            rc = heap_push(b, p);
            if (rc == 0) pthread_cond_signal(&b->wake);
        }
    }
    pthread_mutex_unlock(&b->lock);
    if (rc != 0) send_pending(&p); /* stopping, or out of memory: answer now */
}
