/* devbroker: a Kafka-protocol broker for one machine, on librdkafka's mock
 * cluster (in memory, real wire protocol, consumer groups, idempotent
 * producers). Clients of other ecosystems work against it too: kafkajs
 * 2.2.4's producer and consumer group (ApiVersions, Metadata, Produce,
 * Fetch, ListOffsets, FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
 * OffsetCommit, OffsetFetch at the versions it asks for) in
 * tests/integration/test_kafkajs_interop.c. Creates Millom's topics, writes its bootstrap address to
 * MILLOM_BROKER_FILE (default var/broker.bootstrap) and runs until SIGINT
 * or SIGTERM.
 *
 * Environment:
 *   MILLOM_BROKER_FILE        where to write the bootstrap address
 *   MILLOM_BROKER_COUNT       brokers in the cluster (default 1)
 *   MILLOM_TOPIC_PARTITIONS   partitions per topic (default 4)
 *   MILLOM_REPLY_PARTITIONS   partitions of millom.replies (default 8, min 8)
 *
 *   MILLOM_BROKER_EARLY_FETCH_ANSWERS  1 (default): a fetch that found
 *                             no records is answered as soon as records
 *                             arrive, as Kafka does (fetch_wait.c); 0: at
 *                             the end of its wait, the mock cluster's way
 *   MILLOM_BROKER_PORT        port of the first broker (the others take the
 *                             next ones); unset: the ports named by an
 *                             existing MILLOM_BROKER_FILE, else ephemeral
 *
 * Restarts: services read the bootstrap file once, at start, and keep
 * reconnecting to that address. So a devbroker started again (after a
 * crash or a stop) listens on the same port(s): MILLOM_BROKER_PORT, or
 * those its predecessor wrote to the file, which is therefore left in place
 * on stop. Only when that port is taken does it fall back to a new one.
 * Data lives in memory only: a restarted devbroker has empty topics and no
 * committed offsets (the services start the new topics from the beginning;
 * see README "Restarting devbroker"). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devbroker.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

int main(void) {
    service_init("devbroker");

    /* The settings, once, through shared/plumbing/settings.h: a bad value exits 1
     * with a message naming the variable and its range. */
    settings_reader s = SETTINGS_INIT;
    const char *path = settings_str(&s, "MILLOM_BROKER_FILE", DEVBROKER_DEFAULT_FILE);
    int brokers = (int)settings_long(&s, "MILLOM_BROKER_COUNT", 1, 1, 32);
    int partitions = (int)settings_long(&s, "MILLOM_TOPIC_PARTITIONS", 4, 1, 1024);
    int reply_partitions = (int)settings_long(&s, "MILLOM_REPLY_PARTITIONS", 8, 8, 1024);
    long first_port = settings_long(&s, "MILLOM_BROKER_PORT", 0, 0, 65535);
    bool early_fetches = settings_bool(&s, "MILLOM_BROKER_EARLY_FETCH_ANSWERS", true);
    settings_exit_on_error(&s);
    int ports[32];
    size_t n_ports = 0;
    if (first_port > 0 && first_port + brokers - 1 <= 65535) {
        for (int i = 0; i < brokers && i < 32; i++) ports[n_ports++] = (int)first_port + i;
    } else {
        n_ports = devbroker_ports_from_file(path, ports, 32);
        if (n_ports) log_info("devbroker: reusing the port(s) named by %s", path);
    }
    devbroker_plan_ports(ports, n_ports);
    devbroker_disable_nagle();
    if (early_fetches) devbroker_answer_fetches_early();

    char err[512];
    devbroker *b = devbroker_new(brokers, partitions, reply_partitions, err, sizeof err);
    devbroker_plan_ports(NULL, 0); /* later binds (none expected) are left alone */
    if (!b) {
        log_error("devbroker: %s", err);
        return 1;
    }
    const char *bootstrap = devbroker_bootstraps(b);
    if (devbroker_write_file(path, bootstrap, err, sizeof err)) {
        log_error("devbroker: %s", err);
        devbroker_free(b);
        return 1;
    }
    printf("%s\n", bootstrap);
    fflush(stdout);
    log_info("devbroker: %d broker(s) at %s (written to %s); topics have %d partitions, "
             "%s has %d",
             brokers, bootstrap, path, partitions, TOPIC_REPLIES, reply_partitions);

    service_wait_for_stop();

    /* The file stays: it names the port(s) the next devbroker reuses, so
     * services still running reconnect to it. */
    log_info("devbroker: stopping");
    if (early_fetches) devbroker_fetch_wait_log();
    devbroker_free(b);
    return 0;
}
