/* The revenue split of one purchase between operator, provider and Millom.
 *
 * Rule (documented in the README): the operator's and the provider's parts
 * are floor(gross * percent / 100); Millom's part is gross minus both. So
 * the parts always add up to the gross to the minor unit, the two external
 * parties are never paid a fraction of a unit that does not exist, and the
 * rounding (less than 2 minor units per purchase) stays with Millom, one
 * party, which makes an audit simple: recompute two floors, subtract. */
#include "settlement.h"

#include <stdio.h>

/* floor(g * pct / 100) for g >= 0 and 0 <= pct <= 100 without overflow:
 * g = 100q + r gives q*pct + floor(r*pct/100). */
static int64_t percent_floor(int64_t g, int pct) {
    return (g / 100) * pct + ((g % 100) * pct) / 100;
}

void shares_split(int64_t gross_minor, const revenue_shares *s, share_split *out) {
    int64_t g = gross_minor < 0 ? 0 : gross_minor; /* callers refuse negatives */
    out->operator_minor = percent_floor(g, s->operator_pct);
    out->provider_minor = percent_floor(g, s->provider_pct);
    out->millom_minor = g - out->operator_minor - out->provider_minor;
}

static int read_pct(json_t *shares, const char *name, int *out, char *err, size_t errlen) {
    json_t *v = json_object_get(shares, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100) {
        snprintf(err, errlen, "revenueShares.%s must be an integer percentage 0..100", name);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

int shares_from_tenant(const tenant_operator *op, revenue_shares *out, char *err, size_t errlen) {
    json_t *shares = op && op->json ? json_object_get(op->json, "revenueShares") : NULL;
    if (!json_is_object(shares)) {
        snprintf(err, errlen, "operator %s has no revenueShares", op ? op->id : "?");
        return -1;
    }
    if (read_pct(shares, "operator", &out->operator_pct, err, errlen) ||
        read_pct(shares, "provider", &out->provider_pct, err, errlen) ||
        read_pct(shares, "millom", &out->millom_pct, err, errlen))
        return -1;
    if (out->operator_pct + out->provider_pct + out->millom_pct != 100) {
        snprintf(err, errlen, "revenueShares of %s do not sum to 100", op->id);
        return -1;
    }
    return 0;
}
