/* The rich notification body as it is sent, built at delivery time (each
 * attempt), so the offers and the links' expiry are fresh when the
 * provider gets them.
 *
 * notify_events.c queues {eventType, transactionId, cpid, offers: [],
 * "_millom": {operator, msisdn, language}}; the private "_millom" part says
 * whom to ask about and never leaves notifier. Here:
 *   - offers: an upsellOffer Query (QUERY_KIND_UPSELL_OFFER) to
 *     offer-resolver on millom.queries, the Reply read on notifier's own
 *     partition of millom.replies (MILLOM_REPLY_PARTITION, default 7 for
 *     notifier so it never collides with api-edge's 0), asked without
 *     blocking and shared by subscriber for a short while
 *     (offers_cache.c), bounded by MILLOM_NOTIFY_OFFERS_TIMEOUT_MS (2000).
 *     The answer's "offers" (the standard API's Offer shape already) are
 *     the body's offers; [] after a timeout or an error.
 *   - refresh, ping, shop and each offer's purchaseLink: signed links
 *     (shared/contracts/rnf_links.h) to /rnf/{sp}/{op}/{cpid}/offers,
 *     /ping, /shop and /purchasePlan on MILLOM_PUBLIC_URL
 *     (http://127.0.0.1:8080), valid MILLOM_LINK_TTL_S (86400) seconds
 *     (those that can buy less: the shop MILLOM_LINK_SHOP_TTL_S, 3600,
 *     a purchaseLink MILLOM_LINK_PURCHASE_TTL_S, 600; neither longer than
 *     the former), for the CPID issued to that provider at queue time;
 *   - unsubscribe: a signed link to /rnf/{sp}/{op}/{cpid}/unsubscribe?type=
 *     <eventType>, valid MILLOM_LINK_UNSUBSCRIBE_TTL_S (30 days), with which
 *     the subscriber opts out of that type from that provider. */
#include "delivery.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/contracts/rnf_links.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rich_notification_target(const char *stored, rich_target *t) {
    json_t *body = json_loads(stored, 0, NULL);
    json_t *priv = json_object_get(body, "_millom");
    const char *op = json_string_value(json_object_get(priv, "operator"));
    const char *msisdn = json_string_value(json_object_get(priv, "msisdn"));
    const char *language = json_string_value(json_object_get(priv, "language"));
    const char *cpid = json_string_value(json_object_get(body, "cpid"));
    int ok = op && msisdn && cpid && strlen(op) < sizeof t->op &&
             strlen(msisdn) < sizeof t->msisdn &&
             (!language || strlen(language) < sizeof t->language);
    if (ok) {
        snprintf(t->op, sizeof t->op, "%s", op);
        snprintf(t->msisdn, sizeof t->msisdn, "%s", msisdn);
        snprintf(t->language, sizeof t->language, "%s", language ? language : "");
    }
    json_decref(body);
    return ok;
}

char *rich_notification_render(notifier *n, const char *provider, const char *stored,
                               json_t *offers) {
    json_t *body = json_loads(stored, 0, NULL);
    json_t *priv = json_object_get(body, "_millom");
    const char *op = json_string_value(json_object_get(priv, "operator"));
    const char *cpid = json_string_value(json_object_get(body, "cpid"));
    if (!body || !op || !cpid || !json_object_get(priv, "msisdn")) {
        json_decref(body);
        return NULL; /* not ours to enrich: sent as stored */
    }
    /* A notification without offers is still worth sending: the provider
     * learns of the event, and the refresh and shop links fetch the
     * offers later. */
    if (offers)
        json_object_set(body, "offers", offers); /* shared, read only */
    else
        json_object_set_new(body, "offers", json_array());
    /* The offers are shared (read only): each purchaseLink goes on a copy. */
    json_t *own = json_deep_copy(json_object_get(body, "offers"));
    if (own) json_object_set_new(body, "offers", own);
    rnf_link_settings links = {
        .base_url = n->public_url,
        .link_ttl_s = n->link_ttl_s,
        .shop_ttl_s = n->shop_link_ttl_s,
        .purchase_ttl_s = n->purchase_link_ttl_s,
    };
    int64_t now = now_ms();
    if (!own || rnf_links_add(body, &links, provider, op, cpid, now) != 0 ||
        rnf_link_unsubscribe(body, n->public_url, provider, op, cpid,
                             json_string_value(json_object_get(body, "eventType")),
                             n->unsubscribe_link_ttl_s, now) != 0)
        log_warn("cannot sign the links of a notification to %s", provider);
    json_object_del(body, "_millom");
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    return text;
}
