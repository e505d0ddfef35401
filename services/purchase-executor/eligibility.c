/* Eligibility (an extension of the standard API): would a purchase of this
 * plan, for this subscriber, through this provider, with this fund source,
 * go through now, and if not, what would it get? api-edge sends it as a
 * dry-run PurchaseCommand, so it passes the very checks a purchase passes,
 * in the same order, and nothing else happens: no row, no event, no
 * activation, no timer started.
 *
 *   1. the command and the parties, and the plan's price and fund source
 *      from the operator's GET /offers (purchase_precheck: plan offered,
 *      NEED_TOPUP, the offer's own fund source, the operator's errors such
 *      as USER_BARRED);
 *   2. the purchase timer (purchase_timer_hit on this thread's connection:
 *      every instance holds every purchase, see "State follows its
 *      partition");
 *   3. the funds a purchase would take, from the operator's GET /balance
 *      (funds_cover: WALLET the airtime, EWALLET the e-wallet; LOAN and
 *      FREE need none). The operator checks them again when it activates;
 *      this is its answer of a moment ago.
 *
 * Answer: 200 with response_eligibility's body, eligible or not with the
 * cause, status and message purchasePlan would answer (and the operator's
 * errorType when the refusal is its own). When the operator cannot be
 * asked (timeout, 5xx: SERVICE_UNAVAILABLE) or Millom fails, nothing is
 * known: that error is the answer itself. Past its deadline the request is
 * dropped, like a query. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/patterns/rpc.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/text.h"

/* A refusal nobody could know the answer to: no eligibility verdict. */
static int undecided(const char *cause) {
    return strcmp(cause, CAUSE_SERVICE_UNAVAILABLE) == 0 || strcmp(cause, CAUSE_UNSPECIFIED) == 0;
}

static void answer(purchase_flow *f, const Millom__V1__RequestMeta *meta, const eligibility *e) {
    if (e->cause && undecided(e->cause)) {
        char *body = response_error(e->cause, e->message);
        flow_reply(f, meta, error_status(e->cause), body);
        free(body);
        return;
    }
    char *body = response_eligibility(e);
    if (body)
        flow_reply(f, meta, 200, body);
    else {
        body = response_error(CAUSE_UNSPECIFIED, "out of memory");
        flow_reply(f, meta, 500, body);
    }
    free(body);
}

kafka_verdict handle_eligibility(purchase_flow *f, const Millom__V1__PurchaseCommand *c, char *err,
                                 size_t errlen) {
    const Millom__V1__RequestMeta *meta = c->meta;
    if (!meta || rpc_expired(meta)) return KAFKA_DONE; /* nobody waits for it */
    purchase p = {0};
    const char *bad = purchase_from_command(c, &p);
    if (bad) {
        char *body = response_error(CAUSE_BAD_REQUEST, bad);
        flow_reply(f, meta, 400, body);
        free(body);
        snprintf(err, errlen, "invalid dry-run PurchaseCommand: %s", bad);
        return KAFKA_DEAD_LETTER;
    }
    const tenant_operator *op = tenants_operator(f->tenants, p.op);
    eligibility e = {
        .plan_id = p.plan_id,
        .fund_source = p.fund_source,
        .price_minor = -1,
        .currency_scale = op ? op->currency_scale : 2,
    };
    char msg[256] = "";
    offer_lookup operator_error;
    int64_t now;

    /* 1. The parties, the plan, its price and fund source. */
    e.cause = purchase_precheck(f, c->offer_context, &p, &now, msg, sizeof msg, &operator_error);
    e.message = msg;
    e.error_type = operator_error.error_type;
    if (e.cause) goto reply;
    e.price_minor = p.price_minor;
    e.currency = p.currency;

    /* 2. The purchase timer, as flow_create would apply it now. */
    if (f->cfg.timer_s > 0) {
        sqlite3 *db = store_pool_take(f->db_pool);
        int hit = purchase_timer_hit(db, &p, now - f->cfg.timer_s * 1000, NULL);
        store_pool_give(f->db_pool, db);
        if (hit < 0) {
            e.cause = CAUSE_SERVICE_UNAVAILABLE;
            text_copy(msg, sizeof msg, "the purchase store is busy; try again");
            goto reply;
        }
        if (hit) {
            e.cause = CAUSE_PURCHASE_CONFLICT;
            text_copy(msg, sizeof msg, purchase_timer_message());
            goto reply;
        }
    }

    /* 3. The funds, from the operator's balance. */
    if (funds_cover(NULL, p.fund_source, p.price_minor, e.currency_scale) != 1) {
        json_t *account = NULL;
        operator_slot_take(f->slots, op);
        int got = account_status_get(f->http, op, &p, f->cfg.channel_id, f->cfg.backend_timeout_ms,
                                     &account, &operator_error);
        operator_slot_give(f->slots, op);
        if (!got) {
            e.cause = operator_error.cause;
            text_copy(msg, sizeof msg, operator_error.message);
            goto reply;
        }
        int covered = funds_cover(account, p.fund_source, p.price_minor, e.currency_scale);
        json_decref(account);
        if (covered < 0) {
            e.cause = CAUSE_SERVICE_UNAVAILABLE;
            text_copy(msg, sizeof msg, "the operator backend sent an unusable balance");
        } else if (covered == 0) {
            e.cause = CAUSE_INSUFFICIENT_FUNDS;
            snprintf(msg, sizeof msg, "%s balance too low for this plan",
                     strcmp(p.fund_source, "EWALLET") == 0 ? "e-wallet" : "monetary");
        }
    }

reply:
    answer(f, meta, &e);
    purchase_clear(&p);
    return KAFKA_DONE;
}
