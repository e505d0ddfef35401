/* Strict HTTP at api-edge (issue 16, item 7) on the real stack (sandbox
 * profile), over raw sockets so that the requests are exactly what is
 * sent: JSON bodies only as application/json (415), a NUL byte or bytes
 * after the JSON value (400), the Host allow-list (421; probes exempt),
 * and request framing that libmicrohttpd would serve but shared/
 * http_server.c refuses (conflicting Content-Length, Content-Length with
 * Transfer-Encoding, no or two Hosts: 400 and the connection closed, so a
 * smuggled second request is never read). Also the Notification API's
 * override=true, capped per operator and subscriber
 * (MILLOM_NOTIFY_OVERRIDE_MAX=2 here, with a quota of 1). */
#include "tests/lib/raw_http.h"
#include "tests/lib/stack.h"

#include <check.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define BASE_PORT 20080
#define SP "testserviceprovider"
#define PURCHASE "/std/" SP "/tp/924542610003/purchasePlan"

static test_stack stack;
static int port;

/* Sends head (request line and headers, without the blank line), a
 * Content-Length for body, then body[0..len); the status, answer in out. */
static int post(const char *path, const char *extra_headers, const char *body, size_t len,
                char *out, size_t outlen) {
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     path, port, extra_headers, len);
    ck_assert(n > 0 && (size_t)n + len < sizeof req);
    memcpy(req + n, body, len);
    return raw_exchange(NULL, port, req, (size_t)n + len, out, outlen, 10000);
}

static int get_with_host(const char *path, const char *host, char *out, size_t outlen) {
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, host);
    return raw_exchange(NULL, port, req, (size_t)n, out, outlen, 10000);
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

START_TEST(json_bodies_need_the_json_content_type) {
    char out[4096];
    const char body[] = "{\"transid\":\"short\",\"planid\":\"tp-social-daily\"}";
    const char *not_json[] = {"Content-Type: text/plain\r\n",
                              "Content-Type: application/x-www-form-urlencoded\r\n",
                              "Content-Type: multipart/form-data; boundary=x\r\n", ""};
    for (size_t i = 0; i < sizeof not_json / sizeof not_json[0]; i++) {
        ck_assert_int_eq(post(PURCHASE, not_json[i], body, sizeof body - 1, out, sizeof out), 415);
        ck_assert_ptr_nonnull(strstr(out, "\"cause\":\"UNSUPPORTED_MEDIA_TYPE\""));
    }
    /* The same body as JSON reaches the parser (which refuses the transid). */
    ck_assert_int_eq(post(PURCHASE, "Content-Type: application/json; charset=utf-8\r\n", body,
                          sizeof body - 1, out, sizeof out),
                     400);
    ck_assert_ptr_nonnull(strstr(out, "transid"));
    /* The notification and register APIs too. */
    ck_assert_int_eq(
        post("/notify/tp/v1/single", "Content-Type: text/plain\r\n", "{}", 2, out, sizeof out),
        415);
    ck_assert_int_eq(post("/std/" SP "/924542610003/register", "Content-Type: text/plain\r\n", "{}",
                          2, out, sizeof out),
                     415);
}
END_TEST

START_TEST(nul_and_trailing_bytes_are_refused) {
    char out[4096];
    const char ok[] = "{\"transid\":\"strict-0000001\",\"planid\":\"tp-social-daily\"}";
    char body[256];
    size_t n = sizeof ok - 1;
    memcpy(body, ok, n);
    memcpy(body + n, "\0{\"planid\":\"tp-music-daily\"}", 28);
    ck_assert_int_eq(
        post(PURCHASE, "Content-Type: application/json\r\n", body, n + 28, out, sizeof out), 400);
    ck_assert_ptr_nonnull(strstr(out, "NUL"));
    const char *tails[] = {" {}", "x", "]"};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        int k = snprintf(body, sizeof body, "%s%s", ok, tails[i]);
        ck_assert_int_eq(
            post(PURCHASE, "Content-Type: application/json\r\n", body, (size_t)k, out, sizeof out),
            400);
        ck_assert_ptr_nonnull(strstr(out, "not valid JSON"));
    }
}
END_TEST

START_TEST(host_allow_list) {
    char out[4096], host[64];
    const char *balance = "/std/" SP "/tp/924542610003/balance";
    snprintf(host, sizeof host, "localhost:%d", port);
    ck_assert_int_eq(get_with_host(balance, host, out, sizeof out), 200);
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    ck_assert_int_eq(get_with_host(balance, host, out, sizeof out), 200);
    ck_assert_int_eq(get_with_host(balance, "[::1]", out, sizeof out), 200);
    /* DNS rebinding: a page on evil.example resolving to 127.0.0.1. */
    const char *evil[] = {"evil.example", "evil.example:8080", "localhost.evil.example"};
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        ck_assert_int_eq(get_with_host(balance, evil[i], out, sizeof out), 421);
        ck_assert_ptr_nonnull(strstr(out, "\"cause\":\"MISDIRECTED_REQUEST\""));
        ck_assert_int_eq(get_with_host("/mgmt/tp/settlements", evil[i], out, sizeof out), 421);
    }
    /* Probes are answered whatever the Host (orchestrators use the pod's
     * address). */
    ck_assert_int_eq(get_with_host("/healthz", "evil.example", out, sizeof out), 200);
    ck_assert_int_eq(get_with_host("/readyz", "10.1.2.3:8080", out, sizeof out), 200);
}
END_TEST

START_TEST(ambiguous_framing_is_refused_and_closed) {
    char out[8192], req[1024];
    /* Each carries a second, smuggled request after the framing the
     * server would pick; only one answer may come back. */
    const char *heads[] = {
        "Content-Length: 5\r\nContent-Length: 60\r\n",
        "Content-Length: 60\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        int n = snprintf(req, sizeof req,
                         "POST /std/" SP "/tp/924542610003/purchasePlan HTTP/1.1\r\n"
                         "Host: localhost\r\nContent-Type: application/json\r\n%s\r\n"
                         "0\r\n\r\nGET /std/" SP "/tp/924542610003/balance HTTP/1.1\r\n"
                         "Host: localhost\r\n\r\n",
                         heads[i]);
        ck_assert_int_eq(raw_exchange(NULL, port, req, (size_t)n, out, sizeof out, 10000), 400);
        ck_assert_ptr_nonnull(strstr(out, "\"cause\":\"BAD_REQUEST\""));
        ck_assert_int_eq(count(out, "HTTP/1.1 "), 1);
    }
    /* No Host, two Hosts. */
    const char no_host[] = "GET /std/" SP "/tp/924542610003/balance HTTP/1.1\r\n\r\n";
    ck_assert_int_eq(raw_exchange(NULL, port, no_host, sizeof no_host - 1, out, sizeof out, 10000),
                     400);
    const char two_hosts[] = "GET /std/" SP "/tp/924542610003/balance HTTP/1.1\r\n"
                             "Host: localhost\r\nHost: evil.example\r\n\r\n";
    ck_assert_int_eq(
        raw_exchange(NULL, port, two_hosts, sizeof two_hosts - 1, out, sizeof out, 10000), 400);
    /* libmicrohttpd itself refuses a list-valued Content-Length. */
    const char list_length[] = "POST /std/" SP "/tp/924542610003/purchasePlan HTTP/1.1\r\n"
                               "Host: localhost\r\nContent-Type: application/json\r\n"
                               "Content-Length: 2, 3\r\n\r\n{}";
    ck_assert_int_eq(
        raw_exchange(NULL, port, list_length, sizeof list_length - 1, out, sizeof out, 10000), 400);
}
END_TEST

/* POST /notify/tp/v1/single for msisdn; the status. */
static long notify(const char *msisdn, const char *tid, const char *extra_query) {
    char url[512], body[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/notify/tp/v1/single?idValue=%s&idType=MSISDN%s",
             port, msisdn, extra_query);
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"type\":\"pack-expired\"}", tid);
    test_response r;
    test_http("POST", url, NULL, body, &r);
    long status = r.status;
    test_response_free(&r);
    return status;
}

START_TEST(override_is_capped_per_subscriber) {
    const char *sub = "923001119001";
    char edge[64], tid[64];
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", port);
    snprintf(tid, sizeof tid, "strict-consent-%ld", (long)getpid());
    ck_assert_int_eq(test_register_consent(edge, SP, sub, tid, "[\"pack-expired\"]"), 200);
    int seq = 0;
#define NEXT_TID (snprintf(tid, sizeof tid, "strict-ov-%ld-%d", (long)getpid(), ++seq), tid)
    ck_assert_int_eq(notify(sub, NEXT_TID, ""), 202);               /* the quota of 1 */
    ck_assert_int_eq(notify(sub, NEXT_TID, ""), 429);               /* quota exceeded */
    ck_assert_int_eq(notify(sub, NEXT_TID, "&override=true"), 202); /* override 1 */
    ck_assert_int_eq(notify(sub, NEXT_TID, "&override=true"), 202); /* override 2 */
    ck_assert_int_eq(notify(sub, NEXT_TID, "&override=true"), 429); /* capped: quota applies */
    ck_assert_int_eq(notify(sub, NEXT_TID, "&override=true"), 429);
#undef NEXT_TID
}
END_TEST

int main(void) {
    const char *env[] = {"MILLOM_NOTIFY_QUOTA=1", "MILLOM_NOTIFY_OVERRIDE_MAX=2", NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    port = stack.edge_port;
    Suite *s = suite_create("http strict");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, json_bodies_need_the_json_content_type);
    tcase_add_test(tc, nul_and_trailing_bytes_are_refused);
    tcase_add_test(tc, host_allow_list);
    tcase_add_test(tc, ambiguous_framing_is_refused_and_closed);
    tcase_add_test(tc, override_is_capped_per_subscriber);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    int bad_exit = stack_stop(&stack);
    return failed || bad_exit ? 1 : 0;
}
