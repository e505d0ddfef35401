/* The delivery worker: one thread with its own connection to notifier.db
 * and one curl multi handle, POSTing due rows of the `deliveries` table
 * (rich notifications and purchase callbacks) to the provider's URL, many
 * at once:
 *   - 2xx: delivered (the row stays, state 'delivered', so callbacks keep
 *     their de-duplication key);
 *   - a provider's 4xx other than 408 and 429: not retried, dead-lettered;
 *   - anything else (5xx, 408, 429, no answer): retried after an
 *     exponential backoff with jitter, base MILLOM_NOTIFY_BACKOFF_MS (1000)
 *     doubling per attempt up to MILLOM_NOTIFY_BACKOFF_MAX_MS (600000), the
 *     delay drawn uniformly from [d/2, d]; after MILLOM_NOTIFY_MAX_ATTEMPTS
 *     (8) attempts it is dead-lettered.
 * Dead-lettering marks the row 'dead' and adds a NotificationDeadLetter for
 * millom.notifications.dlq to the outbox in the same transaction.
 *
 * Many in flight: up to MILLOM_NOTIFY_CONCURRENCY (64) deliveries at once,
 * and per provider at most its maxInFlight (tenants file, default
 * MILLOM_NOTIFY_PROVIDER_MAX_IN_FLIGHT, 16) and, when it has one, started
 * at its maxPerSecond (delivery.h). Rows are claimed per provider, so a
 * provider that is slow or down fills only its own slots: the others'
 * rows keep being claimed. The multi handle keeps connections alive
 * between calls (per host, so per provider).
 *
 * Claiming is in memory: this thread is the only sender of this
 * instance's rows (other instances own other partitions), a claimed row
 * stays 'pending' in the store and the claim query skips the ids in
 * flight. So nothing is sent twice at the same time, and a crash mid-flight
 * leaves the row pending: it is sent again after the restart with the
 * same X-Millom-Delivery-Id (at least once; providers de-duplicate on it).
 *
 * A rich notification is claimed first, then waits for its offers
 * (offers_cache.c: asked for all claimed rows at once, shared by
 * subscriber), then is POSTed. The results of every call that finished in
 * one turn of the loop are written in one transaction. HTTP timeout:
 * MILLOM_NOTIFY_TIMEOUT_MS (5000).
 *
 * Credentials (webhook_auth.c), when the provider's tenants entry has
 * them: every attempt is signed afresh (Standard Webhooks: webhook-id is
 * the delivery id, webhook-timestamp the attempt's time), and carries a
 * bearer token from the provider's token endpoint. A delivery without a
 * cached token waits for the token fetcher (JOB_TOKEN) like one waiting
 * for its offers; a fetch that fails is recorded as a failed attempt (so
 * retried with the backoff, not lost), and a 401 to a request with a
 * token drops that token and is retried with a fresh one. */
#include "delivery.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/topics.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"
#include "shared/plumbing/worker.h"
#include "millom/v1/notification.pb-c.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFFERS_CACHE_MAX 10000
#define POLL_MS 50        /* the longest sleep in curl_multi_poll */
#define CLAIM_EVERY_MS 20 /* claim at least this often while slots are free */
#define DEPTH_EVERY_MS 250
#define OTHER_EVERY_MS 1000
#define CONN_MAX_IDLE_S 4

typedef struct {
    char *id;
    provider_limits lim;
    rate_bucket bucket;
    long in_flight; /* claimed, not yet recorded */
    webhook_credentials cred;
    token_fetch *token; /* NULL: no webhookAuth */
} provider_state;

typedef enum { JOB_FREE = 0, JOB_OFFERS, JOB_TOKEN, JOB_HTTP, JOB_DONE } job_state;

typedef struct {
    job_state state;
    int64_t id;
    char *kind, *url, *body; /* body: as stored, then as sent */
    int attempts;
    int64_t first_ms;
    provider_state *p;
    offers_ticket *ticket;
    unsigned long token_ticket; /* JOB_TOKEN: the fetch it waits for */
    char *auth;                 /* the Authorization header sent, NULL: none */
    CURL *easy;
    struct curl_slist *headers;
    CURLcode code;
    long status;
    char error[200]; /* why it ended without a POST ("" when it was sent) */
    /* The request id it was queued under ("": none): its x-correlator
     * header, and the current correlator while the worker acts for it. */
    char correlator[CORRELATOR_SIZE];
} job;

struct delivery_worker {
    notifier *n;
    sqlite3 *db;
    sqlite3_stmt *claim_st, *other_st, *update_st, *depth_st;
    CURLM *multi;
    worker *thread;
    offers_cache *offers;
    token_fetcher *tokens; /* NULL when no provider has webhookAuth */
    long max_attempts, backoff_ms, backoff_max_ms, timeout_ms, concurrency, default_in_flight;
    unsigned seed;
    job *jobs;
    long active;                                /* jobs not JOB_FREE */
    provider_state **providers;                 /* each allocated once: jobs point at them */
    size_t n_providers, cap_providers, n_known; /* the first n_known: the tenants' */
    char *known_json;                           /* their ids, a JSON array */
    int64_t last_depth_ms, last_other_ms;
    metric *delivered, *retried, *dead, *depth;
};

static char *col(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

static int64_t backoff(delivery_worker *w, int attempts) {
    int64_t d = w->backoff_ms;
    for (int i = 1; i < attempts && d < w->backoff_max_ms; i++) d *= 2;
    if (d > w->backoff_max_ms) d = w->backoff_max_ms;
    if (d < 2) return d;
    return d / 2 + (int64_t)(rand_r(&w->seed) % (unsigned)(d / 2 + 1));
}

/* ------------------------------------------------------------ providers */

static provider_state *provider_add(delivery_worker *w, const char *id) {
    if (w->n_providers == w->cap_providers) {
        size_t cap = w->cap_providers ? 2 * w->cap_providers : 8;
        provider_state **grown = realloc(w->providers, cap * sizeof *grown);
        if (!grown) return NULL;
        w->providers = grown;
        w->cap_providers = cap;
    }
    provider_state *p = calloc(1, sizeof *p);
    if (!p || !(p->id = strdup(id))) {
        free(p);
        return NULL;
    }
    const tenant_provider *tp = tenants_provider(w->n->tenants, id);
    char err[128];
    if (provider_limits_read(tp ? tp->json : NULL, w->default_in_flight, &p->lim, err,
                             sizeof err) != 0)
        provider_limits_read(NULL, w->default_in_flight, &p->lim, err, sizeof err);
    rate_bucket_init(&p->bucket, p->lim.max_per_second, now_ms());
    w->providers[w->n_providers++] = p;
    return p;
}

/* The state of a provider, NULL when there is none yet. Providers are
 * few: a linear search. */
static provider_state *provider_find(delivery_worker *w, const char *id) {
    for (size_t i = 0; i < w->n_providers; i++)
        if (strcmp(w->providers[i]->id, id) == 0) return w->providers[i];
    return NULL;
}

/* ------------------------------------------------------------------ jobs */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata) {
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* Frees what a job holds and gives its slot back (nothing is written). */
static void job_clear(delivery_worker *w, job *j) {
    if (j->state == JOB_FREE) return;
    if (j->state == JOB_HTTP) curl_multi_remove_handle(w->multi, j->easy);
    offers_ticket_release(j->ticket);
    curl_slist_free_all(j->headers);
    if (j->auth) OPENSSL_cleanse(j->auth, strlen(j->auth));
    free(j->auth);
    free(j->kind);
    free(j->url);
    free(j->body);
    if (j->p) j->p->in_flight--;
    CURL *easy = j->easy;
    memset(j, 0, sizeof *j);
    j->easy = easy;
    w->active--;
}

/* Appends one header line; on failure the list stays as it was and *ok
 * becomes 0. */
static void add_header(struct curl_slist **list, const char *line, int *ok) {
    struct curl_slist *grown = *ok ? curl_slist_append(*list, line) : NULL;
    if (grown)
        *list = grown;
    else
        *ok = 0;
}

/* The request's headers: the delivery id, and the provider's credentials
 * (a signature made now over the body as sent, the bearer token). 0, or
 * -1 with j->error set. */
static int build_headers(job *j) {
    char id[24], line[64 + WEBHOOK_SIGNATURE_HEADER_MAX];
    snprintf(id, sizeof id, "%lld", (long long)j->id);
    int ok = 1;
    snprintf(line, sizeof line, "X-Millom-Delivery-Id: %s", id);
    add_header(&j->headers, line, &ok);
    if (j->correlator[0]) {
        snprintf(line, sizeof line, CORRELATOR_HEADER ": %s", j->correlator);
        add_header(&j->headers, line, &ok);
    }
    add_header(&j->headers, "Content-Type: application/json", &ok);
    /* curl sends "Expect: 100-continue" for larger POSTs; one round trip less without it. */
    add_header(&j->headers, "Expect:", &ok);
    const webhook_credentials *c = &j->p->cred;
    if (c->n_keys) {
        long long ts = now_ms() / 1000;
        char sig[WEBHOOK_SIGNATURE_HEADER_MAX];
        if (webhook_signature_header(c->keys, c->n_keys, id, ts, j->body, strlen(j->body), sig,
                                     sizeof sig) != 0) {
            snprintf(j->error, sizeof j->error, "cannot sign the webhook");
            return -1;
        }
        snprintf(line, sizeof line, "webhook-id: %s", id);
        add_header(&j->headers, line, &ok);
        snprintf(line, sizeof line, "webhook-timestamp: %lld", ts);
        add_header(&j->headers, line, &ok);
        snprintf(line, sizeof line, "webhook-signature: %s", sig);
        add_header(&j->headers, line, &ok);
    }
    if (j->auth) add_header(&j->headers, j->auth, &ok);
    if (!ok) snprintf(j->error, sizeof j->error, "out of memory (headers)");
    return ok ? 0 : -1;
}

/* Starts the POST of j->body (state JOB_HTTP), or records why it could
 * not start (JOB_DONE). */
static void http_start(delivery_worker *w, job *j) {
    if (build_headers(j) != 0) {
        j->state = JOB_DONE;
        return;
    }
    CURL *h = j->easy;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, j->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(j->body));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, w->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, w->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    /* A connection idle this long is not reused: servers close idle ones
     * (Millom's own after MILLOM_HTTP_HEADER_TIMEOUT_S, 10 s; many after
     * 5 s), and a POST sent just as that happens may be lost or sent
     * twice. */
    curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, (long)CONN_MAX_IDLE_S);
    curl_easy_setopt(h, CURLOPT_PRIVATE, j);
    if (curl_multi_add_handle(w->multi, h) != CURLM_OK) {
        j->code = CURLE_OUT_OF_MEMORY;
        j->state = JOB_DONE;
        return;
    }
    j->state = JOB_HTTP;
}

/* The POST once the provider's token is there: the cached one, else the
 * job waits for a fetch (JOB_TOKEN, advance_tokens). */
static void job_send(delivery_worker *w, job *j) {
    provider_state *p = j->p;
    if (!p->token) {
        http_start(w, j);
        return;
    }
    char header[WEBHOOK_AUTH_HEADER_MAX];
    if (oauth_cached_authorization(p->cred.token_source, header, sizeof header) != 0) {
        j->token_ticket = token_fetch_ask(w->tokens, p->token);
        j->state = JOB_TOKEN;
        return;
    }
    j->auth = strdup(header);
    OPENSSL_cleanse(header, sizeof header);
    if (!j->auth) {
        snprintf(j->error, sizeof j->error, "out of memory (token)");
        j->state = JOB_DONE;
        return;
    }
    http_start(w, j);
}

/* A rich notification gets its offers and signed links now, so they are
 * fresh at each attempt; the dead letter records what was sent last. */
static void job_render(delivery_worker *w, job *j) {
    const char *why = NULL;
    json_t *offers = j->ticket ? offers_ticket_offers(j->ticket, &why) : NULL;
    if (!offers) {
        json_t *b = json_loads(j->body, 0, NULL);
        log_warn("notification %s to %s sent without offers: %s",
                 json_string_value(json_object_get(b, "transactionId")), j->p->id,
                 why ? why : "out of memory");
        json_decref(b);
    }
    char *sent = rich_notification_render(w->n, j->p->id, j->body, offers);
    if (sent) {
        free(j->body);
        j->body = sent;
    }
    offers_ticket_release(j->ticket);
    j->ticket = NULL;
}

/* Takes row st (id, kind, url, body, attempts, first_attempt_ms,
 * provider, correlator) into a free slot for provider p and starts it:
 * offers first for a rich notification, else the POST. */
static void job_take(delivery_worker *w, provider_state *p, sqlite3_stmt *st) {
    job *j = NULL;
    for (long i = 0; i < w->concurrency && !j; i++)
        if (w->jobs[i].state == JOB_FREE) j = &w->jobs[i];
    if (!j) return;
    j->id = sqlite3_column_int64(st, 0);
    j->kind = col(st, 1);
    j->url = col(st, 2);
    j->body = col(st, 3);
    j->attempts = sqlite3_column_int(st, 4);
    j->first_ms = sqlite3_column_int64(st, 5);
    const char *correlator = (const char *)sqlite3_column_text(st, 7);
    if (correlator && correlator_valid(correlator, strlen(correlator)))
        memcpy(j->correlator, correlator, strlen(correlator) + 1);
    j->p = p;
    j->state = JOB_DONE; /* until started */
    p->in_flight++;
    w->active++;
    if (!j->kind || !j->url || !j->body) {
        job_clear(w, j); /* out of memory: the row stays pending */
        return;
    }
    rich_target t;
    /* What this job causes (its offers query, its log lines) carries its
     * request id. */
    correlator_set(j->correlator);
    if (strcmp(j->kind, "notification") == 0 && rich_notification_target(j->body, &t)) {
        j->ticket = offers_cache_ask(w->offers, p->id, t.op, t.msisdn, t.language, mono_ms());
        j->state = JOB_OFFERS;
        if (j->ticket) {
            correlator_clear();
            return;
        }
        job_render(w, j);
    }
    job_send(w, j);
    correlator_clear();
}

static int in_flight(const delivery_worker *w, int64_t id) {
    for (long i = 0; i < w->concurrency; i++)
        if (w->jobs[i].state != JOB_FREE && w->jobs[i].id == id) return 1;
    return 0;
}

/* Claims up to `room` due rows of provider p (or, p NULL, of providers
 * not in the tenants file) that are not in flight. Returns how many. */
static long claim_from(delivery_worker *w, provider_state *p, long room, int64_t now) {
    sqlite3_stmt *st = p ? w->claim_st : w->other_st;
    sqlite3_reset(st);
    if (p)
        sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_text(st, 1, w->known_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    /* The rows in flight are still pending and due: look past them. */
    sqlite3_bind_int64(st, 3, (p ? p->in_flight : w->active) + room);
    long taken = 0;
    while (taken < room && sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (in_flight(w, id)) continue;
        provider_state *q = p;
        if (!q) {
            const char *pid = (const char *)sqlite3_column_text(st, 6);
            q = provider_find(w, pid ? pid : "");
            if (!q) q = provider_add(w, pid ? pid : "");
            if (!q) break;
            if (q->in_flight >= q->lim.max_in_flight || rate_bucket_take(&q->bucket, 1, now) < 1)
                continue;
        }
        job_take(w, q, st);
        taken++;
    }
    sqlite3_reset(st);
    return taken;
}

/* Claims what the free slots and the providers' limits allow. Returns
 * how many; *wait_ms: when a rate limit next lets a call start (0: none
 * is waiting for one). */
static long claim(delivery_worker *w, int64_t now, int64_t *wait_ms) {
    long total = 0;
    *wait_ms = 0;
    for (size_t i = 0; i < w->n_known && w->active < w->concurrency; i++) {
        provider_state *p = w->providers[i];
        long room = p->lim.max_in_flight - p->in_flight;
        if (room > w->concurrency - w->active) room = w->concurrency - w->active;
        if (room <= 0) continue;
        long tokens = rate_bucket_take(&p->bucket, room, now);
        if (tokens <= 0) {
            int64_t d = rate_bucket_wait_ms(&p->bucket, now);
            if (d > 0 && (*wait_ms == 0 || d < *wait_ms)) *wait_ms = d;
            continue;
        }
        long got = claim_from(w, p, tokens, now);
        if (got < tokens && p->bucket.rate > 0) p->bucket.tokens += (double)(tokens - got);
        total += got;
    }
    /* Rows of providers no longer in the tenants file are rare, and the
     * query looks past every due row of the others: once a second. */
    if (w->active < w->concurrency && now - w->last_other_ms >= OTHER_EVERY_MS) {
        total += claim_from(w, NULL, w->concurrency - w->active, now);
        w->last_other_ms = now;
    }
    return total;
}

/* Jobs whose offers arrived are rendered and POSTed. */
static void advance_offers(delivery_worker *w) {
    for (long i = 0; i < w->concurrency; i++) {
        job *j = &w->jobs[i];
        if (j->state != JOB_OFFERS || !offers_ticket_done(j->ticket)) continue;
        correlator_set(j->correlator);
        job_render(w, j);
        job_send(w, j);
        correlator_clear();
    }
}

/* Jobs whose token fetch ended: POSTed with the token, or done with the
 * fetch's error (a failed attempt: retried later). */
static void advance_tokens(delivery_worker *w) {
    for (long i = 0; i < w->concurrency; i++) {
        job *j = &w->jobs[i];
        if (j->state != JOB_TOKEN) continue;
        char why[160];
        int rc = token_fetch_done(w->tokens, j->p->token, j->token_ticket, why, sizeof why);
        if (rc > 0) {
            job_send(w, j);
        } else if (rc < 0) {
            snprintf(j->error, sizeof j->error, "no token: %s", why);
            j->state = JOB_DONE;
        }
    }
}

/* Finished transfers become JOB_DONE with their result. */
static void harvest(delivery_worker *w) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        job *j = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        if (!j) continue;
        j->code = m->data.result;
        j->status = 0;
        if (j->code == CURLE_OK)
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &j->status);
        /* The provider refused this token (expired, revoked): the next
         * attempt fetches a fresh one. */
        if (j->status == 401 && j->auth) oauth_invalidate(j->p->cred.token_source, j->auth);
        curl_multi_remove_handle(w->multi, m->easy_handle);
        j->state = JOB_DONE;
    }
}

/* ------------------------------------------------------------- results */

static int update(delivery_worker *w, const job *j, const char *state, int attempts,
                  int64_t next_ms, int64_t first_ms, const char *error) {
    sqlite3_stmt *st = w->update_st;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, j->id);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, attempts);
    sqlite3_bind_int64(st, 4, next_ms);
    sqlite3_bind_int64(st, 5, first_ms);
    sqlite3_bind_text(st, 6, error, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_reset(st);
    return rc;
}

static int dead_letter(delivery_worker *w, const job *j, int attempts, int64_t first_ms,
                       int64_t now, const char *error) {
    Millom__V1__NotificationDeadLetter d = MILLOM__V1__NOTIFICATION_DEAD_LETTER__INIT;
    d.service_provider = j->p->id;
    d.url = j->url;
    d.kind = j->kind;
    d.body.data = (uint8_t *)j->body;
    d.body.len = strlen(j->body);
    d.attempts = attempts;
    d.last_error = (char *)error;
    d.first_attempt_ms = first_ms;
    d.last_attempt_ms = now;
    size_t len = millom__v1__notification_dead_letter__get_packed_size(&d);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return -1;
    millom__v1__notification_dead_letter__pack(&d, buf);
    int rc = update(w, j, "dead", attempts, now, first_ms, error) == 0 &&
                     outbox_add(w->db, TOPIC_NOTIFICATIONS_DLQ, j->p->id, strlen(j->p->id), buf,
                                len) == SQLITE_OK
                 ? 0
                 : -1;
    free(buf);
    return rc;
}

typedef enum { OUT_DELIVERED, OUT_RETRY, OUT_DEAD } outcome;

int delivery_retried(long status, int sent_token) {
    if (status < 400 || status >= 500) return 1;
    return status == 408 || status == 429 || (status == 401 && sent_token);
}

/* Writes one finished job's result (inside the caller's transaction). */
static int record(delivery_worker *w, const job *j, int64_t now, outcome *out) {
    int attempts = j->attempts + 1;
    int64_t first_ms = j->first_ms ? j->first_ms : now;
    if (!j->error[0] && j->code == CURLE_OK && j->status >= 200 && j->status < 300) {
        *out = OUT_DELIVERED;
        log_debug("delivery %lld (%s to %s) delivered, attempt %d", (long long)j->id, j->kind,
                  j->p->id, attempts);
        return update(w, j, "delivered", attempts, now, first_ms, "");
    }
    char error[300];
    if (j->error[0])
        snprintf(error, sizeof error, "%s", j->error);
    else if (j->code == CURLE_OK)
        snprintf(error, sizeof error, "HTTP %ld", j->status);
    else
        snprintf(error, sizeof error, "%s",
                 j->code == CURLE_OPERATION_TIMEDOUT ? "timed out" : curl_easy_strerror(j->code));
    int permanent = !j->error[0] && j->code == CURLE_OK && !delivery_retried(j->status, !!j->auth);
    if (permanent || attempts >= w->max_attempts) {
        *out = OUT_DEAD;
        int rc = dead_letter(w, j, attempts, first_ms, now, error);
        if (rc == 0)
            log_warn("delivery %lld (%s to %s) dead-lettered after %d attempt(s): %s",
                     (long long)j->id, j->kind, j->p->id, attempts, error);
        return rc;
    }
    *out = OUT_RETRY;
    return update(w, j, "pending", attempts, now + backoff(w, attempts), first_ms, error);
}

/* The results of every finished job in one transaction, then their slots
 * freed. If the transaction fails nothing is recorded: the rows stay
 * pending and are sent again (at least once). */
static void write_results(delivery_worker *w) {
    long done = 0, counts[3] = {0, 0, 0};
    for (long i = 0; i < w->concurrency; i++) done += w->jobs[i].state == JOB_DONE;
    if (done == 0) return;
    int64_t now = now_ms();
    int ok = store_begin(w->db) == SQLITE_OK;
    for (long i = 0; ok && i < w->concurrency; i++) {
        job *j = &w->jobs[i];
        outcome o;
        if (j->state != JOB_DONE) continue;
        correlator_set(j->correlator); /* its log lines and dead letter carry it */
        ok = record(w, j, now, &o) == 0;
        counts[o]++;
    }
    correlator_clear();
    ok = ok && store_commit(w->db) == SQLITE_OK;
    if (!ok) {
        log_warn("cannot record %ld delivery result(s), they will be sent again: %s", done,
                 sqlite3_errmsg(w->db));
        store_rollback(w->db);
    } else {
        metric_add(w->delivered, counts[OUT_DELIVERED]);
        metric_add(w->retried, counts[OUT_RETRY]);
        metric_add(w->dead, counts[OUT_DEAD]);
        if (counts[OUT_DEAD]) outbox_relay_notify(w->n->outbox);
    }
    for (long i = 0; i < w->concurrency; i++)
        if (w->jobs[i].state == JOB_DONE) job_clear(w, &w->jobs[i]);
}

/* ---------------------------------------------------------------- loop */

static void refresh_depth(delivery_worker *w) {
    sqlite3_stmt *st = w->depth_st;
    sqlite3_reset(st);
    if (sqlite3_step(st) == SQLITE_ROW) metric_set(w->depth, sqlite3_column_int64(st, 0));
    sqlite3_reset(st);
}

static void abort_all(delivery_worker *w) {
    for (long i = 0; i < w->concurrency; i++) job_clear(w, &w->jobs[i]);
}

/* Runs while there is work: claims, waits for offers and answers (in
 * curl_multi_poll, woken by a completion or delivery_worker_wake), records
 * results. Returns when nothing is in flight and nothing was due (sleep
 * 100 ms or until a wake-up), or when the epoch changed (partitions
 * revoked: no more claims, the calls in flight are finished and recorded
 * first). On a stop the calls in flight are dropped unrecorded: those rows
 * are sent again after the restart. */
static long delivery_round(void *arg, worker *thread) {
    delivery_worker *w = arg;
    int epoch = worker_epoch(thread);
    int64_t last_claim = 0;
    for (;;) {
        if (worker_stopping(thread)) {
            abort_all(w);
            return 0;
        }
        int moved = worker_epoch(thread) != epoch;
        int64_t now = now_ms(), rate_wait = 0;
        long claimed = 0;
        long free_slots = w->concurrency - w->active;
        if (!moved && free_slots > 0 &&
            (w->active == 0 || free_slots >= w->concurrency / 4 ||
             now - last_claim >= CLAIM_EVERY_MS)) {
            claimed = claim(w, now, &rate_wait);
            last_claim = now;
        }
        advance_offers(w);
        if (w->tokens) advance_tokens(w);
        int running = 0;
        curl_multi_perform(w->multi, &running);
        harvest(w);
        write_results(w);
        if (now - w->last_depth_ms >= DEPTH_EVERY_MS) {
            refresh_depth(w);
            w->last_depth_ms = now;
        }
        if (w->active == 0) {
            if (moved) return 0;
            if (claimed == 0) {
                refresh_depth(w);
                return rate_wait > 0 && rate_wait < 100 ? (long)rate_wait : 100;
            }
            continue;
        }
        long poll_ms = POLL_MS;
        if (rate_wait > 0 && rate_wait < poll_ms) poll_ms = (long)rate_wait;
        curl_multi_poll(w->multi, NULL, 0, (int)poll_ms, NULL);
    }
}

/* ------------------------------------------------------------ lifecycle */

static void wake_multi(void *arg) { curl_multi_wakeup(arg); }

static void delivery_worker_free(delivery_worker *w) {
    /* First: its thread wakes the multi handle and reads the providers' handles. */
    token_fetcher_stop(w->tokens);
    if (w->offers) offers_cache_set_wake(w->offers, NULL, NULL);
    if (w->jobs) {
        abort_all(w);
        for (long i = 0; i < w->concurrency; i++)
            if (w->jobs[i].easy) curl_easy_cleanup(w->jobs[i].easy);
    }
    offers_cache_free(w->offers);
    if (w->multi) curl_multi_cleanup(w->multi);
    sqlite3_finalize(w->claim_st);
    sqlite3_finalize(w->other_st);
    sqlite3_finalize(w->update_st);
    sqlite3_finalize(w->depth_st);
    store_close(w->db);
    for (size_t i = 0; i < w->n_providers; i++) {
        webhook_credentials_clear(&w->providers[i]->cred);
        free(w->providers[i]->id);
        free(w->providers[i]);
    }
    free(w->providers);
    free(w->known_json);
    free(w->jobs);
    free(w);
}

static int prepare(delivery_worker *w, char *err, size_t errlen) {
    const char *cols = "SELECT id, kind, url, body, attempts, first_attempt_ms, provider, "
                       "correlator FROM deliveries WHERE state='pending' AND ";
    char sql[1024];
    /* Only deliveries of partitions this instance owns (shared/patterns/changelog.h). */
    snprintf(sql, sizeof sql,
             "%sprovider=?1 AND next_ms<=?2 AND " CHANGELOG_OWNED_SQL(
                 "cl_partition") " ORDER BY next_ms, id LIMIT ?3",
             cols);
    int rc = sqlite3_prepare_v2(w->db, sql, -1, &w->claim_st, NULL);
    snprintf(sql, sizeof sql,
             "%snext_ms<=?2 AND provider NOT IN (SELECT value FROM json_each(?1)) AND "
             "" CHANGELOG_OWNED_SQL("cl_partition") " ORDER BY next_ms, id LIMIT ?3",
             cols);
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(w->db, sql, -1, &w->other_st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(w->db,
                                "UPDATE deliveries SET state=?2, attempts=?3, next_ms=?4, "
                                "first_attempt_ms=?5, last_error=?6 WHERE id=?1",
                                -1, &w->update_st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(
            w->db,
            "SELECT count(*) FROM deliveries WHERE state='pending' AND " CHANGELOG_OWNED_SQL(
                "cl_partition"),
            -1, &w->depth_st, NULL);
    if (rc != SQLITE_OK) snprintf(err, errlen, "delivery queries: %s", sqlite3_errmsg(w->db));
    return rc == SQLITE_OK ? 0 : -1;
}

/* The tenants' providers, each with its limits and credentials (a bad
 * value or a missing secret is an error). */
static int load_providers(delivery_worker *w, char *err, size_t errlen) {
    const json_t *doc = tenants_json(w->n->tenants);
    if (provider_limits_check(doc, w->default_in_flight, err, errlen) != 0) return -1;
    json_t *ids = json_array();
    size_t i;
    const json_t *sp;
    json_array_foreach(json_object_get(doc, "serviceProviders"), i, sp) {
        const char *id = json_string_value(json_object_get(sp, "id"));
        if (!id || provider_find(w, id)) continue;
        provider_state *p = provider_add(w, id);
        if (!p || json_array_append_new(ids, json_string(id)) != 0) {
            json_decref(ids);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        const tenant_provider *tp = tenants_provider(w->n->tenants, id);
        if (webhook_credentials_load(tp, &p->cred, err, errlen) != 0) {
            json_decref(ids);
            return -1;
        }
        if (p->cred.n_keys || p->cred.token_source)
            log_info("webhooks to %s: signed with %zu secret(s); bearer token from %s", id,
                     p->cred.n_keys, p->cred.token_source ? tp->webhook_auth.token_url : "(none)");
    }
    w->n_known = w->n_providers;
    w->known_json = json_dumps(ids, JSON_COMPACT);
    json_decref(ids);
    if (!w->known_json) snprintf(err, errlen, "out of memory");
    return w->known_json ? 0 : -1;
}

/* The token fetcher, when a provider has webhookAuth, and its handles. */
static int start_token_fetcher(delivery_worker *w, char *err, size_t errlen) {
    for (size_t i = 0; i < w->n_known; i++) {
        provider_state *p = w->providers[i];
        if (!p->cred.token_source) continue;
        if (!w->tokens && !(w->tokens = token_fetcher_start(wake_multi, w->multi, err, errlen)))
            return -1;
        if (!(p->token = token_fetcher_add(w->tokens, p->cred.token_source))) {
            snprintf(err, errlen, "out of memory (token fetcher)");
            return -1;
        }
    }
    return 0;
}

delivery_worker *delivery_worker_start(notifier *n, char *err, size_t errlen) {
    delivery_worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->n = n;
    settings_reader s = SETTINGS_INIT; /* shared/plumbing/settings.h, at the start */
    w->max_attempts = settings_long(&s, "MILLOM_NOTIFY_MAX_ATTEMPTS", 8, 1, 1000000);
    w->backoff_ms = settings_ms(&s, "MILLOM_NOTIFY_BACKOFF_MS", 1000, 1, 86400000);
    w->backoff_max_ms = settings_ms(&s, "MILLOM_NOTIFY_BACKOFF_MAX_MS", 600000, 1, 86400000);
    w->timeout_ms = settings_ms(&s, "MILLOM_NOTIFY_TIMEOUT_MS", 5000, 1, 600000);
    w->concurrency = settings_long(&s, "MILLOM_NOTIFY_CONCURRENCY", 64, 1, 4096);
    w->default_in_flight = settings_long(&s, "MILLOM_NOTIFY_PROVIDER_MAX_IN_FLIGHT", 16, 1,
                                         PROVIDER_MAX_IN_FLIGHT_LIMIT);
    long cache_ms = settings_ms(&s, "MILLOM_NOTIFY_OFFERS_CACHE_MS", 5000, 0, 3600000);
    if (!settings_ok(&s)) {
        snprintf(err, errlen, "%s", settings_error(&s));
        free(w);
        return NULL;
    }
    if (w->backoff_max_ms < w->backoff_ms) w->backoff_max_ms = w->backoff_ms;
    w->seed = (unsigned)now_ms() ^ (unsigned)(uintptr_t)w;
    w->delivered = metric_counter("millom_notifications_delivered_total",
                                  "webhook deliveries (notifications, callbacks) accepted", NULL);
    w->retried = metric_counter("millom_notifications_retried_total",
                                "webhook deliveries scheduled again after a failure", NULL);
    w->dead =
        metric_counter("millom_notifications_dead_lettered_total",
                       "webhook deliveries given up and sent to millom.notifications.dlq", NULL);
    w->depth = metric_gauge("millom_delivery_queue_depth", "deliveries waiting to be sent", NULL);
    if (load_providers(w, err, errlen) != 0) {
        delivery_worker_free(w);
        return NULL;
    }
    w->jobs = calloc((size_t)w->concurrency, sizeof *w->jobs);
    w->multi = curl_multi_init();
    w->offers = offers_cache_new(n, cache_ms, OFFERS_CACHE_MAX);
    int ok = w->jobs && w->multi && w->offers;
    for (long i = 0; ok && i < w->concurrency; i++)
        ok = (w->jobs[i].easy = curl_easy_init()) != NULL;
    if (!ok) {
        snprintf(err, errlen, "out of memory (HTTP clients)");
        delivery_worker_free(w);
        return NULL;
    }
    /* Keep-alive: the multi handle's connection cache holds a connection
     * for every call that can be in flight. */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, w->concurrency);
    offers_cache_set_wake(w->offers, wake_multi, w->multi);
    if (start_token_fetcher(w, err, errlen) != 0) {
        delivery_worker_free(w);
        return NULL;
    }
    w->db = notifier_store_open(n->db_path, err, errlen);
    if (!w->db || prepare(w, err, errlen) != 0 ||
        !(w->thread = worker_start(delivery_round, w, err, errlen))) {
        delivery_worker_free(w);
        return NULL;
    }
    return w;
}

void delivery_worker_wake(delivery_worker *w) {
    if (!w) return;
    worker_wake(w->thread);
    curl_multi_wakeup(w->multi); /* a round waiting on its calls claims the new rows */
}

int delivery_worker_quiesce(delivery_worker *w, int timeout_ms) {
    if (!w) return 0;
    curl_multi_wakeup(w->multi);
    return worker_quiesce(w->thread, timeout_ms);
}

void delivery_worker_stop(delivery_worker *w) {
    if (!w) return;
    curl_multi_wakeup(w->multi);
    worker_stop(w->thread);
    delivery_worker_free(w);
}
