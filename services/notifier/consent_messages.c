/* notifier's consumer: consents (millom.consents: registrations and the
 * subscribers' opt-outs from unsubscribe links), CPID registrations
 * (millom.cpid.registrations) and the management read
 * (millom.consent.queries); subscriber and purchase events go to
 * notify_events.c. Requests that carry a
 * RequestMeta are answered on millom.replies after the SQLite write:
 * 200 with no body for changes, JSON for the read. A change is applied
 * even when its deadline passed (the SP may retry; applying is
 * idempotent); only the reply is skipped then. */
#include "notifier.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/rpc.h"
#include "shared/patterns/runner.h"
#include "millom/v1/purchase.pb-c.h"
#include "millom/v1/subscriber.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply(notifier *n, const Millom__V1__RequestMeta *meta, int status, const char *body) {
    if (!meta || !meta->correlation_id || !*meta->correlation_id || rpc_expired(meta)) return;
    if (!body) body = "";
    if (notifier_reply(n, meta, status, *body ? "application/json" : "", body, strlen(body),
                       status == 503 ? 1 : 0) != 0)
        log_warn("cannot produce the reply for %s", meta->correlation_id);
}

static void reply_error(notifier *n, const Millom__V1__RequestMeta *meta, const char *cause,
                        const char *message) {
    char *body = error_document_text(cause, message);
    reply(n, meta, error_status(cause), body);
    free(body);
}

static int has_subscriber(const Millom__V1__SubscriberRef *s) {
    return s && s->operator_ && *s->operator_ && s->subscriber_id && *s->subscriber_id &&
           s->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
}

static kafka_verdict on_consent(notifier *n, const rd_kafka_message_t *msg, char *err,
                                size_t errlen) {
    Millom__V1__ConsentChange *c = millom__v1__consent_change__unpack(NULL, msg->len, msg->payload);
    if (!c) {
        snprintf(err, errlen, "not a millom.v1.ConsentChange");
        return KAFKA_DEAD_LETTER;
    }
    kafka_verdict v = KAFKA_DONE;
    if (!c->service_provider || !*c->service_provider || !has_subscriber(c->subscriber)) {
        snprintf(err, errlen, "consent change lacks provider or MSISDN subscriber");
        reply_error(n, c->meta, CAUSE_BAD_REQUEST, err);
        v = KAFKA_DEAD_LETTER;
        goto out;
    }
    if (c->opt_out_type && *c->opt_out_type) {
        if (consent_opt_out(n, c->service_provider, c->subscriber->operator_,
                            c->subscriber->subscriber_id, c->opt_out_type,
                            c->occurred_at_ms) != 0) {
            v = KAFKA_RETRY;
            goto out;
        }
        log_debug("opt-out of %s from %s", c->opt_out_type, c->service_provider);
        reply(n, c->meta, 200, "");
        goto out;
    }
    json_t *types = json_array();
    for (size_t i = 0; i < c->n_types; i++) json_array_append_new(types, json_string(c->types[i]));
    char *types_text = json_dumps(types, JSON_COMPACT);
    json_decref(types);
    int rc = types_text ? consent_put(n, c->service_provider, c->subscriber->operator_,
                                      c->subscriber->subscriber_id, types_text,
                                      c->language && *c->language ? c->language : "en",
                                      c->transaction_id ? c->transaction_id : "", c->occurred_at_ms)
                        : -1;
    free(types_text);
    if (rc != 0) {
        v = KAFKA_RETRY; /* the store failed: try again, reply then */
        goto out;
    }
    log_debug("consent of %s: %zu types", c->service_provider, c->n_types);
    reply(n, c->meta, 200, "");
out:
    millom__v1__consent_change__free_unpacked(c, NULL);
    return v;
}

static kafka_verdict on_cpid_registration(notifier *n, const rd_kafka_message_t *msg, char *err,
                                          size_t errlen) {
    Millom__V1__CpidRegistration *r =
        millom__v1__cpid_registration__unpack(NULL, msg->len, msg->payload);
    if (!r) {
        snprintf(err, errlen, "not a millom.v1.CpidRegistration");
        return KAFKA_DEAD_LETTER;
    }
    kafka_verdict v = KAFKA_DONE;
    if (!r->service_provider || !*r->service_provider || !has_subscriber(r->subscriber) ||
        !r->cpid || !*r->cpid) {
        snprintf(err, errlen, "CPID registration lacks provider, MSISDN subscriber or CPID");
        reply_error(n, r->meta, CAUSE_BAD_REQUEST, err);
        v = KAFKA_DEAD_LETTER;
    } else if (cpid_registration_put(n, r->service_provider, r->subscriber->operator_,
                                     r->subscriber->subscriber_id, r->cpid, r->expires_at_ms,
                                     r->occurred_at_ms) != 0) {
        v = KAFKA_RETRY;
    } else {
        reply(n, r->meta, 200, "");
    }
    millom__v1__cpid_registration__free_unpacked(r, NULL);
    return v;
}

static kafka_verdict on_consent_query(notifier *n, const rd_kafka_message_t *msg, char *err,
                                      size_t errlen) {
    Millom__V1__ConsentQuery *q = millom__v1__consent_query__unpack(NULL, msg->len, msg->payload);
    if (!q) {
        snprintf(err, errlen, "not a millom.v1.ConsentQuery");
        return KAFKA_DEAD_LETTER;
    }
    kafka_verdict v = KAFKA_DONE;
    if (!q->meta || !q->meta->correlation_id || !*q->meta->correlation_id || !q->operator_ ||
        !*q->operator_ || !q->msisdn || !*q->msisdn) {
        snprintf(err, errlen, "consent query lacks meta, operator or msisdn");
        v = KAFKA_DEAD_LETTER;
    } else if (!rpc_expired(q->meta)) {
        json_t *j = consents_lookup(n, q->operator_, q->msisdn, q->service_provider);
        char *body = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (body)
            reply(n, q->meta, 200, body);
        else
            reply_error(n, q->meta, CAUSE_UNSPECIFIED, "the consent store failed");
        free(body);
    }
    millom__v1__consent_query__free_unpacked(q, NULL);
    return v;
}

static kafka_verdict dispatch(notifier *n, const rd_kafka_message_t *msg, char *err, size_t errlen);

kafka_verdict notifier_on_message(void *arg, const rd_kafka_message_t *msg, char *err,
                                  size_t errlen) {
    notifier *n = arg;
    changelog_set_partition(msg->partition); /* rows written now belong to it */
    kafka_verdict v = dispatch(n, msg, err, errlen);
    changelog_set_partition(-1);
    return v;
}

void notifier_on_assign(void *arg, const rd_kafka_topic_partition_list_t *parts) {
    notifier *n = arg;
    changelog_take_over(n->follower, n->db, parts, NOTIFIER_HOME_TOPIC);
    delivery_worker_wake(n->worker); /* the previous owner's queue is ours now */
}

void notifier_on_revoke(void *arg, const rd_kafka_topic_partition_list_t *parts) {
    notifier *n = arg;
    changelog_own(n->db, parts, NOTIFIER_HOME_TOPIC, 0);
    if (delivery_worker_quiesce(n->worker, 10000) != 0)
        log_warn("revoke: a webhook delivery is still running; the next owner may repeat it");
    if (outbox_flush(n->outbox, n->db, 10000) != 0)
        log_warn("revoke: changelog not fully delivered within 10 s");
}

int notifier_before_commit(void *arg) {
    notifier *n = arg;
    return outbox_flush(n->outbox, n->db, 5000);
}

static kafka_verdict dispatch(notifier *n, const rd_kafka_message_t *msg, char *err,
                              size_t errlen) {
    const char *topic = rd_kafka_topic_name(msg->rkt);
    if (strcmp(topic, TOPIC_CONSENTS) == 0) return on_consent(n, msg, err, errlen);
    if (strcmp(topic, TOPIC_CPID_REGISTRATIONS) == 0)
        return on_cpid_registration(n, msg, err, errlen);
    if (strcmp(topic, TOPIC_CONSENT_QUERIES) == 0) return on_consent_query(n, msg, err, errlen);
    if (strcmp(topic, TOPIC_SUBSCRIBER_EVENTS) == 0)
        return notify_on_subscriber_event(n, msg, err, errlen);
    if (strcmp(topic, TOPIC_PURCHASE_EVENTS) == 0)
        return notify_on_purchase_event(n, msg, err, errlen);
    if (strcmp(topic, TOPIC_TOPUP_EVENTS) == 0) return notify_on_topup_event(n, msg, err, errlen);
    snprintf(err, errlen, "notifier does not read topic %s", topic);
    return KAFKA_DEAD_LETTER;
}
