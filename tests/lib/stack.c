/* See stack.h. Programs run from $BUILD/bin (default build/release) with
 * their stdout/stderr in <dir>/<name>.log. */
#include "stack.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void test_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *bin_dir(char *buf, size_t len) {
    const char *build = getenv("BUILD");
    snprintf(buf, len, "%s/bin", build && *build ? build : "build/release");
    return buf;
}

static void put_env(const char *kv) {
    char *copy = strdup(kv);
    char *eq = copy ? strchr(copy, '=') : NULL;
    if (eq) {
        *eq = '\0';
        setenv(copy, eq + 1, 1);
    }
    free(copy);
}

static const char *const *stack_env;

pid_t stack_spawn(test_stack *s, const char *name, const char *const *env) {
    return stack_spawn_as(s, name, name, env);
}

pid_t stack_spawn_as(test_stack *s, const char *program, const char *name, const char *const *env) {
    if (s->n == STACK_MAX_PROCS) return -1;
    char bins[256], path[512], log[512];
    snprintf(path, sizeof path, "%s/%s", bin_dir(bins, sizeof bins), program);
    snprintf(log, sizeof log, "%s/%s.log", s->dir, name);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        if (f) dup2(fileno(stderr), 1);
        char port[16];
        setenv("MILLOM_DATA_DIR", s->dir, 1);
        setenv("MILLOM_BROKER_FILE", s->broker_file, 1);
        setenv("MILLOM_TENANTS", s->tenants_file, 1);
        snprintf(port, sizeof port, "%d", s->edge_port);
        setenv("MILLOM_EDGE_PORT", port, 1);
        snprintf(port, sizeof port, "%d", s->mno_port);
        setenv("MILLOM_MNO_PORT", port, 1);
        snprintf(port, sizeof port, "%d", s->resolver_port);
        setenv("MILLOM_RESOLVER_PORT", port, 1);
        snprintf(port, sizeof port, "%d", s->executor_port);
        setenv("MILLOM_EXECUTOR_PORT", port, 1);
        snprintf(port, sizeof port, "%d", s->notifier_port);
        setenv("MILLOM_NOTIFIER_PORT", port, 1);
        snprintf(port, sizeof port, "%d", s->settlement_port);
        setenv("MILLOM_SETTLEMENT_PORT", port, 1);
        snprintf(port, sizeof port, "%d", s->sp_port);
        setenv("MILLOM_SP_PORT", port, 1);
        for (size_t i = 0; stack_env && stack_env[i]; i++) put_env(stack_env[i]);
        for (size_t i = 0; env && env[i]; i++) put_env(env[i]);
        execl(path, program, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    s->pids[s->n] = pid;
    snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
    s->n++;
    return pid;
}

static size_t discard(char *p, size_t size, size_t n, void *u) {
    (void)p;
    (void)u;
    return size * n;
}

int stack_wait_ready(int port, int timeout_ms) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    int rc = -1;
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        long status = 0;
        if (curl_easy_perform(c) == CURLE_OK) {
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            if (status == 200) {
                rc = 0;
                break;
            }
        }
        test_sleep_ms(50);
    }
    curl_easy_cleanup(c);
    return rc;
}

/* The sandbox tenants, pointed at this stack's sandbox ports; every
 * provider's "purchaseCallbacks" is MILLOM_TEST_PURCHASE_CALLBACKS when the
 * test set it. */
static int write_tenants(test_stack *s) {
    const char *callbacks = getenv("MILLOM_TEST_PURCHASE_CALLBACKS");
    json_error_t jerr;
    json_t *t = json_load_file("config/tenants.sandbox.json", 0, &jerr);
    if (!t) {
        fprintf(stderr, "config/tenants.sandbox.json: %s\n", jerr.text);
        return -1;
    }
    char url[128];
    size_t i;
    json_t *v;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s->mno_port);
    json_array_foreach(json_object_get(t, "operators"), i, v)
        json_object_set_new(v, "backendUrl", json_string(url));
    json_array_foreach(json_object_get(t, "serviceProviders"), i, v) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/notifications", s->sp_port);
        json_object_set_new(v, "notificationUrl", json_string(url));
        snprintf(url, sizeof url, "http://127.0.0.1:%d/callbacks", s->sp_port);
        json_object_set_new(v, "callbackUrl", json_string(url));
        if (callbacks && *callbacks)
            json_object_set_new(v, "purchaseCallbacks", json_string(callbacks));
    }
    snprintf(s->tenants_file, sizeof s->tenants_file, "%s/tenants.json", s->dir);
    int rc = json_dump_file(t, s->tenants_file, JSON_INDENT(2));
    json_decref(t);
    return rc;
}

/* 0 if nothing listens on 127.0.0.1:port. A port already taken (another
 * test stack, a `make run`) would let the readiness checks talk to the
 * wrong programs, so the stack refuses to start instead. */
static int port_free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    close(fd);
    return rc == 0 ? 0 : -1;
}

int stack_start(test_stack *s, int base_port, const char *const *env) {
    memset(s, 0, sizeof *s);
    stack_env = env;
    snprintf(s->dir, sizeof s->dir, "/tmp/millom-test-XXXXXX");
    if (!mkdtemp(s->dir)) return -1;
    snprintf(s->broker_file, sizeof s->broker_file, "%s/broker.bootstrap", s->dir);
    s->edge_port = base_port;
    s->mno_port = base_port + 1;
    s->resolver_port = base_port + 2;
    s->executor_port = base_port + 3;
    s->notifier_port = base_port + 4;
    s->settlement_port = base_port + 5;
    s->sp_port = base_port + 6;
    for (int p = base_port; p <= base_port + 6; p++) {
        if (port_free(p) != 0) {
            fprintf(stderr, "port %d is in use: another test stack or `make run`?\n", p);
            return -1;
        }
    }
    if (write_tenants(s) != 0) return -1;
    /* The test's own Kafka clients find the broker the same way. */
    setenv("MILLOM_BROKER_FILE", s->broker_file, 1);

    if (stack_spawn(s, "devbroker", NULL) < 0) return -1;
    /* devbroker creates its topics one by one through the mock cluster's
     * thread, which answers some of them only on its next 1 s poll: 3 to 6
     * s normally, more under ThreadSanitizer on a busy machine. The bound
     * is 60 s (a start that never comes, not a timing check). */
    for (int i = 0; i < 1200; i++) {
        FILE *f = fopen(s->broker_file, "r");
        if (f) {
            int ok = fgets(s->bootstrap, sizeof s->bootstrap, f) != NULL;
            fclose(f);
            if (ok) break;
        }
        test_sleep_ms(50);
    }
    s->bootstrap[strcspn(s->bootstrap, "\r\n")] = '\0';
    if (!s->bootstrap[0]) {
        fprintf(stderr, "devbroker did not write %s\n", s->broker_file);
        return -1;
    }
    const char *programs[] = {"mno-sandbox",       "sp-sandbox", "offer-resolver",
                              "purchase-executor", "notifier",   "settlement-reporter",
                              "api-edge"};
    int ports[] = {s->mno_port,      s->sp_port,         s->resolver_port, s->executor_port,
                   s->notifier_port, s->settlement_port, s->edge_port};
    for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++)
        if (stack_spawn(s, programs[i], NULL) < 0) return -1;
    for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++) {
        if (stack_wait_ready(ports[i], 30000) != 0) {
            fprintf(stderr, "%s not ready on port %d (logs in %s)\n", programs[i], ports[i],
                    s->dir);
            return -1;
        }
    }
    return 0;
}

static void print_log(const test_stack *s, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.log", s->dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return;
    fprintf(stderr, "---- %s ----\n", path);
    char line[2048];
    while (fgets(line, sizeof line, f)) fputs(line, stderr);
    fclose(f);
}

static int stop_pid(pid_t pid) {
    kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        test_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return status;
}

int stack_kill(test_stack *s, const char *name, int sig) {
    for (int i = 0; i < s->n; i++) {
        if (s->pids[i] <= 0 || strcmp(s->names[i], name) != 0) continue;
        kill(s->pids[i], sig);
        int status = 0;
        waitpid(s->pids[i], &status, 0);
        s->pids[i] = 0;
        return status;
    }
    return -1;
}

int stack_stop_one(test_stack *s, const char *name) {
    for (int i = 0; i < s->n; i++) {
        if (s->pids[i] <= 0 || strcmp(s->names[i], name) != 0) continue;
        int status = stop_pid(s->pids[i]);
        s->pids[i] = 0;
        return status;
    }
    return -1;
}

int stack_stop(test_stack *s) {
    int bad = 0;
    for (int i = s->n - 1; i >= 0; i--) {
        if (s->pids[i] <= 0) continue;
        int status = stop_pid(s->pids[i]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s exited badly (status 0x%x)\n", s->names[i], status);
            print_log(s, s->names[i]);
            bad = 1;
        }
        s->pids[i] = 0;
    }
    if (!bad && !getenv("MILLOM_KEEP_TEST_DIR")) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", s->dir);
    }
    return bad;
}

int stack_run_suite(test_stack *s, Suite *suite) {
    SRunner *sr = srunner_create(suite);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    int bad_exit = stack_stop(s);
    curl_global_cleanup();
    return failed || bad_exit ? 1 : 0;
}

typedef struct {
    char *buf;
    size_t len;
} grow_buf;

static size_t collect(char *p, size_t size, size_t n, void *u) {
    grow_buf *b = u;
    char *g = realloc(b->buf, b->len + size * n + 1);
    if (!g) return 0;
    memcpy(g + b->len, p, size * n);
    b->buf = g;
    b->len += size * n;
    b->buf[b->len] = '\0';
    return size * n;
}

/* When header line p (len bytes) is `name: value`, copies the value into
 * out (cut to outlen - 1). */
static void header_value(const char *p, size_t len, const char *name, char *out, size_t outlen) {
    size_t nlen = strlen(name);
    if (len <= nlen || strncasecmp(p, name, nlen) != 0 || p[nlen] != ':') return;
    size_t v = nlen + 1;
    while (v < len && p[v] == ' ') v++;
    size_t m = 0;
    while (v < len && p[v] != '\r' && p[v] != '\n' && m < outlen - 1) out[m++] = p[v++];
    out[m] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *u) {
    test_response *r = u;
    size_t len = size * n;
    header_value(p, len, "Retry-After", r->retry_after, sizeof r->retry_after);
    header_value(p, len, "x-correlator", r->correlator, sizeof r->correlator);
    return len;
}

int test_http(const char *method, const char *url, const char *const *headers, const char *body,
              test_response *out) {
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    struct curl_slist *list = NULL;
    int typed = 0; /* the caller's own Content-Type (a form) replaces JSON's */
    for (size_t i = 0; headers && headers[i]; i++) {
        list = curl_slist_append(list, headers[i]);
        if (strncasecmp(headers[i], "Content-Type:", 13) == 0) typed = 1;
    }
    if (body && !typed) list = curl_slist_append(list, "Content-Type: application/json");
    grow_buf b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &out->seconds);
    }
    out->body = b.buf ? b.buf : strdup("");
    out->len = b.len;
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

void test_response_free(test_response *r) {
    free(r->body);
    r->body = NULL;
}

json_t *test_get_json(const char *url, const char *const *headers, long *status) {
    test_response r;
    test_http("GET", url, headers, NULL, &r);
    if (status) *status = r.status;
    json_t *j = json_loads(r.body, 0, NULL);
    test_response_free(&r);
    return j;
}

char *test_balance(const char *edge_base, const char *sp, const char *op, const char *msisdn,
                   const char *type) {
    char url[512];
    snprintf(url, sizeof url, "%s/std/%s/%s/%s/accountInfo", edge_base, sp, op, msisdn);
    const char *const hdr[] = {"Cache-Control: no-cache", NULL};
    long status = 0;
    json_t *j = test_get_json(url, hdr, &status);
    ck_assert_msg(status == 200, "accountInfo of %s: %ld", msisdn, status);
    char *out = NULL;
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(j, "balances"), i, b) {
        const char *t = json_string_value(json_object_get(b, "balanceType"));
        const char *v = json_string_value(json_object_get(b, "balance"));
        if (t && v && strcmp(t, type) == 0) out = strdup(v);
    }
    json_decref(j);
    return out;
}

json_t *test_post_json(const char *url, const char *body, long *status) {
    test_response r;
    test_http("POST", url, NULL, body, &r);
    if (status) *status = r.status;
    json_t *j = json_loads(r.body, 0, NULL);
    test_response_free(&r);
    return j;
}

long test_metric(const char *base_url, const char *name) {
    char url[256];
    snprintf(url, sizeof url, "%s/metrics", base_url);
    test_response r;
    long v = -1;
    if (test_http("GET", url, NULL, NULL, &r) == 0) {
        size_t len = strlen(name);
        for (const char *line = r.body; line && *line; line = strchr(line, '\n')) {
            if (*line == '\n') line++;
            if (strncmp(line, name, len) == 0 && line[len] == ' ') {
                v = strtol(line + len + 1, NULL, 10);
                break;
            }
        }
    }
    test_response_free(&r);
    return v;
}

long test_metric_sum(const char *base_url, const char *name, const char *label_substring) {
    char url[256];
    snprintf(url, sizeof url, "%s/metrics", base_url);
    test_response r;
    if (test_http("GET", url, NULL, NULL, &r) != 0 || r.status != 200) {
        test_response_free(&r);
        return -1;
    }
    long sum = 0;
    size_t nl = strlen(name);
    for (char *line = r.body; line && *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        if (strncmp(line, name, nl) == 0 && (line[nl] == '{' || line[nl] == ' ') &&
            (!label_substring || strstr(line, label_substring))) {
            const char *v = strrchr(line, ' ');
            if (v) sum += atol(v + 1);
        }
        line = end ? end + 1 : NULL;
    }
    test_response_free(&r);
    return sum;
}

void test_operator_transid(const char *sp, const char *transid, char out[37]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    const char *prefix = "millom.operator-transid.v1\n";
    EVP_DigestUpdate(ctx, prefix, strlen(prefix));
    const char *fields[] = {sp, transid};
    for (int i = 0; i < 2; i++) {
        char head[32];
        int n = snprintf(head, sizeof head, "%zu:", strlen(fields[i]));
        EVP_DigestUpdate(ctx, head, (size_t)n);
        EVP_DigestUpdate(ctx, fields[i], strlen(fields[i]));
        EVP_DigestUpdate(ctx, "\n", 1);
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x80);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0],
             md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12],
             md[13], md[14], md[15]);
}

long test_mno_activations(const char *mno_base, const char *transid, long *debits, long *refunds) {
    return test_mno_activations_of(mno_base, "testserviceprovider", transid, debits, refunds);
}

long test_mno_activations_of(const char *mno_base, const char *sp, const char *transid,
                             long *debits, long *refunds) {
    char url[256], op_tid[37];
    test_operator_transid(sp, transid, op_tid);
    snprintf(url, sizeof url, "%s/admin/activations?transId=%s", mno_base, op_tid);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    long d = 0, r = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(j, "activations"), i, a) {
        d += (long)json_integer_value(json_object_get(a, "debits"));
        r += (long)json_integer_value(json_object_get(a, "refunds"));
    }
    json_decref(j);
    if (debits) *debits = d;
    if (refunds) *refunds = r;
    return status;
}

long test_register_consent(const char *edge_base, const char *sp, const char *msisdn,
                           const char *transaction_id, const char *types_json) {
    char url[256], body[512];
    snprintf(url, sizeof url, "%s/std/%s/%s/register", edge_base, sp, msisdn);
    snprintf(body, sizeof body, "{\"transactionId\":\"%s\",\"types\":%s}", transaction_id,
             types_json);
    test_response r;
    test_http("POST", url, NULL, body, &r);
    long status = r.status;
    test_response_free(&r);
    return status;
}

json_t *test_sp_received(const char *sp_base, const char *kind, long since, int limit,
                         long *status) {
    char url[256];
    if (since < 0)
        snprintf(url, sizeof url, "%s/admin/received?kind=%s&limit=%d", sp_base, kind, limit);
    else
        snprintf(url, sizeof url, "%s/admin/received?kind=%s&since=%ld&limit=%d", sp_base, kind,
                 since, limit);
    return test_get_json(url, NULL, status);
}

int test_sp_received_count(const char *sp_base, const char *kind, const char *tid, int status_ok,
                           json_t **first, long *status) {
    json_t *j = test_sp_received(sp_base, kind, -1, 10000, status);
    int n = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(j, "received"), i, rec) {
        const char *t = json_string_value(json_object_get(rec, "transactionId"));
        if (!t || strcmp(t, tid) != 0) continue;
        if (status_ok && json_integer_value(json_object_get(rec, "status")) != 200) continue;
        if (n++ == 0 && first) *first = json_incref(json_object_get(rec, "body"));
    }
    json_decref(j);
    return n;
}

/* ---- Whole-stack restart (tests/integration/test_restart.c) ---- */

/* The standard stack's programs in start order (as stack_start starts
 * them after devbroker), and the port each answers /readyz on. */
static const char *const restart_programs[] = {
    "mno-sandbox", "sp-sandbox",          "offer-resolver", "purchase-executor",
    "notifier",    "settlement-reporter", "api-edge"};
#define RESTART_PROGRAMS (sizeof restart_programs / sizeof restart_programs[0])

static int restart_port(const test_stack *s, size_t i) {
    const int ports[RESTART_PROGRAMS] = {s->mno_port,      s->sp_port,       s->resolver_port,
                                         s->executor_port, s->notifier_port, s->settlement_port,
                                         s->edge_port};
    return ports[i];
}

/* Drops the slots of programs already stopped (pid 0), so repeated
 * restarts never run out of the STACK_MAX_PROCS slots. */
static void compact_slots(test_stack *s) {
    int kept = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->pids[i] <= 0) continue;
        if (kept != i) {
            s->pids[kept] = s->pids[i];
            memcpy(s->names[kept], s->names[i], sizeof s->names[0]);
        }
        kept++;
    }
    s->n = kept;
}

int stack_restart_all(test_stack *s, int sig, int timeout_ms) {
    int problems = 0;
    /* Stop in reverse start order: api-edge first, the sandboxes last. */
    for (size_t k = RESTART_PROGRAMS; k-- > 0;) {
        const char *name = restart_programs[k];
        int status;
        if (sig == SIGTERM) {
            status = stack_stop_one(s, name);
            if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "restart: %s did not stop cleanly on SIGTERM (status 0x%x)\n", name,
                        status);
                print_log(s, name);
                problems++;
            }
        } else {
            status = stack_kill(s, name, sig);
            if (status == -1) {
                fprintf(stderr, "restart: %s was not running\n", name);
                problems++;
            }
        }
    }
    compact_slots(s);
    for (size_t k = 0; k < RESTART_PROGRAMS; k++) {
        if (stack_spawn(s, restart_programs[k], NULL) < 0) {
            fprintf(stderr, "restart: cannot start %s\n", restart_programs[k]);
            problems++;
        }
    }
    for (size_t k = 0; k < RESTART_PROGRAMS; k++) {
        if (stack_wait_ready(restart_port(s, k), timeout_ms) != 0) {
            fprintf(stderr, "restart: %s not ready on port %d after the restart (logs in %s)\n",
                    restart_programs[k], restart_port(s, k), s->dir);
            print_log(s, restart_programs[k]);
            problems++;
        }
    }
    return problems;
}

/* ---- stack_respawn_in_place (test_kafka_faults, test_storage_faults) ---- */

pid_t stack_respawn_in_place(test_stack *s, const char *name, const char *const *env) {
    return stack_respawn_as_in_place(s, name, name, env);
}

pid_t stack_respawn_as_in_place(test_stack *s, const char *program, const char *name,
                                const char *const *env) {
    int slot = -1;
    for (int i = 0; i < s->n; i++)
        if (s->pids[i] <= 0 && strcmp(s->names[i], name) == 0) slot = i;
    if (slot < 0) return -1;
    /* stack_spawn_as appends; move the new process back into the old slot. */
    int n = s->n;
    pid_t pid = stack_spawn_as(s, program, name, env);
    if (pid < 0) return -1;
    s->n = n;
    s->pids[slot] = pid;
    return pid;
}
