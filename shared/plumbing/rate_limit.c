/* Rate limits per key: see rate_limit.h. */
#include "shared/plumbing/rate_limit.h"
#include "shared/plumbing/crypto.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST_LEN 16
#define PROBES 8

typedef struct {
    unsigned char digest[DIGEST_LEN];
    int used;
    double tokens;
    int64_t last_ms; /* last refill, and last use */
} slot;

struct rate_limit {
    pthread_mutex_t mu;
    double per_ms, burst;
    size_t cap;
    unsigned char key[32];
    slot *slots;
};

rate_limit *rate_limit_new(double per_second, double burst, size_t max_keys) {
    if (!(per_second > 0) || !(burst >= 1) || max_keys == 0 || max_keys > SIZE_MAX / sizeof(slot))
        return NULL;
    rate_limit *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->slots = calloc(max_keys, sizeof *l->slots);
    if (!l->slots || crypto_random(l->key, sizeof l->key) != 0) {
        free(l->slots);
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->per_ms = per_second / 1000.0;
    l->burst = burst;
    l->cap = max_keys;
    return l;
}

void rate_limit_free(rate_limit *l) {
    if (!l) return;
    pthread_mutex_destroy(&l->mu);
    free(l->slots);
    free(l);
}

int rate_limit_take(rate_limit *l, const char *key, int64_t now_ms) {
    if (!l) return 0;
    unsigned char mac[CRYPTO_SHA256_LEN];
    if (!key || crypto_hmac_sha256(l->key, sizeof l->key, key, strlen(key), mac) != 0)
        return 1; /* cannot tell keys apart: refuse rather than let through */
    uint64_t h;
    memcpy(&h, mac + DIGEST_LEN, sizeof h);
    int retry = 0;
    pthread_mutex_lock(&l->mu);
    slot *s = NULL, *victim = NULL;
    for (size_t i = 0; i < PROBES && i < l->cap; i++) {
        slot *c = &l->slots[(h + i) % l->cap];
        if (c->used && memcmp(c->digest, mac, DIGEST_LEN) == 0) {
            s = c;
            break;
        }
        /* the first free slot, else the one used longest ago */
        if (!c->used) {
            if (!victim || victim->used) victim = c;
        } else if (!victim || (victim->used && c->last_ms < victim->last_ms)) {
            victim = c;
        }
    }
    if (!s) {
        s = victim;
        memcpy(s->digest, mac, DIGEST_LEN);
        s->used = 1;
        s->tokens = l->burst;
        s->last_ms = now_ms;
    }
    if (now_ms > s->last_ms) {
        s->tokens += (double)(now_ms - s->last_ms) * l->per_ms;
        if (s->tokens > l->burst) s->tokens = l->burst;
        s->last_ms = now_ms;
    }
    if (s->tokens >= 1.0) {
        s->tokens -= 1.0;
    } else {
        double wait_ms = (1.0 - s->tokens) / l->per_ms;
        retry = (int)ceil(wait_ms / 1000.0);
        if (retry < 1) retry = 1;
    }
    pthread_mutex_unlock(&l->mu);
    return retry;
}
