/* See http_loop.h.
 *
 * A submitted call waits in a list under the loop's mutex until the loop's
 * thread hands it to curl (an easy handle, taken from a few kept for
 * reuse, added to the multi handle). The thread drives curl with its
 * socket interface (curl_multi_socket_action): curl says which sockets it
 * wants watched and when its next timeout falls (on_socket, on_timer),
 * the thread poll()s exactly those sockets, and tells curl which are
 * ready and how. So curl works only on the transfers whose sockets are
 * ready and need not check each socket itself first; with
 * curl_multi_perform it visited every transfer in flight on every turn,
 * with a poll() of its socket each time (offer-resolver's system calls per
 * cache miss went from 8.4 to 7.2). poll() rather than epoll:
 * curl adds and removes a connection's socket around every call on it,
 * which costs epoll two system calls and poll none.
 *
 * A submit wakes the thread (an eventfd, also in the poll set) only when
 * it sleeps with room for more calls, so under load most submits cost a
 * lock and no system call. A call's timeout counts from its submit: what
 * is left of it when the call is handed to curl becomes curl's timeout,
 * and a call still waiting at its deadline, because max_in_flight calls
 * fill curl, is completed as timed out by the loop's next turn. */
#include "shared/plumbing/http_loop.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/http_curl.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define IDLE_HANDLES_MAX 64 /* easy handles kept for reuse */
#define POLL_MS 1000

typedef struct call {
    struct call *prev, *next; /* in the waiting list, then the live list */
    char *url;
    struct curl_slist *headers;
    char *body; /* a POST's, copied; NULL for a GET */
    size_t body_len;
    int64_t deadline_ms; /* monotonic */
    http_loop_done_fn done;
    void *arg;
    CURL *easy; /* while curl has it */
    http_result res;
    char correlator[CORRELATOR_SIZE];
} call;

struct http_loop {
    char name[32];
    long max_in_flight, max_waiting;
    CURLM *multi;
    int wake_fd; /* eventfd: a submit or the stop wakes the thread's poll() */
    pthread_t thread;
    atomic_long pending; /* submitted, not yet completed */

    pthread_mutex_t mu;
    call *waiting, *waiting_tail; /* under mu, oldest first */
    long n_waiting;               /* under mu */
    int sleeping;                 /* under mu: the thread polls with room for more */
    int stopping;                 /* under mu */

    /* The loop's thread only. */
    call *live; /* handed to curl */
    long in_flight;
    CURL *idle[IDLE_HANDLES_MAX];
    int n_idle;
    /* What poll() watches: [0] is wake_fd, then the sockets curl asked
     * for (on_socket), each assigned its index as curl's socketp. */
    struct pollfd *fds;
    int n_fds, cap_fds;
    int64_t timer_ms; /* curl's next timeout (monotonic); -1: none */
};

static void call_free(call *c) {
    free(c->url);
    free(c->body);
    curl_slist_free_all(c->headers);
    free(c);
}

/* Runs c's done function and frees c (not its body: done owns that). */
static void complete(http_loop *l, call *c) {
    correlator_set(c->correlator);
    c->done(c->arg, &c->res);
    correlator_clear();
    call_free(c);
    atomic_fetch_sub(&l->pending, 1);
}

/* Completes a call curl never had, with status 0 and why. */
static void complete_unsent(http_loop *l, call *c, const char *why, int timed_out) {
    memset(&c->res, 0, sizeof c->res);
    snprintf(c->res.error, sizeof c->res.error, "%s", why);
    c->res.timed_out = timed_out;
    complete(l, c);
}

static void live_unlink(http_loop *l, call *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        l->live = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Takes c's easy handle back from curl, keeping it for reuse. */
static void give_back(http_loop *l, call *c) {
    curl_multi_remove_handle(l->multi, c->easy);
    /* The next call may be a GET: no pointer to this call's body stays. */
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, -1L);
    if (l->n_idle < IDLE_HANDLES_MAX)
        l->idle[l->n_idle++] = c->easy;
    else
        curl_easy_cleanup(c->easy);
    c->easy = NULL;
    live_unlink(l, c);
    l->in_flight--;
}

/* Hands c to curl with what is left of its timeout. */
static void start(http_loop *l, call *c) {
    long left = (long)(c->deadline_ms - mono_ms());
    if (left <= 0) {
        complete_unsent(l, c, "timed out before it was sent", 1);
        return;
    }
    CURL *h = l->n_idle ? l->idle[--l->n_idle] : curl_easy_init();
    if (!h) {
        complete_unsent(l, c, "out of memory", 0);
        return;
    }
    http_curl_prepare(h, c->url, c->headers, left, &c->res);
    if (c->body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)c->body_len);
    } else
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_PRIVATE, c);
    if (curl_multi_add_handle(l->multi, h) != CURLM_OK) {
        curl_easy_cleanup(h);
        complete_unsent(l, c, "cannot start the call", 0);
        return;
    }
    c->easy = h;
    c->prev = NULL;
    c->next = l->live;
    if (l->live) l->live->prev = c;
    l->live = c;
    l->in_flight++;
}

/* Completes the calls curl has finished. */
static void reap(http_loop *l) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(l->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        call *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        CURLcode rc = m->data.result; /* m is gone after the handle is removed */
        http_curl_finish(c->easy, rc, &c->res);
        give_back(l, c);
        complete(l, c);
    }
}

/* Takes the calls there is room for off the waiting list; sets *stopping.
 * Marks the thread sleeping when it will poll with room for more. */
static call *take_waiting(http_loop *l, int *stopping) {
    pthread_mutex_lock(&l->mu);
    *stopping = l->stopping;
    call *first = l->waiting, *last = NULL;
    long room = l->max_in_flight - l->in_flight, n = 0;
    for (call *c = first; c && n < room; c = c->next) {
        last = c;
        n++;
    }
    if (last) {
        l->waiting = last->next;
        if (!l->waiting) l->waiting_tail = NULL;
        last->next = NULL;
        l->n_waiting -= n;
    } else
        first = NULL;
    pthread_mutex_unlock(&l->mu);
    return first;
}

/* Completes the waiting calls whose deadline has passed (while the
 * calls in curl fill max_in_flight, the waiting ones are not started).
 * Returns the milliseconds until the next waiting call's deadline, at
 * most POLL_MS. */
static long expire_waiting(http_loop *l) {
    int64_t now = mono_ms(), next = now + POLL_MS;
    call *expired = NULL, **tail = &expired;
    pthread_mutex_lock(&l->mu);
    call *prev = NULL;
    for (call *c = l->waiting; c;) {
        call *following = c->next;
        if (c->deadline_ms <= now) {
            if (prev)
                prev->next = following;
            else
                l->waiting = following;
            if (l->waiting_tail == c) l->waiting_tail = prev;
            l->n_waiting--;
            c->next = NULL;
            *tail = c;
            tail = &c->next;
        } else {
            if (c->deadline_ms < next) next = c->deadline_ms;
            prev = c;
        }
        c = following;
    }
    pthread_mutex_unlock(&l->mu);
    while (expired) {
        call *c = expired;
        expired = c->next;
        complete_unsent(l, c, "timed out before it was sent", 1);
    }
    return (long)(next - now);
}

/* CURLMOPT_SOCKETFUNCTION: curl wants socket s watched for what, or no
 * more (CURL_POLL_REMOVE). slot is s's index in l->fds, 0 when s is not
 * watched yet (index 0 is the eventfd). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *slot_ptr) {
    (void)easy;
    http_loop *l = arg;
    int slot = (int)(intptr_t)slot_ptr;
    if (what == CURL_POLL_REMOVE) {
        if (slot <= 0 || slot >= l->n_fds) return 0;
        int last = --l->n_fds;
        if (slot != last) { /* the last one moves into the hole */
            l->fds[slot] = l->fds[last];
            curl_multi_assign(l->multi, l->fds[slot].fd, (void *)(intptr_t)slot);
        }
        return 0;
    }
    short events =
        (short)((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0));
    if (slot <= 0) {
        if (l->n_fds == l->cap_fds) {
            int cap = l->cap_fds * 2;
            struct pollfd *fds = realloc(l->fds, (size_t)cap * sizeof *fds);
            if (!fds) {
                log_error("%s: out of memory watching a socket", l->name);
                return -1; /* curl fails the transfer */
            }
            l->fds = fds;
            l->cap_fds = cap;
        }
        slot = l->n_fds++;
        l->fds[slot] = (struct pollfd){.fd = s};
        curl_multi_assign(l->multi, s, (void *)(intptr_t)slot);
    }
    l->fds[slot].events = events;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl's next timeout is in timeout_ms (-1: none). */
static int on_timer(CURLM *multi, long timeout_ms, void *arg) {
    (void)multi;
    http_loop *l = arg;
    l->timer_ms = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
    return 0;
}

/* Lets curl handle its timeout when it is due: new transfers start, late
 * ones time out. */
static void run_timer(http_loop *l) {
    if (l->timer_ms < 0 || l->timer_ms > mono_ms()) return;
    int running;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    /* curl calls on_timer only when its next timeout changes; one that
     * stays due is tried again in a millisecond, not in a busy loop. */
    if (l->timer_ms >= 0 && l->timer_ms <= mono_ms()) l->timer_ms = mono_ms() + 1;
}

/* Tells curl which of its sockets poll() found ready. The callbacks change
 * l->fds meanwhile, so the ready ones are copied out first. */
static void run_ready_sockets(http_loop *l, int n_ready) {
    struct pollfd ready[64];
    while (n_ready > 0) {
        int n = 0;
        for (int i = 1; i < l->n_fds && n < (int)(sizeof ready / sizeof ready[0]); i++)
            if (l->fds[i].revents) {
                ready[n++] = l->fds[i];
                l->fds[i].revents = 0;
            }
        if (n == 0) return;
        n_ready -= n;
        for (int i = 0; i < n; i++) {
            int mask = (ready[i].revents & POLLIN ? CURL_CSELECT_IN : 0) |
                       (ready[i].revents & POLLOUT ? CURL_CSELECT_OUT : 0) |
                       (ready[i].revents & (POLLERR | POLLHUP | POLLNVAL) ? CURL_CSELECT_ERR : 0);
            int running;
            curl_multi_socket_action(l->multi, ready[i].fd, mask, &running);
        }
    }
}

/* Sleeps in poll() for at most wait_ms, or less when curl's timeout comes
 * first, then lets curl handle the sockets found ready. */
static void wait_and_run(http_loop *l, long wait_ms) {
    if (l->timer_ms >= 0) {
        long until_timer = (long)(l->timer_ms - mono_ms());
        if (until_timer < wait_ms) wait_ms = until_timer > 0 ? until_timer : 0;
    }
    int n = poll(l->fds, (nfds_t)l->n_fds, (int)wait_ms);
    if (n < 0) {
        if (errno != EINTR) log_warn("%s: poll: %s", l->name, strerror(errno));
        return;
    }
    if (n > 0 && l->fds[0].revents) {
        uint64_t count;
        if (read(l->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
            log_warn("%s: reading its eventfd: %s", l->name, strerror(errno));
        l->fds[0].revents = 0;
        n--;
    }
    run_ready_sockets(l, n);
}

static void *run(void *arg) {
    http_loop *l = arg;
    service_thread_name("%s", l->name); /* top and perf show it */
    int stopping = 0;
    for (;;) {
        call *batch = take_waiting(l, &stopping);
        if (stopping) {
            /* Put back what was taken; completed below with the rest. */
            pthread_mutex_lock(&l->mu);
            if (batch) {
                call *tail = batch;
                while (tail->next) tail = tail->next;
                tail->next = l->waiting;
                if (!l->waiting) l->waiting_tail = tail;
                l->waiting = batch;
            }
            pthread_mutex_unlock(&l->mu);
            break;
        }
        while (batch) {
            call *c = batch;
            batch = c->next;
            c->next = NULL;
            start(l, c);
        }
        run_timer(l);
        reap(l);
        pthread_mutex_lock(&l->mu);
        int more = l->waiting != NULL && l->in_flight < l->max_in_flight;
        l->sleeping = !more && l->in_flight < l->max_in_flight;
        pthread_mutex_unlock(&l->mu);
        if (more) continue;
        /* Full: the waiting calls still time out on their own. */
        long wait_ms = l->in_flight >= l->max_in_flight ? expire_waiting(l) : POLL_MS;
        wait_and_run(l, wait_ms > 0 ? wait_ms : 1);
        pthread_mutex_lock(&l->mu);
        l->sleeping = 0;
        pthread_mutex_unlock(&l->mu);
        reap(l);
    }
    /* Stopping: every call not completed is completed now. */
    while (l->live) {
        call *c = l->live;
        give_back(l, c);
        http_result_free(&c->res);
        complete_unsent(l, c, "stopped", 0);
    }
    pthread_mutex_lock(&l->mu);
    call *waiting = l->waiting;
    l->waiting = l->waiting_tail = NULL;
    l->n_waiting = 0;
    pthread_mutex_unlock(&l->mu);
    while (waiting) {
        call *c = waiting;
        waiting = c->next;
        complete_unsent(l, c, "stopped", 0);
    }
    return NULL;
}

http_loop *http_loop_start(const http_loop_opts *opts, char *err, size_t errlen) {
    http_loop *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(l->name, sizeof l->name, "%s", opts && opts->name ? opts->name : "http-loop");
    long per_host = opts && opts->max_host_connections > 0 ? opts->max_host_connections : 64;
    l->max_in_flight = opts && opts->max_in_flight > 0 ? opts->max_in_flight : 1024;
    l->max_waiting = opts && opts->max_waiting > 0 ? opts->max_waiting : 4096;
    pthread_mutex_init(&l->mu, NULL);
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->wake_fd < 0) {
        snprintf(err, errlen, "%s: cannot make its eventfd: %s", l->name, strerror(errno));
        goto fail;
    }
    l->cap_fds = 16;
    l->fds = malloc((size_t)l->cap_fds * sizeof *l->fds);
    if (!l->fds) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    l->fds[0] = (struct pollfd){.fd = l->wake_fd, .events = POLLIN};
    l->n_fds = 1;
    l->timer_ms = -1;
    l->multi = curl_multi_init();
    if (!l->multi) {
        snprintf(err, errlen, "%s: cannot create a curl multi handle", l->name);
        goto fail;
    }
    curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
    /* curl's default keeps 4 idle connections per easy handle in use at
     * the time, so when the calls in flight ebb it closes connections it
     * opens again a moment later (a connect and a close per call in the
     * profile). Keep as many as may be busy. */
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, l->max_in_flight);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    int rc = pthread_create(&l->thread, NULL, run, l);
    if (rc) {
        snprintf(err, errlen, "%s: cannot start its thread: %s", l->name, strerror(rc));
        goto fail;
    }
    return l;
fail:
    if (l->multi) curl_multi_cleanup(l->multi);
    if (l->wake_fd >= 0) close(l->wake_fd);
    free(l->fds);
    pthread_mutex_destroy(&l->mu);
    free(l);
    return NULL;
}

static void wake_thread(http_loop *l) {
    uint64_t one = 1;
    if (write(l->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("%s: cannot wake its thread: %s", l->name, strerror(errno));
}

/* A GET when body is NULL, else a POST of body (copied). */
static int submit(http_loop *l, const char *url, const char *const *headers,
                  const char *content_type, const char *body, size_t body_len, long timeout_ms,
                  http_loop_done_fn done, void *arg) {
    call *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->url = strdup(url);
    c->headers = http_curl_headers(headers, content_type);
    if (body) {
        c->body = malloc(body_len ? body_len : 1);
        if (c->body) memcpy(c->body, body, body_len);
        c->body_len = body_len;
    }
    if (!c->url || !c->headers || (body && !c->body)) {
        call_free(c);
        return -1;
    }
    c->deadline_ms = mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);
    c->done = done;
    c->arg = arg;
    correlator_copy_current(c->correlator);
    pthread_mutex_lock(&l->mu);
    if (l->stopping || l->n_waiting >= l->max_waiting) {
        pthread_mutex_unlock(&l->mu);
        call_free(c);
        return -1;
    }
    if (l->waiting_tail)
        l->waiting_tail->next = c;
    else
        l->waiting = c;
    l->waiting_tail = c;
    l->n_waiting++;
    atomic_fetch_add(&l->pending, 1);
    int wake = l->sleeping;
    l->sleeping = 0;
    pthread_mutex_unlock(&l->mu);
    if (wake) wake_thread(l);
    return 0;
}

int http_loop_get(http_loop *l, const char *url, const char *const *headers, long timeout_ms,
                  http_loop_done_fn done, void *arg) {
    return submit(l, url, headers, NULL, NULL, 0, timeout_ms, done, arg);
}

int http_loop_post(http_loop *l, const char *url, const char *const *headers,
                   const char *content_type, const char *body, size_t body_len, long timeout_ms,
                   http_loop_done_fn done, void *arg) {
    return submit(l, url, headers, content_type, body ? body : "", body_len, timeout_ms, done, arg);
}

size_t http_loop_pending(http_loop *l) { return (size_t)atomic_load(&l->pending); }

void http_loop_stop(http_loop *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    pthread_mutex_unlock(&l->mu);
    wake_thread(l);
    pthread_join(l->thread, NULL);
    for (int i = 0; i < l->n_idle; i++) curl_easy_cleanup(l->idle[i]);
    curl_multi_cleanup(l->multi);
    close(l->wake_fd);
    free(l->fds);
    pthread_mutex_destroy(&l->mu);
    if (atomic_load(&l->pending)) log_warn("%s: calls left at stop", l->name);
    free(l);
}
