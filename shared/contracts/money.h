/* Money is never a float inside Millom: integer minor units with a scale
 * per currency (PKR 2: 160.00 is 16000). JSON carries quoted decimals. */
#ifndef MILLOM_MONEY_H
#define MILLOM_MONEY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* "160.5" with scale 2 -> 16050. -1 on malformed text, too many
 * decimals, or overflow. */
int money_parse(const char *text, int scale, int64_t *minor);
/* 16050, 2 -> "160.50". Returns the length, or -1 if buf is too small. */
int money_format(int64_t minor, int scale, char *buf, size_t buflen);
/* A JSON number (integer or real, as a backend sends it) to minor units,
 * rounded half away from zero at the currency's scale. -1 if not a number
 * or out of range. */
int money_from_json(const json_t *value, int scale, int64_t *minor);

#endif
