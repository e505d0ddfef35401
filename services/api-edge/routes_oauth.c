/* POST /oauth/v1/token: OAuth 2.0 client credentials grant (RFC 6749
 * §4.4) with HTTP Basic or form credentials; errors as §5.2 says.
 *
 * A secret check costs a PBKDF2 run of milliseconds, so (issue 16 item 3):
 *  - token_limits.h decides first, per address and per client id, whether
 *    the attempt may be checked at all (429 and Retry-After otherwise);
 *  - the check runs on a small pool of hashing threads with a bounded
 *    queue, never on libmicrohttpd's request threads: the request is
 *    deferred (http_defer) and answered from the pool thread, so guesses
 *    cannot slow the rest of the API; when the queue is full the answer is
 *    503 with Retry-After at once;
 *  - the check costs the same for every id, known or not
 *    (auth_check_secret_equal_cost). Its work is counted in
 *    millom_token_hash_total and millom_token_hash_iterations_total. */
#include "auth.h"
#include "edge.h"
#include "token_limits.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/http_form.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/work_queue.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An error as RFC 6749 §5.2 has it; retry_after > 0 adds Retry-After
 * (429, 503). */
static void oauth_error_retry(http_request *req, int status, const char *error, const char *desc,
                              int retry_after) {
    json_t *j = json_pack("{s:s, s:s}", "error", error, "error_description", desc);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char ra[16];
    snprintf(ra, sizeof ra, "%d", retry_after);
    if (status == 401)
        http_respond_with_header(req, 401, "application/json", body ? body : "",
                                 body ? strlen(body) : 0, "WWW-Authenticate",
                                 "Basic realm=\"millom\"");
    else if (retry_after > 0)
        http_respond_with_header(req, status, "application/json", body ? body : "",
                                 body ? strlen(body) : 0, "Retry-After", ra);
    else
        http_respond_with_header(req, status, "application/json", body ? body : "",
                                 body ? strlen(body) : 0, "Cache-Control", "no-store");
    free(body);
}

static void oauth_error(http_request *req, int status, const char *error, const char *desc) {
    oauth_error_retry(req, status, error, desc, 0);
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the hashing pool ---- */

/* One secret check, with copies of everything it needs: the deferred
 * request is not read again (its headers belong to libmicrohttpd). */
typedef struct {
    struct edge_auth *a;
    snapshot_version *config; /* the tenants file's version, pinned until job_free */
    http_request *req;
    char ip[64];
    char id[129];
    char secret[256];
    char scope[1024];
    int has_scope;
} token_job;

static void job_free(token_job *j) {
    snapshot_unpin(j->config);
    OPENSSL_cleanse(j->secret, sizeof j->secret);
    free(j);
}

struct oauth_pool {
    pthread_mutex_t mu;
    work_queue *q; /* NULL once closed */
};

static metric *m_hashes, *m_iterations, *m_limited, *m_busy;

static void metrics_init(void) {
    m_hashes = metric_counter("millom_token_hash_total",
                              "secret hash checks of token requests, each padded to the "
                              "costliest stored hash",
                              NULL);
    m_iterations = metric_counter("millom_token_hash_iterations_total",
                                  "PBKDF2 work (iterations x blocks) of token requests", NULL);
    m_limited = metric_counter("millom_token_limited_total",
                               "token requests refused 429 by the per-address or per-client "
                               "limits",
                               NULL);
    m_busy = metric_counter("millom_token_busy_total",
                            "token requests refused 503: the hashing queue was full", NULL);
}

static void issue(struct edge_auth *a, http_request *req, const auth_client *c,
                  const char *scope_req) {
    char scope[1024];
    if (auth_scope_resolve(c, scope_req, scope, sizeof scope) != 0) {
        oauth_error(req, 400, "invalid_scope", "scope is not a subset of the client's scopes");
        return;
    }
    char *token = auth_token_issue(c, scope, &a->keys->e[0], (long)time(NULL), a->ttl_s);
    if (!token) {
        oauth_error(req, 500, "server_error", "cannot issue a token");
        return;
    }
    json_t *j = json_pack("{s:s, s:s, s:I, s:s}", "access_token", token, "token_type", "Bearer",
                          "expires_in", (json_int_t)a->ttl_s, "scope", scope);
    free(token);
    char *out = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!out) {
        oauth_error(req, 500, "server_error", "cannot encode the answer");
        return;
    }
    http_respond_with_header(req, 200, "application/json", out, strlen(out), "Cache-Control",
                             "no-store");
    free(out);
}

/* On a hashing thread: the check, the limits told, the answer. */
static void job_run(void *arg, void *state, void *job) {
    (void)arg;
    (void)state;
    token_job *j = job;
    struct edge_auth *a = j->a;
    const auth_clients *clients = &((const edge_config *)snapshot_value(j->config))->clients;
    const auth_client *c = auth_clients_find(clients, j->id);
    auth_hash_work work = {0};
    int ok = auth_check_secret_equal_cost(clients, c, j->secret, &work);
    metric_add(m_hashes, work.hashes);
    metric_add(m_iterations, work.iterations);
    int good = c && ok && c->enabled;
    token_limits_report(a->token_limits, j->ip, j->id, good, mono_now());
    if (good)
        issue(a, j->req, c, j->has_scope ? j->scope : NULL);
    else
        oauth_error(j->req, 401, "invalid_client", "client authentication failed");
    job_free(j);
}

/* A job never run (the service stops): answered, so no request hangs. */
static void job_drop(void *arg, void *job) {
    (void)arg;
    token_job *j = job;
    oauth_error_retry(j->req, 503, "temporarily_unavailable", "the service is stopping", 1);
    job_free(j);
}

struct oauth_pool *oauth_pool_new(struct edge_auth *a, long threads, long queue, char *err,
                                  size_t errlen) {
    (void)a;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, metrics_init);
    struct oauth_pool *p = calloc(1, sizeof *p);
    work_queue_opts o = {
        .threads = (int)threads,
        .capacity = (size_t)queue,
        .run = job_run,
        .drop = job_drop,
    };
    if (!p || !(p->q = work_queue_new(&o))) {
        free(p);
        snprintf(err, errlen, "cannot start %ld token hashing threads", threads);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

/* 0 when queued; -1 when the queue is full or closed (the caller still
 * owns the job). */
static int pool_submit(struct oauth_pool *p, token_job *j) {
    pthread_mutex_lock(&p->mu);
    int rc = p->q ? work_queue_push(p->q, j) : -1;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void oauth_pool_close(struct oauth_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    work_queue *q = p->q;
    p->q = NULL;
    pthread_mutex_unlock(&p->mu);
    work_queue_free(q); /* running checks finish; waiting ones: job_drop */
}

void oauth_pool_free(struct oauth_pool *p) {
    if (!p) return;
    oauth_pool_close(p);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* ---- the endpoint ---- */

void routes_oauth_token(api_edge *e, http_request *req, const edge_match *m) {
    /* POST only: the route table */
    struct edge_auth *a = e->auth;
    if (!a) {
        oauth_error(req, 500, "server_error", "authentication is not configured");
        return;
    }
    size_t len = 0;
    const char *body = http_body(req, &len);
    client_credentials cc;
    int status;
    const char *description;
    const char *error =
        client_credentials_read(http_header(req, "Content-Type"), http_header(req, "Authorization"),
                                body, len, &cc, &status, &description);
    if (error) {
        oauth_error(req, status, error, description);
        goto out;
    }
    const char *id = cc.id, *secret = cc.secret;
    int retry = 1;
    token_decision d =
        token_limits_check(a->token_limits, http_client_ip(req), id, mono_now(), &retry);
    if (d != TOKEN_ALLOW) {
        metric_add(m_limited, 1);
        oauth_error_retry(req, 429, "slow_down", token_decision_text(d), retry);
        goto out;
    }
    token_job *j = calloc(1, sizeof *j);
    if (!j) {
        oauth_error_retry(req, 503, "temporarily_unavailable", "out of memory", 1);
        goto out;
    }
    j->a = a;
    j->config = snapshot_pin_again(m->config); /* the check runs after the router's unpin */
    j->req = req;
    snprintf(j->ip, sizeof j->ip, "%s", http_client_ip(req));
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->secret, sizeof j->secret, "%s", secret);
    j->has_scope = cc.has_scope;
    if (cc.has_scope) snprintf(j->scope, sizeof j->scope, "%s", cc.scope);
    http_defer(req); /* answered by the hashing thread (http_server.h) */
    if (pool_submit(a->oauth_pool, j) != 0) {
        job_free(j);
        metric_add(m_busy, 1);
        oauth_error_retry(req, 503, "temporarily_unavailable",
                          "too many client secrets being checked; retry later", 1);
    }
out: /* the secret's copy on this stack is wiped on every way out */
    OPENSSL_cleanse(cc.secret, sizeof cc.secret);
}
