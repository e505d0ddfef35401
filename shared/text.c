/* See text.h. */
#include "shared/text.h"

#include <stdarg.h>
#include <stdio.h>

void text_printf(char *buf, size_t len, const char *fmt, ...) {
    if (!buf || len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

void text_copy(char *dst, size_t dstlen, const char *src) {
    if (!dst || dstlen == 0) return;
    snprintf(dst, dstlen, "%s", src ? src : "");
}
