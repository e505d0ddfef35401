/* devbroker's mock cluster: Millom's topics on librdkafka's in-memory
 * Kafka-protocol cluster, and the bootstrap file that points to it. */
#ifndef MILLOM_DEVBROKER_H
#define MILLOM_DEVBROKER_H

#include <stddef.h>

#define DEVBROKER_DEFAULT_FILE "var/broker.bootstrap"

typedef struct devbroker devbroker;

/* Starts `brokers` mock brokers on 127.0.0.1 (ephemeral ports) and creates
 * every millom.* topic (and its .dlq) with `partitions` partitions, and
 * millom.replies with `reply_partitions`. */
devbroker *devbroker_new(int brokers, int partitions, int reply_partitions, char *err,
                         size_t errlen);
/* "127.0.0.1:port[,...]", valid until devbroker_free. */
const char *devbroker_bootstraps(const devbroker *b);
void devbroker_free(devbroker *b);

/* Writes `bootstrap` and a newline to `path` atomically (temp file and
 * rename), creating missing directories. */
int devbroker_write_file(const char *path, const char *bootstrap, char *err, size_t errlen);

/* Fixed ports (fixed_port.c): the next `n` loopback listeners the mock
 * cluster opens (one per broker, in order) get these ports instead of
 * ephemeral ones, when they are free. Call before devbroker_new. */
void devbroker_plan_ports(const int *ports, size_t n);
/* TCP_NODELAY on every connection the mock cluster accepts from now on
 * (accepted.c): its responses are sent at once, as a broker's are. */
void devbroker_disable_nagle(void);

/* Fetches answered as soon as records arrive (fetch_wait.c), on every
 * connection the mock cluster accepts from now on, as a Kafka broker
 * answers them: without it the mock holds a fetch that found nothing for
 * the fetch's whole wait. */
void devbroker_answer_fetches_early(void);
/* Logs (info) how the fetches were answered: at once, or held and then
 * answered when records arrived, at their wait's end or before the next
 * answer on their connection. */
void devbroker_fetch_wait_log(void);
/* Called by accept() (accepted.c) for each new connection once
 * devbroker_answer_fetches_early() was called. */
void devbroker_fetch_wait_track(int fd);

/* The ports named by a bootstrap file an earlier devbroker wrote
 * ("127.0.0.1:p1,127.0.0.1:p2..."), at most `max`; 0 when none. */
size_t devbroker_ports_from_file(const char *path, int *ports, size_t max);

#endif
