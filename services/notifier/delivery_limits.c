/* Per-provider limits of webhook calls (see delivery.h): the tenants
 * fields and the token bucket behind maxPerSecond. No I/O. */
#include "delivery.h"

#include <math.h>
#include <stdio.h>

int provider_limits_read(const json_t *entry, long default_in_flight, provider_limits *out,
                         char *err, size_t errlen) {
    out->max_in_flight = default_in_flight;
    out->max_per_second = 0;
    const json_t *v = json_object_get(entry, "maxInFlight");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > PROVIDER_MAX_IN_FLIGHT_LIMIT) {
            snprintf(err, errlen, "maxInFlight must be an integer from 1 to %d",
                     PROVIDER_MAX_IN_FLIGHT_LIMIT);
            return -1;
        }
        out->max_in_flight = (long)json_integer_value(v);
    }
    v = json_object_get(entry, "maxPerSecond");
    if (v) {
        double r = json_number_value(v);
        if (!json_is_number(v) || !(r > 0) || r > PROVIDER_MAX_PER_SECOND_LIMIT) {
            snprintf(err, errlen, "maxPerSecond must be a number above 0, at most %.0f",
                     PROVIDER_MAX_PER_SECOND_LIMIT);
            return -1;
        }
        out->max_per_second = r;
    }
    return 0;
}

int provider_limits_check(const json_t *tenants_doc, long default_in_flight, char *err,
                          size_t errlen) {
    size_t i;
    const json_t *sp;
    json_array_foreach(json_object_get(tenants_doc, "serviceProviders"), i, sp) {
        provider_limits l;
        char why[128];
        if (provider_limits_read(sp, default_in_flight, &l, why, sizeof why) != 0) {
            const char *id = json_string_value(json_object_get(sp, "id"));
            snprintf(err, errlen, "tenants: serviceProviders[%zu] (%s): %s", i, id ? id : "?", why);
            return -1;
        }
    }
    return 0;
}

static double bucket_size(const rate_bucket *b) { return b->rate < 1 ? 1 : b->rate; }

void rate_bucket_init(rate_bucket *b, double rate, int64_t now_ms) {
    b->rate = rate > 0 ? rate : 0;
    b->tokens = bucket_size(b);
    b->last_ms = now_ms;
}

static void refill(rate_bucket *b, int64_t now_ms) {
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
        if (b->tokens > bucket_size(b)) b->tokens = bucket_size(b);
        b->last_ms = now_ms;
    }
}

long rate_bucket_take(rate_bucket *b, long want, int64_t now_ms) {
    if (b->rate <= 0 || want <= 0) return want > 0 ? want : 0;
    refill(b, now_ms);
    long n = (long)floor(b->tokens);
    if (n > want) n = want;
    b->tokens -= (double)n;
    return n;
}

int64_t rate_bucket_wait_ms(rate_bucket *b, int64_t now_ms) {
    if (b->rate <= 0) return 0;
    refill(b, now_ms);
    if (b->tokens >= 1) return 0;
    return (int64_t)ceil((1 - b->tokens) * 1000.0 / b->rate);
}
