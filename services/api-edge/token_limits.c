/* See token_limits.h. One mutex over a fixed table; every operation looks
 * at no more than three sets of 8 entries. */
#include "token_limits.h"
#include "shared/plumbing/settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 8

/* ---- settings ---- */

void token_limits_cfg_default(token_limits_cfg *c) {
    *c = (token_limits_cfg){
        .rate_ip = 10,
        .burst_ip = 40,
        .rate_client = 5,
        .burst_client = 20,
        .fail_free_ip = 20,
        .fail_free_client = 5,
        .lock_s = 1,
        .lock_max_s = 900,
        .forget_s = 3600,
        .tracked = 8192,
        .hash_threads = 1,
        .hash_queue = 32,
    };
}

/* Through shared/plumbing/settings.h: the number in name, if set, into *out; -1
 * with err naming the variable and its range when it is bad. */
static int env_number(const char *name, double min, double max, double *out, char *err,
                      size_t errlen) {
    settings_reader s = SETTINGS_INIT;
    *out = settings_number(&s, name, *out, min, max);
    if (settings_ok(&s)) return 0;
    snprintf(err, errlen, "%s", settings_error(&s));
    return -1;
}

static int env_long(const char *name, long min, long max, long *out, char *err, size_t errlen) {
    settings_reader s = SETTINGS_INIT;
    *out = settings_long(&s, name, *out, min, max);
    if (settings_ok(&s)) return 0;
    snprintf(err, errlen, "%s", settings_error(&s));
    return -1;
}

int token_limits_cfg_from_env(token_limits_cfg *c, char *err, size_t errlen) {
    token_limits_cfg_default(c);
    if (env_number("MILLOM_TOKEN_RATE_PER_IP", 0.001, 1e6, &c->rate_ip, err, errlen) ||
        env_number("MILLOM_TOKEN_BURST_PER_IP", 1, 1e6, &c->burst_ip, err, errlen) ||
        env_number("MILLOM_TOKEN_RATE_PER_CLIENT", 0.001, 1e6, &c->rate_client, err, errlen) ||
        env_number("MILLOM_TOKEN_BURST_PER_CLIENT", 1, 1e6, &c->burst_client, err, errlen) ||
        env_long("MILLOM_TOKEN_FAIL_FREE_PER_IP", 0, 1000000, &c->fail_free_ip, err, errlen) ||
        env_long("MILLOM_TOKEN_FAIL_FREE_PER_CLIENT", 0, 1000000, &c->fail_free_client, err,
                 errlen) ||
        env_number("MILLOM_TOKEN_FAIL_LOCK_S", 0.001, 86400, &c->lock_s, err, errlen) ||
        env_number("MILLOM_TOKEN_FAIL_LOCK_MAX_S", 0.001, 86400, &c->lock_max_s, err, errlen) ||
        env_number("MILLOM_TOKEN_FAIL_FORGET_S", 1, 7 * 86400, &c->forget_s, err, errlen) ||
        env_long("MILLOM_TOKEN_TRACKED", 64, 1L << 22, &c->tracked, err, errlen) ||
        env_long("MILLOM_TOKEN_HASH_THREADS", 1, 64, &c->hash_threads, err, errlen) ||
        env_long("MILLOM_TOKEN_HASH_QUEUE", 1, 100000, &c->hash_queue, err, errlen))
        return -1;
    if (c->lock_max_s < c->lock_s) {
        snprintf(err, errlen,
                 "MILLOM_TOKEN_FAIL_LOCK_MAX_S (%g) is below MILLOM_TOKEN_FAIL_LOCK_S (%g)",
                 c->lock_max_s, c->lock_s);
        return -1;
    }
    return 0;
}

/* ---- the table ---- */

typedef struct {
    char key[192];  /* "" when free */
    uint64_t stamp; /* last use, for least-recently-seen eviction */
    uint64_t pin;   /* the operation that last touched it: not evicted by it */
    double last_seen;
    double tokens, refilled; /* token bucket */
    long fails;
    double last_fail, locked_until;
} entry;

struct token_limits {
    pthread_mutex_t mu;
    token_limits_cfg cfg;
    entry *e;
    size_t n_sets, used;
    uint64_t stamp, op;
    unsigned char hkey[32];
};

token_limits *token_limits_new(const token_limits_cfg *cfg) {
    token_limits *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->cfg = *cfg;
    long tracked = cfg->tracked < WAYS ? WAYS : cfg->tracked;
    l->n_sets = ((size_t)tracked + WAYS - 1) / WAYS;
    l->e = calloc(l->n_sets * WAYS, sizeof *l->e);
    if (!l->e || RAND_bytes(l->hkey, sizeof l->hkey) != 1) {
        free(l->e);
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void token_limits_free(token_limits *l) {
    if (!l) return;
    pthread_mutex_destroy(&l->mu);
    free(l->e);
    free(l);
}

static int locked(const entry *e, double now) { return e->locked_until > now; }

static int idle(const token_limits *l, const entry *e, double now) {
    return !locked(e, now) && now - e->last_seen >= l->cfg.forget_s;
}

static size_t set_of(const token_limits *l, const char *key) {
    unsigned char md[32];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), l->hkey, (int)sizeof l->hkey, (const unsigned char *)key, strlen(key),
              md, &n))
        return 0; /* never seen in practice; one set is still correct */
    uint64_t h = 0;
    memcpy(&h, md, sizeof h);
    return (size_t)(h % l->n_sets);
}

/* The entry for key (created, with a full bucket of `burst`, when absent).
 * Never evicts one that this operation already touched. Caller holds mu. */
static entry *find(token_limits *l, const char *key, double burst, double now) {
    entry *set = &l->e[set_of(l, key) * WAYS];
    entry *victim = NULL;
    for (int i = 0; i < WAYS; i++) {
        entry *e = &set[i];
        if (e->key[0] && strcmp(e->key, key) == 0) {
            victim = e;
            goto found;
        }
    }
    /* a free or idle way first, else the least recently seen unlocked
     * one, else the one whose lock-out ends first */
    for (int i = 0; i < WAYS && !victim; i++)
        if (!set[i].key[0] || idle(l, &set[i], now)) victim = &set[i];
    for (int i = 0; i < WAYS && !victim; i++) {
        entry *e = &set[i];
        if (e->pin == l->op || locked(e, now)) continue;
        if (!victim || e->stamp < victim->stamp) victim = e;
    }
    for (int i = 0; i < WAYS && !victim; i++) {
        entry *e = &set[i];
        if (e->pin == l->op) continue;
        if (!victim || e->locked_until < victim->locked_until) victim = e;
    }
    if (!victim->key[0]) l->used++;
    memset(victim, 0, sizeof *victim);
    snprintf(victim->key, sizeof victim->key, "%s", key);
    victim->tokens = burst;
    victim->refilled = now;
    victim->last_fail = now;
found:
    victim->stamp = ++l->stamp;
    victim->pin = l->op;
    victim->last_seen = now;
    if (victim->fails && now - victim->last_fail >= l->cfg.forget_s) {
        victim->fails = 0;
        victim->locked_until = 0;
    }
    return victim;
}

static int wait_s(double s) {
    double w = ceil(s - 1e-9);
    return w < 1 ? 1 : w > 86400 ? 86400 : (int)w;
}

/* Takes one token; 0 with *retry when there is none. */
static int take(entry *e, double rate, double burst, double now, int *retry) {
    if (now > e->refilled) {
        e->tokens += (now - e->refilled) * rate;
        e->refilled = now;
    }
    if (e->tokens > burst) e->tokens = burst;
    if (e->tokens >= 1.0 - 1e-9) { /* float dust must not refuse */
        e->tokens -= 1.0;
        return 1;
    }
    *retry = wait_s((1.0 - e->tokens) / rate);
    return 0;
}

static void fail(const token_limits *l, entry *e, long free_fails, double now) {
    e->fails++;
    e->last_fail = now;
    if (e->fails <= free_fails) return;
    long doublings = e->fails - free_fails - 1;
    double d = l->cfg.lock_s * ldexp(1.0, doublings > 40 ? 40 : (int)doublings);
    if (d > l->cfg.lock_max_s) d = l->cfg.lock_max_s;
    e->locked_until = now + d;
}

/* The address as tracked: IPv4 (also when IPv4-mapped) as is, IPv6 by its
 * /64 (one host usually has a whole /64 to pick addresses from). */
static void ip_key(const char *ip, char *out, size_t outlen) {
    unsigned char a[16];
    if (inet_pton(AF_INET6, ip, a) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            inet_ntop(AF_INET, a + 12, out, (socklen_t)outlen);
            return;
        }
        memset(a + 8, 0, 8);
        char txt[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, a, txt, sizeof txt);
        snprintf(out, outlen, "%s/64", txt);
        return;
    }
    snprintf(out, outlen, "%.60s", ip ? ip : "");
}

static void keys(const char *ip, const char *client_id, char *a, char *c, char *p, size_t len) {
    char ipk[72];
    ip_key(ip, ipk, sizeof ipk);
    snprintf(a, len, "a|%s", ipk);
    snprintf(c, len, "c|%.128s", client_id ? client_id : "");
    snprintf(p, len, "p|%s|%.128s", ipk, client_id ? client_id : "");
}

token_decision token_limits_check(token_limits *l, const char *ip, const char *client_id,
                                  double now, int *retry_after) {
    char ka[192], kc[192], kp[192];
    keys(ip, client_id, ka, kc, kp, sizeof ka);
    int retry = 1;
    token_decision d = TOKEN_ALLOW;
    pthread_mutex_lock(&l->mu);
    l->op++;
    entry *a = find(l, ka, l->cfg.burst_ip, now);
    entry *p = find(l, kp, 1, now);
    if (locked(a, now)) {
        d = TOKEN_REFUSE_IP_LOCKED;
        retry = wait_s(a->locked_until - now);
    } else if (locked(p, now)) {
        d = TOKEN_REFUSE_CLIENT_LOCKED;
        retry = wait_s(p->locked_until - now);
    } else if (!take(a, l->cfg.rate_ip, l->cfg.burst_ip, now, &retry)) {
        d = TOKEN_REFUSE_IP_RATE;
    } else {
        entry *c = find(l, kc, l->cfg.burst_client, now);
        if (!take(c, l->cfg.rate_client, l->cfg.burst_client, now, &retry))
            d = TOKEN_REFUSE_CLIENT_RATE;
    }
    pthread_mutex_unlock(&l->mu);
    if (d != TOKEN_ALLOW && retry_after) *retry_after = retry;
    return d;
}

void token_limits_report(token_limits *l, const char *ip, const char *client_id, int ok,
                         double now) {
    char ka[192], kc[192], kp[192];
    keys(ip, client_id, ka, kc, kp, sizeof ka);
    pthread_mutex_lock(&l->mu);
    l->op++;
    entry *a = find(l, ka, l->cfg.burst_ip, now);
    entry *p = find(l, kp, 1, now);
    if (ok) {
        a->fails = p->fails = 0;
        a->locked_until = p->locked_until = 0;
    } else {
        fail(l, a, l->cfg.fail_free_ip, now);
        fail(l, p, l->cfg.fail_free_client, now);
    }
    pthread_mutex_unlock(&l->mu);
}

size_t token_limits_entries(token_limits *l) {
    pthread_mutex_lock(&l->mu);
    size_t n = l->used;
    pthread_mutex_unlock(&l->mu);
    return n;
}

const char *token_decision_text(token_decision d) {
    switch (d) {
    case TOKEN_ALLOW: return "allowed";
    case TOKEN_REFUSE_IP_LOCKED: return "too many failed client secrets from this address";
    case TOKEN_REFUSE_IP_RATE: return "too many token requests from this address";
    case TOKEN_REFUSE_CLIENT_LOCKED:
        return "too many failed secrets for this client from this address";
    case TOKEN_REFUSE_CLIENT_RATE: return "too many token requests for this client";
    }
    return "refused";
}
