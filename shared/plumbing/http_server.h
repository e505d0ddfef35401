/* HTTP server on libmicrohttpd.
 *
 * The handler sees a whole request (body already read, at most
 * MILLOM_HTTP_MAX_BODY bytes, 64 KiB by default; larger bodies get 413
 * before the handler runs). It either answers at once with http_respond*()
 * or calls http_defer() and answers later from any thread: the connection
 * is suspended meanwhile, so no thread waits for it.
 *
 * Every server also answers GET /healthz, /readyz (via the ready callback)
 * and /metrics (Prometheus text) itself.
 *
 * With opts.tls the listener speaks HTTPS only (libmicrohttpd over GnuTLS,
 * TLS 1.2 and 1.3): a plain HTTP request on its port gets no answer, the
 * connection is closed during the handshake. */
#ifndef MILLOM_HTTP_SERVER_H
#define MILLOM_HTTP_SERVER_H

#include <stddef.h>
#include <jansson.h>
#include "shared/plumbing/http_tls.h"

typedef struct http_request http_request;
typedef struct http_server http_server;

typedef void (*http_handler_fn)(void *app, http_request *req);
typedef int (*http_ready_fn)(void *app);

typedef struct {
    const char *bind_addr; /* default "127.0.0.1" (MILLOM_BIND) */
    int port;
    int threads; /* polling threads, default 2 */
    http_handler_fn handler;
    http_ready_fn ready; /* NULL means always ready */
    void *app;
    /* HTTPS with this certificate and key (copied: the caller may clear
     * it once the server started); NULL or empty: plain HTTP. */
    const http_tls *tls;
    /* 1: request ids (shared/plumbing/correlator.h). A request's
     * x-correlator header must be 1 to 128 characters of [A-Za-z0-9._:-]
     * (otherwise 400 BAD_REQUEST naming the header, before the handler);
     * without one the request gets a fresh id. Every answer, whoever
     * gives it (errors, 404s, 413s, deferred answers), carries the id in
     * x-correlator, and the handler runs with it as its thread's current
     * correlator (log lines, Kafka headers). */
    int correlate;
    /* The largest body of one request, when it is not MILLOM_HTTP_MAX_BODY:
     * called with the request's method and (decoded) path before its body
     * is read; 0 keeps the server's limit. NULL: every request has that
     * limit. (api-edge's bulk notifications take more.) */
    size_t (*max_body_for)(void *app, const char *method, const char *path);
    /* 1: the handler defers most answers (http_defer), so the server
     * polls with poll() unless MILLOM_HTTP_EVENT_LOOP says epoll; 0: with
     * epoll unless it says poll (see http_server.c, "Event loop"). */
    int defers_most;
} http_server_opts;

/* Reads the listeners' settings (MILLOM_HTTP_*, MILLOM_BIND) through
 * shared/plumbing/settings.h and exits 1 on a bad one: for a program's start, before
 * it connects anywhere. */
void http_server_settings_check(void);

http_server *http_server_start(const http_server_opts *opts, char *err, size_t errlen);
/* Stops accepting, waits for deferred requests to be answered (they must
 * be answered by their owner first), and frees. */
void http_server_stop(http_server *s);
int http_server_port(const http_server *s);

const char *http_method(const http_request *r);
/* Path without the query string, percent-decoded by libmicrohttpd. */
const char *http_path(const http_request *r);
const char *http_query(const http_request *r, const char *name);
const char *http_header(const http_request *r, const char *name);
const char *http_body(const http_request *r, size_t *len);
/* The request id (opts.correlate), "" without. Valid until the answer. */
const char *http_correlator(const http_request *r);
/* The peer's IP address as text. */
const char *http_client_ip(const http_request *r);

/* Answers the request. Safe from any thread for a deferred request. An
 * empty body (body_len 0) goes without Content-Type, whatever
 * content_type says (202 and 200 answers without a body). */
void http_respond(http_request *r, int status, const char *content_type, const char *body,
                  size_t body_len);
/* Like http_respond with an extra header (NULL name for none). */
void http_respond_with_header(http_request *r, int status, const char *content_type,
                              const char *body, size_t body_len, const char *header,
                              const char *value);
/* Serializes and answers; takes ownership of `body`. */
void http_respond_json(http_request *r, int status, json_t *body);
/* ErrorDocument {errorMessage, cause}; status from the cause (errors.h).
 * 429 and 503 carry Retry-After. */
void http_respond_error(http_request *r, const char *cause, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Headers added to whatever answer the request gets (any http_respond*,
 * errors included): "name", "value", ..., NULL. The list must outlive the
 * request (a static array). */
void http_set_response_headers(http_request *r, const char *const *pairs);

/* Suspends the connection until http_respond*() is called. */
void http_defer(http_request *r);

/* Per-request storage for the application (freed by the server with
 * free_fn when the request ends). */
void http_set_user(http_request *r, void *user, void (*free_fn)(void *));
void *http_user(const http_request *r);

#endif
