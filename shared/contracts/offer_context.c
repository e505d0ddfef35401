/* offerContext tokens: see offer_context.h.
 *
 * Claims (the plaintext): {"p":plan,"s":subscriber,"sp":provider,
 *          "o":operator,"a":price_minor,"c":currency,"e":expires_at_ms}
 * Token:  b64url( IV || AES-256-GCM(key, claims, aad) || tag )
 *
 * The tag is checked before the claims are decoded, so nothing of a forged
 * payload reaches the JSON parser; the ciphertext hides every claim. */
#include "shared/contracts/offer_context.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "shared/plumbing/crypto.h"
#include "shared/contracts/keys.h"

#define AAD "millom-offer-context-v1"
/* Far above any token offer_context_sign() produces (~3 KiB worst case). */
#define MAX_TOKEN_LEN 16384

const char *offer_context_key(void) { return keys_get("MILLOM_OFFER_CONTEXT_KEY"); }

/* The field's text, or NULL when it is not NUL-terminated inside the array. */
#define FIELD(ctx, f) (memchr((ctx)->f, '\0', sizeof(ctx)->f) != NULL ? (ctx)->f : NULL)

char *offer_context_sign(const offer_context *ctx, const char *key) {
    unsigned char aead_key[CRYPTO_AEAD_KEY_LEN];
    if (ctx == NULL || key == NULL || crypto_aead_key_from_text(key, aead_key) != 0) return NULL;
    const char *plan = FIELD(ctx, plan_id);
    const char *subscriber = FIELD(ctx, subscriber);
    const char *provider = FIELD(ctx, provider);
    const char *op = FIELD(ctx, op);
    const char *currency = FIELD(ctx, currency);
    if (plan == NULL || subscriber == NULL || provider == NULL || op == NULL || currency == NULL)
        return NULL;

    /* json_pack fails on strings that are not valid UTF-8. */
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I}", "p", plan, "s", subscriber,
                               "sp", provider, "o", op, "a", (json_int_t)ctx->price_minor, "c",
                               currency, "e", (json_int_t)ctx->expires_at_ms);
    if (claims == NULL) return NULL;
    char *json = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    if (json == NULL) return NULL;

    size_t json_len = strlen(json);
    char *token = NULL;
    unsigned char *blob = malloc(json_len + CRYPTO_AEAD_OVERHEAD);
    if (blob != NULL && crypto_aead_seal(aead_key, AAD, strlen(AAD), json, json_len, blob) ==
                            (int)(json_len + CRYPTO_AEAD_OVERHEAD))
        token = crypto_b64url_encode(blob, json_len + CRYPTO_AEAD_OVERHEAD);
    OPENSSL_cleanse(json, json_len);
    OPENSSL_cleanse(aead_key, sizeof aead_key);
    free(json);
    free(blob);
    return token;
}

/* Copies a string claim into dst; -1 if missing, not a string, or too long. */
static int take_string(json_t *claims, const char *name, char *dst, size_t dstlen) {
    json_t *v = json_object_get(claims, name);
    if (!json_is_string(v)) return -1;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len >= dstlen || strlen(s) != len) return -1;
    memcpy(dst, s, len + 1);
    return 0;
}

static int take_integer(json_t *claims, const char *name, int64_t *dst) {
    json_t *v = json_object_get(claims, name);
    if (!json_is_integer(v)) return -1;
    *dst = (int64_t)json_integer_value(v);
    return 0;
}

/* On 0 and on -2 (expired) *out gets the claims; on -1 it is untouched. A
 * token is expired from now_ms == expires_at_ms on. */
int offer_context_verify(const char *token, const char *key, int64_t now_ms, offer_context *out) {
    unsigned char aead_key[CRYPTO_AEAD_KEY_LEN];
    if (token == NULL || key == NULL || crypto_aead_key_from_text(key, aead_key) != 0) return -1;
    size_t token_len = strnlen(token, MAX_TOKEN_LEN + 1);
    if (token_len == 0 || token_len > MAX_TOKEN_LEN) return -1;

    /* The strict decoder accepts one encoding per byte string, so the
     * token cannot be re-encoded; the tag is checked before any parsing. */
    int rc = -1;
    size_t blob_len = 0, json_len = 0;
    unsigned char *blob = crypto_b64url_decode(token, &blob_len);
    unsigned char *json = NULL;
    json_t *claims = NULL;
    offer_context c;
    memset(&c, 0, sizeof c);
    if (blob == NULL || blob_len <= CRYPTO_AEAD_OVERHEAD) goto done;
    json_len = blob_len - CRYPTO_AEAD_OVERHEAD;
    json = malloc(json_len);
    if (json == NULL ||
        crypto_aead_open(aead_key, AAD, strlen(AAD), blob, blob_len, json) != (int)json_len)
        goto done;

    /* Sealed by us: now the claims. */
    claims = json_loadb((const char *)json, json_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims)) goto done;
    if (take_string(claims, "p", c.plan_id, sizeof c.plan_id) != 0 ||
        take_string(claims, "s", c.subscriber, sizeof c.subscriber) != 0 ||
        take_string(claims, "sp", c.provider, sizeof c.provider) != 0 ||
        take_string(claims, "o", c.op, sizeof c.op) != 0 ||
        take_integer(claims, "a", &c.price_minor) != 0 ||
        take_string(claims, "c", c.currency, sizeof c.currency) != 0 ||
        take_integer(claims, "e", &c.expires_at_ms) != 0)
        goto done;

    rc = now_ms >= c.expires_at_ms ? -2 : 0;
    if (out != NULL) *out = c;
done:
    json_decref(claims);
    if (json != NULL) OPENSSL_cleanse(json, json_len);
    free(json);
    free(blob);
    OPENSSL_cleanse(aead_key, sizeof aead_key);
    return rc;
}
