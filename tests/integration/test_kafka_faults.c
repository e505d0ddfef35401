/* Kafka faults end to end: devbroker is killed (SIGKILL) while the whole
 * stack runs. Every service's /readyz turns 503 once no broker was
 * reachable for MILLOM_KAFKA_DOWN_READY_S (2 s here), and millom_kafka_broker_up
 * drops to 0. devbroker is started again: it listens on the same port (the
 * services keep the address they read at start), its topics are new and
 * empty (consumer offsets, changelog positions and the reply reader's
 * position are all past their end), and every service becomes ready again;
 * a purchase and a notification made after the restart complete end to
 * end. Bounds are generous and only ever bound a wait; nothing asserts how
 * fast a step was. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_PORT 19380
#define SP "testserviceprovider"
#define WAIT_NOT_READY_MS 60000
#define WAIT_READY_MS 120000

static test_stack stack;
static char edge[64], mno[64], sp[64];

/* The five services and their admin (or public, for api-edge) ports. */
static const char *const services[] = {"api-edge", "offer-resolver", "purchase-executor",
                                       "notifier", "settlement-reporter"};
static int service_port(int i) {
    const int ports[] = {stack.edge_port, stack.resolver_port, stack.executor_port,
                         stack.notifier_port, stack.settlement_port};
    return ports[i];
}
#define N_SERVICES (int)(sizeof services / sizeof services[0])

static long readyz(int port) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", port);
    test_response r;
    test_http("GET", url, NULL, NULL, &r);
    long status = r.status;
    test_response_free(&r);
    return status;
}

/* Polls until /readyz on port answers 503 (0) or the bound passes (-1). */
static int wait_not_ready(int port, int bound_ms) {
    for (int waited = 0; waited < bound_ms; waited += 200) {
        if (readyz(port) == 503) return 0;
        test_sleep_ms(200);
    }
    return -1;
}

static void read_bootstrap(char *buf, size_t len) {
    buf[0] = '\0';
    FILE *f = fopen(stack.broker_file, "r");
    if (!f) return;
    if (!fgets(buf, (int)len, f)) buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
}

static json_t *purchase(const char *msisdn, const char *transid, const char *plan, long *status) {
    char url[256], body[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, msisdn);
    snprintf(body, sizeof body, "{\"transid\":\"%s\",\"planid\":\"%s\"}", transid, plan);
    return test_post_json(url, body, status);
}

/* Polls the look-up until the purchase is final; its state (caller frees). */
static char *wait_final_state(const char *transid) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s", edge, transid);
    for (int i = 0; i < 600; i++) {
        long status = 0;
        json_t *j = test_get_json(url, NULL, &status);
        const char *state = json_string_value(json_object_get(j, "state"));
        if (status == 200 && state &&
            (strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0)) {
            char *copy = strdup(state);
            json_decref(j);
            return copy;
        }
        json_decref(j);
        test_sleep_ms(100);
    }
    return strdup("(not final)");
}

static long notify(const char *msisdn, const char *tid) {
    char url[256], body[512];
    snprintf(url, sizeof url, "%s/notify/tp/v1/single?idValue=%s&idType=MSISDN", edge, msisdn);
    snprintf(body, sizeof body,
             "{\"transactionId\":\"%s\",\"type\":\"out-of-data\",\"messages\":[{\"language\":"
             "\"en\",\"message\":\"almost out\"}],\"planDetails\":{\"planId\":\"p1\","
             "\"balance\":10,\"quota\":\"2000\",\"expiry\":\"2019-02-28T23:59:59.723+05:00\"}}",
             tid);
    test_response r;
    test_http("POST", url, NULL, body, &r);
    long status = r.status;
    test_response_free(&r);
    return status;
}

/* Polls sp-sandbox until a notification with transactionId tid arrived. */
static int wait_notified(const char *tid) {
    for (int i = 0; i < 600; i++) {
        long status = 0;
        if (test_sp_received_count(sp, "notification", tid, 1, NULL, &status) >= 1) return 1;
        test_sleep_ms(100);
    }
    return 0;
}

/* Registers a consent as a client of the API does: a 503 is retried, with
 * the same transactionId, for up to a minute. After devbroker comes back
 * every service's consumer group rejoins on its own (a session timeout,
 * then the broker's first-join delay): notifier's may be assigned seconds
 * after purchase-executor's (4.9 s in one run), and until then a
 * registration gets no answer within api-edge's 3-s deadline and answers
 * 503 with Retry-After, by contract. Returns the last status and counts
 * the 503s in *unavailable. */
static long register_consent(const char *msisdn, const char *consent, int *unavailable) {
    long status = 0;
    *unavailable = 0;
    for (int i = 0; i < 60; i++) {
        status = test_register_consent(edge, SP, msisdn, consent, "[\"out-of-data\"]");
        if (status != 503) break;
        (*unavailable)++;
        test_sleep_ms(1000);
    }
    return status;
}

/* A purchase (debited once) and a notification, both complete end to end. */
static void purchase_and_notify(const char *tag, const char *msisdn, const char *plan) {
    char tid[96];
    snprintf(tid, sizeof tid, "kf-%s-%ld", tag, (long)getpid());
    long status = 0;
    json_t *j = purchase(msisdn, tid, plan, &status);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    ck_assert_msg(status == 200 || status == 202, "purchase %s answered %ld: %s", tid, status,
                  text ? text : "");
    free(text);
    char *state = wait_final_state(tid);
    ck_assert_str_eq(state, "completed");
    free(state);
    long debits = -1;
    ck_assert_int_eq(test_mno_activations(mno, tid, &debits, NULL), 200);
    ck_assert_int_eq(debits, 1);

    char consent[96], note[96];
    snprintf(consent, sizeof consent, "kf-consent-%s-%ld", tag, (long)getpid());
    int unavailable = 0;
    ck_assert_int_eq(register_consent(msisdn, consent, &unavailable), 200);
    if (unavailable) printf("consent %s: %d answer(s) 503 before 200\n", consent, unavailable);
    snprintf(note, sizeof note, "kf-note-%s-%ld", tag, (long)getpid());
    ck_assert_int_eq(notify(msisdn, note), 202);
    ck_assert_msg(wait_notified(note), "notification %s never reached sp-sandbox", note);
}

START_TEST(devbroker_killed_and_restarted) {
    /* Traffic before the fault, so offsets and changelog positions are
     * past zero when the topics come back empty. */
    purchase_and_notify("before", "924542610003", "tp-social-daily");

    char before[256], after[256];
    read_bootstrap(before, sizeof before);
    ck_assert_str_ne(before, "");
    ck_assert_int_ne(stack_kill(&stack, "devbroker", SIGKILL), -1);

    for (int i = 0; i < N_SERVICES; i++)
        ck_assert_msg(wait_not_ready(service_port(i), WAIT_NOT_READY_MS) == 0,
                      "%s stayed ready without a broker", services[i]);
    char admin[64];
    snprintf(admin, sizeof admin, "http://127.0.0.1:%d", stack.resolver_port);
    ck_assert_int_eq(test_metric(admin, "millom_kafka_broker_up"), 0);

    ck_assert_int_gt(stack_respawn_in_place(&stack, "devbroker", NULL), 0);
    /* The new devbroker names the same address (it reused the port). */
    for (int i = 0; i < 600; i++) {
        read_bootstrap(after, sizeof after);
        if (after[0]) break;
        test_sleep_ms(100);
    }
    ck_assert_str_eq(after, before);

    for (int i = 0; i < N_SERVICES; i++)
        ck_assert_msg(stack_wait_ready(service_port(i), WAIT_READY_MS) == 0,
                      "%s did not become ready after devbroker came back", services[i]);
    ck_assert_int_eq(test_metric(admin, "millom_kafka_broker_up"), 1);

    purchase_and_notify("after", "924542610003", "tp-music-daily");
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *env[] = {"MILLOM_KAFKA_DOWN_READY_S=2", NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);
    snprintf(sp, sizeof sp, "http://127.0.0.1:%d", stack.sp_port);

    Suite *s = suite_create("kafka_faults");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, devbroker_killed_and_restarted);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
