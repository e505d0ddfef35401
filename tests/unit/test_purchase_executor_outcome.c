/* purchase-executor's pure parts: backend errorType -> ErrorDocument
 * cause, the answers' bodies, the classification of POST /activate
 * answers, the next row after an activation or a callback (including when
 * it gives up), the backoff, and the offers price look-up. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "services/purchase-executor/activation_client.h"
#include "services/purchase-executor/handlers.h"
#include "services/purchase-executor/purchase_outcome.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/text.h"

static purchase base(void) {
    purchase p;
    memset(&p, 0, sizeof p);
    strcpy(p.service_provider, "testserviceprovider");
    strcpy(p.transid, "tx-0000000001");
    strcpy(p.op, "tp");
    strcpy(p.subscriber, "924542610003");
    strcpy(p.key_type, "MSISDN");
    strcpy(p.plan_id, "plan1234");
    p.price_minor = 16000;
    strcpy(p.currency, "PKR");
    strcpy(p.fund_source, "WALLET");
    p.state = PS_ACTIVATING;
    p.attempts = 1;
    p.created_ms = p.updated_ms = 1000;
    return p;
}

static void parse(long status, const char *body, activation_result *r) {
    activation_parse(status, body, body ? strlen(body) : 0, 1, r);
}

START_TEST(error_types_map_to_causes) {
    static const struct {
        const char *type;
        const char *cause;
        int status;
    } T[] = {
        {"INSUFFICIENT_FUNDS", CAUSE_INSUFFICIENT_FUNDS, 402},
        {"INVALID_PRODUCT", CAUSE_BAD_REQUEST, 400},
        {"BAD_REQUEST", CAUSE_BAD_REQUEST, 400},
        {"PARSING_ERROR", CAUSE_BAD_REQUEST, 400},
        {"INVALID_TRANSID", CAUSE_BAD_REQUEST, 400},
        {"USER_BARRED", CAUSE_NOT_ALLOWED, 403},
        {"NOT_IMPLEMENTED", CAUSE_NOT_ALLOWED, 403},
        {"FORBIDDEN", CAUSE_USER_ROAMING, 403},
        {"UNKNOWN_SUBSCRIBER_ID", CAUSE_INVALID_NUMBER, 404},
        {"CONFLICT", CAUSE_PURCHASE_CONFLICT, 409},
        {"PURCHASE_IN_PROGRESS", CAUSE_PURCHASE_CONFLICT, 409},
        {"TIMEOUT", CAUSE_SERVICE_UNAVAILABLE, 503},
        {"CONGESTED", CAUSE_SERVICE_UNAVAILABLE, 503},
        {"INTERNAL_ERROR", CAUSE_SERVICE_UNAVAILABLE, 503},
        {"insufficient_funds", CAUSE_INSUFFICIENT_FUNDS, 402}, /* any case */
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        const char *fallback = NULL;
        const char *cause = outcome_cause(T[i].type, 400, &fallback);
        ck_assert_msg(strcmp(cause, T[i].cause) == 0, "%s -> %s", T[i].type, cause);
        ck_assert_int_eq(error_status(cause), T[i].status);
        ck_assert_ptr_nonnull(fallback);
    }
    /* Without a known errorType the status decides. */
    ck_assert_str_eq(outcome_cause(NULL, 0, NULL), CAUSE_SERVICE_UNAVAILABLE);
    ck_assert_str_eq(outcome_cause(NULL, 502, NULL), CAUSE_SERVICE_UNAVAILABLE);
    ck_assert_str_eq(outcome_cause(NULL, 429, NULL), CAUSE_SERVICE_UNAVAILABLE);
    ck_assert_str_eq(outcome_cause(NULL, 404, NULL), CAUSE_INVALID_NUMBER);
    ck_assert_str_eq(outcome_cause("SOMETHING_NEW", 400, NULL), CAUSE_UNSPECIFIED);
    ck_assert_str_eq(outcome_cause(NULL, 401, NULL), CAUSE_UNSPECIFIED);
}
END_TEST

START_TEST(answers_have_the_spec_shapes) {
    purchase p = base();
    char *s = response_processing(&p);
    ck_assert_str_eq(s, "{\"transid\":\"tx-0000000001\",\"status\":\"processing\","
                        "\"fundSource\":\"WALLET\"}");
    free(s);
    strcpy(p.fund_source, "LOAN");
    strcpy(p.confirmation_code, "CONF-1");
    strcpy(p.message, "Bundle activated");
    s = response_completed(&p);
    ck_assert_str_eq(s, "{\"transid\":\"tx-0000000001\",\"status\":\"completed\","
                        "\"fundSource\":\"LOAN\",\"transactionMessage\":\"Bundle activated\","
                        "\"confirmationCode\":\"CONF-1\"}");
    free(s);
    p.message[0] = p.confirmation_code[0] = '\0';
    s = response_completed(&p);
    ck_assert_str_eq(s, "{\"transid\":\"tx-0000000001\",\"status\":\"completed\","
                        "\"fundSource\":\"LOAN\"}");
    free(s);
    s = response_error(CAUSE_INSUFFICIENT_FUNDS, "insufficient funds");
    ck_assert_str_eq(s,
                     "{\"errorMessage\":\"insufficient funds\",\"cause\":\"INSUFFICIENT_FUNDS\"}");
    free(s);
    s = response_callback("OK", "Callback received by Millom");
    ck_assert_str_eq(s, "{\"status\":\"OK\",\"message\":\"Callback received by Millom\"}");
    free(s);
    /* Bytes that are not UTF-8 never make an answer disappear. */
    strcpy(p.message, "bad \xff byte");
    s = response_completed(&p);
    ck_assert_ptr_nonnull(strstr(s, "bad ? byte"));
    free(s);
}
END_TEST

START_TEST(activate_answers_are_classified) {
    activation_result r;
    parse(200,
          "{\"activationStatus\":{\"status\":\"OK\"},\"activationTime\":\"2018-09-13T06:17:21+00:"
          "00\","
          "\"confirmationCode\":\"tp-123\"}",
          &r);
    ck_assert_int_eq(r.kind, ACT_COMPLETED);
    ck_assert_str_eq(r.confirmation_code, "tp-123");
    /* The spec's example: activationStatus as a bare string. */
    parse(200, "{\"activationStatus\":\"OK\",\"confirmationCode\":\"x\"}", &r);
    ck_assert_int_eq(r.kind, ACT_COMPLETED);
    parse(200, "{\"activationStatus\":{\"status\":\"PENDING\"}}", &r);
    ck_assert_int_eq(r.kind, ACT_PENDING);
    parse(200,
          "{\"activationStatus\":{\"status\":\"FAIL\",\"errorMessage\":{\"errorType\":"
          "\"INSUFFICIENT_FUNDS\",\"message\":\"balance 12 too low for 924542610003\"}}}",
          &r);
    ck_assert_int_eq(r.kind, ACT_FAILED);
    ck_assert_str_eq(r.error_type, "INSUFFICIENT_FUNDS");
    ck_assert_str_eq(r.message, "balance 12 too low for 9245****0003"); /* masked */
    parse(200, "{\"activationStatus\":{\"status\":\"FAIL\"}}", &r);
    ck_assert_int_eq(r.kind, ACT_FAILED);
    /* Any status: PURCHASE_ALREADY_EXECUTED means done. */
    parse(409, "{\"errorType\":\"PURCHASE_ALREADY_EXECUTED\",\"confirmationCode\":\"c9\"}", &r);
    ck_assert_int_eq(r.kind, ACT_ALREADY);
    ck_assert_str_eq(r.confirmation_code, "c9");
    parse(200,
          "{\"activationStatus\":{\"status\":\"FAIL\",\"errorMessage\":{\"errorType\":"
          "\"PURCHASE_ALREADY_EXECUTED\"}}}",
          &r);
    ck_assert_int_eq(r.kind, ACT_ALREADY);
    /* Definite refusals. */
    parse(400, "{\"errorType\":\"INVALID_PRODUCT\",\"message\":\"no such offer\"}", &r);
    ck_assert_int_eq(r.kind, ACT_FAILED);
    ck_assert_str_eq(r.message, "no such offer");
    parse(403, "{\"errorType\":\"USER_BARRED\"}", &r);
    ck_assert_int_eq(r.kind, ACT_FAILED);
    parse(500, "{\"errorType\":\"INSUFFICIENT_FUNDS\"}", &r);
    ck_assert_int_eq(r.kind, ACT_FAILED);
    parse(400, "not json", &r);
    ck_assert_int_eq(r.kind, ACT_FAILED);
    parse(404, "", &r);
    ck_assert_int_eq(r.kind, ACT_FAILED);
    /* Unknown outcomes. */
    parse(504, "{\"errorType\":\"TIMEOUT\"}", &r);
    ck_assert_int_eq(r.kind, ACT_UNKNOWN);
    parse(500, "{\"errorType\":\"INTERNAL_ERROR\"}", &r);
    ck_assert_int_eq(r.kind, ACT_UNKNOWN);
    parse(502, "<html>bad gateway</html>", &r);
    ck_assert_int_eq(r.kind, ACT_UNKNOWN);
    parse(500, "{\"errorType\":\"SOMETHING_NEW\"}", &r);
    ck_assert_int_eq(r.kind, ACT_UNKNOWN);
    parse(200, "{\"hello\":1}", &r);
    ck_assert_int_eq(r.kind, ACT_UNKNOWN);
    parse(200, "garbage", &r);
    ck_assert_int_eq(r.kind, ACT_UNKNOWN);
    activation_parse(0, NULL, 0, 1, &r); /* timed out / connection lost */
    ck_assert_int_eq(r.kind, ACT_UNKNOWN);
    /* Certainly not executed. */
    activation_parse(0, NULL, 0, 0, &r); /* connection refused */
    ck_assert_int_eq(r.kind, ACT_NOT_EXECUTED);
    parse(503, "{\"errorType\":\"CONGESTED\"}", &r);
    ck_assert_int_eq(r.kind, ACT_NOT_EXECUTED);
    parse(429, "", &r);
    ck_assert_int_eq(r.kind, ACT_NOT_EXECUTED);
}
END_TEST

START_TEST(activation_request_shape) {
    purchase p = base();
    char *body = activation_body(&p, "App", "http://127.0.0.1:8080/activationCallback/tp");
    ck_assert_str_eq(body, "{\"channelId\":\"App\",\"serviceProviderId\":\"testserviceprovider\","
                           "\"offerId\":\"plan1234\",\"transId\":\"tx-0000000001\","
                           "\"callbackUrl\":\"http://127.0.0.1:8080/activationCallback/tp\","
                           "\"fundSource\":\"WALLET\"}");
    free(body);
    /* The operator gets the derived transId when the row has one. */
    purchase_operator_transid(p.service_provider, p.transid, p.op_transid);
    body = activation_body(&p, "App", NULL);
    ck_assert_ptr_nonnull(strstr(body, "\"transId\":\"b1384f79-70c5-8081-8b5c-cbcbfacbd855\""));
    ck_assert_ptr_null(strstr(body, "tx-0000000001"));
    free(body);
    strcpy(p.client_name, "CRMS");
    body = activation_body(&p, "App", NULL);
    ck_assert_ptr_nonnull(strstr(body, "\"channelId\":\"CRMS\""));
    ck_assert_ptr_null(strstr(body, "callbackUrl"));
    free(body);

    tenant_operator op = {.id = "tp", .backend_url = "http://127.0.0.1:9090"};
    char url[256];
    ck_assert_int_eq(activation_url(&op, &p, url, sizeof url), 0);
    ck_assert_str_eq(url, "http://127.0.0.1:9090/activate/924542610003?customerIdType=MSISDN");
    strcpy(p.key_type, "OPET");
    strcpy(p.subscriber, "OPET tp/3");
    ck_assert_int_eq(activation_url(&op, &p, url, sizeof url), 0);
    ck_assert_str_eq(url, "http://127.0.0.1:9090/activate/OPET%20tp%2F3?customerIdType=OPET");
    ck_assert_int_eq(activation_url(&op, &p, url, 20), -1);
}
END_TEST

START_TEST(completed_and_pending_and_failed_rows) {
    purchase p = base(), next = {0};
    activation_result r;
    parse(200,
          "{\"activationStatus\":{\"status\":\"OK\"},\"confirmationCode\":\"C1\","
          "\"message\":\"done\"}",
          &r);
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 5000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_COMPLETED);
    ck_assert_str_eq(next.confirmation_code, "C1");
    ck_assert_int_eq(next.http_status, 200);
    ck_assert_int_eq(next.completed_ms, 5000);
    ck_assert_int_eq(next.updated_ms, 5000);
    ck_assert_str_eq(next.response_body,
                     "{\"transid\":\"tx-0000000001\",\"status\":\"completed\",\"fundSource\":"
                     "\"WALLET\",\"transactionMessage\":\"done\",\"confirmationCode\":\"C1\"}");

    parse(200, "{\"activationStatus\":{\"status\":\"PENDING\"}}", &r);
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 5000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_PENDING);
    ck_assert_ptr_null(next.response_body);
    ck_assert_int_eq(next.http_status, 0);

    parse(402, "{\"errorType\":\"INSUFFICIENT_FUNDS\"}", &r);
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 5000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_FAILED);
    ck_assert_str_eq(next.error_type, "INSUFFICIENT_FUNDS");
    ck_assert_int_eq(next.http_status, 402);
    ck_assert_str_eq(next.response_body,
                     "{\"errorMessage\":\"insufficient funds\",\"cause\":\"INSUFFICIENT_FUNDS\"}");

    /* Already executed keeps a code it had, takes one it is given. */
    strcpy(p.confirmation_code, "OLD");
    parse(409, "{\"errorType\":\"PURCHASE_ALREADY_EXECUTED\"}", &r);
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 5000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_COMPLETED);
    ck_assert_str_eq(next.confirmation_code, "OLD");
    ck_assert_str_eq(next.error_type, "");
    parse(409, "{\"errorType\":\"PURCHASE_ALREADY_EXECUTED\",\"confirmationCode\":\"NEW\"}", &r);
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 5000, 0, &next), 0);
    ck_assert_str_eq(next.confirmation_code, "NEW");
    purchase_clear(&next);
}
END_TEST

START_TEST(unknown_outcomes_are_retried_and_never_failed_blindly) {
    purchase p = base(), next = {0};
    activation_result r;
    parse(504, "{\"errorType\":\"TIMEOUT\"}", &r);
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 10000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_ACTIVATING);
    ck_assert_int_eq(next.maybe_executed, 1);
    ck_assert_int_eq(next.next_attempt_ms, 10000 + 250); /* 0.5 s with rnd 0: half */
    ck_assert_ptr_null(next.response_body);

    /* Past max attempts with a call that may have executed: keep going. */
    p.attempts = 25;
    p.maybe_executed = 1;
    activation_parse(0, NULL, 0, 0, &r); /* refused now */
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 10000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_ACTIVATING);
    ck_assert_int_eq(next.next_attempt_ms, 10000 + 15000);
    /* ... at the maximum backoff even when max attempts is small. */
    p.attempts = 3;
    ck_assert_int_eq(outcome_after_activation(&p, &r, 3, NULL, 10000, 0, &next), 0);
    ck_assert_int_eq(next.next_attempt_ms, 10000 + 15000);
    ck_assert_int_eq(outcome_after_activation(&p, &r, 4, NULL, 10000, 0, &next), 0);
    ck_assert_int_eq(next.next_attempt_ms, 10000 + 1000);

    /* Every call refused before processing: failed at max attempts. */
    p.attempts = 19;
    p.maybe_executed = 0;
    parse(503, "{\"errorType\":\"CONGESTED\"}", &r);
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 10000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_ACTIVATING);
    p.attempts = 20;
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 10000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_FAILED);
    ck_assert_int_eq(next.http_status, 503);
    ck_assert_ptr_nonnull(strstr(next.response_body, "SERVICE_UNAVAILABLE"));

    /* PURCHASE_IN_PROGRESS: a conflict on a first call, our own earlier
     * call on a later one. */
    p.attempts = 1;
    p.maybe_executed = 0;
    parse(409, "{\"errorType\":\"PURCHASE_IN_PROGRESS\"}", &r);
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 10000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_FAILED);
    ck_assert_int_eq(next.http_status, 409);
    p.attempts = 2;
    p.maybe_executed = 1;
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, NULL, 10000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_ACTIVATING);
    purchase_clear(&next);
}
END_TEST

START_TEST(backoff_doubles_to_thirty_seconds_with_jitter) {
    ck_assert_int_eq(retry_backoff_ms(1, 0), 250);
    ck_assert_int_eq(retry_backoff_ms(1, 250), 500);
    ck_assert_int_eq(retry_backoff_ms(1, 251), 250); /* wraps within [d/2, d] */
    ck_assert_int_eq(retry_backoff_ms(2, 0), 500);
    ck_assert_int_eq(retry_backoff_ms(3, 0), 1000);
    ck_assert_int_eq(retry_backoff_ms(7, 0), 15000);
    ck_assert_int_eq(retry_backoff_ms(8, 0), 15000); /* 64 s capped to 30 s */
    ck_assert_int_eq(retry_backoff_ms(8, 15000), 30000);
    ck_assert_int_eq(retry_backoff_ms(1000, 0xffffffffu) <= 30000, 1);
    ck_assert_int_eq(retry_backoff_ms(0, 0), 250);
    for (uint32_t rnd = 0; rnd < 100000; rnd += 997) {
        int64_t d = retry_backoff_ms(4, rnd);
        ck_assert(d >= 2000 && d <= 4000);
    }
}
END_TEST

/* A PENDING answer schedules the first re-check MILLOM_PENDING_RECHECK_S
 * later; the delay then doubles (jittered, never below the first) to the
 * cap. */
START_TEST(pending_schedules_rechecks_with_backoff) {
    recheck_policy pol = {.first_ms = 60000, .max_ms = 600000};
    purchase p = base(), next = {0};
    activation_result r;
    parse(200, "{\"activationStatus\":{\"status\":\"PENDING\"}}", &r);
    ck_assert_int_eq(outcome_after_activation(&p, &r, 20, &pol, 5000, 12345, &next), 0);
    ck_assert_int_eq(next.state, PS_PENDING);
    ck_assert_int_eq(next.next_attempt_ms, 5000 + 60000); /* exactly, no jitter */
    ck_assert_int_eq(next.rechecks, 0);
    ck_assert_int_eq(recheck_delay_ms(&pol, 0, 0), 60000);
    ck_assert_int_eq(recheck_delay_ms(&pol, 1, 0), 60000); /* [60, 120] s */
    ck_assert_int_eq(recheck_delay_ms(&pol, 1, 60000), 120000);
    ck_assert_int_eq(recheck_delay_ms(&pol, 3, 0), 240000); /* [240, 480] s */
    ck_assert_int_eq(recheck_delay_ms(&pol, 4, 0), 300000); /* 960 s capped to 600 */
    ck_assert_int_eq(recheck_delay_ms(&pol, 1000, 0xffffffffu) <= 600000, 1);
    for (uint32_t rnd = 0; rnd < 100000; rnd += 997) {
        int64_t d = recheck_delay_ms(&pol, 2, rnd);
        ck_assert(d >= 120000 && d <= 240000);
    }
    recheck_policy tiny = {.first_ms = 1000, .max_ms = 500}; /* max below first: first */
    ck_assert_int_eq(recheck_delay_ms(&tiny, 5, 0xffffffffu), 1000);
    purchase_clear(&next);
}
END_TEST

/* The operator's answer to a re-check of a pending purchase: its stored
 * outcome ends the wait; anything else waits for the next re-check. */
START_TEST(recheck_answers_decide_pending_purchases) {
    recheck_policy pol = {.first_ms = 1000, .max_ms = 8000};
    purchase p = base(), next = {0};
    p.state = PS_PENDING;
    p.attempts = 2;
    p.rechecks = 1;
    strcpy(p.message, "in progress");
    activation_result r;

    /* OK with the code: completed. */
    parse(200, "{\"activationStatus\":{\"status\":\"OK\"},\"confirmationCode\":\"tp-1\"}", &r);
    ck_assert_int_eq(outcome_after_recheck(&p, &r, &pol, 9000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_COMPLETED);
    ck_assert_str_eq(next.confirmation_code, "tp-1");
    ck_assert_int_eq(next.http_status, 200);
    ck_assert_int_eq(next.completed_ms, 9000);
    ck_assert_int_eq(next.next_attempt_ms, 0);
    /* ALREADY_EXECUTED (409): completed. */
    parse(409, "{\"errorType\":\"PURCHASE_ALREADY_EXECUTED\"}", &r);
    ck_assert_int_eq(outcome_after_recheck(&p, &r, &pol, 9000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_COMPLETED);
    /* A FAIL activationStatus is final whatever its errorType (the same
     * INTERNAL_ERROR as an activation answer would be retried). */
    parse(200,
          "{\"activationStatus\":{\"status\":\"FAIL\",\"errorMessage\":{\"errorType\":"
          "\"INTERNAL_ERROR\",\"message\":\"provisioning failed\"}}}",
          &r);
    ck_assert_int_eq(r.kind, ACT_UNKNOWN);
    ck_assert_int_eq(r.status_fail, 1);
    ck_assert_int_eq(outcome_after_recheck(&p, &r, &pol, 9000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_FAILED);
    ck_assert_str_eq(next.error_type, "INTERNAL_ERROR");
    ck_assert_int_eq(next.http_status, 503);
    ck_assert_str_eq(next.message,
                     "operator backend internal error"); /* not the operator's words */
    /* A definite errorType: failed. */
    parse(402, "{\"errorType\":\"INSUFFICIENT_FUNDS\"}", &r);
    ck_assert_int_eq(outcome_after_recheck(&p, &r, &pol, 9000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_FAILED);
    ck_assert_int_eq(next.http_status, 402);

    /* Still pending, in progress, a conflict, or no telling: stays pending,
     * texts kept, the next re-check later (rechecks 2: [2, 4] s). */
    static const struct {
        long status;
        const char *body;
    } WAIT[] = {
        {200, "{\"activationStatus\":{\"status\":\"PENDING\"}}"},
        {409, "{\"errorType\":\"PURCHASE_IN_PROGRESS\"}"},
        {409, "{\"errorType\":\"CONFLICT\"}"},
        {504, "{\"errorType\":\"TIMEOUT\"}"},
        {500, "{\"errorType\":\"INTERNAL_ERROR\"}"},
        {503, "{\"errorType\":\"CONGESTED\"}"},
        {502, "bad gateway"},
        {429, ""},
        {0, NULL},
    };
    for (size_t i = 0; i < sizeof WAIT / sizeof WAIT[0]; i++) {
        parse(WAIT[i].status, WAIT[i].body, &r);
        ck_assert_int_eq(outcome_after_recheck(&p, &r, &pol, 9000, 0, &next), 0);
        ck_assert_msg(next.state == PS_PENDING, "answer %zu: state %s", i,
                      purchase_state_name(next.state));
        ck_assert_int_eq(next.rechecks, 2);
        ck_assert_int_eq(next.next_attempt_ms, 9000 + 2000);
        ck_assert_int_eq(next.updated_ms, 9000);
        ck_assert_str_eq(next.message, "in progress");
        ck_assert_str_eq(next.error_type, "");
        ck_assert_ptr_null(next.response_body);
    }
    /* A lost connection (no status, connected) too. */
    activation_parse(0, NULL, 0, 0, &r);
    ck_assert_int_eq(outcome_after_recheck(&p, &r, &pol, 9000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_PENDING);
    purchase_clear(&next);
}
END_TEST

START_TEST(callbacks_complete_or_fail) {
    purchase p = base(), next = {0};
    p.state = PS_PENDING;
    ck_assert_int_eq(outcome_after_callback(&p, 1, "", "ok", 7000, &next), 0);
    ck_assert_int_eq(next.state, PS_COMPLETED);
    ck_assert_int_eq(next.http_status, 200);
    ck_assert_int_eq(next.completed_ms, 7000);
    ck_assert_ptr_nonnull(strstr(next.response_body, "\"status\":\"completed\""));
    ck_assert_int_eq(outcome_after_callback(&p, 0, "USER_BARRED", NULL, 7000, &next), 0);
    ck_assert_int_eq(next.state, PS_FAILED);
    ck_assert_int_eq(next.http_status, 403);
    ck_assert_str_eq(next.response_body, "{\"errorMessage\":\"subscriber is barred by the "
                                         "operator\",\"cause\":\"NOT_ALLOWED\"}");
    ck_assert_int_eq(outcome_after_callback(&p, 0, "PURCHASE_ALREADY_EXECUTED", "", 7000, &next),
                     0);
    ck_assert_int_eq(next.state, PS_COMPLETED);
    ck_assert_int_eq(outcome_after_callback(&p, 0, "", "who knows", 7000, &next), 0);
    ck_assert_int_eq(next.state, PS_FAILED);
    ck_assert_int_eq(next.http_status, 500);
    ck_assert_int_eq(outcome_after_callback(&p, 0, "TIMEOUT", "", 7000, &next), 0);
    ck_assert_int_eq(next.http_status, 503);
    purchase_clear(&next);
}
END_TEST

START_TEST(offers_give_the_plan_price) {
    json_t *offers =
        json_loads("{\"subscriberState\":\"GOOD_TO_GO\",\"offers\":["
                   "{\"id\":\"plan1234\",\"name\":\"3G\",\"cost\":{\"currency\":\"PKR\",\"value\":"
                   "\"160.00\"},\"fundSource\":\"PURCHASE\"},"
                   "{\"id\":\"plan1235\",\"name\":\"Social\",\"cost\":{\"value\":60.1},"
                   "\"fundSource\":\"EWALLET\"},"
                   "{\"id\":\"bad\",\"name\":\"x\",\"cost\":{\"value\":\"1.234\"}}]}",
                   0, NULL);
    ck_assert_ptr_nonnull(offers);
    int64_t price = 0;
    char cur[8], fund[8];
    ck_assert_int_eq(offers_find_price(offers, "plan1234", 2, "PKR", &price, cur, sizeof cur, fund),
                     1);
    ck_assert_int_eq(price, 16000);
    ck_assert_str_eq(cur, "PKR");
    ck_assert_str_eq(fund, ""); /* the spec example's "PURCHASE" is none of the four */
    ck_assert_int_eq(offers_find_price(offers, "plan1235", 2, "XYZ", &price, cur, sizeof cur, fund),
                     1);
    ck_assert_int_eq(price, 6010);
    ck_assert_str_eq(cur, "XYZ");
    ck_assert_str_eq(fund, "EWALLET");
    ck_assert_int_eq(offers_find_price(offers, "nope", 2, "PKR", &price, cur, sizeof cur, fund), 0);
    ck_assert_int_eq(offers_find_price(offers, "bad", 2, "PKR", &price, cur, sizeof cur, fund), -1);
    json_decref(offers);
    offers = json_loads("{\"offers\":{}}", 0, NULL);
    ck_assert_int_eq(offers_find_price(offers, "plan1234", 2, "PKR", &price, cur, sizeof cur, fund),
                     -1);
    json_decref(offers);
}
END_TEST

START_TEST(funds_and_eligibility_answers) {
    json_t *acct = json_loads("{\"monetaryBalance\":{\"currency\":\"PKR\",\"value\":5},"
                              "\"ewalletBalance\":{\"currency\":\"PKR\",\"value\":\"150.00\"}}",
                              0, NULL);
    ck_assert_int_eq(funds_cover(acct, "WALLET", 500, 2), 1);
    ck_assert_int_eq(funds_cover(acct, "WALLET", 501, 2), 0);
    ck_assert_int_eq(funds_cover(acct, "EWALLET", 15000, 2), 1);
    ck_assert_int_eq(funds_cover(acct, "EWALLET", 15001, 2), 0);
    ck_assert_int_eq(funds_cover(acct, "LOAN", 999999, 2), 1);
    ck_assert_int_eq(funds_cover(NULL, "FREE", 0, 2), 1);
    ck_assert_int_eq(funds_cover(NULL, "WALLET", 1, 2), -1);
    json_decref(acct);
    acct = json_loads("{\"monetaryBalance\":{\"value\":5}}", 0, NULL);
    ck_assert_int_eq(funds_cover(acct, "EWALLET", 1, 2), 0); /* no e-wallet: nothing in it */
    ck_assert_int_eq(funds_cover(acct, "EWALLET", 0, 2), 1);
    json_decref(acct);
    acct = json_loads("{\"monetaryBalance\":{\"value\":\"lots\"}}", 0, NULL);
    ck_assert_int_eq(funds_cover(acct, "WALLET", 1, 2), -1);
    json_decref(acct);

    eligibility e = {.plan_id = "tp-video-hour",
                     .fund_source = "WALLET",
                     .price_minor = 1550,
                     .currency = "PKR",
                     .currency_scale = 2};
    char *text = response_eligibility(&e);
    ck_assert_str_eq(text, "{\"planId\":\"tp-video-hour\",\"fundSource\":\"WALLET\","
                           "\"eligible\":true,\"cost\":\"15.50\",\"costCurrency\":\"PKR\"}");
    free(text);
    e.price_minor = -1;
    e.cause = "NOT_ALLOWED";
    e.message = "subscriber is barred";
    e.error_type = "USER_BARRED";
    text = response_eligibility(&e);
    ck_assert_str_eq(text,
                     "{\"planId\":\"tp-video-hour\",\"fundSource\":\"WALLET\","
                     "\"eligible\":false,\"status\":403,\"cause\":\"NOT_ALLOWED\","
                     "\"errorMessage\":\"subscriber is barred\",\"errorType\":\"USER_BARRED\"}");
    free(text);
}
END_TEST

START_TEST(texts_are_cut_and_masked_safely) {
    char out[8];
    text_copy(out, sizeof out, "abcdefghij");
    ck_assert_str_eq(out, "abcdefg");
    text_copy(out, sizeof out, "abcdef\xc3\xa9"); /* é would be cut in two */
    ck_assert_str_eq(out, "abcdef");
    text_copy(out, sizeof out, NULL);
    ck_assert_str_eq(out, "");
    char m[64];
    outcome_mask_digits("call 924542610003 or 1234567, code 123456", m, sizeof m);
    ck_assert_str_eq(m, "call 9245****0003 or 12***67, code 123456");
    outcome_mask_digits("tab\there", m, sizeof m);
    ck_assert_str_eq(m, "tab here");
    char small[4];
    outcome_mask_digits("ab\xc3\xa9xyz", small, sizeof small);
    ck_assert_str_eq(small, "ab"); /* not "ab\xc3" */
}
END_TEST

START_TEST(state_names_round_trip) {
    for (int s = PS_RECEIVED; s <= PS_FAILED; s++)
        ck_assert_int_eq(purchase_state_parse(purchase_state_name((purchase_state)s)), s);
    ck_assert_int_eq(purchase_state_parse("bogus"), -1);
    ck_assert_int_eq(purchase_state_proto(PS_PENDING),
                     MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_PENDING);
    ck_assert_str_eq(activation_kind_name(ACT_NOT_EXECUTED), "not-executed");
}
END_TEST

START_TEST(operator_transids_are_stable_and_per_provider) {
    char a[37], b[37], c[37], d[37];
    /* Fixed: the same on every instance, every restart, every retry. */
    purchase_operator_transid("testserviceprovider", "tx-0000000001", a);
    ck_assert_str_eq(a, "b1384f79-70c5-8081-8b5c-cbcbfacbd855");
    purchase_operator_transid("testserviceprovider", "tx-0000000001", b);
    ck_assert_str_eq(a, b);
    /* Another provider's same transid, or another transid: different. */
    purchase_operator_transid("sp1", "tx-0000000001", a);
    purchase_operator_transid("sp2", "tx-0000000001", b);
    purchase_operator_transid("sp1", "tx-0000000002", c);
    ck_assert_str_ne(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_str_eq(a, "2044455a-dac6-89e9-9a7f-0a08d358e287");
    ck_assert_str_eq(b, "01352186-41c2-8c09-a08e-ff8861b2b2b7");
    /* Fields are length-prefixed: moving the boundary changes the id. */
    purchase_operator_transid("ab", "c-00000000", c);
    purchase_operator_transid("a", "bc-00000000", d);
    ck_assert_str_ne(c, d);
    /* RFC 4122 layout: 8-4-4-4-12 lower-case hex, version 8, variant 10;
     * the backend spec's transId (>= 10 of letters, digits, dashes). */
    const char *ids[] = {a, b, c, d};
    for (size_t k = 0; k < 4; k++) {
        const char *id = ids[k];
        ck_assert_uint_eq(strlen(id), 36);
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                ck_assert_int_eq(id[i], '-');
            else
                ck_assert_ptr_nonnull(strchr("0123456789abcdef", id[i]));
        }
        ck_assert_int_eq(id[14], '8');
        ck_assert_ptr_nonnull(strchr("89ab", id[19]));
    }
}
END_TEST

START_TEST(callbacks_must_name_the_purchase_subscriber) {
    purchase p = base();
    ck_assert_int_eq(callback_subscriber_matches(&p, "MSISDN", "924542610003"), 1);
    ck_assert_int_eq(callback_subscriber_matches(&p, "MSISDN", "924542610004"), 0);
    ck_assert_int_eq(callback_subscriber_matches(&p, "OPET", "924542610003"), 0);
    ck_assert_int_eq(callback_subscriber_matches(&p, "CPID", "924542610003"), 0);
    ck_assert_int_eq(callback_subscriber_matches(&p, "MSISDN", ""), 0);
    ck_assert_int_eq(callback_subscriber_matches(&p, "MSISDN", NULL), 0);
    /* The backend spec's callback names no subscriber. */
    ck_assert_int_eq(callback_subscriber_matches(&p, "", ""), 1);
    ck_assert_int_eq(callback_subscriber_matches(&p, NULL, NULL), 1);
    strcpy(p.key_type, "OPET");
    strcpy(p.subscriber, "opet-token-1");
    ck_assert_int_eq(callback_subscriber_matches(&p, "OPET", "opet-token-1"), 1);
    ck_assert_int_eq(callback_subscriber_matches(&p, "MSISDN", "opet-token-1"), 0);
    ck_assert_int_eq(callback_subscriber_matches(&p, "OPET", "opet-token-2"), 0);
}
END_TEST

START_TEST(timer_message_names_nobody) {
    const char *m = purchase_timer_message();
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(strstr(m, "provider"));
    ck_assert_ptr_null(strstr(m, "transid"));
    ck_assert_ptr_null(strstr(m, "ago"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("purchase_executor_outcome");
    TCase *tc = tcase_create("outcome");
    tcase_add_test(tc, error_types_map_to_causes);
    tcase_add_test(tc, answers_have_the_spec_shapes);
    tcase_add_test(tc, activate_answers_are_classified);
    tcase_add_test(tc, activation_request_shape);
    tcase_add_test(tc, completed_and_pending_and_failed_rows);
    tcase_add_test(tc, unknown_outcomes_are_retried_and_never_failed_blindly);
    tcase_add_test(tc, backoff_doubles_to_thirty_seconds_with_jitter);
    tcase_add_test(tc, callbacks_complete_or_fail);
    tcase_add_test(tc, pending_schedules_rechecks_with_backoff);
    tcase_add_test(tc, recheck_answers_decide_pending_purchases);
    tcase_add_test(tc, offers_give_the_plan_price);
    tcase_add_test(tc, texts_are_cut_and_masked_safely);
    tcase_add_test(tc, funds_and_eligibility_answers);
    tcase_add_test(tc, state_names_round_trip);
    tcase_add_test(tc, operator_transids_are_stable_and_per_provider);
    tcase_add_test(tc, callbacks_must_name_the_purchase_subscriber);
    tcase_add_test(tc, timer_message_names_nobody);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
