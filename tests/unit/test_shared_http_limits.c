/* shared/plumbing/http_server.c's connection limits (issue 16, item 4) and
 * how it spreads connections over its threads, on a real server on an
 * ephemeral loopback port, driven over raw sockets. The limits, under both
 * event loops (MILLOM_HTTP_EVENT_LOOP poll and epoll):
 *  - a bounded slowloris (three sockets sending a header byte every
 *    300 ms) is closed by the request timeout while other clients and the
 *    health probes are served;
 *  - an idle-socket flood from one address (300 sockets, per-address cap
 *    50) is cut at the cap, and another address (127.0.0.2) and its
 *    /healthz and /readyz are still served;
 *  - above the global soft cap ordinary requests get 503 and the health
 *    probes still 200;
 *  - at the limit itself a new connection is closed as it is accepted
 *    (millom_http_refused_total), and one is served again once a
 *    connection closed.
 * Spreading: 20 connections opened at once by another process are served
 * 10 by each of the server's 2 threads.
 * Every wait is bounded; nothing asserts how long something took. */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared/plumbing/clock.h"
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/metrics.h"
#include "tests/lib/raw_http.h"

#define MAX_HELD 64

/* The application: GET /hello answers at once; GET /hold defers until
 * release_held() answers every held request; GET /block holds its thread
 * until unblock(); GET /who answers at once and counts the requests each
 * thread served. */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static http_request *held[MAX_HELD];
static int n_held;

#define MAX_SERVING 8
static pthread_mutex_t who_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t serving[MAX_SERVING];
static int served_by[MAX_SERVING], n_serving;

static void count_serving_thread(void) {
    pthread_mutex_lock(&who_lock);
    int i = 0;
    while (i < n_serving && !pthread_equal(serving[i], pthread_self())) i++;
    if (i == n_serving && n_serving < MAX_SERVING) serving[n_serving++] = pthread_self();
    if (i < n_serving) served_by[i]++;
    pthread_mutex_unlock(&who_lock);
}

/* block_cond: made by main() with clock_cond_init (monotonic waits). */
static pthread_mutex_t block_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t block_cond;
static int n_blocked, unblocked;

/* Ready for a new /block: the tests run in one process under CK_FORK=no,
 * and an earlier test's server (stopped, so its blocked thread returned)
 * left unblocked set. */
static void block_reset(void) {
    pthread_mutex_lock(&block_lock);
    n_blocked = 0;
    unblocked = 0;
    pthread_mutex_unlock(&block_lock);
}

static void block_this_thread(void) {
    pthread_mutex_lock(&block_lock);
    n_blocked++;
    pthread_cond_broadcast(&block_cond);
    while (!unblocked) pthread_cond_wait(&block_cond, &block_lock);
    pthread_mutex_unlock(&block_lock);
}

/* 1 once a request blocked its thread (waits up to 5 s). */
static int wait_until_blocked(void) {
    struct timespec until;
    clock_deadline_in(&until, 5000);
    pthread_mutex_lock(&block_lock);
    while (!n_blocked && pthread_cond_timedwait(&block_cond, &block_lock, &until) == 0) {
    }
    int blocked = n_blocked;
    pthread_mutex_unlock(&block_lock);
    return blocked;
}

static void unblock(void) {
    pthread_mutex_lock(&block_lock);
    unblocked = 1;
    pthread_cond_broadcast(&block_cond);
    pthread_mutex_unlock(&block_lock);
}

static void handle(void *app, http_request *req) {
    (void)app;
    if (strcmp(http_path(req), "/who") == 0) count_serving_thread();
    if (strcmp(http_path(req), "/block") == 0) block_this_thread();
    if (strcmp(http_path(req), "/hold") == 0) {
        pthread_mutex_lock(&held_lock);
        if (n_held < MAX_HELD) {
            held[n_held++] = req;
            http_defer(req);
            pthread_mutex_unlock(&held_lock);
            return;
        }
        pthread_mutex_unlock(&held_lock);
    }
    http_respond(req, 200, "text/plain", "hello", 5);
}

static int held_count(void) {
    pthread_mutex_lock(&held_lock);
    int n = n_held;
    pthread_mutex_unlock(&held_lock);
    return n;
}

static void release_held(void) {
    pthread_mutex_lock(&held_lock);
    for (int i = 0; i < n_held; i++) http_respond(held[i], 200, "text/plain", "done", 4);
    n_held = 0;
    pthread_mutex_unlock(&held_lock);
}

/* The event loop of the servers start() starts: a loop test's index. */
static const char *event_loop = "poll";

static void use_event_loop(int i) { event_loop = i ? "epoll" : "poll"; }

static http_server *start(const char *timeout_s, const char *per_ip, const char *max,
                          const char *reserve) {
    setenv("MILLOM_HTTP_EVENT_LOOP", event_loop, 1);
    setenv("MILLOM_HTTP_HEADER_TIMEOUT_S", timeout_s, 1);
    setenv("MILLOM_HTTP_MAX_CONNECTIONS_PER_IP", per_ip, 1);
    setenv("MILLOM_HTTP_MAX_CONNECTIONS", max, 1);
    setenv("MILLOM_HTTP_HEALTH_RESERVE", reserve, 1);
    char err[256] = "";
    http_server_opts opts = {.bind_addr = "127.0.0.1", .port = 0, .threads = 2, .handler = handle};
    http_server *s = http_server_start(&opts, err, sizeof err);
    ck_assert_msg(s != NULL, "server: %s", err);
    return s;
}

static int get(const char *src, int port, const char *path) {
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
    return raw_exchange(src, port, req, (size_t)n, NULL, 0, 5000);
}

/* GET /hello from src after the test closed connections that held
 * limited slots: the server frees them only once it has seen the closes,
 * so this asks again for up to 100 times 50 ms. The last status. */
static int get_when_closes_are_seen(const char *src, int port) {
    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        status = get(src, port, "/hello");
        if (status != 200) clock_sleep_ms(50);
    }
    return status;
}

START_TEST(slowloris_is_closed_and_others_are_served) {
    use_event_loop(_i);
    http_server *s = start("1", "50", "100", "10");
    int port = http_server_port(s);
    const char slow[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa"
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int fds[3], closed[3] = {0};
    for (int i = 0; i < 3; i++) {
        fds[i] = raw_connect(NULL, port);
        ck_assert_int_ge(fds[i], 0);
    }
    /* One byte per socket every 300 ms: never idle, never complete. At
     * most 40 rounds (12 s), far beyond the 1 s timeout. */
    size_t pos = 0;
    int open = 3;
    for (int round = 0; round < 40 && open > 0; round++, pos++) {
        ck_assert_uint_lt(pos, sizeof slow - 1); /* the header never completes */
        for (int i = 0; i < 3; i++) {
            if (closed[i]) continue;
            if (send(fds[i], slow + pos, 1, MSG_NOSIGNAL) != 1 || raw_closed(fds[i], 0)) {
                closed[i] = 1;
                open--;
            }
        }
        if (round == 1) { /* meanwhile, others are served */
            ck_assert_int_eq(get(NULL, port, "/hello"), 200);
            ck_assert_int_eq(get("127.0.0.2", port, "/healthz"), 200);
            ck_assert_int_eq(get("127.0.0.2", port, "/readyz"), 200);
        }
        clock_sleep_ms(300);
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(closed[i], "slow socket %d is still open", i);
        close(fds[i]);
    }
    ck_assert_int_eq(get(NULL, port, "/hello"), 200);
    http_server_stop(s);
}
END_TEST

START_TEST(idle_flood_from_one_address_is_capped) {
    enum { FLOOD = 300, CAP = 50 };
    use_event_loop(_i);
    http_server *s = start("60", "50", "1000", "16");
    int port = http_server_port(s);
    static int fds[FLOOD];
    for (int i = 0; i < FLOOD; i++) {
        fds[i] = raw_connect("127.0.0.1", port);
        ck_assert_msg(fds[i] >= 0, "connect %d", i);
    }
    /* Another address is served, probes included. */
    ck_assert_int_eq(get("127.0.0.2", port, "/hello"), 200);
    ck_assert_int_eq(get("127.0.0.2", port, "/healthz"), 200);
    ck_assert_int_eq(get("127.0.0.3", port, "/readyz"), 200);
    /* The server closed every flood socket above the cap (bounded wait:
     * 20 passes of up to 250 ms per still-open socket at most). */
    int closed = 0;
    static int is_closed[FLOOD];
    memset(is_closed, 0, sizeof is_closed);
    for (int pass = 0; pass < 20 && closed < FLOOD - CAP; pass++)
        for (int i = 0; i < FLOOD && closed < FLOOD - CAP; i++)
            if (!is_closed[i] && raw_closed(fds[i], pass ? 5 : 0)) {
                is_closed[i] = 1;
                closed++;
            }
    ck_assert_int_eq(closed, FLOOD - CAP);
    /* ... and keeps the CAP it admitted (the request timeout is 60 s). */
    int still_open = 0;
    for (int i = 0; i < FLOOD; i++)
        if (!is_closed[i] && !raw_closed(fds[i], 0)) still_open++;
    ck_assert_int_eq(still_open, CAP);
    for (int i = 0; i < FLOOD; i++) close(fds[i]);
    /* The address's slots free once the server has seen the closes. */
    ck_assert_int_eq(get_when_closes_are_seen("127.0.0.1", port), 200);
    http_server_stop(s);
}
END_TEST

START_TEST(health_probes_keep_a_reserve_above_the_soft_cap) {
    enum { BUSY = 30 }; /* MAX 40 - RESERVE 10: the soft cap, exactly */
    use_event_loop(_i);
    http_server *s = start("60", "0", "40", "10");
    int port = http_server_port(s);
    int fds[BUSY];
    const char hold[] = "GET /hold HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for (int i = 0; i < BUSY; i++) {
        fds[i] = raw_connect(NULL, port);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(send(fds[i], hold, sizeof hold - 1, MSG_NOSIGNAL), (long)sizeof hold - 1);
    }
    for (int i = 0; i < 500 && held_count() < BUSY; i++) clock_sleep_ms(10);
    ck_assert_int_eq(held_count(), BUSY); /* one more connection is above the soft cap */
    char answer[1024];
    const char hello[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ck_assert_int_eq(raw_exchange(NULL, port, hello, sizeof hello - 1, answer, sizeof answer, 5000),
                     503);
    ck_assert_ptr_nonnull(strstr(answer, "SERVICE_UNAVAILABLE"));
    ck_assert_int_eq(get(NULL, port, "/healthz"), 200);
    ck_assert_int_eq(get(NULL, port, "/readyz"), 200);
    release_held();
    for (int i = 0; i < BUSY; i++) close(fds[i]);
    ck_assert_int_eq(get_when_closes_are_seen(NULL, port), 200);
    http_server_stop(s);
}
END_TEST

START_TEST(connections_at_the_limit_are_closed_at_accept) {
    enum { MAX = 40 };
    use_event_loop(_i);
    http_server *s = start("60", "0", "40", "10");
    int port = http_server_port(s);
    char labels[32];
    snprintf(labels, sizeof labels, "port=\"%d\"", port);
    metric *refused = metric_counter("millom_http_refused_total", "", labels);
    long refused_before = metric_value(refused); /* a port an earlier test had */
    block_reset();
    /* One worker blocked in the handler: the connections given to it wait
     * in its queue (handed over, not started), those given to the other
     * are started and wait for a request (60 s: below the soft cap). */
    int fds[MAX];
    const char block[] = "GET /block HTTP/1.1\r\nHost: localhost\r\n\r\n";
    fds[0] = raw_connect(NULL, port);
    ck_assert_int_ge(fds[0], 0);
    ck_assert_int_eq(send(fds[0], block, sizeof block - 1, MSG_NOSIGNAL), (long)sizeof block - 1);
    ck_assert_msg(wait_until_blocked(), "the handler was not entered");
    for (int i = 1; i < MAX; i++) {
        fds[i] = raw_connect(NULL, port);
        ck_assert_int_ge(fds[i], 0);
    }
    /* One more is closed unanswered (admitted, this probe would get 200). */
    ck_assert_int_eq(get(NULL, port, "/healthz"), 0);
    ck_assert_int_eq(metric_value(refused) - refused_before, 1);
    unblock();
    for (int i = 0; i < MAX; i++) close(fds[i]);
    ck_assert_int_eq(get_when_closes_are_seen(NULL, port), 200);
    http_server_stop(s);
}
END_TEST

/* In the child: opens n connections to port, then asks GET /who on each
 * and reads its answer. Only system calls (the child of a threaded
 * process); exits 0 when every answer came. */
static void who_on_each_connection(int port, int n) {
    int fds[32];
    for (int i = 0; i < n; i++)
        if ((fds[i] = raw_connect(NULL, port)) < 0) _exit(2);
    static const char who[] = "GET /who HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for (int i = 0; i < n; i++) {
        if (send(fds[i], who, sizeof who - 1, MSG_NOSIGNAL) != (ssize_t)sizeof who - 1) _exit(3);
        /* the answer ends with its body, "hello" */
        char buf[1024];
        size_t have = 0;
        while (have < 5 || memcmp(buf + have - 5, "hello", 5) != 0) {
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            if (have == sizeof buf || poll(&p, 1, 5000) != 1) _exit(4);
            ssize_t got = recv(fds[i], buf + have, sizeof buf - have, 0);
            if (got <= 0) _exit(5);
            have += (size_t)got;
        }
    }
    _exit(0);
}

/* Fills the holes in this process's descriptor table (numbers free below
 * others still open, from the test runner) with copies of stderr, so that
 * the server's accepts get consecutive numbers, as in a program that has
 * not closed any; *fills gets them, to close. Their number. Called before
 * the server starts: a blocked accept() holds the lowest free number from
 * its start (the kernel reserves it before waiting), so filling while the
 * acceptor waits left that one hole, where its first connection then went:
 * 11 connections on one thread and 9 on the other, depending on where the
 * hole was. */
static int fill_descriptor_holes(int *fills, int max) {
    int top = -1, n = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) != -1) top = fd;
    for (int fd = 0; fd < top && n < max; fd++)
        if (fcntl(fd, F_GETFD) == -1 && dup2(2, fd) == fd) fills[n++] = fd;
    return n;
}

START_TEST(connections_opened_at_once_are_spread_over_the_threads) {
    enum { CONNS = 20 };
    use_event_loop(_i);
    static int fills[4096];
    int n_fills = fill_descriptor_holes(fills, 4096);
    http_server *s = start("10", "0", "100", "10");
    /* The client is another process, so that only the server's accepts
     * number the sockets of this one. */
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) who_on_each_connection(http_server_port(s), CONNS);
    int status = -1;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    for (int i = 0; i < n_fills; i++) close(fills[i]);
    http_server_stop(s);
    pthread_mutex_lock(&who_lock);
    int threads = n_serving, first = served_by[0], second = served_by[1];
    n_serving = 0;
    memset(served_by, 0, sizeof served_by);
    pthread_mutex_unlock(&who_lock);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client failed: %d", status);
    ck_assert_int_eq(threads, 2);
    ck_assert_int_eq(first, CONNS / 2);
    ck_assert_int_eq(second, CONNS / 2);
}
END_TEST

int main(void) {
    clock_cond_init(&block_cond);
    Suite *s = suite_create("http limits");
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    /* each under poll (0) and epoll (1) */
    tcase_add_loop_test(tc, slowloris_is_closed_and_others_are_served, 0, 2);
    tcase_add_loop_test(tc, idle_flood_from_one_address_is_capped, 0, 2);
    tcase_add_loop_test(tc, health_probes_keep_a_reserve_above_the_soft_cap, 0, 2);
    tcase_add_loop_test(tc, connections_at_the_limit_are_closed_at_accept, 0, 2);
    tcase_add_loop_test(tc, connections_opened_at_once_are_spread_over_the_threads, 0, 2);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
