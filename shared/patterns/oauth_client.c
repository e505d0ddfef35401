/* See oauth_client.h. The registry mutex only guards the list of sources;
 * each source has its own mutex and condition variable, and no lock is
 * held during HTTP. A fetch in flight is marked by `fetching`; callers that
 * find one wait for `generation` to move on and take that fetch's outcome. */
#include "shared/plumbing/settings.h"
#include "shared/patterns/oauth_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "shared/contracts/config.h"
#include "shared/plumbing/log.h"

#define BEARER_PREFIX "Authorization: Bearer "
/* Lifetime assumed when the answer has no usable expires_in. */
#define DEFAULT_LIFETIME_MS 60000

struct oauth_token_source {
    char *url, *client_id, *scope; /* immutable after creation */
    long timeout_ms;               /* MILLOM_OAUTH_TIMEOUT_MS, read at creation */
    int64_t margin_ms;             /* MILLOM_OAUTH_REFRESH_MARGIN_S, read at creation */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *secret;       /* under mu */
    char *token;        /* under mu; NULL when none */
    int64_t refresh_at; /* ms on the oauth clock */
    int64_t expires_at; /* ms on the oauth clock */
    int fetching;
    unsigned long generation; /* completed fetches */
    int last_ok;
    char last_error[200];
    struct oauth_token_source *next;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static oauth_token_source *registry;

static int64_t mono_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static _Atomic(int64_t (*)(void)) clock_fn = mono_now_ms;

void oauth_set_clock(int64_t (*now_ms)(void)) {
    atomic_store(&clock_fn, now_ms ? now_ms : mono_now_ms);
}

static int64_t now_ms(void) { return atomic_load(&clock_fn)(); }

static int same(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

oauth_token_source *oauth_source_get(const char *token_url, const char *client_id,
                                     const char *client_secret, const char *scope) {
    if (!token_url || !*token_url || !client_id || !*client_id || !client_secret) return NULL;
    if (!scope) scope = "";
    pthread_mutex_lock(&registry_mu);
    oauth_token_source *s = registry;
    while (s &&
           !(same(s->url, token_url) && same(s->client_id, client_id) && same(s->scope, scope)))
        s = s->next;
    if (s) {
        pthread_mutex_lock(&s->mu);
        if (!same(s->secret, client_secret)) {
            char *copy = strdup(client_secret);
            if (copy) {
                free(s->secret);
                s->secret = copy;
            }
        }
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_unlock(&registry_mu);
        return s;
    }
    settings_reader set = SETTINGS_INIT;
    long timeout_ms = settings_ms(&set, "MILLOM_OAUTH_TIMEOUT_MS", 3000, 1, 600000);
    long margin_s = settings_seconds(&set, "MILLOM_OAUTH_REFRESH_MARGIN_S", 30, 0, 86400);
    if (!settings_ok(&set)) pthread_mutex_unlock(&registry_mu);
    settings_exit_on_error(&set);
    s = calloc(1, sizeof *s);
    if (s) {
        s->timeout_ms = timeout_ms;
        s->margin_ms = (int64_t)margin_s * 1000;
        s->url = strdup(token_url);
        s->client_id = strdup(client_id);
        s->scope = strdup(scope);
        s->secret = strdup(client_secret);
        if (!s->url || !s->client_id || !s->scope || !s->secret) {
            free(s->url);
            free(s->client_id);
            free(s->scope);
            free(s->secret);
            free(s);
            s = NULL;
        } else {
            pthread_mutex_init(&s->mu, NULL);
            pthread_cond_init(&s->cv, NULL);
            s->next = registry;
            registry = s;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    return s;
}

/* "Authorization: Basic base64(urlenc(id):urlenc(secret))" (RFC 6749 §2.3.1). */
static char *basic_header(const char *id, const char *secret) {
    char *eid = curl_easy_escape(NULL, id, 0);
    char *esec = curl_easy_escape(NULL, secret, 0);
    char *out = NULL;
    if (eid && esec) {
        size_t raw_len = strlen(eid) + 1 + strlen(esec);
        char *raw = malloc(raw_len + 1);
        size_t b64_cap = 4 * ((raw_len + 2) / 3) + 1;
        out = malloc(sizeof "Authorization: Basic " + b64_cap);
        if (raw && out) {
            snprintf(raw, raw_len + 1, "%s:%s", eid, esec);
            int n = snprintf(out, sizeof "Authorization: Basic ", "Authorization: Basic ");
            EVP_EncodeBlock((unsigned char *)out + n, (const unsigned char *)raw, (int)raw_len);
        } else {
            free(out);
            out = NULL;
        }
        if (raw) OPENSSL_cleanse(raw, raw_len);
        free(raw);
    }
    if (esec) OPENSSL_cleanse(esec, strlen(esec));
    curl_free(eid);
    curl_free(esec);
    return out;
}

/* One token request. On success *token (caller frees) and *lifetime_ms. */
static int fetch_token(http_client *hc, long timeout_ms, const char *url, const char *client_id,
                       const char *secret, const char *scope, char **token, int64_t *lifetime_ms,
                       char *err, size_t errlen) {
    *token = NULL;
    char *auth = basic_header(client_id, secret);
    char *escope = *scope ? curl_easy_escape(NULL, scope, 0) : NULL;
    if (!auth || (*scope && !escope)) {
        free(auth);
        curl_free(escope);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char body[1024];
    int n = snprintf(body, sizeof body, "grant_type=client_credentials%s%s",
                     escope ? "&scope=" : "", escope ? escope : "");
    curl_free(escope);
    if (n < 0 || (size_t)n >= sizeof body) {
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
        snprintf(err, errlen, "scope too long");
        return -1;
    }
    const char *const headers[] = {"Accept: application/json", auth, NULL};
    http_result res;
    http_post(hc, url, headers, "application/x-www-form-urlencoded", body, (size_t)n, timeout_ms,
              &res);
    OPENSSL_cleanse(auth, strlen(auth));
    free(auth);

    int rc = -1;
    json_t *j = res.body_len ? json_loadb(res.body, res.body_len, 0, NULL) : NULL;
    if (res.status == 0) {
        snprintf(err, errlen, "token endpoint unreachable: %.120s", res.error);
    } else if (res.status != 200) {
        const char *e = json_string_value(json_object_get(j, "error"));
        snprintf(err, errlen, "token endpoint answered %ld%s%.60s", res.status, e ? " " : "",
                 e ? e : "");
    } else {
        const char *tok = json_string_value(json_object_get(j, "access_token"));
        const char *type = json_string_value(json_object_get(j, "token_type"));
        json_t *exp = json_object_get(j, "expires_in");
        double secs = json_is_number(exp)   ? json_number_value(exp)
                      : json_is_string(exp) ? strtod(json_string_value(exp), NULL)
                                            : 0;
        if (!tok || !*tok || strpbrk(tok, " \r\n")) {
            snprintf(err, errlen, "token endpoint answer without a usable access_token");
        } else if (type && strcasecmp(type, "Bearer") != 0) {
            snprintf(err, errlen, "token endpoint answered token_type %.40s, not Bearer", type);
        } else if (!(*token = strdup(tok))) {
            snprintf(err, errlen, "out of memory");
        } else {
            *lifetime_ms = secs > 0 && secs < 1e9 ? (int64_t)(secs * 1000) : DEFAULT_LIFETIME_MS;
            rc = 0;
        }
    }
    json_decref(j);
    if (res.body) OPENSSL_cleanse(res.body, res.body_len);
    http_result_free(&res);
    return rc;
}

static int fill_header(const char *token, char *header, size_t len) {
    int n = snprintf(header, len, BEARER_PREFIX "%s", token);
    if (n < 0 || (size_t)n >= len) {
        snprintf(header, len, "bearer token too long for the header buffer");
        return -1;
    }
    return 0;
}

int oauth_authorization(oauth_token_source *s, http_client *hc, char *header, size_t len) {
    if (!s || !hc || !header || !len) {
        if (header && len) snprintf(header, len, "no token source");
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->token && now_ms() < s->refresh_at) {
            int rc = fill_header(s->token, header, len);
            pthread_mutex_unlock(&s->mu);
            return rc;
        }
        if (!s->fetching) break;
        /* Someone else is fetching: take that fetch's outcome, whatever the
         * clock says by then, so one expiry means one fetch. */
        unsigned long gen = s->generation;
        while (s->generation == gen) pthread_cond_wait(&s->cv, &s->mu);
        if (s->last_ok && s->token) {
            int rc = fill_header(s->token, header, len);
            pthread_mutex_unlock(&s->mu);
            return rc;
        }
        if (!s->last_ok) {
            snprintf(header, len, "%s", s->last_error);
            pthread_mutex_unlock(&s->mu);
            return -1;
        }
        /* Fetched but invalidated meanwhile: look again. */
    }
    s->fetching = 1;
    char *secret = strdup(s->secret);
    pthread_mutex_unlock(&s->mu);

    char *token = NULL;
    int64_t lifetime = 0;
    char err[200] = "out of memory";
    int rc = secret ? fetch_token(hc, s->timeout_ms, s->url, s->client_id, secret, s->scope, &token,
                                  &lifetime, err, sizeof err)
                    : -1;
    if (secret) OPENSSL_cleanse(secret, strlen(secret));
    free(secret);

    int64_t margin = s->margin_ms;
    if (margin > lifetime / 10) margin = lifetime / 10;

    int fetched = rc == 0;
    pthread_mutex_lock(&s->mu);
    if (fetched) {
        free(s->token);
        s->token = token;
        s->refresh_at = now_ms() + lifetime - margin;
        s->expires_at = s->refresh_at + margin;
        s->last_ok = 1;
        s->last_error[0] = '\0';
        rc = fill_header(s->token, header, len);
    } else {
        /* Nothing stays cached after a failed fetch. */
        free(s->token);
        s->token = NULL;
        s->last_ok = 0;
        snprintf(s->last_error, sizeof s->last_error, "%s", err);
        snprintf(header, len, "%s", err);
    }
    s->fetching = 0;
    s->generation++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!fetched) log_warn("oauth: token for client %s from %s: %s", s->client_id, s->url, err);
    return rc;
}

/* The cached token's header, when there is a token that may still be
 * used: until its refresh time, or (until_expiry) until it expires;
 * *due (when given): past its refresh time. -1 (header untouched)
 * otherwise. Never fetches, never waits for a fetch. */
static int read_cached(oauth_token_source *s, char *header, size_t len, int until_expiry,
                       int *due) {
    if (due) *due = 0;
    if (!s || !header || !len) return -1;
    int rc = -1;
    pthread_mutex_lock(&s->mu);
    int64_t now = now_ms();
    int64_t until = until_expiry ? s->expires_at : s->refresh_at;
    if (s->token && now < until && sizeof BEARER_PREFIX - 1 + strlen(s->token) < len) {
        snprintf(header, len, BEARER_PREFIX "%s", s->token);
        if (due) *due = now >= s->refresh_at;
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int oauth_cached_authorization(oauth_token_source *s, char *header, size_t len) {
    return read_cached(s, header, len, 0, NULL);
}

int oauth_valid_authorization(oauth_token_source *s, char *header, size_t len, int *due) {
    return read_cached(s, header, len, 1, due);
}

void oauth_invalidate(oauth_token_source *s, const char *token) {
    if (!s || !token) return;
    if (strncmp(token, BEARER_PREFIX, sizeof BEARER_PREFIX - 1) == 0)
        token += sizeof BEARER_PREFIX - 1;
    pthread_mutex_lock(&s->mu);
    if (s->token && strcmp(s->token, token) == 0) {
        free(s->token);
        s->token = NULL;
    }
    pthread_mutex_unlock(&s->mu);
}
