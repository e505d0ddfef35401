/* Deferred HTTP answers: a min-heap on due time, a hung list, one timer
 * thread. See http_delayed.h. */
#include "shared/plumbing/http_delayed.h"
#include "shared/plumbing/clock.h"

#include "shared/plumbing/service.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int64_t due_ms; /* monotonic */
    uint64_t seq;   /* FIFO among equal due times */
    http_request *req;
    int status;
    const char *content_type;
    char *body;
    size_t len;
} pending;

struct http_delayed {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pending *heap; /* min-heap on (due_ms, seq) */
    size_t n_heap, cap_heap;
    pending *hung;
    size_t n_hung, cap_hung;
    uint64_t seq;
    bool hang;
    bool stopping;
    bool thread_started;
    pthread_t thread;
};

static bool before(const pending *a, const pending *b) {
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static int heap_push(http_delayed *d, pending p) {
    if (d->n_heap == d->cap_heap) {
        size_t cap = d->cap_heap ? d->cap_heap * 2 : 64;
        pending *h = realloc(d->heap, cap * sizeof *h);
        if (!h) return -1;
        d->heap = h;
        d->cap_heap = cap;
    }
    size_t i = d->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&p, &d->heap[parent])) break;
        d->heap[i] = d->heap[parent];
        i = parent;
    }
    d->heap[i] = p;
    return 0;
}

static pending heap_pop(http_delayed *d) {
    pending top = d->heap[0];
    pending last = d->heap[--d->n_heap];
    size_t i = 0, n = d->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const pending *best = &last;
        if (l < n && before(&d->heap[l], best)) {
            m = l;
            best = &d->heap[l];
        }
        if (r < n && before(&d->heap[r], best)) m = r;
        if (m == i) break;
        d->heap[i] = d->heap[m];
        i = m;
    }
    if (n > 0) d->heap[i] = last;
    return top;
}

static int hung_push(http_delayed *d, pending p) {
    if (d->n_hung == d->cap_hung) {
        size_t cap = d->cap_hung ? d->cap_hung * 2 : 16;
        pending *h = realloc(d->hung, cap * sizeof *h);
        if (!h) return -1;
        d->hung = h;
        d->cap_hung = cap;
    }
    d->hung[d->n_hung++] = p;
    return 0;
}

/* Moves hung answers to the heap, due now. Called with the lock held. */
static void release_hung(http_delayed *d) {
    int64_t now = mono_ms();
    size_t kept = 0;
    for (size_t i = 0; i < d->n_hung; i++) {
        pending p = d->hung[i];
        p.due_ms = now;
        if (heap_push(d, p) != 0) d->hung[kept++] = p; /* out of memory: stays hung */
    }
    d->n_hung = kept;
    pthread_cond_signal(&d->wake);
}

static void send_pending(pending *p) {
    http_respond(p->req, p->status, p->content_type, p->body, p->len);
    free(p->body);
}

static void *timer_main(void *arg) {
    service_thread_name("http-delayed");
    http_delayed *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        if (d->n_heap == 0) {
            pthread_cond_wait(&d->wake, &d->lock);
            continue;
        }
        int64_t now = mono_ms();
        if (d->heap[0].due_ms > now) {
            struct timespec ts;
            clock_deadline_in(&ts, (long)(d->heap[0].due_ms - now));
            pthread_cond_timedwait(&d->wake, &d->lock, &ts);
            continue;
        }
        pending p = heap_pop(d);
        pthread_mutex_unlock(&d->lock);
        send_pending(&p);
        pthread_mutex_lock(&d->lock);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

http_delayed *http_delayed_new(void) {
    http_delayed *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    pthread_mutex_init(&d->lock, NULL);
    clock_cond_init(&d->wake);
    if (pthread_create(&d->thread, NULL, timer_main, d) != 0) {
        http_delayed_free(d);
        return NULL;
    }
    d->thread_started = true;
    return d;
}

void http_delayed_set_hang(http_delayed *d, bool hang) {
    pthread_mutex_lock(&d->lock);
    d->hang = hang;
    if (!hang && d->n_hung) release_hung(d);
    pthread_mutex_unlock(&d->lock);
}

int http_delayed_add(http_delayed *d, http_request *req, int64_t delay_ms, int status,
                     const char *content_type, char *body, size_t len) {
    http_defer(req);
    pending p = {
        mono_ms() + (delay_ms > 0 ? delay_ms : 0), 0, req, status, content_type, body, len};
    pthread_mutex_lock(&d->lock);
    int rc = -1;
    if (!d->stopping) {
        p.seq = ++d->seq;
        /* The current hang decides, so a request cannot hang after the
         * hang was lifted between the caller's snapshot and now. */
        if (d->hang) {
            rc = hung_push(d, p);
        } else {
            rc = heap_push(d, p);
            if (rc == 0) pthread_cond_signal(&d->wake);
        }
    }
    pthread_mutex_unlock(&d->lock);
    if (rc != 0) send_pending(&p); /* stopping, or out of memory: answer now */
    return rc;
}

size_t http_delayed_pending(http_delayed *d) {
    pthread_mutex_lock(&d->lock);
    size_t n = d->n_heap + d->n_hung;
    pthread_mutex_unlock(&d->lock);
    return n;
}

size_t http_delayed_shutdown(http_delayed *d, int status, const char *content_type,
                             const char *body) {
    if (!d) return 0;
    pthread_mutex_lock(&d->lock);
    bool was_stopping = d->stopping;
    d->stopping = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    if (d->thread_started && !was_stopping) pthread_join(d->thread, NULL);
    d->thread_started = false;

    /* Nobody else takes entries any more: answer what is left. */
    pthread_mutex_lock(&d->lock);
    pending *heap = d->heap, *hung = d->hung;
    size_t n_heap = d->n_heap, n_hung = d->n_hung;
    d->heap = d->hung = NULL;
    d->n_heap = d->cap_heap = d->n_hung = d->cap_hung = 0;
    pthread_mutex_unlock(&d->lock);

    for (size_t i = 0; i < n_heap; i++) send_pending(&heap[i]);
    size_t body_len = body ? strlen(body) : 0;
    for (size_t i = 0; i < n_hung; i++) {
        free(hung[i].body);
        http_respond(hung[i].req, status, content_type, body, body_len);
    }
    free(heap);
    free(hung);
    return n_heap + n_hung;
}

void http_delayed_free(http_delayed *d) {
    if (!d) return;
    http_delayed_shutdown(d, 503, "text/plain", "shutting down");
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
