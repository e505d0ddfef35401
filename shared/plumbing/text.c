/* See text.h. */
#include "shared/plumbing/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void text_printf(char *buf, size_t len, const char *fmt, ...) {
    if (!buf || len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

void text_copy(char *dst, size_t dstlen, const char *src) {
    if (!dst || dstlen == 0) return;
    if (!src) src = "";
    size_t n = strlen(src);
    if (n >= dstlen) {
        n = dstlen - 1;
        /* Do not keep the first bytes of a character cut in two. */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void text_hex(const unsigned char *in, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}
