/* Restart over existing state (issue 12, item 2): the whole stack but
 * devbroker is stopped while work is in flight and started again on the
 * same data directory. Two rounds on one stack: first a graceful stop
 * (SIGTERM to every program), then a crash (SIGKILL to every program).
 *
 * In flight at each stop:
 *   - pending:    async purchases (tp-data-weekly-async) the operator
 *                 accepted as PENDING with a 10-minute callback delay;
 *   - activating: purchases whose /activate the operator refused with 503
 *                 (not recorded there), and purchases whose /activate the
 *                 operator executed (debited) but whose answer it holds
 *                 (behaviour "hang"), so purchase-executor does not know
 *                 the outcome;
 *   - queued deliveries: notifications accepted (202) while sp-sandbox
 *                 answers every request 503.
 *
 * After the restart every program must become ready, and the work must
 * complete with the sandboxes back to normal (their behaviour is in
 * memory, so a restart resets it): every purchase completed with exactly
 * one debit at mno-sandbox (pending ones by mno-sandbox's callback: it
 * schedules activations left PENDING again at its start), and every
 * notification answered 200 by sp-sandbox at least once.
 *
 * Everything is polled with a bound; nothing measures wall-clock time. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BASE_PORT 19580
#define SP "testserviceprovider"
/* Per round: async purchases left pending, purchases left activating by a
 * refused /activate, by a held answer, and queued notifications. */
#define PENDING 2
#define REFUSED 2
#define HELD 2
#define PURCHASES (PENDING + REFUSED + HELD)
#define NOTIFICATIONS 6
/* NEED_LOANS subscriber: LOAN plans need no money, so every round can buy. */
#define LOAN_MSISDN "924542610002"
#define LOAN_PLAN "tp-loan-social-200mb"
/* POSTPAID subscriber with 2500.00: room for the async plans (250.00
 * each) of both rounds. */
#define ASYNC_MSISDN "924542610006"
#define ASYNC_PLAN "tp-data-weekly-async"
/* The subscriber the operator notifies (consented once). */
#define NOTIFY_MSISDN "924542610003"
#define NOTIFY_TYPE "out-of-data"

static test_stack stack;
static char edge[64], mno[64], sp[64], notifier_admin[64];

/* A transid or transactionId unique to this run, round and kind. */
static void make_id(char *buf, size_t len, const char *kind, int round, int k) {
    snprintf(buf, len, "restart-%ld-r%d-%s-%d", (long)getpid(), round, kind, k);
}

/* POST a behaviour to a sandbox's /admin/behaviour (base: its URL). */
static void set_behaviour(const char *base, const char *json) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/behaviour", base);
    long status = 0;
    json_decref(test_post_json(url, json, &status));
    ck_assert_msg(status == 200, "behaviour %s at %s: %ld", json, base, status);
}

/* The offerContext upsellOffer gives the subscriber for a plan (caller
 * frees). With it purchase-executor needs no /offers call, so a purchase
 * reaches /activate even while the operator refuses or holds answers. */
static char *offer_context(const char *msisdn, const char *plan) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/upsellOffer", edge, msisdn);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    char *ctx = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "offers"), i, o) {
        const char *id = json_string_value(json_object_get(o, "planId"));
        if (id && strcmp(id, plan) == 0)
            ctx = strdup(json_string_value(json_object_get(o, "offerContext")));
    }
    json_decref(j);
    ck_assert_msg(ctx != NULL, "plan %s not offered to %s", plan, msisdn);
    return ctx;
}

/* purchasePlan through api-edge (fund: "LOAN", or NULL for the default);
 * the HTTP status. */
static long purchase(const char *msisdn, const char *transid, const char *plan, const char *ctx,
                     const char *fund) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, msisdn);
    json_t *body = json_pack("{s:s, s:s}", "transid", transid, "planid", plan);
    if (ctx) json_object_set_new(body, "offercontext", json_string(ctx));
    if (fund) json_object_set_new(body, "fundSource", json_string(fund));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    long status = 0;
    json_decref(test_post_json(url, text, &status));
    free(text);
    return status;
}

/* The purchase's state from the management look-up, into state (empty
 * when the look-up did not answer 200). */
static void lookup_state(const char *transid, char *state, size_t len) {
    char url[256];
    snprintf(url, sizeof url, "%s/mgmt/tp/purchases/%s", edge, transid);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    const char *s = json_string_value(json_object_get(j, "state"));
    snprintf(state, len, "%s", status == 200 && s ? s : "");
    json_decref(j);
}

/* Polls the look-up until the purchase is in `want` (bounded); 0 when it
 * got there, -1 otherwise with the last state seen in `last`. */
static int wait_state(const char *transid, const char *want, char *last, size_t len) {
    for (int i = 0; i < 900; i++) {
        lookup_state(transid, last, len);
        if (strcmp(last, want) == 0) return 0;
        test_sleep_ms(100);
    }
    return -1;
}

/* Debits net of refunds at mno-sandbox for a transId. */
static long net_debits(const char *transid) {
    long d = 0, r = 0;
    ck_assert_int_eq(test_mno_activations(mno, transid, &d, &r), 200);
    return d - r;
}

/* POST /notify/tp/v1/single for the notified subscriber; the status. */
static long notify(const char *tid) {
    char url[256], body[256];
    snprintf(url, sizeof url, "%s/notify/tp/v1/single?idValue=" NOTIFY_MSISDN "&idType=MSISDN",
             edge);
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"type\":\"" NOTIFY_TYPE "\"}", tid);
    test_response r;
    test_http("POST", url, NULL, body, &r);
    long status = r.status;
    test_response_free(&r);
    return status;
}

/* The work one round leaves in flight. */
typedef struct {
    char pending[PENDING][96];
    char refused[REFUSED][96];
    char held[HELD][96];
    char notes[NOTIFICATIONS][96];
} round_work;

/* Puts the round's work in flight: pending and activating purchases,
 * queued notifications. Leaves mno-sandbox holding every answer and
 * sp-sandbox refusing every request. */
static void start_work(int round, round_work *w) {
    char state[32];
    char *loan_ctx = offer_context(LOAN_MSISDN, LOAN_PLAN);

    /* Pending: the operator accepts, and calls back in 10 minutes (long
     * after the restart; mno-sandbox's restart reschedules it sooner). */
    set_behaviour(mno, "{\"callbackDelayMs\":600000}");
    for (int k = 0; k < PENDING; k++) {
        make_id(w->pending[k], sizeof w->pending[k], "pending", round, k);
        ck_assert_int_eq(purchase(ASYNC_MSISDN, w->pending[k], ASYNC_PLAN, NULL, NULL), 202);
        ck_assert_msg(wait_state(w->pending[k], "pending", state, sizeof state) == 0,
                      "%s: %s, not pending", w->pending[k], state);
    }

    /* Activating, not recorded by the operator: /activate answered 503. */
    set_behaviour(mno, "{\"failStatus\":503,\"callbackDelayMs\":600000}");
    for (int k = 0; k < REFUSED; k++) {
        make_id(w->refused[k], sizeof w->refused[k], "refused", round, k);
        ck_assert_int_eq(purchase(LOAN_MSISDN, w->refused[k], LOAN_PLAN, loan_ctx, "LOAN"), 202);
        ck_assert_msg(wait_state(w->refused[k], "activating", state, sizeof state) == 0,
                      "%s: %s, not activating", w->refused[k], state);
        ck_assert_int_eq(net_debits(w->refused[k]), 0);
    }

    /* Activating, executed (debited) by the operator, answer held: the
     * answer a crash or a lost connection never delivers. */
    set_behaviour(mno, "{\"hang\":true,\"callbackDelayMs\":600000}");
    for (int k = 0; k < HELD; k++) {
        make_id(w->held[k], sizeof w->held[k], "held", round, k);
        ck_assert_int_eq(purchase(LOAN_MSISDN, w->held[k], LOAN_PLAN, loan_ctx, "LOAN"), 202);
        long debited = 0;
        for (int i = 0; i < 300 && (debited = net_debits(w->held[k])) == 0; i++) test_sleep_ms(100);
        ck_assert_msg(debited == 1, "%s: the operator never executed it", w->held[k]);
        lookup_state(w->held[k], state, sizeof state);
        ck_assert_msg(strcmp(state, "activating") == 0, "%s: %s, not activating", w->held[k],
                      state);
    }
    free(loan_ctx);

    /* Queued deliveries: sp-sandbox refuses everything. */
    set_behaviour(sp, "{\"failStatus\":503,\"failCount\":0}");
    long depth_before = test_metric(notifier_admin, "millom_delivery_queue_depth");
    for (int k = 0; k < NOTIFICATIONS; k++) {
        make_id(w->notes[k], sizeof w->notes[k], "note", round, k);
        ck_assert_int_eq(notify(w->notes[k]), 202);
    }
    /* Every notification reached the queue and was tried at least once. */
    int tried = 0;
    for (int i = 0; i < 600 && tried < NOTIFICATIONS; i++) {
        tried = 0;
        for (int k = 0; k < NOTIFICATIONS; k++)
            tried += test_sp_received_count(sp, "notification", w->notes[k], 0, NULL, NULL) > 0;
        if (tried < NOTIFICATIONS) test_sleep_ms(100);
    }
    ck_assert_int_eq(tried, NOTIFICATIONS);
    long depth = test_metric(notifier_admin, "millom_delivery_queue_depth");
    fprintf(stderr, "restart round %d: delivery queue depth %ld (was %ld)\n", round, depth,
            depth_before);
    ck_assert_int_ge(depth, NOTIFICATIONS);
    for (int k = 0; k < NOTIFICATIONS; k++)
        ck_assert_int_eq(test_sp_received_count(sp, "notification", w->notes[k], 1, NULL, NULL), 0);
}

/* A purchase of the round completed after the restart, debited once. */
static void check_completed(const char *transid) {
    char state[32];
    ck_assert_msg(wait_state(transid, "completed", state, sizeof state) == 0,
                  "%s: %s after the restart, not completed", transid, state);
    ck_assert_msg(net_debits(transid) == 1, "%s completed with %ld debits", transid,
                  net_debits(transid));
}

/* Everything the round left in flight completed after the restart. */
static void check_work_done(const round_work *w) {
    for (int k = 0; k < PENDING; k++) check_completed(w->pending[k]);
    for (int k = 0; k < REFUSED; k++) check_completed(w->refused[k]);
    for (int k = 0; k < HELD; k++) check_completed(w->held[k]);
    for (int k = 0; k < NOTIFICATIONS; k++) {
        int ok = 0;
        for (int i = 0; i < 600; i++) {
            ok = test_sp_received_count(sp, "notification", w->notes[k], 1, NULL, NULL);
            if (ok > 0) break;
            test_sleep_ms(100);
        }
        ck_assert_msg(ok > 0, "%s never reached sp-sandbox after the restart", w->notes[k]);
    }
}

/* One round: work in flight, the whole stack stopped with sig and started
 * again, the work done. */
static void restart_round(int round, int sig) {
    round_work w;
    start_work(round, &w);
    ck_assert_msg(stack_restart_all(&stack, sig, 60000) == 0,
                  "the stack did not stop with %s and come back ready",
                  sig == SIGTERM ? "SIGTERM" : "SIGKILL");
    check_work_done(&w);
}

START_TEST(graceful_restart_completes_the_work) { restart_round(1, SIGTERM); }
END_TEST

START_TEST(crash_restart_completes_the_work) { restart_round(2, SIGKILL); }
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char public_url[64], callback_url[80], mno_callback_url[96], mno_millom_url[80];
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    snprintf(callback_url, sizeof callback_url, "MILLOM_CALLBACK_BASE_URL=http://127.0.0.1:%d",
             BASE_PORT);
    snprintf(mno_callback_url, sizeof mno_callback_url,
             "MILLOM_MNO_CALLBACK_URL=http://127.0.0.1:%d/activationCallback/tp", BASE_PORT);
    snprintf(mno_millom_url, sizeof mno_millom_url, "MILLOM_MNO_MILLOM_URL=http://127.0.0.1:%d",
             BASE_PORT);
    const char *env[] = {"MILLOM_PURCHASE_TIMER_S=0", "MILLOM_PURCHASE_DEADLINE_MS=2000",
                         "MILLOM_ACTIVATE_TIMEOUT_MS=1000", "MILLOM_KAFKA_SESSION_TIMEOUT_MS=5000",
                         "MILLOM_NOTIFY_BACKOFF_MS=50", "MILLOM_NOTIFY_BACKOFF_MAX_MS=500",
                         "MILLOM_NOTIFY_MAX_ATTEMPTS=100000", "MILLOM_NOTIFY_QUOTA=100000",
                         /* After the restart mno-sandbox calls back before
                          * api-edge and purchase-executor may be ready; an
                          * operator retries (200 ms doubling: about 13 min
                          * with 12 POSTs). */
                         "MILLOM_MNO_CALLBACK_ATTEMPTS=12", public_url, callback_url,
                         mno_callback_url, mno_millom_url, NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);
    snprintf(sp, sizeof sp, "http://127.0.0.1:%d", stack.sp_port);
    snprintf(notifier_admin, sizeof notifier_admin, "http://127.0.0.1:%d", stack.notifier_port);
    char consent_tid[64];
    snprintf(consent_tid, sizeof consent_tid, "restart-%ld-consent", (long)getpid());
    if (test_register_consent(edge, SP, NOTIFY_MSISDN, consent_tid, "[\"" NOTIFY_TYPE "\"]") !=
        200) {
        fprintf(stderr, "consent registration failed\n");
        stack_stop(&stack);
        return 1;
    }
    Suite *s = suite_create("restart");
    TCase *tc = tcase_create("whole stack");
    tcase_set_timeout(tc, 600);
    /* In this order: the graceful round, then the crash on top of it. */
    tcase_add_test(tc, graceful_restart_completes_the_work);
    tcase_add_test(tc, crash_restart_completes_the_work);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
