/* See worker.h. */
#include "shared/plumbing/worker.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct worker {
    worker_round_fn round;
    void *arg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int woken;         /* under mu */
    atomic_int stop;
    atomic_int epoch;
    atomic_int busy; /* inside a round */
};

static void sleep_ms(worker *w, long ms) {
    struct timespec until;
    clock_deadline_in(&until, ms);
    pthread_mutex_lock(&w->mu);
    while (!w->woken && !atomic_load(&w->stop))
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT) break;
    w->woken = 0;
    pthread_mutex_unlock(&w->mu);
}

static void *run(void *arg) {
    service_thread_name("worker");
    worker *w = arg;
    while (!atomic_load(&w->stop)) {
        atomic_store(&w->busy, 1);
        long wait = w->round(w->arg, w);
        atomic_store(&w->busy, 0);
        if (wait > 0 && !atomic_load(&w->stop)) sleep_ms(w, wait);
    }
    return NULL;
}

worker *worker_start(worker_round_fn round, void *arg, char *err, size_t errlen) {
    worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->round = round;
    w->arg = arg;
    pthread_mutex_init(&w->mu, NULL);
    clock_cond_init(&w->cv);
    int rc = pthread_create(&w->thread, NULL, run, w);
    if (rc) {
        snprintf(err, errlen, "worker thread: %s", strerror(rc));
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void worker_wake(worker *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    int pending = w->woken; /* the thread will see it without a wake-up */
    w->woken = 1;
    pthread_mutex_unlock(&w->mu);
    if (!pending) pthread_cond_signal(&w->cv); /* after unlocking: no wake into a held lock */
}

int worker_stopping(worker *w) { return atomic_load(&w->stop); }

int worker_epoch(worker *w) { return atomic_load(&w->epoch); }

int worker_quiesce(worker *w, int timeout_ms) {
    if (!w) return 0;
    atomic_fetch_add(&w->epoch, 1);
    for (int waited = 0; atomic_load(&w->busy); waited += 5) {
        if (waited >= timeout_ms) return -1;
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void worker_stop(worker *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->stop, 1);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
