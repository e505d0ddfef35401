/* Top-up states: see topup_state.h. */
#include "shared/contracts/topup_state.h"

const char *topup_state_name(Millom__V1__TopupState s) {
    switch (s) {
    case MILLOM__V1__TOPUP_STATE__TOPUP_STATE_REQUESTED: return "REQUESTED";
    case MILLOM__V1__TOPUP_STATE__TOPUP_STATE_LINK_SENT: return "LINK_SENT";
    case MILLOM__V1__TOPUP_STATE__TOPUP_STATE_LINK_FAILED: return "LINK_FAILED";
    case MILLOM__V1__TOPUP_STATE__TOPUP_STATE_CREDITED: return "CREDITED";
    case MILLOM__V1__TOPUP_STATE__TOPUP_STATE_CREDIT_FAILED: return "CREDIT_FAILED";
    default: return "UNSPECIFIED";
    }
}

int topup_state_is_final(Millom__V1__TopupState s) {
    return s == MILLOM__V1__TOPUP_STATE__TOPUP_STATE_LINK_FAILED ||
           s == MILLOM__V1__TOPUP_STATE__TOPUP_STATE_CREDITED ||
           s == MILLOM__V1__TOPUP_STATE__TOPUP_STATE_CREDIT_FAILED;
}
