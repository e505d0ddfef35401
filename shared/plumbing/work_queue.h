/* A fixed pool of worker threads fed by a bounded queue. Used where one
 * Kafka consumer thread must not wait on slow I/O (an operator backend
 * call): the consumer hands each job to the pool and moves on. */
#ifndef MILLOM_WORK_QUEUE_H
#define MILLOM_WORK_QUEUE_H

#include <stddef.h>

typedef struct work_queue work_queue;

typedef struct {
    int threads;
    size_t capacity;                 /* jobs waiting at most */
    void *(*worker_init)(void *arg); /* per-thread state, may be NULL */
    void (*worker_free)(void *state);
    void (*run)(void *arg, void *state, void *job); /* takes ownership of job */
    void (*drop)(void *arg, void *job);             /* frees a job never run (on stop) */
    void *arg;
} work_queue_opts;

work_queue *work_queue_new(const work_queue_opts *opts);
/* 0 when queued; -1 when full (the caller still owns job). The job runs
 * with the pushing thread's current request id (correlator.h). */
int work_queue_push(work_queue *q, void *job);
size_t work_queue_depth(work_queue *q);
/* Lets running jobs finish, drops the waiting ones, joins, frees. */
void work_queue_free(work_queue *q);

#endif
