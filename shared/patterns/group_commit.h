/* Group commit: many threads' small write transactions on one SQLite file
 * committed together by one thread.
 *
 * Threads that each run BEGIN IMMEDIATE ... COMMIT on their own connection
 * take SQLite's write lock one at a time: under load they spend their time
 * sleeping in the busy handler, each commit writes its own WAL frames for
 * the same table and index pages, and every connection re-reads the pages
 * the others changed. Here a caller hands its write (a function) to the
 * committer thread and waits; the committer takes every write queued
 * meanwhile, runs them one after another inside one transaction
 * (store_batch_begin), each under its own savepoint (the function's own
 * store_begin / store_commit / store_rollback become SAVEPOINT / RELEASE /
 * ROLLBACK TO, see store.h), commits once, and wakes each caller. A write
 * that rolls back undoes only its own changes; the others commit.
 *
 * A caller is answered only after the transaction holding its write
 * committed (or failed): what it reads afterwards on any connection sees
 * it, as with its own COMMIT. */
#ifndef MILLOM_GROUP_COMMIT_H
#define MILLOM_GROUP_COMMIT_H

#include <stddef.h>
#include <sqlite3.h>

typedef struct group_commit group_commit;

/* A write: runs on the committer's thread with its connection, inside the
 * open transaction. It brackets its changes with store_begin and
 * store_commit (or store_rollback), as it would alone, and leaves its
 * result in arg. */
typedef void (*group_commit_fn)(sqlite3 *db, void *arg);

/* Opens the committer's connection with open_db(db_path) and starts its
 * thread, named name. NULL with a message on error. */
group_commit *group_commit_start(const char *db_path,
                                 sqlite3 *(*open_db)(const char *path, char *err, size_t errlen),
                                 const char *name, char *err, size_t errlen);
/* Runs fn(db, arg) in the next transaction and waits for its commit.
 * 0: committed (fn's own rollback included); -1: the transaction could not
 * begin or commit, so nothing fn wrote is stored (treat as a busy store).
 * Any thread; never from inside a group_commit_fn. */
int group_commit_run(group_commit *gc, group_commit_fn fn, void *arg);
/* Writes queued and not yet taken into a transaction. */
int group_commit_waiting(group_commit *gc);
/* Runs what is queued, stops the thread, closes the connection, frees.
 * NULL is a no-op. */
void group_commit_stop(group_commit *gc);

#endif
