/* See rnf_links.h. */
#include "shared/contracts/rnf_links.h"
#include "shared/contracts/signed_link.h"
#include "shared/plumbing/crypto.h"

#include <stdio.h>
#include <stdlib.h>

/* Sets obj[field] to a signed link to path's endpoint. 0 or -1. */
static int set_link(json_t *obj, const char *field, const rnf_link_settings *s, const char *path,
                    const signed_link_param *params, size_t n_params, long ttl_s, int64_t now) {
    char *link = signed_link_make(s->base_url, path, params, n_params, ttl_s, now);
    int rc = link && json_object_set_new(obj, field, json_string(link)) == 0 ? 0 : -1;
    free(link);
    return rc;
}

int rnf_links_add(json_t *body, const rnf_link_settings *s, const char *provider, const char *op,
                  const char *cpid, int64_t now_ms) {
    const struct {
        const char *field, *action;
        long ttl_s;
    } links[] = {{"refresh", "offers", s->link_ttl_s},
                 {"ping", "ping", s->link_ttl_s},
                 {"shop", "shop", s->shop_ttl_s}};
    char path[512];
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        int w =
            snprintf(path, sizeof path, "/rnf/%s/%s/%s/%s", provider, op, cpid, links[i].action);
        if (w < 0 || (size_t)w >= sizeof path ||
            set_link(body, links[i].field, s, path, NULL, 0, links[i].ttl_s, now_ms) != 0)
            return -1;
    }
    int w = snprintf(path, sizeof path, "/rnf/%s/%s/%s/purchasePlan", provider, op, cpid);
    if (w < 0 || (size_t)w >= sizeof path) return -1;
    size_t i;
    json_t *offer;
    json_array_foreach(json_object_get(body, "offers"), i, offer) {
        const char *plan = json_string_value(json_object_get(offer, "planId"));
        if (!json_is_object(offer) || !plan) continue;
        char uuid[37], tid[48];
        crypto_uuid(uuid);
        snprintf(tid, sizeof tid, "rnf-%s", uuid);
        signed_link_param params[] = {
            {"planId", plan},
            {"transactionId", tid},
            {"fundSource", json_string_value(json_object_get(offer, "fundSource"))},
        };
        if (set_link(offer, "purchaseLink", s, path, params, 3, s->purchase_ttl_s, now_ms) != 0)
            return -1;
    }
    return 0;
}

int rnf_link_unsubscribe(json_t *body, const char *base_url, const char *provider, const char *op,
                         const char *cpid, const char *type, long ttl_s, int64_t now_ms) {
    char path[512];
    int w = snprintf(path, sizeof path, "/rnf/%s/%s/%s/unsubscribe", provider, op, cpid);
    if (w < 0 || (size_t)w >= sizeof path || !type) return -1;
    rnf_link_settings s = {.base_url = base_url};
    signed_link_param params[] = {{"type", type}};
    return set_link(body, "unsubscribe", &s, path, params, 1, ttl_s, now_ms);
}
