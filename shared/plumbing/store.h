/* SQLite state of a service: one file per service under the data dir, WAL
 * mode, a busy timeout, and numbered migrations tracked in user_version. */
#ifndef MILLOM_STORE_H
#define MILLOM_STORE_H

#include <stddef.h>
#include <sqlite3.h>

/* Opens (creating if needed) <data_dir>/<name>.db and applies the
 * migrations past the file's user_version, each in its own transaction.
 * migrations[i] brings the schema to version i+1. NULL on error. */
sqlite3 *store_open(const char *name, const char *const *migrations, size_t n_migrations, char *err,
                    size_t errlen);
/* Same with an explicit path (":memory:" works). */
sqlite3 *store_open_path(const char *path, const char *const *migrations, size_t n_migrations,
                         char *err, size_t errlen);
void store_close(sqlite3 *db);

/* Gives db the page cache of store_open's connections
 * (MILLOM_SQLITE_CACHE_KB) instead of SQLite's default 2 MB: for
 * connections a module opens itself (the outbox relay, the changelog
 * follower). Returns the SQLite code. */
int store_set_cache_size(sqlite3 *db);

/* The default of MILLOM_SQLITE_HEAP_KB, the memory SQLite may hold for all
 * of the process's connections together before they recycle their own
 * pages instead of growing (0, the default: no budget). For a service with
 * many connections whose reads are point look-ups (purchase-executor:
 * 1024). Call before the first store_open; read once. */
void store_default_heap_kb(long kb);

/* The busy handler of store_open's connections (sqlite3_busy_handler):
 * short, growing sleeps, giving up after about 5 s. */
int store_busy_wait(void *arg, int tries);

/* Checkpoints off the committing thread (store_checkpoint.c): every
 * connection store_open makes reports its commits to one thread per file,
 * which checkpoints (PASSIVE) once the WAL passes 1,000 pages, instead of
 * the commit that crossed it doing so inline. store_close detaches. */
void store_checkpoint_attach(sqlite3 *db);
void store_checkpoint_detach(sqlite3 *db);

/* For /readyz: 1 when every file this process opened with store_open or
 * store_open_path (":memory:" aside, closed ones included) can be opened
 * again now and answers a trivial query, on a fresh read-only connection;
 * 0 otherwise (file gone, unreadable, corrupt, disk error). 1 when the
 * process opened no file. One open and one query per file. */
int store_ready(void);

/* Readiness also fails after a storage error (SQLITE_FULL, _IOERR, _BUSY,
 * _READONLY from any statement of the process, seen through SQLite's error
 * log, or reported with store_note_error): while a small write in the data
 * directory fails, and until no such error came for
 * MILLOM_STORE_ERROR_READY_S (default 10) seconds. The first error of an
 * episode is logged once, and the recovery once. */
void store_note_error(int rc, const char *what);

/* Runs SQL without results; logs and returns the SQLite code on error. */
int store_exec(sqlite3 *db, const char *sql);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Inside a batch of this thread on
 * the same connection (store_batch_begin) they become a savepoint and its
 * RELEASE / ROLLBACK TO: a handler written for one message per transaction
 * runs unchanged inside a batch, and what it rolls back is only its own. */
int store_begin(sqlite3 *db);
int store_commit(sqlite3 *db);
void store_rollback(sqlite3 *db);

/* One transaction around many handlers (a consumer's batch, see
 * kafka_consumer_opts.batch_begin): BEGIN IMMEDIATE, and until the batch
 * ends this thread's store_begin/_commit/_rollback on db nest in it.
 * store_batch_commit returns SQLITE_OK or the error (the batch is then
 * rolled back); store_batch_rollback undoes the whole batch. One batch per
 * thread at a time. */
int store_batch_begin(sqlite3 *db);
int store_batch_commit(sqlite3 *db);
void store_batch_rollback(sqlite3 *db);

#endif
