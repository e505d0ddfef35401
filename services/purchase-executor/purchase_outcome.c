/* What an operator's answer means for a purchase: the ErrorDocument cause
 * of a backend errorType, the answers the SP gets, and the next row after
 * an activation call or a callback. Pure functions: no I/O, no clock.
 *
 * Causes (backend errorType -> ErrorDocument): INSUFFICIENT_FUNDS -> 402
 * INSUFFICIENT_FUNDS; INVALID_PRODUCT, BAD_REQUEST, PARSING_ERROR,
 * INVALID_TRANSID -> 400 BAD_REQUEST; USER_BARRED, NOT_IMPLEMENTED -> 403
 * NOT_ALLOWED; FORBIDDEN -> 403 USER_ROAMING (the backend enum has no
 * roaming value; offer-resolver decides the same); UNKNOWN_SUBSCRIBER_ID
 * -> 404 INVALID_NUMBER; CONFLICT, PURCHASE_IN_PROGRESS -> 409
 * PURCHASE_CONFLICT; TIMEOUT, CONGESTED, INTERNAL_ERROR -> 503
 * SERVICE_UNAVAILABLE (only a callback can fail a purchase with those: an
 * activation answer with them is an unknown outcome and is retried).
 * PURCHASE_ALREADY_EXECUTED is never a failure: the operator did it.
 *
 * Retrying and giving up. An unknown outcome (no answer, a timeout, a
 * 5xx, TIMEOUT, INTERNAL_ERROR) may mean the operator executed the
 * purchase and charged the subscriber. Marking it failed would make the SP
 * retry under a new transid and charge twice, and would drop the sale from
 * settlement; so it is never failed on a timer. It is re-sent with the
 * SAME transId (the operator de-duplicates on it) until a definite answer
 * comes: OK, PENDING, PURCHASE_ALREADY_EXECUTED or a definite refusal.
 * After MILLOM_ACTIVATE_MAX_ATTEMPTS calls the purchase is failed
 * (503 SERVICE_UNAVAILABLE) only if NO call may have executed it: every
 * call was refused before the operator processed it (connection refused,
 * 429, CONGESTED). Looking at the last answer alone is not enough: an
 * earlier call that timed out may have gone through while later ones hit
 * a refusing front door. Otherwise it keeps being retried at the maximum
 * backoff and counts in millom_purchases_stuck, for a human to look at.
 *
 * A call interrupted by a crash counts as one that may have executed: the
 * row carries maybe_executed = 1 while any call runs (purchase_store.c).
 *
 * PURCHASE_IN_PROGRESS after a call that may have reached the operator is
 * most likely about our own earlier call still running, so it is treated
 * as unknown (retry), not as a conflict. */
#include "purchase_outcome.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/contracts/backend_errors.h"
#include "shared/contracts/money.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/text.h"

const char *activation_kind_name(activation_kind k) {
    switch (k) {
    case ACT_COMPLETED: return "completed";
    case ACT_PENDING: return "pending";
    case ACT_ALREADY: return "already-executed";
    case ACT_FAILED: return "failed";
    case ACT_UNKNOWN: return "unknown";
    case ACT_NOT_EXECUTED: return "not-executed";
    }
    return "?";
}

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000

const char *outcome_cause(const char *error_type, long http_status, const char **fallback) {
    return backend_error_cause(error_type, http_status, fallback);
}

void outcome_mask_digits(const char *text, char *out, size_t outlen) {
    backend_mask_digits(text, out, outlen);
}

/* ------------------------------------------------------------ answers */

/* A JSON string even for bytes that are not UTF-8 (they become '?'). */
static json_t *jstr(const char *s) {
    json_t *j = json_string(s ? s : "");
    if (j) return j;
    char *copy = strdup(s);
    if (!copy) return NULL;
    for (char *c = copy; *c; c++)
        if ((unsigned char)*c >= 0x80) *c = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static char *dump(json_t *o) {
    if (!o) return NULL;
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

static const char *fund_source_or_default(const purchase *p) {
    return p->fund_source[0] ? p->fund_source : "WALLET";
}

char *response_completed(const purchase *p) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "transid", jstr(p->transid));
    json_object_set_new(o, "status", json_string("completed"));
    json_object_set_new(o, "fundSource", json_string(fund_source_or_default(p)));
    if (p->message[0]) json_object_set_new(o, "transactionMessage", jstr(p->message));
    if (p->confirmation_code[0])
        json_object_set_new(o, "confirmationCode", jstr(p->confirmation_code));
    return dump(o);
}

char *response_processing(const purchase *p) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "transid", jstr(p->transid));
    json_object_set_new(o, "status", json_string("processing"));
    json_object_set_new(o, "fundSource", json_string(fund_source_or_default(p)));
    return dump(o);
}

const char *purchase_timer_message(void) {
    return "this plan cannot be bought again for this subscriber yet; try again later";
}

char *response_error(const char *cause, const char *message) {
    return error_document_text(cause, message);
}

/* {currency, value} with value a JSON number or a decimal string (the
 * backend's money; both are seen). 0 or -1. */
static int backend_money(const json_t *money, int scale, int64_t *minor) {
    const json_t *v = json_is_object(money) ? json_object_get(money, "value") : NULL;
    if (json_is_number(v)) return money_from_json(v, scale, minor);
    if (json_is_string(v)) return money_parse(json_string_value(v), scale, minor);
    return -1;
}

int funds_cover(const json_t *account_status, const char *fund_source, int64_t price_minor,
                int scale) {
    const char *field = NULL;
    if (!fund_source || !*fund_source || strcmp(fund_source, "WALLET") == 0)
        field = "monetaryBalance";
    else if (strcmp(fund_source, "EWALLET") == 0)
        field = "ewalletBalance";
    if (!field) return 1; /* LOAN, FREE */
    if (!json_is_object(account_status)) return -1;
    const json_t *money = json_object_get(account_status, field);
    int64_t have = 0;
    if (!money || json_is_null(money)) {
        if (strcmp(field, "monetaryBalance") == 0) return -1; /* required by the spec */
    } else if (backend_money(money, scale, &have) != 0) {
        return -1;
    }
    return price_minor <= have ? 1 : 0;
}

char *response_eligibility(const eligibility *e) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "planId", jstr(e->plan_id));
    json_object_set_new(o, "fundSource", jstr(e->fund_source));
    json_object_set_new(o, "eligible", json_boolean(e->cause == NULL));
    char cost[48];
    if (e->price_minor >= 0 &&
        money_format(e->price_minor, e->currency_scale, cost, sizeof cost) >= 0) {
        json_object_set_new(o, "cost", json_string(cost));
        json_object_set_new(o, "costCurrency", jstr(e->currency));
    }
    if (e->cause) {
        json_object_set_new(o, "status", json_integer(error_status(e->cause)));
        json_object_set_new(o, "cause", json_string(e->cause));
        json_object_set_new(o, "errorMessage", jstr(e->message ? e->message : ""));
        if (e->error_type && *e->error_type)
            json_object_set_new(o, "errorType", jstr(e->error_type));
    }
    return dump(o);
}

char *response_callback(const char *status, const char *message) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "message", jstr(message));
    return dump(o);
}

/* ------------------------------------------------------------ decisions */

int64_t retry_backoff_ms(int attempts, uint32_t rnd) {
    int64_t d = BACKOFF_MIN_MS;
    for (int i = 1; i < attempts && d < BACKOFF_MAX_MS; i++) d *= 2;
    if (d > BACKOFF_MAX_MS) d = BACKOFF_MAX_MS;
    int64_t half = d / 2;
    return half + (int64_t)(rnd % (uint32_t)(half + 1));
}

static int become_completed(purchase *next, const char *code, const char *message, int64_t now) {
    next->state = PS_COMPLETED;
    if (code && *code) text_copy(next->confirmation_code, sizeof next->confirmation_code, code);
    text_copy(next->message, sizeof next->message, message);
    next->error_type[0] = '\0';
    next->completed_ms = now;
    next->next_attempt_ms = 0;
    next->http_status = 200;
    char *body = response_completed(next);
    if (!body) return -1;
    free(next->response_body);
    next->response_body = body;
    return 0;
}

/* message is what the provider is told (Millom's fixed text for the
 * cause, or Millom's own words); the operator's text, when there is one,
 * is only logged (issue 16: an operator's wording is not passed on). */
static int become_failed(purchase *next, const char *error_type, const char *cause,
                         const char *message, const char *operator_text, int64_t now) {
    if (operator_text && *operator_text)
        log_info("purchase %s failed, operator %s said (%s): %s", next->transid, next->op,
                 error_type && *error_type ? error_type : "-", operator_text);
    next->state = PS_FAILED;
    text_copy(next->error_type, sizeof next->error_type, error_type);
    text_copy(next->message, sizeof next->message, message);
    next->completed_ms = now;
    next->next_attempt_ms = 0;
    next->http_status = error_status(cause);
    char *body = response_error(cause, next->message);
    if (!body) return -1;
    free(next->response_body);
    next->response_body = body;
    return 0;
}

int outcome_after_activation(const purchase *p, const activation_result *r, long max_attempts,
                             const recheck_policy *pol, int64_t now, uint32_t rnd, purchase *next) {
    if (purchase_copy(next, p) != 0) return -1;
    next->updated_ms = now;
    activation_kind kind = r->kind;
    if (kind == ACT_FAILED && p->maybe_executed &&
        strcasecmp(r->error_type, "PURCHASE_IN_PROGRESS") == 0)
        kind = ACT_UNKNOWN;
    const char *fallback = NULL, *cause;
    char msg[600];
    switch (kind) {
    case ACT_COMPLETED:
    case ACT_ALREADY: return become_completed(next, r->confirmation_code, r->message, now);
    case ACT_PENDING:
        next->state = PS_PENDING;
        next->error_type[0] = '\0';
        text_copy(next->message, sizeof next->message, r->message);
        next->rechecks = 0;
        next->next_attempt_ms = pol ? now + recheck_delay_ms(pol, 0, rnd) : 0;
        return 0;
    case ACT_FAILED:
        cause = outcome_cause(r->error_type, r->http_status, &fallback);
        return become_failed(next, r->error_type, cause, fallback, r->message, now);
    case ACT_UNKNOWN:
    case ACT_NOT_EXECUTED: break;
    }
    /* Outcome unknown, or refused before processing: stays activating. */
    if (kind == ACT_UNKNOWN) next->maybe_executed = 1;
    text_copy(next->error_type, sizeof next->error_type, r->error_type);
    text_copy(next->message, sizeof next->message, r->message[0] ? r->message : r->detail);
    if (kind == ACT_NOT_EXECUTED && !next->maybe_executed && max_attempts > 0 &&
        next->attempts >= max_attempts) {
        snprintf(msg, sizeof msg, "the operator backend could not be reached (%d attempts)",
                 next->attempts);
        return become_failed(next, r->error_type, CAUSE_SERVICE_UNAVAILABLE, msg, NULL, now);
    }
    /* Past max attempts (stuck): every 15-30 s from now on. */
    int n = max_attempts > 0 && next->attempts >= max_attempts ? 1 << 20 : next->attempts;
    next->next_attempt_ms = now + retry_backoff_ms(n, rnd);
    return 0;
}

int64_t recheck_delay_ms(const recheck_policy *pol, int rechecks, uint32_t rnd) {
    int64_t first = pol->first_ms > 0 ? pol->first_ms : 1;
    int64_t max = pol->max_ms > first ? pol->max_ms : first;
    int64_t d = first;
    for (int i = 0; i < rechecks && d < max; i++) d *= 2;
    if (d > max) d = max;
    int64_t half = d / 2;
    int64_t delay = half + (int64_t)(rnd % (uint32_t)(half + 1));
    return delay < first ? first : delay;
}

/* Re-checking a pending purchase: the operator already accepted this
 * transId and promised a callback, so its answer to the same request is its
 * stored outcome. Only a final word ends the wait: OK or
 * PURCHASE_ALREADY_EXECUTED (completed), a FAIL activationStatus whatever
 * its errorType (as a callback's), or a definite errorType other than
 * PURCHASE_IN_PROGRESS and CONFLICT (failed). CONFLICT would mean the
 * operator knows this transId for another request, which cannot be ours: a
 * case for a human (it stays pending and becomes overdue), not a reason
 * to fail a purchase the subscriber may have paid for. Everything else
 * (PENDING, no answer, TIMEOUT, 5xx, CONGESTED) waits for the next
 * re-check, later each time. */
int outcome_after_recheck(const purchase *p, const activation_result *r, const recheck_policy *pol,
                          int64_t now, uint32_t rnd, purchase *next) {
    if (purchase_copy(next, p) != 0) return -1;
    next->updated_ms = now;
    if (r->kind == ACT_COMPLETED || r->kind == ACT_ALREADY)
        return become_completed(next, r->confirmation_code, r->message, now);
    const char *fallback = NULL;
    if (r->status_fail) {
        const char *cause = outcome_cause(r->error_type, 200, &fallback);
        return become_failed(next, r->error_type, cause, fallback, r->message, now);
    }
    if (r->kind == ACT_FAILED && strcasecmp(r->error_type, "PURCHASE_IN_PROGRESS") != 0 &&
        strcasecmp(r->error_type, "CONFLICT") != 0) {
        const char *cause = outcome_cause(r->error_type, r->http_status, &fallback);
        return become_failed(next, r->error_type, cause, fallback, r->message, now);
    }
    /* Still pending (or no telling): the row keeps its state and texts. */
    next->state = PS_PENDING;
    next->rechecks = p->rechecks + 1;
    next->next_attempt_ms = now + recheck_delay_ms(pol, next->rechecks, rnd);
    return 0;
}

int outcome_after_callback(const purchase *p, int ok, const char *error_type, const char *message,
                           int64_t now, purchase *next) {
    if (purchase_copy(next, p) != 0) return -1;
    next->updated_ms = now;
    char masked[sizeof next->message];
    outcome_mask_digits(message, masked, sizeof masked);
    if (ok || (error_type && strcasecmp(error_type, "PURCHASE_ALREADY_EXECUTED") == 0))
        return become_completed(next, NULL, masked, now);
    const char *fallback = NULL;
    /* A callback is the operator's final word: an unknown errorType is a
     * failure of unspecified cause (status 200: not a transport error). */
    const char *cause = outcome_cause(error_type, 200, &fallback);
    return become_failed(next, error_type, cause, fallback, masked, now);
}
