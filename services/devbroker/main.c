/* devbroker: a Kafka-protocol broker for one machine, on librdkafka's mock
 * cluster (in memory, real wire protocol, consumer groups, idempotent
 * producers). Creates Millom's topics, writes its bootstrap address to
 * MILLOM_BROKER_FILE (default var/broker.bootstrap) and runs until SIGINT
 * or SIGTERM.
 *
 * Environment:
 *   MILLOM_BROKER_FILE        where to write the bootstrap address
 *   MILLOM_BROKER_COUNT       brokers in the cluster (default 1)
 *   MILLOM_TOPIC_PARTITIONS   partitions per topic (default 4)
 *   MILLOM_REPLY_PARTITIONS   partitions of millom.replies (default 8, min 8)
 *
 * The mock cluster of librdkafka 2.0.2 has no API to choose its listening
 * port: each broker binds 127.0.0.1 on an ephemeral port, which is why the
 * address goes through a file. Data lives in memory only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devbroker.h"
#include "shared/log.h"
#include "shared/service.h"

static long env_int(const char *name, long def, long min) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < min) {
        log_warn("ignoring %s=%s (want an integer >= %ld)", name, v, min);
        return def;
    }
    return n;
}

int main(void) {
    service_init("devbroker");

    const char *path = getenv("MILLOM_BROKER_FILE");
    if (!path || !*path) path = DEVBROKER_DEFAULT_FILE;
    int brokers = (int)env_int("MILLOM_BROKER_COUNT", 1, 1);
    int partitions = (int)env_int("MILLOM_TOPIC_PARTITIONS", 4, 1);
    int reply_partitions = (int)env_int("MILLOM_REPLY_PARTITIONS", 8, 8);
    if (getenv("MILLOM_BROKER_PORT"))
        log_warn("MILLOM_BROKER_PORT is not supported: librdkafka 2.0.2's mock cluster "
                 "always listens on an ephemeral port; read %s instead", path);

    char err[512];
    devbroker *b = devbroker_new(brokers, partitions, reply_partitions, err, sizeof err);
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
             brokers, bootstrap, path, partitions, "millom.replies", reply_partitions);

    service_wait_for_stop();

    log_info("devbroker: stopping");
    devbroker_remove_file(path, bootstrap);
    devbroker_free(b);
    return 0;
}
