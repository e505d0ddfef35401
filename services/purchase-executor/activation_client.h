/* activation_client.c: the calls to the operator's backend (POST /activate,
 * GET /offers for a price), and the pure parsing of their answers into the
 * classification of purchase_outcome.h. See activation_client.c. */
#ifndef PURCHASE_EXECUTOR_ACTIVATION_CLIENT_H
#define PURCHASE_EXECUTOR_ACTIVATION_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "purchase.h"
#include "purchase_outcome.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/http_client.h"

/* Classifies an answer of POST /activate. Pure. status 0 = no answer;
 * connected tells a refused connection (0) from a lost one (1). */
void activation_parse(long status, const char *body, size_t len, int connected,
                      activation_result *out);

typedef struct {
    const tenant_operator *op;
    const char *channel_id; /* client name or the default "App" */
    const char *callback_url;
    long timeout_ms;
} activation_target;

/* The JSON body of POST /activate for p. Caller frees. */
char *activation_body(const purchase *p, const char *channel_id, const char *callback_url);
/* {backendUrl}/activate/{customerId}?customerIdType=MSISDN|OPET. -1 if too long. */
int activation_url(const tenant_operator *op, const purchase *p, char *url, size_t urllen);
/* Calls POST /activate and classifies the answer. */
void activation_call(http_client *hc, const activation_target *t, const purchase *p,
                     activation_result *out);

typedef enum {
    OFFER_PRICE_OK = 0,
    OFFER_NOT_OFFERED,   /* 400 planid is not offered to this subscriber */
    OFFER_NEED_TOPUP,    /* 402: not offered, and the operator says the
                            subscriber must top up (subscriberState NEED_TOPUP) */
    OFFER_BACKEND_ERROR, /* cause + msg say what to answer */
} offer_price_result;

/* Finds plan_id in a backend offersInfo body: 1 found (price, currency,
 * and the offer's fundSource into fund_source when it is one of
 * fund_source.h's four, else ""), 0 not offered, -1 malformed. Pure. */
int offers_find_price(const json_t *offers, const char *plan_id, int scale,
                      const char *default_currency, int64_t *price_minor, char *currency,
                      size_t curlen, char fund_source[8]);

/* What GET /offers said about p's plan. */
typedef struct {
    int64_t price_minor; /* OFFER_PRICE_OK */
    char currency[8];    /* OFFER_PRICE_OK */
    char fund_source[8]; /* OFFER_PRICE_OK: the offer's, "" when the operator names none */
    const char *cause;   /* OFFER_BACKEND_ERROR: the ErrorDocument cause */
    char error_type[32]; /* OFFER_BACKEND_ERROR: the backend's errorType, "" if none */
    char message[256];   /* OFFER_BACKEND_ERROR: what to answer */
} offer_lookup;

/* GET /offers/{customerId} for p's subscriber, and p's plan in it. */
offer_price_result offer_price(http_client *hc, const tenant_operator *op, const purchase *p,
                               const char *channel_id, long timeout_ms, offer_lookup *out);

/* GET /balance/{customerId} for p's subscriber: 1 with *account_status the
 * backend's accountStatus (caller decrefs); 0 with cause, error_type and
 * message filled as offer_price does (an error answer, no answer). */
int account_status_get(http_client *hc, const tenant_operator *op, const purchase *p,
                       const char *channel_id, long timeout_ms, json_t **account_status,
                       offer_lookup *error);

#endif
