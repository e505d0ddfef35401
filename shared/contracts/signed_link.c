/* Signed links: see signed_link.h. */
#include "shared/contracts/signed_link.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/crypto.h"
#include "shared/contracts/keys.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *g = realloc(b->p, cap);
        if (!g) {
            b->failed = 1;
            return;
        }
        b->p = g;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* "<length>:<bytes>;" */
static void sb_field(sbuf *b, const char *s) {
    char n[32];
    snprintf(n, sizeof n, "%zu:", strlen(s));
    sb_str(b, n);
    sb_str(b, s);
    sb_add(b, ";", 1);
}

static void sb_escaped(sbuf *b, const char *s) {
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e) {
        b->failed = 1;
        return;
    }
    sb_str(b, e);
    curl_free(e);
}

/* The path, each segment percent-encoded ('/' kept). */
static void sb_path(sbuf *b, const char *path) {
    const char *p = path;
    while (*p) {
        sb_add(b, "/", 1);
        p++;
        size_t n = strcspn(p, "/");
        char *seg = strndup(p, n);
        if (!seg)
            b->failed = 1;
        else if (n)
            sb_escaped(b, seg);
        free(seg);
        p += n;
    }
}

static int reserved(const char *name) {
    return strcmp(name, "uuid") == 0 || strcmp(name, "expirySeconds") == 0 ||
           strcmp(name, "signature") == 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const signed_link_param *)a)->name, ((const signed_link_param *)b)->name);
}

/* The signature: base64url HMAC of the canonical text, params sorted;
 * with the key's id in front (and in the text) when it has one. NULL on
 * failure. */
static char *sign(const keys_entry *key, const char *path, const char *uuid, const char *expiry,
                  const signed_link_param *sorted, size_t n) {
    size_t key_len = strlen(key->secret);
    if (key_len == 0) return NULL;
    sbuf b = {0};
    if (key->kid[0]) {
        sb_field(&b, "millom-link-v2");
        sb_field(&b, key->kid);
    } else {
        sb_field(&b, "millom-link-v1"); /* the default key: links as before key ids */
    }
    sb_field(&b, path);
    sb_field(&b, uuid);
    sb_field(&b, expiry);
    for (size_t i = 0; i < n; i++) {
        if (!sorted[i].value) continue;
        sb_field(&b, sorted[i].name);
        sb_field(&b, sorted[i].value);
    }
    char *mac_text = NULL;
    unsigned char mac[CRYPTO_SHA256_LEN];
    if (!b.failed && crypto_hmac_sha256(key->secret, key_len, b.p, b.len, mac) == 0)
        mac_text = crypto_b64url_encode(mac, sizeof mac);
    free(b.p);
    if (!mac_text || !key->kid[0]) return mac_text;
    sbuf out = {0};
    sb_str(&out, key->kid);
    sb_add(&out, ".", 1);
    sb_str(&out, mac_text);
    free(mac_text);
    if (out.failed) {
        free(out.p);
        return NULL;
    }
    return out.p;
}

/* Copies and sorts params; -1 on a reserved, empty or duplicate name. */
static int sorted_params(const signed_link_param *params, size_t n, signed_link_param *out) {
    if (n > SIGNED_LINK_MAX_PARAMS || (n && !params)) return -1;
    for (size_t i = 0; i < n; i++) {
        if (!params[i].name || !params[i].name[0] || reserved(params[i].name)) return -1;
        out[i] = params[i];
    }
    qsort(out, n, sizeof *out, by_name);
    for (size_t i = 1; i < n; i++)
        if (strcmp(out[i - 1].name, out[i].name) == 0) return -1;
    return 0;
}

char *signed_link_make_keys(const keys_set *keys, const char *base_url, const char *path,
                            const signed_link_param *params, size_t n_params, long ttl_s,
                            int64_t now_ms) {
    signed_link_param sorted[SIGNED_LINK_MAX_PARAMS];
    if (!keys || keys->n == 0 || !path || path[0] != '/' ||
        sorted_params(params, n_params, sorted) != 0)
        return NULL;
    char uuid[37], expiry[32];
    crypto_uuid(uuid);
    snprintf(expiry, sizeof expiry, "%" PRId64, now_ms / 1000 + (int64_t)ttl_s);
    char *sig = sign(&keys->e[0], path, uuid, expiry, sorted, n_params);
    if (!sig) return NULL;

    sbuf b = {0};
    sb_str(&b, base_url ? base_url : "");
    sb_path(&b, path);
    sb_str(&b, "?uuid=");
    sb_str(&b, uuid);
    sb_str(&b, "&expirySeconds=");
    sb_str(&b, expiry);
    for (size_t i = 0; i < n_params; i++) {
        if (!params[i].value) continue;
        sb_add(&b, "&", 1);
        sb_escaped(&b, params[i].name);
        sb_add(&b, "=", 1);
        sb_escaped(&b, params[i].value);
    }
    sb_str(&b, "&signature=");
    sb_str(&b, sig);
    free(sig);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static int uuid_shaped(const char *s) {
    if (strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

int signed_link_verify_keys(const keys_set *keys, const char *path, signed_link_query_fn get,
                            void *ctx, const char *const *names, int64_t now_ms) {
    if (!keys || !path || path[0] != '/' || !get) return SIGNED_LINK_BAD;
    const char *uuid = get(ctx, "uuid");
    const char *expiry = get(ctx, "expirySeconds");
    const char *sig = get(ctx, "signature");
    if (!uuid || !expiry || !sig || !uuid_shaped(uuid)) return SIGNED_LINK_BAD;
    /* The key the signature's id names, and no other (none: forged, or a
     * retired key). */
    size_t kid_len;
    if (keys_kid_prefix(sig, strlen(sig), &kid_len) != 0) return SIGNED_LINK_BAD;
    const keys_entry *key = keys_set_find(keys, sig, kid_len);
    if (!key) return SIGNED_LINK_BAD;
    /* expirySeconds: 1 to 18 decimal digits, nothing else */
    size_t elen = strlen(expiry);
    if (elen == 0 || elen > 18 || strspn(expiry, "0123456789") != elen) return SIGNED_LINK_BAD;
    int64_t expires_s = strtoll(expiry, NULL, 10);

    signed_link_param params[SIGNED_LINK_MAX_PARAMS];
    size_t n = 0;
    for (; names && names[n]; n++) {
        if (n == SIGNED_LINK_MAX_PARAMS) return SIGNED_LINK_BAD;
        params[n].name = names[n];
        params[n].value = get(ctx, names[n]);
    }
    signed_link_param sorted[SIGNED_LINK_MAX_PARAMS];
    if (sorted_params(params, n, sorted) != 0) return SIGNED_LINK_BAD;
    char *want = sign(key, path, uuid, expiry, sorted, n);
    if (!want) return SIGNED_LINK_BAD;
    /* Both are 43 base64url characters (after the same key id) when
     * well-formed: compare that many bytes in constant time; a length
     * mismatch alone fails. */
    size_t wlen = strlen(want);
    int ok = strlen(sig) == wlen && crypto_equal(want, sig, wlen);
    free(want);
    if (!ok) return SIGNED_LINK_BAD;
    if (now_ms / 1000 >= expires_s) return SIGNED_LINK_EXPIRED;
    return SIGNED_LINK_OK;
}

static const keys_set *link_keys;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static void read_key(void) {
    link_keys = keys_get_set("MILLOM_LINK_KEY"); /* per profile: shared/contracts/keys.h */
}

char *signed_link_make(const char *base_url, const char *path, const signed_link_param *params,
                       size_t n_params, long ttl_s, int64_t now_ms) {
    pthread_once(&key_once, read_key);
    return signed_link_make_keys(link_keys, base_url, path, params, n_params, ttl_s, now_ms);
}

int signed_link_make_form(const char *path, const signed_link_param *params, size_t n_params,
                          long ttl_s, int64_t now_ms, signed_link_form *out) {
    pthread_once(&key_once, read_key);
    memset(out, 0, sizeof *out);
    signed_link_param sorted[SIGNED_LINK_MAX_PARAMS];
    if (!path || path[0] != '/' || sorted_params(params, n_params, sorted) != 0) return -1;
    crypto_uuid(out->uuid);
    snprintf(out->expiry, sizeof out->expiry, "%" PRId64, now_ms / 1000 + (int64_t)ttl_s);
    char *sig = sign(&link_keys->e[0], path, out->uuid, out->expiry, sorted, n_params);
    if (!sig || strlen(sig) >= sizeof out->signature) {
        free(sig);
        return -1;
    }
    memcpy(out->signature, sig, strlen(sig) + 1);
    free(sig);
    sbuf b = {0};
    sb_path(&b, path);
    if (b.failed || !b.p) {
        free(b.p);
        return -1;
    }
    out->action = b.p;
    return 0;
}

int signed_link_verify(const char *path, signed_link_query_fn get, void *ctx,
                       const char *const *names, int64_t now_ms) {
    pthread_once(&key_once, read_key);
    return signed_link_verify_keys(link_keys, path, get, ctx, names, now_ms);
}
