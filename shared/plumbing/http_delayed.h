/* Deferred HTTP answers with a due time, for the sandboxes' simulated
 * delay and hang.
 *
 * Why: a sandbox's slow or hung answer must never hold a server thread.
 * The handler computes its answer at once, and http_delayed_add defers the
 * connection (http_defer) and queues the answer here with a due time; one
 * timer thread sends it when due. While hang is set, a new answer waits in
 * a separate list until hang is lifted (then it is sent at once) or the
 * service stops (then it gets the shutdown answer). Meanwhile the server
 * keeps accepting and answering other connections.
 *
 * Every function is thread-safe. */
#ifndef MILLOM_HTTP_DELAYED_H
#define MILLOM_HTTP_DELAYED_H

#include "shared/plumbing/http_server.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct http_delayed http_delayed;

/* Starts the timer thread; NULL if it (or memory) cannot be had. Hang is
 * off. */
http_delayed *http_delayed_new(void);

/* true: answers added from now on wait until hang is lifted. false: the
 * waiting ones are sent at once, and new ones only wait their delay. */
void http_delayed_set_hang(http_delayed *d, bool hang);

/* Defers `req` and answers it with (status, content_type, body) after
 * delay_ms (<= 0: as soon as the timer thread gets to it), or, while hang
 * is set, when hang is lifted. Takes ownership of `body` (malloc'ed, may be
 * NULL when len is 0); `content_type` must outlive the answer (a literal).
 * Once shut down, or out of memory, answers at once. Returns 0 if queued,
 * -1 if answered at once. */
int http_delayed_add(http_delayed *d, http_request *req, int64_t delay_ms, int status,
                     const char *content_type, char *body, size_t len);

/* Requests still waiting (delayed or hung). */
size_t http_delayed_pending(http_delayed *d);

/* Stops the timer thread and answers every waiting request: a delayed one
 * with its own answer, now; a hung one with (status, content_type, body).
 * Later adds are answered at once. Returns how many were answered;
 * calling it again returns 0. */
size_t http_delayed_shutdown(http_delayed *d, int status, const char *content_type,
                             const char *body);

/* Shuts down (hung requests get a plain 503) if not done yet, and frees. */
void http_delayed_free(http_delayed *d);

#endif
