/* CPIDs and consent end to end: GET /cpid by header enrichment, the read
 * and purchase path with key_type=CPID, registerCpid, register (consent)
 * and the management read answered by notifier.
 *
 * A second api-edge (port base+7, reply partition 1) runs with
 * MILLOM_CPID_TTL_S=2 and a tenants file whose operator trusts only
 * 127.0.0.2: requests from 127.0.0.1 are outside its ranges (403
 * FORBIDDEN), requests bound to 127.0.0.2 get 2-second CPIDs, which the
 * main api-edge (same key) accepts until they expire. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BASE_PORT 18480
#define SP "testserviceprovider"
#define SUB "924542610003"

static test_stack stack;
static char edge[64], edge2[64];

static size_t collect(char *p, size_t size, size_t n, void *u) {
    test_response *r = u;
    char *g = realloc(r->body, r->len + size * n + 1);
    if (!g) return 0;
    memcpy(g + r->len, p, size * n);
    r->body = g;
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

/* GET /cpid?app= on base with the X-MSISDN header (NULL: none), from the
 * source address `from` (NULL: the default, 127.0.0.1). */
static json_t *get_cpid_from(const char *base, const char *app, const char *msisdn,
                             const char *from, long *status) {
    char url[256], hdr[64], iface[64];
    snprintf(url, sizeof url, "%s/cpid%s%s", base, app ? "?app=" : "", app ? app : "");
    CURL *c = curl_easy_init();
    struct curl_slist *list = NULL;
    if (msisdn) {
        snprintf(hdr, sizeof hdr, "X-MSISDN: %s", msisdn);
        list = curl_slist_append(list, hdr);
    }
    test_response r = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    if (from) {
        snprintf(iface, sizeof iface, "host!%s", from);
        curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
    }
    *status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    free(r.body);
    return j;
}

static const char *cause_of(json_t *j) { return json_string_value(json_object_get(j, "cause")); }

/* A fresh CPID for SUB from the main api-edge. Caller frees. */
static char *new_cpid(const char *app, const char *msisdn) {
    long status = 0;
    json_t *j = get_cpid_from(edge, app, msisdn, NULL, &status);
    ck_assert_int_eq(status, 200);
    const char *cpid = json_string_value(json_object_get(j, "cpid"));
    ck_assert_ptr_nonnull(cpid);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "ttlSeconds")), 2592000);
    char *copy = strdup(cpid);
    json_decref(j);
    return copy;
}

/* The CPID percent-encoded for a path segment. Caller frees (curl_free). */
static char *escaped(const char *cpid) { return curl_easy_escape(NULL, cpid, 0); }

static long std_get(const char *base, const char *sp, const char *cpid, const char *action,
                    json_t **out) {
    char url[512];
    char *e = escaped(cpid);
    snprintf(url, sizeof url, "%s/std/%s/%s/%s?key_type=CPID", base, sp, e, action);
    curl_free(e);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    if (out)
        *out = j;
    else
        json_decref(j);
    return status;
}

START_TEST(two_cpids_differ_and_both_work) {
    char *a = new_cpid(SP, SUB), *b = new_cpid(SP, "+" SUB);
    ck_assert_str_ne(a, b);
    ck_assert_str_eq(strrchr(a, ','), ",41006");
    const char *actions[] = {"balance", "accountInfo", "upsellOffer"};
    for (int i = 0; i < 3; i++) {
        json_t *j;
        ck_assert_int_eq(std_get(edge, SP, a, actions[i], &j), 200);
        json_decref(j);
        ck_assert_int_eq(std_get(edge, SP, b, actions[i], NULL), 200);
    }
    /* with the operator in the path too */
    char url[512];
    char *e = escaped(a);
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/balance?key_type=CPID", edge, e);
    curl_free(e);
    long status = 0;
    json_decref(test_get_json(url, NULL, &status));
    ck_assert_int_eq(status, 200);
    free(a);
    free(b);
}
END_TEST

START_TEST(foreign_tampered_and_garbage_cpids_are_refused) {
    char *a = new_cpid(SP, SUB);
    json_t *j;
    ck_assert_int_eq(std_get(edge, "otherprovider", a, "balance", &j), 403);
    ck_assert_str_eq(cause_of(j), "NOT_ALLOWED");
    ck_assert_ptr_null(json_object_get(j, "activePlans"));
    json_decref(j);
    char *t = strdup(a);
    t[5] = t[5] == 'Q' ? 'R' : 'Q';
    ck_assert_int_eq(std_get(edge, SP, t, "upsellOffer", &j), 410);
    ck_assert_str_eq(cause_of(j), "BAD_CPID");
    json_decref(j);
    ck_assert_int_eq(std_get(edge, SP, "bm9wZQ,41006", "balance", &j), 410);
    ck_assert_str_eq(cause_of(j), "BAD_CPID");
    json_decref(j);
    free(t);
    free(a);
}
END_TEST

START_TEST(cpid_request_errors) {
    long status = 0;
    json_t *j = get_cpid_from(edge, NULL, SUB, NULL, &status);
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(cause_of(j), "BAD_REQUEST");
    json_decref(j);
    j = get_cpid_from(edge, "nobody", SUB, NULL, &status);
    ck_assert_int_eq(status, 400);
    json_decref(j);
    j = get_cpid_from(edge, SP, NULL, NULL, &status);
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(cause_of(j), "BAD_REQUEST");
    json_decref(j);
    j = get_cpid_from(edge, SP, "4791234567", NULL, &status);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(cause_of(j), "UNSUPPORTED_OPERATOR");
    json_decref(j);
    j = get_cpid_from(edge, SP, "924542619999", NULL, &status);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(cause_of(j), "UNKNOWN_SUBSCRIBER_ID");
    json_decref(j);
    j = get_cpid_from(edge, SP, "924542610005", NULL, &status);
    ck_assert_int_eq(status, 403);
    ck_assert_str_eq(cause_of(j), "USER_BARRED");
    json_decref(j);
    /* outside the operator's client ranges (second api-edge trusts 127.0.0.2 only) */
    j = get_cpid_from(edge2, SP, SUB, NULL, &status);
    ck_assert_int_eq(status, 403);
    ck_assert_str_eq(cause_of(j), "FORBIDDEN");
    ck_assert_ptr_null(json_object_get(j, "cpid"));
    json_decref(j);
}
END_TEST

START_TEST(cpids_expire) {
    long status = 0;
    json_t *j = get_cpid_from(edge2, SP, SUB, "127.0.0.2", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "ttlSeconds")), 2);
    char *a = strdup(json_string_value(json_object_get(j, "cpid")));
    json_decref(j);
    ck_assert_int_eq(std_get(edge, SP, a, "balance", NULL), 200);
    /* Bounded wait: valid for 2 s from issuance. */
    long got = 0;
    for (int i = 0; i < 40 && got != 410; i++) {
        test_sleep_ms(200);
        got = std_get(edge, SP, a, "balance", &j);
        if (got == 410) ck_assert_str_eq(cause_of(j), "BAD_CPID");
        json_decref(j);
    }
    ck_assert_int_eq(got, 410);
    free(a);
}
END_TEST

START_TEST(purchase_with_a_cpid) {
    char *a = new_cpid(SP, SUB);
    json_t *j;
    ck_assert_int_eq(std_get(edge, SP, a, "upsellOffer", &j), 200);
    char *ctx = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "offers"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "planId")), "tp-video-hour") == 0)
            ctx = strdup(json_string_value(json_object_get(o, "offerContext")));
    }
    json_decref(j);
    ck_assert_ptr_nonnull(ctx);
    char url[512], body[1024];
    char *e = escaped(a);
    snprintf(url, sizeof url, "%s/std/" SP "/%s/purchasePlan?key_type=CPID", edge, e);
    curl_free(e);
    snprintf(body, sizeof body,
             "{\"transid\":\"cpid-test-%ld\",\"planid\":\"tp-video-hour\",\"offercontext\":\"%s\"}",
             (long)getpid(), ctx);
    free(ctx);
    long status = 0;
    j = test_post_json(url, body, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "completed");
    json_decref(j);
    /* another provider cannot buy with this CPID */
    e = escaped(a);
    snprintf(url, sizeof url, "%s/std/otherprovider/%s/purchasePlan?key_type=CPID", edge, e);
    curl_free(e);
    j = test_post_json(url, body, &status);
    ck_assert_int_eq(status, 403);
    json_decref(j);
    free(a);
}
END_TEST

static json_t *consents(const char *msisdn) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/consents?subscriberId=%s", edge, msisdn);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    return j;
}

/* The consent of a provider in the management read (borrowed from j). */
static json_t *consent_of(json_t *j, const char *sp) {
    size_t i;
    json_t *c;
    json_array_foreach(
        json_object_get(j, "consents"), i,
        c) if (strcmp(json_string_value(json_object_get(c, "serviceProvider")), sp) == 0) return c;
    return NULL;
}

static long do_register(const char *subscriber, int cpid, const char *language, const char *body) {
    char url[512], lang[64];
    snprintf(url, sizeof url, "%s/std/" SP "/%s/register%s", edge, subscriber,
             cpid ? "?key_type=CPID" : "");
    snprintf(lang, sizeof lang, "language: %s", language ? language : "");
    const char *headers[] = {lang, NULL};
    test_response r;
    test_http("POST", url, language ? headers : NULL, body, &r);
    long status = r.status;
    if (status == 200) ck_assert_int_eq(r.len, 0);
    test_response_free(&r);
    return status;
}

START_TEST(register_reregister_revoke) {
    const char *msisdn = "924542610001";
    char *a = new_cpid(SP, msisdn);
    char *e = escaped(a);
    ck_assert_int_eq(do_register(e, 1, "ur",
                                 "{\"transactionId\":\"reg-1\",\"types\":[\"out-of-data\","
                                 "\"low-data\",\"pack-expired\"]}"),
                     200);
    json_t *j = consents(msisdn);
    json_t *c = consent_of(j, SP);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(json_array_size(json_object_get(c, "types")), 3);
    ck_assert(json_is_true(json_object_get(c, "active")));
    ck_assert_str_eq(json_string_value(json_object_get(c, "language")), "ur");
    ck_assert_str_eq(json_string_value(json_object_get(c, "transactionId")), "reg-1");
    ck_assert_ptr_null(consent_of(j, "otherprovider"));
    json_decref(j);

    /* fewer types, by MSISDN this time; no language header: en */
    ck_assert_int_eq(
        do_register(msisdn, 0, NULL, "{\"transactionId\":\"reg-2\",\"types\":[\"out-of-data\"]}"),
        200);
    j = consents(msisdn);
    c = consent_of(j, SP);
    ck_assert_int_eq(json_array_size(json_object_get(c, "types")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(c, "types"), 0)),
                     "out-of-data");
    ck_assert_str_eq(json_string_value(json_object_get(c, "language")), "en");
    json_decref(j);

    /* unknown type: 400, nothing changes */
    ck_assert_int_eq(do_register(e, 1, NULL, "{\"transactionId\":\"reg-x\",\"types\":[\"spam\"]}"),
                     400);
    /* revoke */
    ck_assert_int_eq(do_register(e, 1, NULL, "{\"transactionId\":\"reg-3\",\"types\":[]}"), 200);
    j = consents(msisdn);
    c = consent_of(j, SP);
    ck_assert_int_eq(json_array_size(json_object_get(c, "types")), 0);
    ck_assert(json_is_false(json_object_get(c, "active")));
    ck_assert_str_eq(json_string_value(json_object_get(c, "transactionId")), "reg-3");
    json_decref(j);
    curl_free(e);
    free(a);

    /* the management read refuses a malformed subscriber */
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/consents?subscriberId=abc", edge);
    long status = 0;
    json_decref(test_get_json(url, NULL, &status));
    ck_assert_int_eq(status, 400);
}
END_TEST

START_TEST(register_cpid_for_routing) {
    const char *msisdn = "924542610006";
    char *a = new_cpid(SP, msisdn);
    char url[256], body[512];
    snprintf(url, sizeof url, "%s/" SP "/tp/registerCpid?app=" SP, edge);
    snprintf(body, sizeof body, "{\"cpid\":\"%s\"}", a);
    test_response r;
    test_http("POST", url, NULL, body, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.len, 0);
    test_response_free(&r);
    json_t *j = consents(msisdn);
    json_t *regs = json_object_get(j, "cpidRegistrations");
    ck_assert_int_eq(json_array_size(regs), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(regs, 0), "serviceProvider")),
                     SP);
    ck_assert_ptr_nonnull(json_object_get(json_array_get(regs, 0), "expiresAt"));
    json_decref(j);
    /* another provider presenting it: 403; app not the path's provider: 400 */
    snprintf(url, sizeof url, "%s/otherprovider/tp/registerCpid?app=otherprovider", edge);
    test_http("POST", url, NULL, body, &r);
    ck_assert_int_eq(r.status, 403);
    test_response_free(&r);
    snprintf(url, sizeof url, "%s/" SP "/tp/registerCpid?app=otherprovider", edge);
    test_http("POST", url, NULL, body, &r);
    ck_assert_int_eq(r.status, 400);
    test_response_free(&r);
    free(a);
}
END_TEST

/* The stack's tenants with the operator trusting 127.0.0.2 only. */
static int write_narrow_tenants(char *path, size_t len) {
    json_t *t = json_load_file(stack.tenants_file, 0, NULL);
    if (!t) return -1;
    size_t i;
    json_t *op;
    json_array_foreach(json_object_get(t, "operators"), i, op)
        json_object_set_new(op, "cpidClientCidrs", json_pack("[s]", "127.0.0.2/32"));
    snprintf(path, len, "%s/tenants-narrow.json", stack.dir);
    int rc = json_dump_file(t, path, JSON_INDENT(2));
    json_decref(t);
    return rc;
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (stack_start(&stack, BASE_PORT, NULL) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    char tenants[400], tenants_env[420], port_env[64];
    snprintf(port_env, sizeof port_env, "MILLOM_EDGE_PORT=%d", BASE_PORT + 7);
    if (write_narrow_tenants(tenants, sizeof tenants) != 0) {
        fprintf(stderr, "cannot write the narrow tenants file\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(tenants_env, sizeof tenants_env, "MILLOM_TENANTS=%s", tenants);
    const char *env2[] = {port_env, tenants_env, "MILLOM_REPLY_PARTITION=1", "MILLOM_CPID_TTL_S=2",
                          NULL};
    if (stack_spawn(&stack, "api-edge", env2) < 0 || stack_wait_ready(BASE_PORT + 7, 30000) != 0) {
        fprintf(stderr, "second api-edge did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(edge2, sizeof edge2, "http://127.0.0.1:%d", BASE_PORT + 7);

    Suite *s = suite_create("cpid and consent");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, two_cpids_differ_and_both_work);
    tcase_add_test(tc, foreign_tampered_and_garbage_cpids_are_refused);
    tcase_add_test(tc, cpid_request_errors);
    tcase_add_test(tc, cpids_expire);
    tcase_add_test(tc, purchase_with_a_cpid);
    tcase_add_test(tc, register_reregister_revoke);
    tcase_add_test(tc, register_cpid_for_routing);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
