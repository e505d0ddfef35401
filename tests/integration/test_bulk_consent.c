/* Bulk notifications and the consent's life (issue 17 items 6 and 9)
 * through api-edge, devbroker, notifier's SQLite and sp-sandbox:
 *   - POST /notify/tp/v1/bulk answers one verdict per item in order, the
 *     single endpoint's statuses and errorTypes (valid, invalid, no
 *     consent, unknown, duplicate in the request and of an earlier
 *     request, quota), and the accepted items reach the provider;
 *   - its limits: items (413), body size (413, while the single endpoint
 *     keeps the server's 64 KiB), not an array (400), and 10,000 items in
 *     one request;
 *   - a consent expires MILLOM_CONSENT_TTL_DAYS after its registration
 *     (here 0.0002 days, 17.28 s: the one wait of this test, bounded by
 *     the expiry the management read announces) and registering again
 *     renews it;
 *   - every notification carries a signed unsubscribe link; a tampered one
 *     is 401; the real one records the opt-out (403 NO_CONSENT for that
 *     provider and type from then on, shown by the management read and
 *     millomctl consents) until the type is registered again.
 * The scope cco.dd.notify.{op}.bulk is checked in test_oauth.c's matrix. */
#include "tests/lib/stack.h"
#include "shared/contracts/cpid.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BASE_PORT 23400
#define SP "testserviceprovider"
#define CONSENT_TTL_DAYS "0.0002"
#define BULK_MAX_BODY 2097152

static test_stack stack;
static char edge[64], sp[64];

static const char *new_tid(char *buf, size_t len, const char *tag) {
    static int seq;
    snprintf(buf, len, "bulk-%s-%ld-%d", tag, (long)getpid(), ++seq);
    return buf;
}

static void do_register(const char *msisdn, const char *types) {
    char tid[64];
    ck_assert_int_eq(
        test_register_consent(edge, SP, msisdn, new_tid(tid, sizeof tid, "consent"), types), 200);
}

/* POST /notify/tp/v1/single; the status. */
static long notify_single(const char *msisdn, const char *tid, const char *type) {
    char url[256], body[256];
    snprintf(url, sizeof url, "%s/notify/tp/v1/single?idValue=%s&idType=MSISDN", edge, msisdn);
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"type\":\"%s\"}", tid, type);
    test_response r;
    test_http("POST", url, NULL, body, &r);
    long status = r.status;
    test_response_free(&r);
    return status;
}

/* POST /notify/tp/v1/bulk with body; the status, *out the parsed answer. */
static long bulk(const char *body, json_t **out) {
    char url[128];
    snprintf(url, sizeof url, "%s/notify/tp/v1/bulk", edge);
    test_response r;
    test_http("POST", url, NULL, body, &r);
    long status = r.status;
    *out = r.body && r.len ? json_loads(r.body, 0, NULL) : NULL;
    test_response_free(&r);
    return status;
}

static json_t *item(const char *id_type, const char *id, const char *tid, const char *type) {
    return json_pack("{s:s, s:s, s:s, s:s}", "idValue", id, "idType", id_type, "transactionId", tid,
                     "type", type);
}

/* Checks results[i]: its status and, when given, errorType or cause. */
static void verdict(json_t *results, size_t i, long status, const char *error_type,
                    const char *cause) {
    json_t *v = json_array_get(results, i);
    char *text = json_dumps(v, JSON_COMPACT);
    ck_assert_msg(json_integer_value(json_object_get(v, "status")) == status,
                  "item %zu: %s (want %ld)", i, text ? text : "?", status);
    if (error_type)
        ck_assert_msg(
            strcmp(json_string_value(json_object_get(v, "errorType")) ?: "", error_type) == 0,
            "item %zu: %s (want errorType %s)", i, text, error_type);
    if (cause)
        ck_assert_msg(strcmp(json_string_value(json_object_get(v, "cause")) ?: "", cause) == 0,
                      "item %zu: %s (want cause %s)", i, text, cause);
    free(text);
}

/* Records at sp-sandbox of notifications with transactionId tid answered
 * 200, polled until `want` (up to ~20 s); the first body into *first. */
static int wait_received(const char *tid, int want, json_t **first) {
    int n = 0;
    long status = 0;
    for (int i = 0; i < 400; i++) {
        n = test_sp_received_count(sp, "notification", tid, 1, NULL, &status);
        ck_assert_int_eq(status, 200);
        if (n >= want) break;
        test_sleep_ms(50);
    }
    if (first) test_sp_received_count(sp, "notification", tid, 1, first, &status);
    return n;
}

/* The management read's consent of SP for msisdn (caller decrefs). */
static json_t *consent_of(const char *msisdn) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/consents?subscriberId=%s&serviceProvider=" SP, edge,
             msisdn);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    json_t *c = json_incref(json_array_get(json_object_get(j, "consents"), 0));
    json_decref(j);
    ck_assert_ptr_nonnull(c);
    return c;
}

static int64_t rfc3339_ms(const char *s) {
    struct tm tm = {0};
    int ms = 0;
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms),
                     7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* ------------------------------------------------------------------ bulk */

START_TEST(bulk_verdicts_in_item_order) {
    const char *a = "923001140001", *b = "923001140002";
    do_register(a, "[\"out-of-data\"]");
    do_register(b, "[\"low-data\"]");
    char earlier[64], t0[64], t_cpid[64], t_bad[64], t_b[64], t_unknown[64], t_opet[64],
        t_foreign[64];
    ck_assert_int_eq(notify_single(a, new_tid(earlier, sizeof earlier, "earlier"), "out-of-data"),
                     202);
    char cpid[CPID_MAX_LEN];
    ck_assert_int_eq(cpid_issue(cpid_config_default(), a, SP, "41006", (int64_t)time(NULL) * 1000,
                                cpid, sizeof cpid),
                     0);
    json_t *items = json_array();
    json_array_append_new(items, item("MSISDN", a, new_tid(t0, sizeof t0, "ok"), "out-of-data"));
    json_array_append_new(items, item("MSISDN", a, new_tid(t_bad, sizeof t_bad, "bad"), "no-type"));
    json_array_append_new(items, item("MSISDN", b, new_tid(t_b, sizeof t_b, "nc"), "out-of-data"));
    json_array_append_new(items, item("MSISDN", a, t0, "out-of-data")); /* twice in one request */
    json_array_append_new(items, item("MSISDN", "923001149999",
                                      new_tid(t_unknown, sizeof t_unknown, "unk"), "out-of-data"));
    json_array_append_new(
        items, item("OPET", "tok", new_tid(t_opet, sizeof t_opet, "opet"), "out-of-data"));
    json_array_append_new(items, json_integer(42));
    json_array_append_new(items, item("MSISDN", "4712345678",
                                      new_tid(t_foreign, sizeof t_foreign, "for"), "out-of-data"));
    json_array_append_new(items, item("MSISDN", a, earlier, "out-of-data")); /* an earlier one */
    json_t *by_cpid = item("CPID", cpid, new_tid(t_cpid, sizeof t_cpid, "cpid"), "out-of-data");
    json_object_set_new(by_cpid, "override", json_false());
    json_array_append_new(items, by_cpid);
    json_t *bad_override = item("MSISDN", a, "bulk-override-0001", "out-of-data");
    json_object_set_new(bad_override, "override", json_string("maybe"));
    json_array_append_new(items, bad_override);
    char *body = json_dumps(items, JSON_COMPACT);
    json_decref(items);
    json_t *answer = NULL;
    ck_assert_int_eq(bulk(body, &answer), 200);
    free(body);
    json_t *results = json_object_get(answer, "results");
    ck_assert_int_eq(json_array_size(results), 11);
    verdict(results, 0, 202, NULL, NULL);
    verdict(results, 1, 400, NULL, "BAD_REQUEST");
    ck_assert_ptr_nonnull(strstr(
        json_string_value(json_object_get(json_array_get(results, 1), "errorMessage")), "type"));
    verdict(results, 2, 403, "NO_CONSENT", NULL);
    verdict(results, 3, 409, "INTERNAL_ERROR", NULL);
    verdict(results, 4, 404, "NO_CPID", NULL);
    verdict(results, 5, 409, "NO_CPID", NULL);
    verdict(results, 6, 400, NULL, "BAD_REQUEST");
    verdict(results, 7, 404, "NO_CPID", NULL);
    verdict(results, 8, 409, "INTERNAL_ERROR", NULL);
    verdict(results, 9, 202, NULL, NULL);
    verdict(results, 10, 400, NULL, "BAD_REQUEST");
    ck_assert_int_eq(json_integer_value(json_object_get(answer, "accepted")), 2);
    json_decref(answer);
    /* The accepted ones reach the provider once each. */
    ck_assert_int_eq(wait_received(t0, 1, NULL), 1);
    ck_assert_int_eq(wait_received(t_cpid, 1, NULL), 1);
}
END_TEST

/* One subscriber's items are decided in order, so the quota (3 a day)
 * falls on the fourth. */
START_TEST(bulk_quota_in_order) {
    const char *a = "923001140003";
    do_register(a, "[\"pack-expired\"]");
    json_t *items = json_array();
    char tid[64];
    for (int i = 0; i < 4; i++)
        json_array_append_new(items,
                              item("MSISDN", a, new_tid(tid, sizeof tid, "quota"), "pack-expired"));
    char *body = json_dumps(items, JSON_COMPACT);
    json_decref(items);
    json_t *answer = NULL;
    ck_assert_int_eq(bulk(body, &answer), 200);
    free(body);
    json_t *results = json_object_get(answer, "results");
    for (size_t i = 0; i < 3; i++) verdict(results, i, 202, NULL, NULL);
    verdict(results, 3, 429, "QUOTA_EXCEEDED", NULL);
    json_decref(answer);
}
END_TEST

START_TEST(bulk_limits) {
    json_t *answer = NULL;
    ck_assert_int_eq(bulk("[]", &answer), 400);
    json_decref(answer);
    ck_assert_int_eq(bulk("{\"idValue\":\"923001140001\"}", &answer), 400);
    json_decref(answer);
    ck_assert_int_eq(bulk("[{\"idValue\":", &answer), 400);
    json_decref(answer);

    /* More items than MILLOM_NOTIFY_BULK_MAX_ITEMS (10000): 413, nothing sent. */
    size_t cap = 10001 * 8 + 16, len = 0;
    char *many = malloc(cap);
    ck_assert_ptr_nonnull(many);
    many[len++] = '[';
    for (int i = 0; i < 10001; i++)
        len += (size_t)snprintf(many + len, cap - len, "%s{}", i ? "," : "");
    many[len++] = ']';
    many[len] = '\0';
    ck_assert_int_eq(bulk(many, &answer), 413);
    ck_assert_str_eq(json_string_value(json_object_get(answer, "cause")), "PAYLOAD_TOO_LARGE");
    json_decref(answer);
    free(many);

    /* The body limit: MILLOM_NOTIFY_BULK_MAX_BODY for bulk, the server's
     * 64 KiB for the single endpoint. */
    size_t big = BULK_MAX_BODY + 1;
    char *pad = malloc(big + 64);
    ck_assert_ptr_nonnull(pad);
    int head = snprintf(pad, 64, "[{\"pad\":\"");
    memset(pad + head, 'x', big);
    strcpy(pad + head + big, "\"}]");
    ck_assert_int_eq(bulk(pad, &answer), 413);
    ck_assert_str_eq(json_string_value(json_object_get(answer, "cause")), "PAYLOAD_TOO_LARGE");
    json_decref(answer);
    /* 100 KB: over the single endpoint's limit, within bulk's. */
    strcpy(pad + head + 100000, "\",\"idValue\":\"923001140001\",\"idType\":\"MSISDN\","
                                "\"transactionId\":\"bulk-pad-0001\",\"type\":\"oops\"}]");
    ck_assert_int_eq(bulk(pad, &answer), 200);
    verdict(json_object_get(answer, "results"), 0, 400, NULL, "BAD_REQUEST");
    json_decref(answer);
    char url[256];
    snprintf(url, sizeof url, "%s/notify/tp/v1/single?idValue=923001140001&idType=MSISDN", edge);
    test_response r;
    test_http("POST", url, NULL, pad + 1, &r);
    ck_assert_int_eq(r.status, 413);
    test_response_free(&r);
    free(pad);
}
END_TEST

/* 10,000 items in one request, every one decided by notifier: subscribers
 * it has never seen, each 404 NO_CPID, in order. */
START_TEST(bulk_ten_thousand_items) {
    json_t *items = json_array();
    char id[24], tid[64];
    for (unsigned i = 0; i < 10000; i++) {
        snprintf(id, sizeof id, "9230050%05u", i);
        snprintf(tid, sizeof tid, "bulk-10k-%ld-%u", (long)getpid(), i);
        json_array_append_new(items, item("MSISDN", id, tid, "low-data"));
    }
    char *body = json_dumps(items, JSON_COMPACT);
    json_decref(items);
    json_t *answer = NULL;
    ck_assert_int_eq(bulk(body, &answer), 200);
    free(body);
    json_t *results = json_object_get(answer, "results");
    ck_assert_int_eq(json_array_size(results), 10000);
    for (size_t i = 0; i < 10000; i++) verdict(results, i, 404, "NO_CPID", NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(answer, "accepted")), 0);
    json_decref(answer);
}
END_TEST

/* --------------------------------------------------------------- consent */

START_TEST(consent_expires_and_is_renewed) {
    const char *a = "923001140010";
    do_register(a, "[\"low-data\"]");
    json_t *c = consent_of(a);
    int64_t updated = rfc3339_ms(json_string_value(json_object_get(c, "updatedAt")));
    int64_t expires = rfc3339_ms(json_string_value(json_object_get(c, "expiresAt")));
    ck_assert_int_eq(expires - updated, 17280); /* 0.0002 days */
    ck_assert(json_is_false(json_object_get(c, "expired")));
    ck_assert(json_is_true(json_object_get(c, "active")));
    json_decref(c);
    char tid[64];
    ck_assert_int_eq(notify_single(a, new_tid(tid, sizeof tid, "live"), "low-data"), 202);

    /* Wait for the expiry the read announced (bounded), then it counts no more. */
    int expired = 0;
    for (int i = 0; i < 300 && !expired; i++) {
        c = consent_of(a);
        expired = json_is_true(json_object_get(c, "expired"));
        if (expired) ck_assert(json_is_false(json_object_get(c, "active")));
        json_decref(c);
        if (!expired) test_sleep_ms(100);
    }
    ck_assert_msg(expired, "the consent did not expire");
    ck_assert_int_eq(notify_single(a, new_tid(tid, sizeof tid, "expired"), "low-data"), 403);

    /* Registering again renews it. */
    do_register(a, "[\"low-data\"]");
    c = consent_of(a);
    ck_assert(json_is_false(json_object_get(c, "expired")));
    json_decref(c);
    ck_assert_int_eq(notify_single(a, new_tid(tid, sizeof tid, "renewed"), "low-data"), 202);
}
END_TEST

/* GET url; the status and the body (caller frees). */
static long get_page(const char *url, char **body) {
    test_response r;
    test_http("GET", url, NULL, NULL, &r);
    long status = r.status;
    *body = r.body ? strdup(r.body) : NULL;
    test_response_free(&r);
    return status;
}

/* s with its first `from` replaced by `to` (caller frees). */
static char *tamper(const char *s, const char *from, const char *to) {
    const char *at = strstr(s, from);
    ck_assert_ptr_nonnull(at);
    char *out = malloc(strlen(s) + strlen(to) + 1);
    ck_assert_ptr_nonnull(out);
    sprintf(out, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return out;
}

/* millomctl consents <msisdn> in CSV; its output (caller frees). */
static char *millomctl_consents(const char *msisdn) {
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build/release";
    char out[400], cmd[1024];
    snprintf(out, sizeof out, "%s/ctl-consents.txt", stack.dir);
    snprintf(cmd, sizeof cmd,
             "MILLOM_EDGE_PORT=%d %s/bin/millomctl consents %s --format csv > %s 2>/dev/null",
             stack.edge_port, build, msisdn, out);
    int st = system(cmd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "millomctl consents: %d", st);
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    char *text = calloc(1, 8192);
    ck_assert_ptr_nonnull(text);
    size_t n = fread(text, 1, 8191, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

START_TEST(unsubscribe_link_opts_out) {
    const char *a = "923001140020";
    do_register(a, "[\"out-of-data\",\"low-data\"]");
    char tid[64];
    ck_assert_int_eq(notify_single(a, new_tid(tid, sizeof tid, "unsub"), "out-of-data"), 202);
    json_t *body = NULL;
    ck_assert_int_eq(wait_received(tid, 1, &body), 1);
    const char *link = json_string_value(json_object_get(body, "unsubscribe"));
    ck_assert_ptr_nonnull(link);
    ck_assert_int_eq(strncmp(link, edge, strlen(edge)), 0);
    ck_assert_ptr_nonnull(strstr(link, "/unsubscribe?"));
    ck_assert_ptr_nonnull(strstr(link, "type=out-of-data"));
    char *url = strdup(link);
    json_decref(body);

    /* Tampered: another type, another signature. Nothing is recorded. */
    char *page = NULL, *forged = tamper(url, "type=out-of-data", "type=pack-expired");
    ck_assert_int_eq(get_page(forged, &page), 401);
    free(page);
    free(forged);
    forged = strdup(url);
    char *sig = strstr(forged, "signature=") + strlen("signature=");
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(get_page(forged, &page), 401);
    free(page);
    free(forged);
    ck_assert_int_eq(notify_single(a, new_tid(tid, sizeof tid, "still"), "out-of-data"), 202);

    /* The real link: a page, and the opt-out (opening it again changes nothing). */
    ck_assert_int_eq(get_page(url, &page), 200);
    ck_assert_ptr_nonnull(strstr(page, "Unsubscribed"));
    free(page);
    ck_assert_int_eq(get_page(url, &page), 200);
    free(page);
    free(url);
    ck_assert_int_eq(notify_single(a, new_tid(tid, sizeof tid, "optout"), "out-of-data"), 403);
    ck_assert_int_eq(notify_single(a, new_tid(tid, sizeof tid, "other"), "low-data"), 202);
    json_t *c = consent_of(a);
    json_t *opted = json_object_get(c, "optedOut");
    ck_assert_int_eq(json_array_size(opted), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(opted, 0), "type")),
                     "out-of-data");
    json_decref(c);
    char *ctl = millomctl_consents(a);
    ck_assert_msg(strstr(ctl, "expiresAt") && strstr(ctl, "optedOut") &&
                      strstr(ctl, "out-of-data 20"),
                  "millomctl consents: %s", ctl);
    free(ctl);

    /* Registering the type again takes the opt-out back. */
    do_register(a, "[\"out-of-data\",\"low-data\"]");
    c = consent_of(a);
    ck_assert_int_eq(json_array_size(json_object_get(c, "optedOut")), 0);
    json_decref(c);
    ck_assert_int_eq(notify_single(a, new_tid(tid, sizeof tid, "back"), "out-of-data"), 202);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char public_url[64], max_body[64];
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    snprintf(max_body, sizeof max_body, "MILLOM_NOTIFY_BULK_MAX_BODY=%d", BULK_MAX_BODY);
    const char *env[] = {"MILLOM_CONSENT_TTL_DAYS=" CONSENT_TTL_DAYS,
                         "MILLOM_NOTIFY_BULK_DEADLINE_MS=60000", max_body, public_url, NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp, sizeof sp, "http://127.0.0.1:%d", stack.sp_port);
    Suite *s = suite_create("bulk_consent");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, bulk_verdicts_in_item_order);
    tcase_add_test(tc, bulk_quota_in_order);
    tcase_add_test(tc, bulk_limits);
    tcase_add_test(tc, bulk_ten_thousand_items);
    tcase_add_test(tc, consent_expires_and_is_renewed);
    tcase_add_test(tc, unsubscribe_link_opts_out);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
