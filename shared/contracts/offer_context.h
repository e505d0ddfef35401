/* offerContext: an opaque token that binds an offer to the plan,
 * subscriber, provider, operator, price and an expiry. offer-resolver
 * issues it; purchase-executor verifies it. It is encrypted and
 * authenticated (AES-256-GCM), so a provider that only knows a CPID learns
 * nothing from it (no MSISDN) and cannot change it. Text form:
 *   base64url, no padding ( IV[12] || AES-256-GCM(JSON claims) || tag[16] )
 *   AAD = "millom-offer-context-v1"
 * Key: text (64 hex digits = raw key, else a passphrase hashed with
 * SHA-256), MILLOM_OFFER_CONTEXT_KEY through shared/contracts/keys.h. */
#ifndef MILLOM_OFFER_CONTEXT_H
#define MILLOM_OFFER_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char plan_id[128];
    char subscriber[128]; /* MSISDN or OPET as sent to the backend */
    char provider[64];
    char op[32];
    int64_t price_minor;
    char currency[8];
    int64_t expires_at_ms;
} offer_context;

/* The key text: MILLOM_OFFER_CONTEXT_KEY as shared/contracts/keys.h resolves it for
 * the profile (sandbox default, generated key file, or required). */
const char *offer_context_key(void);
/* Caller frees. NULL on error. */
char *offer_context_sign(const offer_context *ctx, const char *key);
/* 0 when it authenticates under key and has not expired at now_ms;
 * -1 tampered, foreign (other key) or malformed, -2 expired. */
int offer_context_verify(const char *token, const char *key, int64_t now_ms, offer_context *out);

#endif
