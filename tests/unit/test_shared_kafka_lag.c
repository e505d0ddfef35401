/* shared/plumbing/kafka_lag.c against an in-process librdkafka mock cluster: the
 * lag gauge is the high watermark minus the consumer's position, per
 * assigned partition, read from the /metrics text; revoked partitions read
 * 0; kafka_consumer_run samples it by itself; produce latency is observed
 * for every acknowledged message. Works with CK_FORK=no. */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "shared/plumbing/kafka.h"
#include "shared/plumbing/kafka_lag.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"
#include "tests/lib/mock_cluster.h"

static test_mock_cluster *mock;
static kafka_producer *producer;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The value of one series (name plus braces) in the exposition, or -1. */
static long series(const char *name_and_labels) {
    char *text = metrics_render();
    ck_assert_ptr_nonnull(text);
    char needle[512];
    snprintf(needle, sizeof needle, "\n%s ", name_and_labels);
    char *p = strstr(text, needle);
    long v = p ? strtol(p + strlen(needle), NULL, 10) : -1;
    free(text);
    return v;
}

static long lag_of(const char *topic, int partition) {
    char s[256];
    snprintf(s, sizeof s, "millom_kafka_consumer_lag{topic=\"%s\",partition=\"%d\"}", topic,
             partition);
    return series(s);
}

static long assigned(void) { return series("millom_kafka_assigned_partitions"); }

static void setup(void) {
    setenv("MILLOM_LOG_LEVEL", getenv("TEST_LOG_LEVEL") ? getenv("TEST_LOG_LEVEL") : "error", 1);
    log_init("test_shared_kafka_lag");
    setenv("MILLOM_KAFKA_SESSION_TIMEOUT_MS", "4000", 1);
    char err[512];
    if (!mock) mock = test_mock_cluster_start(1);
    producer = kafka_producer_new("test-lag-producer", 0, err, sizeof err);
    ck_assert_msg(producer != NULL, "producer: %s", err);
}

static void teardown(void) {
    kafka_producer_free(producer);
    producer = NULL;
}

static void produce_n(const char *topic, int32_t partition, int n) {
    char v[32];
    for (int i = 0; i < n; i++) {
        snprintf(v, sizeof v, "m%d", i);
        ck_assert_int_eq(kafka_produce(producer, topic, partition, "k", 1, v, strlen(v), NULL, 0),
                         0);
    }
    ck_assert_int_eq(kafka_producer_flush(producer, 5000), 0);
}

/* Polls until `want` messages came back (or 15 s). */
static int poll_n(rd_kafka_t *rk, int want) {
    int got = 0;
    int64_t until = mono_ms() + 15000;
    while (got < want && mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err) got++;
        rd_kafka_message_destroy(m);
    }
    return got;
}

/* Samples until the partition's gauge reads `want` (or timeout_ms). */
static long sample_until(rd_kafka_t *rk, const char *topic, int partition, long want,
                         long timeout_ms) {
    int64_t until = mono_ms() + timeout_ms;
    long v;
    for (;;) {
        kafka_lag_sample(rk);
        v = lag_of(topic, partition);
        if (v == want || mono_ms() >= until) return v;
        sleep_ms(20);
    }
}

/* A plain group consumer reads 3 of 10 messages on partition 0: lag 7
 * there, 0 on the empty partition 1, 2 partitions assigned; 4 more read:
 * lag 3; unsubscribed: both gauges 0. */
START_TEST(test_lag_follows_position) {
    enum { N = 10 };
    const char *topic = "lag.test.plain";
    ck_assert_int_eq(test_mock_topic(mock, topic, 2), 0);

    long produce_before = metric_value(metric_histogram("millom_kafka_produce_seconds", "", NULL));
    produce_n(topic, 0, N);
    /* Every acknowledged message was timed (delivery reports run on the
     * producer's thread: wait for the last ones). */
    int64_t until = mono_ms() + 5000;
    while (metric_value(metric_histogram("millom_kafka_produce_seconds", "", NULL)) <
               produce_before + N &&
           mono_ms() < until)
        sleep_ms(5);
    ck_assert_int_eq(metric_value(metric_histogram("millom_kafka_produce_seconds", "", NULL)),
                     produce_before + N);
    char *text = metrics_render();
    ck_assert_ptr_nonnull(strstr(text, "# TYPE millom_kafka_produce_seconds histogram"));
    ck_assert_ptr_nonnull(strstr(text, "millom_kafka_produce_seconds_bucket{le=\"+Inf\"}"));
    free(text);

    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_msg(kafka_conf_common(conf, "lag-plain", err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "group.id", "lag-plain", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "session.timeout.ms", "4000", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_msg(rk != NULL, "%s", err);
    rd_kafka_poll_set_consumer(rk);

    /* Nothing assigned yet: no partitions, no lag series for this topic. */
    kafka_lag_sample(rk);
    ck_assert_int_eq(assigned(), 0);
    ck_assert_int_eq(lag_of(topic, 0), -1);

    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    ck_assert_int_eq(rd_kafka_subscribe(rk, subs), 0);
    rd_kafka_topic_partition_list_destroy(subs);

    ck_assert_int_eq(poll_n(rk, 3), 3);
    ck_assert_int_eq(sample_until(rk, topic, 0, N - 3, 5000), N - 3);
    ck_assert_int_eq(lag_of(topic, 1), 0);
    ck_assert_int_eq(assigned(), 2);

    ck_assert_int_eq(poll_n(rk, 4), 4);
    ck_assert_int_eq(sample_until(rk, topic, 0, N - 7, 5000), N - 7);
    ck_assert_int_eq(assigned(), 2);

    /* Revoked: the gauges of partitions no longer held read 0. */
    ck_assert_int_eq(rd_kafka_unsubscribe(rk), 0);
    until = mono_ms() + 10000;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        if (m) rd_kafka_message_destroy(m);
        rd_kafka_topic_partition_list_t *a = NULL;
        ck_assert_int_eq(rd_kafka_assignment(rk, &a), 0);
        int cnt = a->cnt;
        rd_kafka_topic_partition_list_destroy(a);
        if (cnt == 0) break;
        ck_assert_msg(mono_ms() < until, "still assigned after unsubscribe");
    }
    kafka_lag_sample(rk);
    ck_assert_int_eq(lag_of(topic, 0), 0);
    ck_assert_int_eq(lag_of(topic, 1), 0);
    ck_assert_int_eq(assigned(), 0);

    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}
END_TEST

static kafka_verdict stuck_at_m3(void *arg, const rd_kafka_message_t *m, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    atomic_int *handled = arg;
    if (m->len == 2 && memcmp(m->payload, "m3", 2) == 0) return KAFKA_RETRY;
    atomic_fetch_add(handled, 1);
    return KAFKA_DONE;
}

/* kafka_consumer_run samples by itself: a consumer stuck retrying the 4th
 * of 10 messages shows a lag of 6 or 7 (position before or after it). */
START_TEST(test_consumer_run_samples) {
    enum { N = 10 };
    const char *topic = "lag.test.run";
    ck_assert_int_eq(test_mock_topic(mock, topic, 1), 0);
    ck_assert_int_eq(test_mock_topic(mock, "lag.test.run.dlq", 1), 0);
    produce_n(topic, 0, N);

    atomic_int handled = 0;
    const char *topics[] = {topic, NULL};
    kafka_consumer_opts o = {
        .group_id = "lag-run",
        .client_id = "lag-run",
        .topics = topics,
        .handler = stuck_at_m3,
        .handler_arg = &handled,
        .dlq = producer,
        .poll_timeout_ms = 20,
    };
    char err[512];
    kafka_consumer *c = kafka_consumer_new(&o, err, sizeof err);
    ck_assert_msg(c != NULL, "consumer: %s", err);
    ck_assert_int_eq(kafka_consumer_start(c), 0);

    long lag = -1;
    int64_t until = mono_ms() + 20000;
    while (mono_ms() < until) {
        lag = lag_of(topic, 0);
        if (atomic_load(&handled) == 3 && (lag == N - 3 || lag == N - 4)) break;
        sleep_ms(50);
    }
    ck_assert_int_eq(atomic_load(&handled), 3);
    ck_assert_msg(lag == N - 3 || lag == N - 4, "lag %ld, want %d or %d", lag, N - 3, N - 4);
    ck_assert_int_ge(assigned(), 1);
    kafka_consumer_free(c);
}
END_TEST

static void destroy_cluster(void) {
    test_mock_cluster_stop(mock);
    mock = NULL;
}

int main(void) {
    Suite *s = suite_create("kafka_lag");
    TCase *tc = tcase_create("mock");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lag_follows_position);
    tcase_add_test(tc, test_consumer_run_samples);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    destroy_cluster();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
