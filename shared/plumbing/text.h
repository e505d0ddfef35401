/* Small text helpers every module needs (the shared helper layer, like
 * curl's curlx: text.h, clock.h, files.h). */
#ifndef SHARED_TEXT_H
#define SHARED_TEXT_H

#include <stddef.h>

/* snprintf into buf that does nothing when buf is NULL or len is 0: how
 * every function here fills its caller's `char *err, size_t errlen`. */
void text_printf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copies src (NULL counts as "") into dst, cut to at most dstlen - 1
 * bytes and always NUL-terminated (dstlen > 0). A cut never splits a
 * UTF-8 character: the bytes of one cut in two are dropped. */
void text_copy(char *dst, size_t dstlen, const char *src);

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void text_hex(const unsigned char *in, size_t n, char *out);

#endif
