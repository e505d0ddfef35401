/* The shop page's purchase forms: see shop_form.h. */
#include "shop_form.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORM_START "<form method=\"post\" action=\""

/* The attribute text s..end with the page's five entities decoded. */
static char *unescape(const char *s, const char *end) {
    char *out = malloc((size_t)(end - s) + 1);
    if (!out) return NULL;
    size_t n = 0;
    static const char *const ent[][2] = {
        {"&amp;", "&"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&lt;", "<"}, {"&gt;", ">"}};
    while (s < end) {
        size_t k = 0;
        for (; k < 5; k++) {
            size_t len = strlen(ent[k][0]);
            if ((size_t)(end - s) >= len && strncmp(s, ent[k][0], len) == 0) {
                out[n++] = ent[k][1][0];
                s += len;
                break;
            }
        }
        if (k == 5) out[n++] = *s++;
    }
    out[n] = '\0';
    return out;
}

/* The value of attr="..." between p and end, decoded; NULL if absent. */
static char *attr(const char *p, const char *end, const char *name) {
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", name);
    const char *a = strstr(p, pat);
    if (!a || a >= end) return NULL;
    a += strlen(pat);
    const char *q = strchr(a, '"');
    if (!q || q > end) return NULL;
    return unescape(a, q);
}

int test_shop_form_count(const char *html) {
    int n = 0;
    for (const char *p = html; p && (p = strstr(p, FORM_START)); p++) n++;
    return n;
}

int test_shop_form(const char *html, int index, const char *base, char **url, char **body,
                   char *tid, size_t tidlen) {
    *url = *body = NULL;
    const char *form = html;
    for (int i = 0; form && i <= index; i++) {
        form = strstr(i ? form + 1 : form, FORM_START);
    }
    if (!form) return -1;
    const char *end = strstr(form, "</form>");
    if (!end) return -1;
    char *action = attr(form, end, "action");
    if (!action) return -1;
    size_t ulen = strlen(base) + strlen(action) + 1;
    *url = malloc(ulen);
    if (*url) snprintf(*url, ulen, "%s%s", base, action);
    free(action);
    size_t cap = 4096, n = 0;
    *body = calloc(1, cap);
    for (const char *p = form; (p = strstr(p, "<input")) && p < end; p++) {
        const char *close = strchr(p, '>');
        char *name = attr(p, close, "name"), *value = attr(p, close, "value");
        if (name && value && *body) {
            if (tid && strcmp(name, "transactionId") == 0) snprintf(tid, tidlen, "%s", value);
            char *en = curl_easy_escape(NULL, name, 0), *ev = curl_easy_escape(NULL, value, 0);
            n += (size_t)snprintf(*body + n, n < cap ? cap - n : 0, "%s%s=%s", n ? "&" : "",
                                  en ? en : "", ev ? ev : "");
            curl_free(en);
            curl_free(ev);
        }
        free(name);
        free(value);
    }
    if (!*url || !*body || n >= cap) {
        free(*url);
        free(*body);
        *url = *body = NULL;
        return -1;
    }
    return 0;
}
