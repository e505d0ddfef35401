/* HTTP client on libcurl: one http_client per thread, which keeps its
 * connections alive between calls, or any number on one http_loop
 * (http_loop.h), which share the loop's connections. Every call has a
 * timeout. */
#ifndef MILLOM_HTTP_CLIENT_H
#define MILLOM_HTTP_CLIENT_H

#include <stddef.h>

typedef struct http_client http_client;

typedef struct {
    long status; /* 0 when no HTTP answer arrived */
    char *body;  /* NUL-terminated, caller frees via http_result_free */
    size_t body_len;
    int timed_out;
    char error[256]; /* curl's message when status == 0 */
} http_result;

/* Once per process before threads start (curl_global_init). */
void http_client_global_init(void);
http_client *http_client_new(void);
/* Its calls are made by loop's thread while the calling thread waits:
 * many threads that mostly wait for answers (purchase-executor's lanes)
 * share one set of connections and curl's state, and curl's deep stack
 * stays on the loop's thread. The loop outlives the client. */
struct http_loop;
http_client *http_client_on_loop(struct http_loop *loop);
void http_client_free(http_client *c);

/* Up to 8 extra headers as "Name: value" strings, NULL-terminated. */
int http_get(http_client *c, const char *url, const char *const *headers, long timeout_ms,
             http_result *out);
int http_post(http_client *c, const char *url, const char *const *headers, const char *content_type,
              const char *body, size_t body_len, long timeout_ms, http_result *out);
void http_result_free(http_result *r);

/* Percent-encodes s for a URL path segment or query value: every byte but
 * RFC 3986's unreserved A-Z a-z 0-9 - . _ ~ becomes %XX (as
 * curl_easy_escape does). Caller frees. */
char *http_escape(const char *s);
/* The same into out, NUL-terminated when cap > 0, without allocating.
 * Returns the length of the whole encoding, as snprintf does: out holds
 * all of it only when that is below cap. */
size_t http_escape_to(char *out, size_t cap, const char *s);

#endif
