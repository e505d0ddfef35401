/* Limits on the rich-notification links (routes_rnf.c), per api-edge
 * process: settings read once at start (rnf_limits_init), state in memory
 * and bounded.
 *
 *   MILLOM_LINK_RATE_PER_LINK      20  requests a minute per link (its
 *                                      signature), up to that many at once
 *   MILLOM_LINK_RATE_PER_CPID      60  requests a minute per subscriber over
 *                                      all its links (provider, operator and
 *                                      the subscriber the CPID names)
 *   MILLOM_LINK_PURCHASES_PER_HOUR  5  new purchases per subscriber in any
 *                                      hour through the links (repeating a
 *                                      transaction already let through does
 *                                      not count)
 *   MILLOM_LINK_LIMIT_KEYS      16384  links/subscribers each table holds
 *   MILLOM_LINK_PURCHASE_TTL_S    600  lifetime of the purchase forms the shop
 *                                      renders, and the longest lifetime a
 *                                      purchasePlan link may have
 *   MILLOM_LINK_SHOP_TTL_S       3600  the longest lifetime a shop link may
 *                                      have (notifier mints them with it)
 * and, for the fresh links a GET offers answers with (routes_rnf.c,
 * shared/contracts/rnf_links.h), MILLOM_PUBLIC_URL (http://127.0.0.1:8080)
 * and MILLOM_LINK_TTL_S (86400, refresh and ping), as notifier has them.
 *
 * Scope: every api-edge instance counts for itself. Behind N instances a
 * subscriber gets up to N times the rates and the hourly purchase cap; a
 * restart forgets the counts. A full table forgets the entry used longest
 * ago. */
#ifndef MILLOM_EDGE_RNF_LIMITS_H
#define MILLOM_EDGE_RNF_LIMITS_H

#include <stdint.h>

typedef struct {
    long per_link_per_min, per_cpid_per_min, purchases_per_hour, max_keys;
    long purchase_ttl_s, shop_ttl_s;
    long link_ttl_s;      /* MILLOM_LINK_TTL_S: the read-only links api-edge mints */
    char public_url[256]; /* MILLOM_PUBLIC_URL: their base */
} rnf_settings;

/* Reads the settings (once; later calls do nothing) and logs them. */
void rnf_limits_init(void);
const rnf_settings *rnf_limits_settings(void);

/* 0: allowed; else the seconds for Retry-After. */
int rnf_limit_link(const char *signature, int64_t now_ms);
int rnf_limit_subscriber(const char *subscriber_key, int64_t now_ms);
/* A purchase of transid by the subscriber: 0 when it is new and under the
 * hourly cap (it is counted) or when transid was already let through in
 * the last hour (not counted again); else the seconds until the oldest
 * counted purchase leaves the hour. */
int rnf_purchase_admit(const char *subscriber_key, const char *transid, int64_t now_ms);

#endif
