/* See http_form.h. */
#include "shared/plumbing/http_form.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* curl_easy_unescape of s[0..n) with '+' meaning space (form encoding).
 * -1 if it holds a NUL or does not fit. */
static int form_decode(const char *s, size_t n, char *out, size_t outlen) {
    char *copy = malloc(n + 1);
    if (!copy) return -1;
    memcpy(copy, s, n);
    copy[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (copy[i] == '+') copy[i] = ' ';
    int len = 0;
    char *dec = curl_easy_unescape(NULL, copy, (int)n, &len);
    free(copy);
    if (!dec) return -1;
    int rc = -1;
    if (len >= 0 && (size_t)len < outlen && strlen(dec) == (size_t)len) {
        memcpy(out, dec, (size_t)len + 1);
        rc = 0;
    }
    curl_free(dec);
    return rc;
}

int http_basic_parse(const char *header, char *id, size_t idlen, char *secret, size_t secretlen) {
    if (!header || strncasecmp(header, "Basic ", 6) != 0) return -1;
    const char *b64 = header + 6;
    while (*b64 == ' ') b64++;
    size_t n = strlen(b64);
    while (n > 0 && b64[n - 1] == ' ') n--;
    if (n == 0 || n % 4 != 0 || n > 1024) return -1;
    unsigned char raw[800];
    int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
    if (len < 0) return -1;
    if (b64[n - 1] == '=') len--;
    if (b64[n - 2] == '=') len--;
    if (len <= 0) return -1;
    const unsigned char *colon = memchr(raw, ':', (size_t)len);
    if (!colon || memchr(raw, '\0', (size_t)len)) return -1;
    size_t id_n = (size_t)(colon - raw);
    if (id_n == 0) return -1;
    if (form_decode((const char *)raw, id_n, id, idlen) != 0 ||
        form_decode((const char *)colon + 1, (size_t)len - id_n - 1, secret, secretlen) != 0)
        return -1;
    return id[0] ? 0 : -1;
}

int http_form_get(const char *body, size_t len, const char *name, char *out, size_t outlen) {
    int found = 0;
    size_t i = 0;
    while (body && i < len) {
        size_t start = i;
        while (i < len && body[i] != '&') i++;
        size_t end = i++; /* pair is body[start..end) */
        if (end == start) continue;
        const char *eq = memchr(body + start, '=', end - start);
        size_t key_end = eq ? (size_t)(eq - body) : end;
        char key[64];
        if (form_decode(body + start, key_end - start, key, sizeof key) != 0) continue;
        if (strcmp(key, name) != 0) continue;
        if (found) return -1; /* RFC 6749 §3.2: no parameter twice */
        found = 1;
        if (!eq) {
            if (outlen) out[0] = '\0';
        } else if (form_decode(eq + 1, end - key_end - 1, out, outlen) != 0) {
            return -1;
        }
    }
    return found;
}

const char *client_credentials_read(const char *content_type, const char *authorization,
                                    const char *body, size_t len, client_credentials *out,
                                    int *status, const char **description) {
    memset(out, 0, sizeof *out);
    *status = 400;
    if (!content_type || strncasecmp(content_type, "application/x-www-form-urlencoded", 33) != 0) {
        *description = "the body must be application/x-www-form-urlencoded";
        return "invalid_request";
    }
    char grant[64], form_id[sizeof out->id], form_secret[sizeof out->secret];
    int g = http_form_get(body, len, "grant_type", grant, sizeof grant);
    int fi = http_form_get(body, len, "client_id", form_id, sizeof form_id);
    int fs = http_form_get(body, len, "client_secret", form_secret, sizeof form_secret);
    int sc = http_form_get(body, len, "scope", out->scope, sizeof out->scope);
    const char *error = NULL;
    if (g < 0 || fi < 0 || fs < 0 || sc < 0) {
        *description = "a parameter is repeated, malformed or too long";
        error = "invalid_request";
    } else if (g == 0) {
        *description = "grant_type is missing";
        error = "invalid_request";
    } else if (strcmp(grant, "client_credentials") != 0) {
        *description = "only client_credentials is supported";
        error = "unsupported_grant_type";
    } else if (authorization) {
        if (http_basic_parse(authorization, out->id, sizeof out->id, out->secret,
                             sizeof out->secret) != 0) {
            *status = 401;
            *description = "malformed Basic credentials";
            error = "invalid_client";
        } else if (fs == 1 || (fi == 1 && strcmp(form_id, out->id) != 0)) {
            *description = "use one way of client authentication";
            error = "invalid_request";
        }
    } else if (fi == 1 && fs == 1) {
        memcpy(out->id, form_id, sizeof out->id);
        memcpy(out->secret, form_secret, sizeof out->secret);
    } else {
        *status = 401;
        *description = "client credentials are required";
        error = "invalid_client";
    }
    out->has_scope = sc == 1;
    OPENSSL_cleanse(form_secret, sizeof form_secret);
    if (error) OPENSSL_cleanse(out->secret, sizeof out->secret);
    return error;
}
