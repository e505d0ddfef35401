/* The common life of a Kafka-consuming service: log setup, a producer,
 * one group consumer on its topics, an admin HTTP port (/healthz, /readyz,
 * /metrics), and an orderly stop on SIGINT/SIGTERM (stop consuming, commit,
 * flush the producer, close). A service supplies its topics and handler;
 * setup/teardown hooks let it open its SQLite store and other state. */
#ifndef MILLOM_RUNNER_H
#define MILLOM_RUNNER_H

#include "shared/plumbing/kafka.h"

typedef struct runner runner;

typedef struct {
    const char *name;           /* service name: log field, client and group id */
    const char *admin_port_env; /* e.g. "MILLOM_RESOLVER_PORT" */
    int admin_port;             /* default when the env variable is unset */
    const char *const *topics;  /* NULL-terminated */
    kafka_handler_fn handler;
    /* Optional: called after the producer exists and before consuming;
     * returns the handler's argument, or NULL to abort start-up. */
    void *(*setup)(runner *r);
    void (*teardown)(void *state);
    /* Optional consumer hooks (kafka_consumer_opts), called with the state. */
    void (*on_assign)(void *state, const rd_kafka_topic_partition_list_t *parts);
    void (*on_revoke)(void *state, const rd_kafka_topic_partition_list_t *parts);
    int (*before_commit)(void *state);
    /* Optional batches (kafka_consumer_opts.batch_begin): all three or none. */
    int (*batch_begin)(void *state);
    int (*batch_commit)(void *state);
    void (*batch_rollback)(void *state);
    /* Optional lanes (kafka_consumer_opts.lanes, lane_arg): how many, asked
     * once after setup, and each lane's handler argument. */
    int (*lanes)(void *state);
    void *(*lane_arg)(void *state, int lane);
    /* 1: nobody waits on the messages (kafka_consumer_opts.background). */
    int background;
    /* 1: what the service produces is on nobody's interactive request path
     * (kafka_producer_new's background: a longer linger, fewer requests). */
    int background_producer;
} runner_opts;

/* Runs the service until a stop signal. Returns the process exit code. */
int runner_main(const runner_opts *opts);

kafka_producer *runner_producer(runner *r);

#endif
