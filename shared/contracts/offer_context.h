/* offerContext: an opaque token that binds an offer to the plan,
 * subscriber, provider, operator, price and an expiry. offer-resolver
 * issues it; purchase-executor verifies it. It is encrypted and
 * authenticated (AES-256-GCM), so a provider that only knows a CPID learns
 * nothing from it (no MSISDN) and cannot change it. Text form:
 *   [<kid> "."] base64url, no padding ( IV[12] || AES-256-GCM(JSON claims) || tag[16] )
 *   AAD = "millom-offer-context-v1" [";kid=" kid]
 * Keys: a key set (shared/contracts/keys.h): MILLOM_OFFER_CONTEXT_KEY, the
 * default key, whose tokens carry no key id (as every token before key ids
 * did), and MILLOM_OFFER_CONTEXT_KEYS, whose tokens start with the key's
 * id and a '.' (no base64url character). The newest signs, the key a
 * token names (and no other) verifies it. Each key is text: 64 hex digits
 * = raw key, else a passphrase hashed with SHA-256. */
#ifndef MILLOM_OFFER_CONTEXT_H
#define MILLOM_OFFER_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "shared/contracts/keys.h"

typedef struct {
    char plan_id[128];
    char subscriber[128]; /* MSISDN or OPET as sent to the backend */
    char provider[64];
    char op[32];
    int64_t price_minor;
    char currency[8];
    int64_t expires_at_ms;
} offer_context;

/* The process's keys: MILLOM_OFFER_CONTEXT_KEY(S) as shared/contracts/keys.h
 * resolves them for the profile (sandbox default, generated key file, or
 * required). */
const keys_set *offer_context_keys(void);
/* A token under keys' current key (e[0]), with its key id. Caller frees.
 * NULL on error. */
char *offer_context_sign(const offer_context *ctx, const keys_set *keys);
/* offer_context_sign in two steps, for tokens of the same offer signed
 * again and again with a new expiry: the claims of ctx but the expiry, as
 * JSON text (malloc'd; NULL when a field is not NUL-terminated or not
 * UTF-8), then a token of those claims expiring at expires_at_ms (NULL
 * on error): the claims offer_context_sign seals for the same ctx. */
char *offer_context_claims(const offer_context *ctx);
char *offer_context_seal(const char *claims, int64_t expires_at_ms, const keys_set *keys);
/* 0 when it authenticates under the key of keys that its key id names and
 * has not expired at now_ms; -1 tampered, foreign or retired key, or
 * malformed, -2 expired. */
int offer_context_verify(const char *token, const keys_set *keys, int64_t now_ms,
                         offer_context *out);

#endif
