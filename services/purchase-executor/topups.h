/* Top-up requests (apis/topup/top-up.yaml; README, "Top-up"): a
 * provider's webview asks that a donor top up a requestor's balance.
 * purchase-executor owns them because it already owns the calls to the
 * operators' backends and an outbox: topups.c takes the TopupCommands of
 * millom.topup.commands (keyed by the top-up id, so one request's messages
 * are handled in order by one lane), records each request once per
 * provider and partner reference, asks the operator to send the donor the
 * signed link (POST {backendUrl}/messages), credits the requestor when the
 * donor picked an amount (POST {backendUrl}/topup/{msisdn}, once per
 * top-up id), and publishes a TopupEvent on millom.topup.events in the
 * transaction of every final state, for notifier's provider callback.
 *
 * States: REQUESTED -> LINK_SENT -> CREDITED | CREDIT_FAILED;
 *         REQUESTED -> LINK_FAILED. A LINK_SENT request whose credit got
 * no answer stays LINK_SENT (the donor may submit again; the operator
 * credits a transId once).
 *
 * The table (topups) is created by purchase_store.c's migration 10, with
 * the store's other tables; it is not in the purchases' changelog: a request lives in the
 * database of the instance that took it. */
#ifndef PURCHASE_EXECUTOR_TOPUPS_H
#define PURCHASE_EXECUTOR_TOPUPS_H

#include <stddef.h>

#include "purchase_flow.h"
#include "shared/plumbing/kafka.h"

/* millom.topup.commands: a TopupCommand, answered on millom.replies. */
kafka_verdict handle_topup(purchase_flow *f, const void *payload, size_t len, char *err,
                           size_t errlen);

#endif
