/* HTTP calls without a thread per call: one thread drives every call it is
 * given over one curl multi handle, many at once, and keeps connections
 * alive per host between them. Any thread submits a GET or a POST; its completion
 * function runs on the loop's thread. For a service that answers many
 * requests by calling a slow server (offer-resolver and the operator's
 * backend): a call waiting on the network holds a socket, not a thread.
 *
 * Bounds: at most max_host_connections connections to one host (curl
 * queues the transfers beyond them until one is free), at most
 * max_in_flight transfers handed to curl, and at most max_waiting calls
 * submitted and not yet handed to curl; a submit past those is refused at once, so a
 * caller can answer "overloaded" instead of queueing without end. */
#ifndef MILLOM_HTTP_LOOP_H
#define MILLOM_HTTP_LOOP_H

#include <stddef.h>

#include "shared/plumbing/http_client.h"

typedef struct http_loop http_loop;

/* Called once per submitted call, on the loop's thread, with the
 * submitting thread's request id current (correlator.h). res is as
 * http_get fills it (status 0 with error and timed_out when no answer
 * came); the function owns res->body and frees it with
 * http_result_free. */
typedef void (*http_loop_done_fn)(void *arg, http_result *res);

typedef struct {
    const char *name;          /* for log lines */
    long max_host_connections; /* per host; 0: 64 */
    long max_in_flight;        /* transfers in curl at once; 0: 1024 */
    long max_waiting;          /* submitted, not yet in curl; 0: 4096 */
} http_loop_opts;

/* Starts the loop's thread. NULL with a message on error. */
http_loop *http_loop_start(const http_loop_opts *opts, char *err, size_t errlen);

/* Submits a GET of url with up to 8 extra headers ("Name: value",
 * NULL-terminated; copied). done(arg, res) runs when the answer has come,
 * or when timeout_ms (counted from this call, waiting included) has
 * passed without one, or at http_loop_stop (status 0, "stopped"). 0 when
 * submitted; -1 when the loop is full, stopping or out of memory: then
 * done is never called. */
int http_loop_get(http_loop *l, const char *url, const char *const *headers, long timeout_ms,
                  http_loop_done_fn done, void *arg);

/* As http_loop_get, for a POST of body_len bytes of body (copied), sent
 * with Content-Type: content_type. */
int http_loop_post(http_loop *l, const char *url, const char *const *headers,
                   const char *content_type, const char *body, size_t body_len, long timeout_ms,
                   http_loop_done_fn done, void *arg);

/* Calls submitted and not yet completed (for metrics and tests). */
size_t http_loop_pending(http_loop *l);

/* Completes every call not yet completed (status 0, "stopped"), joins the
 * thread and frees the loop. NULL is a no-op. */
void http_loop_stop(http_loop *l);

#endif
