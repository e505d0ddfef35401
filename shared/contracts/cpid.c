/* CPIDs: see cpid.h. AES-256-GCM through crypto_aead_* (shared/plumbing/crypto.h). */
#include "shared/plumbing/settings.h"
#include "shared/contracts/cpid.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/crypto.h"
#include "shared/contracts/keys.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define CPID_VERSION 1
#define IV_LEN CRYPTO_AEAD_IV_LEN
#define TAG_LEN CRYPTO_AEAD_TAG_LEN
#define AAD_PREFIX "millom-cpid-v1,"
/* version + issued-at + ttl + msisdn length */
#define HEADER_LEN (1 + 8 + 4 + 1)
#define MAX_PLAIN (HEADER_LEN + 15 + 64)
/* A CPID issued up to this far in the future still counts (clock skew
 * between api-edge instances). */
#define FUTURE_SKEW_MS 300000

int cpid_config_init_set(cpid_config *c, const keys_set *keys, long ttl_s) {
    memset(c, 0, sizeof *c);
    if (!keys || keys->n == 0 || keys->n > KEYS_MAX_PER_SET) return -1;
    for (size_t i = 0; i < keys->n; i++) {
        memcpy(c->keys[i].kid, keys->e[i].kid, sizeof c->keys[i].kid);
        if (crypto_aead_key_from_text(keys->e[i].secret, c->keys[i].key) != 0) {
            OPENSSL_cleanse(c, sizeof *c);
            return -1;
        }
    }
    c->n = keys->n;
    c->ttl_s = ttl_s > 0 ? ttl_s : CPID_DEFAULT_TTL_S;
    return 0;
}

int cpid_config_init(cpid_config *c, const char *key_text, long ttl_s) {
    keys_set one;
    int rc = keys_set_one(&one, key_text ? key_text : CPID_SANDBOX_KEY) == 0
                 ? cpid_config_init_set(c, &one, ttl_s)
                 : -1;
    OPENSSL_cleanse(&one, sizeof one);
    if (rc != 0) memset(c, 0, sizeof *c);
    return rc;
}

static cpid_config default_config;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void load_default(void) {
    /* The keys per profile (shared/contracts/keys.h); never empty. */
    cpid_config_init_set(
        &default_config, keys_get_set("MILLOM_CPID_KEY"),
        setting_long("MILLOM_CPID_TTL_S", CPID_DEFAULT_TTL_S, 1, 100L * 365 * 86400));
}

/* The key named by kid (kid_len 0: the default key), or NULL. */
static const cpid_key *key_for(const cpid_config *c, const char *kid, size_t kid_len) {
    for (size_t i = 0; i < c->n && i < KEYS_MAX_PER_SET; i++)
        if (strlen(c->keys[i].kid) == kid_len &&
            (kid_len == 0 || memcmp(c->keys[i].kid, kid, kid_len) == 0))
            return &c->keys[i];
    return NULL;
}

const cpid_config *cpid_config_default(void) {
    pthread_once(&default_once, load_default);
    return &default_config;
}

static void put_be(unsigned char *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--, v >>= 8) p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = v << 8 | p[i];
    return v;
}

static int mccmnc_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 5 || n > 6) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return 1;
}

#define AAD_MAX 64
/* The associated data: binds a CPID to its operator suffix and to its key
 * id, when it has one (kid_len bytes at kid). */
static size_t cpid_aad(const char *mccmnc, const char *kid, size_t kid_len, char aad[AAD_MAX]) {
    int n = kid_len ? snprintf(aad, AAD_MAX, AAD_PREFIX "%s;kid=%.*s", mccmnc, (int)kid_len, kid)
                    : snprintf(aad, AAD_MAX, AAD_PREFIX "%s", mccmnc);
    return n > 0 && n < AAD_MAX ? (size_t)n : 0;
}

int cpid_issue(const cpid_config *c, const char *msisdn, const char *provider, const char *mccmnc,
               int64_t now_ms, char *out, size_t outlen) {
    size_t mlen = msisdn ? strlen(msisdn) : 0, plen = provider ? strlen(provider) : 0;
    if (mlen == 0 || mlen > 15 || plen == 0 || plen > 64 || !mccmnc || !mccmnc_ok(mccmnc) ||
        now_ms < 0 || c->n == 0)
        return -1;
    const cpid_key *k = &c->keys[0]; /* the current key */
    size_t kid_len = strlen(k->kid);
    unsigned char plain[MAX_PLAIN];
    plain[0] = CPID_VERSION;
    put_be(plain + 1, (uint64_t)now_ms, 8);
    put_be(plain + 9, (uint64_t)c->ttl_s, 4);
    plain[13] = (unsigned char)mlen;
    memcpy(plain + HEADER_LEN, msisdn, mlen);
    memcpy(plain + HEADER_LEN + mlen, provider, plen);
    int plain_len = (int)(HEADER_LEN + mlen + plen);

    unsigned char blob[IV_LEN + MAX_PLAIN + TAG_LEN];
    char aad[AAD_MAX];
    size_t aad_len = cpid_aad(mccmnc, k->kid, kid_len, aad);
    int n = crypto_aead_seal(k->key, aad, aad_len, plain, (size_t)plain_len, blob);
    OPENSSL_cleanse(plain, sizeof plain);
    if (aad_len == 0 || n != IV_LEN + plain_len + TAG_LEN) return -1;
    char *body = crypto_b64url_encode(blob, (size_t)(IV_LEN + plain_len + TAG_LEN));
    if (!body) return -1;
    int w = snprintf(out, outlen, "%s%s%s,%s", k->kid, kid_len ? "." : "", body, mccmnc);
    free(body);
    return w < 0 || (size_t)w >= outlen ? -1 : 0;
}

cpid_status cpid_decode(const cpid_config *c, const char *cpid, int64_t now_ms, cpid_info *out) {
    memset(out, 0, sizeof *out);
    const char *comma = cpid ? strrchr(cpid, ',') : NULL;
    if (!comma || !mccmnc_ok(comma + 1)) return CPID_MALFORMED;
    size_t blen = (size_t)(comma - cpid), kid_len;
    if (blen == 0 || blen > CPID_MAX_LEN || keys_kid_prefix(cpid, blen, &kid_len) != 0)
        return CPID_MALFORMED;
    /* The key its id names, and no other (none: a foreign or retired key). */
    const char *kid = cpid;
    const cpid_key *k = key_for(c, kid, kid_len);
    if (kid_len) {
        cpid += kid_len + 1;
        blen -= kid_len + 1;
    }
    if (blen == 0) return CPID_MALFORMED;
    /* Accept the standard alphabet and padding too (see cpid.h). */
    char text[CPID_MAX_LEN + 1];
    size_t t = 0, pad = 0;
    for (size_t i = 0; i < blen; i++) {
        char ch = cpid[i];
        if (ch == '=') {
            pad++;
            continue;
        }
        if (pad) return CPID_MALFORMED; /* padding only at the end */
        text[t++] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    }
    if (pad > 2) return CPID_MALFORMED;
    text[t] = '\0';
    size_t len = 0;
    unsigned char *blob = crypto_b64url_decode(text, &len);
    if (!blob) return CPID_MALFORMED;
    if (len < IV_LEN + HEADER_LEN + 1 + 1 + TAG_LEN || len > IV_LEN + MAX_PLAIN + TAG_LEN) {
        free(blob);
        return CPID_MALFORMED;
    }
    int clen = (int)(len - IV_LEN - TAG_LEN);
    unsigned char plain[MAX_PLAIN];
    char aad[AAD_MAX];
    size_t aad_len = cpid_aad(comma + 1, kid, kid_len, aad);
    int n = k && aad_len ? crypto_aead_open(k->key, aad, aad_len, blob, len, plain) : -1;
    free(blob);
    if (n != clen) return CPID_TAMPERED;
    size_t mlen = plain[13];
    if (plain[0] != CPID_VERSION || mlen == 0 || mlen > 15 || HEADER_LEN + mlen >= (size_t)n ||
        (size_t)n - HEADER_LEN - mlen >= sizeof out->provider)
        return CPID_MALFORMED; /* authentic but not ours to read: a future version */
    memcpy(out->msisdn, plain + HEADER_LEN, mlen);
    memcpy(out->provider, plain + HEADER_LEN + mlen, (size_t)n - HEADER_LEN - mlen);
    snprintf(out->mccmnc, sizeof out->mccmnc, "%s", comma + 1);
    out->issued_ms = (int64_t)get_be(plain + 1, 8);
    out->expires_ms = out->issued_ms + (int64_t)get_be(plain + 9, 4) * 1000;
    OPENSSL_cleanse(plain, sizeof plain);
    if (now_ms >= out->expires_ms || out->issued_ms > now_ms + FUTURE_SKEW_MS) return CPID_EXPIRED;
    return CPID_OK;
}

const char *cpid_status_text(cpid_status s) {
    switch (s) {
    case CPID_OK: return "valid";
    case CPID_MALFORMED: return "not a CPID";
    case CPID_TAMPERED:
        return "CPID does not authenticate (tampered, issued elsewhere or under a retired key)";
    case CPID_EXPIRED: return "CPID has expired; get a new one";
    }
    return "?";
}
