/* Request ids (x-correlator, README "Request ids") on the real stack:
 *  - one asynchronous purchase sent with a chosen id: the id comes back on
 *    the answer, is in log lines about the purchase in all five
 *    services (api-edge, offer-resolver, purchase-executor, notifier,
 *    settlement-reporter: carried in Kafka headers, through the outbox,
 *    with the purchase row across the operator's callback) and in
 *    sp-sandbox's record of the purchase callback (the webhook's
 *    x-correlator header);
 *  - a rich notification sent with a chosen id reaches sp-sandbox with it;
 *  - an invalid id is refused with 400 BAD_REQUEST naming the header;
 *  - a request without one gets a fresh id, echoed;
 *  - error answers (404, 400) echo the id too. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_PORT 22000
#define SP "testserviceprovider"

static test_stack stack;
static char edge[64], sp_base[64];

/* An id unique to this run: "<tag>.<pid>:<seq>". */
static const char *new_id(char *buf, size_t len, const char *tag) {
    static int seq;
    snprintf(buf, len, "%s.%ld:%d", tag, (long)getpid(), ++seq);
    return buf;
}

/* 1 when s looks like the generated ids: a version 4 UUID, lower-case. */
static int uuid_shaped(const char *s) {
    if (strlen(s) != 36 || s[14] != '4') return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i])) return 0;
    }
    return 1;
}

/* One request with an x-correlator header line (NULL: none). */
static void request(const char *method, const char *path, const char *header, const char *body,
                    test_response *r) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", edge, path);
    const char *headers[] = {header, NULL};
    ck_assert_int_eq(test_http(method, url, header ? headers : NULL, body, r), 0);
}

/* 1 when <dir>/<program>.log has an info or debug line whose "correlator" is id and
 * whose message mentions `about`. */
static int logged(const char *program, const char *id, const char *about) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.log", stack.dir, program);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *c = json_string_value(json_object_get(j, "correlator"));
        const char *level = json_string_value(json_object_get(j, "level"));
        const char *msg = json_string_value(json_object_get(j, "msg"));
        found = c && level && msg && strcmp(c, id) == 0 &&
                (strcmp(level, "info") == 0 || strcmp(level, "debug") == 0) &&
                strstr(msg, about) != NULL;
        json_decref(j);
    }
    fclose(f);
    return found;
}

/* Polls until every one of the five services logged a line about `about`
 * with id (bounded: 30 s); fails naming the ones that did not. */
static void wait_logged_everywhere(const char *id, const char *about) {
    static const char *const services[] = {"api-edge", "offer-resolver", "purchase-executor",
                                           "notifier", "settlement-reporter"};
    const size_t n = sizeof services / sizeof services[0];
    int seen[5] = {0};
    for (int round = 0; round < 300; round++) {
        size_t all = 0;
        for (size_t i = 0; i < n; i++) all += seen[i] = seen[i] || logged(services[i], id, about);
        if (all == n) return;
        test_sleep_ms(100);
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(seen[i], "%s logged no info line about %s with correlator %s", services[i],
                      about, id);
}

/* sp-sandbox's first record of `kind` with transactionId tid (polled,
 * bounded: 30 s); caller decrefs. */
static json_t *wait_received(const char *kind, const char *tid) {
    for (int round = 0; round < 300; round++) {
        json_t *list = test_sp_received(sp_base, kind, -1, 1000, NULL);
        size_t i;
        json_t *rec;
        json_array_foreach(json_object_get(list, "received"), i, rec) {
            const char *t = json_string_value(json_object_get(rec, "transactionId"));
            if (t && strcmp(t, tid) == 0) {
                json_incref(rec);
                json_decref(list);
                return rec;
            }
        }
        json_decref(list);
        test_sleep_ms(100);
    }
    ck_abort_msg("sp-sandbox received no %s for %s", kind, tid);
    return NULL;
}

START_TEST(one_purchase_is_followed_through_every_service) {
    char id[128], header[160], tid[64], body[256];
    new_id(id, sizeof id, "shop-7f3a.checkout");
    snprintf(header, sizeof header, "x-correlator: %s", id);
    snprintf(tid, sizeof tid, "corr-%ld-async", (long)getpid());
    snprintf(body, sizeof body, "{\"transid\":\"%s\",\"planid\":\"tp-data-weekly-async\"}", tid);

    /* The operator activates asynchronously: 202 now, its callback later
     * (mno-sandbox -> api-edge -> purchase-executor, a request of its own
     * with a fresh id), which completes the purchase. */
    test_response r;
    request("POST", "/std/" SP "/tp/924542610006/purchasePlan", header, body, &r);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(r.correlator, id);
    test_response_free(&r);

    /* The provider's callback carries the purchase's id, not the
     * operator callback's. */
    json_t *rec = wait_received("callback", tid);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(rec, "body"), "message")),
                     "COMPLETED");
    const char *got = json_string_value(json_object_get(rec, "correlator"));
    ck_assert_msg(got && strcmp(got, id) == 0, "the callback carried x-correlator %s, not %s",
                  got ? got : "(none)", id);
    json_decref(rec);

    /* Its log lines, in every service: api-edge answered it,
     * purchase-executor changed its state (also after the callback),
     * offer-resolver dropped the cached balance, notifier queued the
     * callback, settlement-reporter settled it. */
    wait_logged_everywhere(id, tid);
    ck_assert_msg(logged("purchase-executor", id, "pending -> completed"),
                  "purchase-executor's completion by the callback lacks the purchase's id");
}
END_TEST

START_TEST(a_rich_notification_carries_its_request_id) {
    char id[128], header[160], tid[64], body[256];
    new_id(id, sizeof id, "mno-batch_9");
    snprintf(header, sizeof header, "x-correlator: %s", id);
    snprintf(tid, sizeof tid, "corr-consent-%ld", (long)getpid());
    ck_assert_int_eq(test_register_consent(edge, SP, "923001110002", tid, "[\"out-of-data\"]"),
                     200);
    snprintf(tid, sizeof tid, "corr-notify-%ld", (long)getpid());
    snprintf(body, sizeof body,
             "{\"transactionId\":\"%s\",\"type\":\"out-of-data\",\"messages\":[{\"language\":"
             "\"en\",\"message\":\"almost out\"}]}",
             tid);
    test_response r;
    request("POST", "/notify/tp/v1/single?idValue=923001110002&idType=MSISDN", header, body, &r);
    ck_assert_msg(r.status == 202, "notify answered %ld: %s", r.status, r.body);
    ck_assert_str_eq(r.correlator, id);
    test_response_free(&r);
    json_t *rec = wait_received("notification", tid);
    const char *got = json_string_value(json_object_get(rec, "correlator"));
    ck_assert_msg(got && strcmp(got, id) == 0, "the notification carried x-correlator %s, not %s",
                  got ? got : "(none)", id);
    json_decref(rec);
}
END_TEST

START_TEST(an_invalid_request_id_is_refused) {
    char too_long[200] = "x-correlator: ";
    memset(too_long + strlen(too_long), 'a', 129);
    const char *const bad[] = {
        too_long,
        "x-correlator: has space",
        "x-correlator: slash/inside",
        "x-correlator: quote\"d",
        "x-correlator;", /* curl: the header with an empty value */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_response r;
        request("GET", "/std/" SP "/tp/924542610003/balance", bad[i], NULL, &r);
        ck_assert_msg(r.status == 400, "%s: answered %ld", bad[i], r.status);
        json_t *j = json_loads(r.body, 0, NULL);
        ck_assert_str_eq(json_string_value(json_object_get(j, "cause")), "BAD_REQUEST");
        const char *msg = json_string_value(json_object_get(j, "errorMessage"));
        ck_assert_msg(msg && strstr(msg, "x-correlator"), "errorMessage %s", msg ? msg : "");
        json_decref(j);
        /* The refusal still has an id the client can quote: a fresh one. */
        ck_assert_msg(uuid_shaped(r.correlator), "answer's x-correlator %s", r.correlator);
        test_response_free(&r);
    }
    /* 128 characters of every allowed kind are fine. */
    char longest[200] = "x-correlator: ";
    const char *allowed = "AZaz09._:-";
    size_t at = strlen(longest);
    for (int i = 0; i < 128; i++) longest[at + i] = allowed[i % 10];
    longest[at + 128] = '\0';
    test_response r;
    request("GET", "/std/" SP "/tp/924542610003/balance", longest, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.correlator, longest + at);
    test_response_free(&r);
}
END_TEST

START_TEST(a_request_without_an_id_gets_a_fresh_one) {
    test_response a, b;
    request("GET", "/std/" SP "/tp/924542610003/balance", NULL, NULL, &a);
    request("GET", "/std/" SP "/tp/924542610003/balance", NULL, NULL, &b);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(b.status, 200);
    ck_assert_msg(uuid_shaped(a.correlator), "x-correlator %s", a.correlator);
    ck_assert_msg(uuid_shaped(b.correlator), "x-correlator %s", b.correlator);
    ck_assert_str_ne(a.correlator, b.correlator);
    /* api-edge and offer-resolver logged nothing under it at info for a
     * cache read, but the id is the one a log search would use: the
     * management look-up of the answer's id works the same way. */
    test_response_free(&a);
    test_response_free(&b);
}
END_TEST

START_TEST(error_answers_echo_the_request_id) {
    char id[128], header[160];
    const char *const cases[][3] = {
        /* method, path, body */
        {"GET", "/no/such/path", NULL},
        {"POST", "/std/" SP "/tp/924542610003/purchasePlan", "{\"transid\":\"short\"}"},
        {"GET", "/std/" SP "/tp/99/balance", NULL},
        {"GET", "/mgmt/tp/purchases/corr-none-0000000", NULL},
        {"GET", "/healthz", NULL},
    };
    const long want[] = {404, 400, 404, 404, 200};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        new_id(id, sizeof id, "err");
        snprintf(header, sizeof header, "x-correlator: %s", id);
        test_response r;
        request(cases[i][0], cases[i][1], header, cases[i][2], &r);
        ck_assert_msg(r.status == want[i], "%s %s: %ld, not %ld", cases[i][0], cases[i][1],
                      r.status, want[i]);
        ck_assert_msg(strcmp(r.correlator, id) == 0, "%s %s: x-correlator %s, not %s", cases[i][0],
                      cases[i][1], r.correlator, id);
        test_response_free(&r);
    }
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char cb_url[128], public_url[128];
    snprintf(cb_url, sizeof cb_url, "MILLOM_CALLBACK_BASE_URL=http://127.0.0.1:%d", BASE_PORT);
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    const char *env[] = {"MILLOM_LOG_LEVEL=debug", "MILLOM_MNO_CALLBACK_DELAY_MS=200", cb_url,
                         public_url, NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp_base, sizeof sp_base, "http://127.0.0.1:%d", stack.sp_port);

    Suite *s = suite_create("request_ids");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, one_purchase_is_followed_through_every_service);
    tcase_add_test(tc, a_rich_notification_carries_its_request_id);
    tcase_add_test(tc, an_invalid_request_id_is_refused);
    tcase_add_test(tc, a_request_without_an_id_gets_a_fresh_one);
    tcase_add_test(tc, error_answers_echo_the_request_id);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
