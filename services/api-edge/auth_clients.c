/* The OAuth clients of the tenants file, their hashed secrets and scopes.
 * See auth.h. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, size_t i, const char *what) {
    snprintf(err, errlen, "clients[%zu]: %s", i, what);
    return -1;
}

static int hex_decode(const char *hex, size_t hexlen, unsigned char *out, size_t outcap,
                      size_t *outlen) {
    if (hexlen % 2 != 0 || hexlen / 2 > outcap || hexlen == 0) return -1;
    for (size_t i = 0; i < hexlen / 2; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t)k];
            unsigned d;
            if (c >= '0' && c <= '9')
                d = (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                d = (unsigned)(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                d = (unsigned)(c - 'A' + 10);
            else
                return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    *outlen = hexlen / 2;
    return 0;
}

/* Parses a stored hash. kind 1 sha256, 2 pbkdf2. -1 if malformed. */
static int parse_hash(const char *stored, int *kind, long *iter, unsigned char *salt,
                      size_t *salt_len, unsigned char *hash, size_t *hash_len) {
    if (strncmp(stored, "sha256:", 7) == 0) {
        *kind = 1;
        if (hex_decode(stored + 7, strlen(stored + 7), hash, 32, hash_len) != 0 || *hash_len != 32)
            return -1;
        return 0;
    }
    if (strncmp(stored, "pbkdf2-sha256:", 14) == 0) {
        *kind = 2;
        const char *p = stored + 14;
        char *end;
        *iter = strtol(p, &end, 10);
        if (end == p || *end != ':' || *iter < 1000 || *iter > 10000000) return -1;
        const char *salt_hex = end + 1;
        const char *colon = strchr(salt_hex, ':');
        if (!colon) return -1;
        if (hex_decode(salt_hex, (size_t)(colon - salt_hex), salt, 64, salt_len) != 0) return -1;
        if (hex_decode(colon + 1, strlen(colon + 1), hash, 64, hash_len) != 0 || *hash_len < 16)
            return -1;
        return 0;
    }
    return -1;
}

/* PBKDF2-HMAC-SHA256 work of a stored hash: iterations times the 32-byte
 * blocks derived (each block runs every iteration); 0 for sha256 and for
 * a malformed hash. */
static long hash_cost(const char *stored) {
    int kind = 0;
    long iter = 0;
    unsigned char salt[64], want[64];
    size_t salt_len = 0, want_len = 0;
    if (!stored || parse_hash(stored, &kind, &iter, salt, &salt_len, want, &want_len) != 0 ||
        kind != 2)
        return 0;
    return iter * (long)((want_len + 31) / 32);
}

/* auth_secret_matches, adding the PBKDF2 work done to *work. */
static int secret_matches(const char *stored, const char *secret, long *work) {
    int kind = 0;
    long iter = 0;
    unsigned char salt[64], want[64], got[64];
    size_t salt_len = 0, want_len = 0;
    if (!stored || !secret ||
        parse_hash(stored, &kind, &iter, salt, &salt_len, want, &want_len) != 0)
        return 0;
    if (kind == 1) {
        unsigned int n = 0;
        if (!EVP_Digest(secret, strlen(secret), got, &n, EVP_sha256(), NULL) || n != 32) return 0;
    } else {
        *work += iter * (long)((want_len + 31) / 32);
        if (!PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, (int)salt_len, (int)iter,
                               EVP_sha256(), (int)want_len, got))
            return 0;
    }
    int ok = CRYPTO_memcmp(got, want, want_len) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return ok;
}

int auth_secret_matches(const char *stored, const char *secret) {
    long work = 0;
    return secret_matches(stored, secret, &work);
}

int auth_check_secret_equal_cost(const auth_clients *cs, const auth_client *c, const char *secret,
                                 auth_hash_work *work) {
    static const unsigned char dummy_salt[16] = {0};
    if (!secret) secret = "";
    int ok = 0;
    size_t slots = cs->max_secrets ? cs->max_secrets : 1;
    for (size_t i = 0; i < slots; i++) {
        long done = 0;
        if (c && i < c->n_secrets) ok |= secret_matches(c->secret_hashes[i], secret, &done);
        long pad = cs->max_cost - done;
        if (pad > 0) { /* the same secret, so its length costs the same too */
            unsigned char out[32];
            if (PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), dummy_salt, sizeof dummy_salt,
                                  (int)pad, EVP_sha256(), sizeof out, out))
                done += pad;
            OPENSSL_cleanse(out, sizeof out);
        }
        if (work) {
            work->hashes++;
            work->iterations += done;
        }
    }
    return c ? ok : 0;
}

int auth_client_check_secret(const auth_client *c, const char *secret) {
    int ok = 0;
    for (size_t i = 0; i < c->n_secrets; i++)
        ok |= auth_secret_matches(c->secret_hashes[i], secret);
    return ok;
}

int auth_client_has_scope(const auth_client *c, const char *scope) {
    for (size_t i = 0; i < c->n_scopes; i++)
        if (strcmp(c->scopes[i], scope) == 0) return 1;
    return 0;
}

int auth_scope_list_has(const char *list, const char *scope) {
    size_t n = strlen(scope);
    if (!list || n == 0) return 0;
    const char *p = list;
    while (*p) {
        while (*p == ' ') p++;
        const char *end = p;
        while (*end && *end != ' ') end++;
        if ((size_t)(end - p) == n && strncmp(p, scope, n) == 0) return 1;
        p = end;
    }
    return 0;
}

static int append_scope(char *out, size_t outlen, const char *s, size_t n) {
    size_t used = strlen(out);
    if (used + (used ? 1 : 0) + n + 1 > outlen) return -1;
    if (used) out[used++] = ' ';
    memcpy(out + used, s, n);
    out[used + n] = '\0';
    return 0;
}

int auth_scope_resolve(const auth_client *c, const char *requested, char *out, size_t outlen) {
    if (outlen == 0) return -1;
    out[0] = '\0';
    const char *p = requested ? requested : "";
    while (*p == ' ') p++;
    if (*p == '\0') { /* nothing asked: everything the client has */
        for (size_t i = 0; i < c->n_scopes; i++)
            if (append_scope(out, outlen, c->scopes[i], strlen(c->scopes[i])) != 0) return -1;
        return 0;
    }
    while (*p) {
        const char *end = p;
        while (*end && *end != ' ') end++;
        size_t n = (size_t)(end - p);
        char one[128];
        if (n >= sizeof one) return -1;
        memcpy(one, p, n);
        one[n] = '\0';
        if (!auth_client_has_scope(c, one)) return -1;
        if (!auth_scope_list_has(out, one) && append_scope(out, outlen, p, n) != 0) return -1;
        p = end;
        while (*p == ' ') p++;
    }
    return 0;
}

static int load_client(auth_client *c, json_t *j, size_t i, const tenants *t, char *err,
                       size_t errlen) {
    if (!json_is_object(j)) return fail(err, errlen, i, "not an object");
    c->id = json_string_value(json_object_get(j, "id"));
    if (!c->id || !c->id[0] || strlen(c->id) > 128 || strchr(c->id, ':'))
        return fail(err, errlen, i, "id missing or invalid");
    c->provider = json_string_value(json_object_get(j, "serviceProvider"));
    c->op = json_string_value(json_object_get(j, "operator"));
    if ((c->provider != NULL) == (c->op != NULL))
        return fail(err, errlen, i, "needs exactly one of serviceProvider and operator");
    if (c->provider && !tenants_provider(t, c->provider))
        return fail(err, errlen, i, "unknown serviceProvider");
    if (c->op && !tenants_operator(t, c->op)) return fail(err, errlen, i, "unknown operator");
    json_t *hashes = json_object_get(j, "secretHashes");
    if (!json_is_array(hashes) || json_array_size(hashes) < 1 ||
        json_array_size(hashes) > AUTH_MAX_SECRETS)
        return fail(err, errlen, i, "secretHashes must hold one or two hashes");
    for (size_t k = 0; k < json_array_size(hashes); k++) {
        const char *h = json_string_value(json_array_get(hashes, k));
        int kind;
        long iter;
        unsigned char salt[64], hash[64];
        size_t sl, hl;
        if (!h || parse_hash(h, &kind, &iter, salt, &sl, hash, &hl) != 0)
            return fail(err, errlen, i, "malformed secret hash");
        c->secret_hashes[c->n_secrets++] = h;
    }
    json_t *scopes = json_object_get(j, "scopes");
    if (!json_is_array(scopes) || json_array_size(scopes) > AUTH_MAX_SCOPES)
        return fail(err, errlen, i, "scopes must be an array (at most 16)");
    for (size_t k = 0; k < json_array_size(scopes); k++) {
        const char *s = json_string_value(json_array_get(scopes, k));
        if (!s || !s[0] || strlen(s) >= 96 || strchr(s, ' '))
            return fail(err, errlen, i, "invalid scope");
        c->scopes[c->n_scopes++] = s;
    }
    json_t *en = json_object_get(j, "enabled");
    if (en && !json_is_boolean(en)) return fail(err, errlen, i, "enabled must be a boolean");
    c->enabled = en ? json_is_true(en) : true;
    c->per_second = 50;
    c->burst = 100;
    json_t *rl = json_object_get(j, "rateLimit");
    if (rl) {
        json_t *ps = json_object_get(rl, "perSecond"), *b = json_object_get(rl, "burst");
        if (!json_is_object(rl) || (ps && !json_is_number(ps)) || (b && !json_is_number(b)))
            return fail(err, errlen, i, "rateLimit needs numeric perSecond and burst");
        if (ps) c->per_second = json_number_value(ps);
        if (b) c->burst = json_number_value(b);
        if (c->per_second <= 0 || c->burst < 1)
            return fail(err, errlen, i, "rateLimit: perSecond > 0 and burst >= 1");
    }
    return 0;
}

int auth_clients_load(auth_clients *out, const tenants *t, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    json_t *arr = json_object_get(tenants_json(t), "clients");
    if (!arr) return 0;
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "clients must be an array");
        return -1;
    }
    out->items = calloc(json_array_size(arr) + 1, sizeof *out->items);
    if (!out->items) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (load_client(&out->items[i], json_array_get(arr, i), i, t, err, errlen) != 0) {
            auth_clients_free(out);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(out->items[k].id, out->items[i].id) == 0) {
                fail(err, errlen, i, "duplicate id");
                auth_clients_free(out);
                return -1;
            }
        out->n++;
        auth_client *c = &out->items[i];
        if (c->n_secrets > out->max_secrets) out->max_secrets = c->n_secrets;
        for (size_t k = 0; k < c->n_secrets; k++) {
            long cost = hash_cost(c->secret_hashes[k]);
            if (cost > out->max_cost) out->max_cost = cost;
        }
    }
    return 0;
}

void auth_clients_free(auth_clients *c) {
    free(c->items);
    c->items = NULL;
    c->n = 0;
}

const auth_client *auth_clients_find(const auth_clients *c, const char *id) {
    if (!id) return NULL;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->items[i].id, id) == 0) return &c->items[i];
    return NULL;
}
