/* Millom's credentials on its webhooks to a provider (README "Verifying
 * Millom's webhooks"), from the provider's tenants entry and the
 * environment, read once when the delivery worker starts:
 *   webhookAuth     OAuth 2.0 client credentials: a token from the
 *                   provider's token endpoint (shared/patterns/oauth_client.h,
 *                   which caches it) goes in "Authorization: Bearer";
 *   webhookSecrets  Standard Webhooks signatures
 *                   (shared/contracts/webhook_signature.h).
 *
 * Tokens are fetched off the delivery thread: that thread drives every
 * provider's calls at once and must not wait on one provider's token
 * endpoint. It takes a cached token without waiting
 * (oauth_cached_authorization); when there is none it asks the token
 * fetcher, one thread that fetches for one provider at a time, in turn,
 * and wakes the delivery thread when a fetch ends. Every delivery that
 * asked before a fetch started shares it, its failure too. */
#include "delivery.h"

#include "shared/plumbing/http_client.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/worker.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ credentials */

int webhook_credentials_load(const tenant_provider *tp, webhook_credentials *out, char *err,
                             size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!tp) return 0;
    for (size_t i = 0; i < TENANT_WEBHOOK_SECRETS_MAX && tp->webhook_secret_envs[i]; i++) {
        const char *env = tp->webhook_secret_envs[i];
        const char *secret = setting_str(env, NULL);
        char why[160];
        if (!secret) {
            snprintf(err, errlen, "provider %s: webhookSecrets names $%s, which is not set", tp->id,
                     env);
            goto fail;
        }
        if (webhook_key_parse(secret, &out->keys[out->n_keys], why, sizeof why) != 0) {
            snprintf(err, errlen, "provider %s: $%s: %s", tp->id, env, why);
            goto fail;
        }
        out->n_keys++;
    }
    const tenant_webhook_auth *a = &tp->webhook_auth;
    if (a->token_url) {
        const char *secret = setting_str(a->client_secret_env, NULL);
        if (!secret) {
            snprintf(err, errlen,
                     "provider %s: webhookAuth.clientSecretEnv names $%s, which is not set", tp->id,
                     a->client_secret_env);
            goto fail;
        }
        out->token_source = oauth_source_get(a->token_url, a->client_id, secret, a->scope);
        if (!out->token_source) {
            snprintf(err, errlen, "provider %s: webhookAuth: out of memory", tp->id);
            goto fail;
        }
    }
    return 0;
fail:
    webhook_credentials_clear(out);
    return -1;
}

void webhook_credentials_clear(webhook_credentials *c) {
    if (!c) return;
    for (size_t i = 0; i < WEBHOOK_KEYS_MAX; i++) webhook_key_clear(&c->keys[i]);
    c->n_keys = 0;
    c->token_source = NULL; /* process-wide, never freed (oauth_client.h) */
}

/* ---------------------------------------------------------- token fetcher */

struct token_fetch {
    oauth_token_source *source;
    /* under the fetcher's mu */
    int queued, running;
    unsigned long done; /* fetches ended */
    int last_ok;
    char last_error[160];
    struct token_fetch *next;
};

struct token_fetcher {
    pthread_mutex_t mu;
    token_fetch *fetches; /* under mu */
    token_fetch *turn;    /* where the next search for a queued fetch starts */
    http_client *http;    /* the fetcher thread's */
    void (*wake)(void *);
    void *wake_arg;
    worker *thread;
};

/* The next queued fetch, in turn from the one after the last served, so
 * one provider's asks cannot starve another's. Under mu. */
static token_fetch *next_queued(token_fetcher *f) {
    token_fetch *start = f->turn ? f->turn : f->fetches;
    token_fetch *t = start;
    while (t) {
        if (t->queued) {
            f->turn = t->next;
            return t;
        }
        t = t->next ? t->next : f->fetches;
        if (t == start) break;
    }
    return NULL;
}

static long fetch_round(void *arg, worker *thread) {
    (void)thread;
    token_fetcher *f = arg;
    pthread_mutex_lock(&f->mu);
    token_fetch *t = next_queued(f);
    if (t) {
        t->queued = 0;
        t->running = 1;
    }
    pthread_mutex_unlock(&f->mu);
    if (!t) return 1000; /* until an ask wakes it */

    char header[WEBHOOK_AUTH_HEADER_MAX];
    int rc = oauth_authorization(t->source, f->http, header, sizeof header);
    pthread_mutex_lock(&f->mu);
    t->running = 0;
    t->done++;
    t->last_ok = rc == 0;
    if (rc != 0) snprintf(t->last_error, sizeof t->last_error, "%.150s", header);
    pthread_mutex_unlock(&f->mu);
    OPENSSL_cleanse(header, sizeof header);
    if (f->wake) f->wake(f->wake_arg);
    return 0;
}

token_fetcher *token_fetcher_start(void (*wake)(void *), void *arg, char *err, size_t errlen) {
    token_fetcher *f = calloc(1, sizeof *f);
    if (!f || !(f->http = http_client_new())) {
        free(f);
        snprintf(err, errlen, "out of memory (token fetcher)");
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    f->wake = wake;
    f->wake_arg = arg;
    if (!(f->thread = worker_start(fetch_round, f, err, errlen))) {
        http_client_free(f->http);
        pthread_mutex_destroy(&f->mu);
        free(f);
        return NULL;
    }
    return f;
}

void token_fetcher_stop(token_fetcher *f) {
    if (!f) return;
    worker_stop(f->thread);
    while (f->fetches) {
        token_fetch *t = f->fetches;
        f->fetches = t->next;
        free(t);
    }
    http_client_free(f->http);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

token_fetch *token_fetcher_add(token_fetcher *f, oauth_token_source *s) {
    token_fetch *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->source = s;
    pthread_mutex_lock(&f->mu);
    t->next = f->fetches;
    f->fetches = t;
    pthread_mutex_unlock(&f->mu);
    return t;
}

unsigned long token_fetch_ask(token_fetcher *f, token_fetch *t) {
    pthread_mutex_lock(&f->mu);
    int start = !t->queued && !t->running;
    if (start) t->queued = 1;
    unsigned long ticket = t->done + 1;
    pthread_mutex_unlock(&f->mu);
    if (start) worker_wake(f->thread);
    return ticket;
}

int token_fetch_done(token_fetcher *f, token_fetch *t, unsigned long ticket, char *err,
                     size_t errlen) {
    pthread_mutex_lock(&f->mu);
    int rc = t->done < ticket ? 0 : t->last_ok ? 1 : -1;
    if (rc < 0) snprintf(err, errlen, "%s", t->last_error);
    pthread_mutex_unlock(&f->mu);
    return rc;
}
