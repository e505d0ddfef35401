/* The background thread of async activations.
 *
 * An activation of an async offer is recorded PENDING (and charged) by
 * mno_activate; the route then schedules its completion here, after the
 * callback delay (MILLOM_MNO_CALLBACK_DELAY_MS, or the admin behaviour's
 * callbackDelayMs). When due, the thread completes it in the store (OK with
 * the plan and a confirmation code, or with callbackFail FAIL and refunded)
 * and reports the result by POST:
 *
 *   backend style (default): to the activation's callbackUrl, else
 *     MILLOM_MNO_CALLBACK_URL, the backend spec's activationCallback body
 *     {transId, channelId, serviceProviderId, offerId,
 *      activationStatus: {status: OK|FAIL, errorMessage: {errorType, message}}}
 *     plus, on OK, "confirmationCode" (non-spec extension);
 *   millom style: to <MILLOM_MNO_MILLOM_URL>/callback/v1/tp/?idValue=<msisdn>&idType=MSISDN,
 *     millom-callback.yaml's body {transactionId, appId, message} plus, on
 *     failure, errorType FAILURE_IN_BU and errorCode "500".
 *
 * With MILLOM_MNO_OAUTH_CLIENT_SECRET set, every POST carries a bearer
 * token of the operator's client (callback_auth.c); a 401 drops the token
 * and the POST is made once more at once with a new one.
 *
 * A POST answered 2xx, 404 or 409 (the callback spec: unknown or already
 * completed transaction) is done; any other status or no answer is retried
 * after backoff_ms, doubling, up to max_attempts POSTs. Every attempt is
 * counted in the activation's row (callbackAttempts, callbackStatus).
 * Retries wait in the queue, so one dead callback URL does not hold up
 * other completions. The queue is in memory: at start-up, activations left
 * PENDING by a previous run are scheduled again; undelivered callbacks of a
 * previous run are not. */
#include "mno_sandbox.h"

#include "shared/plumbing/settings.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/clock.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { T_COMPLETE, T_DELIVER } task_kind;

typedef struct task {
    struct task *next;
    int64_t due_ms; /* monotonic */
    task_kind kind;
    char trans_id[129];
    mno_callback_style style;
    bool fail;
    int attempts; /* POSTs made so far */
    char *url;
    char *body;
} task;

struct mno_activations {
    mno_store *store;
    mno_callback_cfg cfg;
    char *callback_url;
    char *millom_url;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    task *head; /* sorted by due_ms, FIFO among equals */
    long n_queued;
    bool running; /* a task is being processed */
    bool stopping;
    bool started;
    pthread_t thread;
};

/* Through shared/plumbing/settings.h, at the start: a bad value exits 1 with a
 * message naming the variable and its range. */
void mno_callback_cfg_from_env(mno_callback_cfg *cfg) {
    settings_reader s = SETTINGS_INIT;
    cfg->callback_url =
        settings_url(&s, "MILLOM_MNO_CALLBACK_URL", "http://127.0.0.1:8080/activationCallback/tp");
    cfg->millom_url = settings_url(&s, "MILLOM_MNO_MILLOM_URL", "http://127.0.0.1:8080");
    cfg->delay_ms = settings_ms(&s, "MILLOM_MNO_CALLBACK_DELAY_MS", 500, 0, 600000);
    cfg->max_attempts = (int)settings_long(&s, "MILLOM_MNO_CALLBACK_ATTEMPTS", 5, 1, 100);
    cfg->backoff_ms = settings_ms(&s, "MILLOM_MNO_CALLBACK_BACKOFF_MS", 200, 0, 600000);
    cfg->timeout_ms = settings_ms(&s, "MILLOM_MNO_CALLBACK_TIMEOUT_MS", 2000, 1, 600000);
    settings_exit_on_error(&s);
    mno_callback_auth_from_env(&cfg->auth);
}

static void task_free(task *t) {
    if (!t) return;
    free(t->url);
    free(t->body);
    free(t);
}

/* Inserts t by due time. Called with the lock held. */
static void enqueue_locked(mno_activations *a, task *t) {
    task **p = &a->head;
    while (*p && (*p)->due_ms <= t->due_ms) p = &(*p)->next;
    t->next = *p;
    *p = t;
    a->n_queued++;
    pthread_cond_signal(&a->wake);
}

static void enqueue(mno_activations *a, task *t) {
    pthread_mutex_lock(&a->lock);
    if (a->stopping) {
        pthread_mutex_unlock(&a->lock);
        task_free(t);
        return;
    }
    enqueue_locked(a, t);
    pthread_mutex_unlock(&a->lock);
}

/* ---- callback bodies ---- */

static char *dump(json_t *o) {
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void backend_callback(const mno_activations *a, const mno_completion *c, task *t) {
    json_t *o = json_object();
    json_object_set_new(o, "transId", json_string(c->trans_id));
    json_object_set_new(o, "channelId", json_string(c->channel_id));
    json_object_set_new(o, "serviceProviderId", json_string(c->service_provider));
    json_object_set_new(o, "offerId", json_string(c->offer_id));
    json_t *st = json_object();
    json_object_set_new(st, "status", json_string(c->ok ? "OK" : "FAIL"));
    if (!c->ok)
        json_object_set_new(st, "errorMessage", mno_error_json(c->error_type, c->error_message));
    json_object_set_new(o, "activationStatus", st);
    if (c->ok) json_object_set_new(o, "confirmationCode", json_string(c->confirmation_code));
    t->body = dump(o);
    t->url = strdup(c->callback_url[0] ? c->callback_url : a->callback_url);
}

static void millom_callback(const mno_activations *a, const mno_completion *c, task *t) {
    json_t *o = json_object();
    json_object_set_new(o, "transactionId", json_string(c->trans_id));
    json_object_set_new(o, "appId", json_string(c->service_provider));
    char message[200];
    if (c->ok) {
        snprintf(message, sizeof message, "offer %s activated, confirmationCode %s", c->offer_id,
                 c->confirmation_code);
    } else {
        snprintf(message, sizeof message, "%s", c->error_message);
        json_object_set_new(o, "errorType", json_string("FAILURE_IN_BU"));
        json_object_set_new(o, "errorCode", json_string("500"));
    }
    json_object_set_new(o, "message", json_string(message));
    t->body = dump(o);

    size_t base_len = strlen(a->millom_url);
    while (base_len > 0 && a->millom_url[base_len - 1] == '/') base_len--;
    char *id = http_escape(c->customer);
    size_t cap = base_len + strlen(id ? id : "") + 64;
    t->url = malloc(cap);
    if (t->url)
        snprintf(t->url, cap, "%.*s/callback/v1/%s/?idValue=%s&idType=MSISDN", (int)base_len,
                 a->millom_url, MNO_OPERATOR, id ? id : "");
    free(id);
}

/* ---- the thread ---- */

static void complete(mno_activations *a, task *t) {
    mno_completion c;
    int rc = mno_activation_complete(a->store, t->trans_id, t->fail, now_ms(), &c);
    if (rc <= 0) {
        if (rc < 0) log_error("activation %s: completion failed in the store", t->trans_id);
        task_free(t);
        return;
    }
    /* The same task object goes on as the delivery. */
    t->kind = T_DELIVER;
    t->attempts = 0;
    if (t->style == MNO_CALLBACK_MILLOM)
        millom_callback(a, &c, t);
    else
        backend_callback(a, &c, t);
    if (!t->url || !t->body) {
        log_error("activation %s: cannot build the callback", t->trans_id);
        task_free(t);
        return;
    }
    t->due_ms = mono_ms();
    enqueue(a, t);
}

/* One POST of the callback, with a bearer token when configured (without
 * one when none can be had). A 401 means the token is no longer good
 * (expired early, key rotated): it is dropped and the POST made once more
 * at once with a fresh one. Returns the HTTP status (0: no answer). */
static long post_callback(mno_activations *a, http_client *client, const task *t) {
    char auth[4096];
    long status = 0;
    for (int round = 0; round < 2; round++) {
        int authed = mno_callback_auth_header(&a->cfg.auth, client, t->url, auth, sizeof auth);
        if (authed < 0) {
            /* A Millom without authentication still takes it; a secure
             * one answers 401 and the attempt is retried later. */
            log_warn("activation %s: no token for the callback (%s); posting without one",
                     t->trans_id, auth);
            authed = 0;
        }
        const char *headers[] = {authed ? auth : NULL, NULL};
        http_result r = {0};
        http_post(client, t->url, headers, "application/json", t->body, strlen(t->body),
                  a->cfg.timeout_ms, &r);
        status = r.status;
        http_result_free(&r);
        if (status != 401 || !authed) break;
        mno_callback_auth_rejected(&a->cfg.auth, t->url, auth);
        if (round == 0)
            log_info("activation %s: callback token refused; fetching a new one", t->trans_id);
    }
    return status;
}

static void deliver(mno_activations *a, http_client *client, task *t) {
    long status = post_callback(a, client, t);
    t->attempts++;
    mno_activation_callback_result(a->store, t->trans_id, status);
    if ((status >= 200 && status < 300) || status == 404 || status == 409) {
        log_info("activation %s: callback answered %ld after %d attempt(s)", t->trans_id, status,
                 t->attempts);
        task_free(t);
        return;
    }
    if (t->attempts >= a->cfg.max_attempts) {
        /* Without the query string: millom-style URLs carry the MSISDN. */
        log_warn("activation %s: callback to %.*s failed %d times (last status %ld), giving up",
                 t->trans_id, (int)strcspn(t->url, "?"), t->url, t->attempts, status);
        task_free(t);
        return;
    }
    long wait = a->cfg.backoff_ms;
    for (int i = 1; i < t->attempts && wait < 3600000; i++) wait *= 2;
    t->due_ms = mono_ms() + wait;
    enqueue(a, t);
}

static void *worker_main(void *arg) {
    service_thread_name("activations");
    mno_activations *a = arg;
    http_client *client = http_client_new();
    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        if (!a->head) {
            pthread_cond_wait(&a->wake, &a->lock);
            continue;
        }
        int64_t now = mono_ms();
        if (a->head->due_ms > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = a->head->due_ms - now;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&a->wake, &a->lock, &ts);
            continue;
        }
        task *t = a->head;
        a->head = t->next;
        a->n_queued--;
        a->running = true;
        pthread_mutex_unlock(&a->lock);
        if (t->kind == T_COMPLETE)
            complete(a, t);
        else if (client)
            deliver(a, client, t);
        else
            task_free(t);
        pthread_mutex_lock(&a->lock);
        a->running = false;
    }
    pthread_mutex_unlock(&a->lock);
    http_client_free(client);
    return NULL;
}

static void reschedule(void *ctx, const char *trans_id) {
    mno_activations_schedule(ctx, trans_id, -1, MNO_CALLBACK_BACKEND, false);
}

mno_activations *mno_activations_new(mno_store *s, const mno_callback_cfg *cfg) {
    mno_activations *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->store = s;
    a->cfg = *cfg;
    if (a->cfg.max_attempts < 1) a->cfg.max_attempts = 1;
    if (a->cfg.backoff_ms < 0) a->cfg.backoff_ms = 0;
    if (a->cfg.delay_ms < 0) a->cfg.delay_ms = 0;
    if (a->cfg.timeout_ms <= 0) a->cfg.timeout_ms = 2000;
    a->callback_url = strdup(cfg->callback_url ? cfg->callback_url : "");
    a->millom_url = strdup(cfg->millom_url ? cfg->millom_url : "");
    a->cfg.callback_url = a->callback_url;
    a->cfg.millom_url = a->millom_url;
    pthread_mutex_init(&a->lock, NULL);
    clock_cond_init(&a->wake);
    if (!a->callback_url || !a->millom_url ||
        pthread_create(&a->thread, NULL, worker_main, a) != 0) {
        log_error("mno-sandbox: cannot start the activation worker");
        mno_activations_free(a);
        return NULL;
    }
    a->started = true;
    mno_activations_each_pending(s, reschedule, a);
    return a;
}

static void drop_queue_locked(mno_activations *a) {
    while (a->head) {
        task *t = a->head;
        a->head = t->next;
        task_free(t);
    }
    a->n_queued = 0;
}

void mno_activations_free(mno_activations *a) {
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    if (a->started) pthread_join(a->thread, NULL);
    drop_queue_locked(a);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a->callback_url);
    free(a->millom_url);
    free(a);
}

void mno_activations_schedule(mno_activations *a, const char *trans_id, long delay_ms,
                              mno_callback_style style, bool fail) {
    task *t = calloc(1, sizeof *t);
    if (!t) {
        log_error("activation %s: out of memory, stays PENDING", trans_id);
        return;
    }
    t->kind = T_COMPLETE;
    snprintf(t->trans_id, sizeof t->trans_id, "%s", trans_id);
    t->style = style;
    t->fail = fail;
    t->due_ms = mono_ms() + (delay_ms >= 0 ? delay_ms : a->cfg.delay_ms);
    enqueue(a, t);
}

void mno_activations_cancel_all(mno_activations *a) {
    pthread_mutex_lock(&a->lock);
    drop_queue_locked(a);
    pthread_mutex_unlock(&a->lock);
}

long mno_activations_queued(mno_activations *a) {
    pthread_mutex_lock(&a->lock);
    long n = a->n_queued + (a->running ? 1 : 0);
    pthread_mutex_unlock(&a->lock);
    return n;
}
