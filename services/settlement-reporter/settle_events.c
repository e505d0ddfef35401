/* millom.purchase.events: each COMPLETED purchase is settled once.
 *
 * Other states (received, activating, pending, failed) are not money and
 * are skipped. A COMPLETED event that cannot be settled for good (no
 * transid, negative price, an operator without revenue shares) goes to
 * the DLQ with the reason; a database error is retried, never skipped. */
#include "settlement.h"
#include "shared/plumbing/topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"
#include "shared/contracts/subscriber_hash.h"

static int copy_field(char *dst, size_t len, const char *src, const char *name, int required,
                      char *err, size_t errlen) {
    if (!src) src = "";
    if ((required && !*src) || strlen(src) >= len) {
        snprintf(err, errlen, "%s %s", name, *src ? "too long" : "missing");
        return -1;
    }
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

int settlement_record_from_event(const tenants *t, const Millom__V1__PurchaseEvent *ev, int64_t now,
                                 settled_record *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (copy_field(out->transid, sizeof out->transid, ev->transid, "transid", 1, err, errlen) ||
        copy_field(out->op, sizeof out->op, ev->operator_, "operator", 1, err, errlen) ||
        copy_field(out->service_provider, sizeof out->service_provider, ev->service_provider,
                   "service_provider", 1, err, errlen) ||
        copy_field(out->plan_id, sizeof out->plan_id, ev->plan_id, "plan_id", 1, err, errlen) ||
        copy_field(out->currency, sizeof out->currency, ev->currency, "currency", 1, err, errlen))
        return -1;
    if (ev->price_minor < 0) {
        snprintf(err, errlen, "negative price_minor %lld", (long long)ev->price_minor);
        return -1;
    }
    const tenant_operator *op = tenants_operator(t, out->op);
    if (!op) {
        snprintf(err, errlen, "unknown operator %s", out->op);
        return -1;
    }
    revenue_shares shares;
    if (shares_from_tenant(op, &shares, err, errlen) != 0) return -1;
    out->amount_minor = ev->price_minor;
    out->currency_scale = op->currency_scale;
    out->fund_source = (int)ev->fund_source;
    /* The completion time is when the purchase became COMPLETED; an event
     * without one (never from purchase-executor) is settled "now". */
    out->completed_at_ms = ev->occurred_at_ms > 0 ? ev->occurred_at_ms : now;
    utc_day(out->completed_at_ms, out->day);
    subscriber_hash(ev->msisdn, out->subscriber_hash);
    shares_split(out->amount_minor, &shares, &out->split);
    out->settled_at_ms = now;
    return 0;
}

void settlement_count(settlement *s, metric *m, long *batch_count) {
    if (s->batch.open)
        (*batch_count)++;
    else
        metric_add(m, 1);
}

int settlement_batch_begin(void *arg) {
    settlement *s = arg;
    if (store_batch_begin(s->db) != SQLITE_OK) return -1;
    settle_batch_reset(&s->batch.agg);
    s->batch.settled = s->batch.duplicates = s->batch.ignored = s->batch.impressions = 0;
    s->batch.open = 1;
    return 0;
}

int settlement_batch_commit(void *arg) {
    settlement *s = arg;
    if (settle_batch_publish(s->db, &s->batch.agg) != 0) {
        settlement_batch_rollback(s);
        return -1;
    }
    s->batch.open = 0;
    if (store_batch_commit(s->db) != SQLITE_OK) return -1;
    metric_add(s->settled, (double)s->batch.settled);
    metric_add(s->duplicates, (double)s->batch.duplicates);
    metric_add(s->ignored, (double)s->batch.ignored);
    metric_add(s->impressions, (double)s->batch.impressions);
    return 0;
}

void settlement_batch_rollback(void *arg) {
    settlement *s = arg;
    s->batch.open = 0;
    store_batch_rollback(s->db);
}

kafka_verdict settlement_on_event(settlement *s, const void *payload, size_t len, char *err,
                                  size_t errlen) {
    Millom__V1__PurchaseEvent *ev =
        millom__v1__purchase_event__unpack(NULL, len, (const uint8_t *)payload);
    if (!ev) {
        snprintf(err, errlen, "not a millom.v1.PurchaseEvent");
        return KAFKA_DEAD_LETTER;
    }
    kafka_verdict v = KAFKA_DONE;
    settled_record rec;
    if (ev->state != MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED) {
        settlement_count(s, s->ignored, &s->batch.ignored);
        goto out;
    }
    if (settlement_record_from_event(s->tenants, ev, now_ms(), &rec, err, errlen) != 0) {
        v = KAFKA_DEAD_LETTER;
        goto out;
    }
    if (store_begin(s->db) != SQLITE_OK) {
        v = KAFKA_RETRY;
        goto out;
    }
    settle_result r = settle_apply(s->db, &rec, s->batch.open ? &s->batch.agg : NULL);
    if (r == SETTLE_ERROR || (r == SETTLE_NEW && store_commit(s->db) != SQLITE_OK)) {
        store_rollback(s->db);
        snprintf(err, errlen, "settlement store: %s", sqlite3_errmsg(s->db));
        v = KAFKA_RETRY;
        goto out;
    }
    if (r == SETTLE_DUPLICATE) {
        store_rollback(s->db); /* nothing was written */
        settlement_count(s, s->duplicates, &s->batch.duplicates);
        goto out;
    }
    settlement_count(s, s->settled, &s->batch.settled);
    log_debug("purchase %s/%s settled: operator %s, day %s", rec.service_provider, rec.transid,
              rec.op, rec.day);
    /* No outbox_relay_notify: the relay wakes every 100 ms anyway and then
     * sends up to 500 rows at once; waking it per event made it take the
     * write lock per event and cut throughput (settlement is not latency
     * critical). */
out:
    millom__v1__purchase_event__free_unpacked(ev, NULL);
    return v;
}

kafka_verdict settlement_handle(void *arg, const rd_kafka_message_t *msg, char *err,
                                size_t errlen) {
    settlement *s = arg;
    const char *topic = rd_kafka_topic_name(msg->rkt);
    if (strcmp(topic, TOPIC_PURCHASE_EVENTS) == 0)
        return settlement_on_event(s, msg->payload, msg->len, err, errlen);
    if (strcmp(topic, TOPIC_OFFER_IMPRESSIONS) == 0)
        return settlement_on_impression(s, msg->payload, msg->len, err, errlen);
    snprintf(err, errlen, "settlement-reporter does not consume %s", topic);
    return KAFKA_DEAD_LETTER;
}
