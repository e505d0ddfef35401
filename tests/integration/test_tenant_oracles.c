/* No cross-tenant oracles (issue 16 item 8), on a real stack:
 *   - two providers may use the same transid for the same subscriber: two
 *     purchases, two different transIds at the operator (mno-sandbox's
 *     recorded /activate calls), each provider answered with its own
 *     transid;
 *   - the purchase timer's 409 reads the same to a provider whether the
 *     earlier purchase was its own or another provider's;
 *   - an operator callback naming another subscriber (idValue) is refused
 *     as an unknown transaction and changes nothing; the right one then
 *     completes the purchase. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_PORT 20480
#define SP_A "testserviceprovider"
#define SP_B "otherprovider"

static test_stack stack;
static char edge[64], mno[64];

/* A transid unique to this run. */
static const char *new_transid(char *buf, size_t len, const char *tag) {
    static int seq;
    snprintf(buf, len, "oracle-%s-%ld-%d", tag, (long)getpid(), ++seq);
    return buf;
}

static json_t *purchase(const char *sp, const char *msisdn, const char *transid, const char *plan,
                        long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/%s/tp/%s/purchasePlan", edge, sp, msisdn);
    json_t *body = json_pack("{s:s, s:s}", "transid", transid, "planid", plan);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_t *answer = test_post_json(url, text, status);
    free(text);
    return answer;
}

/* mno-sandbox's recorded activations of an operator transId; caller decrefs. */
static json_t *activations(const char *op_transid) {
    char url[256];
    snprintf(url, sizeof url, "%s/admin/activations?transId=%s", mno, op_transid);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    json_t *list = json_incref(json_object_get(j, "activations"));
    json_decref(j);
    ck_assert_ptr_nonnull(list);
    return list;
}

/* The state of provider sp's purchase transid (management look-up). */
static char *state_of(const char *sp, const char *transid) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s?serviceProvider=%s", edge, transid, sp);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    const char *s = json_string_value(json_object_get(j, "state"));
    ck_assert_ptr_nonnull(s);
    char *copy = strdup(s);
    json_decref(j);
    return copy;
}

static char *wait_final_state(const char *sp, const char *transid) {
    for (int i = 0; i < 300; i++) {
        char *s = state_of(sp, transid);
        if (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0) return s;
        free(s);
        usleep(50 * 1000);
    }
    ck_abort_msg("purchase %s never became final", transid);
    return NULL;
}

START_TEST(two_providers_one_transid) {
    char tid[64], op_a[37], op_b[37];
    new_transid(tid, sizeof tid, "shared");
    long status = 0;
    json_t *a = purchase(SP_A, "924542610003", tid, "tp-social-daily", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(a, "transid")), tid);
    ck_assert_str_eq(json_string_value(json_object_get(a, "status")), "completed");
    json_t *b = purchase(SP_B, "924542610003", tid, "tp-music-daily", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(b, "transid")), tid);
    ck_assert_str_eq(json_string_value(json_object_get(b, "status")), "completed");
    /* Two activations, two confirmation codes. */
    ck_assert_str_ne(json_string_value(json_object_get(a, "confirmationCode")),
                     json_string_value(json_object_get(b, "confirmationCode")));
    json_decref(a);
    json_decref(b);

    /* The operator saw two different transIds, neither the providers'. */
    test_operator_transid(SP_A, tid, op_a);
    test_operator_transid(SP_B, tid, op_b);
    ck_assert_str_ne(op_a, op_b);
    json_t *la = activations(op_a), *lb = activations(op_b), *lt = activations(tid);
    ck_assert_int_eq(json_array_size(la), 1);
    ck_assert_int_eq(json_array_size(lb), 1);
    ck_assert_int_eq(json_array_size(lt), 0);
    json_t *aa = json_array_get(la, 0), *ab = json_array_get(lb, 0);
    ck_assert_str_eq(json_string_value(json_object_get(aa, "offerId")), "tp-social-daily");
    ck_assert_str_eq(json_string_value(json_object_get(ab, "offerId")), "tp-music-daily");
    ck_assert_int_eq(json_integer_value(json_object_get(aa, "debits")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(ab, "debits")), 1);
    json_decref(la);
    json_decref(lb);
    json_decref(lt);

    /* Each provider's repeat gets its own answer back, nothing activated. */
    a = purchase(SP_B, "924542610003", tid, "tp-music-daily", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(a, "transid")), tid);
    json_decref(a);
    /* Reusing its own transid for another request: the provider's own 409. */
    a = purchase(SP_A, "924542610003", tid, "tp-data-daily-3gb", &status);
    ck_assert_int_eq(status, 409);
    ck_assert_str_eq(json_string_value(json_object_get(a, "errorMessage")),
                     "transid was already used for a different purchase request");
    json_decref(a);

    /* The operator's look-up finds both by the shared transid, each by its
     * own operator transId. */
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s", edge, tid);
    json_t *l = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(json_array_size(json_object_get(l, "purchases")), 2);
    json_decref(l);
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s", edge, op_b);
    l = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(l, "serviceProvider")), SP_B);
    ck_assert_str_eq(json_string_value(json_object_get(l, "transid")), tid);
    ck_assert_str_eq(json_string_value(json_object_get(l, "operatorTransId")), op_b);
    json_decref(l);
}
END_TEST

START_TEST(timer_409_does_not_say_whose) {
    char t1[64], t2[64], t3[64];
    long status = 0;
    json_t *j = purchase(SP_A, "924542610003", new_transid(t1, sizeof t1, "timer"), "tp-video-hour",
                         &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
    /* A again (its own earlier purchase) and B (A's earlier purchase). */
    json_t *own = purchase(SP_A, "924542610003", new_transid(t2, sizeof t2, "timer"),
                           "tp-video-hour", &status);
    ck_assert_int_eq(status, 409);
    json_t *other = purchase(SP_B, "924542610003", new_transid(t3, sizeof t3, "timer"),
                             "tp-video-hour", &status);
    ck_assert_int_eq(status, 409);
    char *own_text = json_dumps(own, JSON_COMPACT | JSON_SORT_KEYS);
    char *other_text = json_dumps(other, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(own_text, other_text);
    ck_assert_str_eq(json_string_value(json_object_get(other, "cause")), "PURCHASE_CONFLICT");
    ck_assert_ptr_null(strstr(other_text, SP_A));
    ck_assert_ptr_null(strstr(other_text, t1));
    free(own_text);
    free(other_text);
    json_decref(own);
    json_decref(other);
}
END_TEST

static long callback(const char *id_value, const char *transaction_id) {
    char url[256], body[256];
    snprintf(url, sizeof url, "%s/callback/v1/tp/?idValue=%s&idType=MSISDN", edge, id_value);
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"appId\":\"" SP_A "\"}",
             transaction_id);
    long status = 0;
    json_t *j = test_post_json(url, body, &status);
    if (status == 404)
        ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "unknown transaction");
    json_decref(j);
    return status;
}

START_TEST(callback_must_name_the_purchase_subscriber) {
    /* The sandbox keeps the activation pending (its own callback is far
     * away): only the callbacks below can decide it. */
    char url[256];
    snprintf(url, sizeof url, "%s/admin/behaviour", mno);
    long status = 0;
    json_t *j = test_post_json(url, "{\"callbackDelayMs\":600000}", &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);

    char tid[64], op[37];
    j = purchase(SP_A, "924542610006", new_transid(tid, sizeof tid, "cb"), "tp-data-weekly-async",
                 &status);
    ck_assert_int_eq(status, 202);
    json_decref(j);
    test_operator_transid(SP_A, tid, op);
    char *s = state_of(SP_A, tid);
    ck_assert_str_eq(s, "pending");
    free(s);

    /* Another subscriber's number: refused as unknown, nothing changes. */
    ck_assert_int_eq(callback("924542610003", op), 404);
    s = state_of(SP_A, tid);
    ck_assert_str_eq(s, "pending");
    free(s);
    /* The provider's transid is not a transId the operator was sent. */
    ck_assert_int_eq(callback("924542610006", tid), 404);
    s = state_of(SP_A, tid);
    ck_assert_str_eq(s, "pending");
    free(s);
    /* The right subscriber and transId: completed. */
    ck_assert_int_eq(callback("924542610006", op), 200);
    s = wait_final_state(SP_A, tid);
    ck_assert_str_eq(s, "completed");
    free(s);

    snprintf(url, sizeof url, "%s/admin/reset", mno);
    j = test_post_json(url, "{}", &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char cb_url[128];
    const char *env[] = {"MILLOM_PURCHASE_TIMER_S=60", cb_url, NULL};
    snprintf(cb_url, sizeof cb_url, "MILLOM_CALLBACK_BASE_URL=http://127.0.0.1:%d", BASE_PORT);
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);

    Suite *s = suite_create("tenant_oracles");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, two_providers_one_transid);
    tcase_add_test(tc, timer_409_does_not_say_whose);
    tcase_add_test(tc, callback_must_name_the_purchase_subscriber);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
