/* See group_commit.h: one thread commits the writes of many. */
#include "group_commit.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>

#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"
#include "shared/plumbing/text.h"

/* Writes in one transaction at most: a caller waits for the whole batch
 * ahead of it, so this bounds its wait. */
#define GROUP_COMMIT_MAX 64

/* One caller's write, on the caller's stack until it is answered.
 *
 * The answer is a semaphore, posted without holding gc->mu: a condition
 * variable signalled under the mutex woke each caller only for it to
 * block again on the mutex the committer still held (two context switches
 * per write instead of one, and the committer preempted by the callers it
 * woke: 30% of purchase-executor's CPU was its writes thread). sem_post
 * does not touch the semaphore once the waiter may run (glibc >= 2.21), so
 * the caller may destroy it as soon as sem_wait returns. */
typedef struct write_request {
    group_commit_fn fn;
    void *arg;
    int result; /* 0 committed, -1 not; written before the post */
    sem_t answered;
    struct write_request *next;
} write_request;

struct group_commit {
    sqlite3 *db; /* the committer's own connection */
    pthread_t thread;
    char name[16];
    pthread_mutex_t mu;
    pthread_cond_t queued_cv;    /* a request was queued, or stop */
    write_request *head, **tail; /* FIFO of waiting requests */
    int waiting;                 /* how many */
    int idle;                    /* the committer waits on queued_cv */
    int stopping;
};

/* Takes up to GROUP_COMMIT_MAX queued requests (mu held), in order. */
static write_request *take_batch(group_commit *gc) {
    write_request *first = gc->head, *last = first;
    int n = 1;
    for (; n < GROUP_COMMIT_MAX && last->next; n++) last = last->next;
    gc->waiting -= n;
    gc->head = last->next;
    if (!gc->head) gc->tail = &gc->head;
    last->next = NULL;
    return first;
}

/* One transaction around the batch's writes, each under its own
 * savepoint. */
static void commit_batch(group_commit *gc, write_request *batch) {
    int rc = store_batch_begin(gc->db);
    if (rc == SQLITE_OK) {
        for (write_request *r = batch; r && rc == SQLITE_OK; r = r->next) {
            r->fn(gc->db, r->arg);
            /* Some errors (SQLITE_FULL, _IOERR, _NOMEM) roll the whole
             * transaction back: the writes before are gone too, and the
             * next write's store_begin would open a transaction of its
             * own. None of the batch is stored then, and none runs on. */
            if (sqlite3_get_autocommit(gc->db)) rc = SQLITE_ABORT;
        }
        if (rc == SQLITE_OK)
            rc = store_batch_commit(gc->db);
        else
            store_batch_rollback(gc->db);
    }
    if (rc == SQLITE_ABORT)
        log_warn("%s: a write's error rolled back its whole transaction; none of its writes "
                 "is stored",
                 gc->name);
    else if (rc != SQLITE_OK)
        log_warn("%s: a transaction of writes failed: %s", gc->name, sqlite3_errstr(rc));
    for (write_request *r = batch, *next; r; r = next) {
        next = r->next; /* r belongs to its caller once posted */
        r->result = rc == SQLITE_OK ? 0 : -1;
        sem_post(&r->answered);
    }
}

static void *committer_main(void *arg) {
    group_commit *gc = arg;
    service_thread_name("%s", gc->name);
    pthread_mutex_lock(&gc->mu);
    for (;;) {
        while (!gc->head && !gc->stopping) {
            gc->idle = 1;
            pthread_cond_wait(&gc->queued_cv, &gc->mu);
            gc->idle = 0;
        }
        if (!gc->head) break; /* stopping, and nothing left */
        write_request *batch = take_batch(gc);
        pthread_mutex_unlock(&gc->mu);
        commit_batch(gc, batch);
        pthread_mutex_lock(&gc->mu);
    }
    pthread_mutex_unlock(&gc->mu);
    return NULL;
}

group_commit *group_commit_start(const char *db_path,
                                 sqlite3 *(*open_db)(const char *path, char *err, size_t errlen),
                                 const char *name, char *err, size_t errlen) {
    group_commit *gc = calloc(1, sizeof *gc);
    if (!gc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    text_copy(gc->name, sizeof gc->name, name);
    gc->tail = &gc->head;
    gc->db = open_db(db_path, err, errlen);
    if (!gc->db) {
        free(gc);
        return NULL;
    }
    pthread_mutex_init(&gc->mu, NULL);
    pthread_cond_init(&gc->queued_cv, NULL);
    if (pthread_create(&gc->thread, NULL, committer_main, gc) != 0) {
        snprintf(err, errlen, "cannot start the %s thread", name);
        pthread_cond_destroy(&gc->queued_cv);
        pthread_mutex_destroy(&gc->mu);
        store_close(gc->db);
        free(gc);
        return NULL;
    }
    return gc;
}

int group_commit_run(group_commit *gc, group_commit_fn fn, void *arg) {
    write_request r = {.fn = fn, .arg = arg, .result = -1};
    if (sem_init(&r.answered, 0, 0) != 0) return -1;
    pthread_mutex_lock(&gc->mu);
    *gc->tail = &r;
    gc->tail = &r.next;
    gc->waiting++;
    /* A busy committer takes the queue when its transaction ends. */
    int wake = gc->idle;
    pthread_mutex_unlock(&gc->mu);
    if (wake) pthread_cond_signal(&gc->queued_cv);
    while (sem_wait(&r.answered) != 0 && errno == EINTR) {
    }
    sem_destroy(&r.answered);
    return r.result;
}

int group_commit_waiting(group_commit *gc) {
    pthread_mutex_lock(&gc->mu);
    int n = gc->waiting;
    pthread_mutex_unlock(&gc->mu);
    return n;
}

void group_commit_stop(group_commit *gc) {
    if (!gc) return;
    pthread_mutex_lock(&gc->mu);
    gc->stopping = 1;
    pthread_cond_signal(&gc->queued_cv);
    pthread_mutex_unlock(&gc->mu);
    pthread_join(gc->thread, NULL);
    pthread_cond_destroy(&gc->queued_cv);
    pthread_mutex_destroy(&gc->mu);
    store_close(gc->db);
    free(gc);
}
