/* Simulated provider behaviour, set by tests through /admin/behaviour:
 * failure (failStatus for the next failCount requests, or always), delay
 * and hang.
 *
 * A delayed answer never holds a server thread: the handler decides its
 * answer at once, defers the connection (http_defer) and queues the answer
 * here with a due time; one timer thread sends it when due. A hung answer
 * waits in a separate list until hang is lifted (then it is sent at once)
 * or the service stops (then it is 503). Meanwhile the server keeps
 * accepting and answering other connections. */
#include "sp_sandbox.h"

#include "shared/log.h"
#include "shared/service.h"

#include <pthread.h>
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

struct sp_behaviour {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    sp_behaviour_cfg cur;
    pending *heap; /* min-heap on (due_ms, seq) */
    size_t n_heap, cap_heap;
    pending *hung;
    size_t n_hung, cap_hung;
    uint64_t seq;
    bool stopping;
    bool thread_started;
    pthread_t thread;
};

static bool before(const pending *a, const pending *b) {
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static int heap_push(sp_behaviour *b, pending p) {
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

static pending heap_pop(sp_behaviour *b) {
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

static int hung_push(sp_behaviour *b, pending p) {
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
static void release_hung(sp_behaviour *b) {
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
    sp_behaviour *b = arg;
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

sp_behaviour *sp_behaviour_new(void) {
    sp_behaviour *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&b->thread, NULL, timer_main, b) != 0) {
        log_error("sp-sandbox: cannot start the timer thread");
        sp_behaviour_free(b);
        return NULL;
    }
    b->thread_started = true;
    return b;
}

size_t sp_behaviour_shutdown(sp_behaviour *b) {
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
    static const char stopping_body[] = "{\"error\":\"sp-sandbox shutting down\"}";
    for (size_t i = 0; i < n_hung; i++) {
        free(hung[i].body);
        http_respond(hung[i].req, 503, "application/json", stopping_body, sizeof stopping_body - 1);
    }
    free(heap);
    free(hung);
    return n_heap + n_hung;
}

void sp_behaviour_free(sp_behaviour *b) {
    if (!b) return;
    sp_behaviour_shutdown(b);
    pthread_cond_destroy(&b->wake);
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
    if (!cfg->hang && b->n_hung) release_hung(b);
    pthread_mutex_unlock(&b->lock);
    log_info("behaviour: failStatus=%d failCount=%ld delayMs=%ld hang=%s", cfg->fail_status,
             cfg->fail_count, cfg->delay_ms, cfg->hang ? "true" : "false");
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

long sp_behaviour_pending(sp_behaviour *b) {
    pthread_mutex_lock(&b->lock);
    long n = (long)(b->n_heap + b->n_hung);
    pthread_mutex_unlock(&b->lock);
    return n;
}

void sp_behaviour_answer(sp_behaviour *b, const sp_behaviour_cfg *applied, http_request *req,
                         int status, char *body, size_t len) {
    if (!applied->hang && applied->delay_ms <= 0) {
        http_respond(req, status, "application/json", body, len);
        free(body);
        return;
    }
    http_defer(req);
    pending p = {mono_ms() + (applied->delay_ms > 0 ? applied->delay_ms : 0), 0, req, status, body,
                 len};
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
