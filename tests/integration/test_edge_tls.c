/* HTTPS on api-edge (issue 15 item 5): certificates made at run time
 * (tests/lib/tls_cert.c: a CA and a server certificate for 127.0.0.1), an
 * api-edge started with MILLOM_TLS_CERT and MILLOM_TLS_KEY beside the
 * stack's plain one, and libcurl with only that CA trusted
 * (CURLOPT_CAINFO):
 *  - a real TLS handshake over loopback, TLS 1.2 or newer, the chain
 *    verified against the pinned CA, then a balance through Kafka (200);
 *  - a client trusting another CA refuses the server (the pin is real);
 *  - plain HTTP on the TLS port gets no HTTP answer, neither from curl nor
 *    from a raw socket, and the server goes on serving HTTPS;
 *  - api-edge refuses to start, exit 1 with a message naming the
 *    variable, with a key of another certificate, a certificate file that
 *    holds a key, a missing key file, and only one of the two set. */
#include "tests/lib/stack.h"
#include "tests/lib/tls_cert.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define BASE_PORT 21680
#define TLS_PORT (BASE_PORT + 7)
#define BAD_PORT (BASE_PORT + 8)
#define BALANCE "/std/testserviceprovider/tp/924542610003/balance"

static test_stack stack;
static tls_files good, other; /* other: another CA and its own server pair */

typedef struct {
    CURLcode rc;
    long status, verify;
    char body[4096];
    size_t len;
} https_resp;

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
    https_resp *r = arg;
    size_t k = size * n, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, k < room ? k : room);
    r->len += k < room ? k : room;
    r->body[r->len] = '\0';
    return k;
}

/* GET scheme://127.0.0.1:port + path trusting only ca (NULL: curl's
 * defaults). No ck_assert: main() uses it too, outside any test. */
static void fetch(const char *scheme, int port, const char *path, const char *ca, https_resp *r) {
    memset(r, 0, sizeof *r);
    char url[256];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", scheme, port, path);
    CURL *c = curl_easy_init();
    if (!c) {
        r->rc = CURLE_FAILED_INIT;
        return;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    if (ca) {
        curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2); /* 1.2 or newer */
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
        curl_easy_setopt(c, CURLOPT_CAPATH, NULL); /* only this CA */
    }
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_SSL_VERIFYRESULT, &r->verify);
    curl_easy_cleanup(c);
}

START_TEST(https_with_the_pinned_ca) {
    https_resp r;
    fetch("https", TLS_PORT, BALANCE, good.ca, &r);
    ck_assert_msg(r.rc == CURLE_OK, "https: %s", curl_easy_strerror(r.rc));
    ck_assert_int_eq(r.verify, 0); /* the chain verified against the pinned CA */
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "\"balance\"") || strstr(r.body, "\"remaining"), "%s", r.body);
    /* the built-in routes too (probes over HTTPS) */
    fetch("https", TLS_PORT, "/readyz", good.ca, &r);
    ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(another_ca_is_refused) {
    https_resp r;
    fetch("https", TLS_PORT, "/healthz", other.ca, &r);
    ck_assert_msg(r.rc == CURLE_PEER_FAILED_VERIFICATION || r.rc == CURLE_SSL_CACERT,
                  "trusting another CA: %s", curl_easy_strerror(r.rc));
    ck_assert_int_eq(r.status, 0);
}
END_TEST

START_TEST(plain_http_on_the_tls_port_is_refused) {
    https_resp r;
    fetch("http", TLS_PORT, "/healthz", NULL, &r);
    ck_assert_msg(r.rc != CURLE_OK, "plain HTTP was answered %ld", r.status);
    ck_assert_int_eq(r.status, 0);

    /* a raw request: whatever comes back (a TLS alert, nothing) is no HTTP */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(TLS_PORT)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ck_assert_int_eq(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    char buf[512] = {0};
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0) break; /* closed (or the timeout: nothing either) */
        got += (size_t)n;
        if (got == sizeof buf - 1) break;
    }
    close(fd);
    ck_assert_msg(got == 0 || memcmp(buf, "HTTP/", got < 5 ? got : 5) != 0,
                  "an HTTP answer on the TLS port: %.40s", buf);

    /* and HTTPS goes on */
    fetch("https", TLS_PORT, "/healthz", good.ca, &r);
    ck_assert_int_eq(r.status, 200);
}
END_TEST

/* Starts api-edge on BAD_PORT with env and waits for its exit (20 s at
 * most); 1 when it exited 1 and its log names `want`. */
static int refused_at_start(const char *name, const char *const *env, const char *want) {
    pid_t pid = stack_spawn_as(&stack, "api-edge", name, env);
    ck_assert_int_gt(pid, 0);
    int status = -1, exited = 0;
    for (int i = 0; i < 400 && !exited; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            exited = 1;
        else
            test_sleep_ms(50);
    }
    for (int i = 0; i < stack.n; i++) /* reaped here: stack_stop leaves it */
        if (stack.pids[i] == pid && exited) stack.pids[i] = 0;
    if (!exited) {
        stack_kill(&stack, name, SIGKILL);
        fprintf(stderr, "%s did not exit\n", name);
        return 0;
    }
    char path[400], line[2048];
    snprintf(path, sizeof path, "%s/%s.log", stack.dir, name);
    FILE *f = fopen(path, "r");
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) found = strstr(line, want) != NULL;
    if (f) fclose(f);
    if (!found || !WIFEXITED(status) || WEXITSTATUS(status) != 1)
        fprintf(stderr, "%s: status 0x%x, \"%s\" %sin its log\n", name, status, want,
                found ? "" : "not ");
    return found && WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

START_TEST(bad_files_stop_the_start) {
    char cert[400], key[400], port[64];
    snprintf(port, sizeof port, "MILLOM_EDGE_PORT=%d", BAD_PORT);
    /* the key of another certificate */
    snprintf(cert, sizeof cert, "MILLOM_TLS_CERT=%s", good.cert);
    snprintf(key, sizeof key, "MILLOM_TLS_KEY=%s", other.key);
    const char *mismatch[] = {port, "MILLOM_REPLY_PARTITION=3", cert, key, NULL};
    ck_assert(refused_at_start("api-edge-bad-pair", mismatch, "is not the key of the certificate"));
    /* a key where the certificate should be */
    snprintf(cert, sizeof cert, "MILLOM_TLS_CERT=%s", good.key);
    snprintf(key, sizeof key, "MILLOM_TLS_KEY=%s", good.key);
    const char *swapped[] = {port, "MILLOM_REPLY_PARTITION=3", cert, key, NULL};
    ck_assert(refused_at_start("api-edge-bad-cert", swapped, "MILLOM_TLS_CERT: "));
    /* a key file that is not there */
    snprintf(cert, sizeof cert, "MILLOM_TLS_CERT=%s", good.cert);
    snprintf(key, sizeof key, "MILLOM_TLS_KEY=%s/no-such-key.pem", stack.dir);
    const char *missing[] = {port, "MILLOM_REPLY_PARTITION=3", cert, key, NULL};
    ck_assert(refused_at_start("api-edge-no-key", missing, "MILLOM_TLS_KEY: cannot read"));
    /* only one of the two */
    const char *half[] = {port, "MILLOM_REPLY_PARTITION=3", cert, NULL};
    ck_assert(refused_at_start("api-edge-half", half, "MILLOM_TLS_CERT is set but MILLOM_TLS_KEY"));
}
END_TEST

/* GET /readyz over HTTPS until 200 (30 s). */
static int tls_ready(void) {
    for (int i = 0; i < 600; i++) {
        https_resp r;
        fetch("https", TLS_PORT, "/readyz", good.ca, &r);
        if (r.status == 200) return 0;
        test_sleep_ms(50);
    }
    return -1;
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (stack_start(&stack, BASE_PORT, NULL) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    char cert[400], key[400], port[64];
    if (tls_cert_make(stack.dir, "good", &good) != 0 ||
        tls_cert_make(stack.dir, "other", &other) != 0) {
        stack_stop(&stack);
        return 1;
    }
    snprintf(cert, sizeof cert, "MILLOM_TLS_CERT=%s", good.cert);
    snprintf(key, sizeof key, "MILLOM_TLS_KEY=%s", good.key);
    snprintf(port, sizeof port, "MILLOM_EDGE_PORT=%d", TLS_PORT);
    const char *env[] = {port, "MILLOM_REPLY_PARTITION=1", cert, key, NULL};
    if (stack_spawn_as(&stack, "api-edge", "api-edge-tls", env) < 0 || tls_ready() != 0) {
        fprintf(stderr, "api-edge with TLS not ready on port %d (logs in %s)\n", TLS_PORT,
                stack.dir);
        stack_stop(&stack);
        return 1;
    }

    Suite *s = suite_create("edge_tls");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, https_with_the_pinned_ca);
    tcase_add_test(tc, another_ca_is_refused);
    tcase_add_test(tc, plain_http_on_the_tls_port_is_refused);
    tcase_add_test(tc, bad_files_stop_the_start);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
