/* shared/plumbing/kafka.c's security settings (kafka_conf_security, part of every
 * client's kafka_conf_common): the KAFKA_* environment variables reach
 * librdkafka's conf, bad values and settings the protocol would ignore are
 * refused with a message naming the variable, the password (inline or from
 * KAFKA_SASL_PASSWORD_FILE) is applied but appears in no message and no
 * log line, and librdkafka (Debian's 2.0.2, built with SASL and SSL)
 * creates a SCRAM-SHA-512 client from the result. A producer made by
 * kafka_producer_new really authenticates: against librdkafka's mock
 * cluster (devbroker's broker, which has no SASL: 2.0.2's mock answers
 * ApiVersions without SaslHandshake) a SASL producer gets no metadata,
 * where the same producer without SASL gets it. Works with CK_FORK=no:
 * every test clears the variables it sets. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "shared/plumbing/kafka.h"
#include "tests/lib/mock_cluster.h"

#define SECRET "s3cret-Pa55word-never-logged"

static const char *const vars[] = {
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SASL_PASSWORD_FILE",
    "KAFKA_SSL_CA_LOCATION",
    "KAFKA_SSL_CERTIFICATE_LOCATION",
    "KAFKA_SSL_KEY_LOCATION",
};

static void clear_env(void) {
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
}

static void sasl_env(void) {
    clear_env();
    setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT", 1);
    setenv("KAFKA_SASL_MECHANISM", "scram-sha-512", 1);
    setenv("KAFKA_SASL_USERNAME", "purchase-executor", 1);
    setenv("KAFKA_SASL_PASSWORD", SECRET, 1);
}

/* A conf property's value ("" when unset). */
static void get(rd_kafka_conf_t *conf, const char *name, char *out, size_t outlen) {
    size_t n = outlen;
    out[0] = '\0';
    ck_assert_int_eq(rd_kafka_conf_get(conf, name, out, &n), RD_KAFKA_CONF_OK);
}

/* kafka_conf_security on a fresh conf: its result, its message in err. */
static int apply(char *err, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    err[0] = '\0';
    int rc = kafka_conf_security(conf, err, errlen);
    rd_kafka_conf_destroy(conf);
    return rc;
}

/* Refused, with a message that names `var` and never holds the secret. */
static void refused(const char *var) {
    char err[512];
    ck_assert_int_eq(apply(err, sizeof err), -1);
    ck_assert_msg(strstr(err, var) != NULL, "message \"%s\" does not name %s", err, var);
    ck_assert_msg(strstr(err, SECRET) == NULL, "message \"%s\" holds the password", err);
}

static char tmp_path[64];

static const char *write_tmp(const char *content) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/millom-kafka-sec-XXXXXX");
    int fd = mkstemp(tmp_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return tmp_path;
}

START_TEST(default_is_plaintext) {
    clear_env();
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256], v[256];
    ck_assert_int_eq(kafka_conf_security(conf, err, sizeof err), 0);
    get(conf, "security.protocol", v, sizeof v);
    ck_assert_str_eq(v, "plaintext");
    rd_kafka_conf_destroy(conf);
}
END_TEST

START_TEST(sasl_scram_is_applied) {
    sasl_env();
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256], v[256];
    ck_assert_msg(kafka_conf_security(conf, err, sizeof err) == 0, "%s", err);
    get(conf, "security.protocol", v, sizeof v);
    ck_assert_str_eq(v, "sasl_plaintext");
    get(conf, "sasl.mechanisms", v, sizeof v);
    ck_assert_str_eq(v, "SCRAM-SHA-512");
    get(conf, "sasl.username", v, sizeof v);
    ck_assert_str_eq(v, "purchase-executor");
    get(conf, "sasl.password", v, sizeof v);
    ck_assert_str_eq(v, SECRET);
    /* librdkafka accepts the whole: SCRAM is built in (a client that
     * cannot do the mechanism fails here, in rd_kafka_new). */
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ck_assert_msg(rk != NULL, "rd_kafka_new: %s", err);
    rd_kafka_destroy(rk);
    clear_env();
}
END_TEST

/* Through kafka_conf_common, as every producer, consumer and millomctl. */
START_TEST(common_conf_carries_security) {
    sasl_env();
    setenv("KAFKA_BOOTSTRAP", "127.0.0.1:1", 1);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256], v[256];
    ck_assert_msg(kafka_conf_common(conf, "t", err, sizeof err) == 0, "%s", err);
    get(conf, "sasl.username", v, sizeof v);
    ck_assert_str_eq(v, "purchase-executor");
    rd_kafka_conf_destroy(conf);
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_plain", 1);
    conf = rd_kafka_conf_new();
    ck_assert_int_eq(kafka_conf_common(conf, "t", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "KAFKA_SECURITY_PROTOCOL"));
    rd_kafka_conf_destroy(conf);
    unsetenv("KAFKA_BOOTSTRAP");
    clear_env();
}
END_TEST

START_TEST(password_from_file) {
    sasl_env();
    unsetenv("KAFKA_SASL_PASSWORD");
    setenv("KAFKA_SASL_PASSWORD_FILE", write_tmp(SECRET "\n"), 1);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256], v[256];
    ck_assert_msg(kafka_conf_security(conf, err, sizeof err) == 0, "%s", err);
    get(conf, "sasl.password", v, sizeof v);
    ck_assert_str_eq(v, SECRET); /* the newline a secret file ends with is not part of it */
    rd_kafka_conf_destroy(conf);
    /* Both ways at once: which one is meant? */
    setenv("KAFKA_SASL_PASSWORD", SECRET, 1);
    refused("KAFKA_SASL_PASSWORD_FILE");
    unsetenv("KAFKA_SASL_PASSWORD");
    unlink(tmp_path);
    refused("KAFKA_SASL_PASSWORD_FILE"); /* missing file */
    setenv("KAFKA_SASL_PASSWORD_FILE", write_tmp("\n"), 1);
    refused("KAFKA_SASL_PASSWORD_FILE"); /* empty */
    unlink(tmp_path);
    clear_env();
}
END_TEST

START_TEST(bad_values_are_refused) {
    sasl_env();
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl", 1);
    refused("KAFKA_SECURITY_PROTOCOL");
    sasl_env();
    setenv("KAFKA_SASL_MECHANISM", "GSSAPI", 1);
    refused("KAFKA_SASL_MECHANISM");
    sasl_env();
    unsetenv("KAFKA_SASL_MECHANISM");
    refused("KAFKA_SASL_MECHANISM");
    sasl_env();
    unsetenv("KAFKA_SASL_USERNAME");
    refused("KAFKA_SASL_USERNAME");
    sasl_env();
    unsetenv("KAFKA_SASL_PASSWORD");
    refused("KAFKA_SASL_PASSWORD");
    sasl_env();
    setenv("KAFKA_SASL_PASSWORD", "", 1);
    refused("KAFKA_SASL_PASSWORD");
    clear_env();
}
END_TEST

/* Credentials with a protocol that would not use them: an operator who set
 * a password but forgot the protocol must not get an unauthenticated
 * connection silently. */
START_TEST(settings_the_protocol_ignores_are_refused) {
    sasl_env();
    unsetenv("KAFKA_SECURITY_PROTOCOL");
    refused("KAFKA_SASL_MECHANISM");
    clear_env();
    setenv("KAFKA_SASL_PASSWORD", SECRET, 1);
    refused("KAFKA_SASL_PASSWORD");
    clear_env();
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext", 1);
    setenv("KAFKA_SASL_MECHANISM", "PLAIN", 1);
    setenv("KAFKA_SASL_USERNAME", "u", 1);
    setenv("KAFKA_SASL_PASSWORD", SECRET, 1);
    setenv("KAFKA_SSL_CA_LOCATION", "/etc/hostname", 1);
    refused("KAFKA_SSL_CA_LOCATION");
    clear_env();
}
END_TEST

START_TEST(tls_files) {
    clear_env();
    setenv("KAFKA_SECURITY_PROTOCOL", "ssl", 1);
    setenv("KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem", 1);
    refused("KAFKA_SSL_CA_LOCATION");
    const char *ca = write_tmp("not checked here: librdkafka reads it in rd_kafka_new\n");
    setenv("KAFKA_SSL_CA_LOCATION", ca, 1);
    setenv("KAFKA_SSL_CERTIFICATE_LOCATION", ca, 1);
    refused("KAFKA_SSL_KEY_LOCATION"); /* a certificate without its key */
    setenv("KAFKA_SSL_KEY_LOCATION", ca, 1);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256], v[256];
    ck_assert_msg(kafka_conf_security(conf, err, sizeof err) == 0, "%s", err);
    get(conf, "security.protocol", v, sizeof v);
    ck_assert_str_eq(v, "ssl");
    get(conf, "ssl.ca.location", v, sizeof v);
    ck_assert_str_eq(v, ca);
    get(conf, "ssl.certificate.location", v, sizeof v);
    ck_assert_str_eq(v, ca);
    get(conf, "ssl.key.location", v, sizeof v);
    ck_assert_str_eq(v, ca);
    rd_kafka_conf_destroy(conf);
    unlink(ca);
    clear_env();
}
END_TEST

/* Everything the module logs (stderr) while it applies the settings and
 * refuses bad ones holds the user name but never the password. */
START_TEST(password_never_logged) {
    char path[] = "/tmp/millom-kafka-sec-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    dup2(fd, 2);
    sasl_env();
    setenv("KAFKA_BOOTSTRAP", "127.0.0.1:1", 1);
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = kafka_conf_common(conf, "t", err, sizeof err);
    rd_kafka_conf_destroy(conf);
    setenv("KAFKA_SASL_MECHANISM", "nope", 1);
    conf = rd_kafka_conf_new();
    int rc2 = kafka_conf_common(conf, "t", err, sizeof err);
    rd_kafka_conf_destroy(conf);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    unsetenv("KAFKA_BOOTSTRAP");
    clear_env();
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(rc2, -1);
    ck_assert_ptr_null(strstr(err, SECRET));
    char buf[65536];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    ck_assert_msg(strstr(buf, SECRET) == NULL, "the password was logged: %s", buf);
}
END_TEST

/* 0 when a producer made with the current environment gets the cluster's
 * metadata within 3 s, else librdkafka's error. */
static rd_kafka_resp_err_t producer_metadata(void) {
    char err[256];
    kafka_producer *p = kafka_producer_new("security-test", 0, err, sizeof err);
    ck_assert_msg(p != NULL, "kafka_producer_new: %s", err);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(kafka_producer_handle(p), 1, NULL, &md, 3000);
    if (md) rd_kafka_metadata_destroy(md);
    kafka_producer_free(p);
    return e;
}

START_TEST(sasl_producer_really_authenticates) {
    clear_env();
    test_mock_cluster *mock = test_mock_cluster_start(1);
    ck_assert_int_eq(test_mock_topic(mock, "millom.security.test", 1), 0);
    ck_assert_int_eq(producer_metadata(), RD_KAFKA_RESP_ERR_NO_ERROR);
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext", 1);
    setenv("KAFKA_SASL_MECHANISM", "PLAIN", 1);
    setenv("KAFKA_SASL_USERNAME", "u", 1);
    setenv("KAFKA_SASL_PASSWORD", SECRET, 1);
    rd_kafka_resp_err_t e = producer_metadata();
    ck_assert_msg(e != RD_KAFKA_RESP_ERR_NO_ERROR,
                  "a SASL producer got metadata from a broker without SASL");
    clear_env();
    test_mock_cluster_stop(mock);
    unsetenv("KAFKA_BOOTSTRAP");
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_kafka_security");
    TCase *tc = tcase_create("env");
    tcase_add_test(tc, default_is_plaintext);
    tcase_add_test(tc, sasl_scram_is_applied);
    tcase_add_test(tc, common_conf_carries_security);
    tcase_add_test(tc, password_from_file);
    tcase_add_test(tc, bad_values_are_refused);
    tcase_add_test(tc, settings_the_protocol_ignores_are_refused);
    tcase_add_test(tc, tls_files);
    tcase_add_test(tc, password_never_logged);
    tcase_add_test(tc, sasl_producer_really_authenticates);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
