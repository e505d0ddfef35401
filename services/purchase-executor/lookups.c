/* millom.purchase.lookups: the management API's purchase look-ups for an
 * operator, and a provider's look-up of its own purchase, answered as JSON
 * on millom.replies.
 *   provider's (subscriber set; GET /std/.../purchasePlan/{transid}): the
 *     purchase of (serviceProvider, transid) of that operator and
 *     subscriber -> 200 {"transid","status" (completed|processing|failed,
 *     the ActivationResponse's words),"planId","fundSource",
 *     "confirmationCode","errorType","errorCode","redirectLink",
 *     "createdAt","updatedAt","completedAt"} (the optional ones when set);
 *     anything else -> 404 NOT_FOUND "no such purchase", the same for
 *     another provider's transid as for none.
 *   by transid (+ operator, optional serviceProvider): the operator's
 *     transId (what the operator was sent) or a provider's transid:
 *     one purchase -> 200 {purchase}; none -> 404 ErrorDocument NOT_FOUND
 *     "no such purchase". Should several purchases match (providers may
 *     share a transid) -> 200 {"purchases":[...]}.
 *   by msisdn (+ optional from/to on the creation time, inclusive, 0 =
 *     open; optional serviceProvider) -> 200 {"purchases":[...]}, oldest
 *     first, at most 1000.
 *   overdue (+ optional serviceProvider): the operator's purchases still
 *     not final (received, activating, pending) MILLOM_PENDING_MAX_AGE_S
 *     after their creation, for a human to act on -> 200
 *     {"overdueAfterSeconds": N, "purchases":[...]}, oldest first, at most
 *     1000. Every instance holds a copy of all rows (changelog), so any
 *     instance can answer.
 * A purchase: {"transid","operatorTransId","serviceProvider","operator","subscriberId",
 * "planId","price":"160.00","currency","fundSource","state",
 * "confirmationCode","errorType","createdAt","updatedAt","completedAt",
 * "attempts","nextCheckAt"}; price at the operator's currency scale; times
 * RFC 3339 UTC with milliseconds; confirmationCode, errorType and
 * completedAt only when set; nextCheckAt (when the operator is asked again:
 * an activation retry or a pending re-check) only while not final. The MSISDN is shown in full: the management API is scoped to the
 * subscriber's own operator. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shared/plumbing/errors.h"
#include "shared/plumbing/clock.h"
#include "shared/contracts/money.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/service.h"

#define LOOKUP_MAX 1000

static json_t *time_json(int64_t ms) {
    char buf[40];
    clock_rfc3339_ms(ms, buf, sizeof buf);
    return json_string(buf);
}

/* json_string() refuses bytes that are not UTF-8; stored texts came from
 * validated JSON or protobuf, but never fail a look-up over it. */
static json_t *text(const char *s) {
    json_t *j = json_string(s);
    return j ? j : json_string("?");
}

json_t *purchase_to_json(const purchase *p, int currency_scale) {
    json_t *o = json_object();
    if (!o) return NULL;
    char price[48];
    if (money_format(p->price_minor, currency_scale, price, sizeof price) < 0)
        snprintf(price, sizeof price, "%lld", (long long)p->price_minor);
    json_object_set_new(o, "transid", text(p->transid));
    json_object_set_new(o, "operatorTransId", text(p->op_transid));
    json_object_set_new(o, "serviceProvider", text(p->service_provider));
    json_object_set_new(o, "operator", text(p->op));
    json_object_set_new(o, "subscriberId", text(p->subscriber));
    json_object_set_new(o, "planId", text(p->plan_id));
    json_object_set_new(o, "price", json_string(price));
    json_object_set_new(o, "currency", text(p->currency));
    json_object_set_new(o, "fundSource", text(p->fund_source));
    json_object_set_new(o, "state", json_string(purchase_state_name(p->state)));
    if (p->confirmation_code[0])
        json_object_set_new(o, "confirmationCode", text(p->confirmation_code));
    if (p->error_type[0]) json_object_set_new(o, "errorType", text(p->error_type));
    json_object_set_new(o, "createdAt", time_json(p->created_ms));
    json_object_set_new(o, "updatedAt", time_json(p->updated_ms));
    if (p->completed_ms) json_object_set_new(o, "completedAt", time_json(p->completed_ms));
    json_object_set_new(o, "attempts", json_integer(p->attempts));
    if (!PS_FINAL(p->state) && p->next_attempt_ms > 0)
        json_object_set_new(o, "nextCheckAt", time_json(p->next_attempt_ms));
    return o;
}

typedef struct {
    purchase_flow *f;
    json_t *list;
} collect;

static void collect_one(void *arg, const purchase *p) {
    collect *c = arg;
    const tenant_operator *op = tenants_operator(c->f->tenants, p->op);
    json_t *j = purchase_to_json(p, op ? op->currency_scale : 2);
    if (j) json_array_append_new(c->list, j);
}

static void reply_json(purchase_flow *f, const Millom__V1__RequestMeta *meta, int status,
                       json_t *body) {
    char *textbody = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!textbody) {
        char *e = error_document_text(CAUSE_UNSPECIFIED, "out of memory");
        flow_reply(f, meta, 500, e);
        free(e);
        return;
    }
    flow_reply(f, meta, status, textbody);
    free(textbody);
}

static void reply_error(purchase_flow *f, const Millom__V1__RequestMeta *meta, const char *cause,
                        const char *message) {
    char *body = error_document_text(cause, message);
    flow_reply(f, meta, error_status(cause), body);
    free(body);
}

json_t *purchase_status_json(const purchase *p) {
    const char *status = p->state == PS_COMPLETED ? "completed"
                         : p->state == PS_FAILED  ? "failed"
                                                  : "processing";
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "transid", text(p->transid));
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "planId", text(p->plan_id));
    json_object_set_new(o, "fundSource", text(p->fund_source));
    if (p->confirmation_code[0])
        json_object_set_new(o, "confirmationCode", text(p->confirmation_code));
    if (p->error_type[0]) json_object_set_new(o, "errorType", text(p->error_type));
    if (p->error_code[0]) json_object_set_new(o, "errorCode", text(p->error_code));
    if (p->redirect_link[0]) json_object_set_new(o, "redirectLink", text(p->redirect_link));
    json_object_set_new(o, "createdAt", time_json(p->created_ms));
    json_object_set_new(o, "updatedAt", time_json(p->updated_ms));
    if (p->completed_ms) json_object_set_new(o, "completedAt", time_json(p->completed_ms));
    return o;
}

int purchase_status_visible(const purchase *p, const char *op, const Millom__V1__SubscriberRef *s) {
    const char *key_type = s->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_OPET     ? "OPET"
                           : s->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN ? "MSISDN"
                                                                                  : NULL;
    return key_type && op && s->subscriber_id && strcmp(p->op, op) == 0 &&
           strcmp(p->key_type, key_type) == 0 && strcmp(p->subscriber, s->subscriber_id) == 0;
}

/* A provider's look-up of its own purchase: the purchase of (provider,
 * transid) when it is of the operator and subscriber asked about; any
 * other purchase, another provider's included, is the 404 of none, so a
 * provider learns nothing of transids that are not its own. */
static void provider_status(purchase_flow *f, const Millom__V1__PurchaseLookup *l) {
    if (!l->service_provider || !*l->service_provider || !l->transid || !*l->transid) {
        reply_error(f, l->meta, CAUSE_BAD_REQUEST, "serviceProvider and transid are required");
        return;
    }
    purchase p = {0};
    sqlite3 *db = store_pool_take(f->db_pool);
    int n = purchase_get(db, l->service_provider, l->transid, &p);
    store_pool_give(f->db_pool, db);
    if (n < 0)
        reply_error(f, l->meta, CAUSE_SERVICE_UNAVAILABLE, "purchase store unavailable");
    else if (n == 0 || !purchase_status_visible(&p, l->operator_, l->subscriber))
        reply_error(f, l->meta, CAUSE_NOT_FOUND, "no such purchase");
    else
        reply_json(f, l->meta, 200, purchase_status_json(&p));
    purchase_clear(&p);
}

kafka_verdict handle_lookup(purchase_flow *f, const void *payload, size_t len, char *err,
                            size_t errlen) {
    Millom__V1__PurchaseLookup *l =
        millom__v1__purchase_lookup__unpack(NULL, len, (const uint8_t *)payload);
    if (!l) {
        snprintf(err, errlen, "not a millom.v1.PurchaseLookup");
        return KAFKA_DEAD_LETTER;
    }
    const Millom__V1__RequestMeta *meta = l->meta;
    if (!meta || !meta->correlation_id || !*meta->correlation_id || rpc_expired(meta))
        goto out; /* nobody waits for the answer */
    if (!l->operator_ || !*l->operator_) {
        reply_error(f, meta, CAUSE_BAD_REQUEST, "operator is required");
        goto out;
    }
    if (l->subscriber) {
        provider_status(f, l);
        goto out;
    }
    const char *sp = l->service_provider && *l->service_provider ? l->service_provider : NULL;
    collect c = {f, json_array()};
    if (!c.list) goto out;
    int n;
    /* Held across the look-up and its answer: collecting and producing
     * wait on nothing. */
    sqlite3 *db = store_pool_take(f->db_pool);
    if (l->transid && *l->transid) {
        n = purchase_find_transid(db, l->operator_, l->transid, sp, LOOKUP_MAX, collect_one, &c);
        if (n == 0) {
            reply_error(f, meta, CAUSE_NOT_FOUND, "no such purchase");
        } else if (n == 1) {
            json_t *one = json_incref(json_array_get(c.list, 0));
            reply_json(f, meta, 200, one);
        } else if (n > 1) {
            reply_json(f, meta, 200, json_pack("{s:O}", "purchases", c.list));
        }
    } else if (l->overdue) {
        int64_t max_age_ms = (int64_t)f->cfg.pending_max_age_s * 1000;
        n = purchase_find_overdue(db, l->operator_, sp, now_ms() - max_age_ms, LOOKUP_MAX,
                                  collect_one, &c);
        if (n >= 0)
            reply_json(f, meta, 200,
                       json_pack("{s:I, s:O}", "overdueAfterSeconds",
                                 (json_int_t)f->cfg.pending_max_age_s, "purchases", c.list));
    } else if (l->msisdn && *l->msisdn) {
        n = purchase_find_subscriber(db, l->operator_, l->msisdn, sp, l->from_ms, l->to_ms,
                                     LOOKUP_MAX, collect_one, &c);
        if (n >= 0) reply_json(f, meta, 200, json_pack("{s:O}", "purchases", c.list));
    } else {
        n = 0;
        reply_error(f, meta, CAUSE_BAD_REQUEST, "transid, msisdn or overdue is required");
    }
    store_pool_give(f->db_pool, db);
    if (n < 0) reply_error(f, meta, CAUSE_SERVICE_UNAVAILABLE, "purchase store unavailable");
    json_decref(c.list);
out:
    millom__v1__purchase_lookup__free_unpacked(l, NULL);
    return KAFKA_DONE;
}
