/* The consumer side of offer-resolver: decode each query and hand it to a
 * worker, so a slow backend never holds up the partition.
 *
 * Queries are committed when queued, not when answered. A query lost in a
 * crash is at worst a 503 the SP retries; it changes no state, and every
 * query dies at its deadline anyway. */
#include "resolver.h"
#include "shared/errors.h"
#include "shared/rpc.h"

#include <string.h>

kafka_verdict resolver_on_query(void *arg, const rd_kafka_message_t *msg, char *err,
                                size_t errlen) {
    resolver *r = arg;
    Millom__V1__Query *q = millom__v1__query__unpack(NULL, msg->len, msg->payload);
    if (!q) {
        snprintf(err, errlen, "not a millom.v1.Query");
        return KAFKA_DEAD_LETTER;
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
    if (work_queue_push(r->workers, q) != 0) {
        char *text = error_document_text(CAUSE_SERVICE_UNAVAILABLE, "offer-resolver is overloaded");
        if (text) rpc_reply(r->producer, q->meta, 503, "application/json", text, strlen(text), 1);
        free(text);
        millom__v1__query__free_unpacked(q, NULL);
    }
    return KAFKA_DONE;
}
