/* Prepared statements kept per SQLite connection (stmt_cache.c). */
#ifndef MILLOM_STMT_CACHE_H
#define MILLOM_STMT_CACHE_H

#include <sqlite3.h>

/* The statement for sql (a string literal: it is identified by its
 * address) on db, reset with no bindings; NULL on a prepare error or a
 * full cache (logged). Give it back with stmt_done. A connection is used by one
 * thread at a time, so one statement is never handed out twice at once. */
sqlite3_stmt *stmt_get(sqlite3 *db, const char *sql);
void stmt_done(sqlite3 *db, sqlite3_stmt *st);
/* Finalizes db's statements. store_close does it; call it before closing
 * a connection some other way. */
void stmt_cache_close(sqlite3 *db);

#endif
