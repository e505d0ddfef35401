/* The pieces of the delivery worker (delivery_worker.c) that can be
 * reasoned about, and tested, on their own: per-provider limits from the
 * tenants file, the rate bucket that enforces maxPerSecond, the offers
 * cache that asks offer-resolver for many subscribers at once, and the
 * credentials on the webhooks (OAuth tokens, fetched off the delivery
 * thread, and Standard Webhooks signatures). */
#ifndef NOTIFIER_DELIVERY_H
#define NOTIFIER_DELIVERY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "notifier.h"
#include "shared/contracts/webhook_signature.h"
#include "shared/patterns/oauth_client.h"

/* ---- delivery_limits.c ---- */

/* A provider's limits on notifier's webhook calls, from its entry in the
 * tenants file (serviceProviders[]):
 *   "maxInFlight": integer 1..10000, calls to it at the same time
 *                  (default MILLOM_NOTIFY_PROVIDER_MAX_IN_FLIGHT, 16);
 *   "maxPerSecond": number > 0 up to 1000000, calls started per second,
 *                  as a token bucket holding one second's worth (absent:
 *                  no rate limit). */
typedef struct {
    long max_in_flight;
    double max_per_second; /* 0: none */
} provider_limits;

#define PROVIDER_MAX_IN_FLIGHT_LIMIT 10000
#define PROVIDER_MAX_PER_SECOND_LIMIT 1000000.0

/* Reads the limits of one provider entry (entry may be NULL: a provider
 * not in the tenants file gets the defaults). 0, or -1 with a message
 * naming the field when a value is out of range or of the wrong type. */
int provider_limits_read(const json_t *entry, long default_in_flight, provider_limits *out,
                         char *err, size_t errlen);
/* Checks every serviceProviders[] entry of the tenants document: 0, or -1
 * with a message naming the provider and the field. */
int provider_limits_check(const json_t *tenants_doc, long default_in_flight, char *err,
                          size_t errlen);

/* A token bucket: `rate` tokens a second, at most max(1, rate) stored. */
typedef struct {
    double rate; /* 0: unlimited */
    double tokens;
    int64_t last_ms;
} rate_bucket;

void rate_bucket_init(rate_bucket *b, double rate, int64_t now_ms);
/* Takes up to `want` whole tokens at now_ms; returns how many it took
 * (want when unlimited). */
long rate_bucket_take(rate_bucket *b, long want, int64_t now_ms);
/* Milliseconds from now_ms until one token is there (0: now). */
int64_t rate_bucket_wait_ms(rate_bucket *b, int64_t now_ms);

/* ---- offers_cache.c ---- */

/* A subscriber's upsellOffer offers for one provider, asked of
 * offer-resolver without blocking: the first ask for a key produces the
 * Query (rpc_call_begin) and returns a ticket; asks for the same key while
 * that one is out, and for MILLOM_NOTIFY_OFFERS_CACHE_MS after a
 * answer (offers, or an error answer such as "subscriber is roaming"),
 * share the ticket. No answer in time (MILLOM_NOTIFY_OFFERS_TIMEOUT_MS),
 * or a query that could not be sent, completes its ticket without offers
 * and is not kept. Each completion calls the wake function (from the rpc
 * reader thread), so the worker can sleep in curl_multi_poll. One thread
 * uses a cache; only completions come from another. */
typedef struct offers_cache offers_cache;
typedef struct offers_ticket offers_ticket;

/* ttl_ms 0: no reuse after the answer (only concurrent asks share).
 * NULL when out of memory. */
offers_cache *offers_cache_new(notifier *n, long ttl_ms, size_t max_entries);
/* Sets the function called after each completion (NULL: none). Its
 * calls run under a lock this also takes, so after
 * offers_cache_set_wake(c, NULL, NULL) returns none is running. */
void offers_cache_set_wake(offers_cache *c, void (*wake)(void *), void *arg);
/* Frees the cache; tickets still out keep what they need and are freed by
 * whoever releases them last. */
void offers_cache_free(offers_cache *c);

/* A ticket for (provider, op, msisdn, language) at mono time now (caller
 * releases it). NULL only when out of memory. */
offers_ticket *offers_cache_ask(offers_cache *c, const char *provider, const char *op,
                                const char *msisdn, const char *language, int64_t now);
/* 1 once answered (or failed), else 0. */
int offers_ticket_done(const offers_ticket *t);
/* After done: the offers (borrowed, valid while the ticket is held), or
 * NULL when there were none (why in *why). */
json_t *offers_ticket_offers(const offers_ticket *t, const char **why);
void offers_ticket_release(offers_ticket *t);
/* Entries in the cache (for tests). */
size_t offers_cache_size(const offers_cache *c);

/* ---- rich_notification.c ---- */

/* The subscriber a stored rich notification body is about. */
typedef struct {
    char op[64], msisdn[32], language[16];
} rich_target;
/* 1 when stored is a rich notification with its private "_millom" part
 * (t filled), 0 when it is to be sent as stored. */
int rich_notification_target(const char *stored, rich_target *t);
/* The body as sent: stored with `offers` (borrowed; NULL: []) and the
 * signed refresh, ping and shop links, minus "_millom". NULL when stored
 * is not a rich notification. Caller frees. */
char *rich_notification_render(notifier *n, const char *provider, const char *stored,
                               json_t *offers);

/* ---- webhook_auth.c ---- */

/* A provider's credentials on Millom's webhooks to it, from its tenants
 * entry (webhookAuth, webhookSecrets) and the environment variables those
 * name. */
typedef struct {
    oauth_token_source *token_source;   /* webhookAuth; NULL: no token */
    webhook_key keys[WEBHOOK_KEYS_MAX]; /* webhookSecrets, in the file's order */
    size_t n_keys;                      /* 0: not signed */
} webhook_credentials;

/* Room for "Authorization: Bearer <a JWT>". */
#define WEBHOOK_AUTH_HEADER_MAX 4096

/* Resolves tp's credentials (tp NULL: none). 0, or -1 with a message that
 * names the provider and the environment variable (never a secret) when
 * one is unset or holds a malformed secret. */
int webhook_credentials_load(const tenant_provider *tp, webhook_credentials *out, char *err,
                             size_t errlen);
/* Wipes the keys. */
void webhook_credentials_clear(webhook_credentials *c);

/* The token fetcher: one thread that fetches providers' tokens
 * (oauth_authorization) for a thread that must not wait on HTTP, and
 * calls wake(arg) from its thread after each fetch. */
typedef struct token_fetcher token_fetcher;
/* One token source's fetches; owned by its fetcher. */
typedef struct token_fetch token_fetch;

token_fetcher *token_fetcher_start(void (*wake)(void *), void *arg, char *err, size_t errlen);
/* Stops the thread (a fetch under way ends first: MILLOM_OAUTH_TIMEOUT_MS
 * at most) and frees the fetcher and its token_fetch handles. */
void token_fetcher_stop(token_fetcher *f);
/* A handle for fetching s's tokens. NULL when out of memory. */
token_fetch *token_fetcher_add(token_fetcher *f, oauth_token_source *s);
/* Asks for a fetch: one not yet ended is shared by every ask. Returns the
 * ticket for token_fetch_done. */
unsigned long token_fetch_ask(token_fetcher *f, token_fetch *t);
/* For a ticket: 0 while its fetch has not ended; 1 when it got a token
 * (cached now: oauth_cached_authorization gives it); -1 when it failed,
 * the reason in err. */
int token_fetch_done(token_fetcher *f, token_fetch *t, unsigned long ticket, char *err,
                     size_t errlen);

/* ---- delivery_worker.c ---- */

/* Whether a delivery whose POST got `status` (0: no answer at all) is
 * tried again (until MILLOM_NOTIFY_MAX_ATTEMPTS) rather than
 * dead-lettered: yes without an answer and for 408, 429, 5xx and anything
 * else but a 4xx; a provider's 4xx is final, except 401 to a request that
 * carried a bearer token (sent_token): that token was dropped and the next
 * attempt fetches a fresh one. */
int delivery_retried(long status, int sent_token);

#endif
