/* millom.purchase.commands: one PurchaseCommand from api-edge.
 *
 * 1. A known (service provider, transid) is answered from the store and
 *    never activated again here: a different body (fingerprint) is 409
 *    PURCHASE_CONFLICT; a final purchase gets its original answer byte for
 *    byte (same confirmationCode); one still activating or pending gets
 *    202 processing.
 * 2. A new one is checked: the operator and provider must be configured
 *    (and the provider allowed to use the operator); the price comes from
 *    the offerContext when there is one, else from the operator's current
 *    offers (GET /offers). A price signed by Millom in the offerContext is
 *    the price the SP showed the subscriber, so it is the price recorded
 *    for the purchase and the one settlement uses, even if the operator's
 *    list price moved meanwhile.
 * 3. Atomically (one savepoint in the writes thread's transaction, see
 *    flow_create): the idempotency check again, the purchase timer, the
 *    insert (activating) and its ACTIVATING event.
 *    The operator gets a transId derived from (provider, transid)
 *    (purchase_operator_transid), stored with the row: providers' transids
 *    never collide at the operator, and a provider learns nothing about
 *    another's. The purchase timer applies to the subscriber and plan
 *    whoever bought (the Sandbox doc's timer is Millom's, not a
 *    provider's); its 409 says the same whether the earlier purchase was
 *    this provider's or another's. Commands are keyed by transid, so
 *    repeats of one transid reach one lane of one consumer, in order;
 *    different transids (of one subscriber, too) may run at once in other
 *    lanes (MILLOM_EXECUTOR_LANES), but the checks and the insert run
 *    together on the one writes thread (writes one at a time), so two purchases
 *    cannot both pass the timer or both activate one transid. A busy
 *    store is KAFKA_RETRY: the command comes again.
 * 4. Only after that commit is the operator called (POST /activate); the
 *    outcome, its event and the stored answer commit together, then (for
 *    a completed purchase) the cache invalidation is delivered, then the
 *    SP is answered, then the offset is committed (KAFKA_DONE). An
 *    outcome answered here is marked outcome_answered: notifier sends no
 *    callback for it, unless api-edge says it answered 202 after all
 *    (answered_processing, handle_answered_processing).
 *
 * A dry-run command (eligibility) stops after the checks of 2 and 3 (see
 * eligibility.c).
 *
 * A crash anywhere leaves a state the restart finishes: before the insert
 * the command is redelivered and starts afresh; after it the row is
 * activating, the redelivered command answers 202, and the retry thread
 * resumes the activation with the same transId. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/errors.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/log.h"
#include "shared/contracts/fund_source.h"
#include "shared/contracts/offer_context.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/text.h"

static void reply_error(purchase_flow *f, const Millom__V1__RequestMeta *meta, const char *cause,
                        const char *message) {
    char *body = response_error(cause, message);
    flow_reply(f, meta, error_status(cause), body);
    free(body);
}

static void reply_processing(purchase_flow *f, const Millom__V1__RequestMeta *meta,
                             const purchase *p) {
    char *body = response_processing(p);
    flow_reply(f, meta, 202, body);
    free(body);
    metric_add(f->m.processing, 1);
}

/* The answer for a purchase as stored: final -> the original answer. */
static void reply_stored(purchase_flow *f, const Millom__V1__RequestMeta *meta, const purchase *p) {
    if (PS_FINAL(p->state) && p->http_status && p->response_body) {
        flow_reply(f, meta, p->http_status, p->response_body);
        return;
    }
    if (PS_FINAL(p->state)) { /* never stored without an answer; be safe */
        char *body = p->state == PS_COMPLETED ? response_completed(p)
                                              : response_error(CAUSE_UNSPECIFIED, p->message);
        flow_reply(f, meta, p->state == PS_COMPLETED ? 200 : 500, body);
        free(body);
        return;
    }
    reply_processing(f, meta, p);
}

/* A repeat of (sp, transid): rule 1. */
static void answer_existing(purchase_flow *f, const Millom__V1__RequestMeta *meta,
                            const purchase *request, const purchase *existing) {
    if (strcmp(request->fingerprint, existing->fingerprint) != 0) {
        metric_add(f->m.conflict, 1);
        reply_error(f, meta, CAUSE_PURCHASE_CONFLICT,
                    "transid was already used for a different purchase request");
        return;
    }
    reply_stored(f, meta, existing);
}

static int fits(const char *s, size_t size) { return s && strlen(s) < size; }
static int present(const char *s) { return s && *s; }

const char *purchase_from_command(const Millom__V1__PurchaseCommand *c, purchase *p) {
    const Millom__V1__SubscriberRef *s = c->subscriber;
    if (!present(c->service_provider) || !fits(c->service_provider, sizeof p->service_provider))
        return "service_provider missing or too long";
    if ((!c->dry_run && !present(c->transid)) || !fits(c->transid, sizeof p->transid))
        return "transid missing or too long";
    if (!present(c->plan_id) || !fits(c->plan_id, sizeof p->plan_id))
        return "plan_id missing or too long";
    if (!s || !present(s->subscriber_id) || !fits(s->subscriber_id, sizeof p->subscriber))
        return "subscriber missing or too long";
    if (!present(s->operator_) || !fits(s->operator_, sizeof p->op))
        return "subscriber.operator missing or too long";
    if (c->client_name && !fits(c->client_name, sizeof p->client_name))
        return "client_name too long";
    const char *fund = fund_source_name(c->fund_source);
    if (!fund || !fits(fund, sizeof p->fund_source)) return "fund_source unknown";
    memset(p, 0, sizeof *p);
    text_copy(p->service_provider, sizeof p->service_provider, c->service_provider);
    text_copy(p->transid, sizeof p->transid, c->transid);
    purchase_operator_transid(p->service_provider, p->transid, p->op_transid);
    text_copy(p->plan_id, sizeof p->plan_id, c->plan_id);
    text_copy(p->subscriber, sizeof p->subscriber, s->subscriber_id);
    text_copy(p->op, sizeof p->op, s->operator_);
    text_copy(p->key_type, sizeof p->key_type,
              s->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_OPET   ? "OPET"
              : s->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_CPID ? "CPID"
                                                                   : "MSISDN");
    text_copy(p->fund_source, sizeof p->fund_source, fund);
    text_copy(p->client_name, sizeof p->client_name, c->client_name);
    text_copy(p->channel, sizeof p->channel, present(c->channel) ? c->channel : "api");
    text_copy(p->language, sizeof p->language, c->language);
    purchase_fingerprint(p->op, p->key_type, p->subscriber, p->plan_id, c->offer_context,
                         p->fund_source, p->fingerprint);
    return NULL;
}

/* The price from a signed offerContext. NULL, or the 400 message. */
static const char *price_from_offer_context(const char *token, const purchase *p, int64_t now,
                                            int64_t *price, char *currency, size_t curlen) {
    offer_context oc;
    int rc = offer_context_verify(token, offer_context_keys(), now, &oc);
    if (rc == -2) return "offercontext expired";
    if (rc != 0) return "offercontext is not valid";
    if (strcmp(oc.plan_id, p->plan_id) != 0) return "offercontext was issued for another planid";
    if (strcmp(oc.subscriber, p->subscriber) != 0)
        return "offercontext was issued for another subscriber";
    if (strcmp(oc.provider, p->service_provider) != 0)
        return "offercontext was issued for another service provider";
    if (strcmp(oc.op, p->op) != 0) return "offercontext was issued for another operator";
    if (oc.price_minor < 0 || !fits(oc.currency, curlen) || !oc.currency[0])
        return "offercontext is not valid";
    *price = oc.price_minor;
    text_copy(currency, curlen, oc.currency);
    return NULL;
}

const char *purchase_precheck(purchase_flow *f, const char *context_token, purchase *p,
                              int64_t *now, char *msg, size_t msglen,
                              offer_lookup *operator_error) {
    if (operator_error) memset(operator_error, 0, sizeof *operator_error);
    *now = now_ms();
    if (strcmp(p->key_type, "CPID") == 0) {
        text_copy(msg, msglen, "CPID keys must be resolved before purchasing");
        return CAUSE_BAD_CPID;
    }
    const tenant_operator *op = tenants_operator(f->tenants, p->op);
    const tenant_provider *sp = tenants_provider(f->tenants, p->service_provider);
    if (!op || !sp || !tenants_provider_uses(sp, p->op)) {
        text_copy(msg, msglen,
                  !op   ? "unknown operator"
                  : !sp ? "unknown service provider"
                        : "the service provider may not use this operator");
        return CAUSE_BAD_REQUEST;
    }
    if (present(context_token)) {
        const char *why = price_from_offer_context(context_token, p, *now, &p->price_minor,
                                                   p->currency, sizeof p->currency);
        if (why) {
            text_copy(msg, msglen, why);
            return CAUSE_BAD_REQUEST;
        }
        return NULL;
    }
    offer_lookup found;
    operator_slot_take(f->slots, op);
    offer_price_result pr =
        offer_price(f->http, op, p, f->cfg.channel_id, f->cfg.backend_timeout_ms, &found);
    operator_slot_give(f->slots, op);
    *now = now_ms();
    switch (pr) {
    case OFFER_NEED_TOPUP:
        text_copy(msg, msglen, "the subscriber has to top up before buying a plan");
        return CAUSE_INSUFFICIENT_FUNDS;
    case OFFER_NOT_OFFERED:
        text_copy(msg, msglen, "planid is not offered to this subscriber");
        return CAUSE_BAD_REQUEST;
    case OFFER_BACKEND_ERROR:
        text_copy(msg, msglen, found.message);
        if (operator_error) *operator_error = found;
        return found.cause;
    case OFFER_PRICE_OK: break;
    }
    /* The operator sells an offer with its own fund source only (an
     * EWALLET or FREE plan bought with the default WALLET would be refused
     * as INVALID_PRODUCT): said here, before anything is stored. */
    if (found.fund_source[0] && strcmp(found.fund_source, p->fund_source) != 0) {
        snprintf(msg, msglen, "planid is sold with fundSource %s only", found.fund_source);
        return CAUSE_BAD_REQUEST;
    }
    p->price_minor = found.price_minor;
    text_copy(p->currency, sizeof p->currency, found.currency);
    return NULL;
}

/* api-edge answered the provider 202 "processing" because no reply came
 * in time: if the outcome was decided and published as answered (its
 * reply was late), the callback is owed after all. Commands are keyed by
 * transid, so this comes after the purchase's own command was handled. */
static kafka_verdict handle_answered_processing(purchase_flow *f,
                                                const Millom__V1__PurchaseCommand *c, char *err,
                                                size_t errlen) {
    if (!present(c->service_provider) || !present(c->transid)) {
        snprintf(err, errlen, "answered_processing without service_provider and transid");
        return KAFKA_DEAD_LETTER;
    }
    int rc = flow_owe_callback(f, c->service_provider, c->transid);
    if (rc < 0) {
        snprintf(err, errlen, "store busy or failing; the command is retried");
        return KAFKA_RETRY;
    }
    if (rc == 1)
        log_info("purchase %s/%s: its outcome reached api-edge too late (answered 202); "
                 "the callback is owed",
                 c->service_provider, c->transid);
    return KAFKA_DONE;
}

kafka_verdict handle_command(purchase_flow *f, const void *payload, size_t len, char *err,
                             size_t errlen) {
    Millom__V1__PurchaseCommand *c =
        millom__v1__purchase_command__unpack(NULL, len, (const uint8_t *)payload);
    if (!c) {
        snprintf(err, errlen, "not a millom.v1.PurchaseCommand");
        return KAFKA_DEAD_LETTER;
    }
    const Millom__V1__RequestMeta *meta = c->meta;
    kafka_verdict verdict = KAFKA_DONE;
    /* Two records, not four, on a lane's stack (3 kB each, and a lane's
     * stack pages stay resident): the request, and the stored row (a
     * repeat's, or the outcome of the call). */
    purchase p = {0}, stored = {0};
    if (c->answered_processing) {
        verdict = handle_answered_processing(f, c, err, errlen);
        goto out;
    }
    if (c->dry_run) { /* eligibility.c: checked, never executed */
        verdict = handle_eligibility(f, c, err, errlen);
        goto out;
    }
    const char *bad = purchase_from_command(c, &p);
    if (bad) {
        reply_error(f, meta, CAUSE_BAD_REQUEST, bad);
        snprintf(err, errlen, "invalid PurchaseCommand: %s", bad);
        verdict = KAFKA_DEAD_LETTER;
        goto out;
    }

    /* 1. A repeat. */
    sqlite3 *db = store_pool_take(f->db_pool);
    int found = purchase_get(db, p.service_provider, p.transid, &stored);
    store_pool_give(f->db_pool, db);
    if (found < 0) {
        snprintf(err, errlen, "store unavailable");
        verdict = KAFKA_RETRY;
        goto out;
    }
    if (found) {
        answer_existing(f, meta, &p, &stored);
        goto out;
    }

    /* 2. A new purchase: who, and at what price. */
    int64_t now;
    char msg[256];
    const char *cause = purchase_precheck(f, c->offer_context, &p, &now, msg, sizeof msg, NULL);
    if (cause) {
        metric_add(f->m.rejected, 1);
        reply_error(f, meta, cause, msg);
        goto out;
    }

    /* 3. Checks and insert, one transaction; committed before the call. */
    p.state = PS_ACTIVATING;
    p.attempts = 0;
    /* Stored while the first call runs: if the process dies during it,
     * the retry thread must not assume the operator never saw it. */
    p.maybe_executed = 1;
    p.created_ms = p.updated_ms = now;
    p.next_attempt_ms = flow_lease_until(f, now);
    correlator_copy_current(p.correlator); /* the command's request id, kept with the row */
    int64_t other_created = 0;
    int64_t timer_ms = f->cfg.timer_s * 1000;
    switch (flow_create(f, &p, timer_ms, &stored, &other_created)) {
    case CREATE_OK: break;
    case CREATE_EXISTS: answer_existing(f, meta, &p, &stored); goto out;
    case CREATE_TRANSID_TAKEN:
        /* A derived transId equal to a pre-upgrade row's transid: not
         * reachable by chance; answered like any reused transid. */
        metric_add(f->m.conflict, 1);
        reply_error(f, meta, CAUSE_PURCHASE_CONFLICT,
                    "transid was already used for a different purchase request");
        goto out;
    case CREATE_TIMER:
        /* One text whoever made the earlier purchase. */
        metric_add(f->m.conflict, 1);
        reply_error(f, meta, CAUSE_PURCHASE_CONFLICT, purchase_timer_message());
        goto out;
    case CREATE_BUSY:
    case CREATE_ERROR:
        snprintf(err, errlen, "store busy or failing; the command is retried");
        verdict = KAFKA_RETRY;
        goto out;
    }
    outbox_relay_notify(f->relay);

    /* 4. The operator; then the answer. p is the call's record now (the
     * row as stored, with its first attempt). */
    p.attempts = 1;
    p.maybe_executed = 0; /* no earlier call */
    /* A final outcome of this call is the provider's answer (200 or an
     * error), so its event owes no callback (the standard API promises
     * one for 202 only); purchase_update keeps it for final states only. */
    p.outcome_answered = flow_reply_expected(meta);
    flow_activate(f, f->http, &p, 0, &stored);
    reply_stored(f, meta, &stored);

out:
    purchase_clear(&p);
    purchase_clear(&stored);
    millom__v1__purchase_command__free_unpacked(c, NULL);
    return verdict;
}
