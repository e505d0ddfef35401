/* Top-up states (schemas/millom/v1/topup.proto's TopupState): the names
 * providers see (the status of GET /v1/{sp}/topup/{id} and of the top-up
 * callback) and which states are final. Used by purchase-executor (which
 * moves a top-up through them) and notifier (the callback of a final one). */
#ifndef MILLOM_TOPUP_STATE_H
#define MILLOM_TOPUP_STATE_H

#include "millom/v1/topup.pb-c.h"

/* "REQUESTED", "LINK_SENT", "LINK_FAILED", "CREDITED", "CREDIT_FAILED";
 * "UNSPECIFIED" for any other value. A static string. */
const char *topup_state_name(Millom__V1__TopupState s);

/* 1 for LINK_FAILED, CREDITED and CREDIT_FAILED (nothing follows them:
 * each is a TopupEvent and a callback), else 0. */
int topup_state_is_final(Millom__V1__TopupState s);

#endif
