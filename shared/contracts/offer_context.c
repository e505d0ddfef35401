/* offerContext tokens: see offer_context.h.
 *
 * Claims (the plaintext): {"p":plan,"s":subscriber,"sp":provider,
 *          "o":operator,"a":price_minor,"c":currency,"e":expires_at_ms}
 * Token:  b64url( IV || AES-256-GCM(key, claims, aad) || tag )
 *
 * The tag is checked before the claims are decoded, so nothing of a forged
 * payload reaches the JSON parser; the ciphertext hides every claim. */
#include "shared/contracts/offer_context.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "shared/plumbing/crypto.h"
#include "shared/contracts/keys.h"

#define AAD "millom-offer-context-v1"
#define AAD_MAX 64
/* Far above any token offer_context_sign() produces (~3 KiB worst case). */
#define MAX_TOKEN_LEN 16384

const keys_set *offer_context_keys(void) { return keys_get_set("MILLOM_OFFER_CONTEXT_KEY"); }

/* The associated data: with a key id, the id too (a token cannot be moved
 * under another id). Its length, or 0. */
static size_t context_aad(const char *kid, size_t kid_len, char aad[AAD_MAX]) {
    int n = kid_len ? snprintf(aad, AAD_MAX, AAD ";kid=%.*s", (int)kid_len, kid)
                    : snprintf(aad, AAD_MAX, AAD);
    return n > 0 && n < AAD_MAX ? (size_t)n : 0;
}

/* The field's text, or NULL when it is not NUL-terminated inside the array. */
#define FIELD(ctx, f) (memchr((ctx)->f, '\0', sizeof(ctx)->f) != NULL ? (ctx)->f : NULL)

char *offer_context_claims(const offer_context *ctx) {
    if (ctx == NULL) return NULL;
    const char *plan = FIELD(ctx, plan_id);
    const char *subscriber = FIELD(ctx, subscriber);
    const char *provider = FIELD(ctx, provider);
    const char *op = FIELD(ctx, op);
    const char *currency = FIELD(ctx, currency);
    if (plan == NULL || subscriber == NULL || provider == NULL || op == NULL || currency == NULL)
        return NULL;
    /* json_pack fails on strings that are not valid UTF-8. */
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "p", plan, "s", subscriber, "sp",
                               provider, "o", op, "a", (json_int_t)ctx->price_minor, "c", currency);
    if (claims == NULL) return NULL;
    char *json = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(claims);
    return json;
}

char *offer_context_seal(const char *claims, int64_t expires_at_ms, const keys_set *keys) {
    unsigned char aead_key[CRYPTO_AEAD_KEY_LEN];
    if (claims == NULL || keys == NULL || keys->n == 0) return NULL;
    size_t claims_len = strlen(claims);
    if (claims_len < 2 || claims[0] != '{' || claims[claims_len - 1] != '}') return NULL;
    const keys_entry *key = &keys->e[0]; /* the current key */
    size_t kid_len = strlen(key->kid);
    char aad[AAD_MAX];
    size_t aad_len = context_aad(key->kid, kid_len, aad);
    if (aad_len == 0 || crypto_aead_key_from_text(key->secret, aead_key) != 0) return NULL;

    /* The claims with the expiry last: {...,"e":<ms>} */
    char expiry[32];
    int expiry_len = snprintf(expiry, sizeof expiry, ",\"e\":%" PRId64 "}", expires_at_ms);
    size_t json_len = claims_len - 1 + (size_t)expiry_len;
    char *json = malloc(json_len + 1);
    char *token = NULL, *body = NULL;
    unsigned char *blob = json ? malloc(json_len + CRYPTO_AEAD_OVERHEAD) : NULL;
    if (json != NULL) {
        memcpy(json, claims, claims_len - 1);
        memcpy(json + claims_len - 1, expiry, (size_t)expiry_len + 1);
    }
    if (blob != NULL && crypto_aead_seal(aead_key, aad, aad_len, json, json_len, blob) ==
                            (int)(json_len + CRYPTO_AEAD_OVERHEAD))
        body = crypto_b64url_encode(blob, json_len + CRYPTO_AEAD_OVERHEAD);
    if (body != NULL && kid_len == 0) {
        token = body; /* the default key: no key id, as before key ids */
        body = NULL;
    } else if (body != NULL) {
        size_t body_len = strlen(body);
        token = malloc(kid_len + 1 + body_len + 1);
        if (token != NULL) {
            memcpy(token, key->kid, kid_len);
            token[kid_len] = '.';
            memcpy(token + kid_len + 1, body, body_len + 1);
        }
    }
    free(body);
    if (json != NULL) OPENSSL_cleanse(json, json_len);
    OPENSSL_cleanse(aead_key, sizeof aead_key);
    free(json);
    free(blob);
    return token;
}

char *offer_context_sign(const offer_context *ctx, const keys_set *keys) {
    if (keys == NULL || keys->n == 0) return NULL;
    char *claims = offer_context_claims(ctx);
    if (claims == NULL) return NULL;
    char *token = offer_context_seal(claims, ctx->expires_at_ms, keys);
    OPENSSL_cleanse(claims, strlen(claims));
    free(claims);
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
int offer_context_verify(const char *token, const keys_set *keys, int64_t now_ms,
                         offer_context *out) {
    unsigned char aead_key[CRYPTO_AEAD_KEY_LEN];
    if (token == NULL || keys == NULL) return -1;
    size_t token_len = strnlen(token, MAX_TOKEN_LEN + 1), kid_len;
    if (token_len == 0 || token_len > MAX_TOKEN_LEN ||
        keys_kid_prefix(token, token_len, &kid_len) != 0)
        return -1;
    /* The key its id names, and no other (none: foreign or retired). */
    const keys_entry *key = keys_set_find(keys, token, kid_len);
    char aad[AAD_MAX];
    size_t aad_len = context_aad(token, kid_len, aad);
    if (key == NULL || aad_len == 0 || crypto_aead_key_from_text(key->secret, aead_key) != 0)
        return -1;
    if (kid_len) token += kid_len + 1;

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
        crypto_aead_open(aead_key, aad, aad_len, blob, blob_len, json) != (int)json_len)
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
