/* Answering one query on a worker thread: find the backend answer (cache
 * or backend call), map it to the standard API, reply on millom.replies. */
#include "resolver.h"
#include "shared/patterns/backend_client.h"
#include "mapping_backend.h"
#include "shared/plumbing/crypto.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/contracts/money.h"
#include "shared/contracts/offer_context.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/service.h"

#include <stdlib.h>
#include <string.h>

/* impressions.c: the OfferImpression of an upsellOffer answer. */
void impression_publish(resolver *r, const Millom__V1__Query *q, const json_t *answer);

/* Leave the backend this much less than the caller's deadline, so the
 * answer can still travel back before api-edge gives up. */
#define DEADLINE_MARGIN_MS 50

static void reply_json(resolver *r, const Millom__V1__Query *q, int status, json_t *body) {
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text) return;
    if (rpc_reply(r->producer, q->meta, status, "application/json", text, strlen(text), 0) != 0)
        log_warn("cannot produce a reply");
    free(text);
}

static void reply_error(resolver *r, const Millom__V1__Query *q, const char *cause,
                        const char *msg) {
    char *text = error_document_text(cause, msg);
    if (!text) return;
    if (rpc_reply(r->producer, q->meta, error_status(cause), "application/json", text, strlen(text),
                  error_retry_after(cause)) != 0)
        log_warn("cannot produce a reply");
    free(text);
}

/* Calls the backend; on success returns the parsed body, else replies the
 * mapped error and returns NULL. */
static json_t *call_backend(resolver *r, http_client *hc, const Millom__V1__Query *q,
                            const tenant_operator *op, const char *lang, const char *resource) {
    long remaining = (long)(q->meta->deadline_ms - now_ms()) - DEADLINE_MARGIN_MS;
    if (remaining <= 0) return NULL; /* api-edge has answered 503 already */
    int offers = strcmp(resource, "offers") == 0;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", (int)q->limit);
    char trans_id[37];
    if (q->trans_id && *q->trans_id)
        snprintf(trans_id, sizeof trans_id, "%s", q->trans_id);
    else
        crypto_uuid(trans_id);
    backend_request br = {
        .op = op,
        .resource = resource,
        .customer_id = q->subscriber->subscriber_id,
        .customer_id_type =
            q->subscriber->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_OPET ? "OPET" : "MSISDN",
        .channel_id = q->client_name && *q->client_name ? q->client_name : r->channel_id,
        .service_provider = q->service_provider,
        .lang = lang,
        .trans_id = trans_id,
        .dealer_code = q->dealer_code,
        .offer_type = offers ? map_offer_type(q->plan_type) : NULL,
        .max_price = offers ? q->max_price : NULL,
        .number_of_offers = offers && q->limit > 0 ? limit : NULL,
        .timeout_ms = remaining < r->backend_timeout_ms ? remaining : r->backend_timeout_ms,
    };
    http_result res;
    int64_t t0 = mono_ms();
    backend_get(hc, &br, &res);
    metric_observe_ms(r->backend_latency, (double)(mono_ms() - t0));
    json_t *body = NULL;
    if (res.status == 200) {
        body = json_loadb(res.body, res.body_len, 0, NULL);
    }
    if (!body) {
        json_t *err_body = res.body_len ? json_loadb(res.body, res.body_len, 0, NULL) : NULL;
        char msg[256];
        const char *cause;
        if (res.status == 200) {
            cause = CAUSE_SERVICE_UNAVAILABLE;
            snprintf(msg, sizeof msg, "the operator backend sent malformed JSON");
        } else {
            cause = map_backend_error(res.status, err_body, msg, sizeof msg);
        }
        if (res.status == 0 || res.status >= 500)
            log_warn("backend %s %s: status %ld %s", op->id, resource, res.status, res.error);
        json_decref(err_body);
        reply_error(r, q, cause, msg);
    }
    http_result_free(&res);
    return body;
}

/* What answering q needs besides the backend's answer: its operator, the
 * mapping's context and the cache key. */
typedef struct {
    const tenant_operator *op;
    const char *lang;
    int upsell;
    backend_cache_kind kind;
    mapping_ctx m;
    char key[512];
} query_plan;

/* Fills *p for q. -1 when q's operator is unknown. */
static int plan_query(resolver *r, const Millom__V1__Query *q, query_plan *p) {
    const tenant_operator *op = tenants_operator(r->tenants, q->subscriber->operator_);
    if (!op) return -1;
    const char *lang = tenant_operator_language(op, q->language);
    int64_t now = now_ms();
    p->op = op;
    p->lang = lang;
    p->upsell = q->kind == MILLOM__V1__QUERY_KIND__QUERY_KIND_UPSELL_OFFER;
    p->kind = p->upsell ? BACKEND_CACHE_OFFERS : BACKEND_CACHE_BALANCE;
    p->m = (mapping_ctx){
        .op = op,
        .service_provider = q->service_provider,
        .subscriber = q->subscriber->subscriber_id,
        .language = lang,
        .now_ms = now,
        .valid_until_ms = now + r->cache_ttl_ms,
        .plan_type = q->plan_type && *q->plan_type ? q->plan_type : NULL,
        .offer_context_keys = offer_context_keys(),
        .offer_ttl_ms = r->offer_ttl_ms,
        .limit = q->limit > 0 ? (int)q->limit : 0,
    };
    /* api-edge sends maxPrice normalized; anything else is no limit here
     * (the backend judges it itself). */
    if (q->max_price && *q->max_price)
        p->m.has_max_price =
            money_parse(q->max_price, op->currency_scale < 0 ? 0 : op->currency_scale,
                        &p->m.max_price_minor) == 0;
    if (p->upsell) { /* every part of the backend call that can change its answer */
        const char *offer_type = map_offer_type(q->plan_type);
        snprintf(p->key, sizeof p->key, "%s\x1f%s\x1f%s\x1f%s\x1f%d\x1f%s\x1f%s\x1f%d", lang,
                 q->service_provider ? q->service_provider : "",
                 q->client_name && *q->client_name ? q->client_name : r->channel_id,
                 q->dealer_code ? q->dealer_code : "", (int)q->subscriber->key_type,
                 offer_type ? offer_type : "", q->max_price ? q->max_price : "", (int)q->limit);
    } else
        snprintf(p->key, sizeof p->key, "%s", lang);
    return 0;
}

/* A hold on the cached backend answer for q, unless q says no-cache;
 * p->m.valid_until_ms then follows the entry's age. NULL on a miss. */
static backend_answer *cache_lookup(resolver *r, const Millom__V1__Query *q, query_plan *p) {
    if (q->no_cache) return NULL;
    int64_t fetched = 0;
    backend_answer *a = backend_cache_get(r->cache, p->kind, p->op->id, p->m.subscriber, p->key,
                                          p->m.now_ms, &fetched);
    if (!a) return NULL;
    metric_add(p->upsell ? r->offers_hits : r->cache_hits, 1);
    p->m.valid_until_ms = fetched + r->cache_ttl_ms;
    return a;
}

/* Maps the backend's answer to q's kind and replies; releases a. */
static void answer_with(resolver *r, const Millom__V1__Query *q, const query_plan *p,
                        backend_answer *a) {
    const json_t *backend = backend_answer_json(a);
    char warn[256] = "";
    json_t *answer;
    if (p->upsell)
        answer = map_upsell_offer(&p->m, backend, warn, sizeof warn);
    else if (q->kind == MILLOM__V1__QUERY_KIND__QUERY_KIND_ACCOUNT_INFO)
        answer = map_account_info(&p->m, backend, warn, sizeof warn);
    else
        answer = map_balance(&p->m, backend, warn, sizeof warn);
    backend_answer_release(a);
    if (!answer) {
        log_warn("backend answer of %s unusable: %s", p->op->id, warn);
        reply_error(r, q, CAUSE_SERVICE_UNAVAILABLE,
                    "the operator backend sent an unusable answer");
        return;
    }
    if (warn[0]) log_warn("%s", warn);
    /* Queued before reply_json frees the answer; producing does not block. */
    if (p->upsell) impression_publish(r, q, answer);
    reply_json(r, q, 200, answer);
}

int resolver_answer_cached(resolver *r, Millom__V1__Query *q) {
    query_plan p;
    if (q->no_cache || plan_query(r, q, &p) != 0) return 0;
    backend_answer *a = cache_lookup(r, q, &p);
    if (!a) return 0;
    answer_with(r, q, &p, a);
    millom__v1__query__free_unpacked(q, NULL);
    return 1;
}

void resolver_answer(resolver *r, void *http_client_state, Millom__V1__Query *q) {
    http_client *hc = http_client_state;
    query_plan p;
    if (rpc_expired(q->meta)) goto done;
    if (plan_query(r, q, &p) != 0) {
        reply_error(r, q, CAUSE_BAD_REQUEST, "unknown operator");
        goto done;
    }
    /* Looked up again: the answer may have come while q waited. */
    backend_answer *a = cache_lookup(r, q, &p);
    if (!a) {
        metric_add(p.upsell ? r->offers_misses : r->cache_misses, 1);
        json_t *tree = call_backend(r, hc, q, p.op, p.lang, p.upsell ? "offers" : "balance");
        if (!tree) goto done;
        a = backend_cache_put(r->cache, p.kind, p.op->id, p.m.subscriber, p.key, tree, p.m.now_ms);
        if (!a) {
            reply_error(r, q, CAUSE_SERVICE_UNAVAILABLE, "offer-resolver is out of memory");
            goto done;
        }
    }
    answer_with(r, q, &p, a);
done:
    millom__v1__query__free_unpacked(q, NULL);
}
