/* The consumer side of offer-resolver: decode each query, answer it here
 * when the cache has the backend's answer, else start its backend call on
 * the backend loop (or, when a token must be fetched first, hand it to a
 * worker), so a slow backend never holds up the partition.
 *
 * Queries are committed when queued, not when answered. A query lost in a
 * crash is at worst a 503 the SP retries; it changes no state, and every
 * query dies at its deadline anyway.
 *
 * Cache invalidation arrives two ways: an INVALIDATE query that
 * purchase-executor sends keyed by the subscriber before it answers a
 * completed purchase (same partition as the subscriber's later queries, so
 * ordered before them: a balance read right after a purchase is fresh),
 * and the purchase events themselves. */
#include "resolver.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/service.h"
#include "millom/v1/purchase.pb-c.h"

#include <string.h>

/* A purchase changed the subscriber's balance: forget what we cached.
 * Runs in the consumer thread, so every query behind it on the partition
 * sees the cache without the entry. */
static kafka_verdict invalidate(resolver *r, const char *op, const char *subscriber) {
    if (op && subscriber && *subscriber) backend_cache_forget(r->cache, op, subscriber, now_ms());
    return KAFKA_DONE;
}

static kafka_verdict on_purchase_event(resolver *r, const rd_kafka_message_t *msg, char *err,
                                       size_t errlen) {
    Millom__V1__PurchaseEvent *ev =
        millom__v1__purchase_event__unpack(NULL, msg->len, msg->payload);
    if (!ev) {
        snprintf(err, errlen, "not a millom.v1.PurchaseEvent");
        return KAFKA_DEAD_LETTER;
    }
    if (ev->state == MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED)
        invalidate(r, ev->operator_, ev->msisdn);
    millom__v1__purchase_event__free_unpacked(ev, NULL);
    return KAFKA_DONE;
}

kafka_verdict resolver_on_message(void *arg, const rd_kafka_message_t *msg, char *err,
                                  size_t errlen) {
    resolver *r = arg;
    if (strcmp(rd_kafka_topic_name(msg->rkt), TOPIC_PURCHASE_EVENTS) == 0)
        return on_purchase_event(r, msg, err, errlen);
    Millom__V1__Query *q = millom__v1__query__unpack(NULL, msg->len, msg->payload);
    if (!q) {
        snprintf(err, errlen, "not a millom.v1.Query");
        return KAFKA_DEAD_LETTER;
    }
    if (q->kind == MILLOM__V1__QUERY_KIND__QUERY_KIND_INVALIDATE) {
        char masked[32];
        log_debug("purchase %s/%s completed: cached balance of %s dropped",
                  q->service_provider ? q->service_provider : "", q->trans_id ? q->trans_id : "",
                  log_mask_msisdn(q->subscriber ? q->subscriber->subscriber_id : NULL, masked,
                                  sizeof masked));
        kafka_verdict v = invalidate(r, q->subscriber ? q->subscriber->operator_ : NULL,
                                     q->subscriber ? q->subscriber->subscriber_id : NULL);
        millom__v1__query__free_unpacked(q, NULL);
        return v;
    }
    if (!q->meta || !q->meta->correlation_id || !*q->meta->correlation_id || !q->subscriber ||
        !q->subscriber->subscriber_id || !*q->subscriber->subscriber_id ||
        q->kind == MILLOM__V1__QUERY_KIND__QUERY_KIND_UNSPECIFIED) {
        snprintf(err, errlen, "query lacks meta, subscriber or kind");
        millom__v1__query__free_unpacked(q, NULL);
        return KAFKA_DEAD_LETTER;
    }
    if (rpc_expired(q->meta)) { /* nobody waits for it any more */
        millom__v1__query__free_unpacked(q, NULL);
        return KAFKA_DONE;
    }
    /* A cached answer is mapped and sent from here (handing it to another
     * thread would cost two wake-ups and a lock for microseconds of work);
     * a miss's call goes to the backend loop. */
    resolver_take(r, q);
    return KAFKA_DONE;
}
