/* shared/plumbing/kafka.c's broker health against an in-process librdkafka mock
 * cluster: a producer whose only broker goes down makes kafka_healthy() 0
 * (MILLOM_KAFKA_DOWN_READY_S=0 here, so at once) and the gauge
 * millom_kafka_broker_up 0; the broker back up makes both 1 again. A fatal
 * error (rd_kafka_test_fatal_error, as an idempotent producer's sequence
 * going wrong would raise) makes kafka_healthy() 0 for good, is recorded
 * by kafka_fatal_error_seen() and asks the process to stop. The health is
 * process-wide and a fatal error permanent, so the checks run in this
 * order in one test. Works with CK_FORK=no. Waits are bounded polls.
 * Before it: every producer kafka_producer_new makes (interactive and
 * background) writes with acks=all and idempotence, which the production
 * Kafka's min.insync.replicas=2 relies on (README "Kafka in production"). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "shared/plumbing/kafka.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"
#include "tests/lib/mock_cluster.h"

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The value of the unlabelled gauge millom_kafka_broker_up, or -1. */
static long broker_up_gauge(void) {
    char *text = metrics_render();
    ck_assert_ptr_nonnull(text);
    const char *needle = "\nmillom_kafka_broker_up ";
    char *p = strstr(text, needle);
    long v = p ? strtol(p + strlen(needle), NULL, 10) : -1;
    free(text);
    return v;
}

/* Polls (up to ~30 s) until kafka_healthy() equals want. */
static int wait_healthy(int want) {
    for (int i = 0; i < 300; i++) {
        if (kafka_healthy() == want) return 1;
        sleep_ms(100);
    }
    return 0;
}

/* A property of the configuration librdkafka runs the producer with. */
static void producer_conf(kafka_producer *p, const char *name, char *out, size_t outlen) {
    size_t n = outlen;
    out[0] = '\0';
    ck_assert_int_eq(rd_kafka_conf_get(rd_kafka_conf(kafka_producer_handle(p)), name, out, &n),
                     RD_KAFKA_CONF_OK);
}

START_TEST(every_producer_writes_with_acks_all) {
    test_mock_cluster *mock = test_mock_cluster_start(1);
    for (int background = 0; background <= 1; background++) {
        char err[256], value[64];
        kafka_producer *p = kafka_producer_new("acks-test", background, err, sizeof err);
        ck_assert_msg(p != NULL, "%s", err);
        producer_conf(p, "acks", value, sizeof value);
        /* librdkafka reports "all" as -1 */
        ck_assert_msg(strcmp(value, "-1") == 0 || strcmp(value, "all") == 0,
                      "background %d: acks=%s", background, value);
        producer_conf(p, "enable.idempotence", value, sizeof value);
        ck_assert_str_eq(value, "true");
        kafka_producer_free(p);
    }
    test_mock_cluster_stop(mock);
}
END_TEST

START_TEST(outage_then_recovery_then_fatal_error) {
    setenv("MILLOM_KAFKA_DOWN_READY_S", "0", 1);
    test_mock_cluster *mock = test_mock_cluster_start(1);
    ck_assert_int_eq(test_mock_topic(mock, "faults", 1), 0);
    char err[256];
    kafka_producer *p = kafka_producer_new("faults-test", 0, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_int_eq(kafka_produce(p, "faults", 0, "k", 1, "v", 1, NULL, 0), 0);
    ck_assert_int_eq(kafka_producer_flush(p, 10000), 0);
    ck_assert_int_eq(kafka_healthy(), 1);
    ck_assert_int_eq(broker_up_gauge(), 1);

    /* The only broker goes away: not healthy, gauge 0. */
    ck_assert_int_eq(rd_kafka_mock_broker_set_down(mock->mock, 1), 0);
    ck_assert_msg(wait_healthy(0), "still healthy with the broker down");
    ck_assert_int_eq(broker_up_gauge(), 0);
    ck_assert_int_eq(kafka_fatal_error_seen(), 0);

    /* Back up: the producer's probe ends the outage. */
    ck_assert_int_eq(rd_kafka_mock_broker_set_up(mock->mock, 1), 0);
    ck_assert_msg(wait_healthy(1), "not healthy after the broker came back");
    ck_assert_int_eq(broker_up_gauge(), 1);
    ck_assert(!service_stopping());

    /* A fatal error: unhealthy for good, recorded, and a stop requested. */
    ck_assert_int_eq(rd_kafka_test_fatal_error(kafka_producer_handle(p),
                                               RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "test: sequence out of order"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_msg(wait_healthy(0), "still healthy after a fatal error");
    ck_assert_int_eq(kafka_fatal_error_seen(), 1);
    for (int i = 0; i < 100 && !service_stopping(); i++) sleep_ms(50); /* set just after */
    ck_assert(service_stopping());
    ck_assert_int_eq(broker_up_gauge(), 0);
    /* A fatal producer refuses new messages. */
    ck_assert_int_ne(kafka_produce(p, "faults", 0, "k", 1, "v", 1, NULL, 0), 0);

    kafka_producer_free(p);
    test_mock_cluster_stop(mock);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_kafka_faults");
    TCase *tc = tcase_create("health");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_producer_writes_with_acks_all);
    tcase_add_test(tc, outage_then_recovery_then_fatal_error);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
