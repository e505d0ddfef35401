/* notifier's state: consents and CPID registrations in its own SQLite
 * (notifier.db), written only from the consumer thread. */
#ifndef NOTIFIER_NOTIFIER_H
#define NOTIFIER_NOTIFIER_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "shared/kafka.h"

typedef struct {
    sqlite3 *db;
    kafka_producer *producer;
} notifier;

/* Opens the store (path NULL: notifier.db in the data dir). 0 or -1. */
int notifier_open(notifier *n, const char *path, char *err, size_t errlen);
void notifier_close(notifier *n);

/* Records a consent: types (JSON array text) for (provider, msisdn).
 * An empty list "[]" revokes. A change older than the stored one
 * (occurred_ms) is ignored, so redelivery and reordering change nothing.
 * 0, or -1 on a store error. */
int consent_put(notifier *n, const char *provider, const char *op, const char *msisdn,
                const char *types_json, const char *language, const char *transaction_id,
                int64_t occurred_ms);
/* The subscriber's latest CPID for a provider (same ordering rule). */
int cpid_registration_put(notifier *n, const char *provider, const char *op,
                          const char *msisdn, const char *cpid, int64_t expires_ms,
                          int64_t occurred_ms);
/* The management read's answer body (see routes_consents.c in api-edge);
 * provider NULL or "" for all. NULL on a store error. */
json_t *consents_lookup(notifier *n, const char *op, const char *msisdn, const char *provider);

/* The consumer's handler (dispatch by topic). arg: notifier. */
kafka_verdict notifier_on_message(void *arg, const rd_kafka_message_t *msg, char *err,
                                  size_t errlen);

#endif
