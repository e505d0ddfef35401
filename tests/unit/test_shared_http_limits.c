/* shared/plumbing/http_server.c's connection limits (issue 16, item 4), on a real
 * server on an ephemeral loopback port, driven over raw sockets:
 *  - a bounded slowloris (three sockets sending a header byte every
 *    300 ms) is closed by the request timeout while other clients and the
 *    health probes are served;
 *  - an idle-socket flood from one address (300 sockets, per-address cap
 *    50) is cut at the cap, and another address (127.0.0.2) and its
 *    /healthz and /readyz are still served;
 *  - above the global soft cap ordinary requests get 503 and the health
 *    probes still 200.
 * Every wait is bounded; nothing asserts how long something took. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shared/plumbing/http_server.h"
#include "tests/lib/raw_http.h"

#define MAX_HELD 64

/* The application: GET /hello answers at once; GET /hold defers until
 * release_held() answers every held request. */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static http_request *held[MAX_HELD];
static int n_held;

static void handle(void *app, http_request *req) {
    (void)app;
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

static http_server *start(const char *timeout_s, const char *per_ip, const char *max,
                          const char *reserve) {
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

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

START_TEST(slowloris_is_closed_and_others_are_served) {
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
        sleep_ms(300);
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
    ck_assert_int_eq(get("127.0.0.1", port, "/hello"), 200);
    http_server_stop(s);
}
END_TEST

START_TEST(health_probes_keep_a_reserve_above_the_soft_cap) {
    enum { BUSY = 30 }; /* MAX 40 - RESERVE 10: the soft cap, exactly */
    http_server *s = start("60", "0", "40", "10");
    int port = http_server_port(s);
    int fds[BUSY];
    const char hold[] = "GET /hold HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for (int i = 0; i < BUSY; i++) {
        fds[i] = raw_connect(NULL, port);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(send(fds[i], hold, sizeof hold - 1, MSG_NOSIGNAL), (long)sizeof hold - 1);
    }
    for (int i = 0; i < 500 && held_count() < BUSY; i++) sleep_ms(10);
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
    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) { /* closes take a moment */
        status = get(NULL, port, "/hello");
        if (status != 200) sleep_ms(50);
    }
    ck_assert_int_eq(status, 200);
    http_server_stop(s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("http limits");
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, slowloris_is_closed_and_others_are_served);
    tcase_add_test(tc, idle_flood_from_one_address_is_capped);
    tcase_add_test(tc, health_probes_keep_a_reserve_above_the_soft_cap);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
