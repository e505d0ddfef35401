/* `tail`: reads a settlement topic and prints each message as a row.
 * A consumer group of its own (random id, nothing committed), so it never
 * takes partitions or offsets away from anyone; --from-beginning starts
 * at the earliest retained message, otherwise only new ones are shown. */
#include "millomctl.h"
#include "shared/plumbing/topics.h"

#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/crypto.h"
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

static void print_one(const tail_opts *o, const rd_kafka_message_t *m) {
    if (strcmp(o->topic, TOPIC_SETTLEMENT_RECORDS) == 0) {
        Millom__V1__SettlementRecord *r =
            millom__v1__settlement_record__unpack(NULL, m->len, m->payload);
        if (!r) goto bad;
        print_record(stdout, o->format, r);
        millom__v1__settlement_record__free_unpacked(r, NULL);
    } else {
        Millom__V1__SettlementReport *r =
            millom__v1__settlement_report__unpack(NULL, m->len, m->payload);
        if (!r) goto bad;
        print_report(stdout, o->format, r);
        millom__v1__settlement_report__free_unpacked(r, NULL);
    }
    fflush(stdout);
    return;
bad:
    fprintf(stderr, "millomctl: skipped an undecodable message at %s [%d] @%lld\n", o->topic,
            (int)m->partition, (long long)m->offset);
}

int tail_run(const tail_opts *o) {
    char err[512], group[64], uuid[37];
    crypto_uuid(uuid);
    snprintf(group, sizeof group, "millomctl-%s", uuid);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (kafka_conf_common(conf, "millomctl", err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", o->from_beginning ? "earliest" : "latest", err,
                          sizeof err)) {
        fprintf(stderr, "millomctl: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "millomctl: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, o->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
        fprintf(stderr, "millomctl: subscribe %s: %s\n", o->topic, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return 1;
    }
    if (strcmp(o->topic, TOPIC_SETTLEMENT_RECORDS) == 0)
        print_record_header(stdout, o->format);
    else
        print_report_header(stdout, o->format);
    long seen = 0;
    int64_t last = mono_ms();
    while (!service_stopping() && (o->max <= 0 || seen < o->max)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            /* Idle time counts from the partition assignment on: joining
             * the group can take seconds and is not "no messages". */
            rd_kafka_topic_partition_list_t *a = NULL;
            if (rd_kafka_assignment(rk, &a) == 0 && a && a->cnt == 0) last = mono_ms();
            if (a) rd_kafka_topic_partition_list_destroy(a);
            if (o->idle_exit_ms > 0 && mono_ms() - last >= o->idle_exit_ms) break;
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "millomctl: %s\n", rd_kafka_message_errstr(m));
        } else {
            print_one(o, m);
            seen++;
            last = mono_ms();
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
