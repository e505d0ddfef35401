/* The signed links of a RefreshableOffers body (rich-notification-api.yaml),
 * made in one place for both programs that hand them out: notifier (rich
 * notifications) and api-edge (GET /rnf/.../offers answers fresh ones).
 *
 * For the subscriber's CPID, under /rnf/{serviceProvider}/{operator}/{cpid}/:
 *   refresh   offers                       valid link_ttl_s
 *   ping      ping                         valid link_ttl_s
 *   shop      shop                         valid shop_ttl_s
 *   each offer's purchaseLink:
 *             purchasePlan?planId=<its planId>&transactionId=rnf-<uuid>
 *             [&fundSource=<its fundSource>] valid purchase_ttl_s
 * Every link is signed with signed_link_make (shared/contracts/signed_link.h)
 * and has a fresh uuid; each purchaseLink a fresh transactionId, so using
 * one link twice is one purchase and two links are two. */
#ifndef MILLOM_RNF_LINKS_H
#define MILLOM_RNF_LINKS_H

#include <stdint.h>
#include <jansson.h>

typedef struct {
    const char *base_url; /* MILLOM_PUBLIC_URL: where api-edge answers the links */
    long link_ttl_s;      /* MILLOM_LINK_TTL_S: refresh, ping */
    long shop_ttl_s;      /* MILLOM_LINK_SHOP_TTL_S: shop */
    long purchase_ttl_s;  /* MILLOM_LINK_PURCHASE_TTL_S: each offer's purchaseLink */
} rnf_link_settings;

/* Sets body's "refresh", "ping" and "shop" and, for every object of its
 * "offers" array with a string planId, that offer's "purchaseLink"
 * (replacing any there). 0, or -1 when a link could not be made (a field
 * too long, out of memory): body may then hold some of the links. */
int rnf_links_add(json_t *body, const rnf_link_settings *s, const char *provider, const char *op,
                  const char *cpid, int64_t now_ms);

/* Sets body's "unsubscribe": a signed link to
 * /rnf/{serviceProvider}/{operator}/{cpid}/unsubscribe?type=<type>, valid
 * ttl_s, that records the subscriber's opt-out of that NotificationType for
 * that provider when opened (api-edge's routes_rnf.c). 0 or -1. */
int rnf_link_unsubscribe(json_t *body, const char *base_url, const char *provider, const char *op,
                         const char *cpid, const char *type, long ttl_s, int64_t now_ms);

#endif
