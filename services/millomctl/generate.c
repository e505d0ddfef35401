/* `purchases generate`: synthetic COMPLETED PurchaseEvents on
 * millom.purchase.events, the way purchase-executor publishes them (key =
 * MSISDN). For the settlement benchmark and demos; never point it at a
 * production cluster. Prices vary (1.00 .. 999.99) so rounding of the
 * shares is exercised; plans, providers and subscribers rotate. */
#include "millomctl.h"
#include "shared/plumbing/topics.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/plumbing/kafka.h"
#include "shared/plumbing/service.h"
#include "millom/v1/purchase.pb-c.h"

static const char *const plans[] = {"tp-social-daily", "tp-data-daily-3gb", "tp-video-hour",
                                    "tp-music-daily"};
static const char *const providers[] = {"testserviceprovider", "otherprovider"};

int generate_run(const generate_opts *o) {
    char err[512];
    int64_t at = now_ms();
    if (o->day) {
        struct tm tm = {0};
        const char *rest = strptime(o->day, "%Y-%m-%d", &tm);
        if (!rest || *rest) {
            fprintf(stderr, "millomctl: --day wants YYYY-MM-DD\n");
            return 2;
        }
        at = (int64_t)timegm(&tm) * 1000 + 12 * 3600 * 1000; /* noon UTC */
    }
    kafka_producer *p = kafka_producer_new("millomctl", 1, err, sizeof err);
    if (!p) {
        fprintf(stderr, "millomctl: %s\n", err);
        return 1;
    }
    char prefix[64];
    if (o->prefix)
        snprintf(prefix, sizeof prefix, "%s", o->prefix);
    else
        snprintf(prefix, sizeof prefix, "gen-%lld", (long long)now_ms());
    int rc = 0;
    for (long i = 0; i < o->count && !service_stopping(); i++) {
        char transid[96], msisdn[16];
        snprintf(transid, sizeof transid, "%s-%ld", prefix, i);
        snprintf(msisdn, sizeof msisdn, "92454%07ld", i % 10000000);
        Millom__V1__PurchaseEvent ev = MILLOM__V1__PURCHASE_EVENT__INIT;
        ev.transid = transid;
        ev.service_provider = (char *)providers[i % 2];
        ev.operator_ = "tp";
        ev.msisdn = msisdn;
        ev.plan_id = (char *)plans[i % 4];
        ev.price_minor = 100 + (i * 7919) % 99900;
        ev.currency = "PKR";
        ev.state = MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED;
        ev.confirmation_code = transid;
        ev.occurred_at_ms = at;
        ev.created_at_ms = at;
        ev.channel = "api";
        ev.attempts = 1;
        uint8_t buf[512];
        size_t len = millom__v1__purchase_event__get_packed_size(&ev);
        if (len > sizeof buf) continue;
        millom__v1__purchase_event__pack(&ev, buf);
        /* A full local queue is back-pressure: wait for deliveries. */
        while (kafka_produce(p, TOPIC_PURCHASE_EVENTS, -1, msisdn, strlen(msisdn), buf, len, NULL,
                             0) != 0) {
            if (service_stopping()) break;
            usleep(1000);
        }
    }
    if (kafka_producer_flush(p, 60000) != 0) {
        fprintf(stderr, "millomctl: not every event was delivered\n");
        rc = 1;
    }
    kafka_producer_free(p);
    return rc;
}
