/* Subscriber events (millom.subscriber.events) become queued rich
 * notifications; final purchase events become queued purchase callbacks.
 *
 * A SubscriberEvent comes from api-edge's Notification API (with meta: the
 * verdict goes back on millom.replies and api-edge relays it) or straight
 * from an operator (no meta: the same rules, the verdict is only logged).
 * Rules, in this order:
 *   - the same (operator, transactionId) was accepted before -> 409 (a
 *     redelivery of the very request that was accepted, same correlation
 *     id, gets its 202 again);
 *   - the subscriber is unknown to notifier (no consent ever recorded at
 *     this operator) -> 404;
 *   - no provider consented to this NotificationType (or every consent
 *     to it expired, MILLOM_CONSENT_TTL_DAYS after its last registration,
 *     or the subscriber opted out of it with the unsubscribe link) -> 403
 *     NO_CONSENT;
 *   - every consenting provider already got MILLOM_NOTIFY_QUOTA (3)
 *     notifications of this type for the subscriber within
 *     MILLOM_NOTIFY_QUOTA_WINDOW_S (86400) -> 429 QUOTA_EXCEEDED
 *     (override=true skips the quota, at most MILLOM_NOTIFY_OVERRIDE_MAX (2)
 *     times per operator and subscriber within the window; past that the
 *     override is ignored and the quota applies);
 *   - otherwise one delivery per consenting provider under its quota is
 *     inserted into the delivery queue in the same SQLite transaction as
 *     the de-duplication record and the quota usage -> 202.
 *
 * The queued notification body: {eventType, transactionId, cpid, offers: [],
 * "_millom": {operator, msisdn, language}}, the CPID a fresh one issued for
 * that provider. The delivery worker fills the offers (from offer-resolver)
 * and the signed refresh, ping and shop links at delivery time, and drops
 * the private "_millom" part (rich_notification.c). */
#include "notifier.h"
#include "shared/plumbing/correlator.h"
#include "shared/contracts/cpid.h"
#include "shared/plumbing/log.h"
#include "shared/contracts/money.h"
#include "shared/contracts/msisdn.h"
#include "shared/contracts/topup_state.h"
#include "shared/plumbing/errors.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/stmt_cache.h"
#include "shared/plumbing/store.h"
#include "millom/v1/purchase.pb-c.h"
#include "millom/v1/topup.pb-c.h"
#include "millom/v1/subscriber.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const notification_types[] = {
    "low-data",        "out-of-data",  "pay-as-you-go",    "pack-near-consumption",
    "pack-consumed",   "pack-expired", "pack-near-expiry", "low-monetary-balance",
    "monetary-reload", NULL,
};

static int known_type(const char *s) {
    for (const char *const *t = notification_types; s && *t; t++)
        if (strcmp(*t, s) == 0) return 1;
    return 0;
}

static void answer(notifier *n, const Millom__V1__SubscriberEvent *ev, const notify_verdict *v) {
    const Millom__V1__RequestMeta *meta = ev->meta;
    if (!meta || !meta->correlation_id || !*meta->correlation_id) {
        log_info("subscriber event %s (%s): %d %s", ev->transaction_id ? ev->transaction_id : "",
                 ev->type ? ev->type : "", v->status, v->description);
        return;
    }
    if (rpc_expired(meta)) return;
    char *body = NULL;
    if (v->status == 400) {
        body = error_document_text(CAUSE_BAD_REQUEST, v->description);
    } else if (v->error_type) {
        json_t *j =
            json_pack("{s:s, s:s}", "errorType", v->error_type, "description", v->description);
        body = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
    }
    if (notifier_reply(n, meta, v->status, body ? "application/json" : "", body ? body : "",
                       body ? strlen(body) : 0, 0) != 0)
        log_warn("cannot produce the reply for %s", meta->correlation_id);
    free(body);
}

#define VERDICT(v, st, type, ...)                                        \
    do {                                                                 \
        (v)->status = (st);                                              \
        (v)->error_type = (type);                                        \
        snprintf((v)->description, sizeof(v)->description, __VA_ARGS__); \
    } while (0)

static const char *provider_url(const tenants *t, const char *provider, const char *op,
                                const char *field) {
    const tenant_provider *p = tenants_provider(t, provider);
    if (!p || (op && !tenants_provider_uses(p, op))) return NULL;
    const char *url = json_string_value(json_object_get(p->json, field));
    return url && *url ? url : NULL;
}

static int64_t count_one(sqlite3 *db, const char *sql, const char *a, const char *b, const char *c,
                         int64_t d) {
    sqlite3_stmt *st;
    if (!(st = stmt_get(db, sql))) return -1;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    if (c) sqlite3_bind_text(st, 3, c, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, d);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    stmt_done(db, st);
    return v;
}

/* Queues one delivery (INSERT OR IGNORE on dedup_key when given), under
 * the request id of the message being handled: the webhook carries it. 0
 * or -1. */
static int queue_delivery(sqlite3 *db, const char *kind, const char *provider, const char *url,
                          const char *body, const char *dedup_key, int64_t now) {
    sqlite3_stmt *st;
    if (!(st = stmt_get(db, "INSERT OR IGNORE INTO deliveries (kind, provider, url, body, "
                            "dedup_key, next_ms, created_ms, correlator) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)")))
        return -1;
    const char *correlator = correlator_current();
    if (*correlator)
        sqlite3_bind_text(st, 7, correlator, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
    if (dedup_key)
        sqlite3_bind_text(st, 5, dedup_key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, now);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    stmt_done(db, st);
    return rc;
}

static int exec_bind(sqlite3 *db, const char *sql, const char *a, const char *b, const char *c,
                     const char *d, int64_t e) {
    sqlite3_stmt *st;
    if (!(st = stmt_get(db, sql))) return -1;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, e);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    stmt_done(db, st);
    return rc;
}

/* The store part of the rules, inside one transaction. 0 with the
 * verdict set, or -1 on a store error (rolled back; retry). */
static int decide(notifier *n, const Millom__V1__SubscriberEvent *ev, const tenant_operator *op,
                  const char *msisdn, notify_verdict *v, int *queued) {
    sqlite3 *db = n->db;
    const char *tid = ev->transaction_id, *type = ev->type;
    const char *correlation = ev->meta && ev->meta->correlation_id ? ev->meta->correlation_id : "";
    int64_t now = now_ms();
    *queued = 0;
    if (store_begin(db) != SQLITE_OK) return -1;

    sqlite3_stmt *st = NULL;
    if (!(st = stmt_get(db, "SELECT correlation_id FROM notify_dedup "
                            "WHERE operator=?1 AND transaction_id=?2")))
        goto fail;
    sqlite3_bind_text(st, 1, op->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *prev = (const char *)sqlite3_column_text(st, 0);
        if (*correlation && prev && strcmp(prev, correlation) == 0)
            VERDICT(v, 202, NULL, "queued (redelivered request)");
        else
            VERDICT(v, 409, "INTERNAL_ERROR", "duplicate transactionId '%.128s'", tid);
        stmt_done(db, st);
        store_rollback(db);
        return 0;
    }
    stmt_done(db, st);
    st = NULL;
    if (rc != SQLITE_DONE) goto fail;

    int skip_quota = ev->override;
    if (skip_quota) {
        int64_t overrides = count_one(db,
                                      "SELECT count(*) FROM notify_dedup WHERE msisdn=?1 AND "
                                      "operator=?2 AND override=1 AND created_ms>?4",
                                      msisdn, op->id, NULL, now - n->quota_window_ms);
        if (overrides < 0) goto fail;
        if (overrides >= n->override_max) {
            log_info("operator %s: override=true ignored, %ld overrides already used for this "
                     "subscriber in the window",
                     op->id, n->override_max);
            skip_quota = 0;
        }
    }

    if (!(st = stmt_get(
              db, "SELECT provider, language FROM consents WHERE msisdn=?1 AND operator=?2 AND "
                  "EXISTS (SELECT 1 FROM json_each(consents.types) WHERE value=?3) "
                  "AND json_extract(consents.opt_outs, '$.\"' || ?3 || '\"') IS NULL "
                  "AND updated_ms > ?4 ORDER BY provider")))
        goto fail;
    sqlite3_bind_text(st, 1, msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
    /* Expired consents do not count (a notifier without a TTL: none expire). */
    sqlite3_bind_int64(st, 4, n->consent_ttl_ms > 0 ? now - n->consent_ttl_ms : INT64_MIN);
    int consenting = 0, failed = 0;
    while (!failed && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *provider = (const char *)sqlite3_column_text(st, 0);
        const char *language = (const char *)sqlite3_column_text(st, 1);
        const char *url = provider_url(n->tenants, provider, op->id, "notificationUrl");
        if (!url) {
            log_warn("provider %s consented but has no notificationUrl for %s", provider, op->id);
            continue;
        }
        consenting++;
        if (!skip_quota) {
            int64_t used = count_one(db,
                                     "SELECT count(*) FROM notify_usage WHERE msisdn=?1 AND "
                                     "provider=?2 AND type=?3 AND sent_ms>?4",
                                     msisdn, provider, type, now - n->quota_window_ms);
            if (used < 0) {
                failed = 1;
                break;
            }
            if (used >= n->quota) continue;
        }
        char cpid[CPID_MAX_LEN];
        if (cpid_issue(cpid_config_default(), msisdn, provider, op->mccmnc, now, cpid,
                       sizeof cpid) != 0) {
            failed = 1;
            break;
        }
        /* offers, refresh, ping, shop: added at delivery time. */
        json_t *j = json_pack("{s:s, s:s, s:s, s:[], s:{s:s, s:s, s:s}}", "eventType", type,
                              "transactionId", tid, "cpid", cpid, "offers", "_millom", "operator",
                              op->id, "msisdn", msisdn, "language", language ? language : "");
        char *body = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (!body || queue_delivery(db, "notification", provider, url, body, NULL, now) != 0 ||
            exec_bind(db,
                      "INSERT INTO notify_usage (msisdn, provider, type, sent_ms) "
                      "VALUES (?1, ?2, ?3, ?5)",
                      msisdn, provider, type, NULL, now) != 0)
            failed = 1;
        free(body);
        if (!failed) (*queued)++;
    }
    stmt_done(db, st);
    st = NULL;
    if (failed || (rc != SQLITE_DONE && rc != SQLITE_ROW)) goto fail;
    /* No consent to this type: 404 when the subscriber is not known at all
     * (asked only now: a consenting subscriber is known, the usual case),
     * else 403. */
    if (consenting == 0) {
        int64_t known = count_one(db,
                                  "SELECT count(*) FROM consents WHERE msisdn=?1 AND operator=?2 "
                                  "AND ?4=?4",
                                  msisdn, op->id, NULL, 0);
        if (known < 0) goto fail;
        if (known == 0)
            VERDICT(v, 404, "NO_CPID", "the subscriber is not known to Millom");
        else
            VERDICT(v, 403, "NO_CONSENT",
                    "the subscriber has not consented to notifications of type %s", type);
        store_rollback(db);
        return 0;
    }
    if (*queued == 0) {
        VERDICT(v, 429, "QUOTA_EXCEEDED", "notification quota exceeded for this subscriber");
        store_rollback(db);
        return 0;
    }
    if (exec_bind(db,
                  skip_quota ? "INSERT INTO notify_dedup (operator, transaction_id, "
                               "correlation_id, msisdn, created_ms, override) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, 1)"
                             : "INSERT INTO notify_dedup (operator, transaction_id, "
                               "correlation_id, msisdn, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                  op->id, tid, correlation, msisdn, now) != 0 ||
        store_commit(db) != SQLITE_OK)
        goto fail;
    VERDICT(v, 202, NULL, "queued for %d provider(s)", *queued);
    return 0;
fail:
    log_warn("notification store: %s", sqlite3_errmsg(db));
    stmt_done(db, st);
    store_rollback(db);
    *queued = 0;
    return -1;
}

int notify_decide(notifier *n, const Millom__V1__SubscriberEvent *ev, notify_verdict *v,
                  int *queued) {
    memset(v, 0, sizeof *v);
    *queued = 0;
    const Millom__V1__SubscriberRef *sub = ev->subscriber;
    const char *op_id = ev->operator_ && *ev->operator_ ? ev->operator_
                        : sub && sub->operator_         ? sub->operator_
                                                        : "";
    const tenant_operator *op = tenants_operator(n->tenants, op_id);
    size_t tlen = ev->transaction_id ? strlen(ev->transaction_id) : 0;
    char msisdn[16] = "";
    if (!op || !sub || !sub->subscriber_id || !known_type(ev->type) || tlen < 3 || tlen > 128) {
        VERDICT(v, 400, NULL,
                "a SubscriberEvent needs a known operator, a subscriber, a NotificationType "
                "and a transaction id of 3 to 128 characters");
        return 0;
    }
    if (sub->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_CPID) {
        cpid_info info;
        cpid_status st = cpid_decode(cpid_config_default(), sub->subscriber_id, now_ms(), &info);
        if (st != CPID_OK || strcmp(info.mccmnc, op->mccmnc) != 0) {
            VERDICT(v, 409, "NO_CPID", "subscriber: %s",
                    st != CPID_OK ? cpid_status_text(st) : "not a CPID of this operator");
            return 0;
        }
        snprintf(msisdn, sizeof msisdn, "%s", info.msisdn);
    } else if (sub->key_type != MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN) {
        VERDICT(v, 409, "NO_CPID", "this flow does not support this type of user id");
        return 0;
    } else if (!msisdn_normalize(sub->subscriber_id, msisdn, sizeof msisdn) ||
               strncmp(msisdn, op->country_code, strlen(op->country_code)) != 0) {
        VERDICT(v, 404, "NO_CPID", "the subscriber is not a number of operator %s", op->id);
        return 0;
    }
    return decide(n, ev, op, msisdn, v, queued);
}

kafka_verdict notify_on_subscriber_event(notifier *n, const rd_kafka_message_t *msg, char *err,
                                         size_t errlen) {
    Millom__V1__SubscriberEvent *ev =
        millom__v1__subscriber_event__unpack(NULL, msg->len, msg->payload);
    if (!ev) {
        snprintf(err, errlen, "not a millom.v1.SubscriberEvent");
        return KAFKA_DEAD_LETTER;
    }
    notify_verdict v;
    int queued = 0;
    if (notify_decide(n, ev, &v, &queued) != 0) {
        millom__v1__subscriber_event__free_unpacked(ev, NULL);
        return KAFKA_RETRY; /* the store failed: try again, answer then */
    }
    if (queued) delivery_worker_wake(n->worker);
    answer(n, ev, &v);
    millom__v1__subscriber_event__free_unpacked(ev, NULL);
    if (v.status == 400) { /* malformed: nothing to retry, keep it in the DLQ */
        snprintf(err, errlen, "%s", v.description);
        return KAFKA_DEAD_LETTER;
    }
    return KAFKA_DONE;
}

kafka_verdict notify_on_purchase_event(notifier *n, const rd_kafka_message_t *msg, char *err,
                                       size_t errlen) {
    Millom__V1__PurchaseEvent *ev =
        millom__v1__purchase_event__unpack(NULL, msg->len, msg->payload);
    if (!ev) {
        snprintf(err, errlen, "not a millom.v1.PurchaseEvent");
        return KAFKA_DEAD_LETTER;
    }
    kafka_verdict kv = KAFKA_DONE;
    int completed = ev->state == MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED;
    int failed = ev->state == MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_FAILED;
    const char *url = ev->service_provider && ev->transid && *ev->transid
                          ? provider_url(n->tenants, ev->service_provider, NULL, "callbackUrl")
                          : NULL;
    /* The provider had this outcome in its purchasePlan answer: a callback
     * is owed only for a 202 "processing" answer, unless it asked for all. */
    if (url && ev->outcome_answered) {
        const tenant_provider *sp = tenants_provider(n->tenants, ev->service_provider);
        if (!sp || !sp->callbacks_for_answered) url = NULL;
    }
    if ((completed || failed) && url) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "transactionId", ev->transid, "appId",
                              ev->service_provider, "message",
                              ev->message && *ev->message ? ev->message
                              : completed                 ? "COMPLETED"
                                                          : "FAILED");
        if (failed && ev->error_type && *ev->error_type)
            json_object_set_new(j, "errorType", json_string(ev->error_type));
        /* The operator's own detail (millom-callback.yaml), as it sent it. */
        if (ev->error_code && *ev->error_code)
            json_object_set_new(j, "errorCode", json_string(ev->error_code));
        if (ev->redirect_link && *ev->redirect_link)
            json_object_set_new(j, "redirectLink", json_string(ev->redirect_link));
        char *body = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        char key[400];
        snprintf(key, sizeof key, "callback:%s:%s:%s", ev->service_provider, ev->transid,
                 completed ? "COMPLETED" : "FAILED");
        if (!body || queue_delivery(n->db, "callback", ev->service_provider, url, body, key,
                                    now_ms()) != 0) {
            log_warn("cannot queue the callback of %s: %s", ev->transid, sqlite3_errmsg(n->db));
            kv = KAFKA_RETRY;
        } else {
            log_debug("purchase %s/%s %s: callback to the provider queued", ev->service_provider,
                      ev->transid, completed ? "completed" : "failed");
            delivery_worker_wake(n->worker);
        }
        free(body);
    }
    millom__v1__purchase_event__free_unpacked(ev, NULL);
    return kv;
}

kafka_verdict notify_on_topup_event(notifier *n, const rd_kafka_message_t *msg, char *err,
                                    size_t errlen) {
    Millom__V1__TopupEvent *ev = millom__v1__topup_event__unpack(NULL, msg->len, msg->payload);
    if (!ev) {
        snprintf(err, errlen, "not a millom.v1.TopupEvent");
        return KAFKA_DEAD_LETTER;
    }
    kafka_verdict kv = KAFKA_DONE;
    /* a callback for a final state only */
    const char *status = topup_state_is_final(ev->state) ? topup_state_name(ev->state) : NULL;
    const char *url = NULL;
    if (status && *ev->topup_id && *ev->service_provider) {
        url = provider_url(n->tenants, ev->service_provider, NULL, "topupCallbackUrl");
        if (!url) url = provider_url(n->tenants, ev->service_provider, NULL, "callbackUrl");
    }
    if (url) {
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:s}", "topupId", ev->topup_id, "partnerReference",
                      ev->partner_reference, "appId", ev->service_provider, "status", status);
        char value[40];
        if (j && ev->amount_minor > 0 &&
            money_format(ev->amount_minor, ev->currency_scale, value, sizeof value) > 0)
            json_object_set_new(j, "amount",
                                json_pack("{s:s, s:s}", "value", value, "currency", ev->currency));
        if (j && *ev->error) json_object_set_new(j, "errorType", json_string(ev->error));
        char *body = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        char key[200];
        snprintf(key, sizeof key, "topup:%s:%s", ev->topup_id, status);
        if (!body || queue_delivery(n->db, "callback", ev->service_provider, url, body, key,
                                    now_ms()) != 0) {
            log_warn("cannot queue the top-up callback of %s: %s", ev->topup_id,
                     sqlite3_errmsg(n->db));
            kv = KAFKA_RETRY;
        } else {
            log_debug("topup %s %s: callback to the provider queued", ev->topup_id, status);
            delivery_worker_wake(n->worker);
        }
        free(body);
    }
    millom__v1__topup_event__free_unpacked(ev, NULL);
    return kv;
}
