/* Standard Webhooks signatures (https://www.standardwebhooks.com, spec
 * 1.0.0, the symmetric scheme): the contract between notifier, which signs
 * Millom's webhooks to providers, and a provider that checks them
 * (sp-sandbox does, and the README shows a provider how).
 *
 * A signed POST carries three headers:
 *   webhook-id         the delivery's id: the same on every resend (notifier
 *                      sends it as X-Millom-Delivery-Id too)
 *   webhook-timestamp  when this attempt was made, Unix seconds
 *   webhook-signature  "v1,<base64 of HMAC-SHA256(key, id "." timestamp "." body)>"
 *                      for each key, space-separated: two during a rotation
 * A secret is written "whsec_<base64 of the key>" and its key is 24 to 64
 * random bytes. A receiver accepts a request when one v1 signature matches
 * one of its keys and the timestamp is within WEBHOOK_TOLERANCE_S of its
 * clock (so a captured request cannot be replayed later). */
#ifndef MILLOM_WEBHOOK_SIGNATURE_H
#define MILLOM_WEBHOOK_SIGNATURE_H

#include <stddef.h>

#define WEBHOOK_SECRET_PREFIX "whsec_"
#define WEBHOOK_KEY_MIN 24
#define WEBHOOK_KEY_MAX 64
/* Keys at once: the current one and, during a rotation, the next. */
#define WEBHOOK_KEYS_MAX 2
/* How far a webhook-timestamp may be from the receiver's clock. */
#define WEBHOOK_TOLERANCE_S 300
/* A webhook-id: 1 to this many characters, no '.' (it ends where the
 * timestamp begins in the signed text). */
#define WEBHOOK_ID_MAX 256
/* "v1," and 44 characters of base64 (32 bytes). */
#define WEBHOOK_SIGNATURE_LEN 47
/* The webhook-signature header of WEBHOOK_KEYS_MAX signatures, NUL included. */
#define WEBHOOK_SIGNATURE_HEADER_MAX (WEBHOOK_KEYS_MAX * (WEBHOOK_SIGNATURE_LEN + 1))

typedef struct {
    unsigned char bytes[WEBHOOK_KEY_MAX];
    size_t len;
} webhook_key;

/* Reads a "whsec_<base64>" secret (standard base64, padded) into *out.
 * 0, or -1 with a message that never contains the secret. */
int webhook_key_parse(const char *secret, webhook_key *out, char *err, size_t errlen);
/* Wipes the key's bytes. */
void webhook_key_clear(webhook_key *k);

/* The webhook-signature header's value for a request with this id,
 * timestamp and body, signed with each of the n keys (in that order,
 * space-separated) into out (WEBHOOK_SIGNATURE_HEADER_MAX bytes hold
 * WEBHOOK_KEYS_MAX signatures). 0, or -1 when n is 0, the id is not a
 * valid webhook-id or out is too small. */
int webhook_signature_header(const webhook_key *keys, size_t n, const char *id, long long timestamp,
                             const void *body, size_t body_len, char *out, size_t outlen);

typedef enum {
    WEBHOOK_VERIFIED = 0,
    WEBHOOK_MISSING_HEADER, /* webhook-id, -timestamp or -signature absent or empty */
    WEBHOOK_BAD_ID,         /* longer than WEBHOOK_ID_MAX, or with a '.' */
    WEBHOOK_BAD_TIMESTAMP,  /* not a whole number of seconds */
    WEBHOOK_TIMESTAMP_TOO_OLD,
    WEBHOOK_TIMESTAMP_TOO_NEW,
    WEBHOOK_NO_MATCH, /* no v1 signature made with one of the keys over this id, time and body */
} webhook_verdict;

/* What a provider does with a request: the header values as received (any
 * may be NULL), the body as received, its n keys (the first
 * WEBHOOK_KEYS_MAX are used) and its clock (now_s, Unix seconds). Signatures of other versions ("v1a,...") and entries
 * that are not "version,signature" are skipped; only the first 16 entries
 * of a header are looked at. Compares in constant time. */
webhook_verdict webhook_verify(const webhook_key *keys, size_t n, const char *id,
                               const char *timestamp, const char *signature, const void *body,
                               size_t body_len, long long now_s, long tolerance_s);
/* A short English reason for a refusal ("signature does not match"). */
const char *webhook_verdict_text(webhook_verdict v);

#endif
