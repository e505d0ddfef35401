/* Money as integer minor units: see money.h.
 *
 * Scales from 0 to 18 are supported (10^18 is the largest power of ten in
 * an int64_t); anything else is an error. Magnitudes are limited to
 * INT64_MAX in both directions, so INT64_MIN is never produced by parsing. */
#include "shared/contracts/money.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MONEY_MAX_SCALE 18

static const int64_t pow10_table[MONEY_MAX_SCALE + 1] = {
    1LL,
    10LL,
    100LL,
    1000LL,
    10000LL,
    100000LL,
    1000000LL,
    10000000LL,
    100000000LL,
    1000000000LL,
    10000000000LL,
    100000000000LL,
    1000000000000LL,
    10000000000000LL,
    100000000000000LL,
    1000000000000000LL,
    10000000000000000LL,
    100000000000000000LL,
    1000000000000000000LL,
};

/* *acc = *acc * 10 + digit, -1 on overflow past INT64_MAX. */
static int push_digit(int64_t *acc, int digit) {
    if (*acc > (INT64_MAX - digit) / 10) return -1;
    *acc = *acc * 10 + digit;
    return 0;
}

int money_parse(const char *text, int scale, int64_t *minor) {
    if (text == NULL || minor == NULL || scale < 0 || scale > MONEY_MAX_SCALE) return -1;
    const char *p = text;
    int negative = 0;
    if (*p == '-') {
        negative = 1;
        p++;
    }
    if (*p < '0' || *p > '9') return -1; /* empty, "-", ".5", "+1", " 1", "abc" */

    int64_t acc = 0;
    while (*p >= '0' && *p <= '9') {
        if (push_digit(&acc, *p - '0') != 0) return -1;
        p++;
    }
    int decimals = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return -1; /* "1." */
        while (*p >= '0' && *p <= '9') {
            if (++decimals > scale) return -1;
            if (push_digit(&acc, *p - '0') != 0) return -1;
            p++;
        }
    }
    if (*p != '\0') return -1; /* "1e3", "1 ", "1.2.3" */
    for (; decimals < scale; decimals++) {
        if (push_digit(&acc, 0) != 0) return -1;
    }
    *minor = negative ? -acc : acc;
    return 0;
}

int money_format(int64_t minor, int scale, char *buf, size_t buflen) {
    if (buf == NULL || scale < 0 || scale > MONEY_MAX_SCALE) return -1;
    uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;

    /* Digits, least significant first, padded so there is at least one
     * digit before the point. */
    char digits[24];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag > 0);
    while (nd < scale + 1) digits[nd++] = '0';

    size_t len = (size_t)nd + (minor < 0 ? 1 : 0) + (scale > 0 ? 1 : 0);
    if (len + 1 > buflen) return -1;
    size_t o = 0;
    if (minor < 0) buf[o++] = '-';
    for (int i = nd - 1; i >= 0; i--) {
        buf[o++] = digits[i];
        if (i == scale && scale > 0) buf[o++] = '.';
    }
    buf[o] = '\0';
    return (int)o;
}

/* Reals: how a double becomes minor units.
 *
 * A backend writes a decimal such as 160.1 or -3.005 and jansson hands us
 * the nearest double, which is usually not that decimal exactly (-3.005 is
 * -3.00499999999999989...). Rounding the exact binary value, as
 * snprintf("%.*f", scale, v) does, would give -3.00 where the backend meant
 * -3.005 and the rule says -3.01; worse, glibc's printf rounds exact binary
 * ties half to even (14.5 -> "14", 0.125 -> "0.12"), not half away from zero.
 *
 * So we first recover the decimal the backend most likely wrote: the value
 * printed to 15 significant digits (DBL_DIG). Any decimal of at most 15
 * significant digits survives text -> double -> 15 digits unchanged, and
 * arithmetic noise such as 0.1 + 0.2 = 0.30000000000000004 collapses to 0.3.
 * Then that decimal is rounded half away from zero at the currency's scale
 * in exact integer arithmetic. Expected results (scale 2): 160.1 -> 16010,
 * 15.5 -> 1550, 0.1 + 0.2 -> 30, -3.005 -> -301, 0.125 -> 13, 1e9 ->
 * 100000000000. NaN, infinities and |v| > 9e15 are rejected (beyond 2^53
 * doubles are not even integers you can trust). */
#define MONEY_REAL_MAX 9e15
#define REAL_DIGITS 15

static int money_from_real(double v, int scale, int64_t *minor) {
    if (!isfinite(v) || fabs(v) > MONEY_REAL_MAX) return -1;

    /* "-d.dddddddddddddde+XX": 15 significant digits. */
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%.*e", REAL_DIGITS - 1, v);
    if (n <= 0 || (size_t)n >= sizeof buf) return -1;
    const char *p = buf;
    int negative = 0;
    if (*p == '-') {
        negative = 1;
        p++;
    }
    int64_t mantissa = 0;
    int ndigits = 0;
    for (; *p != 'e' && *p != '\0'; p++) {
        if (*p == '.' || *p == ',') continue; /* the radix point (',' under a foreign LC_NUMERIC) */
        if (*p < '0' || *p > '9') return -1;
        mantissa = mantissa * 10 + (*p - '0');
        ndigits++;
    }
    if (*p != 'e' || ndigits != REAL_DIGITS) return -1;
    char *end = NULL;
    long exp10 = strtol(p + 1, &end, 10);
    if (end == p + 1 || *end != '\0') return -1;

    /* value = mantissa * 10^(exp10 - 14); minor = value * 10^scale */
    long shift = exp10 - (REAL_DIGITS - 1) + scale;
    int64_t result;
    if (mantissa == 0) {
        result = 0;
    } else if (shift >= 0) {
        if (shift > MONEY_MAX_SCALE || mantissa > INT64_MAX / pow10_table[shift]) return -1;
        result = mantissa * pow10_table[shift];
    } else if (-shift > REAL_DIGITS) {
        result = 0; /* mantissa < 10^15, so below half of the unit */
    } else {
        int64_t div = pow10_table[-shift];
        result = mantissa / div;
        if ((mantissa % div) * 2 >= div)
            result++; /* half away from zero: applied to the magnitude */
    }
    *minor = negative ? -result : result;
    return 0;
}

int money_from_json(const json_t *value, int scale, int64_t *minor) {
    if (value == NULL || minor == NULL || scale < 0 || scale > MONEY_MAX_SCALE) return -1;
    if (json_is_integer(value)) {
        json_int_t v = json_integer_value(value);
        int64_t p = pow10_table[scale];
        if (v > INT64_MAX / p || v < -(INT64_MAX / p)) return -1;
        *minor = (int64_t)v * p;
        return 0;
    }
    if (json_is_real(value)) return money_from_real(json_real_value(value), scale, minor);
    return -1;
}
