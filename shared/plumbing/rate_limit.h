/* Rate limits per key: a token bucket per key in a bounded table.
 *
 * Each key (a link's signature, a subscriber, a client id) has a bucket of
 * `burst` tokens refilled at `per_second`; a request takes one token. The
 * table holds at most max_keys buckets (a fixed array allocated at
 * creation: memory never grows with the number of keys). Keys are stored
 * as a keyed hash (HMAC-SHA-256 with a random per-table key, first 16
 * bytes), so long keys take no room and chosen keys cannot aim at one
 * slot. When the probed slots are all taken, the bucket that was used
 * longest ago is reused: a key forgotten that way starts again with a
 * full bucket (the table should be sized for the keys that are active
 * within one refill period).
 *
 * Thread-safe (one mutex per table). Per process: with several instances
 * of a program each has its own table. */
#ifndef MILLOM_RATE_LIMIT_H
#define MILLOM_RATE_LIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct rate_limit rate_limit;

/* NULL on bad input (per_second <= 0, burst < 1, max_keys 0) or no memory. */
rate_limit *rate_limit_new(double per_second, double burst, size_t max_keys);
void rate_limit_free(rate_limit *l);

/* Takes one token of key's bucket at now_ms. 0: allowed. Otherwise the
 * whole seconds (>= 1) until a token is there again (for Retry-After);
 * nothing is taken. A NULL limiter allows everything. */
int rate_limit_take(rate_limit *l, const char *key, int64_t now_ms);

#endif
