/* A background thread that does its work in rounds: each round returns how
 * long to sleep before the next, and the thread wakes early on
 * worker_wake() or a stop. purchase-executor's retry thread and notifier's
 * delivery thread are workers; what a round does (with its own SQLite
 * connection and HTTP client) stays in the service.
 *
 * Partition hand-over: worker_quiesce() bumps the epoch, so a round that
 * sends a batch can see (worker_epoch() changed) that the rest of its batch
 * may belong to another owner now, and waits until no round is running. */
#ifndef MILLOM_WORKER_H
#define MILLOM_WORKER_H

#include <stddef.h>

typedef struct worker worker;

/* One round of work; returns the milliseconds to sleep before the next
 * (0: at once). */
typedef long (*worker_round_fn)(void *arg, worker *w);

/* Starts the thread. NULL with a message on error. */
worker *worker_start(worker_round_fn round, void *arg, char *err, size_t errlen);
/* Ends the current or next sleep at once. NULL is a no-op. */
void worker_wake(worker *w);
/* True once worker_stop was called: a long round checks it between items. */
int worker_stopping(worker *w);
/* Bumped by every worker_quiesce. */
int worker_epoch(worker *w);
/* Bumps the epoch and waits up to timeout_ms until no round is running.
 * 0, or -1 on timeout. NULL: 0. */
int worker_quiesce(worker *w, int timeout_ms);
/* Stops: the round in progress finishes, the thread is joined, w freed.
 * NULL is a no-op. */
void worker_stop(worker *w);

#endif
