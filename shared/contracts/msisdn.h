/* Subscriber identifiers. */
#ifndef MILLOM_MSISDN_H
#define MILLOM_MSISDN_H

#include <stdbool.h>
#include <stddef.h>

/* Normalizes an E.164 MSISDN: optional leading '+' or "00", then 8 to 15
 * digits, first not 0. Writes the digits to out. false if malformed. */
bool msisdn_normalize(const char *in, char *out, size_t outlen);

#endif
