/* shared/plumbing/http_loop.c against an in-process server
 * (shared/plumbing/http_server.c on an ephemeral port) whose routes hold
 * their answers without holding a server thread (http_defer, answered
 * later from another thread or from another request's handler):
 *   /echo     answers at once with the id and the X-Test header it saw
 *   /method   answers at once with the method, Content-Type and body
 *   /missing  404 with a body
 *   /barrier  held until `barrier_n` of them have arrived, then all answered
 *   /slow     answered ~50 ms later by the test's answerer thread; the
 *             server records how many it held at once
 *   /hang     never answered until teardown
 * Nothing asserts a wall-clock duration: a loop that is wrong makes a call
 * time out, complete twice, complete out of order or break a bound. Works
 * with CK_FORK=no (every completion record is file-scope, and teardown
 * stops the loop before the server). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/plumbing/clock.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/http_loop.h"
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

#define MAX_CALLS 256
#define MAX_HELD 256
#define WAIT_LIMIT_MS 60000 /* a generous overall limit for completions */

/* ---- the fake server ---- */

typedef struct {
    http_request *req;
    char body[64];
    int64_t due_ms; /* /slow only */
} held_req;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* answerer wake-ups, and arrivals for waiters */
    int closing;       /* teardown: answer at once, defer nothing more */
    held_req barrier[MAX_HELD];
    int n_barrier;
    int barrier_n; /* release /barrier once this many are held */
    held_req hang[MAX_HELD];
    int n_hang;
    int hang_seen; /* /hang requests that ever arrived */
    held_req slow[MAX_HELD];
    int n_slow;
    int slow_held; /* /slow requests arrived and not yet answered */
    int slow_max;  /* the most slow_held ever was */
    int echo_seen;
    int stop_answerer;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static http_server *server;
static pthread_t answerer;
static char base[64];

static void query_id(http_request *req, char *out, size_t len) {
    const char *id = http_query(req, "id");
    snprintf(out, len, "id=%s", id ? id : "?");
}

static void *answerer_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&srv.mu);
    for (;;) {
        if (srv.stop_answerer) break;
        if (srv.n_slow == 0) {
            pthread_cond_wait(&srv.cv, &srv.mu);
            continue;
        }
        /* The earliest due one (they arrive in due order, but be safe). */
        int best = 0;
        for (int i = 1; i < srv.n_slow; i++)
            if (srv.slow[i].due_ms < srv.slow[best].due_ms) best = i;
        int64_t now = mono_ms();
        if (srv.slow[best].due_ms > now) {
            struct timespec ts;
            clock_deadline_in(&ts, (long)(srv.slow[best].due_ms - now));
            pthread_cond_timedwait(&srv.cv, &srv.mu, &ts);
            continue;
        }
        held_req h = srv.slow[best];
        srv.slow[best] = srv.slow[--srv.n_slow];
        /* Counted as released before the answer goes out, so the client
         * cannot start its next request on this connection before. */
        srv.slow_held--;
        pthread_mutex_unlock(&srv.mu);
        http_respond(h.req, 200, "text/plain", h.body, strlen(h.body));
        pthread_mutex_lock(&srv.mu);
    }
    /* Stopping: whatever is left gets its answer now. */
    held_req left[MAX_HELD];
    int n = srv.n_slow;
    memcpy(left, srv.slow, (size_t)n * sizeof left[0]);
    srv.n_slow = 0;
    srv.slow_held = 0;
    pthread_mutex_unlock(&srv.mu);
    for (int i = 0; i < n; i++) http_respond(left[i].req, 503, "text/plain", "stopping", 8);
    return NULL;
}

static void handle(void *app, http_request *req) {
    (void)app;
    const char *path = http_path(req);
    char body[128];
    if (strcmp(path, "/echo") == 0) {
        const char *x = http_header(req, "X-Test");
        char id[48];
        query_id(req, id, sizeof id);
        snprintf(body, sizeof body, "%s x-test=%s", id, x ? x : "-");
        pthread_mutex_lock(&srv.mu);
        srv.echo_seen++;
        pthread_mutex_unlock(&srv.mu);
        http_respond(req, 200, "text/plain", body, strlen(body));
        return;
    }
    if (strcmp(path, "/method") == 0) {
        size_t len = 0;
        const char *b = http_body(req, &len);
        const char *ct = http_header(req, "Content-Type");
        char said[160];
        snprintf(said, sizeof said, "%s ct=%s body=%.*s", http_method(req), ct ? ct : "-",
                 (int)(len < 64 ? len : 64), b ? b : "");
        http_respond(req, 200, "text/plain", said, strlen(said));
        return;
    }
    if (strcmp(path, "/missing") == 0) {
        http_respond(req, 404, "text/plain", "nothing here", 12);
        return;
    }
    held_req h = {.req = req};
    query_id(req, h.body, sizeof h.body);
    pthread_mutex_lock(&srv.mu);
    if (srv.closing) {
        pthread_mutex_unlock(&srv.mu);
        http_respond(req, 503, "text/plain", "closing", 7);
        return;
    }
    if (strcmp(path, "/barrier") == 0 && srv.n_barrier < MAX_HELD) {
        http_defer(req);
        srv.barrier[srv.n_barrier++] = h;
        held_req release[MAX_HELD];
        int n = 0;
        if (srv.n_barrier >= srv.barrier_n) {
            n = srv.n_barrier;
            memcpy(release, srv.barrier, (size_t)n * sizeof release[0]);
            srv.n_barrier = 0;
        }
        pthread_cond_broadcast(&srv.cv);
        pthread_mutex_unlock(&srv.mu);
        for (int i = 0; i < n; i++)
            http_respond(release[i].req, 200, "text/plain", release[i].body,
                         strlen(release[i].body));
        return;
    }
    if (strcmp(path, "/hang") == 0 && srv.n_hang < MAX_HELD) {
        http_defer(req);
        srv.hang[srv.n_hang++] = h;
        srv.hang_seen++;
        pthread_cond_broadcast(&srv.cv);
        pthread_mutex_unlock(&srv.mu);
        return;
    }
    if (strcmp(path, "/slow") == 0 && srv.n_slow < MAX_HELD) {
        http_defer(req);
        h.due_ms = mono_ms() + 50;
        srv.slow[srv.n_slow++] = h;
        if (++srv.slow_held > srv.slow_max) srv.slow_max = srv.slow_held;
        pthread_cond_broadcast(&srv.cv);
        pthread_mutex_unlock(&srv.mu);
        return;
    }
    pthread_mutex_unlock(&srv.mu);
    http_respond(req, 500, "text/plain", "unexpected", 10);
}

/* Waits (bounded) until the server has seen n /hang requests. */
static int wait_hang_seen(int n) {
    int64_t until = mono_ms() + WAIT_LIMIT_MS;
    pthread_mutex_lock(&srv.mu);
    while (srv.hang_seen < n && mono_ms() < until) {
        struct timespec ts;
        clock_deadline_in(&ts, 100);
        pthread_cond_timedwait(&srv.cv, &srv.mu, &ts);
    }
    int seen = srv.hang_seen;
    pthread_mutex_unlock(&srv.mu);
    return seen;
}

static int hang_seen(void) {
    pthread_mutex_lock(&srv.mu);
    int n = srv.hang_seen;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* ---- completions ---- */

typedef struct {
    int calls; /* times done ran for this call: must end 1 */
    long status;
    int timed_out;
    char error[256];
    char body[128];
    size_t body_len;
    char corr[CORRELATOR_SIZE];
    pthread_t thread;
    int order; /* 1 for the first completion of the test, ... */
} call_rec;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    call_rec rec[MAX_CALLS];
    int completed;
    int resubmit_rc; /* the submit made from inside done (reentrant case) */
} done_state = {.mu = PTHREAD_MUTEX_INITIALIZER};

static http_loop *loop;

static void on_done(void *arg, http_result *res) {
    call_rec *r = arg;
    pthread_mutex_lock(&done_state.mu);
    r->calls++;
    r->status = res->status;
    r->timed_out = res->timed_out;
    snprintf(r->error, sizeof r->error, "%s", res->error);
    snprintf(r->body, sizeof r->body, "%s", res->body ? res->body : "(null)");
    r->body_len = res->body_len;
    snprintf(r->corr, sizeof r->corr, "%s", correlator_current());
    r->thread = pthread_self();
    r->order = ++done_state.completed;
    pthread_cond_broadcast(&done_state.cv);
    pthread_mutex_unlock(&done_state.mu);
    http_result_free(res);
}

/* Waits (bounded) for n completions in all; returns how many there were. */
static int wait_completed(int n) {
    int64_t until = mono_ms() + WAIT_LIMIT_MS;
    pthread_mutex_lock(&done_state.mu);
    while (done_state.completed < n && mono_ms() < until) {
        struct timespec ts;
        clock_deadline_in(&ts, 100);
        pthread_cond_timedwait(&done_state.cv, &done_state.mu, &ts);
    }
    int got = done_state.completed;
    pthread_mutex_unlock(&done_state.mu);
    return got;
}

/* Waits (bounded) until one call has completed. */
static void wait_call(call_rec *r) {
    int64_t until = mono_ms() + WAIT_LIMIT_MS;
    pthread_mutex_lock(&done_state.mu);
    while (r->calls == 0 && mono_ms() < until) {
        struct timespec ts;
        clock_deadline_in(&ts, 100);
        pthread_cond_timedwait(&done_state.cv, &done_state.mu, &ts);
    }
    pthread_mutex_unlock(&done_state.mu);
}

/* Waits (bounded) for http_loop_pending to reach 0 once everything
 * completed (the count may drop just after the last done returned). */
static size_t wait_pending_zero(void) {
    int64_t until = mono_ms() + WAIT_LIMIT_MS;
    size_t p;
    while ((p = http_loop_pending(loop)) != 0 && mono_ms() < until) clock_sleep_ms(5);
    return p;
}

static call_rec snapshot(int i) {
    pthread_mutex_lock(&done_state.mu);
    call_rec r = done_state.rec[i];
    pthread_mutex_unlock(&done_state.mu);
    return r;
}

static void start_loop(long max_host, long max_in_flight, long max_waiting) {
    char err[256] = "";
    http_loop_opts o = {.name = "test",
                        .max_host_connections = max_host,
                        .max_in_flight = max_in_flight,
                        .max_waiting = max_waiting};
    loop = http_loop_start(&o, err, sizeof err);
    ck_assert_msg(loop != NULL, "http_loop_start: %s", err);
}

static void url(char *out, size_t len, const char *path, int id) {
    snprintf(out, len, "%s%s?id=%d", base, path, id);
}

static int submit(const char *path, int id, const char *const *headers, long timeout_ms) {
    char u[128];
    url(u, sizeof u, path, id);
    return http_loop_get(loop, u, headers, timeout_ms, on_done, &done_state.rec[id]);
}

/* ---- fixture ---- */

static void setup(void) {
    pthread_mutex_lock(&srv.mu);
    srv.closing = 0;
    srv.n_barrier = srv.n_hang = srv.n_slow = 0;
    srv.barrier_n = 1 << 30;
    srv.hang_seen = srv.slow_held = srv.slow_max = srv.echo_seen = 0;
    srv.stop_answerer = 0;
    pthread_mutex_unlock(&srv.mu);
    pthread_mutex_lock(&done_state.mu);
    memset(done_state.rec, 0, sizeof done_state.rec);
    done_state.completed = 0;
    done_state.resubmit_rc = 99;
    pthread_mutex_unlock(&done_state.mu);
    correlator_clear();
    ck_assert_int_eq(pthread_create(&answerer, NULL, answerer_main, NULL), 0);
    char err[256] = "";
    http_server_opts opts = {.bind_addr = "127.0.0.1", .port = 0, .threads = 2, .handler = handle};
    server = http_server_start(&opts, err, sizeof err);
    ck_assert_msg(server != NULL, "server: %s", err);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", http_server_port(server));
}

static void teardown(void) {
    /* The loop first: no request reaches the server after this. */
    http_loop_stop(loop);
    loop = NULL;
    /* Then every held answer, so http_server_stop does not wait for one. */
    held_req left[2 * MAX_HELD];
    int n = 0;
    pthread_mutex_lock(&srv.mu);
    srv.closing = 1;
    for (int i = 0; i < srv.n_barrier; i++) left[n++] = srv.barrier[i];
    for (int i = 0; i < srv.n_hang; i++) left[n++] = srv.hang[i];
    srv.n_barrier = srv.n_hang = 0;
    srv.stop_answerer = 1;
    pthread_cond_broadcast(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
    for (int i = 0; i < n; i++) http_respond(left[i].req, 503, "text/plain", "teardown", 8);
    pthread_join(answerer, NULL);
    http_server_stop(server);
    server = NULL;
    correlator_clear();
}

/* ---- 1. many calls at once on one thread ---- */

#define BARRIER_N 32

START_TEST(concurrent_without_thread_per_call) {
    pthread_mutex_lock(&srv.mu);
    srv.barrier_n = BARRIER_N;
    pthread_mutex_unlock(&srv.mu);
    start_loop(0, 0, 0);
    for (int i = 0; i < BARRIER_N; i++) ck_assert_int_eq(submit("/barrier", i, NULL, 10000), 0);
    /* Nothing is answered before all 32 are held at once by the server: a
     * loop that ran fewer at a time would see its calls time out. (32
     * sockets: the loop's poll set grows past its first 16 slots.) */
    ck_assert_int_eq(wait_completed(BARRIER_N), BARRIER_N);
    pthread_t loop_thread = snapshot(0).thread;
    ck_assert(!pthread_equal(loop_thread, pthread_self()));
    for (int i = 0; i < BARRIER_N; i++) {
        call_rec r = snapshot(i);
        char want[32];
        snprintf(want, sizeof want, "id=%d", i);
        ck_assert_int_eq(r.calls, 1);
        ck_assert_msg(r.status == 200, "call %d: status %ld (%s)", i, r.status, r.error);
        ck_assert_int_eq(r.timed_out, 0);
        ck_assert_str_eq(r.body, want);
        ck_assert_uint_eq(r.body_len, strlen(want));
        /* Every completion ran on the one loop thread. */
        ck_assert(pthread_equal(r.thread, loop_thread));
    }
    ck_assert_uint_eq(wait_pending_zero(), 0);
}
END_TEST

/* ---- 2. timeouts ---- */

START_TEST(timeout_without_answer) {
    start_loop(0, 0, 0);
    ck_assert_int_eq(submit("/hang", 0, NULL, 300), 0);
    wait_call(&done_state.rec[0]);
    call_rec r = snapshot(0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.timed_out, 1);
    ck_assert_str_ne(r.error, "");
    ck_assert_uint_eq(wait_pending_zero(), 0);
    /* Still exactly once after a while (the held request is answered only
     * at teardown, after the loop stopped). */
    clock_sleep_ms(200);
    ck_assert_int_eq(snapshot(0).calls, 1);
}
END_TEST

/* The timeout counts from the submit, waiting included: a call queued
 * behind a hung one (max_in_flight 1) times out on its own, first, and
 * never reaches the server. */
START_TEST(timeout_counts_waiting) {
    start_loop(0, 1, 0);
    ck_assert_int_eq(submit("/hang", 0, NULL, 20000), 0);
    ck_assert_int_eq(wait_hang_seen(1), 1);
    ck_assert_int_eq(submit("/hang", 1, NULL, 300), 0);
    wait_call(&done_state.rec[1]);
    call_rec waiting = snapshot(1), first = snapshot(0);
    ck_assert_int_eq(waiting.calls, 1);
    ck_assert_int_eq(waiting.status, 0);
    ck_assert_int_eq(waiting.timed_out, 1);
    ck_assert_msg(waiting.order == 1 && first.calls == 0,
                  "the waiting call (timeout 300 ms) completed after the hung call ahead of it "
                  "(timeout 20000 ms): order %d, error \"%s\"",
                  waiting.order, waiting.error);
    ck_assert_int_eq(hang_seen(), 1);
    /* The first completes at teardown's stop. */
}
END_TEST

/* ---- 3. connections per host ---- */

#define SLOW_N 10

START_TEST(max_host_connections_bound) {
    start_loop(2, 0, 0);
    for (int i = 0; i < SLOW_N; i++) ck_assert_int_eq(submit("/slow", i, NULL, 20000), 0);
    ck_assert_int_eq(wait_completed(SLOW_N), SLOW_N);
    for (int i = 0; i < SLOW_N; i++) {
        call_rec r = snapshot(i);
        char want[32];
        snprintf(want, sizeof want, "id=%d", i);
        ck_assert_int_eq(r.calls, 1);
        ck_assert_msg(r.status == 200, "call %d: status %ld (%s)", i, r.status, r.error);
        ck_assert_str_eq(r.body, want);
    }
    pthread_mutex_lock(&srv.mu);
    int max = srv.slow_max;
    pthread_mutex_unlock(&srv.mu);
    fprintf(stderr, "max_host_connections_bound: the server held at most %d at once\n", max);
    ck_assert_int_ge(max, 1);
    ck_assert_int_le(max, 2);
    ck_assert_uint_eq(wait_pending_zero(), 0);
}
END_TEST

/* ---- 4. in-flight and waiting bounds, stop ---- */

START_TEST(bounds_and_stop) {
    start_loop(0, 1, 2);
    /* The first is in curl (the server holds it) before the others, so
     * the bound holds however the loop counts a call not yet handed on. */
    ck_assert_int_eq(submit("/hang", 0, NULL, 60000), 0);
    ck_assert_int_eq(wait_hang_seen(1), 1);
    ck_assert_int_eq(submit("/hang", 1, NULL, 60000), 0);
    ck_assert_int_eq(submit("/hang", 2, NULL, 60000), 0);
    ck_assert_int_eq(submit("/hang", 3, NULL, 60000), -1);
    ck_assert_uint_eq(http_loop_pending(loop), 3);
    /* max_in_flight 1: the waiting two never reach the server meanwhile
     * (a correct loop never sends them, so this wait cannot flake). */
    clock_sleep_ms(300);
    ck_assert_int_eq(hang_seen(), 1);
    ck_assert_int_eq(snapshot(0).calls + snapshot(1).calls + snapshot(2).calls, 0);

    http_loop_stop(loop);
    loop = NULL;
    for (int i = 0; i < 3; i++) {
        call_rec r = snapshot(i);
        ck_assert_msg(r.calls == 1, "call %d completed %d times", i, r.calls);
        ck_assert_int_eq(r.status, 0);
        ck_assert_msg(strstr(r.error, "stopped") != NULL, "call %d: error \"%s\"", i, r.error);
    }
    ck_assert_int_eq(snapshot(3).calls, 0); /* refused: never done */
    clock_sleep_ms(100);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(snapshot(i).calls, 1);
    ck_assert_int_eq(snapshot(3).calls, 0);
    http_loop_stop(NULL); /* a no-op */
}
END_TEST

/* ---- 5. request ids ---- */

START_TEST(request_id_travels) {
    start_loop(0, 0, 0);
    correlator_set("abc-123");
    ck_assert_int_eq(submit("/echo", 0, NULL, 10000), 0);
    correlator_set("def-456");
    ck_assert_int_eq(submit("/echo", 1, NULL, 10000), 0);
    correlator_clear();
    ck_assert_int_eq(submit("/echo", 2, NULL, 10000), 0);
    ck_assert_str_eq(correlator_current(), "");
    ck_assert_int_eq(wait_completed(3), 3);
    call_rec a = snapshot(0), b = snapshot(1), c = snapshot(2);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(a.corr, "abc-123");
    ck_assert_int_eq(b.status, 200);
    ck_assert_str_eq(b.corr, "def-456");
    /* Submitted without one: none current, not the previous call's. */
    ck_assert_int_eq(c.status, 200);
    ck_assert_str_eq(c.corr, "");
}
END_TEST

/* ---- 6. headers, status and bodies, errors ---- */

static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

START_TEST(headers_statuses_errors) {
    start_loop(0, 0, 0);
    /* The header and the URL are the caller's buffers, reused right after
     * the submit: the loop must have copied them. */
    char header[32] = "X-Test: yes";
    const char *headers[] = {header, NULL};
    char u[128];
    url(u, sizeof u, "/echo", 0);
    ck_assert_int_eq(http_loop_get(loop, u, headers, 10000, on_done, &done_state.rec[0]), 0);
    snprintf(header, sizeof header, "X-Test: overwritten");
    url(u, sizeof u, "/missing", 99);

    ck_assert_int_eq(submit("/missing", 1, NULL, 10000), 0);
    char down[64];
    snprintf(down, sizeof down, "http://127.0.0.1:%d/nowhere", closed_port());
    ck_assert_int_eq(http_loop_get(loop, down, NULL, 10000, on_done, &done_state.rec[2]), 0);
    ck_assert_int_eq(wait_completed(3), 3);

    call_rec echo = snapshot(0), missing = snapshot(1), refused = snapshot(2);
    ck_assert_int_eq(echo.calls, 1);
    ck_assert_int_eq(echo.status, 200);
    ck_assert_str_eq(echo.body, "id=0 x-test=yes");
    ck_assert_int_eq(missing.calls, 1);
    ck_assert_int_eq(missing.status, 404);
    ck_assert_str_eq(missing.body, "nothing here");
    ck_assert_uint_eq(missing.body_len, 12);
    ck_assert_int_eq(refused.calls, 1);
    ck_assert_int_eq(refused.status, 0);
    ck_assert_int_eq(refused.timed_out, 0);
    ck_assert_str_ne(refused.error, "");
    ck_assert_uint_eq(wait_pending_zero(), 0);
}
END_TEST

/* ---- 7. submits from several threads ---- */

#define SUBMITTERS 4
#define PER_SUBMITTER 50

static pthread_barrier_t submit_barrier;
static atomic_int submit_failures;

static void *submitter(void *arg) {
    int t = (int)(intptr_t)arg;
    pthread_barrier_wait(&submit_barrier);
    for (int i = 0; i < PER_SUBMITTER; i++) {
        int id = t * PER_SUBMITTER + i;
        if (submit("/echo", id, NULL, 20000) != 0) atomic_fetch_add(&submit_failures, 1);
    }
    return NULL;
}

START_TEST(submits_from_threads) {
    start_loop(0, 0, 0);
    atomic_store(&submit_failures, 0);
    pthread_barrier_init(&submit_barrier, NULL, SUBMITTERS);
    pthread_t th[SUBMITTERS];
    for (int t = 0; t < SUBMITTERS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, submitter, (void *)(intptr_t)t), 0);
    for (int t = 0; t < SUBMITTERS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&submit_barrier);
    ck_assert_int_eq(atomic_load(&submit_failures), 0);
    const int total = SUBMITTERS * PER_SUBMITTER;
    ck_assert_int_eq(wait_completed(total), total);
    for (int i = 0; i < total; i++) {
        call_rec r = snapshot(i);
        char want[48];
        snprintf(want, sizeof want, "id=%d x-test=-", i);
        ck_assert_msg(r.calls == 1, "call %d completed %d times", i, r.calls);
        ck_assert_msg(r.status == 200, "call %d: status %ld (%s)", i, r.status, r.error);
        ck_assert_str_eq(r.body, want);
    }
    ck_assert_uint_eq(wait_pending_zero(), 0);
    clock_sleep_ms(100);
    pthread_mutex_lock(&done_state.mu);
    ck_assert_int_eq(done_state.completed, total); /* none twice, late */
    pthread_mutex_unlock(&done_state.mu);
    pthread_mutex_lock(&srv.mu);
    ck_assert_int_eq(srv.echo_seen, total);
    pthread_mutex_unlock(&srv.mu);
}
END_TEST

/* ---- 8. a submit from inside done (the loop's own thread) ---- */

static void on_done_resubmit(void *arg, http_result *res) {
    (void)arg;
    http_result_free(res);
    char u[128];
    url(u, sizeof u, "/echo", 1);
    int rc = http_loop_get(loop, u, NULL, 10000, on_done, &done_state.rec[1]);
    pthread_mutex_lock(&done_state.mu);
    done_state.resubmit_rc = rc;
    done_state.rec[0].calls++;
    pthread_cond_broadcast(&done_state.cv);
    pthread_mutex_unlock(&done_state.mu);
}

START_TEST(submit_from_done) {
    start_loop(0, 0, 0);
    char u[128];
    url(u, sizeof u, "/echo", 0);
    ck_assert_int_eq(http_loop_get(loop, u, NULL, 10000, on_done_resubmit, NULL), 0);
    wait_call(&done_state.rec[1]);
    call_rec first = snapshot(0), second = snapshot(1);
    pthread_mutex_lock(&done_state.mu);
    int rc = done_state.resubmit_rc;
    pthread_mutex_unlock(&done_state.mu);
    ck_assert_int_eq(first.calls, 1);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(second.calls, 1);
    ck_assert_int_eq(second.status, 200);
    ck_assert_str_eq(second.body, "id=1 x-test=-");
}
END_TEST

/* ---- 9. POSTs, and a GET on the handle a POST used ---- */

START_TEST(post_then_get_on_one_handle) {
    start_loop(0, 1, 0); /* one transfer at a time: every call reuses one easy handle */
    char u[128];
    snprintf(u, sizeof u, "%s/method", base);
    char body[32] = "{\"a\":1}";
    ck_assert_int_eq(http_loop_post(loop, u, NULL, "application/json", body, strlen(body), 10000,
                                    on_done, &done_state.rec[0]),
                     0);
    snprintf(body, sizeof body, "overwritten"); /* the loop must have copied it */
    ck_assert_int_eq(http_loop_get(loop, u, NULL, 10000, on_done, &done_state.rec[1]), 0);
    ck_assert_int_eq(
        http_loop_post(loop, u, NULL, "text/plain", "", 0, 10000, on_done, &done_state.rec[2]), 0);
    ck_assert_int_eq(wait_completed(3), 3);
    call_rec post = snapshot(0), get = snapshot(1), empty = snapshot(2);
    ck_assert_int_eq(post.status, 200);
    ck_assert_str_eq(post.body, "POST ct=application/json body={\"a\":1}");
    ck_assert_int_eq(get.status, 200);
    ck_assert_str_eq(get.body, "GET ct=- body=");
    ck_assert_int_eq(empty.status, 200);
    ck_assert_str_eq(empty.body, "POST ct=text/plain body=");
    /* Completed in the order submitted: one transfer at a time. */
    ck_assert_int_lt(post.order, get.order);
    ck_assert_int_lt(get.order, empty.order);
}
END_TEST

/* ---- 10. http_client on the loop: callers wait, the loop calls ---- */

#define CLIENT_THREADS 8
#define CLIENT_ROUNDS 20

static atomic_int client_wrong;

static void *client_main(void *arg) {
    int t = (int)(intptr_t)arg;
    http_client *hc = http_client_on_loop(loop);
    if (!hc) {
        atomic_fetch_add(&client_wrong, 1);
        return NULL;
    }
    for (int i = 0; i < CLIENT_ROUNDS; i++) {
        char u[128], body[48], want[160];
        snprintf(u, sizeof u, "%s/method", base);
        snprintf(body, sizeof body, "thread %d round %d", t, i);
        http_result r;
        int rc = http_post(hc, u, NULL, "text/plain", body, strlen(body), 20000, &r);
        snprintf(want, sizeof want, "POST ct=text/plain body=%s", body);
        if (rc != 0 || r.status != 200 || !r.body || strcmp(r.body, want) != 0)
            atomic_fetch_add(&client_wrong, 1);
        http_result_free(&r);
        url(u, sizeof u, "/echo", t * CLIENT_ROUNDS + i);
        rc = http_get(hc, u, NULL, 20000, &r);
        snprintf(want, sizeof want, "id=%d x-test=-", t * CLIENT_ROUNDS + i);
        if (rc != 0 || r.status != 200 || !r.body || strcmp(r.body, want) != 0)
            atomic_fetch_add(&client_wrong, 1);
        http_result_free(&r);
    }
    http_client_free(hc);
    return NULL;
}

START_TEST(client_on_loop) {
    start_loop(4, 0, 0); /* 8 callers share 4 connections */
    atomic_store(&client_wrong, 0);
    pthread_t th[CLIENT_THREADS];
    for (int t = 0; t < CLIENT_THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, client_main, (void *)(intptr_t)t), 0);
    for (int t = 0; t < CLIENT_THREADS; t++) pthread_join(th[t], NULL);
    ck_assert_int_eq(atomic_load(&client_wrong), 0);
    pthread_mutex_lock(&srv.mu);
    ck_assert_int_eq(srv.echo_seen, CLIENT_THREADS * CLIENT_ROUNDS);
    pthread_mutex_unlock(&srv.mu);

    /* As a client of its own answers: a 404 is an answer, a hang a timeout. */
    http_client *hc = http_client_on_loop(loop);
    ck_assert_ptr_nonnull(hc);
    char u[128];
    http_result r;
    url(u, sizeof u, "/missing", 1);
    ck_assert_int_eq(http_get(hc, u, NULL, 10000, &r), 0);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.body, "nothing here");
    http_result_free(&r);
    url(u, sizeof u, "/hang", 2);
    ck_assert_int_eq(http_get(hc, u, NULL, 200, &r), -1);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.timed_out, 1);
    ck_assert_ptr_null(r.body);
    http_client_free(hc);
    ck_assert_uint_eq(wait_pending_zero(), 0);
}
END_TEST

/* A full loop refuses at once; the waiting caller is told, not blocked. */
START_TEST(client_on_full_loop) {
    start_loop(0, 1, 1);
    char u[128];
    url(u, sizeof u, "/hang", 0);
    ck_assert_int_eq(submit("/hang", 0, NULL, 30000), 0); /* in curl */
    ck_assert_int_eq(wait_hang_seen(1), 1);
    ck_assert_int_eq(submit("/hang", 1, NULL, 30000), 0); /* waiting: the loop is full */
    http_client *hc = http_client_on_loop(loop);
    ck_assert_ptr_nonnull(hc);
    http_result r;
    url(u, sizeof u, "/echo", 2);
    ck_assert_int_eq(http_get(hc, u, NULL, 10000, &r), -1);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_ne(r.error, "");
    ck_assert_ptr_null(r.body);
    http_client_free(hc);
}
END_TEST

int main(void) {
    log_init("test_shared_http_loop");
    http_client_global_init();
    clock_cond_init(&srv.cv);
    clock_cond_init(&done_state.cv);
    Suite *s = suite_create("shared http loop");
    TCase *tc = tcase_create("http_loop");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, concurrent_without_thread_per_call);
    tcase_add_test(tc, timeout_without_answer);
    tcase_add_test(tc, timeout_counts_waiting);
    tcase_add_test(tc, max_host_connections_bound);
    tcase_add_test(tc, bounds_and_stop);
    tcase_add_test(tc, request_id_travels);
    tcase_add_test(tc, headers_statuses_errors);
    tcase_add_test(tc, submits_from_threads);
    tcase_add_test(tc, submit_from_done);
    tcase_add_test(tc, post_then_get_on_one_handle);
    tcase_add_test(tc, client_on_loop);
    tcase_add_test(tc, client_on_full_loop);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
