/* The Top-up API (apis/topup/top-up.yaml; README, "Top-up") end to end,
 * through api-edge, Kafka (devbroker), purchase-executor, mno-sandbox,
 * notifier and sp-sandbox:
 *   - a bad request is 400 naming the field (numbers, names, the partner
 *     reference), a requestor abroad 404 INVALID_NUMBER, and neither
 *     reaches the operator;
 *   - a request is 202 with its id and LINK_SENT: the operator was asked
 *     once to send the donor an SMS with a signed link (mno-sandbox's
 *     /admin/messages); the same request again is the same id and no
 *     second SMS; the same partner reference for another request is 409;
 *   - GET /v1/{sp}/topup/{id} shows the state, only to its provider;
 *   - the donor's page (no JavaScript) shows who asks (escaped) and one
 *     button per amount; a tampered link is 401; an amount not offered 400;
 *   - picking an amount credits the requestor at the operator (the balance
 *     through accountInfo grows by it), the page says CREDITED, the status
 *     shows the amount, the same choice again changes nothing, another is
 *     409, and the provider gets one callback with the outcome.
 * Sandbox subscriber 924542610000 (no money, "needs a top-up") asks a
 * donor abroad. */
#include "tests/lib/shop_form.h"
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_PORT 23000
#define SP "testserviceprovider"
#define REQUESTOR "924542610000"
#define DONOR "6582736491"

static test_stack stack;
static char edge[64], mno[64], sp_base[64];

static const char *str(json_t *o, const char *name) {
    return json_string_value(json_object_get(o, name));
}

static const char *new_reference(char *buf, size_t len, const char *tag) {
    static int seq;
    snprintf(buf, len, "ref-%s-%ld-%d", tag, (long)getpid(), ++seq);
    return buf;
}

/* A TopupRequest body with the partner reference (NULL: none). Caller frees. */
static char *request_body(const char *requestor, const char *requestor_name, const char *donor,
                          const char *donor_name, const char *reference) {
    json_t *j = json_pack("{s:{s:{s:s}, s:s}, s:{s:{s:s}, s:s}}", "requestor", "userNumber",
                          "msisdn", requestor, "name", requestor_name, "donor", "userNumber",
                          "msisdn", donor, "name", donor_name);
    if (reference) json_object_set_new(j, "partnerReference", json_string(reference));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text;
}

/* POST /v1/{sp}/topup; the answer parsed (caller decrefs), *status set. */
static json_t *post_topup(const char *sp, const char *body, const char *const *headers,
                          long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s/v1/%s/topup", edge, sp);
    test_response r = {0};
    ck_assert_int_eq(test_http("POST", url, headers, body, &r), 0);
    *status = r.status;
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    test_response_free(&r);
    return j;
}

static void expect_400(const char *body, const char *const *headers, const char *field) {
    long status = 0;
    json_t *j = post_topup(SP, body, headers, &status);
    ck_assert_msg(status == 400, "%ld for %s", status, body);
    ck_assert_str_eq(str(j, "cause"), "BAD_REQUEST");
    ck_assert_msg(strstr(str(j, "errorMessage"), field) != NULL, "'%s' does not name %s",
                  str(j, "errorMessage"), field);
    json_decref(j);
}

/* The messages mno-sandbox was asked to send to msisdn (caller decrefs). */
static json_t *messages_to(const char *msisdn) {
    char url[256];
    snprintf(url, sizeof url, "%s/admin/messages?to=%s", mno, msisdn);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    return j;
}

static json_int_t message_count(const char *msisdn) {
    json_t *j = messages_to(msisdn);
    json_int_t n = json_integer_value(json_object_get(j, "count"));
    json_decref(j);
    return n;
}

/* The link in the SMS of top-up id (the text's last word). Caller frees. */
static char *link_in_sms(const char *id) {
    json_t *j = messages_to(DONOR);
    char *link = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "messages"), i, m) {
        const char *ref = str(m, "reference");
        if (!ref || strcmp(ref, id) != 0) continue;
        ck_assert_str_eq(str(m, "channel"), "SMS");
        const char *text = str(m, "text");
        const char *at = strrchr(text, ' ');
        link = strdup(at ? at + 1 : text);
    }
    json_decref(j);
    ck_assert_msg(link != NULL, "no SMS for %s", id);
    return link;
}

/* The airtime balance of msisdn through api-edge (no cache). Caller frees. */
static char *airtime_of(const char *msisdn) {
    char *out = test_balance(edge, SP, "tp", msisdn, "main");
    ck_assert_msg(out != NULL, "no main balance for %s", msisdn);
    return out;
}

static json_t *status_of(const char *sp, const char *id, long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s/v1/%s/topup/%s", edge, sp, id);
    return test_get_json(url, NULL, status);
}

/* A new request that reached LINK_SENT; its id into id. */
static void new_request(const char *tag, const char *requestor_name, char *id, size_t idlen) {
    char ref[64];
    char *body = request_body("+" REQUESTOR, requestor_name, "+" DONOR, "Jane Doe",
                              new_reference(ref, sizeof ref, tag));
    long status = 0;
    json_t *j = post_topup(SP, body, NULL, &status);
    free(body);
    ck_assert_int_eq(status, 202);
    ck_assert_str_eq(str(j, "status"), "LINK_SENT");
    snprintf(id, idlen, "%s", str(j, "topupId"));
    json_decref(j);
}

START_TEST(bad_requests_are_400_and_reach_no_operator) {
    json_int_t before = message_count(DONOR);
    char *b;
    b = request_body("+" REQUESTOR, "John Doe", "+" DONOR, "Jane Doe", NULL);
    expect_400(b, NULL, "partner reference");
    const char *differ[] = {"X-Partner-Reference: ref-a", NULL};
    free(b);
    b = request_body("+" REQUESTOR, "John Doe", "+" DONOR, "Jane Doe", "ref-b");
    expect_400(b, differ, "differ");
    free(b);
    b = request_body("+" REQUESTOR, "John Doe", "+" DONOR, "Jane Doe", "bad ref!");
    expect_400(b, NULL, "partner reference");
    free(b);
    b = request_body("+92-454", "John Doe", "+" DONOR, "Jane Doe", "ref-c");
    expect_400(b, NULL, "requestor.userNumber.msisdn");
    free(b);
    b = request_body("+" REQUESTOR, "John Doe", "12", "Jane Doe", "ref-c");
    expect_400(b, NULL, "donor.userNumber.msisdn");
    free(b);
    b = request_body("+" REQUESTOR, "   ", "+" DONOR, "Jane Doe", "ref-c");
    expect_400(b, NULL, "requestor.name");
    free(b);
    b = request_body("+" REQUESTOR, "John Doe", "+" DONOR, "Jane\nDoe", "ref-c");
    expect_400(b, NULL, "donor.name");
    free(b);
    b = request_body("+" REQUESTOR, "John Doe", "+" REQUESTOR, "Jane Doe", "ref-c");
    expect_400(b, NULL, "differ");
    free(b);
    expect_400("{\"donor\": {}, \"partnerReference\": \"ref-c\"}", NULL, "requestor");
    expect_400("[1]", NULL, "JSON object");
    /* a requestor on no operator of Millom */
    b = request_body("+6591827364", "John Doe", "+" DONOR, "Jane Doe", "ref-d");
    long status = 0;
    json_t *j = post_topup(SP, b, NULL, &status);
    free(b);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(str(j, "cause"), "INVALID_NUMBER");
    json_decref(j);
    ck_assert_int_eq(message_count(DONOR), before);
}
END_TEST

START_TEST(a_request_sends_one_sms_and_repeats_are_idempotent) {
    json_int_t before = message_count(DONOR);
    char ref[64];
    new_reference(ref, sizeof ref, "idem");
    char *body = request_body("+" REQUESTOR, "John Doe", "+" DONOR, "Jane Doe", ref);
    long status = 0;
    json_t *first = post_topup(SP, body, NULL, &status);
    ck_assert_int_eq(status, 202);
    const char *id = str(first, "topupId");
    ck_assert_ptr_nonnull(id);
    ck_assert_str_eq(str(first, "status"), "LINK_SENT");
    ck_assert_str_eq(str(first, "partnerReference"), ref);
    ck_assert_str_eq(
        str(json_object_get(json_object_get(first, "requestor"), "userNumber"), "msisdn"),
        "+" REQUESTOR);
    ck_assert_int_eq(message_count(DONOR), before + 1);
    char *link = link_in_sms(id);
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s/topup/" SP "/%s?", edge, id);
    ck_assert_msg(strncmp(link, prefix, strlen(prefix)) == 0, "link %s", link);
    free(link);

    /* the same request again: the same id, no second SMS */
    json_t *again = post_topup(SP, body, NULL, &status);
    ck_assert_int_eq(status, 202);
    ck_assert_str_eq(str(again, "topupId"), id);
    ck_assert_int_eq(message_count(DONOR), before + 1);
    json_decref(again);
    free(body);

    /* the reference in the header instead of the body: the same request */
    const char *hdr_ref[] = {NULL, NULL};
    char hdr[96];
    snprintf(hdr, sizeof hdr, "X-Partner-Reference: %s", ref);
    hdr_ref[0] = hdr;
    body = request_body("+" REQUESTOR, "John Doe", "+" DONOR, "Jane Doe", NULL);
    again = post_topup(SP, body, hdr_ref, &status);
    ck_assert_int_eq(status, 202);
    ck_assert_str_eq(str(again, "topupId"), id);
    json_decref(again);
    free(body);

    /* the same reference for another request */
    body = request_body("+" REQUESTOR, "John Doe", "+6582736499", "Someone Else", ref);
    json_t *conflict = post_topup(SP, body, NULL, &status);
    ck_assert_int_eq(status, 409);
    ck_assert_str_eq(str(conflict, "cause"), "PURCHASE_CONFLICT");
    json_decref(conflict);
    free(body);
    ck_assert_int_eq(message_count("6582736499"), 0);

    /* the state, to its provider only */
    json_t *st = status_of(SP, id, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(str(st, "status"), "LINK_SENT");
    ck_assert_str_eq(str(st, "topupId"), id);
    json_decref(st);
    st = status_of("otherprovider", id, &status);
    ck_assert_int_eq(status, 404);
    json_decref(st);
    st = status_of(SP, "tu-00000000000000000000000000000000", &status);
    ck_assert_int_eq(status, 404);
    json_decref(st);
    json_decref(first);
}
END_TEST

START_TEST(the_donor_page_credits_the_requestor_and_the_provider_is_told) {
    char id[64];
    new_request("page", "Ayesha <Khan>", id, sizeof id);
    char *link = link_in_sms(id);

    /* the page: who asks (escaped), one form, a button per amount, no script */
    test_response r = {0};
    ck_assert_int_eq(test_http("GET", link, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "Ayesha &lt;Khan&gt;"));
    ck_assert_ptr_null(strstr(r.body, "<Khan>"));
    ck_assert_ptr_null(strstr(r.body, "<script"));
    ck_assert_int_eq(test_shop_form_count(r.body), 1);
    ck_assert_ptr_nonnull(strstr(r.body, "name=\"amount\" value=\"250.00\""));
    char *url = NULL, *form = NULL;
    ck_assert_int_eq(test_shop_form(r.body, 0, edge, &url, &form, NULL, 0), 0);
    test_response_free(&r);

    /* a tampered link is refused */
    char *tampered = strdup(link);
    char *sig = strstr(tampered, "signature=") + strlen("signature=");
    *sig = *sig == 'A' ? 'B' : 'A';
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(test_http("GET", tampered, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 401);
    test_response_free(&r);
    free(tampered);

    /* an amount the page does not offer */
    const char *const ft[] = {TEST_FORM_TYPE, NULL};
    char body[2048];
    snprintf(body, sizeof body, "%s&amount=99999.00", form);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(test_http("POST", url, ft, body, &r), 0);
    ck_assert_int_eq(r.status, 400);
    test_response_free(&r);

    /* the donor picks 250.00: the requestor is credited */
    char *before = airtime_of(REQUESTOR);
    snprintf(body, sizeof body, "%s&amount=250.00", form);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(test_http("POST", url, ft, body, &r), 0);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body ? r.body : "");
    ck_assert_ptr_nonnull(strstr(r.body, "CREDITED"));
    test_response_free(&r);
    char *after = airtime_of(REQUESTOR);
    ck_assert_msg(strtod(after, NULL) - strtod(before, NULL) == 250.0, "%s -> %s", before, after);

    /* the same choice again changes nothing; another is refused */
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(test_http("POST", url, ft, body, &r), 0);
    ck_assert_int_eq(r.status, 200);
    test_response_free(&r);
    snprintf(body, sizeof body, "%s&amount=100.00", form);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(test_http("POST", url, ft, body, &r), 0);
    ck_assert_int_eq(r.status, 409);
    test_response_free(&r);
    char *again = airtime_of(REQUESTOR);
    ck_assert_str_eq(again, after);

    /* the state shows the amount */
    long status = 0;
    json_t *st = status_of(SP, id, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(str(st, "status"), "CREDITED");
    ck_assert_str_eq(str(json_object_get(st, "amount"), "value"), "250.00");
    ck_assert_str_eq(str(json_object_get(st, "amount"), "currency"), "PKR");
    json_decref(st);

    /* the provider's callback, once (notifier delivers it soon; 10 s bound) */
    int found = 0;
    for (int i = 0; i < 200 && !found; i++) {
        json_t *rec = test_sp_received(sp_base, "callback", -1, 1000, NULL);
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(rec, "received"), k, c) {
            json_t *b = json_object_get(c, "body");
            if (!str(b, "topupId") || strcmp(str(b, "topupId"), id) != 0) continue;
            found++;
            ck_assert_str_eq(str(b, "status"), "CREDITED");
            ck_assert_str_eq(str(b, "appId"), SP);
            ck_assert_str_eq(str(json_object_get(b, "amount"), "value"), "250.00");
        }
        json_decref(rec);
        if (!found) test_sleep_ms(50);
    }
    ck_assert_int_eq(found, 1);
    free(before);
    free(after);
    free(again);
    free(url);
    free(form);
    free(link);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    unsetenv("MILLOM_LINK_KEY"); /* the sandbox key, like the stack */
    char public_url[80];
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    const char *const env[] = {public_url, NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);
    snprintf(sp_base, sizeof sp_base, "http://127.0.0.1:%d", stack.sp_port);

    Suite *s = suite_create("topup");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bad_requests_are_400_and_reach_no_operator);
    tcase_add_test(tc, a_request_sends_one_sms_and_repeats_are_idempotent);
    tcase_add_test(tc, the_donor_page_credits_the_requestor_and_the_provider_is_told);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
