/* CSV for spreadsheets: RFC 4180 quoting, CRLF rows. See csv.h. */
#include "csv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void csv_append(csv_buf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void csv_field(csv_buf *b, const char *s, int first) {
    if (!first) csv_append(b, ",", 1);
    if (!s) s = "";
    if (!strpbrk(s, ",\"\r\n")) {
        csv_append(b, s, strlen(s));
        return;
    }
    csv_append(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') csv_append(b, "\"", 1);
        csv_append(b, p, 1);
    }
    csv_append(b, "\"", 1);
}

void csv_field_int(csv_buf *b, int64_t v, int first) {
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, v);
    csv_field(b, num, first);
}

void csv_end_row(csv_buf *b) { csv_append(b, "\r\n", 2); }

char *csv_take(csv_buf *b) {
    if (b->failed) {
        free(b->data);
        *b = (csv_buf){0};
        return NULL;
    }
    char *text = b->data ? b->data : strdup("");
    *b = (csv_buf){0};
    return text;
}
