/* Validation of the JSON bodies api-edge accepts for purchases: the SP's
 * ActivationRequest and the operators' activation callbacks (both
 * callback styles). Pure functions over jansson; every error names the
 * field. */
#ifndef API_EDGE_REQUEST_PURCHASE_H
#define API_EDGE_REQUEST_PURCHASE_H

#include <stdbool.h>
#include <stddef.h>

#include "millom/v1/purchase.pb-c.h"

typedef struct {
    char transid[129];
    char planid[129];
    char offercontext[4097];            /* "" when absent */
    Millom__V1__FundSource fund_source; /* WALLET when absent (the spec's default) */
} activation_request;

/* 0 when valid; -1 with a message naming the field. fundSource takes any
 * of shared/contracts/fund_source.h's four (the standard API lists WALLET
 * and LOAN; EWALLET and FREE are the rich-notification spec's). */
int activation_request_parse(const char *body, size_t len, activation_request *out, char *msg,
                             size_t msglen);

typedef struct {
    char trans_id[129];
    bool ok;
    char error_type[64];
    char message[512];
    char offer_id[129];
    char service_provider[65];
    bool dry_run;
    /* millom-callback.yaml only; "" when absent. Passed on to the
     * provider's purchase callback as they are. */
    char error_code[65];      /* printable ASCII */
    char redirect_link[1025]; /* an absolute http(s) URL, no spaces */
} activation_callback;

/* The backend spec's POST /activationCallback/{operator} body:
 * {transId, activationStatus:{status OK|FAIL, errorMessage:{errorType, message}},
 *  serviceProviderId?, offerId?, channelId?} */
int callback_backend_parse(const char *body, size_t len, activation_callback *out, char *msg,
                           size_t msglen);
/* millom-callback.yaml's POST /callback/v1/{operator}/ body:
 * {transactionId, appId, message?, errorType?, errorCode?, redirectLink?,
 * dryRun?}; success is the absence of errorType. errorCode must be
 * printable ASCII and redirectLink an absolute http:// or https:// URL
 * (a provider's webview follows it: no javascript: or data: links). */
int callback_millom_parse(const char *body, size_t len, activation_callback *out, char *msg,
                          size_t msglen);

/* A transid as the standard API allows it: 10 to 128 characters of
 * letters, digits, '-', '.', '_'. */
bool transid_valid(const char *s);

#endif
