/* millom.activation.callbacks: an operator's asynchronous activation
 * result, relayed by api-edge. Found by (operator, transId) - the transId
 * the operator was sent (op_transid), never a provider's transid - and the
 * service provider when the callback names one. A callback naming a
 * subscriber (idValue/idType) must name the purchase's: otherwise it is
 * answered exactly as an unknown transaction (the operator learns nothing
 * about the purchase) and the purchase is left as it is:
 *   none, or another subscriber   -> 404 {"status":"FAIL","message":"unknown transaction"}
 *   already completed or failed   -> 409 {"status":"FAIL","message":"transaction already completed"}
 *   activating or pending         -> completed (ok, or PURCHASE_ALREADY_EXECUTED) or
 *                                    failed (errorType mapped), with its event
 *                                    (carrying the callback's errorCode and
 *                                    redirectLink for the provider);
 *                                    200 {"status":"OK","message":"Callback received by Millom"}
 * The bodies are the operator API's callbackResponse; api-edge relays them
 * as they are. A callback without meta (nobody waits) is applied the same
 * way. A completion also invalidates offer-resolver's cache first. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/correlator.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/text.h"

static void reply_callback(purchase_flow *f, const Millom__V1__RequestMeta *meta, int status,
                           const char *result, const char *message) {
    char *body = response_callback(result, message);
    flow_reply(f, meta, status, body);
    free(body);
}

int callback_subscriber_matches(const purchase *p, const char *id_type, const char *id_value) {
    if (!id_type || !*id_type) return 1; /* the backend spec's callback names none */
    if (!id_value || strcmp(id_type, p->key_type) != 0) return 0;
    if (strcmp(id_type, "MSISDN") != 0 && strcmp(id_type, "OPET") != 0) return 0;
    return strcmp(id_value, p->subscriber) == 0;
}

kafka_verdict handle_callback(purchase_flow *f, const void *payload, size_t len, char *err,
                              size_t errlen) {
    Millom__V1__ActivationCallback *cb =
        millom__v1__activation_callback__unpack(NULL, len, (const uint8_t *)payload);
    if (!cb) {
        snprintf(err, errlen, "not a millom.v1.ActivationCallback");
        return KAFKA_DEAD_LETTER;
    }
    const Millom__V1__RequestMeta *meta = cb->meta;
    kafka_verdict verdict = KAFKA_DONE;
    purchase found = {0}, next = {0}, current = {0};
    if (!cb->operator_ || !*cb->operator_ || !cb->trans_id || !*cb->trans_id) {
        reply_callback(f, meta, 400, "FAIL", "operator and transId are required");
        snprintf(err, errlen, "ActivationCallback without operator or trans_id");
        verdict = KAFKA_DEAD_LETTER;
        goto out;
    }
    const char *sp = cb->service_provider && *cb->service_provider ? cb->service_provider : NULL;
    sqlite3 *db = store_pool_take(f->db_pool);
    int n = purchase_get_operator_transid(db, cb->operator_, cb->trans_id, sp, &found);
    store_pool_give(f->db_pool, db);
    if (n < 0) {
        snprintf(err, errlen, "store unavailable");
        verdict = KAFKA_RETRY;
        goto out;
    }
    if (n == 0) {
        reply_callback(f, meta, 404, "FAIL", "unknown transaction");
        goto out;
    }
    purchase *p = &found;
    if (!callback_subscriber_matches(p, cb->id_type, cb->id_value)) {
        char got[32], want[32];
        log_warn("callback for operator transId %s refused: %s %s is not the purchase's"
                 " subscriber (%s %s)",
                 cb->trans_id, cb->id_type, log_mask_msisdn(cb->id_value, got, sizeof got),
                 p->key_type, log_mask_msisdn(p->subscriber, want, sizeof want));
        reply_callback(f, meta, 404, "FAIL", "unknown transaction");
        goto out;
    }
    /* From here the callback works for the purchase: its log lines, event
     * and invalidation carry the purchase's request id, so one grep shows
     * the purchase from the provider's request to its callback. One line
     * ties the callback's own id to it. */
    if (p->correlator[0] && strcmp(p->correlator, correlator_current()) != 0) {
        char own[CORRELATOR_SIZE];
        correlator_copy_current(own);
        correlator_set(p->correlator);
        log_info("operator callback for %s/%s (callback request %s)", p->service_provider,
                 p->transid, own);
    }
    if (PS_FINAL(p->state)) {
        reply_callback(f, meta, 409, "FAIL", "transaction already completed");
        goto out;
    }
    if (cb->offer_id && *cb->offer_id && strcmp(cb->offer_id, p->plan_id) != 0)
        log_warn("callback for %s names offer %s, the purchase is for %s; applying it", p->transid,
                 cb->offer_id, p->plan_id);
    if (outcome_after_callback(p, cb->ok, cb->error_type, cb->message, now_ms(), &next) != 0) {
        snprintf(err, errlen, "out of memory");
        verdict = KAFKA_RETRY;
        goto out;
    }
    /* Passed on to the provider with the outcome (the PurchaseEvent). */
    text_copy(next.error_code, sizeof next.error_code, cb->error_code ? cb->error_code : "");
    text_copy(next.redirect_link, sizeof next.redirect_link,
              cb->redirect_link ? cb->redirect_link : "");
    int rc =
        flow_update(f, &next, PS_MASK(PS_RECEIVED) | PS_MASK(PS_ACTIVATING) | PS_MASK(PS_PENDING),
                    -1, &current);
    if (rc < 0) {
        snprintf(err, errlen, "store busy or failing; the callback is retried");
        verdict = KAFKA_RETRY;
        goto out;
    }
    if (rc == 0) { /* decided meanwhile (the retry thread) */
        reply_callback(f, meta, 409, "FAIL", "transaction already completed");
        goto out;
    }
    metric_add(f->m.callbacks, 1);
    flow_after_change(f, p, &next);
    reply_callback(f, meta, 200, "OK", "Callback received by Millom");
out:
    purchase_clear(&found);
    purchase_clear(&next);
    purchase_clear(&current);
    millom__v1__activation_callback__free_unpacked(cb, NULL);
    return verdict;
}
