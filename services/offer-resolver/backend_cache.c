/* The backend cache: the operator backend's answers, kept for
 * cache_ttl_ms (MILLOM_CACHE_TTL_S, the validity the answers declare), in
 * memory:
 *   - /balance per (operator, subscriber, language): accountInfo and
 *     balance are both mapped from it, so one backend call serves both;
 *   - /offers per (operator, subscriber, everything else the backend call
 *     carries: language, provider, channel, dealer code, key type, and the
 *     filters offerType, maxPrice, numberofOffers).
 * Here rather than in api-edge: offer-resolver makes the backend calls and
 * serves every api-edge instance and notifier, so one entry saves calls for
 * all of them; offerContexts are still minted fresh from the cached body on
 * every answer. A purchase forgets the subscriber's entries.
 *
 * An entry keeps the parsed answer (a backend_answer), which the threads
 * mapping it share read-only, so a hit neither parses nor copies it:
 * parsing the cached text again on every hit was most of a hit's
 * allocations. The budget counts the parsed answer's allocations
 * (json_footprint), several times its text, and the text.
 *
 * The entry keeps the answer's text too: a new answer (a miss, a
 * no-cache read, the refetch after the TTL) byte-for-byte the same as the
 * entry's, as a subscriber's balance mostly is from one read to the next,
 * takes the entry's parsed answer instead of being parsed again. Parsing
 * a 1 kB balance with jansson, and freeing the tree it replaced, was
 * about 40% of offer-resolver's instructions per miss (callgrind).
 *
 * An answer also keeps the balance and accountInfo last mapped from it
 * (backend_answer_mapped): mapping, writing out and freeing the mapped
 * tree were most of a hit's work. The budget counts them as twice the
 * backend's text, about their size. An /offers answer keeps instead the
 * upsellOffer template last made from it (upsell_template.h), counted as
 * four times the text and 1 kB (the sandbox's templates take 2 to 3
 * times their text, with each offer's offerContext claims); a bigger one
 * is not kept (kept_share).
 *
 * In memory, not in SQLite: a restart started with an empty cache anyway,
 * and the table's writes (a WAL append per miss, its checkpoints, a lock
 * all workers took turns at) were on every cache miss's path.
 *
 * Layout: a hash table of subscribers (operator, subscriber), each with the
 * short list of its entries; subscribers in least-recently-used order.
 * The entries' bytes are bounded by MILLOM_CACHE_MAX_KB: the subscriber
 * used longest ago goes first. A subscriber forgotten by a purchase keeps
 * its node (no entries) with the time of the purchase, so an answer fetched
 * before it and stored after it (a worker's backend call racing the
 * invalidation) is not kept. */
#include "resolver.h"
#include "mapping_backend.h"
#include "upsell_template.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A balance or accountInfo mapped from an answer, for one validUntil
 * second (backend_answer_mapped). */
typedef struct {
    char *text; /* NULL: none */
    size_t len;
    int64_t valid_until_s;
} mapped_text;

/* A parsed answer and who holds it: the cache's entry and each thread
 * mapping it. jansson's own reference count is not shared across threads:
 * json_incref and json_decref read it with a plain load before their
 * atomic update (jansson.h), a data race. The tree keeps jansson's count
 * at 1, and the last holder here drops it. */
struct backend_answer {
    atomic_size_t holders;
    json_t *tree;
    pthread_mutex_t mapped_lock;
    mapped_text mapped[2];   /* by backend_mapped_kind, under mapped_lock */
    upsell_template *upsell; /* a hold, under mapped_lock; NULL: none */
    size_t kept_max;         /* what mapped[] or upsell may take: kept_share */
    size_t text_len;
    char text[]; /* what tree was parsed from */
};

/* What the answers kept beside a backend answer of kind (len bytes of
 * text) may take, counted in the budget. */
static size_t kept_share(backend_cache_kind kind, size_t len) {
    return kind == BACKEND_CACHE_OFFERS ? 4 * len + 1024 : 2 * len;
}

static backend_answer *answer_hold(backend_answer *a) {
    atomic_fetch_add_explicit(&a->holders, 1, memory_order_relaxed);
    return a;
}

void backend_answer_release(backend_answer *a) {
    if (!a || atomic_fetch_sub_explicit(&a->holders, 1, memory_order_acq_rel) != 1) return;
    json_decref(a->tree);
    for (size_t i = 0; i < sizeof a->mapped / sizeof a->mapped[0]; i++) free(a->mapped[i].text);
    upsell_template_release(a->upsell);
    pthread_mutex_destroy(&a->mapped_lock);
    free(a);
}

char *backend_answer_mapped(backend_answer *a, backend_mapped_kind kind, int64_t valid_until_ms,
                            size_t *len) {
    char *copy = NULL;
    pthread_mutex_lock(&a->mapped_lock);
    const mapped_text *m = &a->mapped[kind];
    if (m->text && m->valid_until_s == mapping_utc_second(valid_until_ms) &&
        (copy = malloc(m->len + 1))) {
        memcpy(copy, m->text, m->len + 1);
        *len = m->len;
    }
    pthread_mutex_unlock(&a->mapped_lock);
    return copy;
}

void backend_answer_keep_mapped(backend_answer *a, backend_mapped_kind kind, int64_t valid_until_ms,
                                const char *text, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return;
    memcpy(copy, text, len);
    copy[len] = '\0';
    pthread_mutex_lock(&a->mapped_lock);
    mapped_text *m = &a->mapped[kind];
    char *old = m->text;
    *m = (mapped_text){
        .text = copy, .len = len, .valid_until_s = mapping_utc_second(valid_until_ms)};
    pthread_mutex_unlock(&a->mapped_lock);
    free(old);
}

upsell_template *backend_answer_upsell(backend_answer *a, const mapping_ctx *m) {
    pthread_mutex_lock(&a->mapped_lock);
    upsell_template *t = a->upsell && upsell_template_fits(a->upsell, m) ? a->upsell : NULL;
    if (t) upsell_template_hold(t);
    pthread_mutex_unlock(&a->mapped_lock);
    return t;
}

void backend_answer_keep_upsell(backend_answer *a, upsell_template *t) {
    if (upsell_template_bytes(t) > a->kept_max) return; /* over the share budgeted */
    upsell_template_hold(t);
    pthread_mutex_lock(&a->mapped_lock);
    upsell_template *old = a->upsell;
    a->upsell = t;
    pthread_mutex_unlock(&a->mapped_lock);
    upsell_template_release(old);
}

const json_t *backend_answer_json(const backend_answer *a) { return a->tree; }

typedef struct cache_entry {
    struct cache_entry *next;
    backend_cache_kind kind;
    int64_t fetched_ms;
    size_t bytes;
    char *key;
    backend_answer *body; /* one hold; readers take their own */
} cache_entry;

typedef struct cache_subscriber {
    struct cache_subscriber *chain;       /* hash bucket */
    struct cache_subscriber *prev, *next; /* LRU: head is the newest */
    char *op, *subscriber;
    int64_t forgotten_ms; /* answers fetched before this are stale */
    cache_entry *entries;
    size_t bytes; /* this node and its entries */
} cache_subscriber;

struct backend_cache {
    pthread_mutex_t lock;
    cache_subscriber **buckets;
    size_t n_buckets;
    cache_subscriber *newest, *oldest;
    size_t bytes, max_bytes;
    int64_t ttl_ms;
};

static size_t hash_subscriber(const char *op, const char *subscriber) {
    size_t h = 14695981039346656037ULL; /* FNV-1a */
    for (const char *p = op; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (const char *p = subscriber; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

backend_cache *backend_cache_new(int64_t ttl_ms, size_t max_bytes) {
    backend_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    /* A bucket per ~1 KB of budget: chains stay short at any fill level. */
    c->n_buckets = max_bytes / 1024 < 64 ? 64 : max_bytes / 1024;
    c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->max_bytes = max_bytes;
    c->ttl_ms = ttl_ms;
    return c;
}

static void entry_free(cache_entry *e) {
    free(e->key);
    backend_answer_release(e->body);
    free(e);
}

static void drop_entries(backend_cache *c, cache_subscriber *s) {
    while (s->entries) {
        cache_entry *e = s->entries;
        s->entries = e->next;
        s->bytes -= e->bytes;
        c->bytes -= e->bytes;
        entry_free(e);
    }
}

static void lru_unlink(backend_cache *c, cache_subscriber *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        c->newest = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        c->oldest = s->prev;
    s->prev = s->next = NULL;
}

static void lru_push_newest(backend_cache *c, cache_subscriber *s) {
    s->next = c->newest;
    s->prev = NULL;
    if (c->newest) c->newest->prev = s;
    c->newest = s;
    if (!c->oldest) c->oldest = s;
}

static cache_subscriber **find_slot(backend_cache *c, const char *op, const char *subscriber) {
    cache_subscriber **pp = &c->buckets[hash_subscriber(op, subscriber) % c->n_buckets];
    while (*pp && (strcmp((*pp)->subscriber, subscriber) != 0 || strcmp((*pp)->op, op) != 0))
        pp = &(*pp)->chain;
    return pp;
}

static void subscriber_remove(backend_cache *c, cache_subscriber *s) {
    cache_subscriber **pp = find_slot(c, s->op, s->subscriber);
    *pp = s->chain;
    lru_unlink(c, s);
    drop_entries(c, s);
    c->bytes -= s->bytes;
    free(s->op);
    free(s->subscriber);
    free(s);
}

void backend_cache_free(backend_cache *c) {
    if (!c) return;
    while (c->oldest) subscriber_remove(c, c->oldest);
    pthread_mutex_destroy(&c->lock);
    free(c->buckets);
    free(c);
}

static cache_subscriber *subscriber_get(backend_cache *c, const char *op, const char *subscriber,
                                        int create) {
    cache_subscriber **pp = find_slot(c, op, subscriber);
    if (*pp || !create) return *pp;
    cache_subscriber *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->op = strdup(op);
    s->subscriber = strdup(subscriber);
    if (!s->op || !s->subscriber) {
        free(s->op);
        free(s->subscriber);
        free(s);
        return NULL;
    }
    s->bytes = sizeof *s + strlen(op) + strlen(subscriber) + 2;
    c->bytes += s->bytes;
    *pp = s;
    lru_push_newest(c, s);
    return s;
}

backend_answer *backend_cache_get(backend_cache *c, backend_cache_kind kind, const char *op,
                                  const char *subscriber, const char *key, int64_t now,
                                  int64_t *fetched_ms) {
    backend_answer *body = NULL;
    pthread_mutex_lock(&c->lock);
    cache_subscriber *s = subscriber_get(c, op, subscriber, 0);
    for (cache_entry *e = s ? s->entries : NULL; e; e = e->next) {
        if (e->kind != kind || strcmp(e->key, key) != 0) continue;
        if (e->fetched_ms + c->ttl_ms > now) {
            body = answer_hold(e->body);
            *fetched_ms = e->fetched_ms;
            lru_unlink(c, s);
            lru_push_newest(c, s);
        }
        break;
    }
    pthread_mutex_unlock(&c->lock);
    return body;
}

/* What a parsed answer keeps allocated, roughly: jansson 2.14's value,
 * hashtable and array structures and malloc's overhead per block. A
 * parsed answer takes several times its text; the budget counts this. */
static size_t json_footprint(json_t *j) {
    size_t n = 48; /* the value and its block */
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        n += 8 * 16 + 16; /* the smallest bucket array */
        json_object_foreach(j, k, v) n += 72 + strlen(k) + json_footprint(v);
    } else if (json_is_array(j)) {
        n += 8 * json_array_size(j) + 16;
        json_array_foreach(j, i, v) n += json_footprint(v);
    } else if (json_is_string(j)) {
        n += json_string_length(j) + 17;
    }
    return n;
}

static cache_entry **find_entry(cache_subscriber *s, backend_cache_kind kind, const char *key) {
    cache_entry **pp = &s->entries;
    while (*pp && ((*pp)->kind != kind || strcmp((*pp)->key, key) != 0)) pp = &(*pp)->next;
    return pp;
}

/* A hold on the entry's answer when its text is text, now fetched (again)
 * at fetched_ms; else NULL. */
static backend_answer *same_answer(backend_cache *c, backend_cache_kind kind, const char *op,
                                   const char *subscriber, const char *key, const char *text,
                                   size_t len, int64_t fetched_ms) {
    backend_answer *same = NULL;
    pthread_mutex_lock(&c->lock);
    cache_subscriber *s = subscriber_get(c, op, subscriber, 0);
    cache_entry *e = s && fetched_ms >= s->forgotten_ms ? *find_entry(s, kind, key) : NULL;
    if (e && e->body->text_len == len && memcmp(e->body->text, text, len) == 0) {
        same = answer_hold(e->body);
        if (fetched_ms > e->fetched_ms) e->fetched_ms = fetched_ms;
        lru_unlink(c, s);
        lru_push_newest(c, s);
    }
    pthread_mutex_unlock(&c->lock);
    return same;
}

/* text parsed, with a copy of it; the caller's hold. NULL when text is
 * not JSON (*not_json set) or out of memory. */
static backend_answer *answer_parse(backend_cache_kind kind, const char *text, size_t len,
                                    int *not_json) {
    json_t *tree = json_loadb(text, len, 0, NULL);
    if (!tree) {
        *not_json = 1;
        return NULL;
    }
    backend_answer *a = malloc(sizeof *a + len);
    if (!a) {
        json_decref(tree);
        return NULL;
    }
    atomic_init(&a->holders, 1);
    a->tree = tree;
    pthread_mutex_init(&a->mapped_lock, NULL);
    memset(a->mapped, 0, sizeof a->mapped);
    a->upsell = NULL;
    a->kept_max = kept_share(kind, len);
    a->text_len = len;
    memcpy(a->text, text, len);
    return a;
}

backend_answer *backend_cache_put(backend_cache *c, backend_cache_kind kind, const char *op,
                                  const char *subscriber, const char *key, const char *text,
                                  size_t len, int64_t fetched_ms, int *not_json) {
    *not_json = 0;
    if (c->ttl_ms > 0) {
        backend_answer *same = same_answer(c, kind, op, subscriber, key, text, len, fetched_ms);
        if (same) return same;
    }
    backend_answer *body = answer_parse(kind, text, len, not_json);
    if (!body) return NULL;
    /* The text, and the mapped answers kept beside it. */
    size_t bytes = sizeof(cache_entry) + sizeof *body + len + body->kept_max + strlen(key) + 1 +
                   json_footprint(body->tree);
    if (c->ttl_ms <= 0 || bytes > c->max_bytes / 4) return body; /* caching off, or too big */
    pthread_mutex_lock(&c->lock);
    cache_subscriber *s = subscriber_get(c, op, subscriber, 1);
    if (!s || fetched_ms < s->forgotten_ms) goto out; /* stale: a purchase came since */
    cache_entry **pp = find_entry(s, kind, key);
    cache_entry *e = *pp;
    if (e && e->fetched_ms > fetched_ms) goto out; /* a newer answer is there already */
    char *key_copy = strdup(key);
    if (!key_copy || (!e && !(e = calloc(1, sizeof *e)))) {
        free(key_copy);
        goto out;
    }
    if (*pp) { /* replacing */
        s->bytes -= e->bytes;
        c->bytes -= e->bytes;
        free(e->key);
        backend_answer_release(e->body);
    } else {
        e->next = s->entries;
        s->entries = e;
    }
    e->kind = kind;
    e->key = key_copy;
    e->body = answer_hold(body);
    e->fetched_ms = fetched_ms;
    e->bytes = bytes;
    s->bytes += bytes;
    c->bytes += bytes;
    lru_unlink(c, s);
    lru_push_newest(c, s);
    /* Over budget: the subscribers used longest ago go (never this one). */
    while (c->bytes > c->max_bytes && c->oldest && c->oldest != s) subscriber_remove(c, c->oldest);
out:
    pthread_mutex_unlock(&c->lock);
    return body;
}

void backend_cache_forget(backend_cache *c, const char *op, const char *subscriber, int64_t now) {
    pthread_mutex_lock(&c->lock);
    cache_subscriber *s = subscriber_get(c, op, subscriber, 1);
    if (s) {
        drop_entries(c, s);
        s->forgotten_ms = now;
    }
    pthread_mutex_unlock(&c->lock);
}

size_t backend_cache_bytes(backend_cache *c) {
    pthread_mutex_lock(&c->lock);
    size_t n = c->bytes;
    pthread_mutex_unlock(&c->lock);
    return n;
}
