/* millom.settlement.queries: the management API's reads, answered on
 * millom.replies as JSON or CSV. They run on their own consumer and a
 * read connection of their own (WAL lets it read while events are being
 * settled), so a backlog of purchase events never delays an answer. */
#include "settlement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/rpc.h"

/* A Reply must fit one Kafka message (1 MB by default). */
#define MAX_ANSWER 900000

static void reply_text(settlement *s, const Millom__V1__RequestMeta *meta, int status,
                       const char *type, const char *body) {
    if (rpc_reply(s->producer, meta, status, type, body, strlen(body), 0) != 0)
        log_warn("cannot produce a settlement reply");
}

static void reply_error(settlement *s, const Millom__V1__RequestMeta *meta, const char *cause,
                        const char *message) {
    char *body = error_document_text(cause, message);
    if (!body) return;
    if (rpc_reply(s->producer, meta, error_status(cause), "application/json", body, strlen(body),
                  error_retry_after(cause)) != 0)
        log_warn("cannot produce a settlement reply");
    free(body);
}

static void answer(settlement *s, const Millom__V1__SettlementQuery *q) {
    const Millom__V1__RequestMeta *meta = q->meta;
    if (!q->operator_ || !*q->operator_) {
        reply_error(s, meta, CAUSE_BAD_REQUEST, "operator is required");
        return;
    }
    int csv = q->format && strcmp(q->format, "csv") == 0;
    query_filter f = {
        .op = q->operator_,
        .from_ms = q->from_ms,
        .to_ms = q->to_ms,
        .service_provider =
            q->service_provider && *q->service_provider ? q->service_provider : NULL,
    };
    char *body;
    if (q->kind == MILLOM__V1__SETTLEMENT_QUERY_KIND__SETTLEMENT_QUERY_KIND_SETTLEMENTS) {
        body = render_settlements(s->query_db, &f, csv);
    } else if (q->kind ==
               MILLOM__V1__SETTLEMENT_QUERY_KIND__SETTLEMENT_QUERY_KIND_OFFER_PERFORMANCE) {
        body = render_offer_performance(s->query_db, &f, csv);
    } else {
        reply_error(s, meta, CAUSE_BAD_REQUEST, "unknown settlement query kind");
        return;
    }
    if (!body) {
        reply_error(s, meta, CAUSE_SERVICE_UNAVAILABLE, "settlement store unavailable");
    } else if (strlen(body) > MAX_ANSWER) {
        reply_error(s, meta, CAUSE_BAD_REQUEST, "the answer is too large; narrow from and to");
    } else {
        reply_text(s, meta, 200, csv ? "text/csv; charset=utf-8" : "application/json", body);
        metric_add(s->queries_answered, 1);
    }
    free(body);
}

kafka_verdict settlement_on_query(void *arg, const rd_kafka_message_t *msg, char *err,
                                  size_t errlen) {
    settlement *s = arg;
    Millom__V1__SettlementQuery *q =
        millom__v1__settlement_query__unpack(NULL, msg->len, (const uint8_t *)msg->payload);
    if (!q) {
        snprintf(err, errlen, "not a millom.v1.SettlementQuery");
        return KAFKA_DEAD_LETTER;
    }
    /* Nobody waits for an answer past the deadline (api-edge said 503). */
    if (q->meta && q->meta->correlation_id && *q->meta->correlation_id && !rpc_expired(q->meta))
        answer(s, q);
    millom__v1__settlement_query__free_unpacked(q, NULL);
    return KAFKA_DONE;
}
