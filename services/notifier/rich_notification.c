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
 *     notifier so it never collides with api-edge's 0). The delivery
 *     worker waits on a condition variable, bounded by
 *     MILLOM_NOTIFY_OFFERS_TIMEOUT_MS (2000). The answer's "offers" (the
 *     standard API's Offer shape already) are the body's offers.
 *   - refresh, ping, shop: signed links (shared/contracts/signed_link.h) to
 *     /rnf/{sp}/{op}/{cpid}/offers, /ping and /shop on MILLOM_PUBLIC_URL
 *     (http://127.0.0.1:8080), valid MILLOM_LINK_TTL_S (86400) seconds
 *     (the shop link, which can buy: MILLOM_LINK_SHOP_TTL_S, 3600, at most
 *     the former), for the CPID issued to that provider at queue time. */
#include "notifier.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/service.h"
#include "shared/contracts/signed_link.h"
#include "millom/v1/query.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The subscriber's upsellOffer offers, or NULL (why in err). */
static json_t *fetch_offers(notifier *n, const char *provider, const char *op, const char *msisdn,
                            const char *language, char *err, size_t errlen) {
    if (!n->rpc) {
        snprintf(err, errlen, "no rpc client");
        return NULL;
    }
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)op;
    sub.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    sub.subscriber_id = (char *)msisdn;
    Millom__V1__Query q = MILLOM__V1__QUERY__INIT;
    q.meta = &meta;
    q.kind = MILLOM__V1__QUERY_KIND__QUERY_KIND_UPSELL_OFFER;
    q.service_provider = (char *)provider;
    q.subscriber = &sub;
    q.language = (char *)(language ? language : "");
    int status;
    char *answer;
    if (rpc_call_wait(n->rpc, n->producer, TOPIC_QUERIES, msisdn, &q.base, &meta,
                      (int)n->offers_timeout_ms, &status, &answer, err, errlen) != 0)
        return NULL;
    json_t *offers = NULL;
    if (status == 0) {
        snprintf(err, errlen, "no answer within %ld ms", n->offers_timeout_ms);
    } else if (status != 200) {
        snprintf(err, errlen, "offer-resolver answered %d: %.200s", status, answer ? answer : "");
    } else {
        json_t *j = answer ? json_loads(answer, 0, NULL) : NULL;
        offers = json_incref(json_object_get(j, "offers"));
        json_decref(j);
        if (!json_is_array(offers)) {
            json_decref(offers);
            offers = NULL;
            snprintf(err, errlen, "the upsellOffer answer has no offers array");
        }
    }
    free(answer);
    return offers;
}

static int set_link(notifier *n, json_t *body, const char *field, const char *provider,
                    const char *op, const char *cpid, const char *action, int64_t now) {
    char path[512];
    int w = snprintf(path, sizeof path, "/rnf/%s/%s/%s/%s", provider, op, cpid, action);
    if (w < 0 || (size_t)w >= sizeof path) return -1;
    long ttl_s = strcmp(action, "shop") == 0 ? n->shop_link_ttl_s : n->link_ttl_s;
    char *link = signed_link_make(n->public_url, path, NULL, 0, ttl_s, now);
    if (!link) return -1;
    json_object_set_new(body, field, json_string(link));
    free(link);
    return 0;
}

char *rich_notification_body(notifier *n, const char *provider, const char *stored) {
    json_t *body = json_loads(stored, 0, NULL);
    json_t *priv = json_object_get(body, "_millom");
    const char *op = json_string_value(json_object_get(priv, "operator"));
    const char *msisdn = json_string_value(json_object_get(priv, "msisdn"));
    const char *language = json_string_value(json_object_get(priv, "language"));
    const char *cpid = json_string_value(json_object_get(body, "cpid"));
    if (!body || !op || !msisdn || !cpid) {
        json_decref(body);
        return NULL; /* not ours to enrich: sent as stored */
    }
    char err[300] = "";
    json_t *offers = fetch_offers(n, provider, op, msisdn, language, err, sizeof err);
    if (!offers) {
        /* A notification without offers is still worth sending: the
         * provider learns of the event, and the refresh and shop links
         * fetch the offers later. */
        log_warn("notification %s to %s sent without offers: %s",
                 json_string_value(json_object_get(body, "transactionId")), provider, err);
        offers = json_array();
    }
    json_object_set_new(body, "offers", offers);
    int64_t now = now_ms();
    if (set_link(n, body, "refresh", provider, op, cpid, "offers", now) != 0 ||
        set_link(n, body, "ping", provider, op, cpid, "ping", now) != 0 ||
        set_link(n, body, "shop", provider, op, cpid, "shop", now) != 0)
        log_warn("cannot sign the links of a notification to %s", provider);
    json_object_del(body, "_millom");
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    return text;
}
