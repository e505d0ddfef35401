/* purchase-executor's handlers: one a topic, called by the executor's
 * dispatch (executor_handle) on the consumer thread, and the retry thread.
 * They act on the shared state of purchase_flow.h and call down only (flow,
 * activation client, outcomes, store), never back into the executor. */
#ifndef PURCHASE_EXECUTOR_HANDLERS_H
#define PURCHASE_EXECUTOR_HANDLERS_H

#include <stddef.h>
#include <jansson.h>

#include "purchase.h"
#include "purchase_flow.h"
#include "shared/plumbing/kafka.h"
#include "millom/v1/purchase.pb-c.h"

/* purchase_commands.c: millom.purchase.commands (a PurchaseCommand). */
kafka_verdict handle_command(purchase_flow *f, const void *payload, size_t len, char *err,
                             size_t errlen);
/* Fills the request part of p (zeroed first) from the command. NULL, or
 * why the command is malformed (api-edge validated it, so this is a
 * producer bug). A dry run may come without a transid. */
const char *purchase_from_command(const Millom__V1__PurchaseCommand *c, purchase *p);
/* The checks a new purchase passes before anything is stored: the parties
 * (operator, provider and their agreement; no unresolved CPID) and the
 * price, from the signed offerContext (context_token) when there is one, else from the
 * operator's GET /offers (the plan must be offered, NEED_TOPUP is 402,
 * and the offer's fund source must be p's). NULL when p may go on (its
 * price and currency set, *now the time after the checks); else the
 * ErrorDocument cause, the message in msg and, when the refusal was the
 * operator's answer, that answer in *operator_error (may be NULL). */
const char *purchase_precheck(purchase_flow *f, const char *context_token, purchase *p,
                              int64_t *now, char *msg, size_t msglen, offer_lookup *operator_error);

/* eligibility.c: a dry-run PurchaseCommand (GET .../eligibility/{planId}). */
kafka_verdict handle_eligibility(purchase_flow *f, const Millom__V1__PurchaseCommand *c, char *err,
                                 size_t errlen);

/* callbacks.c: millom.activation.callbacks (an ActivationCallback). */
kafka_verdict handle_callback(purchase_flow *f, const void *payload, size_t len, char *err,
                              size_t errlen);
/* 1 when a callback naming (id_type, id_value) - as api-edge passes them:
 * MSISDN normalized, CPID decoded - may apply to p (also when it names no
 * subscriber at all), else 0. Pure. */
int callback_subscriber_matches(const purchase *p, const char *id_type, const char *id_value);

/* lookups.c: millom.purchase.lookups (a PurchaseLookup). */
kafka_verdict handle_lookup(purchase_flow *f, const void *payload, size_t len, char *err,
                            size_t errlen);
/* A purchase as the management API shows it. */
json_t *purchase_to_json(const purchase *p, int currency_scale);
/* A purchase as its provider sees it (GET /std/.../purchasePlan/{transid}). */
json_t *purchase_status_json(const purchase *p);
/* 1 when p is of operator op and the subscriber s names (MSISDN or OPET,
 * as the store holds it), so its provider may see it there. Pure. */
int purchase_status_visible(const purchase *p, const char *op, const Millom__V1__SubscriberRef *s);

/* retry_worker.c: the retry thread, with its own connection and client. */
typedef struct retry_worker retry_worker;
retry_worker *retry_worker_start(purchase_flow *f, char *err, size_t errlen);
void retry_worker_wake(retry_worker *w);
/* Waits (up to timeout_ms) until the retry thread is not inside an
 * activation call. 0, or -1 on timeout. */
int retry_worker_quiesce(retry_worker *w, int timeout_ms);
void retry_worker_stop(retry_worker *w);

#endif
