/* Transactional outbox: events that follow a state change are written to
 * an `outbox` table in the same SQLite transaction as the change, and a
 * relay thread publishes them to Kafka afterwards.
 *
 *  - Nothing is published for a change that rolled back (the row rolled
 *    back with it).
 *  - Nothing committed is lost: a row is deleted only after the broker
 *    acknowledged it (delivery report without error). A crash between the
 *    produce and the delete publishes the row again on restart, so
 *    consumers must de-duplicate (for purchases: by transid + state).
 *  - Rows go out in id order. The relay produces a batch, waits for every
 *    delivery report of it, deletes the delivered rows and only then reads
 *    the next batch; a failed row is sent again (with everything after it)
 *    after a short pause, so a key's events keep their order.
 *
 * Usage: include `outbox_migration_sql` in the service's migrations, call
 * outbox_add() inside the service's own open transaction, and run one
 * relay per database file (it needs a file: ":memory:" cannot be shared
 * between connections). */
#ifndef MILLOM_OUTBOX_H
#define MILLOM_OUTBOX_H

#include <stddef.h>
#include <sqlite3.h>

#include "shared/plumbing/kafka.h"

/* CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT,
 * key BLOB, payload BLOB, created_ms INTEGER). One migration step. */
extern const char *const outbox_migration_sql;
/* The request id of each event (column correlator, NULL: none), sent as
 * its Kafka header x-correlator (shared/plumbing/correlator.h). One
 * migration step, after outbox_migration_sql; outbox_add needs it. */
extern const char *const outbox_correlator_migration_sql;

/* Appends one event. Call inside the caller's open transaction (the row
 * commits or rolls back with it). A key of length 0 produces a message
 * without a key. The event carries the calling thread's current request
 * id. Returns SQLITE_OK or the SQLite error code. */
int outbox_add(sqlite3 *db, const char *topic, const void *key, size_t klen, const void *payload,
               size_t plen);
/* outbox_add with an explicit request id (NULL or "": none), for a writer
 * that is not the thread working for the request (a group commit). */
int outbox_add_correlated(sqlite3 *db, const char *correlator, const char *topic, const void *key,
                          size_t klen, const void *payload, size_t plen);

typedef struct outbox_relay outbox_relay;

/* Opens its own connection to db_path (the file must already carry the
 * outbox table) and starts the relay thread, which wakes up on
 * outbox_relay_notify() or every 100 ms. NULL on error (logged). */
outbox_relay *outbox_relay_start(const char *db_path, kafka_producer *p);
/* Wakes the relay at once (call after committing rows). NULL is a no-op. */
void outbox_relay_notify(outbox_relay *r);
/* Waits until every row in the outbox at the time of the call (read on
 * the caller's connection db) was delivered, waking the relay first. Used
 * before committing consumer offsets, and when giving up partitions, so
 * changelog records are in Kafka before anyone relies on them. 0, or -1
 * on timeout. A NULL relay is flushed. */
int outbox_flush(outbox_relay *r, sqlite3 *db, int timeout_ms);
/* Rows waiting in the table at the relay's last look (also exported as
 * the gauge millom_outbox_depth). */
long outbox_relay_depth(const outbox_relay *r);
/* Makes one last pass, then stops the thread (waiting up to
 * MILLOM_OUTBOX_STOP_WAIT_MS, default 10 s, for the delivery reports of
 * the batch in flight; rows without one stay for the next start), closes
 * the connection and frees. Call before kafka_producer_free(). NULL is a
 * no-op. */
void outbox_relay_stop(outbox_relay *r);

#endif
