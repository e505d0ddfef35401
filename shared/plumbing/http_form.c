/* See http_form.h. */
#include "shared/plumbing/http_form.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
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
