/* Consumer lag as Prometheus gauges, from what librdkafka already knows:
 * no broker round trip.
 *
 *   millom_kafka_consumer_lag{topic="...",partition="N"}
 *       high watermark - position: messages behind on an assigned
 *       partition; 0 for a partition this process no longer holds, and 0
 *       until the partition's first message since its assignment was read
 *       (the position is unknown before that).
 *   millom_kafka_assigned_partitions
 *       partitions currently assigned, over every consumer of the process.
 *
 * The high watermark is the one the last fetch response carried, so it is
 * as fresh as the consumer's fetching (milliseconds while it runs). */
#ifndef MILLOM_KAFKA_LAG_H
#define MILLOM_KAFKA_LAG_H

#include <librdkafka/rdkafka.h>

/* Samples one consumer handle's assignment and updates the gauges. Cheap
 * (local state only) but meant for at most once a second per consumer.
 * Thread-safe; several consumers of one process each call it with their
 * own handle. */
void kafka_lag_sample(rd_kafka_t *rk);

#endif
