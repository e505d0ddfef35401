/* Limits on the rich-notification links: see rnf_limits.h. */
#include "rnf_limits.h"
#include "shared/plumbing/settings.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/crypto.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/rate_limit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS 3600000LL
#define MAX_PURCHASES_PER_HOUR 1000
#define DIGEST_LEN 16
#define PROBES 8

static rnf_settings settings;
static rate_limit *per_link, *per_subscriber;

/* The purchase log: per subscriber the transactions let through in the
 * last hour (a digest of the transid and when), in one fixed block. */
typedef struct {
    unsigned char digest[DIGEST_LEN];
    int used;
    int64_t last_ms;
} buyer;

typedef struct {
    unsigned char tid[DIGEST_LEN];
    int64_t at_ms; /* 0: empty */
} bought;

static pthread_mutex_t buyers_mu = PTHREAD_MUTEX_INITIALIZER;
static buyer *buyers;
static bought *log_of; /* max_keys * purchases_per_hour */
static unsigned char hash_key[32];

/* Through shared/plumbing/settings.h, once (rnf_limits_init at api-edge's start): a
 * bad value exits 1 with a message naming the variable and its range. */
static void read_settings(void) {
    settings_reader r = SETTINGS_INIT;
    settings.per_link_per_min = settings_long(&r, "MILLOM_LINK_RATE_PER_LINK", 20, 1, 100000);
    settings.per_cpid_per_min = settings_long(&r, "MILLOM_LINK_RATE_PER_CPID", 60, 1, 100000);
    settings.purchases_per_hour =
        settings_long(&r, "MILLOM_LINK_PURCHASES_PER_HOUR", 5, 1, MAX_PURCHASES_PER_HOUR);
    settings.max_keys = settings_long(&r, "MILLOM_LINK_LIMIT_KEYS", 16384, 16, 1L << 22);
    settings.purchase_ttl_s = settings_seconds(&r, "MILLOM_LINK_PURCHASE_TTL_S", 600, 1, 86400);
    settings.shop_ttl_s = settings_seconds(&r, "MILLOM_LINK_SHOP_TTL_S", 3600, 1, 7 * 86400);
    settings.link_ttl_s = settings_seconds(&r, "MILLOM_LINK_TTL_S", 86400, 1, 365 * 86400);
    snprintf(settings.public_url, sizeof settings.public_url, "%s",
             settings_url(&r, "MILLOM_PUBLIC_URL", "http://127.0.0.1:8080"));
    settings_exit_on_error(&r);
    size_t keys = (size_t)settings.max_keys;
    per_link = rate_limit_new((double)settings.per_link_per_min / 60.0,
                              (double)settings.per_link_per_min, keys);
    per_subscriber = rate_limit_new((double)settings.per_cpid_per_min / 60.0,
                                    (double)settings.per_cpid_per_min, keys);
    buyers = calloc(keys, sizeof *buyers);
    log_of = calloc(keys * (size_t)settings.purchases_per_hour, sizeof *log_of);
    if (!per_link || !per_subscriber || !buyers || !log_of ||
        crypto_random(hash_key, sizeof hash_key) != 0) {
        /* Without its tables api-edge cannot limit: better not to run. */
        log_error("rnf limits: out of memory for %zu keys", keys);
        abort();
    }
    log_info("rnf limits: %ld/min per link, %ld/min per subscriber, %ld purchases/h per "
             "subscriber (per api-edge instance); purchase links %ld s, shop links <= %ld s",
             settings.per_link_per_min, settings.per_cpid_per_min, settings.purchases_per_hour,
             settings.purchase_ttl_s, settings.shop_ttl_s);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

void rnf_limits_init(void) { pthread_once(&once, read_settings); }

const rnf_settings *rnf_limits_settings(void) {
    rnf_limits_init();
    return &settings;
}

int rnf_limit_link(const char *signature, int64_t now_ms) {
    rnf_limits_init();
    return rate_limit_take(per_link, signature, now_ms);
}

int rnf_limit_subscriber(const char *subscriber_key, int64_t now_ms) {
    rnf_limits_init();
    return rate_limit_take(per_subscriber, subscriber_key, now_ms);
}

static int digest(const char *s, unsigned char out[DIGEST_LEN]) {
    unsigned char mac[CRYPTO_SHA256_LEN];
    if (crypto_hmac_sha256(hash_key, sizeof hash_key, s, strlen(s), mac) != 0) return -1;
    memcpy(out, mac, DIGEST_LEN);
    return 0;
}

int rnf_purchase_admit(const char *subscriber_key, const char *transid, int64_t now_ms) {
    rnf_limits_init();
    unsigned char who[DIGEST_LEN], tid[DIGEST_LEN];
    if (digest(subscriber_key, who) != 0 || digest(transid, tid) != 0) return 1;
    size_t cap = (size_t)settings.max_keys, per = (size_t)settings.purchases_per_hour;
    uint64_t h;
    memcpy(&h, who, sizeof h);
    int retry = 0;
    pthread_mutex_lock(&buyers_mu);
    buyer *b = NULL, *victim = NULL;
    for (size_t i = 0; i < PROBES; i++) {
        buyer *c = &buyers[(h + i) % cap];
        if (c->used && memcmp(c->digest, who, DIGEST_LEN) == 0) {
            b = c;
            break;
        }
        /* the first free slot, else the one used longest ago */
        if (!c->used) {
            if (!victim || victim->used) victim = c;
        } else if (!victim || (victim->used && c->last_ms < victim->last_ms)) {
            victim = c;
        }
    }
    bought *log = NULL;
    if (!b) {
        b = victim;
        memcpy(b->digest, who, DIGEST_LEN);
        b->used = 1;
        log = &log_of[(size_t)(b - buyers) * per];
        memset(log, 0, per * sizeof *log);
    } else {
        log = &log_of[(size_t)(b - buyers) * per];
    }
    b->last_ms = now_ms;
    bought *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < per; i++) {
        bought *e = &log[i];
        int live = e->at_ms != 0 && e->at_ms > now_ms - HOUR_MS;
        if (live && memcmp(e->tid, tid, DIGEST_LEN) == 0) goto out; /* a repeat */
        if (!live) {
            if (!free_slot) free_slot = e;
        } else if (!oldest || e->at_ms < oldest->at_ms) {
            oldest = e;
        }
    }
    if (free_slot) {
        memcpy(free_slot->tid, tid, DIGEST_LEN);
        free_slot->at_ms = now_ms;
    } else {
        int64_t wait_ms = oldest->at_ms + HOUR_MS - now_ms;
        retry = (int)((wait_ms + 999) / 1000);
        if (retry < 1) retry = 1;
    }
out:
    pthread_mutex_unlock(&buyers_mu);
    return retry;
}
