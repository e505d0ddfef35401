/* Consumer lag gauges: see kafka_lag.h.
 *
 * One process-wide list of the partitions ever sampled, each with its
 * gauge and the consumer handle that holds it now (NULL when none). It only
 * grows (by the partitions of the subscribed topics) and lives as long as
 * the process, like the metrics registry. */
#include "shared/plumbing/kafka_lag.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/metrics.h"

#define LAG_NAME "millom_kafka_consumer_lag"
#define LAG_HELP "Messages between a consumer's position and the partition's high watermark."
#define ASSIGNED_NAME "millom_kafka_assigned_partitions"
#define ASSIGNED_HELP "Partitions assigned to this process's consumers."

struct lag_entry {
    struct lag_entry *next;
    char *topic;
    int32_t partition;
    metric *lag;
    rd_kafka_t *owner; /* consumer holding the partition, NULL if none */
    int seen;          /* in the assignment of the current sample */
};

static pthread_mutex_t lag_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lag_entry *entries;
static metric *m_assigned;

static struct lag_entry *entry_for(const char *topic, int32_t partition) {
    for (struct lag_entry *e = entries; e; e = e->next)
        if (e->partition == partition && strcmp(e->topic, topic) == 0) return e;
    struct lag_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->topic = strdup(topic);
    if (!e->topic) {
        free(e);
        return NULL;
    }
    char labels[400];
    snprintf(labels, sizeof labels, "topic=\"%s\",partition=\"%d\"", topic, (int)partition);
    e->partition = partition;
    e->lag = metric_gauge(LAG_NAME, LAG_HELP, labels);
    e->next = entries;
    entries = e;
    return e;
}

void kafka_lag_sample(rd_kafka_t *rk) {
    if (!rk) return;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) {
        /* Unknown now: keep the last values rather than report a false 0. */
        if (parts) rd_kafka_topic_partition_list_destroy(parts);
        return;
    }
    /* Fills each element's offset with the consumer's position: the offset
     * after the last message handed to the application, or
     * RD_KAFKA_OFFSET_INVALID if none since the assignment. */
    if (parts->cnt > 0 && rd_kafka_position(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(parts);
        return;
    }

    pthread_mutex_lock(&lag_mu);
    if (!m_assigned) m_assigned = metric_gauge(ASSIGNED_NAME, ASSIGNED_HELP, NULL);
    for (struct lag_entry *e = entries; e; e = e->next)
        if (e->owner == rk) e->seen = 0;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct lag_entry *e = entry_for(tp->topic, tp->partition);
        if (!e) continue;
        e->owner = rk;
        e->seen = 1;
        int64_t lo = RD_KAFKA_OFFSET_INVALID, hi = RD_KAFKA_OFFSET_INVALID;
        /* The cached watermarks of the last fetch: no request to the broker. */
        if (rd_kafka_get_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0)
            continue; /* not fetched yet: keep the last value (0 when new) */
        long lag = 0;
        if (tp->offset >= 0 && hi > tp->offset) lag = (long)(hi - tp->offset);
        metric_set(e->lag, lag);
    }
    long assigned = 0;
    for (struct lag_entry *e = entries; e; e = e->next) {
        if (e->owner == rk && !e->seen) {
            /* Revoked since the last sample: another member has it now. */
            e->owner = NULL;
            metric_set(e->lag, 0);
        }
        if (e->owner) assigned++;
    }
    metric_set(m_assigned, assigned);
    pthread_mutex_unlock(&lag_mu);
    rd_kafka_topic_partition_list_destroy(parts);
}
