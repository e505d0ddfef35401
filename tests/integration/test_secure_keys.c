/* No known key in the secure profile (shared/contracts/keys.h), end to end.
 *
 * A stack with MILLOM_AUTH_DISABLED=0 and no key in its environment makes
 * its own random keys on first start (<data dir>/keys, mode 0600, shared
 * by every program). Then a JWT, a signed link, a CPID and an offerContext
 * made here with the public sandbox keys (the shared library's own
 * functions) are refused, while the stack's own token, CPID and
 * offerContext, and a link signed with the stack's key file, work. Last, a
 * program started with MILLOM_PROFILE=production and a key missing exits
 * with status 1 and names the key. */
#include "shared/contracts/cpid.h"
#include "shared/contracts/keys.h"
#include "shared/contracts/offer_context.h"
#include "shared/contracts/signed_link.h"
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <jwt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BASE_PORT 19880
#define SP "testserviceprovider"
#define SUB "924542610003"

static test_stack stack;
static char edge[64];

static int64_t wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const char *cause_of(json_t *j) { return json_string_value(json_object_get(j, "cause")); }

/* One request; the status, the parsed answer into *out (caller decrefs). */
static long call(const char *method, const char *url, const char *bearer, const char *body,
                 json_t **out) {
    char auth[4096];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer ? bearer : "");
    const char *headers[] = {auth, body ? "Content-Type: application/json" : NULL, NULL};
    test_response r;
    test_http(method, url, bearer ? headers : NULL, body, &r);
    long status = r.status;
    json_t *j = r.body && r.len ? json_loads(r.body, 0, NULL) : NULL;
    test_response_free(&r);
    if (out)
        *out = j;
    else
        json_decref(j);
    return status;
}

/* A token from the stack's token endpoint for the demo provider. */
static char *stack_token(void) {
    char url[128];
    snprintf(url, sizeof url, "%s/oauth/v1/token", edge);
    /* HTTP Basic: base64("sp-demo:sp-demo-secret"), the demo client. */
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                             "Authorization: Basic c3AtZGVtbzpzcC1kZW1vLXNlY3JldA==", NULL};
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

/* A JWT as api-edge issues them, signed with `key`. Caller frees. */
static char *mint(const char *key) {
    jwt_t *j;
    ck_assert_int_eq(jwt_new(&j), 0);
    long now = (long)time(NULL);
    jwt_add_grant(j, "iss", "millom");
    jwt_add_grant(j, "sub", "sp-demo");
    jwt_add_grant(j, "scope", "cco.dd.data-plan.gen.inquire cco.dd.data-plan.gen.activate");
    jwt_add_grant(j, "sp", SP);
    jwt_add_grant_int(j, "iat", now - 10);
    jwt_add_grant_int(j, "exp", now + 300);
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)key, (int)strlen(key));
    char *s = jwt_encode_str(j);
    jwt_free(j);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* The stack's CPID for SUB (GET /cpid by header enrichment). Caller frees. */
static char *stack_cpid(void) {
    char url[128];
    snprintf(url, sizeof url, "%s/cpid?app=" SP, edge);
    const char *hdr[] = {"X-MSISDN: " SUB, NULL};
    long status = 0;
    json_t *j = test_get_json(url, hdr, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "cpid")));
    char *copy = strdup(json_string_value(json_object_get(j, "cpid")));
    json_decref(j);
    return copy;
}

/* The key file the stack made for `name`. */
static void stack_key(const char *name, char *out, size_t outlen) {
    char path[512];
    snprintf(path, sizeof path, "%s/keys/%s", stack.dir, name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no key file %s", path);
    ck_assert_ptr_nonnull(fgets(out, (int)outlen, f));
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
}

START_TEST(the_stack_made_private_random_keys) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/keys", stack.dir);
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 077, 0);
    int n = 0;
    for (size_t i = 0; keys_names[i]; i++, n++) {
        char path[640], key[256];
        snprintf(path, sizeof path, "%s/%s", dir, keys_names[i]);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        stack_key(keys_names[i], key, sizeof key);
        ck_assert_uint_eq(strlen(key), 64);
        ck_assert_uint_eq(strspn(key, "0123456789abcdef"), 64);
    }
    /* One file per key, nothing else (no temporary file left behind). */
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) entries += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(entries, n);
}
END_TEST

START_TEST(a_sandbox_jwt_is_refused) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/" SUB "/balance", edge);
    char *forged = mint(keys_sandbox_default("MILLOM_JWT_KEY"));
    json_t *j;
    ck_assert_int_eq(call("GET", url, forged, NULL, &j), 401);
    ck_assert_str_eq(cause_of(j), "UNAUTHORIZED");
    json_decref(j);
    free(forged);
    char *real = stack_token();
    ck_assert_int_eq(call("GET", url, real, NULL, NULL), 200);
    free(real);
}
END_TEST

START_TEST(a_sandbox_cpid_is_refused) {
    char *token = stack_token();
    cpid_config sandbox;
    ck_assert_int_eq(cpid_config_init(&sandbox, keys_sandbox_default("MILLOM_CPID_KEY"), 0), 0);
    char forged[CPID_MAX_LEN];
    ck_assert_int_eq(cpid_issue(&sandbox, SUB, SP, "41006", wall_ms(), forged, sizeof forged), 0);
    char url[512];
    char *e = curl_easy_escape(NULL, forged, 0);
    snprintf(url, sizeof url, "%s/std/" SP "/%s/balance?key_type=CPID", edge, e);
    curl_free(e);
    json_t *j;
    ck_assert_int_eq(call("GET", url, token, NULL, &j), 410);
    ck_assert_str_eq(cause_of(j), "BAD_CPID");
    json_decref(j);

    char *real = stack_cpid();
    e = curl_easy_escape(NULL, real, 0);
    snprintf(url, sizeof url, "%s/std/" SP "/%s/balance?key_type=CPID", edge, e);
    curl_free(e);
    ck_assert_int_eq(call("GET", url, token, NULL, NULL), 200);
    free(real);
    free(token);
}
END_TEST

START_TEST(a_sandbox_link_is_refused) {
    char *cpid = stack_cpid();
    char path[512];
    snprintf(path, sizeof path, "/rnf/" SP "/tp/%s/offers", cpid);
    keys_set sandbox;
    ck_assert_int_eq(keys_set_one(&sandbox, keys_sandbox_default("MILLOM_LINK_KEY")), 0);
    char *forged = signed_link_make_keys(&sandbox, edge, path, NULL, 0, 600, wall_ms());
    ck_assert_ptr_nonnull(forged);
    json_t *j;
    ck_assert_int_eq(call("GET", forged, NULL, NULL, &j), 401);
    ck_assert_str_eq(cause_of(j), "UNAUTHORIZED");
    json_decref(j);
    free(forged);
    /* The same link under the key the stack made works. */
    char key[256];
    stack_key("MILLOM_LINK_KEY", key, sizeof key);
    keys_set stack_keys;
    ck_assert_int_eq(keys_set_one(&stack_keys, key), 0);
    char *real = signed_link_make_keys(&stack_keys, edge, path, NULL, 0, 600, wall_ms());
    ck_assert_int_eq(call("GET", real, NULL, NULL, &j), 200);
    ck_assert_int_gt(json_array_size(json_object_get(j, "offers")), 0);
    json_decref(j);
    free(real);
    free(cpid);
}
END_TEST

/* POST purchasePlan for SUB; the status. */
static long purchase(const char *token, const char *tid, const char *plan, const char *ctx,
                     json_t **out) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/" SUB "/purchasePlan", edge);
    json_t *body =
        json_pack("{s:s, s:s, s:s}", "transid", tid, "planid", plan, "offercontext", ctx);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    long status = call("POST", url, token, text, out);
    free(text);
    return status;
}

START_TEST(a_sandbox_offer_context_is_refused) {
    char *token = stack_token();
    /* The attack of issue 16: the real plan at a price of 0.01. */
    offer_context oc;
    memset(&oc, 0, sizeof oc);
    snprintf(oc.plan_id, sizeof oc.plan_id, "tp-social-daily");
    snprintf(oc.subscriber, sizeof oc.subscriber, SUB);
    snprintf(oc.provider, sizeof oc.provider, SP);
    snprintf(oc.op, sizeof oc.op, "tp");
    oc.price_minor = 1;
    snprintf(oc.currency, sizeof oc.currency, "PKR");
    oc.expires_at_ms = wall_ms() + 600000;
    keys_set sandbox;
    ck_assert_int_eq(keys_set_one(&sandbox, keys_sandbox_default("MILLOM_OFFER_CONTEXT_KEY")), 0);
    char *forged = offer_context_sign(&oc, &sandbox);
    ck_assert_ptr_nonnull(forged);
    char tid[64];
    snprintf(tid, sizeof tid, "keys-forged-%ld", (long)getpid());
    json_t *j;
    ck_assert_int_eq(purchase(token, tid, "tp-social-daily", forged, &j), 400);
    ck_assert_str_eq(cause_of(j), "BAD_REQUEST");
    json_decref(j);
    free(forged);

    /* The stack's own offerContext buys. */
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/" SUB "/upsellOffer", edge);
    ck_assert_int_eq(call("GET", url, token, NULL, &j), 200);
    char *ctx = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "offers"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "planId")), "tp-social-daily") == 0)
            ctx = strdup(json_string_value(json_object_get(o, "offerContext")));
    }
    json_decref(j);
    ck_assert_ptr_nonnull(ctx);
    snprintf(tid, sizeof tid, "keys-real-%ld", (long)getpid());
    long status = purchase(token, tid, "tp-social-daily", ctx, &j);
    ck_assert_msg(status == 200, "status %ld", status);
    json_decref(j);
    free(ctx);
    free(token);
}
END_TEST

/* Runs BUILD/bin/<program> with the stack's settings plus
 * MILLOM_PROFILE=production and every key but `missing`; its exit status
 * (bounded wait) and its log in log (NUL-terminated). */
static int run_production(const char *program, const char *missing, char *log, size_t loglen) {
    char bin[512], logpath[512];
    const char *build = getenv("BUILD");
    snprintf(bin, sizeof bin, "%s/bin/%s", build && *build ? build : "build/release", program);
    snprintf(logpath, sizeof logpath, "%s/production-%s.log", stack.dir, program);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        char data[300];
        snprintf(data, sizeof data, "%s/production", stack.dir);
        setenv("MILLOM_DATA_DIR", data, 1);
        setenv("MILLOM_BROKER_FILE", stack.broker_file, 1);
        setenv("MILLOM_TENANTS", stack.tenants_file, 1);
        setenv("MILLOM_PROFILE", "production", 1);
        setenv("MILLOM_RESOLVER_PORT", "0", 1);
        for (size_t i = 0; keys_names[i]; i++)
            if (strcmp(keys_names[i], missing) != 0) setenv(keys_names[i], "a-real-secret", 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < 600 && (r = waitpid(pid, &status, WNOHANG)) == 0; i++) test_sleep_ms(50);
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ck_abort_msg("%s kept running without %s", program, missing);
    }
    FILE *f = fopen(logpath, "r");
    size_t n = f ? fread(log, 1, loglen - 1, f) : 0;
    if (f) fclose(f);
    log[n] = '\0';
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

START_TEST(production_refuses_a_missing_key) {
    char log[8192];
    ck_assert_int_eq(run_production("offer-resolver", "MILLOM_LINK_KEY", log, sizeof log), 1);
    const char *line = strstr(log, "MILLOM_LINK_KEY is not set");
    ck_assert_msg(line != NULL, "log: %s", log);
    /* one line that says it refused */
    const char *start = line;
    while (start > log && start[-1] != '\n') start--;
    ck_assert_ptr_nonnull(strstr(start, "refusing to start"));
    ck_assert(strstr(start, "refusing to start") < line);
    ck_assert_int_eq(run_production("api-edge", "MILLOM_SUBSCRIBER_HASH_KEY", log, sizeof log), 1);
    ck_assert_msg(strstr(log, "MILLOM_SUBSCRIBER_HASH_KEY is not set") != NULL, "log: %s", log);
}
END_TEST

/* Every key set, but no authentication asked for: an open API with
 * production keys is refused, and the log says which setting. */
START_TEST(production_refuses_an_open_api) {
    char log[8192];
    const char *was = getenv("MILLOM_AUTH_DISABLED");
    char saved[16];
    snprintf(saved, sizeof saved, "%s", was ? was : "");
    setenv("MILLOM_AUTH_DISABLED", "1", 1); /* the child inherits it */
    int rc = run_production("api-edge", "", log, sizeof log);
    if (was)
        setenv("MILLOM_AUTH_DISABLED", saved, 1);
    else
        unsetenv("MILLOM_AUTH_DISABLED");
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(log, "MILLOM_AUTH_DISABLED=1") != NULL, "log: %s", log);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* No key from this environment reaches the stack. */
    for (size_t i = 0; keys_names[i]; i++) unsetenv(keys_names[i]);
    unsetenv("MILLOM_PROFILE");
    unsetenv("MILLOM_KEY_DIR");
    const char *env[] = {"MILLOM_AUTH_DISABLED=0", "MILLOM_MNO_OAUTH_CLIENT_SECRET=tp-demo-secret",
                         "MILLOM_PURCHASE_TIMER_S=0", NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);

    Suite *s = suite_create("secure_keys");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, the_stack_made_private_random_keys);
    tcase_add_test(tc, a_sandbox_jwt_is_refused);
    tcase_add_test(tc, a_sandbox_cpid_is_refused);
    tcase_add_test(tc, a_sandbox_link_is_refused);
    tcase_add_test(tc, a_sandbox_offer_context_is_refused);
    tcase_add_test(tc, production_refuses_a_missing_key);
    tcase_add_test(tc, production_refuses_an_open_api);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
