/* A few connections to one SQLite file, shared by many threads: a thread
 * takes one for a short piece of work (a read, a small transaction) and
 * gives it back.
 *
 * For threads that spend most of their time waiting on something else:
 * purchase-executor's lanes wait for the operator's answer, so 24 lanes
 * with a connection each kept 24 copies of the schema, of the prepared
 * statements and of the page cache (about 100 kB a lane) for reads that
 * take microseconds. A connection taken is this thread's alone until it
 * is given back: nothing may keep it across a wait on anything else. */
#ifndef MILLOM_STORE_POOL_H
#define MILLOM_STORE_POOL_H

#include <stddef.h>
#include <sqlite3.h>

typedef struct store_pool store_pool;

/* Opens n connections with open_db(path) (the service's own opener: its
 * migrations, functions, triggers). NULL with a message on error. */
store_pool *store_pool_open(const char *path, int n,
                            sqlite3 *(*open_db)(const char *path, char *err, size_t errlen),
                            char *err, size_t errlen);
/* A free connection, waiting until one is given back when all are taken. */
sqlite3 *store_pool_take(store_pool *p);
/* Returns db, taken from p, to the pool. */
void store_pool_give(store_pool *p, sqlite3 *db);
/* How many connections p holds. */
int store_pool_size(const store_pool *p);
/* Closes every connection (none may be taken) and frees. NULL is a no-op. */
void store_pool_close(store_pool *p);

#endif
