/* devbroker's accepted connections send without Nagle's delay
 * (services/devbroker/accepted.c). A mock cluster runs in this process,
 * as in devbroker; a plain TCP client connects to it, and the connection the
 * mock accepted (its side, a socket of this process) is looked up in
 * /proc/self/fd: without devbroker_disable_nagle() it has no TCP_NODELAY (the
 * mock's own behaviour, so the check can fail), after it, it has. */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "services/devbroker/devbroker.h"

typedef struct {
    int with_nodelay, without_nodelay;
} accepted;

/* The connections this process accepted on port (its listener excluded). */
static accepted count_accepted(int port) {
    accepted a = {0, 0};
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d)) continue;
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 || sa.sin_family != AF_INET ||
            ntohs(sa.sin_port) != port)
            continue;
        int listening = 0, nodelay = 0;
        len = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening) continue;
        len = sizeof nodelay;
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) != 0) continue;
        if (nodelay)
            a.with_nodelay++;
        else
            a.without_nodelay++;
    }
    closedir(d);
    return a;
}

static int connect_to(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    return s;
}

/* Polls (at most ~10 s: the mock thread accepts on its next poll) until
 * the mock accepted `want` connections on port. */
static accepted wait_accepted(int port, int want) {
    accepted a = {0, 0};
    for (int i = 0; i < 1000; i++) {
        a = count_accepted(port);
        if (a.with_nodelay + a.without_nodelay >= want) break;
        usleep(10 * 1000);
    }
    return a;
}

START_TEST(accepted_connections_have_tcp_nodelay_once_asked) {
    setenv("MILLOM_LOG_LEVEL", "error", 1);
    char err[256];
    devbroker *b = devbroker_new(1, 1, 8, err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    int port = 0;
    ck_assert_int_eq(sscanf(devbroker_bootstraps(b), "127.0.0.1:%d", &port), 1);

    int before = connect_to(port);
    accepted a = wait_accepted(port, 1);
    ck_assert_int_eq(a.without_nodelay, 1); /* the mock's own way */
    ck_assert_int_eq(a.with_nodelay, 0);

    devbroker_disable_nagle();
    int after = connect_to(port);
    a = wait_accepted(port, 2);
    ck_assert_int_eq(a.with_nodelay, 1);
    ck_assert_int_eq(a.without_nodelay, 1);

    close(before);
    close(after);
    devbroker_free(b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("devbroker nodelay");
    TCase *tc = tcase_create("accept");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, accepted_connections_have_tcp_nodelay_once_asked);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
