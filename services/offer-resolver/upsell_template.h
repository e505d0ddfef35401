/* An upsellOffer answer written out once, with a hole for each offer's
 * offerContext.
 *
 * For one cached /offers answer everything in the upsellOffer answer but
 * the offerContexts is the same from one request to the next (the cache
 * entry fixes operator, subscriber, language, provider and the backend's
 * filters; the template also checks the rest of the mapping's inputs,
 * upsell_template_fits). Mapping, writing out and freeing the answer's
 * tree were most of an upsellOffer's CPU in offer-resolver; a template
 * is made once per cached answer, and each request only signs fresh
 * offerContexts into its holes (upsell_template_render).
 *
 * Holds: a template is shared (the cache entry keeps one,
 * backend_answer_upsell); each holder releases its hold once. Read-only
 * once made, so any thread may render it. */
#ifndef MILLOM_OFFER_RESOLVER_UPSELL_TEMPLATE_H
#define MILLOM_OFFER_RESOLVER_UPSELL_TEMPLATE_H

#include <stddef.h>

#include "services/offer-resolver/mapping_backend.h"

typedef struct upsell_template upsell_template;

/* The template of m's upsellOffer answer from the backend's /offers body,
 * as a hold; NULL with the reason in err, as mapping_backend.h's map_*
 * functions (which also leave a warning worth logging in err on
 * success). */
upsell_template *upsell_template_new(const mapping_ctx *m, const json_t *backend_offers, char *err,
                                     size_t errlen);
void upsell_template_hold(upsell_template *t);
void upsell_template_release(upsell_template *t); /* NULL is a no-op */

/* 1 when t was made from the same mapping inputs as m would give (the
 * operator's currency and scale, provider, subscriber, language, planType,
 * maxPrice and limit); m's time, keys and offerContext lifetime only
 * count when rendering. */
int upsell_template_fits(const upsell_template *t, const mapping_ctx *m);

/* The answer's text (malloc'd, NUL-terminated, *len bytes): each hole
 * filled with an offerContext signed now with m's keys, expiring at
 * m->now_ms + m->offer_ttl_ms. NULL when signing failed or out of
 * memory. */
char *upsell_template_render(const upsell_template *t, const mapping_ctx *m, size_t *len);

/* The offers' planIds, in the answer's order (for the OfferImpression). */
size_t upsell_template_offers(const upsell_template *t);
const char *upsell_template_plan_id(const upsell_template *t, size_t i);

/* Memory t takes, for the cache's budget. */
size_t upsell_template_bytes(const upsell_template *t);

/* The upsellOffer answer as a tree, as mapping_backend.h's map_*
 * functions give theirs: a template made and rendered once (for the
 * mapping's tests; offer-resolver keeps templates and renders them). */
json_t *map_upsell_offer(const mapping_ctx *m, const json_t *backend_offers, char *err,
                         size_t errlen);

#endif
