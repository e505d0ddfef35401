/* See webhook_signature.h. HMAC and base64 are OpenSSL's
 * (shared/plumbing/crypto.h); the signed text is built in one buffer. */
#include "shared/contracts/webhook_signature.h"
#include "shared/plumbing/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define PREFIX_LEN (sizeof WEBHOOK_SECRET_PREFIX - 1)
#define B64_SIG_LEN 44
/* Entries of a webhook-signature header looked at, at most. */
#define ENTRIES_MAX 16
/* Digits of a webhook-timestamp, at most (Unix seconds until the year 33658). */
#define TIMESTAMP_DIGITS_MAX 12

int webhook_key_parse(const char *secret, webhook_key *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!secret || strncmp(secret, WEBHOOK_SECRET_PREFIX, PREFIX_LEN) != 0) {
        snprintf(err, errlen, "a webhook secret must start with " WEBHOOK_SECRET_PREFIX);
        return -1;
    }
    size_t len = 0;
    unsigned char *key = crypto_b64_decode(secret + PREFIX_LEN, &len);
    if (!key) {
        snprintf(err, errlen,
                 "a webhook secret must be " WEBHOOK_SECRET_PREFIX
                 " and standard base64 (padded with '=')");
        return -1;
    }
    int rc = -1;
    if (len < WEBHOOK_KEY_MIN || len > WEBHOOK_KEY_MAX) {
        snprintf(err, errlen, "a webhook secret's key must be %d to %d bytes, not %zu",
                 WEBHOOK_KEY_MIN, WEBHOOK_KEY_MAX, len);
    } else {
        memcpy(out->bytes, key, len);
        out->len = len;
        rc = 0;
    }
    OPENSSL_cleanse(key, len);
    free(key);
    return rc;
}

void webhook_key_clear(webhook_key *k) {
    if (k) OPENSSL_cleanse(k, sizeof *k);
}

static int id_valid(const char *id) {
    size_t n = id ? strlen(id) : 0;
    return n > 0 && n <= WEBHOOK_ID_MAX && !strchr(id, '.');
}

/* "id.timestamp.body" in one allocation (caller frees), its length in *len. */
static char *signed_text(const char *id, const char *timestamp, const void *body, size_t body_len,
                         size_t *len) {
    size_t id_len = strlen(id), ts_len = strlen(timestamp);
    *len = id_len + 1 + ts_len + 1 + body_len;
    char *text = malloc(*len + 1);
    if (!text) return NULL;
    memcpy(text, id, id_len);
    text[id_len] = '.';
    memcpy(text + id_len + 1, timestamp, ts_len);
    text[id_len + 1 + ts_len] = '.';
    if (body_len) memcpy(text + id_len + ts_len + 2, body, body_len);
    text[*len] = '\0';
    return text;
}

/* The base64 of the key's HMAC over text into out (B64_SIG_LEN + 1). */
static int sign_text(const webhook_key *k, const char *text, size_t len,
                     char out[B64_SIG_LEN + 1]) {
    unsigned char mac[CRYPTO_SHA256_LEN];
    if (crypto_hmac_sha256(k->bytes, k->len, text, len, mac) != 0) return -1;
    char *b64 = crypto_b64_encode(mac, sizeof mac);
    OPENSSL_cleanse(mac, sizeof mac);
    if (!b64 || strlen(b64) != B64_SIG_LEN) {
        free(b64);
        return -1;
    }
    memcpy(out, b64, B64_SIG_LEN + 1);
    free(b64);
    return 0;
}

int webhook_signature_header(const webhook_key *keys, size_t n, const char *id, long long timestamp,
                             const void *body, size_t body_len, char *out, size_t outlen) {
    if (outlen) out[0] = '\0';
    if (!keys || n == 0 || !id_valid(id) || timestamp < 0 || (!body && body_len) ||
        outlen < n * (WEBHOOK_SIGNATURE_LEN + 1))
        return -1;
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", timestamp);
    size_t len;
    char *text = signed_text(id, ts, body, body_len, &len);
    if (!text) return -1;
    int rc = 0;
    size_t at = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char sig[B64_SIG_LEN + 1];
        rc = sign_text(&keys[i], text, len, sig);
        if (rc == 0) at += (size_t)snprintf(out + at, outlen - at, "%sv1,%s", i ? " " : "", sig);
    }
    free(text);
    if (rc != 0 && outlen) out[0] = '\0';
    return rc;
}

/* The timestamp's seconds: digits only, no sign, no spaces. */
static int parse_timestamp(const char *s, long long *out) {
    size_t n = strlen(s);
    if (n == 0 || n > TIMESTAMP_DIGITS_MAX || strspn(s, "0123456789") != n) return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (s[i] - '0');
    *out = v;
    return 0;
}

webhook_verdict webhook_verify(const webhook_key *keys, size_t n, const char *id,
                               const char *timestamp, const char *signature, const void *body,
                               size_t body_len, long long now_s, long tolerance_s) {
    if (!id || !*id || !timestamp || !*timestamp || !signature || !*signature)
        return WEBHOOK_MISSING_HEADER;
    if (!id_valid(id)) return WEBHOOK_BAD_ID;
    long long ts;
    if (parse_timestamp(timestamp, &ts) != 0) return WEBHOOK_BAD_TIMESTAMP;
    if (ts < now_s - tolerance_s) return WEBHOOK_TIMESTAMP_TOO_OLD;
    if (ts > now_s + tolerance_s) return WEBHOOK_TIMESTAMP_TOO_NEW;
    if (!keys || n == 0 || (!body && body_len)) return WEBHOOK_NO_MATCH;

    size_t len;
    char *text = signed_text(id, timestamp, body, body_len, &len);
    if (!text) return WEBHOOK_NO_MATCH;
    char expected[WEBHOOK_KEYS_MAX][B64_SIG_LEN + 1];
    size_t n_expected = 0;
    for (size_t i = 0; i < n && n_expected < WEBHOOK_KEYS_MAX; i++)
        if (sign_text(&keys[i], text, len, expected[n_expected]) == 0) n_expected++;
    free(text);

    int matched = 0;
    const char *p = signature;
    for (int entries = 0; *p && entries < ENTRIES_MAX; entries++) {
        p += strspn(p, " ");
        size_t entry_len = strcspn(p, " ");
        if (entry_len == 0) break;
        /* "v1," then exactly one signature's worth of base64 */
        if (entry_len == WEBHOOK_SIGNATURE_LEN && strncmp(p, "v1,", 3) == 0) {
            for (size_t k = 0; k < n_expected; k++)
                matched |= crypto_equal(p + 3, expected[k], B64_SIG_LEN);
        }
        p += entry_len;
    }
    OPENSSL_cleanse(expected, sizeof expected);
    return matched ? WEBHOOK_VERIFIED : WEBHOOK_NO_MATCH;
}

const char *webhook_verdict_text(webhook_verdict v) {
    switch (v) {
    case WEBHOOK_VERIFIED: return "verified";
    case WEBHOOK_MISSING_HEADER:
        return "webhook-id, webhook-timestamp or webhook-signature is missing";
    case WEBHOOK_BAD_ID: return "webhook-id is too long or has a '.'";
    case WEBHOOK_BAD_TIMESTAMP: return "webhook-timestamp is not a whole number of seconds";
    case WEBHOOK_TIMESTAMP_TOO_OLD: return "webhook-timestamp is too old";
    case WEBHOOK_TIMESTAMP_TOO_NEW: return "webhook-timestamp is in the future";
    case WEBHOOK_NO_MATCH: return "no webhook-signature matches";
    }
    return "unknown";
}
