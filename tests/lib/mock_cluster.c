/* See mock_cluster.h. */
#include "mock_cluster.h"

#include <check.h>
#include <stdlib.h>

test_mock_cluster *test_mock_cluster_start(int brokers) {
    char err[512];
    test_mock_cluster *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    if (getenv("TEST_MOCK_DEBUG")) rd_kafka_conf_set(conf, "debug", "mock", NULL, 0);
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ck_assert_msg(c->rk != NULL, "rd_kafka_new: %s", err);
    c->mock = rd_kafka_mock_cluster_new(c->rk, brokers);
    ck_assert_ptr_nonnull(c->mock);
    setenv("KAFKA_BOOTSTRAP", rd_kafka_mock_cluster_bootstraps(c->mock), 1);
    /* This mock, unlike devbroker (services/devbroker/fetch_wait.c), holds
     * a fetch that found nothing for the fetch's whole wait even when
     * records arrive: the clients of a test on it wait 2 ms, not 100. */
    setenv("MILLOM_KAFKA_FETCH_WAIT_MS", "2", 0);
    return c;
}

int test_mock_topic(test_mock_cluster *c, const char *topic, int partitions) {
    return (int)rd_kafka_mock_topic_create(c->mock, topic, partitions, 1);
}

void test_mock_cluster_stop(test_mock_cluster *c) {
    if (!c) return;
    rd_kafka_mock_cluster_destroy(c->mock);
    rd_kafka_destroy(c->rk);
    free(c);
}
