/* HTTP server on libmicrohttpd with suspend/resume.
 *
 * Life of a request: MHD calls on_access() once to create the request,
 * again for each body chunk, and once more when the body is complete; that
 * last call runs the handler. If the handler answered, the response is
 * queued right away. If it deferred, the connection is suspended and the
 * answer comes later from another thread through http_respond(), which
 * resumes the connection; MHD then calls on_access() again and the stored
 * response is queued. A per-request mutex orders "suspend" before
 * "resume", whichever thread gets there first. */
#include "shared/http_server.h"
#include "shared/errors.h"
#include "shared/log.h"
#include "shared/metrics.h"
#include "shared/config.h"
#include "shared/service.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    pthread_mutex_t lock;
    enum req_state state;
    int suspended;
    struct MHD_Response *response;
    unsigned status;
    void *user;
    void (*user_free)(void *);
    char ip[INET6_ADDRSTRLEN];
    int64_t started_ms;
};

struct http_server {
    struct MHD_Daemon *daemon;
    http_server_opts opts;
    size_t max_body;
    int port;
    metric *latency;
    metric *in_flight;
    _Atomic(metric *) by_status[600];
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

void http_respond_with_header(http_request *r, int status, const char *content_type,
                              const char *body, size_t body_len, const char *header,
                              const char *value) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body_len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return; /* out of memory: MHD closes the connection */
    if (content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (header) MHD_add_response_header(resp, header, value);
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
        http_respond(r, 200, "text/plain; version=0.0.4", text ? text : "", text ? strlen(text) : 0);
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

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size, void **con_cls) {
    (void)version;
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
        *con_cls = r;
        metric_add(s->in_flight, 1);
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->body_too_large) {
            if (r->body_len + *upload_size > s->max_body) {
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
        if (r->body_too_large)
            http_respond_error(r, CAUSE_PAYLOAD_TOO_LARGE, "request body exceeds %zu bytes",
                               s->max_body);
        else if (!serve_builtin(s, r))
            s->opts.handler(s->opts.app, r);
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
    (void)conn;
    (void)toe;
    http_server *s = cls;
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

static void on_mhd_error(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    log_warn("http: %s", msg);
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

http_server *http_server_start(const http_server_opts *opts, char *err, size_t errlen) {
    http_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->opts = *opts;
    s->max_body = (size_t)cfg_long("MILLOM_HTTP_MAX_BODY", 64 * 1024);
    const char *bind = opts->bind_addr ? opts->bind_addr : cfg_str("MILLOM_BIND", "127.0.0.1");
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
    /* MHD wants no pool for one thread (it warns about a pool of 1). */
    unsigned threads = opts->threads > 0 ? (unsigned)opts->threads : 2;
    unsigned pool = threads > 1 ? threads : 0;
    s->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        (uint16_t)s->port, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error,
        NULL, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, pool, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg_long("MILLOM_HTTP_MAX_CONNECTIONS", 4096),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg_long("MILLOM_HTTP_IDLE_TIMEOUT_S", 60),
        MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot serve HTTP on %s:%d", bind, s->port);
        close(fd);
        free(s);
        return NULL;
    }
    log_info("http listening on %s:%d", bind, s->port);
    return s;
}

int http_server_port(const http_server *s) { return s->port; }

void http_server_stop(http_server *s) {
    if (!s) return;
    /* Stop accepting, then give answered requests up to 2 s to go out. */
    MHD_socket listen_fd = MHD_quiesce_daemon(s->daemon);
    if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
    for (int i = 0; i < 200 && metric_value(s->in_flight) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->daemon);
    free(s);
}
