/* Fund sources: where the money for a purchase comes from. The one list
 * of them, the rich-notification spec's FundSource (WALLET, EWALLET, LOAN,
 * FREE; the standard API's ActivationRequest lists only WALLET and LOAN,
 * its default WALLET), and how their names map to the protobuf enum every
 * topic carries (schemas/millom/v1/purchase.proto).
 *
 *   WALLET   the airtime (monetary) balance
 *   EWALLET  the subscriber's e-wallet, a balance apart from the airtime
 *   LOAN     a loan the operator grants, paid back from a later top-up
 *   FREE     nothing: the plan costs 0 and is never short of funds
 *
 * Used by api-edge (requests), offer-resolver (offers), purchase-executor
 * (commands, events) and millomctl (settlement rows). */
#ifndef MILLOM_FUND_SOURCE_H
#define MILLOM_FUND_SOURCE_H

#include "millom/v1/purchase.pb-c.h"

/* The names, as error messages list them. */
#define FUND_SOURCE_NAMES "WALLET, EWALLET, LOAN, FREE"

/* "WALLET", "EWALLET", "LOAN" or "FREE"; NULL for a value this build does
 * not know (a newer producer's). A static string. */
const char *fund_source_name(Millom__V1__FundSource f);

/* The value named by name (exactly, upper case, as the specs write it):
 * 0, or -1 for NULL or any other text (*out untouched). */
int fund_source_parse(const char *name, Millom__V1__FundSource *out);

#endif
