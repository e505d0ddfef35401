/* api-edge's route table on the real stack (auth on): a method a known
 * path does not take is 405 with an Allow header (in the path's error
 * shape: ErrorDocument, the operator APIs' {errorType, message}, the
 * signed links' headers), an unknown path 404, and the order of checks
 * is Host, then the path's authentication, then the JSON body, then
 * 404/405/the handler. Raw sockets, so every header is seen. */
#include "tests/lib/raw_http.h"
#include "tests/lib/stack.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BASE_PORT 20680
#define STACK_JWT_KEY "test-edge-routes-jwt-key"
#define SP "testserviceprovider"
#define BALANCE "/std/" SP "/tp/924542610003/balance"

static test_stack stack;
static int port;
static char sp_token[2048], tp_token[2048];

/* method path with optional bearer token and extra header lines; status,
 * the whole answer in out. */
static int call(const char *method, const char *path, const char *host, const char *token,
                const char *extra, const char *body, char *out, size_t outlen) {
    char req[8192], hosth[64];
    snprintf(hosth, sizeof hosth, "127.0.0.1:%d", port);
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%s%sContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     method, path, host ? host : hosth, token ? "Authorization: Bearer " : "",
                     token ? token : "", token ? "\r\n" : "", extra ? extra : "", blen,
                     body ? body : "");
    ck_assert(n > 0 && (size_t)n < sizeof req);
    return raw_exchange(NULL, port, req, (size_t)n, out, outlen, 10000);
}

/* The value of header name in a raw answer ("" if absent). */
static const char *header(const char *answer, const char *name, char *out, size_t outlen) {
    out[0] = '\0';
    size_t k = strlen(name);
    for (const char *p = strstr(answer, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, k) == 0 && line[k] == ':') {
            const char *v = line + k + 1;
            while (*v == ' ') v++;
            size_t vn = strcspn(v, "\r");
            snprintf(out, outlen, "%.*s", (int)(vn < outlen ? vn : outlen - 1), v);
            break;
        }
    }
    return out;
}

static json_t *body_json(const char *answer) {
    const char *b = strstr(answer, "\r\n\r\n");
    return b ? json_loads(b + 4, 0, NULL) : NULL;
}

static void fetch_token(const char *id, const char *secret, char *out, size_t outlen) {
    char body[256], answer[8192];
    snprintf(body, sizeof body, "grant_type=client_credentials&client_id=%s&client_secret=%s", id,
             secret);
    int status =
        call("POST", "/oauth/v1/token", NULL, NULL,
             "Content-Type: application/x-www-form-urlencoded\r\n", body, answer, sizeof answer);
    ck_assert_msg(status == 200, "token for %s: %d %s", id, status, answer);
    json_t *j = body_json(answer);
    const char *t = json_string_value(json_object_get(j, "access_token"));
    ck_assert_ptr_nonnull(t);
    snprintf(out, outlen, "%s", t);
    json_decref(j);
}

/* The tokens of a provider and an operator client, fetched once. */
static void tokens(void) {
    if (sp_token[0]) return;
    fetch_token("sp-demo", "sp-demo-secret", sp_token, sizeof sp_token);
    fetch_token("tp-demo", "tp-demo-secret", tp_token, sizeof tp_token);
}

static void expect_field(const char *answer, const char *field, const char *want) {
    json_t *j = body_json(answer);
    const char *v = json_string_value(json_object_get(j, field));
    ck_assert_msg(v && strcmp(v, want) == 0, "%s: %s in %s", field, want, answer);
    json_decref(j);
}

START_TEST(method_not_allowed_is_405_with_allow) {
    tokens();
    char out[8192], h[128];
    /* the standard API: after the token, as before */
    ck_assert_int_eq(call("DELETE", BALANCE, NULL, NULL, NULL, NULL, out, sizeof out), 401);
    ck_assert_int_eq(call("DELETE", BALANCE, NULL, sp_token, NULL, NULL, out, sizeof out), 405);
    ck_assert_str_eq(header(out, "Allow", h, sizeof h), "GET");
    expect_field(out, "cause", "METHOD_NOT_ALLOWED");
    ck_assert_int_eq(call("GET", "/std/" SP "/924542610003/purchasePlan", NULL, sp_token, NULL,
                          NULL, out, sizeof out),
                     405);
    ck_assert_str_eq(header(out, "Allow", h, sizeof h), "POST");
    /* the token endpoint, in the table now: no token needed */
    ck_assert_int_eq(call("GET", "/oauth/v1/token", NULL, NULL, NULL, NULL, out, sizeof out), 405);
    ck_assert_str_eq(header(out, "Allow", h, sizeof h), "POST");
    /* health: a known path */
    ck_assert_int_eq(call("POST", "/healthz", NULL, NULL, "Content-Type: application/json\r\n",
                          "{}", out, sizeof out),
                     405);
    ck_assert_str_eq(header(out, "Allow", h, sizeof h), "GET");
    /* signed links: with their security headers */
    ck_assert_int_eq(call("PUT", "/rnf/" SP "/tp/abc,41001/purchasePlan", NULL, NULL, NULL, NULL,
                          out, sizeof out),
                     405);
    ck_assert_str_eq(header(out, "Allow", h, sizeof h), "GET, POST");
    ck_assert_str_eq(header(out, "X-Frame-Options", h, sizeof h), "DENY");
    /* callbacks: in the operator APIs' shape */
    ck_assert_int_eq(call("GET", "/callback/v1/tp", NULL, tp_token, NULL, NULL, out, sizeof out),
                     405);
    ck_assert_str_eq(header(out, "Allow", h, sizeof h), "POST");
    expect_field(out, "errorType", "BAD_REQUEST");
    /* management: with the operator's token */
    ck_assert_int_eq(
        call("DELETE", "/mgmt/tp/purchases", NULL, tp_token, NULL, NULL, out, sizeof out), 405);
    ck_assert_str_eq(header(out, "Allow", h, sizeof h), "GET");
    /* a token of another provider is refused before the method is looked at */
    ck_assert_int_eq(call("DELETE", "/std/otherprovider/tp/924542610003/balance", NULL, sp_token,
                          NULL, NULL, out, sizeof out),
                     403);
}
END_TEST

START_TEST(unknown_path_is_404_after_the_token) {
    tokens();
    char out[8192], h[128];
    ck_assert_int_eq(call("GET", "/nothing", NULL, NULL, NULL, NULL, out, sizeof out), 401);
    ck_assert_int_eq(call("GET", "/nothing", NULL, sp_token, NULL, NULL, out, sizeof out), 404);
    expect_field(out, "cause", "NOT_FOUND");
    ck_assert_str_eq(header(out, "Allow", h, sizeof h), "");
    ck_assert_int_eq(call("GET", "/std/" SP "/tp/924542610003/nothing", NULL, sp_token, NULL, NULL,
                          out, sizeof out),
                     404);
    /* a signed link's area needs no token; its 404 has its headers */
    ck_assert_int_eq(
        call("GET", "/rnf/" SP "/tp/abc,41001/nothing", NULL, NULL, NULL, NULL, out, sizeof out),
        404);
    ck_assert_str_eq(header(out, "X-Frame-Options", h, sizeof h), "DENY");
    /* a callback's 404 in the operator shape */
    ck_assert_int_eq(call("POST", "/callback/v1/tp/x", NULL, tp_token,
                          "Content-Type: application/json\r\n", "{}", out, sizeof out),
                     404);
    expect_field(out, "errorType", "BAD_REQUEST");
    /* trailing slash: callbacks take one, management does not */
    ck_assert_int_eq(call("GET", "/mgmt/tp/consents/", NULL, tp_token, NULL, NULL, out, sizeof out),
                     404);
}
END_TEST

START_TEST(order_host_auth_json_then_route) {
    tokens();
    char out[8192];
    /* Host before anything, the token endpoint included */
    ck_assert_int_eq(
        call("GET", "/oauth/v1/token", "evil.example", NULL, NULL, NULL, out, sizeof out), 421);
    ck_assert_int_eq(call("GET", "/nothing", "evil.example", NULL, NULL, NULL, out, sizeof out),
                     421);
    /* the JSON check before 404 and 405, after the token */
    ck_assert_int_eq(
        call("POST", "/nothing", NULL, NULL, "Content-Type: text/plain\r\n", "x", out, sizeof out),
        401);
    ck_assert_int_eq(call("POST", "/nothing", NULL, sp_token, "Content-Type: text/plain\r\n", "x",
                          out, sizeof out),
                     415);
    ck_assert_int_eq(
        call("POST", BALANCE, NULL, sp_token, "Content-Type: text/plain\r\n", "x", out, sizeof out),
        415);
    /* the token endpoint's form is not JSON-checked */
    ck_assert_int_eq(call("POST", "/oauth/v1/token", NULL, NULL,
                          "Content-Type: application/x-www-form-urlencoded\r\n",
                          "grant_type=password", out, sizeof out),
                     400);
    expect_field(out, "error", "unsupported_grant_type");
    /* a route answers through its handler */
    ck_assert_int_eq(call("GET", BALANCE, NULL, sp_token, NULL, NULL, out, sizeof out), 200);
}
END_TEST

int main(void) {
    const char *env[] = {"MILLOM_AUTH_DISABLED=0", "MILLOM_JWT_KEY=" STACK_JWT_KEY, NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    port = stack.edge_port;
    Suite *s = suite_create("edge routes");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, method_not_allowed_is_405_with_allow);
    tcase_add_test(tc, unknown_path_is_404_after_the_token);
    tcase_add_test(tc, order_host_auth_json_then_route);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
