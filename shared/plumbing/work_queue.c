/* See work_queue.h. A ring buffer under one mutex with two conditions.
 * Beside each job its request id (correlator.h): copied from the pushing
 * thread into a fixed slot, set in the worker around the job's run. */
#include "shared/plumbing/work_queue.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/service.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct work_queue {
    work_queue_opts opts;
    pthread_mutex_t lock;
    pthread_cond_t not_empty;
    void **ring;
    char (*correlators)[CORRELATOR_SIZE]; /* beside ring: each job's request id */
    size_t head, count;
    bool stopping;
    pthread_t *threads;
    int n_threads;
};

static void *worker_main(void *p) {
    service_thread_name("work-queue");
    work_queue *q = p;
    void *state = q->opts.worker_init ? q->opts.worker_init(q->opts.arg) : NULL;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (!q->count && !q->stopping) pthread_cond_wait(&q->not_empty, &q->lock);
        if (q->stopping) {
            pthread_mutex_unlock(&q->lock);
            break;
        }
        void *job = q->ring[q->head];
        correlator_set(q->correlators[q->head]);
        q->head = (q->head + 1) % q->opts.capacity;
        q->count--;
        pthread_mutex_unlock(&q->lock);
        q->opts.run(q->opts.arg, state, job);
        correlator_clear();
    }
    if (q->opts.worker_free) q->opts.worker_free(state);
    return NULL;
}

work_queue *work_queue_new(const work_queue_opts *opts) {
    work_queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->opts = *opts;
    if (q->opts.capacity == 0) q->opts.capacity = 1024;
    if (q->opts.threads <= 0) q->opts.threads = 4;
    q->ring = calloc(q->opts.capacity, sizeof *q->ring);
    q->correlators = calloc(q->opts.capacity, sizeof *q->correlators);
    q->threads = calloc((size_t)q->opts.threads, sizeof *q->threads);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    if (!q->ring || !q->correlators || !q->threads) {
        work_queue_free(q);
        return NULL;
    }
    for (int i = 0; i < q->opts.threads; i++) {
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0) {
            work_queue_free(q);
            return NULL;
        }
        q->n_threads++;
    }
    return q;
}

int work_queue_push(work_queue *q, void *job) {
    pthread_mutex_lock(&q->lock);
    if (q->stopping || q->count == q->opts.capacity) {
        pthread_mutex_unlock(&q->lock);
        return -1;
    }
    size_t slot = (q->head + q->count) % q->opts.capacity;
    q->ring[slot] = job;
    correlator_copy_current(q->correlators[slot]);
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

size_t work_queue_depth(work_queue *q) {
    pthread_mutex_lock(&q->lock);
    size_t n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void work_queue_free(work_queue *q) {
    if (!q) return;
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->n_threads; i++) pthread_join(q->threads[i], NULL);
    while (q->count) {
        void *job = q->ring[q->head];
        q->head = (q->head + 1) % q->opts.capacity;
        q->count--;
        if (q->opts.drop) q->opts.drop(q->opts.arg, job);
    }
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q->correlators);
    free(q->threads);
    free(q);
}
