/* `events generate`: synthetic SubscriberEvents on millom.subscriber.events,
 * the way an MNO publishes them straight to Kafka (no meta, no reply; key =
 * MSISDN). For the notification benchmark and demos; never point it at a
 * production cluster.
 *
 * Every event gets a distinct transactionId (<prefix>-<i>), the produce time
 * in occurred_at_ms and override = true (the bench measures throughput, not
 * the notification quota). Subscribers rotate over the --msisdn list. With
 * --times FILE, one line "<transactionId>\t<produce ms>" per event is
 * written there, so a consumer can measure end-to-end delay even where the
 * delivered body carries no timestamp. */
#include "millomctl.h"
#include "shared/plumbing/topics.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/plumbing/kafka.h"
#include "shared/plumbing/service.h"
#include "millom/v1/subscriber.pb-c.h"

int events_run(const events_opts *o) {
    char err[512];
    FILE *times = NULL;
    if (o->times_file && !(times = fopen(o->times_file, "w"))) {
        perror(o->times_file);
        return 1;
    }
    kafka_producer *p = kafka_producer_new("millomctl", 0, err, sizeof err);
    if (!p) {
        fprintf(stderr, "millomctl: %s\n", err);
        if (times) fclose(times);
        return 1;
    }
    char prefix[64];
    if (o->prefix)
        snprintf(prefix, sizeof prefix, "%s", o->prefix);
    else
        snprintf(prefix, sizeof prefix, "ev-%lld", (long long)now_ms());
    int rc = 0;
    for (long i = 0; i < o->count && !service_stopping(); i++) {
        char tid[96];
        snprintf(tid, sizeof tid, "%s-%ld", prefix, i);
        const char *msisdn = o->msisdns[i % (long)o->n_msisdns];
        Millom__V1__SubscriberRef s = MILLOM__V1__SUBSCRIBER_REF__INIT;
        s.operator_ = (char *)o->op;
        s.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
        s.subscriber_id = (char *)msisdn;
        Millom__V1__SubscriberEvent ev = MILLOM__V1__SUBSCRIBER_EVENT__INIT;
        ev.operator_ = (char *)o->op;
        ev.subscriber = &s;
        ev.type = (char *)o->type;
        ev.transaction_id = tid;
        ev.override = 1;
        uint8_t buf[512];
        size_t len = millom__v1__subscriber_event__get_packed_size(&ev);
        if (len > sizeof buf) {
            fprintf(stderr, "millomctl: event too large\n");
            rc = 1;
            break;
        }
        int64_t at = now_ms();
        ev.occurred_at_ms = at;
        len = millom__v1__subscriber_event__pack(&ev, buf);
        /* A full local queue is back-pressure: wait for deliveries. */
        while (kafka_produce(p, TOPIC_SUBSCRIBER_EVENTS, -1, msisdn, strlen(msisdn), buf, len, NULL,
                             0) != 0) {
            if (service_stopping()) break;
            usleep(1000);
        }
        if (times) fprintf(times, "%s\t%lld\n", tid, (long long)at);
    }
    if (kafka_producer_flush(p, 60000) != 0) {
        fprintf(stderr, "millomctl: not every event was delivered\n");
        rc = 1;
    }
    kafka_producer_free(p);
    if (times && fclose(times) != 0) rc = 1;
    return rc;
}
