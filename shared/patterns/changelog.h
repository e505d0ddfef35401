/* State that follows its partition, the way Kafka Streams state stores
 * work: every change to a tracked SQLite table is also written to a
 * compacted changelog topic, and an instance that is assigned a partition
 * restores that partition's rows from the changelog before it handles the
 * partition's messages.
 *
 * Writing: changelog_capture() installs TEMP triggers on a connection
 * (AFTER INSERT/UPDATE/DELETE of each tracked table). Each change stamps
 * the row with a version (a hybrid logical clock in µs, higher than any
 * version this process has seen) and adds the whole row, as a
 * ChangelogRecord, to the service's outbox in the same transaction; the
 * outbox relay produces it to the changelog partition stored in the row's
 * `cl_partition` (the partition of the message that created it, taken from
 * changelog_set_partition() at insert time). Deletes produce tombstones.
 * TEMP triggers live only on the connection that created them, so the
 * follower's own writes are never echoed back.
 *
 * Reading: a follower thread consumes every partition of the changelog
 * (no consumer group) and applies records whose version is higher than the
 * local row's, remembering its position per partition in SQLite. Every
 * instance thus holds a copy of all rows (reads such as look-ups and the
 * purchase timer see other partitions' rows too), while only the owner of
 * a partition changes that partition's rows. On assignment, the consumer
 * waits in changelog_take_over() until the follower has applied
 * the partition up to its high watermark, which includes everything the
 * previous owner flushed when its partitions were revoked.
 *
 * Ownership: changelog_own() keeps the partitions this instance owns in
 * the table changelog_owned; background workers (retries, deliveries)
 * only touch rows of owned partitions (CHANGELOG_OWNED_SQL).
 *
 * Requirements: the input topics a service consumes and the changelog
 * topic have the same partition count and the messages of one entity are
 * keyed alike (so the range assignor gives one member the same partition
 * number of every topic); each tracked table has the columns
 * `cl_version INTEGER NOT NULL DEFAULT 0` and
 * `cl_partition INTEGER NOT NULL DEFAULT -1`, and its key columns carry a
 * PRIMARY KEY or UNIQUE constraint and never change once written (an
 * UPDATE of a key would leave the old key's record in the changelog); the database includes
 * changelog_migration_sql after the outbox migration, and
 * outbox_correlator_migration_sql (records carry the writing thread's
 * request id, shared/plumbing/correlator.h). */
#ifndef MILLOM_CHANGELOG_H
#define MILLOM_CHANGELOG_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include <librdkafka/rdkafka.h>

typedef struct {
    const char *table;
    const char *const *key_columns; /* NULL-terminated: the row's identity */
    /* Optional: for tables keyed locally by an INTEGER rowid, a TEXT column
     * filled with a random id on insert when NULL; it is then the key. */
    const char *uid_column;
    const char *const *local_columns; /* NULL-terminated or NULL: kept local
                                         (e.g. an AUTOINCREMENT id) */
} changelog_table;

typedef struct {
    const char *topic; /* e.g. "millom.purchase.changelog" */
    const changelog_table *tables;
    size_t n_tables;
} changelog_spec;

/* One migration step: the ownership and position tables, and the outbox's
 * target partition column. */
extern const char *const changelog_migration_sql;

/* Rows of partitions this instance does not own are left to their owner.
 * `col` is the row's cl_partition column; -1 (no partition) is everyone's. */
#define CHANGELOG_OWNED_SQL(col) \
    "(" col " < 0 OR " col " IN (SELECT partition FROM changelog_owned))"

/* Installs the capture triggers and their SQL functions on a writer
 * connection. 0, or -1 with a message. */
int changelog_capture(sqlite3 *db, const changelog_spec *spec, char *err, size_t errlen);

/* The replicated columns of a tracked table (all but its local ones), in
 * schema order, as both halves of the module see them: the count, or -1;
 * *out is malloc'd, freed with changelog_columns_free. */
int changelog_table_columns(sqlite3 *db, const changelog_table *t, char ***out);
void changelog_columns_free(char **cols, int n);

/* The partition rows inserted by this thread belong to (the partition of
 * the message being handled); -1 when not handling a message. */
void changelog_set_partition(int32_t partition);
/* This thread's partition as set last (-1: none): for work handed to
 * another thread, which sets it there (group_commit). */
int32_t changelog_get_partition(void);

/* Records which partitions of `topic` in parts this instance now owns
 * (owned = 1) or gave up (owned = 0). changelog_disown_all() at start-up. */
int changelog_own(sqlite3 *db, const rd_kafka_topic_partition_list_t *parts, const char *topic,
                  int owned);
int changelog_disown_all(sqlite3 *db);

typedef struct changelog_follower changelog_follower;

/* Opens its own connection to db_path (already migrated) and starts
 * following every partition of spec->topic. NULL with a message. */
changelog_follower *changelog_follower_start(const char *db_path, const changelog_spec *spec,
                                             char *err, size_t errlen);
/* Waits until the follower applied `partition` up to the high watermark
 * it has now. 0, or -1 on timeout or error (logged). */
int changelog_follower_catch_up(changelog_follower *f, int32_t partition, int timeout_ms);
/* The consumer's on_assign: restores every partition of `topic` in parts,
 * then records them as owned (db: the consumer's connection). Each may
 * take up to MILLOM_CHANGELOG_RESTORE_TIMEOUT_MS (60 s); past it the
 * partition is handled anyway, logged as an error — the operator's
 * de-duplication by transId still keeps a purchase from being activated
 * twice. Returns the number not restored in time. */
int changelog_take_over(changelog_follower *f, sqlite3 *db,
                        const rd_kafka_topic_partition_list_t *parts, const char *topic);
void changelog_follower_stop(changelog_follower *f);

/* For tests: the next version the clock would give (no side effect other
 * than advancing it) and telling it about a version seen elsewhere. */
int64_t changelog_clock_next(void);
/* The id this process writes into the records of the database file
 * db_file (sqlite3_db_filename), random per file and start; NULL when too
 * many files were named. */
const char *changelog_origin(const char *db_file);
void changelog_clock_observe(int64_t version);

#endif
