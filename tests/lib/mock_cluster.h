/* An in-process librdkafka mock cluster for unit tests: one producer
 * handle owning the mock brokers, KAFKA_BOOTSTRAP pointing at them. Each
 * test decides the lifetime (once per process, or per test). */
#ifndef TESTS_MOCK_CLUSTER_H
#define TESTS_MOCK_CLUSTER_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

typedef struct {
    rd_kafka_t *rk;                /* the handle the cluster lives in */
    rd_kafka_mock_cluster_t *mock; /* for rd_kafka_mock_* calls (rtt, errors) */
} test_mock_cluster;

/* Starts a cluster of `brokers` brokers (log_level 3; librdkafka's "mock"
 * debug when TEST_MOCK_DEBUG is set) and sets KAFKA_BOOTSTRAP to it. Fails
 * the running check test when librdkafka refuses; never returns NULL. */
test_mock_cluster *test_mock_cluster_start(int brokers);
/* Creates a topic (replication factor 1); 0 or the librdkafka error. */
int test_mock_topic(test_mock_cluster *c, const char *topic, int partitions);
/* Destroys the cluster and its handle; NULL is allowed. */
void test_mock_cluster_stop(test_mock_cluster *c);

#endif
