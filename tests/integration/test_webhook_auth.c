/* Millom's webhooks to providers carry credentials a provider can check
 * (issue 15, item 1), end to end: real Kafka through devbroker, notifier
 * with the credentials of a tenants file, and two sp-sandboxes on loopback
 * as the providers, checking them:
 *   testserviceprovider -> sp-sandbox (base + 6): webhookAuth with its own
 *     POST /oauth/token, and two signing secrets (OLD, NEW: a rotation);
 *   otherprovider -> sp-sandbox-2 (base + 7): one signing secret (OTHER).
 * Tests:
 *   - a rich notification and a purchase callback arrive with a bearer
 *     token sp-sandbox issued and both signatures; webhook-id is the
 *     X-Millom-Delivery-Id;
 *   - Millom's own request with its body tampered, a request signed five
 *     minutes and more ago, and one signed with another secret are refused
 *     (401, recorded with the reason);
 *   - rotation: sp-sandbox knowing only OLD, then only NEW, accepts; each
 *     restart also revokes notifier's token (401), which notifier drops
 *     and replaces: delivered all the same;
 *   - a provider with the wrong secret refuses (401) and the delivery is
 *     dead-lettered (a 401 without a token is final);
 *   - the token endpoint down (503): the delivery is retried, never
 *     dead-lettered, and delivered once it answers again, while the other
 *     provider gets its notification meanwhile;
 *   - notifier refuses to start when a secret's variable is not set.
 * Everything is polled with a bound; nothing measures wall-clock time. */
#include "tests/lib/stack.h"
#include "shared/contracts/webhook_signature.h"
#include "shared/plumbing/kafka.h"
#include "millom/v1/purchase.pb-c.h"
#include "millom/v1/subscriber.pb-c.h"

#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BASE_PORT 21300
#define SP2_PORT (BASE_PORT + 7)
#define NOSECRET_PORT (BASE_PORT + 8)
#define SP "testserviceprovider"
#define OTHER "otherprovider"
#define MSISDN "924542610003"
#define TYPE "low-data"

#define SECRET_OLD "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define SECRET_NEW "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define SECRET_OTHER "whsec_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="
#define SECRET_WRONG "whsec_YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8="
#define CLIENT_SECRET "wh-client-secret"
/* base64("millom:wh-client-secret") */
#define CLIENT_BASIC "Authorization: Basic bWlsbG9tOndoLWNsaWVudC1zZWNyZXQ="

static test_stack stack;
static char edge[64], sp1[64], sp2[64], notifier_admin[64];
static char tenants_env[400], sp2_dir_env[400], sp2_port_env[64];
static kafka_producer *producer;

/* ---- the stack's programs with this test's settings ---- */

static const char *const notifier_env[] = {
    tenants_env, /* filled in by write_tenants */
    "TEST_WH_SP1_CLIENT_SECRET=" CLIENT_SECRET,
    "TEST_WH_SP1_SECRET_OLD=" SECRET_OLD,
    "TEST_WH_SP1_SECRET_NEW=" SECRET_NEW,
    "TEST_WH_SP2_SECRET=" SECRET_OTHER,
    NULL,
};

/* Stops and starts sp-sandbox (which 1 or 2) knowing these secrets. */
static void restart_sp(int which, const char *secrets) {
    char secrets_env[300];
    snprintf(secrets_env, sizeof secrets_env, "MILLOM_SP_WEBHOOK_SECRETS=%s", secrets);
    const char *name = which == 1 ? "sp-sandbox" : "sp-sandbox-2";
    ck_assert_int_eq(stack_stop_one(&stack, name), 0);
    if (which == 1) {
        const char *env[] = {secrets_env, "MILLOM_SP_OAUTH_CLIENT_SECRET=" CLIENT_SECRET, NULL};
        ck_assert_int_gt(stack_respawn_in_place(&stack, name, env), 0);
        ck_assert_int_eq(stack_wait_ready(stack.sp_port, 30000), 0);
    } else {
        const char *env[] = {secrets_env, sp2_dir_env, sp2_port_env, NULL};
        ck_assert_int_gt(stack_respawn_as_in_place(&stack, "sp-sandbox", name, env), 0);
        ck_assert_int_eq(stack_wait_ready(SP2_PORT, 30000), 0);
    }
}

/* ---- events ---- */

static void new_tid(char *out, size_t len, const char *what) {
    static int n;
    snprintf(out, len, "wh-%s-%ld-%d", what, (long)getpid(), ++n);
}

static void produce_event(const char *tid) {
    Millom__V1__SubscriberRef ref = MILLOM__V1__SUBSCRIBER_REF__INIT;
    ref.operator_ = "tp";
    ref.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    ref.subscriber_id = MSISDN;
    Millom__V1__SubscriberEvent ev = MILLOM__V1__SUBSCRIBER_EVENT__INIT;
    ev.operator_ = "tp";
    ev.subscriber = &ref;
    ev.type = TYPE;
    ev.transaction_id = (char *)tid;
    uint8_t buf[512];
    ck_assert_uint_le(millom__v1__subscriber_event__get_packed_size(&ev), sizeof buf);
    size_t len = millom__v1__subscriber_event__pack(&ev, buf);
    ck_assert_int_eq(kafka_produce(producer, "millom.subscriber.events", -1, MSISDN, strlen(MSISDN),
                                   buf, len, NULL, 0),
                     0);
    ck_assert_int_eq(kafka_producer_flush(producer, 10000), 0);
}

static void produce_purchase_event(const char *transid) {
    Millom__V1__PurchaseEvent ev = MILLOM__V1__PURCHASE_EVENT__INIT;
    ev.transid = (char *)transid;
    ev.service_provider = SP;
    ev.operator_ = "tp";
    ev.msisdn = MSISDN;
    ev.plan_id = "tp-social-daily";
    ev.state = MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED;
    uint8_t buf[512];
    size_t len = millom__v1__purchase_event__pack(&ev, buf);
    ck_assert_int_eq(kafka_produce(producer, "millom.purchase.events", -1, MSISDN, strlen(MSISDN),
                                   buf, len, NULL, 0),
                     0);
    ck_assert_int_eq(kafka_producer_flush(producer, 10000), 0);
}

/* ---- what the providers recorded ---- */

/* The records of `kind` with transactionId tid (a new array, oldest
 * first; caller decrefs). */
static json_t *records(const char *sp_base, const char *kind, const char *tid) {
    long status = 0;
    json_t *j = test_sp_received(sp_base, kind, -1, 10000, &status);
    ck_assert_int_eq(status, 200);
    json_t *out = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(j, "received"), i, rec) {
        const char *t = json_string_value(json_object_get(rec, "transactionId"));
        if (t && strcmp(t, tid) == 0) json_array_append(out, rec);
    }
    json_decref(j);
    return out;
}

static int count_status(json_t *recs, long status) {
    int n = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(recs, i, rec) n +=
        json_integer_value(json_object_get(rec, "status")) == status;
    return n;
}

/* Polls (bounded, 60 s) until sp_base has a 200 record of tid; returns it
 * (caller decrefs), NULL when none came. */
static json_t *wait_accepted(const char *sp_base, const char *kind, const char *tid) {
    for (int i = 0; i < 600; i++) {
        json_t *recs = records(sp_base, kind, tid);
        size_t k;
        json_t *rec;
        json_array_foreach(recs, k, rec) {
            if (json_integer_value(json_object_get(rec, "status")) == 200) {
                json_incref(rec);
                json_decref(recs);
                return rec;
            }
        }
        json_decref(recs);
        test_sleep_ms(100);
    }
    return NULL;
}

static int has_check(json_t *rec, const char *check) {
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rec, "verified"), i,
                       v) if (strcmp(json_string_value(v), check) == 0) return 1;
    return 0;
}

static long dead_lettered(void) {
    return test_metric(notifier_admin, "millom_notifications_dead_lettered_total");
}

/* ---- requests of the test's own, as an attacker or a replay ---- */

/* A token from sp-sandbox's endpoint, as "Authorization: Bearer ...". */
static void sp1_token(char *out, size_t len) {
    char url[128];
    snprintf(url, sizeof url, "%s/oauth/token", sp1);
    const char *h[] = {CLIENT_BASIC, "Content-Type: application/x-www-form-urlencoded", NULL};
    test_response r;
    ck_assert_int_eq(test_http("POST", url, h, "grant_type=client_credentials", &r), 0);
    ck_assert_int_eq(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    ck_assert_ptr_nonnull(tok);
    snprintf(out, len, "Authorization: Bearer %s", tok);
    json_decref(j);
    test_response_free(&r);
}

/* POSTs body to sp-sandbox's /notifications with a fresh token and these
 * webhook headers; the status, and the reason of a refusal in why. */
static long post_signed(const char *id, const char *ts, const char *sig, const char *body,
                        char *why, size_t whylen) {
    char auth[256], h_id[320], h_ts[64], h_sig[WEBHOOK_SIGNATURE_HEADER_MAX + 64], url[128];
    sp1_token(auth, sizeof auth);
    snprintf(h_id, sizeof h_id, "webhook-id: %s", id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %s", ts);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
    const char *h[] = {auth, h_id, h_ts, h_sig, NULL};
    snprintf(url, sizeof url, "%s/notifications", sp1);
    test_response r;
    ck_assert_int_eq(test_http("POST", url, h, body, &r), 0);
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    snprintf(why, whylen, "%s", j ? json_string_value(json_object_get(j, "error")) : "");
    json_decref(j);
    long status = r.status;
    test_response_free(&r);
    return status;
}

/* ---- tests ---- */

static json_t *last_notification; /* the first test's accepted record, for the replays */

START_TEST(webhooks_carry_a_token_and_both_signatures) {
    char tid[64];
    new_tid(tid, sizeof tid, "signed");
    long ok_tokens = test_metric_sum(sp1, "sp_sandbox_token_requests_total", "answer=\"ok\"");
    produce_event(tid);
    json_t *rec = wait_accepted(sp1, "notification", tid);
    ck_assert_msg(rec != NULL, "%s never reached %s", tid, SP);
    ck_assert(has_check(rec, "token"));
    ck_assert(has_check(rec, "signature"));
    ck_assert(json_is_true(json_object_get(rec, "authorization")));
    const char *did = json_string_value(json_object_get(rec, "deliveryId"));
    ck_assert_ptr_nonnull(did);
    ck_assert_str_eq(json_string_value(json_object_get(rec, "webhookId")), did);
    /* two signatures while two secrets are configured */
    const char *sig = json_string_value(json_object_get(rec, "webhookSignature"));
    ck_assert_uint_eq(strlen(sig), 2 * WEBHOOK_SIGNATURE_LEN + 1);
    ck_assert(strncmp(sig, "v1,", 3) == 0 && strncmp(sig + WEBHOOK_SIGNATURE_LEN, " v1,", 4) == 0);
    /* the token came from the provider's endpoint */
    ck_assert_int_gt(test_metric_sum(sp1, "sp_sandbox_token_requests_total", "answer=\"ok\""),
                     ok_tokens);
    last_notification = rec;

    /* the other provider: its one signature, no token */
    json_t *other = wait_accepted(sp2, "notification", tid);
    ck_assert_msg(other != NULL, "%s never reached %s", tid, OTHER);
    ck_assert(has_check(other, "signature"));
    ck_assert(!json_is_true(json_object_get(other, "authorization")));
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(other, "webhookSignature"))),
                      WEBHOOK_SIGNATURE_LEN);
    json_decref(other);

    /* a purchase callback the same way */
    char transid[64];
    new_tid(transid, sizeof transid, "callback");
    produce_purchase_event(transid);
    json_t *cb = wait_accepted(sp1, "callback", transid);
    ck_assert_msg(cb != NULL, "no callback for %s", transid);
    ck_assert(has_check(cb, "token"));
    ck_assert(has_check(cb, "signature"));
    json_decref(cb);
}
END_TEST

START_TEST(tampered_old_and_foreign_requests_are_refused) {
    ck_assert_ptr_nonnull(last_notification);
    const char *id = json_string_value(json_object_get(last_notification, "webhookId"));
    const char *ts = json_string_value(json_object_get(last_notification, "webhookTimestamp"));
    const char *sig = json_string_value(json_object_get(last_notification, "webhookSignature"));
    ck_assert(id && ts && sig);
    char why[200];

    /* Millom's own signature over another body */
    json_t *body = json_deep_copy(json_object_get(last_notification, "body"));
    json_object_set_new(body, "offers", json_array());
    json_object_set_new(body, "shop", json_string("http://attacker.example/shop"));
    char *tampered = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    ck_assert_int_eq(post_signed(id, ts, sig, tampered, why, sizeof why), 401);
    ck_assert_str_eq(why, "signature: no webhook-signature matches");
    /* ...or over another time */
    char later[32];
    snprintf(later, sizeof later, "%lld", atoll(ts) + 1);
    ck_assert_int_eq(post_signed(id, later, sig, tampered, why, sizeof why), 401);

    /* well signed with the old secret, but more than 5 minutes ago */
    webhook_key old, wrong;
    char err[160], header[WEBHOOK_SIGNATURE_HEADER_MAX], when[32];
    ck_assert_int_eq(webhook_key_parse(SECRET_OLD, &old, err, sizeof err), 0);
    ck_assert_int_eq(webhook_key_parse(SECRET_WRONG, &wrong, err, sizeof err), 0);
    long long stale = (long long)time(NULL) - WEBHOOK_TOLERANCE_S - 60;
    snprintf(when, sizeof when, "%lld", stale);
    ck_assert_int_eq(webhook_signature_header(&old, 1, "replay-1", stale, tampered,
                                              strlen(tampered), header, sizeof header),
                     0);
    ck_assert_int_eq(post_signed("replay-1", when, header, tampered, why, sizeof why), 401);
    ck_assert_str_eq(why, "signature: webhook-timestamp is too old");

    /* signed now, with a secret the provider does not know */
    long long now = (long long)time(NULL);
    snprintf(when, sizeof when, "%lld", now);
    ck_assert_int_eq(webhook_signature_header(&wrong, 1, "forged-1", now, tampered,
                                              strlen(tampered), header, sizeof header),
                     0);
    ck_assert_int_eq(post_signed("forged-1", when, header, tampered, why, sizeof why), 401);
    ck_assert_str_eq(why, "signature: no webhook-signature matches");

    /* the control: the same made with the old secret now is accepted */
    ck_assert_int_eq(webhook_signature_header(&old, 1, "fresh-1", now, tampered, strlen(tampered),
                                              header, sizeof header),
                     0);
    ck_assert_int_eq(post_signed("fresh-1", when, header, tampered, why, sizeof why), 200);
    free(tampered);
    webhook_key_clear(&old);
    webhook_key_clear(&wrong);

    /* every refusal is on record, with its reason */
    long status = 0;
    json_t *j = test_sp_received(sp1, "notification", -1, 10000, &status);
    int refused = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(j, "received"), i, rec) {
        const char *e = json_string_value(json_object_get(rec, "error"));
        refused += json_integer_value(json_object_get(rec, "status")) == 401 && e &&
                   strncmp(e, "signature: ", 11) == 0;
    }
    json_decref(j);
    ck_assert_int_ge(refused, 4);
}
END_TEST

START_TEST(rotation_either_secret_accepts) {
    const char *only[] = {SECRET_OLD, SECRET_NEW};
    for (int k = 0; k < 2; k++) {
        /* the restart also forgets the token notifier holds */
        restart_sp(1, only[k]);
        char tid[64];
        new_tid(tid, sizeof tid, k ? "rotation-new" : "rotation-old");
        produce_event(tid);
        json_t *rec = wait_accepted(sp1, "notification", tid);
        ck_assert_msg(rec != NULL, "%s: knowing only the %s secret, %s accepted nothing", tid,
                      k ? "new" : "old", SP);
        ck_assert(has_check(rec, "signature"));
        ck_assert(has_check(rec, "token"));
        json_decref(rec);
        json_t *recs = records(sp1, "notification", tid);
        fprintf(stderr,
                "webhook auth: knowing only the %s secret: %d refused (401), then %d "
                "accepted\n",
                k ? "new" : "old", count_status(recs, 401), count_status(recs, 200));
        ck_assert_int_eq(count_status(recs, 200), 1);
        /* the old token was refused once at most, then replaced */
        ck_assert_int_le(count_status(recs, 401), 1);
        json_decref(recs);
    }
    restart_sp(1, SECRET_OLD " " SECRET_NEW);
}
END_TEST

START_TEST(wrong_secret_is_refused_and_dead_lettered) {
    restart_sp(2, SECRET_WRONG);
    long dead_before = dead_lettered();
    char tid[64];
    new_tid(tid, sizeof tid, "wrong");
    produce_event(tid);
    /* testserviceprovider gets it; otherprovider refuses it */
    json_t *rec = wait_accepted(sp1, "notification", tid);
    ck_assert_ptr_nonnull(rec);
    json_decref(rec);
    json_t *recs = NULL;
    for (int i = 0; i < 600; i++) {
        json_decref(recs);
        recs = records(sp2, "notification", tid);
        if (json_array_size(recs) > 0 && dead_lettered() > dead_before) break;
        test_sleep_ms(100);
    }
    ck_assert_int_eq(json_array_size(recs), 1); /* refused once, not retried */
    json_t *refused = json_array_get(recs, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(refused, "status")), 401);
    ck_assert_str_eq(json_string_value(json_object_get(refused, "error")),
                     "signature: no webhook-signature matches");
    json_decref(recs);
    ck_assert_int_eq(dead_lettered(), dead_before + 1);

    restart_sp(2, SECRET_OTHER);
    new_tid(tid, sizeof tid, "right");
    produce_event(tid);
    rec = wait_accepted(sp2, "notification", tid);
    ck_assert_msg(rec != NULL, "%s never reached %s with the right secret", tid, OTHER);
    json_decref(rec);
}
END_TEST

START_TEST(token_endpoint_down_retries_until_it_answers) {
    long dead_before = dead_lettered();
    char url[128];
    snprintf(url, sizeof url, "%s/admin/behaviour", sp1);
    long status = 0;
    json_decref(test_post_json(url, "{\"tokenFailStatus\":503}", &status));
    ck_assert_int_eq(status, 200);
    /* and notifier's token no longer works: it must fetch one */
    snprintf(url, sizeof url, "%s/admin/tokens", sp1);
    json_t *revoked = test_post_json(url, "{}", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_ge(json_integer_value(json_object_get(revoked, "revoked")), 1);
    json_decref(revoked);
    long failed_before =
        test_metric_sum(sp1, "sp_sandbox_token_requests_total", "answer=\"error\"");

    char tid[64];
    new_tid(tid, sizeof tid, "tokendown");
    produce_event(tid);
    /* the other provider is not held up */
    json_t *other = wait_accepted(sp2, "notification", tid);
    ck_assert_msg(other != NULL, "%s did not get %s while %s's token endpoint was down", OTHER, tid,
                  SP);
    json_decref(other);
    /* at least three failed fetches: the delivery is being retried */
    long failed = failed_before;
    for (int i = 0; i < 600 && failed < failed_before + 3; i++) {
        test_sleep_ms(100);
        failed = test_metric_sum(sp1, "sp_sandbox_token_requests_total", "answer=\"error\"");
    }
    ck_assert_int_ge(failed, failed_before + 3);
    json_t *recs = records(sp1, "notification", tid);
    ck_assert_int_eq(count_status(recs, 200), 0);
    ck_assert_int_le(count_status(recs, 401), 1); /* the revoked token, once */
    json_decref(recs);

    snprintf(url, sizeof url, "%s/admin/behaviour", sp1);
    json_decref(test_post_json(url, "{}", &status));
    json_t *rec = wait_accepted(sp1, "notification", tid);
    ck_assert_msg(rec != NULL, "%s not delivered after the token endpoint came back", tid);
    ck_assert(has_check(rec, "token"));
    json_decref(rec);
    recs = records(sp1, "notification", tid);
    fprintf(stderr, "webhook auth: %ld failed token requests, then delivered once\n",
            failed - failed_before);
    ck_assert_int_eq(count_status(recs, 200), 1);
    json_decref(recs);
    ck_assert_int_eq(dead_lettered(), dead_before);
}
END_TEST

START_TEST(missing_secret_stops_notifier_at_start) {
    char dir[320], dir_env[340], port_env[64];
    snprintf(dir, sizeof dir, "%s/nosecret", stack.dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(dir_env, sizeof dir_env, "MILLOM_DATA_DIR=%s", dir);
    snprintf(port_env, sizeof port_env, "MILLOM_NOTIFIER_PORT=%d", NOSECRET_PORT);
    /* notifier_env without TEST_WH_SP2_SECRET */
    const char *env[] = {tenants_env,
                         "TEST_WH_SP1_CLIENT_SECRET=" CLIENT_SECRET,
                         "TEST_WH_SP1_SECRET_OLD=" SECRET_OLD,
                         "TEST_WH_SP1_SECRET_NEW=" SECRET_NEW,
                         dir_env,
                         port_env,
                         "MILLOM_REPLY_PARTITION=5",
                         NULL};
    pid_t pid = stack_spawn_as(&stack, "notifier", "notifier-nosecret", env);
    ck_assert_int_gt(pid, 0);
    /* Wait (bounded) for it to exit without reaping it: stack_kill reaps. */
    siginfo_t info;
    int exited = 0;
    for (int i = 0; i < 1200 && !exited; i++) {
        memset(&info, 0, sizeof info);
        exited =
            waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
        if (!exited) test_sleep_ms(50);
    }
    ck_assert_msg(exited, "notifier ran without its webhook secret");
    int st = stack_kill(&stack, "notifier-nosecret", 0);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 1); /* not 66: nothing leaked on the way out */
    char log[400], line[2048];
    snprintf(log, sizeof log, "%s/notifier-nosecret.log", stack.dir);
    FILE *f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    int named = 0;
    while (fgets(line, sizeof line, f))
        named |= strstr(line, "provider otherprovider: webhookSecrets names $TEST_WH_SP2_SECRET, "
                              "which is not set") != NULL;
    fclose(f);
    ck_assert_msg(named, "the log of %s does not name the missing variable", log);
}
END_TEST

/* ---- setup ---- */

/* The stack's tenants with the providers' webhook credentials (names of
 * environment variables only) and otherprovider on the second
 * sp-sandbox. */
static int write_tenants(void) {
    json_t *t = json_load_file(stack.tenants_file, 0, NULL);
    if (!t) return -1;
    size_t i;
    json_t *p;
    char url[128];
    json_array_foreach(json_object_get(t, "serviceProviders"), i, p) {
        const char *id = json_string_value(json_object_get(p, "id"));
        if (id && strcmp(id, SP) == 0) {
            snprintf(url, sizeof url, "%s/oauth/token", sp1);
            json_object_set_new(p, "webhookAuth",
                                json_pack("{s:s, s:s, s:s, s:s}", "tokenUrl", url, "clientId",
                                          "millom", "clientSecretEnv", "TEST_WH_SP1_CLIENT_SECRET",
                                          "scope", "notifications"));
            json_object_set_new(p, "webhookSecrets",
                                json_pack("[{s:s}, {s:s}]", "env", "TEST_WH_SP1_SECRET_OLD", "env",
                                          "TEST_WH_SP1_SECRET_NEW"));
        } else if (id && strcmp(id, OTHER) == 0) {
            snprintf(url, sizeof url, "%s/notifications", sp2);
            json_object_set_new(p, "notificationUrl", json_string(url));
            snprintf(url, sizeof url, "%s/callbacks", sp2);
            json_object_set_new(p, "callbackUrl", json_string(url));
            json_object_set_new(p, "webhookSecrets",
                                json_pack("[{s:s}]", "env", "TEST_WH_SP2_SECRET"));
        }
    }
    char path[360];
    snprintf(path, sizeof path, "%s/tenants-webhook-auth.json", stack.dir);
    int rc = json_dump_file(t, path, JSON_INDENT(2));
    json_decref(t);
    snprintf(tenants_env, sizeof tenants_env, "MILLOM_TENANTS=%s", path);
    return rc;
}

static int start_more(void) {
    char dir2[320];
    snprintf(dir2, sizeof dir2, "%s/sp2", stack.dir);
    if (mkdir(dir2, 0700) != 0) return -1;
    snprintf(sp2_dir_env, sizeof sp2_dir_env, "MILLOM_DATA_DIR=%s", dir2);
    snprintf(sp2_port_env, sizeof sp2_port_env, "MILLOM_SP_PORT=%d", SP2_PORT);
    const char *env2[] = {sp2_dir_env, sp2_port_env, "MILLOM_SP_WEBHOOK_SECRETS=" SECRET_OTHER,
                          NULL};
    if (stack_spawn_as(&stack, "sp-sandbox", "sp-sandbox-2", env2) < 0 ||
        stack_wait_ready(SP2_PORT, 30000) != 0)
        return -1;
    const char *env1[] = {"MILLOM_SP_WEBHOOK_SECRETS=" SECRET_OLD " " SECRET_NEW,
                          "MILLOM_SP_OAUTH_CLIENT_SECRET=" CLIENT_SECRET, NULL};
    if (stack_stop_one(&stack, "sp-sandbox") != 0 ||
        stack_respawn_in_place(&stack, "sp-sandbox", env1) <= 0 ||
        stack_wait_ready(stack.sp_port, 30000) != 0)
        return -1;
    if (write_tenants() != 0) return -1;
    if (stack_stop_one(&stack, "notifier") != 0 ||
        stack_respawn_in_place(&stack, "notifier", notifier_env) <= 0 ||
        stack_wait_ready(stack.notifier_port, 60000) != 0)
        return -1;
    for (int p = 0; p < 2; p++) {
        char tid[96];
        snprintf(tid, sizeof tid, "wh%ld-consent-%d", (long)getpid(), p);
        long st = test_register_consent(edge, p ? OTHER : SP, MSISDN, tid, "[\"" TYPE "\"]");
        if (st != 200) {
            fprintf(stderr, "register %s for %s: %ld\n", MSISDN, p ? OTHER : SP, st);
            return -1;
        }
    }
    return 0;
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char public_url[64];
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    const char *env[] = {"MILLOM_NOTIFY_BACKOFF_MS=200",
                         "MILLOM_NOTIFY_BACKOFF_MAX_MS=1000",
                         "MILLOM_NOTIFY_MAX_ATTEMPTS=1000",
                         "MILLOM_NOTIFY_QUOTA=100000",
                         "MILLOM_KAFKA_SESSION_TIMEOUT_MS=5000",
                         public_url,
                         NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp1, sizeof sp1, "http://127.0.0.1:%d", stack.sp_port);
    snprintf(sp2, sizeof sp2, "http://127.0.0.1:%d", SP2_PORT);
    snprintf(notifier_admin, sizeof notifier_admin, "http://127.0.0.1:%d", stack.notifier_port);
    char err[256];
    producer = kafka_producer_new("test-webhook-auth", 0, err, sizeof err);
    if (!producer || start_more() != 0) {
        fprintf(stderr, "setup: %s\n", producer ? "sp-sandboxes, notifier or consent" : err);
        kafka_producer_free(producer);
        stack_stop(&stack);
        return 1;
    }
    Suite *s = suite_create("webhook auth");
    TCase *tc = tcase_create("webhook auth");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, webhooks_carry_a_token_and_both_signatures);
    tcase_add_test(tc, tampered_old_and_foreign_requests_are_refused);
    tcase_add_test(tc, rotation_either_secret_accepts);
    tcase_add_test(tc, wrong_secret_is_refused_and_dead_lettered);
    tcase_add_test(tc, token_endpoint_down_retries_until_it_answers);
    tcase_add_test(tc, missing_secret_stops_notifier_at_start);
    suite_add_tcase(s, tc);
    int rc = stack_run_suite(&stack, s);
    json_decref(last_notification);
    kafka_producer_free(producer);
    return rc;
}
