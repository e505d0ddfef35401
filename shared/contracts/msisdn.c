/* Subscriber identifiers: see msisdn.h. */
#include "shared/contracts/msisdn.h"

#include <string.h>

#define MSISDN_MIN_DIGITS 8
#define MSISDN_MAX_DIGITS 15

/* "+924542610003", "00924542610003" and "924542610003" all become
 * "924542610003". out needs room for the digits and a NUL; it is written
 * only on success. */
bool msisdn_normalize(const char *in, char *out, size_t outlen) {
    if (in == NULL || out == NULL) return false;
    const char *p = in;
    if (p[0] == '+')
        p++;
    else if (p[0] == '0' && p[1] == '0')
        p += 2;

    size_t n = 0;
    while (p[n] != '\0') {
        if (p[n] < '0' || p[n] > '9' || n >= MSISDN_MAX_DIGITS) return false;
        n++;
    }
    if (n < MSISDN_MIN_DIGITS || p[0] == '0' || n + 1 > outlen) return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}
