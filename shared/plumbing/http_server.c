/* HTTP server on libmicrohttpd with suspend/resume.
 *
 * Life of a request: MHD calls on_access() once to create the request,
 * again for each body chunk, and once more when the body is complete; that
 * last call runs the handler. If the handler answered, the response is
 * queued right away. If it deferred, the connection is suspended and the
 * answer comes later from another thread through http_respond(), which
 * resumes the connection; MHD then calls on_access() again and the stored
 * response is queued. A per-request mutex orders "suspend" before
 * "resume", whichever thread gets there first.
 *
 * Limits on connections (issue 16, item 4):
 *  - a whole request (headers and body) must arrive within
 *    MILLOM_HTTP_HEADER_TIMEOUT_S (10) of the connection's start or of the
 *    previous answer on it. MHD's own timeout is an idle timeout, which a
 *    client sending one byte a second never reaches; so every connection
 *    is tracked from MHD's connection-started notification to its closed
 *    notification, and a watchdog thread shuts down (shutdown(2)) the
 *    socket of one whose request is late; MHD then sees the end of the
 *    stream and closes it. The closed notification comes before MHD
 *    closes the socket and takes the same lock, so the watchdog never
 *    touches a descriptor that was reused.
 *  - MHD_OPTION_PER_IP_CONNECTION_LIMIT: MILLOM_HTTP_MAX_CONNECTIONS_PER_IP
 *    (256) per client address; MHD closes the ones above it at accept.
 *  - MILLOM_HTTP_MAX_CONNECTIONS (4096) in all (with one thread MHD's
 *    MHD_OPTION_CONNECTION_LIMIT; with a pool this file's acceptor, see
 *    Threads), of which the last MILLOM_HTTP_HEALTH_RESERVE (16) are kept for
 *    GET /healthz and /readyz: above the soft cap (the limit minus the
 *    reserve) any other request is answered 503 with Connection: close,
 *    and connections still waiting for their request get 1 s instead of
 *    the full timeout, so the slots free up for the probes.
 *
 * Event loop: poll() for a server whose handler defers most answers
 * (opts.defers_most: api-edge), epoll otherwise; MILLOM_HTTP_EVENT_LOOP
 * (poll or epoll) sets it for every server. A deferred request suspends
 * its connection and the answer resumes it; with epoll MHD takes the
 * socket out of its epoll set at the suspend and puts it back at the
 * resume (two epoll_ctl calls), and reads once more after each request to
 * see EAGAIN (the set is edge-triggered). poll() needs neither:
 * api-edge's HTTP threads made 2.9 system calls a cache miss instead of
 * 5.7 and used 15-25% less CPU per miss. But poll() looks at every
 * connection of its thread on every turn, where epoll looks at the ready
 * ones only: a server answering at once gains nothing from poll(), and
 * one holding thousands of mostly idle keep-alive connections loses.
 *
 * Threads: opts.threads workers (MHD's thread pool). With more than
 * one, a thread of this file accepts the connections and hands each to
 * MHD (MHD_add_connection), which gives it to a worker by its socket's
 * number (modulo the pool size): consecutive sockets alternate. When MHD
 * accepted itself, every worker watched the listening socket and the first
 * awake took up to 11 connections a turn, so a client opening its
 * connections at once (wrk's 50, offer-resolver's curl pool to the MNO)
 * often had most of them on one worker: per cache miss 33.5 µs of
 * mno-sandbox's CPU on one thread against 15.1 on the other, 25.5
 * against 6.2 in api-edge, while the other core sat partly idle.
 *
 * With a pool the acceptor, not MHD, keeps MILLOM_HTTP_MAX_CONNECTIONS:
 * MHD splits its limit evenly over the workers and checks a worker's
 * share when it takes a handed-over connection off its queue, not when
 * the connection is handed over. A worker behind on its queue (a slow or
 * loaded machine) was given more than its share and closed the surplus
 * ("Server reached connection limit", then "Failed to start serving new
 * connection"), far below the limit: 17 of 30 connections under a limit
 * of 40. So each worker may hold the whole limit in MHD, and the acceptor
 * admits a connection only while the open ones (n_conns) and the ones
 * handed over but not yet started (pending) are below the limit.
 *
 * HTTPS (opts.tls, issue 15 item 5): MHD_USE_TLS with the PEM certificate
 * and key in memory, GnuTLS priorities limited to TLS 1.2 and 1.3. The
 * watchdog above covers the handshake too (a connection is tracked from
 * its accept). */
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/clock.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/service.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum req_state { REQ_NEW, REQ_DEFERRED, REQ_ANSWERED };

struct http_request {
    struct MHD_Connection *conn;
    http_server *server;
    const char *method;
    const char *path;
    char *body;
    size_t body_len;
    int body_too_large;
    size_t max_body; /* the server's, or opts.max_body_for's for this request */
    pthread_mutex_t lock;
    enum req_state state;
    int suspended;
    struct MHD_Response *response;
    unsigned status;
    void *user;
    void (*user_free)(void *);
    const char *const *extra_headers; /* http_set_response_headers */
    char ip[INET6_ADDRSTRLEN];
    int64_t started_ms;
    /* opts.correlate: the request id sent in every answer ("": none), and
     * whether the one the client sent was refused (400 before the handler). */
    char correlator[CORRELATOR_SIZE];
    int bad_correlator;
};

/* One open connection, from MHD's STARTED to its CLOSED notification
 * (its socket context). waiting_since_ms: when it started waiting for a
 * request, 0 while a request is being handled or answered. */
typedef struct conn_track {
    struct conn_track *prev, *next;
    int fd;
    int64_t waiting_since_ms;
    int shut;
} conn_track;

struct http_server {
    struct MHD_Daemon *daemon;
    /* With a pool: the listening socket and the thread accepting on it
     * (acceptor_main); listen_fd -1 when MHD accepts itself. */
    int listen_fd;
    pthread_t acceptor;
    int acceptor_started;
    atomic_int acceptor_stopping;
    /* Connection tracking: the list and count under conns_lock; the
     * watchdog waits on conns_cond and ends when stopping is set.
     * n_conns counts every connection from its STARTED to its CLOSED,
     * tracked or not (a failed allocation). */
    pthread_mutex_t conns_lock;
    pthread_cond_t conns_cond;
    conn_track *conns;
    unsigned n_conns;
    /* With a pool, also under conns_lock: the sockets the acceptor handed
     * to MHD whose STARTED has not come yet (max_conns slots). */
    int *pending;
    unsigned n_pending;
    int stopping;
    pthread_t watchdog;
    int watchdog_started;
    int64_t request_timeout_ms;
    unsigned max_conns, soft_cap;
    metric *timed_out;
    metric *shed;
    metric *refused; /* closed by the acceptor at the limit */
    http_server_opts opts;
    size_t max_body;
    int port;
    metric *latency;
    metric *in_flight;
    _Atomic(metric *) by_status[600];
    /* HTTPS: copies of the PEM text, alive as long as the daemon; NULL for HTTP. */
    char *tls_cert, *tls_key;
};

static metric *status_counter(http_server *s, unsigned status) {
    if (status >= 600) status = 599;
    metric *m = atomic_load(&s->by_status[status]);
    if (m) return m;
    char labels[64];
    snprintf(labels, sizeof labels, "code=\"%u\",port=\"%d\"", status, s->port);
    m = metric_counter("millom_http_requests_total", "HTTP requests answered, by status code",
                       labels);
    atomic_store(&s->by_status[status], m);
    return m;
}

const char *http_method(const http_request *r) { return r->method; }
const char *http_path(const http_request *r) { return r->path; }
const char *http_client_ip(const http_request *r) { return r->ip; }
const char *http_correlator(const http_request *r) { return r->correlator; }

const char *http_query(const http_request *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const http_request *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_body(const http_request *r, size_t *len) {
    if (len) *len = r->body_len;
    return r->body ? r->body : "";
}

void http_set_user(http_request *r, void *user, void (*free_fn)(void *)) {
    r->user = user;
    r->user_free = free_fn;
}

void *http_user(const http_request *r) { return r->user; }

void http_set_response_headers(http_request *r, const char *const *pairs) {
    r->extra_headers = pairs;
}

void http_respond_with_header(http_request *r, int status, const char *content_type,
                              const char *body, size_t body_len, const char *header,
                              const char *value) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body_len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return; /* out of memory: MHD closes the connection */
    /* An answer without a body has no media type: a Content-Type on it
     * makes validating clients parse "" as JSON and fail. */
    if (content_type && body_len > 0)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (header) MHD_add_response_header(resp, header, value);
    if (r->correlator[0]) MHD_add_response_header(resp, CORRELATOR_HEADER, r->correlator);
    for (const char *const *h = r->extra_headers; h && h[0] && h[1]; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    /* Once the connection is resumed, MHD's thread may send the answer
     * and free r (on_completed) at any moment: r is not touched after
     * the unlock, and the resume comes after it. Until the resume the
     * connection stays suspended, so r lives. */
    pthread_mutex_lock(&r->lock);
    if (r->response) { /* answered twice: keep the first */
        log_warn("request %s %s answered twice", r->method, r->path);
        pthread_mutex_unlock(&r->lock);
        MHD_destroy_response(resp);
        return;
    }
    r->response = resp;
    r->status = (unsigned)status;
    struct MHD_Connection *resume = NULL;
    if (r->suspended) {
        r->suspended = 0;
        resume = r->conn;
    }
    pthread_mutex_unlock(&r->lock);
    if (resume) MHD_resume_connection(resume);
}

void http_respond(http_request *r, int status, const char *content_type, const char *body,
                  size_t body_len) {
    http_respond_with_header(r, status, content_type, body, body_len, NULL, NULL);
}

void http_respond_json(http_request *r, int status, json_t *body) {
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text) {
        http_respond_error(r, CAUSE_UNSPECIFIED, "cannot serialize response");
        return;
    }
    http_respond(r, status, "application/json", text, strlen(text));
    free(text);
}

void http_respond_error(http_request *r, const char *cause, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *text = error_document_text(cause, msg);
    int retry = error_retry_after(cause);
    char retry_text[16];
    snprintf(retry_text, sizeof retry_text, "%d", retry);
    http_respond_with_header(r, error_status(cause), "application/json", text ? text : "{}",
                             text ? strlen(text) : 2, retry ? "Retry-After" : NULL, retry_text);
    free(text);
}

void http_defer(http_request *r) {
    pthread_mutex_lock(&r->lock);
    if (r->state == REQ_NEW) r->state = REQ_DEFERRED;
    pthread_mutex_unlock(&r->lock);
}

/* /healthz, /readyz and /metrics, answered by every server. */
static int serve_builtin(http_server *s, http_request *r) {
    if (strcmp(r->method, "GET") != 0) return 0;
    if (strcmp(r->path, "/healthz") == 0) {
        http_respond(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
    } else if (strcmp(r->path, "/readyz") == 0) {
        int ready = !s->opts.ready || s->opts.ready(s->opts.app);
        if (ready)
            http_respond(r, 200, "application/json", "{\"ready\":true}", 14);
        else
            http_respond(r, 503, "application/json", "{\"ready\":false}", 15);
    } else if (strcmp(r->path, "/metrics") == 0) {
        char *text = metrics_render();
        http_respond(r, 200, "text/plain; version=0.0.4", text ? text : "",
                     text ? strlen(text) : 0);
        free(text);
    } else {
        return 0;
    }
    return 1;
}

static void fill_client_ip(http_request *r) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->ip, sizeof r->ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->ip, sizeof r->ip);
}

/* The tracked connection of conn (NULL if MHD has none). */
static conn_track *track_of(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Marks conn as waiting for a request from now (since_ms) or, with 0, as
 * busy with one. */
static void track_waiting(http_server *s, struct MHD_Connection *conn, int64_t since_ms) {
    conn_track *t = track_of(conn);
    if (!t) return;
    pthread_mutex_lock(&s->conns_lock);
    t->waiting_since_ms = since_ms;
    pthread_mutex_unlock(&s->conns_lock);
}

/* 1 when the server is above its soft cap (only health probes served). */
static int over_soft_cap(http_server *s) {
    pthread_mutex_lock(&s->conns_lock);
    int over = s->n_conns > s->soft_cap;
    pthread_mutex_unlock(&s->conns_lock);
    return over;
}

static int is_health_probe(const http_request *r) {
    return strcmp(r->method, "GET") == 0 &&
           (strcmp(r->path, "/healthz") == 0 || strcmp(r->path, "/readyz") == 0);
}

/* Counts of the headers that decide a request's framing. */
typedef struct {
    int content_length, transfer_encoding, host;
    const char *first_length;
    int lengths_differ;
} framing_headers;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    (void)kind;
    framing_headers *f = cls;
    if (strcasecmp(key, "Content-Length") == 0) {
        if (f->content_length++ == 0)
            f->first_length = value;
        else if (strcmp(f->first_length ? f->first_length : "", value ? value : "") != 0)
            f->lengths_differ = 1;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->transfer_encoding++;
    } else if (strcasecmp(key, "Host") == 0) {
        f->host++;
    }
    return MHD_YES;
}

/* Why a request's framing is refused, or NULL. libmicrohttpd serves a
 * request with two different Content-Lengths (it takes the first) and one
 * with Content-Length and Transfer-Encoding (it takes chunked); a proxy in
 * front may have framed it the other way (request smuggling), so both are
 * refused (RFC 9112 6.1, 6.3), as is an HTTP/1.1 request without exactly
 * one Host (RFC 9112 3.2), which libmicrohttpd also lets through. */
static const char *framing_problem(struct MHD_Connection *conn, const char *version) {
    framing_headers f = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    if (f.content_length && f.transfer_encoding)
        return "Content-Length and Transfer-Encoding together";
    if (f.lengths_differ) return "conflicting Content-Length headers";
    if (f.transfer_encoding > 1) return "more than one Transfer-Encoding header";
    if (f.host > 1) return "more than one Host header";
    if (f.host == 0 && version && strcmp(version, "HTTP/1.0") != 0)
        return "an HTTP/1.1 request needs a Host header";
    return NULL;
}

/* opts.correlate: the request's id, the client's or a fresh one (also for
 * a refused one: the 400 carries an id the client can quote). */
static void take_correlator(http_request *r) {
    const char *sent = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, CORRELATOR_HEADER);
    size_t n = sent ? strlen(sent) : 0;
    if (sent && correlator_valid(sent, n)) {
        memcpy(r->correlator, sent, n + 1);
        return;
    }
    r->bad_correlator = sent != NULL;
    correlator_new(r->correlator);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_size, void **con_cls) {
    http_server *s = cls;
    http_request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        pthread_mutex_init(&r->lock, NULL);
        r->conn = conn;
        r->server = s;
        r->method = method;
        r->path = url;
        r->started_ms = mono_ms();
        fill_client_ip(r);
        r->max_body = s->max_body;
        if (s->opts.max_body_for) {
            size_t own = s->opts.max_body_for(s->opts.app, method, url);
            if (own) r->max_body = own;
        }
        if (s->opts.correlate) take_correlator(r);
        *con_cls = r;
        metric_add(s->in_flight, 1);
        const char *bad = framing_problem(conn, version);
        if (!bad) return MHD_YES;
        /* Answered before the body is read; the connection closes. */
        track_waiting(s, conn, 0);
        char *text = error_document_text(CAUSE_BAD_REQUEST, bad);
        http_respond_with_header(r, 400, "application/json", text ? text : "{}",
                                 text ? strlen(text) : 2, "Connection", "close");
        free(text);
        r->state = REQ_ANSWERED;
        struct MHD_Response *resp = r->response;
        r->response = NULL; /* no other thread has r yet */
        enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (r->state == REQ_ANSWERED) {
        /* Only a request answered at its first call (framing above) gets
         * here, should libmicrohttpd still offer its body: close. */
        return MHD_NO;
    }
    if (*upload_size) {
        if (!r->body_too_large) {
            if (r->body_len + *upload_size > r->max_body) {
                r->body_too_large = 1;
                free(r->body);
                r->body = NULL;
                r->body_len = 0;
            } else {
                char *grown = realloc(r->body, r->body_len + *upload_size + 1);
                if (!grown) return MHD_NO;
                memcpy(grown + r->body_len, upload_data, *upload_size);
                r->body = grown;
                r->body_len += *upload_size;
                r->body[r->body_len] = '\0';
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->state == REQ_NEW) {
        track_waiting(s, conn, 0); /* the whole request is in */
        if (!is_health_probe(r) && over_soft_cap(s)) {
            metric_add(s->shed, 1);
            static const char busy[] = "{\"errorMessage\":\"too many connections\","
                                       "\"cause\":\"" CAUSE_SERVICE_UNAVAILABLE "\"}";
            http_respond_with_header(r, 503, "application/json", busy, sizeof busy - 1,
                                     "Connection", "close");
        } else if (r->body_too_large) {
            http_respond_error(r, CAUSE_PAYLOAD_TOO_LARGE, "request body exceeds %zu bytes",
                               r->max_body);
        } else if (r->bad_correlator) {
            http_respond_error(r, CAUSE_BAD_REQUEST,
                               CORRELATOR_HEADER
                               " must be 1 to %d characters of " CORRELATOR_CHARSET,
                               CORRELATOR_MAX);
        } else if (!serve_builtin(s, r)) {
            /* The handler works for this request: its log lines and the
             * Kafka messages it produces carry the request's id. */
            correlator_set(r->correlator);
            s->opts.handler(s->opts.app, r);
            correlator_clear();
        }
        if (r->state == REQ_NEW && !r->response) {
            /* The handler neither answered nor deferred: a bug, not a hang. */
            log_error("handler left %s %s unanswered", method, url);
            http_respond_error(r, CAUSE_UNSPECIFIED, "no response");
        }
    }
    pthread_mutex_lock(&r->lock);
    if (r->response) {
        r->state = REQ_ANSWERED;
        struct MHD_Response *resp = r->response;
        unsigned status = r->status;
        r->response = NULL;
        pthread_mutex_unlock(&r->lock);
        enum MHD_Result ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (!r->suspended) {
        r->suspended = 1;
        MHD_suspend_connection(conn);
    }
    pthread_mutex_unlock(&r->lock);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)toe;
    http_server *s = cls;
    /* The next request on a kept-alive connection has its own deadline. */
    track_waiting(s, conn, mono_ms());
    http_request *r = *con_cls;
    if (!r) return;
    if (r->status) {
        metric_add(status_counter(s, r->status), 1);
        metric_observe_ms(s->latency, (double)(mono_ms() - r->started_ms));
    }
    metric_add(s->in_flight, -1);
    if (r->user_free) r->user_free(r->user);
    if (r->response) MHD_destroy_response(r->response);
    pthread_mutex_destroy(&r->lock);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* fd's index among the pending sockets, n_pending if it is not there
 * (conns_lock held). */
static unsigned pending_slot(const http_server *s, int fd) {
    unsigned i = 0;
    while (i < s->n_pending && s->pending[i] != fd) i++;
    return i;
}

/* Takes fd off the pending sockets, if it is there (conns_lock held). */
static void forget_pending(http_server *s, int fd) {
    unsigned i = pending_slot(s, fd);
    if (i < s->n_pending) s->pending[i] = s->pending[--s->n_pending];
}

/* The acceptor's admission of the accepted socket fd: 1 (now pending)
 * while the open and pending connections are below the limit, else 0.
 * fd already pending means MHD closed that earlier socket without
 * starting it (no memory for its pool): the new one takes its slot. */
static int admit(http_server *s, int fd) {
    pthread_mutex_lock(&s->conns_lock);
    unsigned i = pending_slot(s, fd);
    int ok = i < s->n_pending || s->n_conns + s->n_pending < s->max_conns;
    if (ok && i == s->n_pending) s->pending[s->n_pending++] = fd;
    pthread_mutex_unlock(&s->conns_lock);
    return ok;
}

/* MHD_OPTION_NOTIFY_CONNECTION: tracks connections from start to close. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_track *t = calloc(1, sizeof *t);
        if (!t || !ci) { /* untracked: no deadline, but counted */
            free(t);
            t = NULL;
        }
        pthread_mutex_lock(&s->conns_lock);
        if (ci) forget_pending(s, ci->connect_fd);
        s->n_conns++;
        if (t) {
            t->fd = ci->connect_fd;
            t->waiting_since_ms = mono_ms();
            t->next = s->conns;
            if (s->conns) s->conns->prev = t;
            s->conns = t;
        }
        pthread_mutex_unlock(&s->conns_lock);
        *socket_context = t;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_track *t = *socket_context;
        pthread_mutex_lock(&s->conns_lock);
        if (!t) { /* an untracked one */
            s->n_conns--;
            pthread_mutex_unlock(&s->conns_lock);
            return;
        }
        if (t->prev)
            t->prev->next = t->next;
        else
            s->conns = t->next;
        if (t->next) t->next->prev = t->prev;
        s->n_conns--;
        pthread_mutex_unlock(&s->conns_lock);
        free(t);
        *socket_context = NULL;
    }
}

/* Shuts down the sockets of connections whose request is late: after the
 * request timeout, or after 1 s while the server is above its soft cap. */
static void *watchdog_main(void *arg) {
    service_thread_name("http-watchdog");
    http_server *s = arg;
    pthread_mutex_lock(&s->conns_lock);
    while (!s->stopping) {
        struct timespec until;
        clock_deadline_in(&until, 200);
        pthread_cond_timedwait(&s->conns_cond, &s->conns_lock, &until);
        if (s->stopping) break;
        int64_t now = mono_ms();
        int64_t limit = s->request_timeout_ms;
        if (s->n_conns > s->soft_cap && limit > 1000) limit = 1000;
        for (conn_track *t = s->conns; t; t = t->next) {
            if (t->shut || !t->waiting_since_ms || now - t->waiting_since_ms < limit) continue;
            shutdown(t->fd, SHUT_RDWR);
            t->shut = 1;
            metric_add(s->timed_out, 1);
        }
    }
    pthread_mutex_unlock(&s->conns_lock);
    return NULL;
}

/* MHD's messages as warnings. Those about connection limits, closed
 * connections and failed TLS handshakes (a plain HTTP client on an HTTPS
 * port, a scanner) come once per connection, so a flood would flood the
 * log: at most one a second is logged, with the number left out since. */
static void on_mhd_error(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    static _Atomic int64_t limit_logged_ms;
    static atomic_long limit_suppressed;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    if (strstr(msg, "limit") || strstr(msg, "closed") || strstr(msg, "andshake") ||
        strstr(msg, "TLS")) {
        int64_t now = mono_ms(), last = atomic_load(&limit_logged_ms);
        if (now - last < 1000 || !atomic_compare_exchange_strong(&limit_logged_ms, &last, now)) {
            atomic_fetch_add(&limit_suppressed, 1);
            return;
        }
        long left_out = atomic_exchange(&limit_suppressed, 0);
        log_warn("http: %s (%ld more such messages in the last second left out)", msg, left_out);
        return;
    }
    log_warn("http: %s", msg);
}

static void log_mhd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_mhd_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    on_mhd_error(NULL, fmt, ap);
    va_end(ap);
}

/* Binds and listens on host:port; the port actually bound in *bound (port
 * 0 picks a free one). The socket, or -1 with a message. */
static int listen_socket(const char *host, int port, int *bound, char *err, size_t errlen) {
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "bad bind address %s", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    socklen_t len = sizeof addr;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    *bound = ntohs(addr.sin_port);
    return fd;
}

/* With a thread pool: accepts connections and hands each to MHD, which
 * picks the worker by socket number (see the top of this file). Closes
 * the ones above MILLOM_HTTP_MAX_CONNECTIONS itself (admit); MHD sets up
 * the others as for its own accepts and closes the ones above the
 * per-address limit (both logged through on_mhd_error). Ends when
 * http_server_stop() shuts the listening socket down, which makes a
 * waiting accept() fail. */
static void *acceptor_main(void *arg) {
    http_server *s = arg;
    service_thread_name("http-accept");
    while (!atomic_load(&s->acceptor_stopping)) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof addr;
        int fd =
            accept4(s->listen_fd, (struct sockaddr *)&addr, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            if (!admit(s, fd)) {
                metric_add(s->refused, 1); /* counted before the client can see it */
                close(fd);
                log_mhd_error("connection limit (%u) reached: closing an inbound connection",
                              s->max_conns);
            } else if (MHD_add_connection(s->daemon, fd, (struct sockaddr *)&addr, len) !=
                       MHD_YES) {
                pthread_mutex_lock(&s->conns_lock); /* refused: MHD closed it */
                forget_pending(s, fd);
                pthread_mutex_unlock(&s->conns_lock);
            }
            continue;
        }
        if (atomic_load(&s->acceptor_stopping) || errno == EINTR || errno == ECONNABORTED) continue;
        /* Out of descriptors or memory: the connections wait in the
         * listen backlog; try again shortly (logged at most once a second,
         * as MHD's own messages about limits). */
        log_mhd_error("accept: %s (connections wait in the backlog until a limit frees)",
                      strerror(errno));
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Frees a server whose daemon and watchdog are gone. */
static void server_free(http_server *s) {
    http_tls t = {.cert_pem = s->tls_cert, .key_pem = s->tls_key};
    http_tls_clear(&t);
    pthread_cond_destroy(&s->conns_cond);
    pthread_mutex_destroy(&s->conns_lock);
    free(s->pending);
    free(s);
}

enum event_loop { LOOP_POLL, LOOP_EPOLL, LOOP_ANY /* not set: the server's own */ };

typedef struct {
    size_t max_body;
    const char *bind;
    long max_conns, reserve, per_ip, timeout_s, idle_s;
    enum event_loop event_loop;
} http_settings;

static void read_http_settings(http_settings *h, settings_reader *set) {
    h->max_body = (size_t)settings_long(set, "MILLOM_HTTP_MAX_BODY", 64 * 1024, 1, 1L << 30);
    h->bind = settings_str(set, "MILLOM_BIND", "127.0.0.1");
    h->max_conns = settings_long(set, "MILLOM_HTTP_MAX_CONNECTIONS", 4096, 2, 1000000);
    h->reserve = settings_long(set, "MILLOM_HTTP_HEALTH_RESERVE", 16, 1, 1000000);
    h->per_ip = settings_long(set, "MILLOM_HTTP_MAX_CONNECTIONS_PER_IP", 256, 0, 1000000);
    h->timeout_s = settings_seconds(set, "MILLOM_HTTP_HEADER_TIMEOUT_S", 10, 1, 3600);
    h->idle_s = settings_seconds(set, "MILLOM_HTTP_IDLE_TIMEOUT_S", 60, 0, 86400);
    static const char *const loops[] = {"poll", "epoll", NULL};
    h->event_loop = (enum event_loop)settings_enum(set, "MILLOM_HTTP_EVENT_LOOP", loops, LOOP_ANY);
    if (settings_ok(set) && h->reserve >= h->max_conns)
        settings_fail(set,
                      "MILLOM_HTTP_HEALTH_RESERVE (%ld) must be below "
                      "MILLOM_HTTP_MAX_CONNECTIONS (%ld)",
                      h->reserve, h->max_conns);
}

static bool uses_poll(enum event_loop setting, const http_server_opts *opts) {
    return setting == LOOP_ANY ? opts->defers_most != 0 : setting == LOOP_POLL;
}

void http_server_settings_check(void) {
    http_settings hs;
    settings_reader set = SETTINGS_INIT;
    read_http_settings(&hs, &set);
    settings_exit_on_error(&set);
}

http_server *http_server_start(const http_server_opts *opts, char *err, size_t errlen) {
    http_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->opts = *opts;
    /* The listener's settings, read here at its start (a bad value exits 1
     * naming the variable; programs check them earlier still with
     * http_server_settings_check). */
    http_settings hs;
    settings_reader set = SETTINGS_INIT;
    read_http_settings(&hs, &set);
    if (!settings_ok(&set)) free(s);
    settings_exit_on_error(&set);
    s->max_body = hs.max_body;
    long max_conns = hs.max_conns, reserve = hs.reserve, per_ip = hs.per_ip;
    long timeout_s = hs.timeout_s, idle_s = hs.idle_s;
    const char *bind_env = hs.bind;
    const char *bind = opts->bind_addr ? opts->bind_addr : bind_env;
    /* Everything the request threads read (port, metrics) is set before
     * MHD starts them: the socket is bound here first so that the port
     * (opts->port 0: any free one) is known for the metrics' labels. */
    int fd = listen_socket(bind, opts->port, &s->port, err, errlen);
    if (fd < 0) {
        free(s);
        return NULL;
    }
    char labels[32];
    snprintf(labels, sizeof labels, "port=\"%d\"", s->port);
    s->latency = metric_histogram("millom_http_request_seconds", "HTTP request latency", labels);
    s->in_flight = metric_gauge("millom_http_in_flight", "HTTP requests being served", labels);
    s->timed_out =
        metric_counter("millom_http_request_timeouts_total",
                       "connections closed because their request came too slowly", labels);
    s->shed = metric_counter("millom_http_shed_total",
                             "requests answered 503 above the connection soft cap", labels);
    s->refused = metric_counter("millom_http_refused_total",
                                "connections closed at accept at the connection limit", labels);
    /* per_ip 0: no per-address limit */
    s->max_conns = (unsigned)max_conns;
    s->soft_cap = (unsigned)(max_conns - reserve);
    s->request_timeout_ms = timeout_s * 1000;
    pthread_mutex_init(&s->conns_lock, NULL);
    clock_cond_init(&s->conns_cond);
    /* MHD wants no pool for one thread (it warns about a pool of 1). */
    unsigned threads = opts->threads > 0 ? (unsigned)opts->threads : 2;
    unsigned pool = threads > 1 ? threads : 0;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     (uses_poll(hs.event_loop, opts) ? MHD_USE_POLL : MHD_USE_EPOLL) |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* A pool: this file accepts (acceptor_main); one thread: MHD does. */
    s->listen_fd = pool ? fd : -1;
    struct MHD_OptionItem listen_opts[2] = {{MHD_OPTION_LISTEN_SOCKET, fd, NULL},
                                            {MHD_OPTION_END, 0, NULL}};
    /* With a pool each worker may hold the whole limit in MHD: the
     * acceptor keeps it (see Threads at the top of this file). */
    unsigned mhd_limit = s->max_conns;
    if (pool) {
        flags |= MHD_USE_NO_LISTEN_SOCKET;
        listen_opts[0] = listen_opts[1];
        mhd_limit = pool <= UINT_MAX / s->max_conns ? s->max_conns * pool : UINT_MAX;
        s->pending = calloc(s->max_conns, sizeof *s->pending);
        if (!s->pending) {
            snprintf(err, errlen, "HTTP: out of memory");
            close(fd);
            server_free(s);
            return NULL;
        }
    }
    struct MHD_OptionItem tls_opts[4] = {{MHD_OPTION_END, 0, NULL}};
    if (opts->tls && opts->tls->cert_pem) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "HTTPS: this libmicrohttpd was built without TLS (GnuTLS)");
            close(fd);
            server_free(s);
            return NULL;
        }
        s->tls_cert = strdup(opts->tls->cert_pem);
        s->tls_key = strdup(opts->tls->key_pem);
        if (!s->tls_cert || !s->tls_key) {
            snprintf(err, errlen, "HTTPS: out of memory");
            close(fd);
            server_free(s);
            return NULL;
        }
        flags |= MHD_USE_TLS;
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
        /* GnuTLS's defaults without TLS 1.0 and 1.1 (RFC 8996) */
        static char priorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
        tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, priorities};
        tls_opts[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)s->port, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_error, NULL, MHD_OPTION_ARRAY, listen_opts, MHD_OPTION_THREAD_POOL_SIZE, pool,
        MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)idle_s, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot serve %s on %s:%d", s->tls_cert ? "HTTPS" : "HTTP", bind,
                 s->port);
        close(fd);
        server_free(s);
        return NULL;
    }
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        snprintf(err, errlen, "cannot start the HTTP connection watchdog");
        http_server_stop(s);
        return NULL;
    }
    s->watchdog_started = 1;
    if (s->listen_fd >= 0) {
        if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0) {
            snprintf(err, errlen, "cannot start the HTTP accepting thread");
            http_server_stop(s);
            return NULL;
        }
        s->acceptor_started = 1;
    }
    log_info("%s listening on %s:%d", s->tls_cert ? "https" : "http", bind, s->port);
    return s;
}

int http_server_port(const http_server *s) { return s->port; }

void http_server_stop(http_server *s) {
    if (!s) return;
    /* Stop accepting, then give answered requests up to 2 s to go out. The
     * listening socket is closed only once the daemon stopped: quiescing
     * tells MHD's threads to drop it from their epoll sets, and they may
     * still be doing so (closing it then raced with their epoll_ctl). */
    MHD_socket listen_fd;
    if (s->listen_fd >= 0) {
        /* shutdown() makes the acceptor's accept() fail at once */
        atomic_store(&s->acceptor_stopping, 1);
        shutdown(s->listen_fd, SHUT_RDWR);
        if (s->acceptor_started) pthread_join(s->acceptor, NULL);
        listen_fd = s->listen_fd;
    } else {
        listen_fd = MHD_quiesce_daemon(s->daemon);
    }
    for (int i = 0; i < 200 && metric_value(s->in_flight) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->daemon); /* every connection's CLOSED has run */
    if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
    if (s->watchdog_started) {
        pthread_mutex_lock(&s->conns_lock);
        s->stopping = 1;
        pthread_cond_signal(&s->conns_cond);
        pthread_mutex_unlock(&s->conns_lock);
        pthread_join(s->watchdog, NULL);
    }
    server_free(s);
}
