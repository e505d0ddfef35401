/* offerContext tokens: see offer_context.h.
 *
 * Claims: {"p":plan,"s":subscriber,"sp":provider,"o":operator,
 *          "a":price_minor,"c":currency,"e":expires_at_ms}
 * Token:  b64url(claims) "." b64url(HMAC-SHA256(key, b64url(claims)))
 *
 * The signature is checked (in constant time) before the claims are even
 * decoded, so nothing of an unsigned payload reaches the JSON parser. */
#include "shared/offer_context.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "shared/crypto.h"

#define DEFAULT_KEY "sandbox-offer-context-key-change-me"
/* Far above any token offer_context_sign() produces (~3 KiB worst case). */
#define MAX_TOKEN_LEN 16384

const char *offer_context_key(void)
{
    const char *key = getenv("MILLOM_OFFER_CONTEXT_KEY");
    return key != NULL && key[0] != '\0' ? key : DEFAULT_KEY;
}

/* The field's text, or NULL when it is not NUL-terminated inside the array. */
#define FIELD(ctx, f) (memchr((ctx)->f, '\0', sizeof (ctx)->f) != NULL ? (ctx)->f : NULL)

static char *b64url_hmac(const char *key, const char *payload)
{
    unsigned char mac[CRYPTO_SHA256_LEN];
    if (crypto_hmac_sha256(key, strlen(key), payload, strlen(payload), mac) != 0)
        return NULL;
    return crypto_b64url_encode(mac, sizeof mac);
}

char *offer_context_sign(const offer_context *ctx, const char *key)
{
    if (ctx == NULL || key == NULL)
        return NULL;
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
    if (claims == NULL)
        return NULL;
    char *json = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    if (json == NULL)
        return NULL;

    char *payload = crypto_b64url_encode(json, strlen(json));
    free(json);
    if (payload == NULL)
        return NULL;
    char *sig = b64url_hmac(key, payload);
    if (sig == NULL) {
        free(payload);
        return NULL;
    }
    size_t plen = strlen(payload), slen = strlen(sig);
    char *token = malloc(plen + 1 + slen + 1);
    if (token != NULL) {
        memcpy(token, payload, plen);
        token[plen] = '.';
        memcpy(token + plen + 1, sig, slen + 1);
    }
    free(payload);
    free(sig);
    return token;
}

/* Copies a string claim into dst; -1 if missing, not a string, or too long. */
static int take_string(json_t *claims, const char *name, char *dst, size_t dstlen)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len >= dstlen || strlen(s) != len)
        return -1;
    memcpy(dst, s, len + 1);
    return 0;
}

static int take_integer(json_t *claims, const char *name, int64_t *dst)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_integer(v))
        return -1;
    *dst = (int64_t)json_integer_value(v);
    return 0;
}

/* On 0 and on -2 (expired) *out gets the claims; on -1 it is untouched. A
 * token is expired from now_ms == expires_at_ms on. */
int offer_context_verify(const char *token, const char *key, int64_t now_ms, offer_context *out)
{
    if (token == NULL || key == NULL)
        return -1;
    size_t token_len = strnlen(token, MAX_TOKEN_LEN + 1);
    if (token_len == 0 || token_len > MAX_TOKEN_LEN)
        return -1;
    const char *dot = strchr(token, '.');
    if (dot == NULL || dot == token || strchr(dot + 1, '.') != NULL || dot[1] == '\0')
        return -1;

    size_t plen = (size_t)(dot - token);
    char *payload = malloc(plen + 1);
    if (payload == NULL)
        return -1;
    memcpy(payload, token, plen);
    payload[plen] = '\0';

    /* Signature first, in constant time. The strict decoder accepts one
     * encoding per byte string, so the token cannot be re-encoded. */
    int rc = -1;
    unsigned char expected[CRYPTO_SHA256_LEN];
    size_t sig_len = 0;
    unsigned char *sig = crypto_b64url_decode(dot + 1, &sig_len);
    unsigned char *json = NULL;
    size_t json_len = 0;
    json_t *claims = NULL;
    offer_context c;
    memset(&c, 0, sizeof c);
    if (sig == NULL || sig_len != CRYPTO_SHA256_LEN)
        goto done;
    if (crypto_hmac_sha256(key, strlen(key), payload, plen, expected) != 0)
        goto done;
    if (!crypto_equal(sig, expected, CRYPTO_SHA256_LEN))
        goto done;

    /* Signed by us: now the claims. */
    json = crypto_b64url_decode(payload, &json_len);
    if (json == NULL)
        goto done;
    claims = json_loadb((const char *)json, json_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims))
        goto done;
    if (take_string(claims, "p", c.plan_id, sizeof c.plan_id) != 0 ||
        take_string(claims, "s", c.subscriber, sizeof c.subscriber) != 0 ||
        take_string(claims, "sp", c.provider, sizeof c.provider) != 0 ||
        take_string(claims, "o", c.op, sizeof c.op) != 0 ||
        take_integer(claims, "a", &c.price_minor) != 0 ||
        take_string(claims, "c", c.currency, sizeof c.currency) != 0 ||
        take_integer(claims, "e", &c.expires_at_ms) != 0)
        goto done;

    rc = now_ms >= c.expires_at_ms ? -2 : 0;
    if (out != NULL)
        *out = c;
done:
    json_decref(claims);
    free(json);
    free(sig);
    free(payload);
    return rc;
}
