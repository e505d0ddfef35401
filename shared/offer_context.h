/* offerContext: an HMAC-SHA256-signed token that binds an offer to the
 * plan, subscriber, provider, operator, price and an expiry. offer-resolver
 * issues it; purchase-executor verifies it. Text form:
 *   base64url(JSON claims) "." base64url(HMAC-SHA256(key, first part)) */
#ifndef MILLOM_OFFER_CONTEXT_H
#define MILLOM_OFFER_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char plan_id[128];
    char subscriber[128];   /* MSISDN or OPET as sent to the backend */
    char provider[64];
    char op[32];
    int64_t price_minor;
    char currency[8];
    int64_t expires_at_ms;
} offer_context;

/* Signing key from MILLOM_OFFER_CONTEXT_KEY (sandbox default otherwise). */
const char *offer_context_key(void);
/* Caller frees. NULL on error. */
char *offer_context_sign(const offer_context *ctx, const char *key);
/* 0 when the signature is good and it has not expired at now_ms;
 * -1 tampered or malformed, -2 expired. */
int offer_context_verify(const char *token, const char *key, int64_t now_ms, offer_context *out);

#endif
