/* Mapping from the operator backend API (millom-backend-integration.yaml:
 * accountStatus, offersInfo, errorResponse) to the standard service provider
 * API (millom-standard-api.yaml: AccountInfoResponse, BalanceResponse,
 * OfferInfoResponse, ErrorDocument). Pure functions: no I/O, no logging, no
 * globals; the caller owns every json_t returned.
 *
 * Choices the specs leave open, and why:
 *
 * Money. The backend sends money as {currency, value} with value a JSON
 * number (its own example sends a decimal string, "160.00", so both are
 * accepted). A number becomes integer minor units through money_from_json
 * (rounded half away from zero at the operator's currency scale, so a double
 * like 160.1 is 16010, never 160.09999); a string goes through money_parse
 * (more decimals than the scale is malformed). Output is always a quoted
 * decimal from money_format at the operator's currency_scale: "160.10",
 * "0.00". No double is ever printed. A balance may be negative (postpaid
 * debt); an offer cost may not.
 *
 * accountType. subscriptionType PREPAID/POSTPAID pass through; UNSPECIFIED
 * or absent omit the field (the standard enum has no "unknown"); any other
 * value is a malformed body.
 *
 * loanBalance. Not in the backend spec; some backends (and mno-sandbox) send
 * it as {currency, value}. It becomes a second AccountBalance with
 * balanceType "loan", which the standard names as a common wallet type.
 * ewalletBalance, likewise (mno-sandbox's extension for EWALLET offers):
 * an AccountBalance "ewallet" (balanceType is free text; "main" stays the
 * airtime).
 *
 * Quotas. The standard's gauge/quota values are numbers and "unlimited" is
 * 2^63-1 (9223372036854775807). A double cannot hold that, so quotas are
 * read and written as JSON integers (int64) and pass through exactly.
 * {quotaBytes, remainingBytes} is unit "bytes"; {quotaMinutes,
 * remainingMinutes} is unit "data-minutes" (these are data plans, so the
 * backend's time balance is data time, not voice). An offer's quota may be
 * the object form of the backend's example ({"quotaBytes": n}) or a bare
 * integer, which the backend schema calls byteQuota|timeQuota and which
 * cannot be told apart: a bare integer is taken as bytes. dataBalance is the
 * sum of remainingBytes over byte plans, saturating at 2^63-1 (unlimited
 * plus anything is still unlimited).
 *
 * Language. The backend answers plan names in the language it was asked for
 * (lang=), as plain strings, so every MultilingualText carries exactly that
 * language (m->language, else the operator's default).
 *
 * Times. validUntil is RFC 3339 UTC with second precision from
 * valid_until_ms. A plan's expirationTime (ISO 8601) with an offset is
 * normalized to RFC 3339 UTC ("...Z", fraction kept); without an offset it
 * is passed through unchanged (the operator's local time, which we cannot
 * convert); unparseable, the plan is kept without expiry.
 *
 * planType: principal vs supplementary. The standard does not define them.
 * Millom decides: a principal plan is a general data plan, usable by any
 * app, i.e. appType absent, empty or only GENERIC. Any app-specific appType
 * (VIDEO, MUSIC, SOCIAL, GAMING, MESSAGING, or any other non-GENERIC value)
 * makes it supplementary: it adds to, rather than replaces, the general
 * allowance. With plan_type NULL all offers are returned.
 *
 * Offer filters (README "Offer filters"). planType=principal asks the
 * backend for offerType=Data (map_offer_type); supplementary plans are of
 * many types (Social, Video, Music, ...) and offerType names one, so
 * supplementary asks for all. maxPrice and limit go to the backend as
 * maxPrice and numberofOffers. The backend may ignore these optional
 * parameters, so the answer is filtered here as well: the appType rule
 * above, offers costing more than max_price_minor dropped, then at most
 * `limit` offers kept, in the backend's order.
 *
 * Offers keep the backend's order (operators rank them). fundSource is
 * copied when it is one of WALLET, EWALLET, LOAN, FREE: the rich-notification
 * spec's Offer has it ("source of funds that can be used to purchase this
 * plan"), the standard Offer is that schema without it, and a provider
 * needs it to buy an EWALLET or FREE plan (purchasePlan defaults to
 * WALLET). Any other value (the backend spec's example says "PURCHASE") is
 * left out; a FREE offer with a cost other than 0 is malformed. A malformed
 * offer (no id/name, bad cost or
 * quota) is dropped and the others returned; a malformed top level
 * (not an object, no offers array, unknown subscriberState) is an error.
 * The same holds for subscribedPlans in map_balance: a plan without
 * planId/planName or with bad quota numbers is dropped.
 *
 * Errors: FORBIDDEN means roaming. The backend errorType enum has no
 * roaming value, and the standard has USER_ROAMING but no generic
 * "forbidden". For an inquiry/offer flow the only reason an operator
 * forbids an otherwise valid, known, unbarred subscriber (barring has its
 * own USER_BARRED) is that the subscriber is roaming, which is what the
 * sandbox backend signals with FORBIDDEN "subscriber is roaming". So
 * FORBIDDEN is USER_ROAMING; USER_BARRED and NOT_IMPLEMENTED are
 * NOT_ALLOWED. Without a recognised errorType the HTTP status decides: no
 * answer (0), 5xx, 408 and 429 are SERVICE_UNAVAILABLE (the backend is
 * overloaded, not the SP over its own rate, hence not TOO_MANY_REQUESTS);
 * a bare 404 is INVALID_NUMBER; anything else ERROR_CAUSE_UNSPECIFIED.
 * Messages never carry a full MSISDN: digit runs of 7 or more in the
 * backend's message are masked ("9245****0003").
 */
#ifndef MILLOM_OFFER_RESOLVER_MAPPING_BACKEND_H
#define MILLOM_OFFER_RESOLVER_MAPPING_BACKEND_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "shared/contracts/config.h"
#include "shared/contracts/keys.h"
#include "shared/contracts/offer_context.h"

typedef struct {
    const tenant_operator *op;
    const char *service_provider;
    const char *subscriber; /* MSISDN or OPET as sent to backend */
    const char *language;   /* language the backend was asked for (already
                                    resolved against the operator); NULL/"" =
                                    op->default_language */
    int64_t now_ms;
    int64_t valid_until_ms;             /* cache expiry for validUntil */
    const char *plan_type;              /* NULL, "principal" or "supplementary" */
    const keys_set *offer_context_keys; /* NULL = offer_context_keys() */
    int64_t offer_ttl_ms;               /* offerContext expiry = now + ttl */
    bool has_max_price;                 /* then offers costing more than */
    int64_t max_price_minor;            /* this (minor units) are left out */
    int limit;                          /* keep at most this many offers; 0 = all */
} mapping_ctx;

/* Each returns a new json_t (caller owns) or NULL with an error message in
 * err (malformed backend body; the message names the field). On success
 * err holds "" or, when malformed plans/offers were dropped, a warning
 * worth logging ("dropped 1 malformed offer(s); first: offers[2]: ...").
 * err may be NULL when errlen is 0. */
json_t *map_account_info(const mapping_ctx *m, const json_t *backend_balance, char *err,
                         size_t errlen);
json_t *map_balance(const mapping_ctx *m, const json_t *backend_balance, char *err, size_t errlen);
/* The upsellOffer answer before signing (map_upsell_offer, in
 * upsell_template.h, signs it): each offer's "offerContext" is "", and
 * *contexts (malloc'd, *n_contexts of them, in the offers' order; the
 * caller frees it) holds each one's claims but the expiry. */
json_t *map_upsell_offer_unsigned(const mapping_ctx *m, const json_t *backend_offers,
                                  offer_context **contexts, size_t *n_contexts, char *err,
                                  size_t errlen);

/* The backend's offerType for an upsellOffer planType: "Data" for
 * principal, NULL (no filter) for supplementary, NULL or anything else. */
const char *map_offer_type(const char *plan_type);

/* Maps a backend error answer (HTTP status + errorResponse body, body may be
 * NULL or not JSON) to an ErrorDocument cause (one of the CAUSE_* constants
 * of shared/plumbing/errors.h, a static string) and a human readable message in msg
 * (the backend's message if present, with MSISDN-like digit runs masked).
 * status 0 = no answer (timeout/connection error). */
const char *map_backend_error(long http_status, const json_t *body, char *msg, size_t msglen);

/* Helpers, exposed for tests and for the caller's own use. */
/* The second (since the epoch, floored) that ms falls in: what
 * mapping_rfc3339_utc writes, and so what tells two validUntil apart. */
int64_t mapping_utc_second(int64_t ms);
/* ms since the epoch -> "2026-11-28T17:30:00Z". -1 if buf too small. */
int mapping_rfc3339_utc(int64_t ms, char *buf, size_t buflen);
/* Copies text to out with runs of 7+ digits masked; control chars become
 * spaces. Always NUL-terminates when outlen > 0. */
void mapping_mask_digits(const char *text, char *out, size_t outlen);

#endif
