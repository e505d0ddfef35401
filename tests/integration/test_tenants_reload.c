/* Tenants reload without a restart (issue 15 item 3), against the real
 * stack with MILLOM_AUTH_DISABLED=0 and two api-edges over loopback:
 *  - the stack's api-edge watches its tenants file: a client disabled in
 *    the file (saved the way editors do: a new file renamed over the old)
 *    is refused within a second, live token and token endpoint alike; a
 *    scope removed (written in place) is refused within a second; other
 *    clients go on being served, and the process is never restarted;
 *  - a file that does not parse, and one that parses but fails validation,
 *    are refused with an error log line and counted, and the tenants in
 *    force stay; the fixed file is then picked up;
 *  - a second api-edge with MILLOM_TENANTS_WATCH=0 ignores the change
 *    until SIGHUP, then applies it within a second; SIGHUP with the same
 *    file is "unchanged", with a broken one "error" (the process lives on);
 *  - a storm of reloads (file saves and SIGHUPs) while four threads send
 *    requests: every answer is the one of the version before or after
 *    (200 or 401), never anything else, and both api-edges exit cleanly
 *    at the end (a sanitizer report would make them exit 66).
 * Counters are millom_tenants_reloads_total{result=ok|unchanged|error}. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BASE_PORT 21780
#define HUP_PORT (BASE_PORT + 7)
#define SP "testserviceprovider"
#define BALANCE "/std/" SP "/tp/924542610003/balance"
#define OTHER_BALANCE "/std/otherprovider/tp/924542610003/balance"
#define INQUIRE "cco.dd.data-plan.gen.inquire"
/* The promise: a change is in force within a second. */
#define WITHIN_MS 1000

static test_stack stack;
static char edge[64], hup_edge[64];
static char hup_dir[300], hup_file[400];
static pid_t hup_pid;
static json_t *pristine; /* the stack's tenants as written at its start */
/* sp-demo's token from before it was disabled: good again once enabled. */
static char *sp_early;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the tenants file ---- */

static json_t *client_of(json_t *doc, const char *id) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "clients"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "id")), id) == 0) return c;
    }
    ck_abort_msg("no client %s", id);
    return NULL;
}

/* Writes text to path: in place (truncate and write, as `cat >`), or as
 * editors and `mv` do, a new file in the same directory renamed over it. */
static void write_text(const char *path, const char *text, int in_place) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(in_place ? path : tmp, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    if (!in_place) ck_assert_int_eq(rename(tmp, path), 0);
}

static void write_doc(const char *path, const json_t *doc, int in_place) {
    char *text = json_dumps(doc, JSON_INDENT(2));
    ck_assert_ptr_nonnull(text);
    write_text(path, text, in_place);
    free(text);
}

/* The pristine tenants with sp-demo's "enabled" and other-demo's inquire
 * scope as given. Caller decrefs. */
static json_t *variant(int sp_demo_enabled, int other_inquire) {
    json_t *doc = json_deep_copy(pristine);
    json_object_set_new(client_of(doc, "sp-demo"), "enabled", json_boolean(sp_demo_enabled));
    json_t *scopes = json_object_get(client_of(doc, "other-demo"), "scopes");
    if (!other_inquire) {
        size_t i;
        json_t *s;
        json_array_foreach(scopes, i, s) {
            if (strcmp(json_string_value(s), INQUIRE) == 0) {
                json_array_remove(scopes, i);
                break;
            }
        }
    }
    return doc;
}

/* ---- requests ---- */

/* A token for a client from base (form credentials); NULL when refused,
 * with the status in *status. Caller frees. */
static char *token(const char *base, const char *id, const char *secret, long *status) {
    char url[128], body[256];
    snprintf(url, sizeof url, "%s/oauth/v1/token", base);
    snprintf(body, sizeof body, "grant_type=client_credentials&client_id=%s&client_secret=%s", id,
             secret);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    test_response r;
    char *out = NULL;
    if (test_http("POST", url, h, body, &r) == 0 && r.status == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        const char *t = json_string_value(json_object_get(j, "access_token"));
        if (t) out = strdup(t);
        json_decref(j);
    }
    if (status) *status = r.status;
    test_response_free(&r);
    return out;
}

static char *must_token(const char *base, const char *id, const char *secret) {
    long status = 0;
    char *t = token(base, id, secret, &status);
    ck_assert_msg(t != NULL, "token for %s: %ld", id, status);
    return t;
}

/* GET base + path with the bearer token; the status (0: no answer). */
static long get(const char *base, const char *path, const char *tok) {
    char url[256], authz[4200];
    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(authz, sizeof authz, "Authorization: Bearer %s", tok);
    const char *h[] = {authz, NULL};
    test_response r;
    long status = test_http("GET", url, h, NULL, &r) == 0 ? r.status : 0;
    test_response_free(&r);
    return status;
}

/* Polls until GET answers want; the milliseconds it took from since, or
 * -1 when it did not within 5 s (far past the promise: the assertion
 * then names the time). */
static long until_status(const char *base, const char *path, const char *tok, long want,
                         int64_t since) {
    while (mono_ms() - since < 5000) {
        if (get(base, path, tok) == want) return (long)(mono_ms() - since);
        test_sleep_ms(20);
    }
    return -1;
}

static long reloads(const char *base, const char *result) {
    char label[32];
    snprintf(label, sizeof label, "result=\"%s\"", result);
    return test_metric_sum(base, "millom_tenants_reloads_total", label);
}

/* Waits until the counter reaches n (5 s at most); its value. */
static long until_reloads(const char *base, const char *result, long n) {
    long v = reloads(base, result);
    for (int i = 0; i < 250 && v < n; i++) {
        test_sleep_ms(20);
        v = reloads(base, result);
    }
    return v;
}

/* 1 if the program's log has a line containing both a and b. */
static int log_has(const char *name, const char *a, const char *b) {
    char path[400], line[4096];
    snprintf(path, sizeof path, "%s/%s.log", stack.dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, a) && (!b || strstr(line, b));
    fclose(f);
    return found;
}

/* ---- the file watch ---- */

START_TEST(watch_disables_a_client_within_a_second) {
    char *sp = must_token(edge, "sp-demo", "sp-demo-secret");
    char *other = must_token(edge, "other-demo", "other-demo-secret");
    ck_assert_int_eq(get(edge, BALANCE, sp), 200);
    ck_assert_int_eq(reloads(edge, "ok"), 0);
    sp_early = strdup(sp);

    json_t *doc = variant(0, 1);
    int64_t saved = mono_ms();
    write_doc(stack.tenants_file, doc, 0); /* an editor's save */
    json_decref(doc);
    long ms = until_status(edge, BALANCE, sp, 401, saved);
    ck_assert_msg(ms >= 0 && ms <= WITHIN_MS, "sp-demo's live token refused after %ld ms", ms);
    long status = 0;
    char *refused = token(edge, "sp-demo", "sp-demo-secret", &status);
    ck_assert_ptr_null(refused);
    ck_assert_int_eq(status, 401); /* invalid_client at the token endpoint too */
    ck_assert_int_eq(get(edge, OTHER_BALANCE, other), 200); /* the others are served */
    ck_assert_int_eq(until_reloads(edge, "ok", 1), 1);
    ck_assert(log_has("api-edge", "tenants reloaded (file changed)", "disabled sp-demo"));
    free(sp);
    free(other);
}
END_TEST

START_TEST(watch_removes_a_scope_within_a_second) {
    char *other = must_token(edge, "other-demo", "other-demo-secret");
    ck_assert_int_eq(get(edge, OTHER_BALANCE, other), 200);
    json_t *doc = variant(0, 0);
    int64_t saved = mono_ms();
    write_doc(stack.tenants_file, doc, 1); /* in place this time */
    json_decref(doc);
    long ms = until_status(edge, OTHER_BALANCE, other, 403, saved);
    ck_assert_msg(ms >= 0 && ms <= WITHIN_MS, "removed scope refused after %ld ms", ms);
    ck_assert_int_eq(until_reloads(edge, "ok", 2), 2);
    ck_assert(log_has("api-edge", "tenants reloaded (file changed)", "changed other-demo"));
    free(other);
}
END_TEST

START_TEST(broken_file_is_refused_and_the_old_one_stays) {
    /* A token issued now lacks the inquire scope, whatever comes later. */
    char *other = must_token(edge, "other-demo", "other-demo-secret");
    char *tp = must_token(edge, "tp-demo", "tp-demo-secret");
    const char *mgmt = "/mgmt/tp/purchases?subscriberId=924542610003";
    long errors = reloads(edge, "error");

    /* 1. not JSON */
    write_text(stack.tenants_file, "{\"operators\": [", 0);
    ck_assert_int_eq(until_reloads(edge, "error", errors + 1), errors + 1);
    ck_assert(log_has("api-edge", "tenants reload (file changed) refused", "tenants.json:"));
    /* 2. JSON, but a client of a provider nobody has */
    json_t *doc = variant(1, 1);
    json_object_set_new(client_of(doc, "sp-demo"), "serviceProvider", json_string("nobody"));
    write_doc(stack.tenants_file, doc, 0);
    json_decref(doc);
    ck_assert_int_eq(until_reloads(edge, "error", errors + 2), errors + 2);
    ck_assert(log_has("api-edge", "refused", "unknown serviceProvider"));

    /* The version in force is still the last good one. */
    ck_assert_int_eq(get(edge, OTHER_BALANCE, other), 403);
    long st = 0;
    char *sp = token(edge, "sp-demo", "sp-demo-secret", &st);
    ck_assert_ptr_null(sp);
    ck_assert_int_eq(st, 401);
    ck_assert_int_eq(get(edge, mgmt, tp), 200);
    char *tp2 = must_token(edge, "tp-demo", "tp-demo-secret");
    ck_assert_int_eq(get(edge, mgmt, tp2), 200);
    ck_assert_int_eq(reloads(edge, "ok"), 2);

    /* 3. fixed: picked up */
    doc = variant(1, 1);
    int64_t saved = mono_ms();
    write_doc(stack.tenants_file, doc, 0);
    json_decref(doc);
    long ms = until_status(edge, BALANCE, sp_early, 200, saved);
    ck_assert_msg(ms >= 0 && ms <= WITHIN_MS, "fixed file in force after %ld ms", ms);
    sp = must_token(edge, "sp-demo", "sp-demo-secret");
    ck_assert_int_eq(get(edge, BALANCE, sp), 200);
    free(other);
    other = must_token(edge, "other-demo", "other-demo-secret");
    ck_assert_int_eq(get(edge, OTHER_BALANCE, other), 200);
    ck_assert_int_eq(until_reloads(edge, "ok", 3), 3);
    ck_assert(log_has("api-edge", "tenants reloaded (file changed)", "enabled sp-demo"));
    free(sp);
    free(other);
    free(tp);
    free(tp2);
}
END_TEST

/* ---- SIGHUP ---- */

START_TEST(sighup_reloads_with_the_watch_off) {
    char *sp = must_token(hup_edge, "sp-demo", "sp-demo-secret");
    ck_assert_int_eq(get(hup_edge, BALANCE, sp), 200);
    json_t *doc = variant(0, 1);
    write_doc(hup_file, doc, 0);
    json_decref(doc);
    /* MILLOM_TENANTS_WATCH=0: the change waits for SIGHUP */
    test_sleep_ms(1500);
    ck_assert_int_eq(get(hup_edge, BALANCE, sp), 200);
    ck_assert_int_eq(reloads(hup_edge, "ok"), 0);

    int64_t sent = mono_ms();
    ck_assert_int_eq(kill(hup_pid, SIGHUP), 0);
    long ms = until_status(hup_edge, BALANCE, sp, 401, sent);
    ck_assert_msg(ms >= 0 && ms <= WITHIN_MS, "refused %ld ms after SIGHUP", ms);
    ck_assert_int_eq(until_reloads(hup_edge, "ok", 1), 1);
    ck_assert(log_has("api-edge-hup", "tenants reloaded (SIGHUP)", "disabled sp-demo"));

    /* the same file again: unchanged */
    ck_assert_int_eq(kill(hup_pid, SIGHUP), 0);
    ck_assert_int_eq(until_reloads(hup_edge, "unchanged", 1), 1);
    /* a broken file: refused, the process lives on with what it had */
    write_text(hup_file, "not json", 0);
    ck_assert_int_eq(kill(hup_pid, SIGHUP), 0);
    ck_assert_int_eq(until_reloads(hup_edge, "error", 1), 1);
    ck_assert(log_has("api-edge-hup", "tenants reload (SIGHUP) refused", NULL));
    ck_assert_int_eq(get(hup_edge, BALANCE, sp), 401);
    char *other = must_token(hup_edge, "other-demo", "other-demo-secret");
    ck_assert_int_eq(get(hup_edge, OTHER_BALANCE, other), 200);
    ck_assert_int_eq(kill(hup_pid, 0), 0);
    free(sp);
    free(other);
}
END_TEST

/* ---- reloads under load ---- */

typedef struct {
    const char *base;
    char *sp_token, *other_token;
    atomic_int *stop;
    long served, refused, odd;
} load_arg;

/* Requests until stopped: sp-demo's token (enabled in some versions, not
 * in others: 200 or 401), other-demo's (always 200) and token requests
 * for sp-demo (200 or 401). Anything else is odd. */
static void *load(void *p) {
    load_arg *a = p;
    for (int i = 0; !atomic_load(a->stop); i++) {
        long s;
        if (i % 3 == 0) {
            s = get(a->base, BALANCE, a->sp_token);
        } else if (i % 3 == 1) {
            s = get(a->base, OTHER_BALANCE, a->other_token);
            if (s != 200) a->odd++;
        } else {
            char *t = token(a->base, "sp-demo", "sp-demo-secret", &s);
            free(t);
        }
        if (s == 200)
            a->served++;
        else if (s == 401)
            a->refused++;
        else
            a->odd++;
    }
    return NULL;
}

START_TEST(reload_storm_under_load) {
    /* Both api-edges start from the same good version, sp-demo enabled
     * (the watched one has it in force since the fixed file above). */
    json_t *on = variant(1, 1), *off = variant(0, 1);
    write_doc(hup_file, on, 0);
    ck_assert_int_eq(kill(hup_pid, SIGHUP), 0);
    ck_assert_int_eq(until_reloads(hup_edge, "ok", 2), 2);
    long ok_before = reloads(edge, "ok");

    atomic_int stop = 0;
    load_arg args[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        const char *base = i % 2 ? hup_edge : edge;
        args[i] = (load_arg){.base = base, .stop = &stop};
        args[i].sp_token = must_token(base, "sp-demo", "sp-demo-secret");
        args[i].other_token = must_token(base, "other-demo", "other-demo-secret");
        ck_assert_int_eq(pthread_create(&t[i], NULL, load, &args[i]), 0);
    }
    for (int round = 0; round < 16; round++) {
        json_t *doc = round % 2 ? on : off;
        write_doc(stack.tenants_file, doc, round % 4 == 1);
        write_doc(hup_file, doc, 0);
        kill(hup_pid, SIGHUP);
        test_sleep_ms(250); /* past the watch's settling time: one reload each */
    }
    atomic_store(&stop, 1);
    long served = 0, refused = 0, odd = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        served += args[i].served;
        refused += args[i].refused;
        odd += args[i].odd;
        free(args[i].sp_token);
        free(args[i].other_token);
    }
    fprintf(stderr,
            "storm: %ld served, %ld refused, %ld odd; reloads ok %ld (watch) %ld (SIGHUP)\n",
            served, refused, odd, reloads(edge, "ok"), reloads(hup_edge, "ok"));
    ck_assert_int_eq(odd, 0);
    ck_assert_int_gt(served, 0);
    ck_assert_int_gt(refused, 0);
    ck_assert_int_ge(reloads(edge, "ok"), ok_before + 8);
    ck_assert_int_ge(reloads(hup_edge, "ok"), 2 + 8);
    /* The last version (sp-demo enabled) is in force on both. */
    char *sp = must_token(edge, "sp-demo", "sp-demo-secret");
    ck_assert_int_ne(until_status(edge, BALANCE, sp, 200, mono_ms()), -1);
    free(sp);
    sp = must_token(hup_edge, "sp-demo", "sp-demo-secret");
    ck_assert_int_eq(get(hup_edge, BALANCE, sp), 200);
    free(sp);
    json_decref(on);
    json_decref(off);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* The token endpoint's limits out of the way: the storm asks for
     * tokens of a client that is disabled every other moment. */
    const char *env[] = {"MILLOM_AUTH_DISABLED=0",
                         "MILLOM_JWT_KEY=test-reload-jwt-key",
                         "MILLOM_LOG_LEVEL=info",
                         "MILLOM_TOKEN_RATE_PER_IP=1000",
                         "MILLOM_TOKEN_BURST_PER_IP=1000",
                         "MILLOM_TOKEN_RATE_PER_CLIENT=1000",
                         "MILLOM_TOKEN_BURST_PER_CLIENT=1000",
                         "MILLOM_TOKEN_FAIL_FREE_PER_IP=1000000",
                         "MILLOM_TOKEN_FAIL_FREE_PER_CLIENT=1000000",
                         NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    json_error_t jerr;
    pristine = json_load_file(stack.tenants_file, 0, &jerr);
    /* The second api-edge: its own file in its own directory, no watch. */
    snprintf(hup_dir, sizeof hup_dir, "%s/hup", stack.dir);
    snprintf(hup_file, sizeof hup_file, "%s/tenants.json", hup_dir);
    char tenants_env[450], port_env[64];
    snprintf(tenants_env, sizeof tenants_env, "MILLOM_TENANTS=%s", hup_file);
    snprintf(port_env, sizeof port_env, "MILLOM_EDGE_PORT=%d", HUP_PORT);
    const char *hup_env[] = {tenants_env, port_env, "MILLOM_REPLY_PARTITION=1",
                             "MILLOM_TENANTS_WATCH=0", NULL};
    if (!pristine || mkdir(hup_dir, 0700) != 0 ||
        json_dump_file(pristine, hup_file, JSON_INDENT(2)) != 0 ||
        (hup_pid = stack_spawn_as(&stack, "api-edge", "api-edge-hup", hup_env)) < 0 ||
        stack_wait_ready(HUP_PORT, 30000) != 0) {
        fprintf(stderr, "second api-edge did not start (logs in %s)\n", stack.dir);
        stack_stop(&stack);
        return 1;
    }
    snprintf(hup_edge, sizeof hup_edge, "http://127.0.0.1:%d", HUP_PORT);

    Suite *s = suite_create("tenants_reload");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, watch_disables_a_client_within_a_second);
    tcase_add_test(tc, watch_removes_a_scope_within_a_second);
    tcase_add_test(tc, broken_file_is_refused_and_the_old_one_stays);
    tcase_add_test(tc, sighup_reloads_with_the_watch_off);
    tcase_add_test(tc, reload_storm_under_load);
    suite_add_tcase(s, tc);
    int rc = stack_run_suite(&stack, s);
    json_decref(pristine);
    free(sp_early);
    return rc;
}
