/* notifier's state: consents, CPID registrations, notification
 * de-duplication and quota usage, and the durable delivery queue in its own
 * SQLite (notifier.db). The consumer thread writes consents and queues
 * deliveries; the delivery worker (own connection) sends them. */
#ifndef NOTIFIER_NOTIFIER_H
#define NOTIFIER_NOTIFIER_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "shared/patterns/changelog.h"
#include "shared/plumbing/topics.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/kafka.h"
#include "shared/patterns/outbox.h"
#include "millom/v1/subscriber.pb-c.h"

typedef struct delivery_worker delivery_worker;
typedef struct rpc_client rpc_client;

typedef struct {
    sqlite3 *db;
    char db_path[512];
    kafka_producer *producer;
    tenants *tenants;     /* providers' notificationUrl, callbackUrl */
    outbox_relay *outbox; /* millom.notifications.dlq */
    delivery_worker *worker;
    changelog_follower *follower; /* other instances' changes, restores */
    long quota;                   /* MILLOM_NOTIFY_QUOTA, default 3 */
    int64_t quota_window_ms;      /* MILLOM_NOTIFY_QUOTA_WINDOW_S, default 86400 */
    long override_max;            /* MILLOM_NOTIFY_OVERRIDE_MAX, default 2: override=true
                                 * honoured per operator and subscriber per window */
    rpc_client *rpc;              /* offers from offer-resolver: MILLOM_REPLY_PARTITION (7) */
    long offers_timeout_ms;       /* MILLOM_NOTIFY_OFFERS_TIMEOUT_MS, default 2000 */
    char public_url[256];         /* MILLOM_PUBLIC_URL, base of the signed links */
    long link_ttl_s;              /* MILLOM_LINK_TTL_S, default 86400: offers, ping */
    long shop_link_ttl_s;         /* MILLOM_LINK_SHOP_TTL_S, default 3600: the shop link
                                 * (it can buy; api-edge refuses longer ones) */
    long purchase_link_ttl_s;     /* MILLOM_LINK_PURCHASE_TTL_S, default 600: each offer's
                                 * purchaseLink (as the shop link) */
    long unsubscribe_link_ttl_s;  /* MILLOM_LINK_UNSUBSCRIBE_TTL_S, default 2592000 */
    int64_t consent_ttl_ms;       /* MILLOM_CONSENT_TTL_DAYS, default 365: a consent not
                                 * renewed (registered again) for that long has expired
                                 * (0, as in a zeroed struct: none expire) */
    /* The consumer's batch is open, and its replies, produced after its
     * commit (replies.c). */
    int in_batch;
    struct deferred_reply *deferred;
} notifier;

/* The notifier's changelog (shared/patterns/changelog.h). Every topic it consumes
 * is keyed by the subscriber's MSISDN, so a subscriber's consents, quota
 * usage, de-duplication records and deliveries share one partition number
 * (that of millom.subscriber.events, NOTIFIER_HOME_TOPIC, for ownership). */
#define NOTIFIER_HOME_TOPIC TOPIC_SUBSCRIBER_EVENTS
extern const changelog_spec notifier_changelog;

/* Opens notifier.db (path NULL: in the data dir) with every migration;
 * the connection captures its changes into the changelog. */
sqlite3 *notifier_store_open(const char *path, char *err, size_t errlen);

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
/* The subscriber's opt-out of one NotificationType for a provider (the
 * notification's unsubscribe link): the type is refused from then on
 * until a registration newer than the opt-out lists it again. 0 or -1. */
int consent_opt_out(notifier *n, const char *provider, const char *op, const char *msisdn,
                    const char *type, int64_t occurred_ms);
/* The subscriber's latest CPID for a provider (same ordering rule). */
int cpid_registration_put(notifier *n, const char *provider, const char *op, const char *msisdn,
                          const char *cpid, int64_t expires_ms, int64_t occurred_ms);
/* The management read's answer body (see routes_consents.c in api-edge);
 * provider NULL or "" for all. NULL on a store error. */
json_t *consents_lookup(notifier *n, const char *op, const char *msisdn, const char *provider);

/* millom.subscriber.events (notify_events.c): the verdict for one event
 * and, when accepted, one queued delivery per consenting provider. */
typedef struct {
    int status;             /* 202, or the Notification API's error status */
    const char *error_type; /* the spec's ErrorResponse.errorType; NULL for 202 and 400 */
    char description[200];
} notify_verdict;
/* The rules of notify_events.c for one decoded event: fills v and queues
 * *queued deliveries (in one transaction with the de-duplication record and
 * the quota usage). 0, or -1 on a store error (nothing written; retry). */
int notify_decide(notifier *n, const Millom__V1__SubscriberEvent *ev, notify_verdict *v,
                  int *queued);
/* notify_decide, then the answer on millom.replies when the event came
 * through api-edge (meta), or a log line when it came from the operator. */
kafka_verdict notify_on_subscriber_event(notifier *n, const rd_kafka_message_t *msg, char *err,
                                         size_t errlen);
/* millom.purchase.events: a final purchase queues one callback to its
 * provider, once per (provider, transid, state). */
kafka_verdict notify_on_purchase_event(notifier *n, const rd_kafka_message_t *msg, char *err,
                                       size_t errlen);
/* millom.topup.events: a top-up request's final state queues one callback
 * to its provider's topupCallbackUrl (else callbackUrl), once per (top-up,
 * state). */
kafka_verdict notify_on_topup_event(notifier *n, const rd_kafka_message_t *msg, char *err,
                                    size_t errlen);

/* The body sent for a queued rich notification: rich_notification_render
 * (delivery.h), with offers from offers_cache.c. */

/* The delivery worker thread (delivery_worker.c): POSTs due deliveries,
 * many at once within per-provider limits, retries with exponential
 * backoff and jitter, dead-letters to millom.notifications.dlq through the
 * outbox. NULL with a message on error (a bad setting or tenants field). */
delivery_worker *delivery_worker_start(notifier *n, char *err, size_t errlen);
void delivery_worker_wake(delivery_worker *w);
/* Makes the worker stop taking deliveries (partitions were revoked), let
 * those in flight finish and record them, and waits up to timeout_ms for
 * it to be idle. 0 or -1. */
int delivery_worker_quiesce(delivery_worker *w, int timeout_ms);
void delivery_worker_stop(delivery_worker *w);

/* Consumer hooks (kafka_consumer_opts): restore and own assigned
 * partitions, hand revoked ones over, commit after the changelog. */
void notifier_on_assign(void *arg, const rd_kafka_topic_partition_list_t *parts);
void notifier_on_revoke(void *arg, const rd_kafka_topic_partition_list_t *parts);
int notifier_before_commit(void *arg);

/* Consumer batches (replies.c, kafka_consumer_opts.batch_begin): one
 * transaction on n->db around a batch's handlers; their replies wait for
 * its commit. */
int notifier_batch_begin(void *state);
int notifier_batch_commit(void *state);
void notifier_batch_rollback(void *state);
/* rpc_reply, or inside a batch the same after the batch committed
 * (dropped if it is rolled back). 0 or -1. */
int notifier_reply(notifier *n, const Millom__V1__RequestMeta *meta, int status,
                   const char *content_type, const char *body, size_t body_len, int retry_after_s);

/* The consumer's handler (dispatch by topic). arg: notifier. */
kafka_verdict notifier_on_message(void *arg, const rd_kafka_message_t *msg, char *err,
                                  size_t errlen);

#endif
