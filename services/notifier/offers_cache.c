/* Offers for rich notifications without a blocking round trip each (see
 * delivery.h): the delivery worker asks for every notification it claims
 * at once, Queries go out on millom.queries as they are asked, and their
 * Replies complete tickets on the rpc reader thread.
 *
 * Ownership: a ticket is held by the cache entry that shares it, by each
 * delivery waiting on it, and by its rpc call until the callback ran; the
 * last release frees it. The wake-up hook lives in a small shared object
 * (also reference counted) so a callback that runs after the worker and
 * its cache are gone (rpc_client_free fails the calls still out) touches
 * nothing freed. */
#include "delivery.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/topics.h"
#include "millom/v1/query.pb-c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pthread_mutex_t mu;
    void (*fn)(void *);
    void *arg;
    atomic_int refs;
} waker;

struct offers_ticket {
    atomic_int refs;
    atomic_int done;
    json_t *offers; /* written before done is set; NULL: none */
    int answered;   /* offer-resolver answered (offers or an error): shared
                     * while fresh; no answer in time or not asked: not */
    char why[200];
    waker *wk;
};

typedef struct entry {
    char *key;
    offers_ticket *ticket;
    int64_t expires; /* mono ms; while the ticket is out: its deadline */
    struct entry *next;
} entry;

#define BUCKETS 4096u

struct offers_cache {
    notifier *n;
    long ttl_ms;
    size_t max_entries, count;
    entry *buckets[BUCKETS];
    waker *wk;
    int64_t last_sweep;
};

static void waker_release(waker *w) {
    if (w && atomic_fetch_sub(&w->refs, 1) == 1) {
        pthread_mutex_destroy(&w->mu);
        free(w);
    }
}

static void waker_call(waker *w) {
    pthread_mutex_lock(&w->mu);
    if (w->fn) w->fn(w->arg);
    pthread_mutex_unlock(&w->mu);
}

void offers_ticket_release(offers_ticket *t) {
    if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
        json_decref(t->offers);
        waker_release(t->wk);
        free(t);
    }
}

static offers_ticket *ticket_hold(offers_ticket *t) {
    atomic_fetch_add(&t->refs, 1);
    return t;
}

int offers_ticket_done(const offers_ticket *t) { return atomic_load(&t->done); }

json_t *offers_ticket_offers(const offers_ticket *t, const char **why) {
    if (why) *why = t->why;
    return t->offers;
}

/* Completes t (once): offers (taken) or none with why. */
static void ticket_complete(offers_ticket *t, json_t *offers, int answered, const char *why) {
    t->offers = offers;
    t->answered = answered;
    if (!offers) snprintf(t->why, sizeof t->why, "%s", why ? why : "no offers");
    atomic_store(&t->done, 1);
    waker_call(t->wk);
}

/* The rpc callback (reader thread): reply NULL after the deadline. */
static void on_reply(void *arg, const Millom__V1__Reply *reply) {
    offers_ticket *t = arg;
    char why[200] = "";
    json_t *offers = NULL;
    if (!reply) {
        snprintf(why, sizeof why, "no answer from offer-resolver in time");
    } else if (reply->http_status != 200) {
        int len = reply->body.len > 120 ? 120 : (int)reply->body.len;
        snprintf(why, sizeof why, "offer-resolver answered %d: %.*s", reply->http_status, len,
                 len ? (const char *)reply->body.data : "");
    } else {
        json_t *j = json_loadb((const char *)reply->body.data, reply->body.len, 0, NULL);
        offers = json_incref(json_object_get(j, "offers"));
        json_decref(j);
        if (!json_is_array(offers)) {
            json_decref(offers);
            offers = NULL;
            snprintf(why, sizeof why, "the upsellOffer answer has no offers array");
        }
    }
    ticket_complete(t, offers, reply != NULL, why);
    offers_ticket_release(t); /* the call's reference */
}

/* Produces the Query for t; on failure completes t without offers. */
static void ask(offers_cache *c, offers_ticket *t, const char *provider, const char *op,
                const char *msisdn, const char *language) {
    notifier *n = c->n;
    if (!n->rpc || !n->producer) {
        ticket_complete(t, NULL, 0, "no rpc client");
        return;
    }
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    ticket_hold(t); /* the call's reference, released by on_reply */
    if (rpc_call_begin(n->rpc, (int)n->offers_timeout_ms, on_reply, t, &meta) != 0) {
        offers_ticket_release(t);
        ticket_complete(t, NULL, 0, "too many offer queries in flight");
        return;
    }
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = (char *)op;
    sub.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    sub.subscriber_id = (char *)msisdn;
    Millom__V1__Query q = MILLOM__V1__QUERY__INIT;
    q.meta = &meta;
    q.kind = MILLOM__V1__QUERY_KIND__QUERY_KIND_UPSELL_OFFER;
    q.service_provider = (char *)provider;
    q.subscriber = &sub;
    q.language = (char *)language;
    size_t len = millom__v1__query__get_packed_size(&q);
    uint8_t *buf = malloc(len ? len : 1);
    int rc = -1;
    if (buf) {
        millom__v1__query__pack(&q, buf);
        rc = kafka_produce(n->producer, TOPIC_QUERIES, -1, msisdn, strlen(msisdn), buf, len, NULL,
                           0);
        free(buf);
    }
    if (rc != 0) {
        /* Not produced, so no reply can come: the callback will not run. */
        rpc_call_cancel(n->rpc, meta.correlation_id);
        offers_ticket_release(t);
        ticket_complete(t, NULL, 0, "cannot produce the offers query");
    }
}

offers_cache *offers_cache_new(notifier *n, long ttl_ms, size_t max_entries) {
    offers_cache *c = calloc(1, sizeof *c);
    waker *w = calloc(1, sizeof *w);
    if (!c || !w) {
        free(c);
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    atomic_init(&w->refs, 1);
    c->wk = w;
    c->n = n;
    c->ttl_ms = ttl_ms > 0 ? ttl_ms : 0;
    c->max_entries = max_entries ? max_entries : 1;
    return c;
}

void offers_cache_set_wake(offers_cache *c, void (*wake)(void *), void *arg) {
    pthread_mutex_lock(&c->wk->mu);
    c->wk->fn = wake;
    c->wk->arg = arg;
    pthread_mutex_unlock(&c->wk->mu);
}

static void entry_free(entry *e) {
    offers_ticket_release(e->ticket);
    free(e->key);
    free(e);
}

/* Drops the entries that can no longer be shared: done ones past their
 * expiry or without an answer, and (all = 1) every done one. */
static void sweep(offers_cache *c, int64_t now, int all) {
    for (size_t b = 0; b < BUCKETS; b++) {
        entry **pp = &c->buckets[b];
        while (*pp) {
            entry *e = *pp;
            int done = offers_ticket_done(e->ticket);
            if (done && (all || e->expires <= now || !e->ticket->answered)) {
                *pp = e->next;
                entry_free(e);
                c->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    c->last_sweep = now;
}

void offers_cache_free(offers_cache *c) {
    if (!c) return;
    for (size_t b = 0; b < BUCKETS; b++) {
        entry *e = c->buckets[b];
        while (e) {
            entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    offers_cache_set_wake(c, NULL, NULL);
    waker_release(c->wk);
    free(c);
}

size_t offers_cache_size(const offers_cache *c) { return c->count; }

static uint32_t hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h & (BUCKETS - 1);
}

offers_ticket *offers_cache_ask(offers_cache *c, const char *provider, const char *op,
                                const char *msisdn, const char *language, int64_t now) {
    char key[256];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%s\x1f%s", provider, op, msisdn,
             language ? language : "");
    if (now - c->last_sweep >= 1000 || c->count >= c->max_entries) sweep(c, now, 0);
    entry **pp = &c->buckets[hash(key)];
    for (entry *e = *pp; e; e = e->next) {
        if (strcmp(e->key, key) != 0) continue;
        int done = offers_ticket_done(e->ticket);
        /* Out still, or answered (offers, or an error such as a roaming
         * subscriber's) and fresh: share it. */
        if (!done || (e->ticket->answered && e->expires > now)) return ticket_hold(e->ticket);
        break;
    }
    offers_ticket *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    atomic_init(&t->refs, 1);
    atomic_fetch_add(&c->wk->refs, 1);
    t->wk = c->wk;
    /* Replace a stale entry of this key, then add the new one (if room). */
    for (entry **ep = pp; *ep; ep = &(*ep)->next) {
        if (strcmp((*ep)->key, key) == 0) {
            entry *old = *ep;
            *ep = old->next;
            entry_free(old);
            c->count--;
            break;
        }
    }
    if (c->count >= c->max_entries) sweep(c, now, 1);
    entry *e = c->count < c->max_entries ? calloc(1, sizeof *e) : NULL;
    if (e && (e->key = strdup(key)) != NULL) {
        e->ticket = ticket_hold(t);
        e->expires = now + c->ttl_ms;
        e->next = *pp;
        *pp = e;
        c->count++;
    } else {
        free(e);
    }
    ask(c, t, provider, op, msisdn, language ? language : "");
    return t;
}
