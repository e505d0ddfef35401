/* millom.activation.callbacks: an operator's asynchronous activation
 * result, relayed by api-edge. Found by (operator, transId), and the
 * service provider when the callback names one:
 *   none                          -> 404 {"status":"FAIL","message":"unknown transaction"}
 *   already completed or failed   -> 409 {"status":"FAIL","message":"transaction already completed"}
 *   activating or pending         -> completed (ok, or PURCHASE_ALREADY_EXECUTED) or
 *                                    failed (errorType mapped), with its event;
 *                                    200 {"status":"OK","message":"Callback received by Millom"}
 * The bodies are the operator API's callbackResponse; api-edge relays them
 * as they are. A callback without meta (nobody waits) is applied the same
 * way. A completion also invalidates offer-resolver's cache first. */
#include "executor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "shared/service.h"

static void reply_callback(executor *ex, const Millom__V1__RequestMeta *meta, int status,
                           const char *result, const char *message) {
    char *body = response_callback(result, message);
    executor_reply(ex, meta, status, body);
    free(body);
}

typedef struct {
    purchase first;
    int n;
} found_rows;

static void keep_first(void *arg, const purchase *p) {
    found_rows *f = arg;
    if (f->n++ == 0) purchase_copy(&f->first, p);
}

kafka_verdict executor_on_callback(executor *ex, const void *payload, size_t len, char *err,
                                   size_t errlen) {
    Millom__V1__ActivationCallback *cb =
        millom__v1__activation_callback__unpack(NULL, len, (const uint8_t *)payload);
    if (!cb) {
        snprintf(err, errlen, "not a millom.v1.ActivationCallback");
        return KAFKA_DEAD_LETTER;
    }
    const Millom__V1__RequestMeta *meta = cb->meta;
    kafka_verdict verdict = KAFKA_DONE;
    found_rows f = {0};
    purchase next = {0}, current = {0};
    if (!cb->operator_ || !*cb->operator_ || !cb->trans_id || !*cb->trans_id) {
        reply_callback(ex, meta, 400, "FAIL", "operator and transId are required");
        snprintf(err, errlen, "ActivationCallback without operator or trans_id");
        verdict = KAFKA_DEAD_LETTER;
        goto out;
    }
    const char *sp = cb->service_provider && *cb->service_provider ? cb->service_provider : NULL;
    int n = purchase_find_transid(ex->db, cb->operator_, cb->trans_id, sp, 2, keep_first, &f);
    if (n < 0) {
        snprintf(err, errlen, "store unavailable");
        verdict = KAFKA_RETRY;
        goto out;
    }
    if (n == 0) {
        reply_callback(ex, meta, 404, "FAIL", "unknown transaction");
        goto out;
    }
    /* (operator, transid) is unique (purchase_store.c), so n == 1. */
    purchase *p = &f.first;
    if (PS_FINAL(p->state)) {
        reply_callback(ex, meta, 409, "FAIL", "transaction already completed");
        goto out;
    }
    if (cb->offer_id && *cb->offer_id && strcmp(cb->offer_id, p->plan_id) != 0)
        log_warn("callback for %s names offer %s, the purchase is for %s; applying it",
                 p->transid, cb->offer_id, p->plan_id);
    if (outcome_after_callback(p, cb->ok, cb->error_type, cb->message, now_ms(), &next) != 0) {
        snprintf(err, errlen, "out of memory");
        verdict = KAFKA_RETRY;
        goto out;
    }
    int rc = purchase_update(ex->db, &next,
                             PS_MASK(PS_RECEIVED) | PS_MASK(PS_ACTIVATING) | PS_MASK(PS_PENDING),
                             -1, &current);
    if (rc < 0) {
        snprintf(err, errlen, "store busy or failing; the callback is retried");
        verdict = KAFKA_RETRY;
        goto out;
    }
    if (rc == 0) { /* decided meanwhile (the retry thread) */
        reply_callback(ex, meta, 409, "FAIL", "transaction already completed");
        goto out;
    }
    metric_add(ex->m.callbacks, 1);
    executor_after_change(ex, p, &next);
    reply_callback(ex, meta, 200, "OK", "Callback received by Millom");
out:
    purchase_clear(&f.first);
    purchase_clear(&next);
    purchase_clear(&current);
    millom__v1__activation_callback__free_unpacked(cb, NULL);
    return verdict;
}
