/* Prepared statements cached per connection (stmt_cache.c). */
#ifndef SETTLEMENT_REPORTER_STMT_CACHE_H
#define SETTLEMENT_REPORTER_STMT_CACHE_H

#include <sqlite3.h>

/* The statement for sql (a string literal) on db, reset with no bindings;
 * NULL on a prepare error (logged). Give it back with stmt_done. */
sqlite3_stmt *stmt_get(sqlite3 *db, const char *sql);
void stmt_done(sqlite3 *db, sqlite3_stmt *st);
/* Finalizes db's statements; call before closing db. */
void stmt_cache_close(sqlite3 *db);

#endif
