/* HTTP client on libcurl. An http_client of its own has one easy handle,
 * whose connection cache keeps connections to a backend alive between
 * calls. One on a loop hands each call to the loop and waits for it. */
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/http_curl.h"
#include "shared/plumbing/http_loop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_client {
    CURL *curl;      /* its own handle; NULL on a loop */
    http_loop *loop; /* the loop its calls go through; not owned */
};

void http_client_global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

http_client *http_client_new(void) {
    http_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->curl = curl_easy_init();
    if (!c->curl) {
        free(c);
        return NULL;
    }
    return c;
}

http_client *http_client_on_loop(http_loop *loop) {
    http_client *c = calloc(1, sizeof *c);
    if (c) c->loop = loop;
    return c;
}

void http_client_free(http_client *c) {
    if (!c) return;
    curl_easy_cleanup(c->curl);
    free(c);
}

void http_result_free(http_result *r) {
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

/* Bodies above this are cut off: nothing Millom talks to sends more. */
#define MAX_RESPONSE (4u << 20)

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    http_result *r = userdata;
    size_t n = size * nmemb;
    if (r->body_len + n > MAX_RESPONSE) return 0;
    char *grown = realloc(r->body, r->body_len + n + 1);
    if (!grown) return 0;
    memcpy(grown + r->body_len, ptr, n);
    r->body = grown;
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

/* Whether curl may take a proxy from the environment: any of the
 * variables it reads (http_proxy, https_proxy, all_proxy, and the
 * upper-case forms), read once; the environment does not change under a
 * running service. */
static int proxy_in_env;
static pthread_once_t proxy_once = PTHREAD_ONCE_INIT;

static void read_proxy_env(void) {
    static const char *const names[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                        "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) proxy_in_env = 1;
    }
}

/* url's request target ("/path?query") when it has a query, with its
 * origin ("scheme://authority/") written to origin; NULL (url goes to
 * curl whole) otherwise, or when the origin does not fit. */
static const char *split_target(const char *url, char *origin, size_t origin_len) {
    const char *authority = strstr(url, "://");
    if (!authority || !strchr(url, '?') || strchr(url, '#')) return NULL;
    authority += 3;
    const char *target = authority + strcspn(authority, "/?");
    size_t n = (size_t)(target - url);
    if (*target != '/' || n + 2 > origin_len) return NULL;
    memcpy(origin, url, n);
    memcpy(origin + n, "/", 2);
    return target;
}

/* A URL with a query is given to curl as its origin plus the request
 * target (CURLOPT_REQUEST_TARGET): the same request line and Host header
 * go out, and libcurl 7.88 no longer writes the query out character by
 * character three times (rebuilding the URL, the authentication path and
 * the request line), a quarter of offer-resolver's instructions per
 * cache miss (callgrind). And no proxy is looked up in the environment
 * at every call (CURLOPT_PROXY ""). Only without a proxy in the
 * environment: through an HTTP proxy the request line must carry the
 * whole URL, which curl then writes as before. */
void http_curl_prepare(CURL *h, const char *url, struct curl_slist *headers, long timeout_ms,
                       http_result *out) {
    memset(out, 0, sizeof *out);
    pthread_once(&proxy_once, read_proxy_env);
    char origin[256];
    const char *target = proxy_in_env ? NULL : split_target(url, origin, sizeof origin);
    curl_easy_setopt(h, CURLOPT_URL, target ? origin : url);
    curl_easy_setopt(h, CURLOPT_REQUEST_TARGET, target);
    if (!proxy_in_env) curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
}

int http_curl_finish(CURL *h, CURLcode rc, http_result *out) {
    if (rc != CURLE_OK) {
        out->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
        snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
        out->status = 0;
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    if (!out->body) {
        out->body = calloc(1, 1);
        if (!out->body) return -1;
    }
    return 0;
}

static int perform(http_client *c, const char *url, struct curl_slist *headers, long timeout_ms,
                   http_result *out) {
    http_curl_prepare(c->curl, url, headers, timeout_ms, out);
    return http_curl_finish(c->curl, curl_easy_perform(c->curl), out);
}

struct curl_slist *http_curl_headers(const char *const *headers, const char *content_type) {
    struct curl_slist *list = NULL, *grown;
    for (size_t i = 0; headers && headers[i] && i < 8; i++) {
        if (!(grown = curl_slist_append(list, headers[i]))) goto oom;
        list = grown;
    }
    if (content_type) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        if (!(grown = curl_slist_append(list, ct))) goto oom;
        list = grown;
    }
    /* curl sends "Expect: 100-continue" for larger POSTs; one round trip less without it. */
    if ((grown = curl_slist_append(list, "Expect:"))) return grown;
oom:
    curl_slist_free_all(list);
    return NULL;
}

static int out_of_memory(http_result *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->error, sizeof out->error, "out of memory");
    return -1;
}

/* ------------------------------------------------------ on a loop */

/* The caller's side of one call on a loop: on its stack while it waits. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    http_result *out;
} loop_wait;

/* On the loop's thread: hands the answer over and wakes the caller. After
 * the unlock the caller may return, so w is not touched again. */
static void loop_call_done(void *arg, http_result *res) {
    loop_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    *w->out = *res;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* A GET when body is NULL, else a POST; waits for the loop to complete it.
 * Answers as perform does: 0 when an HTTP answer came (with a body). */
static int loop_call(http_client *c, const char *url, const char *const *headers,
                     const char *content_type, const char *body, size_t body_len, long timeout_ms,
                     http_result *out) {
    memset(out, 0, sizeof *out);
    loop_wait w = {.done = 0, .out = out};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = body ? http_loop_post(c->loop, url, headers, content_type, body, body_len, timeout_ms,
                                   loop_call_done, &w)
                  : http_loop_get(c->loop, url, headers, timeout_ms, loop_call_done, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
    } else
        snprintf(out->error, sizeof out->error, "too many calls waiting, or stopping");
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    if (rc != 0 || out->status == 0) return -1;
    if (!out->body) return out_of_memory(out);
    return 0;
}

int http_get(http_client *c, const char *url, const char *const *headers, long timeout_ms,
             http_result *out) {
    if (c->loop) return loop_call(c, url, headers, NULL, NULL, 0, timeout_ms, out);
    struct curl_slist *list = http_curl_headers(headers, NULL);
    if (!list) return out_of_memory(out);
    curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    int rc = perform(c, url, list, timeout_ms, out);
    curl_slist_free_all(list);
    return rc;
}

int http_post(http_client *c, const char *url, const char *const *headers, const char *content_type,
              const char *body, size_t body_len, long timeout_ms, http_result *out) {
    if (c->loop)
        return loop_call(c, url, headers, content_type, body ? body : "", body_len, timeout_ms,
                         out);
    struct curl_slist *list = http_curl_headers(headers, content_type);
    if (!list) return out_of_memory(out);
    curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)body_len);
    int rc = perform(c, url, list, timeout_ms, out);
    curl_slist_free_all(list);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
    return rc;
}

/* RFC 3986's unreserved characters, the only ones written as they are. */
static int unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

size_t http_escape_to(char *out, size_t cap, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char enc[3] = {(char)*p, 0, 0};
        size_t w = 1;
        if (!unreserved(*p)) {
            enc[0] = '%';
            enc[1] = hex[*p >> 4];
            enc[2] = hex[*p & 15];
            w = 3;
        }
        for (size_t i = 0; i < w; i++, n++)
            if (n + 1 < cap) out[n] = enc[i];
    }
    if (cap) out[n < cap ? n : cap - 1] = '\0';
    return n;
}

char *http_escape(const char *s) {
    if (!s) return NULL;
    size_t n = http_escape_to(NULL, 0, s);
    char *e = malloc(n + 1);
    if (e) http_escape_to(e, n + 1, s);
    return e;
}
