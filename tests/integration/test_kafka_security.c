/* Kafka security settings on the real programs (issue 16 item 6), against
 * a stack on devbroker. devbroker is librdkafka 2.0.2's mock cluster, which
 * has no SASL at all (its ApiVersions answer lists no SaslHandshake, and
 * rd_kafka_mock_set_apiversion cannot add an API the mock does not
 * implement), so "wrong credentials refused, right ones served" cannot be
 * run here; compose's real broker is checked by test_compose.sh. What runs:
 *   - an extra offer-resolver with SASL settings really attempts SASL: it
 *     never becomes ready against the broker without SASL and logs the
 *     authentication failure, where the same instance without the SASL
 *     settings becomes ready (so the difference is the settings);
 *   - an invalid setting stops a service at start-up (exit status 1) with a
 *     log line naming the variable, and its password is in no log. */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/lib/stack.h"

#define BASE_PORT 20380
#define PLAIN_PORT (BASE_PORT + 20)
#define SASL_PORT (BASE_PORT + 21)
#define BAD_PORT (BASE_PORT + 22)
#define SECRET "kafka-test-Pa55word-never-logged"

static test_stack stack;

/* The log of a program started by the stack ("" when absent). */
static void read_log(const char *name, char *out, size_t outlen) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s.log", stack.dir, name);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* Polls (up to ~60 s) until the program's log contains needle. */
static int wait_log(const char *name, const char *needle) {
    static char log[1 << 20];
    for (int i = 0; i < 600; i++) {
        read_log(name, log, sizeof log);
        if (strstr(log, needle)) return 0;
        test_sleep_ms(100);
    }
    return -1;
}

/* Starts another offer-resolver named `name` on admin port `port` with the
 * extra settings `extra` (NULL-terminated, may be empty). */
static void spawn_resolver(const char *name, int port, const char *const *extra) {
    static char dir[16][400], p[16][64];
    static int k;
    ck_assert_int_lt(k, 16);
    char data[330];
    snprintf(data, sizeof data, "%s/%s", stack.dir, name);
    ck_assert_int_eq(mkdir(data, 0700), 0);
    snprintf(dir[k], sizeof dir[k], "MILLOM_DATA_DIR=%s", data);
    snprintf(p[k], sizeof p[k], "MILLOM_RESOLVER_PORT=%d", port);
    const char *env[16] = {dir[k], p[k]};
    size_t n = 2;
    for (size_t i = 0; extra[i] && n < 15; i++) env[n++] = extra[i];
    env[n] = NULL;
    k++;
    ck_assert_int_gt(stack_spawn_as(&stack, "offer-resolver", name, env), 0);
}

START_TEST(a_sasl_client_really_authenticates) {
    const char *none[] = {NULL};
    spawn_resolver("offer-resolver-plain", PLAIN_PORT, none);
    ck_assert_int_eq(stack_wait_ready(PLAIN_PORT, 60000), 0);

    const char *sasl[] = {"KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
                          "KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
                          "KAFKA_SASL_USERNAME=offer-resolver", "KAFKA_SASL_PASSWORD=" SECRET,
                          /* the line naming the mechanism is info; make test runs at warn */
                          "MILLOM_LOG_LEVEL=info", NULL};
    spawn_resolver("offer-resolver-sasl", SASL_PORT, sasl);
    /* The client tried SASL on the broker and was turned away... */
    ck_assert_int_eq(wait_log("offer-resolver-sasl", "SASL"), 0);
    ck_assert_int_eq(wait_log("offer-resolver-sasl", "_AUTHENTICATION"), 0);
    /* ...so it holds no partition and is not ready. */
    ck_assert_int_ne(stack_wait_ready(SASL_PORT, 3000), 0);
    stack_stop_one(&stack, "offer-resolver-sasl");
    static char log[1 << 20];
    read_log("offer-resolver-sasl", log, sizeof log);
    ck_assert_msg(strstr(log, SECRET) == NULL, "the Kafka password is in the log");
    ck_assert_ptr_nonnull(strstr(log, "SASL SCRAM-SHA-512 as offer-resolver"));
    ck_assert_int_eq(stack_stop_one(&stack, "offer-resolver-plain"), 0);
}
END_TEST

START_TEST(a_bad_setting_stops_start_up) {
    const char *bad[] = {"KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM=MD5",
                         "KAFKA_SASL_USERNAME=offer-resolver", "KAFKA_SASL_PASSWORD=" SECRET, NULL};
    spawn_resolver("offer-resolver-bad", BAD_PORT, bad);
    ck_assert_int_eq(wait_log("offer-resolver-bad", "KAFKA_SASL_MECHANISM=MD5"), 0);
    int status = stack_stop_one(&stack, "offer-resolver-bad");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status 0x%x", status);
    static char log[1 << 20];
    read_log("offer-resolver-bad", log, sizeof log);
    ck_assert_msg(strstr(log, SECRET) == NULL, "the Kafka password is in the log");
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *const vars[] = {"KAFKA_SECURITY_PROTOCOL",  "KAFKA_SASL_MECHANISM",
                                "KAFKA_SASL_USERNAME",      "KAFKA_SASL_PASSWORD",
                                "KAFKA_SASL_PASSWORD_FILE", NULL};
    for (size_t i = 0; vars[i]; i++) unsetenv(vars[i]);
    const char *env[] = {NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    Suite *s = suite_create("kafka_security");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, a_sasl_client_really_authenticates);
    tcase_add_test(tc, a_bad_setting_stops_start_up);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
