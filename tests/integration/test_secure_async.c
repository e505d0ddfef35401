/* The secure profile end to end (MILLOM_AUTH_DISABLED=0), as
 * `make run PROFILE=secure` runs it: mno-sandbox has the operator client's
 * secret (MILLOM_MNO_OAUTH_CLIENT_SECRET) and authenticates its activation
 * callbacks with client credentials. A provider buys the async plan with
 * its own token (202), and the management look-up (with the operator's
 * token) shows the purchase completed, by the operator's callback (the
 * pending re-check is an hour away here), without anyone calling the
 * callback by hand. A callback without a token is still 401. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_PORT 19280
#define SP "testserviceprovider"
#define MSISDN "924542610006"
#define ASYNC_PLAN "tp-data-weekly-async"

static test_stack stack;
static char edge[64], mno[64], executor[64];

typedef struct {
    char text[8192];
    size_t len;
} answer_buf;

static size_t collect(char *p, size_t size, size_t n, void *arg) {
    answer_buf *b = arg;
    size_t k = size * n;
    if (k > sizeof b->text - 1 - b->len) return 0; /* too long for a token answer */
    memcpy(b->text + b->len, p, k);
    b->len += k;
    b->text[b->len] = '\0';
    return k;
}

/* A bearer token for a demo client (client credentials, HTTP Basic). Caller frees. */
static char *token_for(const char *client_id, const char *secret) {
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    char url[128], userpwd[128];
    snprintf(url, sizeof url, "%s/oauth/v1/token", edge);
    snprintf(userpwd, sizeof userpwd, "%s:%s", client_id, secret);
    answer_buf buf = {.len = 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "grant_type=client_credentials");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    ck_assert_int_eq(status, 200);
    json_t *answer = json_loadb(buf.text, buf.len, 0, NULL);
    const char *tok = json_string_value(json_object_get(answer, "access_token"));
    ck_assert_ptr_nonnull(tok);
    char *copy = strdup(tok);
    json_decref(answer);
    return copy;
}

START_TEST(async_purchase_completes_by_authenticated_callback) {
    char *sp_token = token_for("sp-demo", "sp-demo-secret");
    char *tp_token = token_for("tp-demo", "tp-demo-secret");
    char sp_auth[2048], tp_auth[2048];
    snprintf(sp_auth, sizeof sp_auth, "Authorization: Bearer %s", sp_token);
    snprintf(tp_auth, sizeof tp_auth, "Authorization: Bearer %s", tp_token);
    const char *sp_headers[] = {sp_auth, NULL}, *tp_headers[] = {tp_auth, NULL};

    char tid[64], url[256], body[256];
    snprintf(tid, sizeof tid, "secure-async-%ld", (long)getpid());
    snprintf(url, sizeof url, "%s/std/" SP "/tp/" MSISDN "/purchasePlan", edge);
    snprintf(body, sizeof body, "{\"transid\":\"%s\",\"planid\":\"" ASYNC_PLAN "\"}", tid);
    test_response r;
    test_http("POST", url, NULL, body, &r); /* no token: refused */
    ck_assert_int_eq(r.status, 401);
    test_response_free(&r);
    test_http("POST", url, sp_headers, body, &r);
    ck_assert_msg(r.status == 202, "purchase: %ld %s", r.status, r.body ? r.body : "");
    test_response_free(&r);

    /* Polled with the operator's token until final; nobody calls back by hand. */
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s", edge, tid);
    const char *state = NULL;
    json_t *p = NULL;
    for (int i = 0; i < 300; i++) {
        long status = 0;
        json_decref(p);
        p = test_get_json(url, tp_headers, &status);
        ck_assert_int_eq(status, 200);
        state = json_string_value(json_object_get(p, "state"));
        if (state && (strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0)) break;
        test_sleep_ms(100);
    }
    ck_assert_str_eq(state, "completed");
    json_decref(p);

    /* By the operator's callback (answered 200), not by a re-check. The
     * purchase is completed when purchase-executor commits, before its
     * answer travels back through api-edge to mno-sandbox, which records
     * the callback's status only then: wait for that record (null until
     * the POST returned), then check it. */
    char op_tid[37];
    test_operator_transid(SP, tid, op_tid); /* what the operator was sent */
    snprintf(url, sizeof url, "%s/admin/activations?transId=%s", mno, op_tid);
    long status = 0;
    json_t *acts = NULL, *a = NULL;
    for (int i = 0; i < 100; i++) {
        json_decref(acts);
        acts = test_get_json(url, NULL, &status);
        ck_assert_int_eq(status, 200);
        a = json_array_get(json_object_get(acts, "activations"), 0);
        if (json_is_integer(json_object_get(a, "callbackStatus"))) break;
        test_sleep_ms(50);
    }
    ck_assert_msg(json_is_integer(json_object_get(a, "callbackStatus")),
                  "mno-sandbox recorded no answer to its callback");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "callbackStatus")), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "debits")), 1);
    json_decref(acts);
    ck_assert_int_eq(test_metric_sum(executor, "millom_activation_callbacks_total", NULL), 1);
    ck_assert_int_eq(test_metric_sum(executor, "millom_pending_rechecks_total", NULL), 0);

    /* A callback without a token is still refused. */
    snprintf(url, sizeof url, "%s/activationCallback/tp", edge);
    snprintf(body, sizeof body, "{\"transId\":\"%s\",\"activationStatus\":{\"status\":\"OK\"}}",
             op_tid);
    test_http("POST", url, NULL, body, &r);
    ck_assert_int_eq(r.status, 401);
    test_response_free(&r);
    free(sp_token);
    free(tp_token);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char callback_base[96];
    snprintf(callback_base, sizeof callback_base, "MILLOM_CALLBACK_BASE_URL=http://127.0.0.1:%d",
             BASE_PORT);
    const char *env[] = {"MILLOM_AUTH_DISABLED=0",
                         "MILLOM_MNO_OAUTH_CLIENT_SECRET=tp-demo-secret",
                         callback_base,
                         "MILLOM_MNO_CALLBACK_DELAY_MS=200",
                         "MILLOM_PENDING_RECHECK_S=3600",
                         NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);
    snprintf(executor, sizeof executor, "http://127.0.0.1:%d", stack.executor_port);

    Suite *s = suite_create("secure_async");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, async_purchase_completes_by_authenticated_callback);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
