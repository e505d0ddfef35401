/* purchase-executor: owns purchases. It takes purchase commands from
 * api-edge (idempotent per service provider and transid), activates them
 * at the operator's backend (POST /activate), applies the operators'
 * asynchronous callbacks, answers the management look-ups, and publishes a
 * PurchaseEvent after every state change through the outbox. The state
 * machine is described in purchase.h.
 *
 * The service in layers, each calling only the ones below it:
 *   main.c                 wiring (runner)
 *   executor.{h,c}         life cycle (open/close, settings, consumer
 *                          hooks) and the dispatch by topic
 *   handlers.h             purchase_commands.c, callbacks.c, lookups.c,
 *                          retry_worker.c
 *   purchase_flow.{h,c}    reply, one activation and its outcome, after a
 *                          state change (relay, metrics, invalidation)
 *   activation_client.h    the operator's backend (POST /activate, GET /offers)
 *   purchase_outcome.h     pure decisions: causes, answers, next rows
 *   purchase.h             the record and its store (purchase_store.c)
 * executor_config.h holds the settings every layer may read. */
#ifndef PURCHASE_EXECUTOR_EXECUTOR_H
#define PURCHASE_EXECUTOR_EXECUTOR_H

#include <stddef.h>

#include "executor_config.h"
#include "handlers.h"
#include "purchase_flow.h"
#include "shared/patterns/changelog.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/http_loop.h"
#include "shared/plumbing/kafka.h"

typedef struct executor {
    /* What the handlers share (cfg, tenants, read connections, http,
     * relay, metrics); with one lane, the consumer thread's. */
    purchase_flow flow;
    /* MILLOM_EXECUTOR_LANES > 1: each lane's copy of flow, with its own
     * http client on `calls`. */
    purchase_flow *lanes;
    int n_lanes;
    /* The operator calls of the lanes (and of flow.http) run on this one
     * loop's thread while the lane waits: the lanes share its connections
     * and curl's state, instead of an easy handle, a connection cache and
     * curl's stack depth each. */
    http_loop *calls;
    /* The consumer thread's own connection, for its hooks (assignment,
     * revocation, before a commit), which wait on the follower and on
     * deliveries: no connection of the lanes' pool is held across that. */
    sqlite3 *consumer_db;
    /* Atomic: the retry thread's first round may call wake_retry (through
     * the flow's hook) before executor_new has stored the pointer; until
     * then it reads NULL, a no-op (the thread is awake anyway). */
    _Atomic(retry_worker *) retry;
    changelog_follower *follower; /* other instances' changes, restores */
} executor;

/* Reads the configuration from the environment. */
void executor_config_load(executor_config *cfg);
/* Opens the store at db_path (migrating it), starts the outbox relay and
 * the retry thread (which resumes every activating purchase at once).
 * Takes ownership of t. NULL with a message on error. */
executor *executor_new(const executor_config *cfg, tenants *t, kafka_producer *producer,
                       const char *db_path, char *err, size_t errlen);
/* Stops the retry thread, then the relay; closes; frees. */
void executor_free(executor *ex);

/* Consumer hooks (see kafka_consumer_opts): restore and own newly
 * assigned partitions; hand revoked ones over (stop retrying them, deliver
 * their changelog records); commit offsets only after the changelog
 * records of the handled messages were delivered. */
void executor_on_assign(void *arg, const rd_kafka_topic_partition_list_t *parts);
void executor_on_revoke(void *arg, const rd_kafka_topic_partition_list_t *parts);
int executor_before_commit(void *arg);

/* The Kafka handler: dispatches by topic. arg is a lane's flow
 * (executor_lane_arg). */
kafka_verdict executor_handle(void *arg, const rd_kafka_message_t *msg, char *err, size_t errlen);
/* The consumer's lanes (kafka_consumer_opts.lanes, lane_arg): how many
 * (MILLOM_EXECUTOR_LANES), and lane i's flow (the executor's own with one
 * lane). */
int executor_lanes(void *arg);
void *executor_lane_arg(void *arg, int lane);

#endif
