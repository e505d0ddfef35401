/* What store_subscribers.c (the readers, the JSON) and store_activations.c
 * (the writer) share. Not for other files. */
#ifndef MILLOM_MNO_STORE_INTERNAL_H
#define MILLOM_MNO_STORE_INTERNAL_H

#include "mno_sandbox.h"

#include "shared/plumbing/store.h"

#include <pthread.h>

typedef struct mno_reader mno_reader;

/* Writer statements, prepared on first use (store_activations.c numbers them). */
#define MNO_WRITER_STMTS 32

struct mno_store {
    /* The migrating connection, kept open for the file's life; also the one
     * writable connection, used only under wlock. */
    sqlite3 *writer;
    pthread_mutex_t wlock;
    sqlite3_stmt *wst[MNO_WRITER_STMTS];
    mno_reader *readers;
    size_t n_readers;
};

typedef struct {
    char msisdn[32];
    char subscription_type[16];
    char price_plan[64];
    int64_t balance_minor;
    int64_t loan_minor;
    int64_t ewallet_minor; /* the e-wallet (EWALLET), apart from the airtime */
    char state[16];
    char status[16];
} mno_subscriber;

/* The subscriber look-ups, by MSISDN and by OPET (columns as
 * mno_find_subscriber reads them). */
extern const char mno_sql_subscriber_by_msisdn[];
extern const char mno_sql_subscriber_by_opet[];

/* Runs `st` (one of the two look-ups, reset) for customer_id (a leading '+'
 * dropped for MSISDNs) and turns unknown/barred/roaming into the error
 * reply. 1 when the subscriber may be served, else 0 with *err set. */
int mno_admit(sqlite3 *db, sqlite3_stmt *st, const char *customer_id, mno_id_type id_type,
              mno_subscriber *sub, mno_reply *err);

mno_reply mno_reply_error(int status, const char *type, const char *message);
/* {currency, value} with value a JSON number. */
json_t *mno_money_json(int64_t minor);
/* "2026-01-31T17:00:00Z" */
void mno_iso8601_utc(int64_t epoch_s, char *buf, size_t len);
const char *mno_col_text(sqlite3_stmt *st, int i);

/* Writer statement `id` (< MNO_WRITER_STMTS) for sql, prepared on first use,
 * reset and unbound. Call with wlock held. NULL on error (logged). */
sqlite3_stmt *mno_writer_stmt(mno_store *s, int id, const char *sql);

#endif
