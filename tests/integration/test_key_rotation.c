/* Key rotation with key ids, end to end (shared/contracts/keys.h, key sets).
 *
 * A secure-profile stack (OAuth on) runs through the three steps an
 * operator takes, each a restart of every program:
 *
 *   1. one key per purpose, the single-key settings of before
 *      (MILLOM_JWT_KEY, MILLOM_CPID_KEY, MILLOM_LINK_KEY,
 *      MILLOM_OFFER_CONTEXT_KEY): a token, a CPID, the links of a rich
 *      notification and an offerContext are issued, all without a key id;
 *   2. key 2 added and current (MILLOM_*_KEYS="k2:...,default"): everything
 *      of step 1 still works (the token is accepted, the CPID resolves, the
 *      links open, the offerContext buys), and what is issued now carries
 *      k2 (JWT kid header, "k2." in front of the CPID, the offerContext and
 *      the links' signature) and works;
 *   3. key 1 removed (MILLOM_*_KEYS="k2:...", the single keys unset):
 *      step 1's are refused with the usual answers (401 for the token, 410
 *      BAD_CPID, 401 for a link, 400 BAD_REQUEST for the offerContext), step
 *      2's still work.
 *
 * Every request goes through api-edge over loopback HTTP to the real
 * services through devbroker: notifier mints the links and the
 * notification's CPID, offer-resolver the offerContexts, purchase-executor
 * checks them. Last, no program's log holds any of the secrets, and the
 * logs name the key ids in use. Token and offerContext lifetimes are an
 * hour, so nothing here is refused for being old. */
#include "shared/plumbing/crypto.h"
#include "shared/contracts/keys.h"
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_PORT 21580
#define SP "testserviceprovider"
#define SUB "924542610003" /* has offers in mno-sandbox */
#define PLAN "tp-video-hour"

static test_stack stack;
static char edge[64], sp_base[64];

/* The settings of every program, rewritten between the steps (the stack
 * keeps this array and starts programs with it again on a restart). */
static const char *const PURPOSES[] = {"JWT", "CPID", "LINK", "OFFER_CONTEXT"};
#define N_PURPOSES 4
static char singles[N_PURPOSES][96], lists[N_PURPOSES][160];
static char public_url[64]; /* notifier's links point at this stack's api-edge */
static const char *env[] = {public_url,
                            "MILLOM_AUTH_DISABLED=0",
                            "MILLOM_MNO_OAUTH_CLIENT_SECRET=tp-demo-secret",
                            "MILLOM_PURCHASE_TIMER_S=0",
                            "MILLOM_TOKEN_TTL_S=3600",
                            "MILLOM_OFFER_TTL_S=3600",
                            "MILLOM_NOTIFY_QUOTA=100",
                            "MILLOM_LOG_LEVEL=info",
                            singles[0],
                            singles[1],
                            singles[2],
                            singles[3],
                            lists[0],
                            lists[1],
                            lists[2],
                            lists[3],
                            NULL};

/* Step 1: "one"; step 2: "k2" current and "one" as default; step 3: "k2". */
static void set_keys(int step) {
    for (int i = 0; i < N_PURPOSES; i++) {
        const char *p = PURPOSES[i];
        if (step < 3)
            snprintf(singles[i], sizeof singles[i], "MILLOM_%s_KEY=%s-secret-one-%s", p, p,
                     "rotation-test");
        else
            snprintf(singles[i], sizeof singles[i], "MILLOM_%s_KEY=", p); /* unset */
        if (step == 1)
            snprintf(lists[i], sizeof lists[i], "MILLOM_%s_KEYS=", p);
        else
            snprintf(lists[i], sizeof lists[i], "MILLOM_%s_KEYS=k2:%s-secret-two-rotation-test%s",
                     p, p, step == 2 ? ",default" : "");
    }
}

static const char *cause_of(json_t *j) { return json_string_value(json_object_get(j, "cause")); }

/* One request with a bearer token (NULL: none); the status, the parsed
 * answer into *out when given (caller decrefs). */
static long call(const char *method, const char *url, const char *bearer, const char *body,
                 json_t **out) {
    char auth[4200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer ? bearer : "");
    const char *headers[] = {bearer ? auth : "X-None: 1",
                             body ? "Content-Type: application/json" : NULL, NULL};
    test_response r;
    test_http(method, url, headers, body, &r);
    long status = r.status;
    json_t *j = r.body && r.len ? json_loads(r.body, 0, NULL) : NULL;
    test_response_free(&r);
    if (out)
        *out = j;
    else
        json_decref(j);
    return status;
}

/* A token from the token endpoint for client:secret. Caller frees. */
static char *token_for(const char *client, const char *secret) {
    char url[128], creds[128], basic[256];
    snprintf(url, sizeof url, "%s/oauth/v1/token", edge);
    snprintf(creds, sizeof creds, "%s:%s", client, secret);
    char *b64 = crypto_b64_encode(creds, strlen(creds));
    snprintf(basic, sizeof basic, "Authorization: Basic %s", b64);
    free(b64);
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", basic, NULL};
    test_response r;
    test_http("POST", url, headers, "grant_type=client_credentials", &r);
    ck_assert_msg(r.status == 200, "token: %ld %s", r.status, r.body ? r.body : "");
    json_t *j = json_loads(r.body, 0, NULL);
    test_response_free(&r);
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    ck_assert_ptr_nonnull(tok);
    char *copy = strdup(tok);
    json_decref(j);
    return copy;
}

/* The kid header of a JWT, into out ("" when it has none). */
static void jwt_kid(const char *token, char *out, size_t outlen) {
    char *head = strndup(token, strcspn(token, "."));
    size_t len = 0;
    unsigned char *raw = crypto_b64url_decode(head, &len);
    free(head);
    ck_assert_ptr_nonnull(raw);
    json_t *h = json_loadb((const char *)raw, len, 0, NULL);
    free(raw);
    ck_assert_ptr_nonnull(h);
    const char *kid = json_string_value(json_object_get(h, "kid"));
    snprintf(out, outlen, "%s", kid ? kid : "");
    json_decref(h);
}

/* GET /cpid for SUB (header enrichment from loopback). Caller frees. */
static char *new_cpid(void) {
    char url[128];
    snprintf(url, sizeof url, "%s/cpid?app=" SP, edge);
    const char *hdr[] = {"X-MSISDN: " SUB, NULL};
    long status = 0;
    json_t *j = test_get_json(url, hdr, &status);
    ck_assert_int_eq(status, 200);
    const char *cpid = json_string_value(json_object_get(j, "cpid"));
    ck_assert_ptr_nonnull(cpid);
    char *copy = strdup(cpid);
    json_decref(j);
    return copy;
}

/* GET balance by CPID with token; the status and the cause into cause. */
static long balance_by_cpid(const char *token, const char *cpid, char *cause, size_t causelen) {
    char url[512];
    char *e = curl_easy_escape(NULL, cpid, 0);
    snprintf(url, sizeof url, "%s/std/" SP "/%s/balance?key_type=CPID", edge, e);
    curl_free(e);
    json_t *j = NULL;
    long status = call("GET", url, token, NULL, &j);
    snprintf(cause, causelen, "%s", cause_of(j) ? cause_of(j) : "");
    json_decref(j);
    return status;
}

static long balance(const char *token) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/" SUB "/balance", edge);
    return call("GET", url, token, NULL, NULL);
}

/* PLAN's offerContext from upsellOffer. Caller frees. */
static char *offer_context(const char *token) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/" SUB "/upsellOffer", edge);
    json_t *j = NULL;
    ck_assert_int_eq(call("GET", url, token, NULL, &j), 200);
    char *ctx = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "offers"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "planId")), PLAN) == 0)
            ctx = strdup(json_string_value(json_object_get(o, "offerContext")));
    }
    json_decref(j);
    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

/* POST purchasePlan of PLAN with ctx under a fresh transid; the status,
 * the cause into cause. */
static long purchase(const char *token, const char *ctx, char *cause, size_t causelen) {
    static int seq;
    char url[256], tid[64];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/" SUB "/purchasePlan", edge);
    snprintf(tid, sizeof tid, "rotation-%ld-%d", (long)getpid(), ++seq);
    json_t *body =
        json_pack("{s:s, s:s, s:s}", "transid", tid, "planid", PLAN, "offercontext", ctx);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_t *j = NULL;
    long status = call("POST", url, token, text, &j);
    snprintf(cause, causelen, "%s", cause_of(j) ? cause_of(j) : "");
    json_decref(j);
    free(text);
    return status;
}

/* The links and CPID of one rich notification to SP about SUB. */
typedef struct {
    char *refresh, *ping, *shop, *cpid;
} notification;

static void notification_free(notification *n) {
    free(n->refresh);
    free(n->ping);
    free(n->shop);
    free(n->cpid);
}

/* SP consents (its token), the operator notifies (tp-demo's token), and
 * the notification sp-sandbox received gives the links. */
static void notify(const char *sp_token, const char *op_token, const char *tag, notification *out) {
    char url[256], body[512], tid[64];
    snprintf(tid, sizeof tid, "rotation-consent-%s-%ld", tag, (long)getpid());
    snprintf(url, sizeof url, "%s/std/" SP "/" SUB "/register", edge);
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"types\":[\"low-data\"]}", tid);
    ck_assert_int_eq(call("POST", url, sp_token, body, NULL), 200);
    snprintf(tid, sizeof tid, "rotation-notify-%s-%ld", tag, (long)getpid());
    snprintf(url, sizeof url, "%s/notify/tp/v1/single?idValue=" SUB "&idType=MSISDN", edge);
    snprintf(body, sizeof body,
             "{\"transactionId\":\"%s\",\"type\":\"low-data\",\"messages\":[{\"language\":\"en\","
             "\"message\":\"almost out\"}],\"planDetails\":{\"planId\":\"p1\",\"balance\":10,"
             "\"quota\":\"2000\",\"expiry\":\"2019-02-28T23:59:59.723+05:00\"}}",
             tid);
    json_t *j = NULL;
    long status = call("POST", url, op_token, body, &j);
    ck_assert_msg(status == 202, "notify: %ld", status);
    json_decref(j);
    json_t *got = NULL;
    long list_status = 0;
    for (int i = 0; i < 400 && !got; i++) {
        if (test_sp_received_count(sp_base, "notification", tid, 1, &got, &list_status) == 0)
            test_sleep_ms(50);
    }
    ck_assert_msg(got != NULL, "no notification %s at sp-sandbox (%ld)", tid, list_status);
    const char *names[] = {"refresh", "ping", "shop", "cpid"};
    char **slots[] = {&out->refresh, &out->ping, &out->shop, &out->cpid};
    for (size_t k = 0; k < 4; k++) {
        const char *v = json_string_value(json_object_get(got, names[k]));
        ck_assert_msg(v != NULL, "notification without %s", names[k]);
        *slots[k] = strdup(v);
    }
    json_decref(got);
}

/* GET a signed link; the status and the cause into cause. */
static long open_link(const char *link, char *cause, size_t causelen) {
    json_t *j = NULL;
    long status = call("GET", link, NULL, NULL, &j);
    snprintf(cause, causelen, "%s", cause_of(j) ? cause_of(j) : "");
    json_decref(j);
    return status;
}

/* The link's signature value (its key id, if any, in front). */
static void link_signature(const char *link, char *out, size_t outlen) {
    const char *s = strstr(link, "signature=");
    ck_assert_ptr_nonnull(s);
    s += strlen("signature=");
    snprintf(out, outlen, "%.*s", (int)strcspn(s, "&"), s);
}

/* 1 if any program's log (<dir>/<name>.log) contains needle. */
static int logs_contain(const char *needle) {
    static const char *const programs[] = {"api-edge", "offer-resolver", "purchase-executor",
                                           "notifier", "settlement-reporter"};
    for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++) {
        char path[512], line[8192];
        snprintf(path, sizeof path, "%s/%s.log", stack.dir, programs[i]);
        FILE *f = fopen(path, "r");
        ck_assert_msg(f != NULL, "no log %s", path);
        int found = 0;
        while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
        fclose(f);
        if (found) return 1;
    }
    return 0;
}

START_TEST(keys_rotate_without_breaking_what_was_issued) {
    char cause[64], kid[32], sig[128];

    /* ---- 1. one key per purpose, as before key ids ---- */
    char *token1 = token_for("sp-demo", "sp-demo-secret");
    char *op_token1 = token_for("tp-demo", "tp-demo-secret");
    jwt_kid(token1, kid, sizeof kid);
    ck_assert_str_eq(kid, "");
    char *cpid1 = new_cpid();
    ck_assert_ptr_null(strchr(cpid1, '.'));
    ck_assert_int_eq(balance_by_cpid(token1, cpid1, cause, sizeof cause), 200);
    char *ctx1 = offer_context(token1);
    ck_assert_ptr_null(strchr(ctx1, '.'));
    notification n1;
    notify(token1, op_token1, "one", &n1);
    link_signature(n1.refresh, sig, sizeof sig);
    ck_assert_ptr_null(strchr(sig, '.'));
    ck_assert_ptr_null(strchr(n1.cpid, '.'));
    ck_assert_int_eq(open_link(n1.refresh, cause, sizeof cause), 200);

    /* ---- 2. key 2 added, current ---- */
    set_keys(2);
    ck_assert_int_eq(stack_restart_all(&stack, SIGTERM, 90000), 0);
    /* Everything of step 1 still works... */
    ck_assert_int_eq(balance(token1), 200);
    ck_assert_int_eq(balance_by_cpid(token1, cpid1, cause, sizeof cause), 200);
    ck_assert_int_eq(balance_by_cpid(token1, n1.cpid, cause, sizeof cause), 200);
    ck_assert_int_eq(open_link(n1.refresh, cause, sizeof cause), 200);
    ck_assert_int_eq(open_link(n1.ping, cause, sizeof cause), 200);
    ck_assert_int_eq(open_link(n1.shop, cause, sizeof cause), 200);
    ck_assert_int_eq(purchase(token1, ctx1, cause, sizeof cause), 200);
    /* ... and what is issued now carries k2 and works. */
    char *token2 = token_for("sp-demo", "sp-demo-secret");
    char *op_token2 = token_for("tp-demo", "tp-demo-secret");
    jwt_kid(token2, kid, sizeof kid);
    ck_assert_str_eq(kid, "k2");
    ck_assert_int_eq(balance(token2), 200);
    char *cpid2 = new_cpid();
    ck_assert_msg(strncmp(cpid2, "k2.", 3) == 0, "%s", cpid2);
    ck_assert_int_eq(balance_by_cpid(token2, cpid2, cause, sizeof cause), 200);
    char *ctx2 = offer_context(token2);
    ck_assert_msg(strncmp(ctx2, "k2.", 3) == 0, "%.20s", ctx2);
    ck_assert_int_eq(purchase(token2, ctx2, cause, sizeof cause), 200);
    notification n2;
    notify(token2, op_token2, "two", &n2);
    link_signature(n2.refresh, sig, sizeof sig);
    ck_assert_msg(strncmp(sig, "k2.", 3) == 0, "%s", sig);
    link_signature(n2.shop, sig, sizeof sig);
    ck_assert_msg(strncmp(sig, "k2.", 3) == 0, "%s", sig);
    ck_assert_msg(strncmp(n2.cpid, "k2.", 3) == 0, "%s", n2.cpid);
    ck_assert_int_eq(open_link(n2.refresh, cause, sizeof cause), 200);
    ck_assert_int_eq(open_link(n2.ping, cause, sizeof cause), 200);

    /* ---- 3. key 1 removed ---- */
    set_keys(3);
    ck_assert_int_eq(stack_restart_all(&stack, SIGTERM, 90000), 0);
    /* Step 1's are refused with the usual answers... */
    ck_assert_int_eq(balance(token1), 401);
    ck_assert_int_eq(balance_by_cpid(token2, cpid1, cause, sizeof cause), 410);
    ck_assert_str_eq(cause, "BAD_CPID");
    ck_assert_int_eq(balance_by_cpid(token2, n1.cpid, cause, sizeof cause), 410);
    ck_assert_str_eq(cause, "BAD_CPID");
    ck_assert_int_eq(open_link(n1.refresh, cause, sizeof cause), 401);
    ck_assert_str_eq(cause, "UNAUTHORIZED");
    ck_assert_int_eq(open_link(n1.ping, cause, sizeof cause), 401);
    ck_assert_int_eq(purchase(token2, ctx1, cause, sizeof cause), 400);
    ck_assert_str_eq(cause, "BAD_REQUEST");
    /* ... step 2's still work. */
    ck_assert_int_eq(balance(token2), 200);
    ck_assert_int_eq(balance_by_cpid(token2, cpid2, cause, sizeof cause), 200);
    ck_assert_int_eq(balance_by_cpid(token2, n2.cpid, cause, sizeof cause), 200);
    ck_assert_int_eq(open_link(n2.refresh, cause, sizeof cause), 200);
    ck_assert_int_eq(open_link(n2.shop, cause, sizeof cause), 200);
    ck_assert_int_eq(purchase(token2, ctx2, cause, sizeof cause), 200);
    char *token3 = token_for("sp-demo", "sp-demo-secret");
    jwt_kid(token3, kid, sizeof kid);
    ck_assert_str_eq(kid, "k2");

    /* The logs name key ids, never a secret. */
    ck_assert(logs_contain("MILLOM_CPID_KEYS: k2 signs; verifying k2, default"));
    ck_assert(logs_contain("MILLOM_OFFER_CONTEXT_KEYS: k2 signs; verifying k2\""));
    ck_assert(!logs_contain("secret-one-rotation-test"));
    ck_assert(!logs_contain("secret-two-rotation-test"));

    notification_free(&n1);
    notification_free(&n2);
    free(token1);
    free(op_token1);
    free(token2);
    free(op_token2);
    free(token3);
    free(cpid1);
    free(cpid2);
    free(ctx1);
    free(ctx2);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* No key from this environment reaches the stack but the test's own. */
    for (size_t i = 0; keys_names[i]; i++) {
        unsetenv(keys_names[i]);
        if (keys_list_setting(keys_names[i])) unsetenv(keys_list_setting(keys_names[i]));
    }
    unsetenv("MILLOM_PROFILE");
    unsetenv("MILLOM_KEY_DIR");
    set_keys(1);
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp_base, sizeof sp_base, "http://127.0.0.1:%d", stack.sp_port);

    Suite *s = suite_create("key_rotation");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, keys_rotate_without_breaking_what_was_issued);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
