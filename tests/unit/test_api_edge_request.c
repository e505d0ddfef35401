/* api-edge's request parsing and validation, rule by rule. */
#include "services/api-edge/request_http.h"
#include "services/api-edge/request_purchase.h"
#include "services/api-edge/edge.h"
#include "services/api-edge/request_std.h"
#include "shared/plumbing/errors.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tenants *t;
static cpid_config cpid_cfg;
#define NOW_MS 1800000000000LL /* validation's injected clock */

static void load_tenants(void) {
    char err[256];
    ck_assert_int_eq(cpid_config_init(&cpid_cfg, NULL, 0), 0);
    t = tenants_load("config/tenants.sandbox.json", err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
}

static void unload_tenants(void) { tenants_free(t); }

/* A GET /std/ path as api-edge's route table hands it to the handler. */
static int std_path_of(const char *path, std_path *p) {
    edge_match m;
    edge_route_find("GET", path, &m);
    if (m.status != 0 || m.route->handler != routes_std) return -1;
    edge_std_path(&m, p);
    return 0;
}

START_TEST(languages) {
    char out[16];
    std_primary_language("ur-PK,en;q=0.5", out, sizeof out);
    ck_assert_str_eq(out, "ur");
    std_primary_language("EN", out, sizeof out);
    ck_assert_str_eq(out, "en");
    std_primary_language("*", out, sizeof out);
    ck_assert_str_eq(out, "");
    std_primary_language("english", out, sizeof out);
    ck_assert_str_eq(out, "");
    std_primary_language(NULL, out, sizeof out);
    ck_assert_str_eq(out, "");
}
END_TEST

typedef struct {
    const char *path;
    std_inputs in;
    const char *cause; /* NULL: valid */
} case_t;

START_TEST(validation_table) {
    const case_t cases[] = {
        {"/std/testserviceprovider/tp/924542610003/balance", {0}, NULL},
        {"/std/testserviceprovider/924542610003/balance", {0}, NULL},
        {"/std/testserviceprovider/+924542610003/balance", {0}, NULL},
        {"/std/nobody/tp/924542610003/balance", {0}, CAUSE_NOT_ALLOWED},
        {"/std/testserviceprovider/zz/924542610003/balance", {0}, CAUSE_BAD_REQUEST},
        {"/std/testserviceprovider/tp/92454261000x/balance", {0}, CAUSE_INVALID_NUMBER},
        {"/std/testserviceprovider/tp/4791234567/balance", {0}, CAUSE_INVALID_NUMBER},
        {"/std/testserviceprovider/4791234567/balance", {0}, CAUSE_INVALID_NUMBER},
        {"/std/testserviceprovider/tp/924542610003/balance",
         {.key_type = "EMAIL"},
         CAUSE_BAD_REQUEST},
        {"/std/testserviceprovider/tp/924542610003/balance",
         {.key_type = "msisdn"},
         CAUSE_BAD_REQUEST},
        {"/std/testserviceprovider/tp/OPET-1/balance", {.key_type = "OPET"}, NULL},
        {"/std/testserviceprovider/OPET-1/balance", {.key_type = "OPET"}, CAUSE_BAD_REQUEST},
        {"/std/testserviceprovider/abc,99999/balance", {.key_type = "CPID"}, CAUSE_BAD_CPID},
        {"/std/testserviceprovider/tp/924542610003/upsellOffer", {.plan_type = "principal"}, NULL},
        {"/std/testserviceprovider/tp/924542610003/upsellOffer",
         {.plan_type = "Principal"},
         CAUSE_BAD_REQUEST},
        {"/std/testserviceprovider/tp/924542610003/upsellOffer",
         {.dealer_code = ""},
         CAUSE_BAD_REQUEST},
        {"/std/testserviceprovider/tp/924542610003/upsellOffer",
         {.client_name = "a b"},
         CAUSE_BAD_REQUEST},
        {"/std/testserviceprovider/tp/924542610003/upsellOffer", {.client_name = "MSA"}, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        std_path p;
        ck_assert_int_eq(std_path_of(cases[i].path, &p), 0);
        std_request r;
        char msg[256] = "";
        const char *cause =
            std_validate(t, &cpid_cfg, NOW_MS, &p, &cases[i].in, &r, msg, sizeof msg);
        if (cases[i].cause) {
            ck_assert_msg(cause && strcmp(cause, cases[i].cause) == 0, "case %zu: got %s want %s",
                          i, cause ? cause : "valid", cases[i].cause);
            ck_assert_msg(msg[0], "case %zu: no message", i);
        } else {
            ck_assert_msg(cause == NULL, "case %zu: %s (%s)", i, cause, msg);
            ck_assert_str_eq(r.op->id, "tp");
        }
    }
}
END_TEST

START_TEST(validated_values) {
    std_path p;
    std_request r;
    char msg[256];
    ck_assert_int_eq(std_path_of("/std/testserviceprovider/00924542610003/balance", &p), 0);
    std_inputs in = {.accept_language = "ur", .cache_control = "max-age=0, No-Cache"};
    ck_assert_ptr_null(std_validate(t, &cpid_cfg, NOW_MS, &p, &in, &r, msg, sizeof msg));
    ck_assert_str_eq(r.subscriber, "924542610003");
    ck_assert_str_eq(r.language, "ur");
    ck_assert(r.no_cache);
    in.accept_language = "de-DE";
    in.cache_control = NULL;
    ck_assert_ptr_null(std_validate(t, &cpid_cfg, NOW_MS, &p, &in, &r, msg, sizeof msg));
    ck_assert_str_eq(r.language, "en");
    ck_assert(!r.no_cache);
}
END_TEST

static int activation_ok(const char *body, activation_request *a) {
    char msg[256];
    return activation_request_parse(body, strlen(body), a, msg, sizeof msg) == 0;
}

static void activation_bad(const char *body, const char *field) {
    activation_request a;
    char msg[256] = "";
    ck_assert_msg(activation_request_parse(body, strlen(body), &a, msg, sizeof msg) != 0,
                  "accepted: %s", body);
    ck_assert_msg(strstr(msg, field) != NULL, "message '%s' does not name '%s'", msg, field);
}

START_TEST(activation_requests) {
    activation_request a;
    ck_assert(activation_ok("{\"transid\":\"abc-123.45_x\",\"planid\":\"tp-1\"}", &a));
    ck_assert_str_eq(a.transid, "abc-123.45_x");
    ck_assert_str_eq(a.planid, "tp-1");
    ck_assert_int_eq(a.fund_source, MILLOM__V1__FUND_SOURCE__FUND_SOURCE_WALLET);
    ck_assert_str_eq(a.offercontext, "");
    ck_assert(activation_ok("{\"transid\":\"0123456789\",\"planid\":\"p\","
                            "\"offercontext\":\"x.y\",\"fundSource\":\"LOAN\"}",
                            &a));
    ck_assert_int_eq(a.fund_source, MILLOM__V1__FUND_SOURCE__FUND_SOURCE_LOAN);
    ck_assert_str_eq(a.offercontext, "x.y");
    ck_assert(activation_ok(
        "{\"transid\":\"0123456789\",\"planid\":\"p\",\"fundSource\":\"EWALLET\"}", &a));
    ck_assert_int_eq(a.fund_source, MILLOM__V1__FUND_SOURCE__FUND_SOURCE_EWALLET);
    ck_assert(
        activation_ok("{\"transid\":\"0123456789\",\"planid\":\"p\",\"fundSource\":\"FREE\"}", &a));
    ck_assert_int_eq(a.fund_source, MILLOM__V1__FUND_SOURCE__FUND_SOURCE_FREE);
    activation_bad("{\"transid\":\"0123456789\",\"planid\":\"p\",\"fundSource\":\"free\"}",
                   "fundSource");
    activation_bad("not json", "JSON");
    activation_bad("[1,2]", "object");
    activation_bad("{\"planid\":\"p\"}", "transid");
    activation_bad("{\"transid\":\"short\",\"planid\":\"p\"}", "transid");
    activation_bad("{\"transid\":\"has space 12345\",\"planid\":\"p\"}", "transid");
    activation_bad("{\"transid\":1234567890,\"planid\":\"p\"}", "transid");
    activation_bad("{\"transid\":\"0123456789\"}", "planid");
    activation_bad("{\"transid\":\"0123456789\",\"planid\":7}", "planid");
    activation_bad("{\"transid\":\"0123456789\",\"planid\":\"p\",\"fundSource\":\"CARD\"}",
                   "fundSource");
    activation_bad("{\"transid\":\"0123456789\",\"planid\":\"p\",\"offercontext\":{}}",
                   "offercontext");
    activation_bad("{\"transid\":\"0123456789\",\"transid\":\"0123456789\",\"planid\":\"p\"}",
                   "JSON");
}
END_TEST

START_TEST(callback_bodies) {
    activation_callback cb;
    char msg[256];
    const char *ok = "{\"transId\":\"t-0123456789\",\"activationStatus\":{\"status\":\"OK\"}}";
    ck_assert_int_eq(callback_backend_parse(ok, strlen(ok), &cb, msg, sizeof msg), 0);
    ck_assert(cb.ok);
    ck_assert_str_eq(cb.trans_id, "t-0123456789");
    const char *fail =
        "{\"transId\":\"t-1\",\"activationStatus\":{\"status\":\"FAIL\","
        "\"errorMessage\":{\"errorType\":\"INSUFFICIENT_FUNDS\",\"message\":\"no\"}}}";
    ck_assert_int_eq(callback_backend_parse(fail, strlen(fail), &cb, msg, sizeof msg), 0);
    ck_assert(!cb.ok);
    ck_assert_str_eq(cb.error_type, "INSUFFICIENT_FUNDS");
    const char *bad_status = "{\"transId\":\"t\",\"activationStatus\":{\"status\":\"MAYBE\"}}";
    ck_assert_int_ne(callback_backend_parse(bad_status, strlen(bad_status), &cb, msg, sizeof msg),
                     0);
    ck_assert_ptr_nonnull(strstr(msg, "status"));
    const char *fail_no_type = "{\"transId\":\"t\",\"activationStatus\":{\"status\":\"FAIL\"}}";
    ck_assert_int_ne(
        callback_backend_parse(fail_no_type, strlen(fail_no_type), &cb, msg, sizeof msg), 0);
    const char *m_ok = "{\"transactionId\":\"t-0123456789\",\"appId\":\"sp\",\"message\":\"done\"}";
    ck_assert_int_eq(callback_millom_parse(m_ok, strlen(m_ok), &cb, msg, sizeof msg), 0);
    ck_assert(cb.ok);
    ck_assert_str_eq(cb.service_provider, "sp");
    const char *m_fail = "{\"transactionId\":\"t\",\"appId\":\"sp\",\"errorType\":\"FAILURE_IN_"
                         "BU\",\"dryRun\":true}";
    ck_assert_int_eq(callback_millom_parse(m_fail, strlen(m_fail), &cb, msg, sizeof msg), 0);
    ck_assert(!cb.ok);
    ck_assert(cb.dry_run);
    const char *m_noapp = "{\"transactionId\":\"t\"}";
    ck_assert_int_ne(callback_millom_parse(m_noapp, strlen(m_noapp), &cb, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "appId"));
    /* errorCode and redirectLink are kept for the provider's callback. */
    const char *m_extra = "{\"transactionId\":\"t\",\"appId\":\"sp\",\"errorType\":\"PIN_"
                          "ENTRY_ERROR\",\"errorCode\":\"400.70.2\",\"redirectLink\":"
                          "\"https://op.example/retry?u=1\"}";
    ck_assert_int_eq(callback_millom_parse(m_extra, strlen(m_extra), &cb, msg, sizeof msg), 0);
    ck_assert_str_eq(cb.error_code, "400.70.2");
    ck_assert_str_eq(cb.redirect_link, "https://op.example/retry?u=1");
    const char *const bad_links[] = {"javascript:alert(1)", "//op.example/x", "https://",
                                     "http://op.example/a b", "ftp://op.example/"};
    for (size_t i = 0; i < sizeof bad_links / sizeof bad_links[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"transactionId\":\"t\",\"appId\":\"sp\",\"redirectLink\":\"%s\"}",
                 bad_links[i]);
        ck_assert_int_ne(callback_millom_parse(body, strlen(body), &cb, msg, sizeof msg), 0);
        ck_assert_ptr_nonnull(strstr(msg, "redirectLink"));
    }
    const char *bad_code = "{\"transactionId\":\"t\",\"appId\":\"sp\",\"errorCode\":\"a\\nb\"}";
    ck_assert_int_ne(callback_millom_parse(bad_code, strlen(bad_code), &cb, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "errorCode"));
}
END_TEST

/* Bytes after the JSON value, with or without a NUL before them, are
 * refused by the parser itself (jansson's end-of-input check). */
START_TEST(trailing_bytes_and_nul_are_refused) {
    activation_request a;
    char msg[256];
    const char ok[] = "{\"transid\":\"0123456789\",\"planid\":\"p\"}";
    ck_assert_int_eq(activation_request_parse(ok, strlen(ok), &a, msg, sizeof msg), 0);
    const char *tails[] = {" x", "{}", "\n]", ","};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        char body[128];
        int n = snprintf(body, sizeof body, "%s%s", ok, tails[i]);
        ck_assert_msg(activation_request_parse(body, (size_t)n, &a, msg, sizeof msg) == -1,
                      "tail %zu accepted", i);
    }
    /* A NUL then more bytes: the length, not the NUL, ends the body. */
    char body[128];
    size_t n = strlen(ok);
    memcpy(body, ok, n);
    memcpy(body + n, "\0{\"x\":1}", 8);
    ck_assert_int_eq(activation_request_parse(body, n + 8, &a, msg, sizeof msg), -1);
    ck_assert_int_eq(activation_request_parse(body, n + 1, &a, msg, sizeof msg), -1);
    /* The router's check refuses any NUL before a parser runs. */
    ck_assert_str_eq(edge_json_body_check("application/json", body, n + 8, msg, sizeof msg),
                     CAUSE_BAD_REQUEST);
    ck_assert_ptr_null(edge_json_body_check("application/json", ok, strlen(ok), msg, sizeof msg));
}
END_TEST

START_TEST(json_content_types) {
    const char *good[] = {"application/json",
                          "Application/JSON",
                          " application/json ",
                          "application/json; charset=utf-8",
                          "application/json;charset=\"UTF-8\"",
                          "application/json; foo=bar"};
    const char *bad[] = {NULL,
                         "",
                         "text/plain",
                         "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x",
                         "application/jsonx",
                         "application/json+x",
                         "text/json",
                         "application/json; charset=latin1",
                         "application/json, text/plain"};
    char msg[128];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ck_assert_msg(edge_content_type_is_json(good[i]), "%s", good[i]);
        ck_assert_ptr_null(edge_json_body_check(good[i], "{}", 2, msg, sizeof msg));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!edge_content_type_is_json(bad[i]), "%s", bad[i] ? bad[i] : "(null)");
        ck_assert_str_eq(edge_json_body_check(bad[i], "{}", 2, msg, sizeof msg),
                         CAUSE_UNSUPPORTED_MEDIA_TYPE);
    }
    ck_assert_int_eq(error_status(CAUSE_UNSUPPORTED_MEDIA_TYPE), 415);
    /* Which requests must carry JSON. */
    ck_assert(edge_body_must_be_json("POST", "/std/sp/123/purchasePlan"));
    ck_assert(edge_body_must_be_json("POST", "/notify/tp/v1/single"));
    ck_assert(edge_body_must_be_json("PUT", "/anything"));
    ck_assert(!edge_body_must_be_json("GET", "/std/sp/123/balance"));
    ck_assert(!edge_body_must_be_json("POST", "/oauth/v1/token"));
    ck_assert(!edge_body_must_be_json("POST", "/rnf/sp/tp/cpid/shop"));
}
END_TEST

START_TEST(host_allow_list) {
    const char *def = EDGE_DEFAULT_ALLOWED_HOSTS;
    struct {
        const char *list, *host;
        int ok;
    } cases[] = {
        {def, "localhost", 1},
        {def, "localhost:8080", 1},
        {def, "LOCALHOST:1", 1},
        {def, "localhost.:8080", 1},
        {def, "127.0.0.1:18080", 1},
        {def, "[::1]:8080", 1},
        {def, "[::1]", 1},
        {def, "evil.example", 0},
        {def, "evil.example:8080", 0},
        {def, "localhost.evil.example", 0},
        {def, "127.0.0.2:8080", 0},
        {def, "localhost:", 0},
        {def, "localhost:80a", 0},
        {def, "localhost:123456", 0},
        {def, "[::1", 0},
        {def, "local host", 0},
        {def, "", 0},
        {def, NULL, 0},
        {"api.example.com:443, edge", "api.example.com:443", 1},
        {"api.example.com:443, edge", "api.example.com", 0},
        {"api.example.com:443, edge", "api.example.com:8443", 0},
        {"api.example.com:443, edge", "edge:8080", 1},
        {"api.example.com:443, edge", "localhost", 0},
        {"*", "anything.example:1", 1},
        {"", "localhost", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(edge_host_allowed(cases[i].list, cases[i].host) == cases[i].ok,
                      "case %zu: %s in %s", i, cases[i].host ? cases[i].host : "(null)",
                      cases[i].list);
    ck_assert_int_eq(error_status(CAUSE_MISDIRECTED_REQUEST), 421);
}
END_TEST

int main(void) {
    Suite *s = suite_create("api-edge request");
    TCase *tc = tcase_create("std");
    tcase_add_unchecked_fixture(tc, load_tenants, unload_tenants);
    tcase_add_test(tc, languages);
    tcase_add_test(tc, validation_table);
    tcase_add_test(tc, validated_values);
    tcase_add_test(tc, activation_requests);
    tcase_add_test(tc, callback_bodies);
    tcase_add_test(tc, trailing_bytes_and_nul_are_refused);
    tcase_add_test(tc, json_content_types);
    tcase_add_test(tc, host_allow_list);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
