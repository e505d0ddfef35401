/* offer-resolver: answers balance, accountInfo and upsellOffer queries
 * from millom.queries by asking the operator's backend (through a short
 * cache) and mapping its answer to the standard API. */
#ifndef OFFER_RESOLVER_RESOLVER_H
#define OFFER_RESOLVER_RESOLVER_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "shared/contracts/config.h"
#include "services/offer-resolver/upsell_template.h"
#include "shared/plumbing/http_loop.h"
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/work_queue.h"
#include "millom/v1/query.pb-c.h"

typedef struct backend_cache backend_cache;

typedef struct {
    tenants *tenants;
    kafka_producer *producer;
    http_loop *backend;      /* the backend calls of cache misses */
    work_queue *workers;     /* misses that wait for a token fetch first */
    backend_cache *cache;    /* the balance and offers caches */
    long cache_ttl_ms;       /* MILLOM_CACHE_TTL_S, default 30 */
    long backend_timeout_ms; /* MILLOM_BACKEND_TIMEOUT_MS, default 2000 */
    long offer_ttl_ms;       /* MILLOM_OFFER_TTL_S, default 900 */
    const char *channel_id;  /* MILLOM_CHANNEL_ID, default "App" */
    metric *cache_hits, *cache_misses, *backend_latency;
    metric *offers_hits, *offers_misses; /* the offers cache */
    /* 1 while a worker's call fetches an operator's next token (its
     * current one is due for a refresh): one such query at a time. */
    atomic_int token_refresh;
} resolver;

/* A query handed to a worker: its call waits for a token fetch. */
typedef struct {
    Millom__V1__Query *q;
    int token_refused; /* the loop's call got a 401: fetch a fresh token, call once more */
    int refresh;       /* the query that fetches the next token (r->token_refresh) */
} resolver_job;

resolver *resolver_new(kafka_producer *producer, char *err, size_t errlen);
void resolver_free(resolver *r);

/* Kafka handler for millom.queries (answers each query or starts its
 * backend call, or applies an INVALIDATE at once) and
 * millom.purchase.events (invalidates). */
kafka_verdict resolver_on_message(void *arg, const rd_kafka_message_t *msg, char *err,
                                  size_t errlen);

/* Consumer side (answer_query.c): answers q from the cache, or starts its
 * backend call on r->backend (answered from there), or, when the
 * operator's backendAuth token has to be fetched first, hands it to a
 * worker (resolver_answer). Owns q. */
void resolver_take(resolver *r, Millom__V1__Query *q);
/* Worker side (answer_query.c): answers one query with a call that may
 * wait for a token fetch; owns and frees job. */
void resolver_answer(resolver *r, void *http_client, resolver_job *job);
/* Frees a job never run (the workers stopping). */
void resolver_job_free(resolver *r, resolver_job *job);

/* backend_cache.c: the backend's /balance and /offers bodies, cached in
 * memory for ttl_ms, at most max_bytes in all. The key of a balance is the
 * language; of offers, the rest of what the backend call carries
 * (language, provider, channel, dealer code, key type, offerType, maxPrice,
 * numberofOffers). Thread-safe. */
typedef enum { BACKEND_CACHE_BALANCE, BACKEND_CACHE_OFFERS } backend_cache_kind;
/* A parsed backend answer, shared read-only by the cache and the threads
 * mapping it; each holder releases its hold once. */
typedef struct backend_answer backend_answer;
const json_t *backend_answer_json(const backend_answer *a);
void backend_answer_release(backend_answer *a); /* NULL is a no-op */
/* The answers last mapped from a, kept beside it: a balance or an
 * accountInfo mapped from one backend answer changes only with its
 * validUntil (to the second), as an entry's operator, subscriber and
 * language are fixed, so a hit takes the text instead of mapping and
 * writing it out again. Which answer: BACKEND_MAPPED_BALANCE or
 * _ACCOUNT_INFO. */
typedef enum { BACKEND_MAPPED_BALANCE, BACKEND_MAPPED_ACCOUNT_INFO } backend_mapped_kind;
/* A copy (malloc'd; *len set) of the text kept for kind and
 * valid_until_ms's second, or NULL. */
char *backend_answer_mapped(backend_answer *a, backend_mapped_kind kind, int64_t valid_until_ms,
                            size_t *len);
/* Keeps a copy of text as a's answer of kind for valid_until_ms's second
 * (out of memory: keeps nothing). */
void backend_answer_keep_mapped(backend_answer *a, backend_mapped_kind kind, int64_t valid_until_ms,
                                const char *text, size_t len);
/* The upsellOffer template (upsell_template.h) kept beside an /offers
 * answer a, as the caller's hold, when one is kept and fits m; else NULL. */
upsell_template *backend_answer_upsell(backend_answer *a, const mapping_ctx *m);
/* Keeps a hold on t beside a, instead of the one kept before, unless t
 * takes more than the share of the budget counted for it (four times
 * the backend's text and 1 kB). */
void backend_answer_keep_upsell(backend_answer *a, upsell_template *t);
backend_cache *backend_cache_new(int64_t ttl_ms, size_t max_bytes);
void backend_cache_free(backend_cache *c);
/* A hold on the cached answer and its fetch time if a live entry exists,
 * else NULL. Read it, never change it; release it. */
backend_answer *backend_cache_get(backend_cache *c, backend_cache_kind kind, const char *op,
                                  const char *subscriber, const char *key, int64_t now,
                                  int64_t *fetched_ms);
/* The backend's text of a 200 answer (len bytes; its call started at
 * fetched_ms), parsed, as the caller's hold; the cache keeps it too
 * (counted against max_bytes by what the parsed form and the text take),
 * unless the subscriber was forgotten since fetched_ms. When the entry's
 * text is byte-for-byte the same, its parsed answer is returned (and
 * its fetch time moves to fetched_ms) without parsing text again. NULL
 * when text is not JSON (*not_json set) or out of memory. */
backend_answer *backend_cache_put(backend_cache *c, backend_cache_kind kind, const char *op,
                                  const char *subscriber, const char *key, const char *text,
                                  size_t len, int64_t fetched_ms, int *not_json);
/* Forgets every cached entry of a subscriber (after a purchase at now). */
void backend_cache_forget(backend_cache *c, const char *op, const char *subscriber, int64_t now);
/* The bytes the entries take (for tests). */
size_t backend_cache_bytes(backend_cache *c);

#endif
