/* Authentication and authorization of api-edge's requests: JWT bearer
 * tokens, credentials parsing, per-client token buckets, what a row of
 * the route table (routes.c) needs and the middleware router.c calls.
 * See auth.h. */
#include "auth.h"
#include "edge.h"
#include "routes.h"
#include "token_limits.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/errors.h"
#include "shared/contracts/keys.h"
#include "shared/plumbing/crypto.h"
#include "shared/plumbing/log.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- tokens ---- */

char *auth_token_issue(const auth_client *c, const char *scope, const keys_entry *key, long now,
                       long ttl_s) {
    jwt_t *j = NULL;
    char *out = NULL;
    size_t key_len = key ? strlen(key->secret) : 0;
    if (!c || !scope || key_len == 0 || jwt_new(&j) != 0) return NULL;
    if ((!key->kid[0] || jwt_add_header(j, "kid", key->kid) == 0) &&
        jwt_add_grant(j, "iss", AUTH_ISSUER) == 0 && jwt_add_grant(j, "sub", c->id) == 0 &&
        jwt_add_grant(j, "scope", scope) == 0 &&
        (c->provider ? jwt_add_grant(j, "sp", c->provider) : jwt_add_grant(j, "op", c->op)) == 0 &&
        jwt_add_grant_int(j, "iat", now) == 0 && jwt_add_grant_int(j, "exp", now + ttl_s) == 0 &&
        jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)key->secret, (int)key_len) == 0)
        out = jwt_encode_str(j);
    jwt_free(j);
    return out;
}

/* The key a token's header names: its `kid` (a string), or the default
 * key without one. libjwt 1.10 verifies with one key given up front, so
 * the header (base64url JSON, before the first '.') is read here first;
 * libjwt reads it again and auth_token_verify checks both agree. NULL with
 * a reason in msg: no header, not JSON, a kid that is no key id
 * (keys_kid_ok), or one that names no key of the set. */
static const keys_entry *token_key(const char *token, const keys_set *keys, char *msg,
                                   size_t msglen) {
    const char *dot = strchr(token, '.');
    char *head = dot ? strndup(token, (size_t)(dot - token)) : NULL;
    size_t len = 0;
    unsigned char *json = head ? crypto_b64url_decode(head, &len) : NULL;
    free(head);
    json_t *h = json ? json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(json);
    const keys_entry *key = NULL;
    json_t *kid = json_object_get(h, "kid");
    if (!json_is_object(h) ||
        (kid &&
         !(json_is_string(kid) && keys_kid_ok(json_string_value(kid), json_string_length(kid)))))
        snprintf(msg, msglen, "malformed token");
    else if (!(key = keys_set_find(keys, kid ? json_string_value(kid) : NULL,
                                   kid ? json_string_length(kid) : 0)))
        snprintf(msg, msglen, "token signed with a key this server does not have");
    json_decref(h);
    return key;
}

static int copy_grant(jwt_t *j, const char *name, char *out, size_t outlen, int required) {
    const char *v = jwt_get_grant(j, name);
    out[0] = '\0';
    if (!v) return required ? -1 : 0;
    if (strlen(v) >= outlen) return -1;
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

int auth_token_verify(const char *token, const keys_set *keys, long now, auth_claims *out,
                      char *msg, size_t msglen) {
    memset(out, 0, sizeof *out);
    if (!token || !token[0] || strlen(token) > 4096 || !keys) {
        snprintf(msg, msglen, "malformed token");
        return -1;
    }
    const keys_entry *key = token_key(token, keys, msg, msglen);
    if (!key) return -1;
    jwt_t *j = NULL;
    if (jwt_decode(&j, token, (const unsigned char *)key->secret, (int)strlen(key->secret)) != 0 ||
        !j) {
        snprintf(msg, msglen, "malformed token or bad signature");
        return -1;
    }
    int rc = -1;
    const char *iss = jwt_get_grant(j, "iss");
    const char *kid = jwt_get_header(j, "kid");
    if (kid ? strcmp(kid, key->kid) != 0 : key->kid[0] != '\0') {
        snprintf(msg, msglen, "malformed token"); /* the two header readings differ */
        goto out;
    }
    if (jwt_get_alg(j) != JWT_ALG_HS256) {
        snprintf(msg, msglen, "token algorithm not accepted");
        goto out;
    }
    if (!iss || strcmp(iss, AUTH_ISSUER) != 0) {
        snprintf(msg, msglen, "token issuer not accepted");
        goto out;
    }
    errno = 0;
    out->exp = jwt_get_grant_int(j, "exp");
    if (errno != 0 || out->exp <= 0) {
        snprintf(msg, msglen, "token without expiry");
        goto out;
    }
    if (out->exp <= now) {
        snprintf(msg, msglen, "token expired");
        goto out;
    }
    /* iat and nbf are optional; present, they must be numbers and not in
     * the future (a token minted ahead of time stays usable for longer
     * than its issuer meant). */
    if (jwt_get_grant(j, "iat") || jwt_get_grant(j, "nbf")) {
        snprintf(msg, msglen, "token iat/nbf must be numbers");
        goto out;
    }
    errno = 0;
    out->iat = jwt_get_grant_int(j, "iat");
    if (errno != 0) out->iat = 0;
    errno = 0;
    out->nbf = jwt_get_grant_int(j, "nbf");
    if (errno != 0) out->nbf = 0;
    if (out->iat > now + AUTH_CLOCK_LEEWAY_S) {
        snprintf(msg, msglen, "token issued in the future");
        goto out;
    }
    if (out->nbf > now + AUTH_CLOCK_LEEWAY_S) {
        snprintf(msg, msglen, "token not valid yet");
        goto out;
    }
    if (copy_grant(j, "sub", out->sub, sizeof out->sub, 1) != 0 ||
        copy_grant(j, "scope", out->scope, sizeof out->scope, 0) != 0 ||
        copy_grant(j, "sp", out->sp, sizeof out->sp, 0) != 0 ||
        copy_grant(j, "op", out->op, sizeof out->op, 0) != 0 || !out->sub[0] ||
        (out->sp[0] != '\0') == (out->op[0] != '\0')) {
        snprintf(msg, msglen, "token claims malformed");
        goto out;
    }
    rc = 0;
out:
    jwt_free(j);
    return rc;
}

int auth_token_lifetime_ok(const auth_claims *c, long now, long max_ttl_s, char *msg,
                           size_t msglen) {
    long from = c->iat > 0 ? c->iat : now;
    if (c->exp - from > max_ttl_s + AUTH_CLOCK_LEEWAY_S) {
        snprintf(msg, msglen, "token lifetime longer than %lds", max_ttl_s);
        return -1;
    }
    return 0;
}

/* ---- rate limits ---- */

typedef struct {
    char key[129];
    double tokens, last;
} bucket;

struct auth_limiter {
    pthread_mutex_t mu;
    auth_clock_fn clock;
    bucket *b;
    size_t n, cap;
};

auth_limiter *auth_limiter_new(auth_clock_fn clock) {
    auth_limiter *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    pthread_mutex_init(&l->mu, NULL);
    l->clock = clock;
    return l;
}

void auth_limiter_free(auth_limiter *l) {
    if (!l) return;
    pthread_mutex_destroy(&l->mu);
    free(l->b);
    free(l);
}

int auth_limiter_take(auth_limiter *l, const char *key, double per_second, double burst,
                      int *retry_after) {
    if (per_second <= 0) per_second = 1e-9;
    if (burst < 1) burst = 1;
    pthread_mutex_lock(&l->mu);
    double now = l->clock();
    bucket *b = NULL;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->b[i].key, key) == 0) b = &l->b[i];
    if (!b) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 16;
            bucket *nb = realloc(l->b, cap * sizeof *nb);
            if (!nb) {
                pthread_mutex_unlock(&l->mu);
                return 1; /* out of memory: do not refuse */
            }
            l->b = nb;
            l->cap = cap;
        }
        b = &l->b[l->n++];
        snprintf(b->key, sizeof b->key, "%s", key);
        b->tokens = burst;
        b->last = now;
    }
    if (now > b->last) {
        b->tokens += (now - b->last) * per_second;
        b->last = now;
    }
    if (b->tokens > burst) b->tokens = burst;
    int ok = b->tokens >= 1.0 - 1e-9; /* float dust must not refuse */
    if (ok) {
        b->tokens -= 1.0;
    } else if (retry_after) {
        double wait = ceil((1.0 - b->tokens) / per_second - 1e-9);
        *retry_after = wait < 1 ? 1 : wait > 86400 ? 86400 : (int)wait;
    }
    pthread_mutex_unlock(&l->mu);
    return ok;
}

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- routes ---- */

void auth_need_of(const edge_match *m, auth_need *out) {
    memset(out, 0, sizeof *out);
    const edge_route_row *r = m->route;
    if (r->auth != EDGE_AUTH_TOKEN) {
        out->kind = AUTH_OPEN; /* public, or its own credential (signed link, IP ranges) */
        return;
    }
    out->kind = AUTH_TOKEN;
    edge_match_scope(m, out->scope, sizeof out->scope);
    /* A parameter is never empty here; "?" (no tenant has it) if it were. */
    if (r->bind == EDGE_BIND_PROVIDER)
        snprintf(out->sp, sizeof out->sp, "%s", m->params.provider[0] ? m->params.provider : "?");
    else if (r->bind == EDGE_BIND_OPERATOR)
        snprintf(out->op, sizeof out->op, "%s", m->params.op[0] ? m->params.op : "?");
}

void auth_route_need(const char *method, const char *path, auth_need *out) {
    edge_match m;
    edge_route_find(method, path, &m);
    auth_need_of(&m, out);
}

/* ---- state and middleware ---- */

struct edge_auth *edge_auth_new(char *err, size_t errlen) {
    struct edge_auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    settings_reader s = SETTINGS_INIT;
    a->enabled = !settings_bool(&s, "MILLOM_AUTH_DISABLED", true);
    a->ttl_s = settings_seconds(&s, "MILLOM_TOKEN_TTL_S", 300, 1, 86400);
    if (!settings_ok(&s)) {
        snprintf(err, errlen, "%s", settings_error(&s));
        free(a);
        return NULL;
    }
    if (!a->enabled && keys_profile_from_env() == KEYS_PROFILE_PRODUCTION) {
        /* An open API with production keys is never what anyone meant. */
        snprintf(err, errlen,
                 "MILLOM_AUTH_DISABLED=1 (no authentication) is refused in the production "
                 "profile; set MILLOM_AUTH_DISABLED=0, or MILLOM_PROFILE=sandbox for a demo");
        free(a);
        return NULL;
    }
    a->keys = keys_get_set("MILLOM_JWT_KEY"); /* per profile: shared/contracts/keys.h */
    token_limits_cfg tcfg;
    if (token_limits_cfg_from_env(&tcfg, err, errlen) != 0) {
        free(a);
        return NULL;
    }
    a->limiter = auth_limiter_new(mono_seconds);
    a->token_limits = token_limits_new(&tcfg);
    if (!a->limiter || !a->token_limits) {
        snprintf(err, errlen, "out of memory");
        edge_auth_free(a);
        return NULL;
    }
    a->oauth_pool = oauth_pool_new(a, tcfg.hash_threads, tcfg.hash_queue, err, errlen);
    if (!a->oauth_pool) {
        edge_auth_free(a);
        return NULL;
    }
    for (size_t i = 0; a->enabled && i < a->keys->n; i++)
        if (strcmp(a->keys->e[i].secret, AUTH_SANDBOX_JWT_KEY) == 0)
            log_warn("auth enabled with the sandbox JWT key; set MILLOM_JWT_KEY outside demos");
    return a;
}

void edge_auth_close(struct edge_auth *a) {
    if (a) oauth_pool_close(a->oauth_pool);
}

void edge_auth_free(struct edge_auth *a) {
    if (!a) return;
    oauth_pool_free(a->oauth_pool); /* first: its threads use the rest */
    token_limits_free(a->token_limits);
    auth_limiter_free(a->limiter);
    free(a);
}

static void respond_401(http_request *req, int token_given, const char *msg) {
    char *body = error_document_text(CAUSE_UNAUTHORIZED, msg);
    http_respond_with_header(req, 401, "application/json", body ? body : "",
                             body ? strlen(body) : 0, "WWW-Authenticate",
                             token_given ? "Bearer realm=\"millom\", error=\"invalid_token\""
                                         : "Bearer realm=\"millom\"");
    free(body);
}

int auth_scope_granted(const char *token_scopes, const auth_client *client, const char *scopes) {
    char one[96];
    for (const char *p = scopes; *p;) {
        size_t n = strcspn(p, " ");
        if (n > 0 && n < sizeof one) {
            memcpy(one, p, n);
            one[n] = '\0';
            if (auth_scope_list_has(token_scopes, one) && auth_client_has_scope(client, one))
                return 1;
        }
        p += n;
        while (*p == ' ') p++;
    }
    return 0;
}

int edge_auth_request(api_edge *e, http_request *req, const edge_match *m) {
    struct edge_auth *a = e->auth;
    if (!a || !a->enabled) return 0;
    auth_need need;
    auth_need_of(m, &need);
    if (need.kind == AUTH_OPEN) return 0;

    const char *authz = http_header(req, "Authorization");
    if (!authz || strncasecmp(authz, "Bearer ", 7) != 0) {
        respond_401(req, 0, "a bearer token is required (POST /oauth/v1/token)");
        return 1;
    }
    const char *token = authz + 7;
    while (*token == ' ') token++;
    auth_claims c;
    char msg[128];
    long now = (long)time(NULL);
    if (auth_token_verify(token, a->keys, now, &c, msg, sizeof msg) != 0 ||
        auth_token_lifetime_ok(&c, now, a->ttl_s, msg, sizeof msg) != 0) {
        respond_401(req, 1, msg);
        return 1;
    }
    /* The clients of the request's version: a client disabled (or a scope
     * removed) by a reload is refused from the next request on, live
     * tokens included. */
    const auth_client *client = auth_clients_find(&edge_config_of(m)->clients, c.sub);
    if (!client || !client->enabled ||
        strcmp(client->provider ? client->provider : "", c.sp) != 0 ||
        strcmp(client->op ? client->op : "", c.op) != 0) {
        respond_401(req, 1, "client unknown or disabled");
        return 1;
    }
    int retry = 1;
    if (!auth_limiter_take(a->limiter, client->id, client->per_second, client->burst, &retry)) {
        char *body = error_document_text(CAUSE_TOO_MANY_REQUESTS, "rate limit of this client");
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        http_respond_with_header(req, 429, "application/json", body ? body : "",
                                 body ? strlen(body) : 0, "Retry-After", ra);
        free(body);
        return 1;
    }
    if (need.scope[0] && !auth_scope_granted(c.scope, client, need.scope)) {
        http_respond_error(req, CAUSE_NOT_ALLOWED, "the token lacks scope %s%s", need.scope,
                           strchr(need.scope, ' ') ? " (any one of them)" : "");
        return 1;
    }
    if ((need.sp[0] && strcmp(need.sp, c.sp) != 0) || (need.op[0] && strcmp(need.op, c.op) != 0)) {
        http_respond_error(req, CAUSE_NOT_ALLOWED, "the token is not valid for this %s",
                           need.sp[0] ? "serviceProvider" : "operator");
        return 1;
    }
    return 0;
}
