/* Answering one query: find the backend's answer (the cache, else a call
 * to the operator's backend), map it to the standard API, reply on
 * millom.replies.
 *
 * Three threads take part. The Kafka consumer thread answers from the
 * cache and starts each miss's call on the backend loop (http_loop.h),
 * whose thread maps and replies when the answer comes: a call waiting on
 * the operator holds a socket, not a thread. Only when the operator's
 * backendAuth token has to be fetched first (at start, at expiry, after a
 * 401) does the query go to a worker, which may wait for the fetch and
 * then makes the call itself. */
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

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

/* impressions.c: the OfferImpression of an upsellOffer answer, which
 * showed template t's offers. */
void impression_publish(resolver *r, const Millom__V1__Query *q, const upsell_template *t);

/* Leave the backend this much less than the caller's deadline, so the
 * answer can still travel back before api-edge gives up. */
#define DEADLINE_MARGIN_MS 50

/* A 200 with text, the mapped answer as JSON. */
static void reply_text(resolver *r, const Millom__V1__Query *q, const char *text, size_t len) {
    if (rpc_reply(r->producer, q->meta, 200, "application/json", text, len, 0) != 0)
        log_warn("cannot produce a reply");
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

/* The backend request of q: its operator, resource and filters, and a
 * timeout that leaves the answer time to travel back before the caller's
 * deadline. -1 when that deadline is (nearly) over: api-edge has answered
 * 503 already. */
typedef struct {
    backend_request req;
    char trans_id[37];
    char limit[16];
} backend_args;

static int backend_args_for(resolver *r, const Millom__V1__Query *q, const query_plan *p,
                            backend_args *b) {
    long remaining = (long)(q->meta->deadline_ms - now_ms()) - DEADLINE_MARGIN_MS;
    if (remaining <= 0) return -1;
    snprintf(b->limit, sizeof b->limit, "%d", (int)q->limit);
    if (q->trans_id && *q->trans_id)
        snprintf(b->trans_id, sizeof b->trans_id, "%s", q->trans_id);
    else
        crypto_uuid(b->trans_id);
    b->req = (backend_request){
        .op = p->op,
        .resource = p->upsell ? "offers" : "balance",
        .customer_id = q->subscriber->subscriber_id,
        .customer_id_type =
            q->subscriber->key_type == MILLOM__V1__KEY_TYPE__KEY_TYPE_OPET ? "OPET" : "MSISDN",
        .channel_id = q->client_name && *q->client_name ? q->client_name : r->channel_id,
        .service_provider = q->service_provider,
        .lang = p->lang,
        .trans_id = b->trans_id,
        .dealer_code = q->dealer_code,
        .offer_type = p->upsell ? map_offer_type(q->plan_type) : NULL,
        .max_price = p->upsell ? q->max_price : NULL,
        .number_of_offers = p->upsell && q->limit > 0 ? b->limit : NULL,
        .timeout_ms = remaining < r->backend_timeout_ms ? remaining : r->backend_timeout_ms,
    };
    return 0;
}

/* Replies the mapped error of the backend's answer res to q: not a 200,
 * or a 200 whose body is not JSON. */
static void reply_backend_error(resolver *r, const Millom__V1__Query *q, const query_plan *p,
                                const http_result *res) {
    json_t *err_body = res->body_len ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    char msg[256];
    const char *cause;
    if (res->status == 200) {
        cause = CAUSE_SERVICE_UNAVAILABLE;
        snprintf(msg, sizeof msg, "the operator backend sent malformed JSON");
    } else {
        cause = map_backend_error(res->status, err_body, msg, sizeof msg);
    }
    if (res->status == 0 || res->status >= 500)
        log_warn("backend %s %s: status %ld %s", p->op->id, p->upsell ? "offers" : "balance",
                 res->status, res->error);
    json_decref(err_body);
    reply_error(r, q, cause, msg);
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

/* After mapping a: when nothing came of it (mapped NULL), a is released
 * and 503 replied (0); else the mapping's warning, if any, is logged (1). */
static int mapping_done(resolver *r, const Millom__V1__Query *q, const query_plan *p,
                        backend_answer *a, const void *mapped, const char *warn) {
    if (!mapped) {
        backend_answer_release(a);
        log_warn("backend answer of %s unusable: %s", p->op->id, warn);
        reply_error(r, q, CAUSE_SERVICE_UNAVAILABLE,
                    "the operator backend sent an unusable answer");
        return 0;
    }
    if (warn[0]) log_warn("%s", warn);
    return 1;
}

/* An upsellOffer answer from a (released): the template kept beside a,
 * or one made now and kept, rendered with fresh offerContexts. A warning
 * about offers dropped as malformed is logged when the template is made,
 * once per backend answer. */
static void answer_upsell(resolver *r, const Millom__V1__Query *q, const query_plan *p,
                          backend_answer *a) {
    upsell_template *t = backend_answer_upsell(a, &p->m);
    if (!t) {
        char warn[256] = "";
        t = upsell_template_new(&p->m, backend_answer_json(a), warn, sizeof warn);
        if (!mapping_done(r, q, p, a, t, warn)) return;
        backend_answer_keep_upsell(a, t);
    }
    backend_answer_release(a);
    size_t len = 0;
    char *text = upsell_template_render(t, &p->m, &len);
    if (text) {
        /* Queued before the answer; producing does not block. */
        impression_publish(r, q, t);
        reply_text(r, q, text, len);
        free(text);
    } else {
        log_warn("upsellOffer for %s: offerContext signing failed or out of memory", p->op->id);
        reply_error(r, q, CAUSE_SERVICE_UNAVAILABLE, "offer-resolver could not sign the offers");
    }
    upsell_template_release(t);
}

/* Maps the backend's answer to q's kind and replies; releases a. A
 * balance or accountInfo already mapped from a for the same validUntil
 * second is replied as it was (backend_answer_mapped). */
static void answer_with(resolver *r, const Millom__V1__Query *q, const query_plan *p,
                        backend_answer *a) {
    if (p->upsell) {
        answer_upsell(r, q, p, a);
        return;
    }
    backend_mapped_kind kind = q->kind == MILLOM__V1__QUERY_KIND__QUERY_KIND_ACCOUNT_INFO
                                   ? BACKEND_MAPPED_ACCOUNT_INFO
                                   : BACKEND_MAPPED_BALANCE;
    size_t len = 0;
    char *text = backend_answer_mapped(a, kind, p->m.valid_until_ms, &len);
    if (text) {
        backend_answer_release(a);
        reply_text(r, q, text, len);
        free(text);
        return;
    }
    const json_t *backend = backend_answer_json(a);
    char warn[256] = "";
    json_t *answer = kind == BACKEND_MAPPED_ACCOUNT_INFO
                         ? map_account_info(&p->m, backend, warn, sizeof warn)
                         : map_balance(&p->m, backend, warn, sizeof warn);
    if (!mapping_done(r, q, p, a, answer, warn)) return;
    text = json_dumps(answer, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(answer);
    if (text) len = strlen(text);
    if (text) backend_answer_keep_mapped(a, kind, p->m.valid_until_ms, text, len);
    backend_answer_release(a);
    if (!text) return;
    reply_text(r, q, text, len);
    free(text);
}

/* The answer to q from the backend's answer res: cached, mapped and
 * replied, or its error replied. */
static void answer_with_result(resolver *r, const Millom__V1__Query *q, const query_plan *p,
                               const http_result *res) {
    if (res->status == 200) {
        int not_json = 0;
        backend_answer *a = backend_cache_put(r->cache, p->kind, p->op->id, p->m.subscriber, p->key,
                                              res->body, res->body_len, p->m.now_ms, &not_json);
        if (a) {
            answer_with(r, q, p, a);
            return;
        }
        if (!not_json) {
            reply_error(r, q, CAUSE_SERVICE_UNAVAILABLE, "offer-resolver is out of memory");
            return;
        }
    }
    reply_backend_error(r, q, p, res);
}

/* A query whose backend call runs on the backend loop. */
typedef struct {
    resolver *r;
    Millom__V1__Query *q;
    query_plan p;
    int64_t started_ms; /* monotonic */
    char *auth;         /* the Authorization header sent; NULL: none */
} backend_call;

static void backend_call_free(backend_call *c) {
    millom__v1__query__free_unpacked(c->q, NULL);
    if (c->auth) OPENSSL_cleanse(c->auth, strlen(c->auth));
    free(c->auth);
    free(c);
}

/* Hands q to a worker, whose call may wait for a token fetch; 503 when
 * the workers' queue is full. Owns q. */
static void to_worker(resolver *r, Millom__V1__Query *q, int token_refused, int refresh) {
    resolver_job *job = malloc(sizeof *job);
    if (job) {
        *job = (resolver_job){.q = q, .token_refused = token_refused, .refresh = refresh};
        if (work_queue_push(r->workers, job) == 0) return;
        free(job);
    }
    if (refresh) atomic_store(&r->token_refresh, 0);
    reply_error(r, q, CAUSE_SERVICE_UNAVAILABLE, "offer-resolver is overloaded");
    millom__v1__query__free_unpacked(q, NULL);
}

/* On the backend loop's thread: the backend answered c's call (or it
 * failed or timed out). */
static void on_backend_answer(void *arg, http_result *res) {
    backend_call *c = arg;
    resolver *r = c->r;
    metric_observe_ms(r->backend_latency, (double)(mono_ms() - c->started_ms));
    if (c->auth && res->status == 401) {
        /* The token may have been revoked or rotated: a worker fetches a
         * fresh one and calls once more. */
        backend_auth_rejected(c->p.op, c->auth);
        http_result_free(res);
        to_worker(r, c->q, 1, 0);
        c->q = NULL;
        backend_call_free(c);
        return;
    }
    answer_with_result(r, c->q, &c->p, res);
    http_result_free(res);
    backend_call_free(c);
}

/* Wipes the authorization header written into auth: its text, not the
 * whole 4 kB buffer (wiping all of it on every call was 1.3% of
 * offer-resolver's instructions per cache miss). */
static void wipe_auth(char *auth, size_t cap) { OPENSSL_cleanse(auth, strnlen(auth, cap)); }

/* Starts q's backend call on the loop, or hands q to a worker when its
 * operator's token must be fetched first. A token due for a refresh is
 * still used on the loop, while one query at a time (r->token_refresh)
 * goes to a worker, whose call fetches the next token. Owns q. */
static void start_backend_call(resolver *r, Millom__V1__Query *q, const query_plan *p) {
    char auth[BACKEND_AUTH_HEADER_MAX];
    auth[0] = '\0'; /* nothing written when there is no cached token */
    int due = 0;
    int has_auth = backend_auth_cached(p->op, auth, sizeof auth, &due);
    if (has_auth < 0 || (due && !atomic_exchange(&r->token_refresh, 1))) {
        wipe_auth(auth, sizeof auth);
        to_worker(r, q, 0, has_auth > 0);
        return;
    }
    backend_call *c = calloc(1, sizeof *c);
    if (!c) {
        wipe_auth(auth, sizeof auth);
        reply_error(r, q, CAUSE_SERVICE_UNAVAILABLE, "offer-resolver is out of memory");
        millom__v1__query__free_unpacked(q, NULL);
        return;
    }
    *c = (backend_call){.r = r, .q = q, .p = *p, .started_ms = mono_ms()};
    if (has_auth) c->auth = strdup(auth);
    wipe_auth(auth, sizeof auth);
    if (has_auth && !c->auth) {
        reply_error(r, q, CAUSE_SERVICE_UNAVAILABLE, "offer-resolver is out of memory");
        goto drop;
    }
    backend_args b;
    char url[BACKEND_URL_MAX];
    if (backend_args_for(r, q, p, &b) != 0) goto drop; /* api-edge answered already */
    if (backend_url(&b.req, url, sizeof url) != 0) {
        reply_error(r, q, CAUSE_BAD_REQUEST, "the backend URL would be too long");
        goto drop;
    }
    const char *headers[4];
    char id_line[BACKEND_CORRELATOR_LINE];
    backend_headers(c->auth, id_line, headers);
    if (http_loop_get(r->backend, url, headers, b.req.timeout_ms, on_backend_answer, c) == 0)
        return;
    reply_error(r, q, CAUSE_SERVICE_UNAVAILABLE, "offer-resolver is overloaded");
drop:
    backend_call_free(c);
}

void resolver_take(resolver *r, Millom__V1__Query *q) {
    query_plan p;
    if (plan_query(r, q, &p) != 0) {
        reply_error(r, q, CAUSE_BAD_REQUEST, "unknown operator");
        millom__v1__query__free_unpacked(q, NULL);
        return;
    }
    backend_answer *a = cache_lookup(r, q, &p);
    if (a) {
        answer_with(r, q, &p, a);
        millom__v1__query__free_unpacked(q, NULL);
        return;
    }
    metric_add(p.upsell ? r->offers_misses : r->cache_misses, 1);
    start_backend_call(r, q, &p);
}

void resolver_answer(resolver *r, void *http_client_state, resolver_job *job) {
    http_client *hc = http_client_state;
    Millom__V1__Query *q = job->q;
    query_plan p;
    backend_args b;
    if (rpc_expired(q->meta)) goto done;
    if (plan_query(r, q, &p) != 0) {
        reply_error(r, q, CAUSE_BAD_REQUEST, "unknown operator");
        goto done;
    }
    if (backend_args_for(r, q, &p, &b) != 0) goto done;
    b.req.token_refused = job->token_refused;
    http_result res;
    int64_t t0 = mono_ms();
    backend_get(hc, &b.req, &res);
    metric_observe_ms(r->backend_latency, (double)(mono_ms() - t0));
    answer_with_result(r, q, &p, &res);
    http_result_free(&res);
done:
    resolver_job_free(r, job);
}

void resolver_job_free(resolver *r, resolver_job *job) {
    if (job->refresh) atomic_store(&r->token_refresh, 0);
    millom__v1__query__free_unpacked(job->q, NULL);
    free(job);
}
