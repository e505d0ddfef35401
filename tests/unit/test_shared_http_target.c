/* The request line and Host header shared/plumbing/http_client.c puts on
 * the wire, read by a raw TCP listener in this process: a URL with a
 * query goes to curl as its origin plus the request target, which must
 * not change a byte of what the server gets; without a query the URL goes
 * whole. Through an HTTP proxy from the environment (read once per
 * process, so that case runs in a child forked before any call) the
 * request line carries the whole URL, as curl writes it for a proxy.
 * Runs with CK_FORK=no: the proxy case is registered first. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/plumbing/http_client.h"

#define MAX_HEADS 8

/* A listener that answers every request 200 "ok" (keep-alive) and keeps
 * the head of each. */
static struct {
    int fd, port;
    pthread_t thread;
    pthread_mutex_t mu;
    char heads[MAX_HEADS][1024];
    int n;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void serve_connection(int c) {
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t r = recv(c, buf + have, sizeof buf - 1 - have, 0);
        if (r <= 0) return;
        have += (size_t)r;
        buf[have] = '\0';
        char *end;
        while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            size_t head_len = (size_t)(end - buf) + 4;
            pthread_mutex_lock(&srv.mu);
            if (srv.n < MAX_HEADS)
                snprintf(srv.heads[srv.n++], sizeof srv.heads[0], "%.*s", (int)head_len, buf);
            pthread_mutex_unlock(&srv.mu);
            static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if (send(c, ok, sizeof ok - 1, MSG_NOSIGNAL) < 0) return;
            memmove(buf, buf + head_len, have - head_len + 1);
            have -= head_len;
        }
    }
}

static void *listener(void *arg) {
    (void)arg;
    for (;;) {
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0) return NULL;
        serve_connection(c);
        close(c);
    }
}

static void start_listener(void) {
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(srv.fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(srv.fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(srv.fd, 8), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(srv.fd, (struct sockaddr *)&a, &len), 0);
    srv.port = ntohs(a.sin_port);
    srv.n = 0;
    ck_assert_int_eq(pthread_create(&srv.thread, NULL, listener, NULL), 0);
}

static void stop_listener(void) {
    shutdown(srv.fd, SHUT_RDWR);
    close(srv.fd);
    pthread_join(srv.thread, NULL);
}

/* GETs url with c; 0 when it answered 200 "ok". */
static int get_ok(http_client *c, const char *url) {
    http_result res;
    const char *headers[] = {"Accept: application/json", NULL};
    int rc = http_get(c, url, headers, 10000, &res);
    int ok = rc == 0 && res.status == 200 && res.body && strcmp(res.body, "ok") == 0;
    http_result_free(&res);
    return ok ? 0 : -1;
}

/* The head of the i-th request the listener got, its first line. */
static void request_line(int i, char *out, size_t len) {
    pthread_mutex_lock(&srv.mu);
    ck_assert_int_lt(i, srv.n);
    snprintf(out, len, "%.*s", (int)strcspn(srv.heads[i], "\r"), srv.heads[i]);
    pthread_mutex_unlock(&srv.mu);
}

static int head_has(int i, const char *line) {
    pthread_mutex_lock(&srv.mu);
    int found = i < srv.n && strstr(srv.heads[i], line) != NULL;
    pthread_mutex_unlock(&srv.mu);
    return found;
}

/* An HTTP proxy in the environment: the listener, as the proxy, gets the
 * whole URL in the request line. In a child, whose first call reads the
 * environment. */
START_TEST(through_a_proxy_the_request_line_carries_the_url) {
    start_listener();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char proxy[64];
        snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", srv.port);
        setenv("http_proxy", proxy, 1);
        unsetenv("no_proxy");
        unsetenv("NO_PROXY");
        http_client *c = http_client_new();
        /* The origin the proxy is asked for: a port nothing listens on. */
        int rc = get_ok(c, "http://127.0.0.1:9/backend/balance/92454?lang=en&x=%20y");
        http_client_free(c);
        _exit(rc == 0 ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the call through the proxy failed");
    char line[256];
    request_line(0, line, sizeof line);
    ck_assert_str_eq(line, "GET http://127.0.0.1:9/backend/balance/92454?lang=en&x=%20y HTTP/1.1");
    ck_assert(head_has(0, "\r\nHost: 127.0.0.1:9\r\n"));
    stop_listener();
}
END_TEST

START_TEST(the_server_gets_the_url_s_path_and_query) {
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    start_listener();
    http_client *c = http_client_new();
    char url[256], want[256], host[64], line[256];
    static const char *const targets[] = {
        "/backend/balance/924542610003?customerIdType=MSISDN&channelId=App&lang=en",
        "/plain/path",
        "/?only=query",
        "/a%2Fb/c?q=%C3%A9%20x&empty=&flag",
    };
    int n = (int)(sizeof targets / sizeof targets[0]);
    for (int i = 0; i < n; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv.port, targets[i]);
        ck_assert_msg(get_ok(c, url) == 0, "%s", url);
        snprintf(want, sizeof want, "GET %s HTTP/1.1", targets[i]);
        request_line(i, line, sizeof line);
        ck_assert_str_eq(line, want);
        snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%d\r\n", srv.port);
        ck_assert_msg(head_has(i, host), "request %d without %s", i, host + 2);
        ck_assert(head_has(i, "\r\nAccept: application/json\r\n"));
    }
    /* A query-less URL after one with a query, on the same handle: no
     * target left over from the call before. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/after", srv.port);
    ck_assert_int_eq(get_ok(c, url), 0);
    request_line(n, line, sizeof line);
    ck_assert_str_eq(line, "GET /after HTTP/1.1");
    http_client_free(c);
    stop_listener();
}
END_TEST

int main(void) {
    http_client_global_init();
    Suite *s = suite_create("shared_http_target");
    TCase *tc = tcase_create("target");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, through_a_proxy_the_request_line_carries_the_url);
    tcase_add_test(tc, the_server_gets_the_url_s_path_and_query);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
