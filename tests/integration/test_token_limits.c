/* The token endpoint's limits against a real api-edge (MILLOM_AUTH_DISABLED=0,
 * issue 16 item 3):
 *  - a wrong secret costs the same hash work for a client with two hashes,
 *    one with a PBKDF2 and a sha256 hash, one with one hash, and an id
 *    nobody has (millom_token_hash_total and _iterations_total, not time);
 *  - a burst of wrong secrets for one client gets 429 with Retry-After,
 *    and the refused guesses are not hashed; the right secret from another
 *    address works at once, and from the guesser's address after the
 *    lock-out's Retry-After;
 *  - while four addresses guess as fast as they can, /healthz and a
 *    balance call with a token keep being answered 200 (secret checks run
 *    on their own bounded pool; a full queue is 503 with Retry-After);
 *  - api-edge refuses to start on a bad MILLOM_TOKEN_* value, naming it.
 * Other source addresses are 127.0.0.x, bound with CURLOPT_INTERFACE. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BASE_PORT 20180
#define SP "testserviceprovider"

static test_stack stack;
static char edge[64];

typedef struct {
    long status;
    char body[1024];
    size_t len;
    char retry_after[16];
} resp;

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
    resp *r = arg;
    size_t k = size * n;
    size_t room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, k < room ? k : room);
    r->len += k < room ? k : room;
    r->body[r->len] = '\0';
    return k;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg) {
    resp *r = arg;
    size_t k = size * n;
    if (k > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        const char *v = p + 12;
        while (*v == ' ') v++;
        snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)strcspn(v, "\r\n"), v);
    }
    return k;
}

/* One request from source address `from` (NULL: the default). */
static int call(const char *from, const char *method, const char *path, const char *authz,
                const char *form, resp *r) {
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    if (!c) return -1;
    char url[512], h[4200], iface[64];
    snprintf(url, sizeof url, "%s%s", edge, path);
    struct curl_slist *hs = NULL;
    if (authz) {
        snprintf(h, sizeof h, "Authorization: %s", authz);
        hs = curl_slist_append(hs, h);
    }
    if (form) {
        hs = curl_slist_append(hs, "Content-Type: application/x-www-form-urlencoded");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    }
    if (from) {
        snprintf(iface, sizeof iface, "host!%s", from);
        curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

/* POST /oauth/v1/token with form credentials; the status. */
static long token(const char *from, const char *id, const char *secret, resp *r) {
    char form[512];
    snprintf(form, sizeof form, "grant_type=client_credentials&client_id=%s&client_secret=%s", id,
             secret);
    ck_assert_int_eq(call(from, "POST", "/oauth/v1/token", NULL, form, r), 0);
    return r->status;
}

static void oauth_error_is(const resp *r, const char *error) {
    json_t *j = json_loads(r->body, 0, NULL);
    const char *e = json_string_value(json_object_get(j, "error"));
    ck_assert_msg(e && strcmp(e, error) == 0, "error %s, want %s (%s)", e ? e : "none", error,
                  r->body);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "error_description")));
    json_decref(j);
}

static long hashes(void) { return test_metric(edge, "millom_token_hash_total"); }
static long iterations(void) { return test_metric(edge, "millom_token_hash_iterations_total"); }

START_TEST(known_and_unknown_ids_cost_the_same_hash_work) {
    /* sp-demo: two PBKDF2 hashes; other-demo: PBKDF2 + sha256; tp-demo: one
     * PBKDF2; nobody: unknown. Wrong secrets, then a right one. */
    struct {
        const char *id, *secret;
        long status;
    } cases[] = {
        {"sp-demo", "wrong-secret", 401},
        {"other-demo", "wrong-secret", 401},
        {"tp-demo", "wrong-secret", 401},
        {"no-such-client", "wrong-secret", 401},
        {"no-such-client-2", "sp-demo-secret", 401},
        {"sp-demo", "sp-demo-secret", 200},
        {"tp-demo", "tp-demo-secret", 200},
    };
    long h0 = -1, i0 = -1;
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        long h = hashes(), it = iterations();
        ck_assert_int_ge(h, 0);
        resp r;
        ck_assert_int_eq(token("127.0.0.1", cases[k].id, cases[k].secret, &r), cases[k].status);
        if (r.status == 401) oauth_error_is(&r, "invalid_client");
        /* the counters move before the answer is sent */
        long dh = hashes() - h, di = iterations() - it;
        if (k == 0) h0 = dh, i0 = di;
        ck_assert_msg(dh == h0 && di == i0, "%s: %ld hashes, %ld iterations; sp-demo %ld, %ld",
                      cases[k].id, dh, di, h0, i0);
    }
    ck_assert_int_eq(h0, 2);         /* the most hashes a client has */
    ck_assert_int_eq(i0, 2 * 10000); /* each as costly as the costliest */
}
END_TEST

/* MILLOM_TOKEN_FAIL_FREE_PER_CLIENT=3: the fourth wrong secret for a client
 * from one address locks that client out from there for 1 s (then 2 s). */
START_TEST(a_burst_of_wrong_secrets_gets_429) {
    long h = hashes();
    int n401 = 0, n429 = 0;
    for (int i = 0; i < 20; i++) {
        resp r;
        long st = token("127.0.0.1", "sp-limited", "guess", &r);
        ck_assert_msg(st == 401 || st == 429, "guess %d: %ld %s", i, st, r.body);
        if (st == 401) {
            n401++;
            continue;
        }
        n429++;
        oauth_error_is(&r, "slow_down");
        int ra = atoi(r.retry_after);
        ck_assert_msg(ra >= 1 && ra <= 2, "Retry-After \"%s\"", r.retry_after);
    }
    ck_assert_int_ge(n401, 4);
    ck_assert_int_ge(n429, 1);
    /* only the guesses let through were hashed */
    ck_assert_int_eq(hashes() - h, 2 * n401);

    /* the client, from its own address, is not locked out */
    resp r;
    ck_assert_int_eq(token("127.0.0.2", "sp-limited", "limited-demo-secret", &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "access_token"));

    /* from the guesser's address, once the lock-out is over */
    long st = 0;
    for (int i = 0;
         i < 6 && (st = token("127.0.0.1", "sp-limited", "limited-demo-secret", &r)) == 429; i++) {
        int ra = atoi(r.retry_after);
        ck_assert_msg(ra >= 1 && ra <= 2, "Retry-After \"%s\"", r.retry_after);
        test_sleep_ms(ra * 1000 + 100);
    }
    ck_assert_msg(st == 200, "after the lock-out: %ld %s", st, r.body);
    /* and a success reset the count: a wrong secret is a plain 401 again */
    ck_assert_int_eq(token("127.0.0.1", "sp-limited", "guess", &r), 401);
}
END_TEST

typedef struct {
    int t;
    int n401, n429, n503, bad;
    char first_bad[256];
} guesser;

static atomic_int stop_guessing;

/* Guesses from 127.0.0.(10+t), a new id each time (so no per-client
 * lock-out stops it), until told to stop or 200 guesses. */
static void *guess(void *arg) {
    guesser *g = arg;
    char from[32], id[64];
    snprintf(from, sizeof from, "127.0.0.%d", 10 + g->t);
    for (int i = 0; i < 200 && !stop_guessing; i++) {
        snprintf(id, sizeof id, "guess-%d-%d", g->t, i);
        char form[256];
        snprintf(form, sizeof form,
                 "grant_type=client_credentials&client_id=%s&client_secret=guess", id);
        resp r;
        if (call(from, "POST", "/oauth/v1/token", NULL, form, &r) != 0) {
            g->bad++;
            continue;
        }
        if (r.status == 401)
            g->n401++;
        else if ((r.status == 503 || r.status == 429) && atoi(r.retry_after) >= 1)
            r.status == 503 ? g->n503++ : g->n429++;
        else if (!g->bad++)
            snprintf(g->first_bad, sizeof g->first_bad, "%ld [%s] %.200s", r.status, r.retry_after,
                     r.body);
    }
    return NULL;
}

START_TEST(the_api_is_served_while_secrets_are_guessed) {
    resp r;
    ck_assert_int_eq(token("127.0.0.3", "sp-demo", "sp-demo-secret", &r), 200);
    json_t *j = json_loads(r.body, 0, NULL);
    char authz[2048];
    snprintf(authz, sizeof authz, "Bearer %s",
             json_string_value(json_object_get(j, "access_token")));
    json_decref(j);

    long h = hashes(), busy = test_metric(edge, "millom_token_busy_total");
    guesser g[4];
    pthread_t th[4];
    stop_guessing = 0;
    for (int t = 0; t < 4; t++) {
        memset(&g[t], 0, sizeof g[t]);
        g[t].t = t;
        ck_assert_int_eq(pthread_create(&th[t], NULL, guess, &g[t]), 0);
    }
    /* once the hashing pool is saturated (its queue overflowed: 503),
     * the rest of the API still answers */
    for (int i = 0;
         i < 500 && (hashes() - h < 6 || test_metric(edge, "millom_token_busy_total") == busy); i++)
        test_sleep_ms(20);
    ck_assert_int_gt(test_metric(edge, "millom_token_busy_total"), busy);
    int served = 0;
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(call(NULL, "GET", "/healthz", NULL, NULL, &r), 0);
        ck_assert_msg(r.status == 200, "/healthz during guessing: %ld", r.status);
        ck_assert_int_eq(call(NULL, "GET", "/std/" SP "/tp/924542610003/balance", authz, NULL, &r),
                         0);
        ck_assert_msg(r.status == 200, "balance during guessing: %ld %s", r.status, r.body);
        served++;
    }
    long during = hashes() - h;
    stop_guessing = 1;
    int n401 = 0, n503 = 0, n429 = 0;
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        ck_assert_msg(g[t].bad == 0, "guesser %d: unexpected answer %s", t, g[t].first_bad);
        n401 += g[t].n401, n503 += g[t].n503, n429 += g[t].n429;
    }
    fprintf(stderr,
            "guessing: %d x 401, %d x 503 (queue full), %d x 429; %ld hashes while %d "
            "healthz+balance pairs were served\n",
            n401, n503, n429, during, served);
    ck_assert_int_ge(during, 6); /* the guessing did run alongside */
    ck_assert_int_eq(served, 6);
}
END_TEST

/* api-edge started with a bad limit setting exits 1 at once and its log
 * names the variable. */
START_TEST(a_bad_setting_stops_api_edge) {
    char bin[512], logpath[512], data[300], port[16];
    const char *build = getenv("BUILD");
    snprintf(bin, sizeof bin, "%s/bin/api-edge", build && *build ? build : "build/release");
    snprintf(logpath, sizeof logpath, "%s/bad-setting.log", stack.dir);
    snprintf(data, sizeof data, "%s/bad-setting", stack.dir);
    snprintf(port, sizeof port, "%d", BASE_PORT + 19);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) dup2(fd, 2), dup2(fd, 1);
        setenv("MILLOM_DATA_DIR", data, 1);
        setenv("MILLOM_BROKER_FILE", stack.broker_file, 1);
        setenv("MILLOM_TENANTS", stack.tenants_file, 1);
        setenv("MILLOM_EDGE_PORT", port, 1);
        setenv("MILLOM_TOKEN_FAIL_LOCK_S", "soon", 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < 600 && (r = waitpid(pid, &status, WNOHANG)) == 0; i++) test_sleep_ms(50);
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ck_abort_msg("api-edge kept running with MILLOM_TOKEN_FAIL_LOCK_S=soon");
    }
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    char log[8192];
    FILE *f = fopen(logpath, "r");
    size_t n = f ? fread(log, 1, sizeof log - 1, f) : 0;
    if (f) fclose(f);
    log[n] = '\0';
    ck_assert_msg(strstr(log, "MILLOM_TOKEN_FAIL_LOCK_S must be") != NULL, "log: %s", log);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *env[] = {"MILLOM_AUTH_DISABLED=0", "MILLOM_TOKEN_FAIL_FREE_PER_CLIENT=3",
                         "MILLOM_TOKEN_FAIL_LOCK_S=1", "MILLOM_TOKEN_FAIL_LOCK_MAX_S=2",
                         /* the address limits are the unit test's; here the
                          * guessing below must reach the hashing pool */
                         "MILLOM_TOKEN_FAIL_FREE_PER_IP=100000", "MILLOM_TOKEN_RATE_PER_IP=100000",
                         "MILLOM_TOKEN_BURST_PER_IP=100000", "MILLOM_TOKEN_HASH_THREADS=1",
                         "MILLOM_TOKEN_HASH_QUEUE=1", NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    Suite *s = suite_create("token_limits");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, known_and_unknown_ids_cost_the_same_hash_work);
    tcase_add_test(tc, a_burst_of_wrong_secrets_gets_429);
    tcase_add_test(tc, the_api_is_served_while_secrets_are_guessed);
    tcase_add_test(tc, a_bad_setting_stops_api_edge);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
