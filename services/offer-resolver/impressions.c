/* The data feedback loop (issue 7): after a successful upsellOffer answer,
 * one OfferImpression says which plans a provider was shown for a
 * subscriber, so settlement-reporter can compare offers shown with
 * purchases made. Keyed by operator like the other settlement topics.
 *
 * The subscriber is a keyed hash, never the MSISDN: hex HMAC-SHA256 of
 * the subscriber id (shared/contracts/subscriber_hash.h), the same function as
 * settlement-reporter's records, so the two can be joined.
 * Best effort: the SP's answer never waits for or fails on it. */
#include "resolver.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/crypto.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/contracts/subscriber_hash.h"
#include "millom/v1/settlement.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PLANS 64

void impression_publish(resolver *r, const Millom__V1__Query *q, const upsell_template *t) {
    char *plans[MAX_PLANS];
    size_t n = 0;
    for (size_t i = 0; i < upsell_template_offers(t) && n < MAX_PLANS; i++)
        plans[n++] = (char *)upsell_template_plan_id(t, i);
    if (n == 0) return; /* nothing was shown (e.g. NEED_TOPUP) */
    char hash[65], id[37];
    subscriber_hash(q->subscriber->subscriber_id, hash);
    /* Time-ordered: settlement-reporter's indexes on the id take each
     * impression at their end, not on a random page (a random id cost it
     * a page read and a page written per impression). */
    crypto_uuid_v7(id);
    Millom__V1__OfferImpression im = MILLOM__V1__OFFER_IMPRESSION__INIT;
    im.operator_ = q->subscriber->operator_;
    im.service_provider = q->service_provider;
    im.subscriber_hash = hash;
    im.plan_ids = plans;
    im.n_plan_ids = n;
    im.shown_at_ms = now_ms();
    im.impression_id = id;
    size_t len = millom__v1__offer_impression__get_packed_size(&im);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return;
    millom__v1__offer_impression__pack(&im, buf);
    if (kafka_produce(r->producer, TOPIC_OFFER_IMPRESSIONS, -1, im.operator_, strlen(im.operator_),
                      buf, len, NULL, 0) != 0)
        log_warn("cannot produce an offer impression");
    free(buf);
}
