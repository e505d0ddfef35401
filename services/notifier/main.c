/* notifier: consents, quotas and webhook deliveries to providers.
 * For now it joins its consumer group, checks what arrives and serves
 * health and metrics; notifications come with the notifications work.
 * Settings: MILLOM_NOTIFIER_PORT (admin, 9103). */
#include "shared/runner.h"
#include "millom/v1/purchase.pb-c.h"
#include "millom/v1/subscriber.pb-c.h"

static const runner_topic_type types[] = {
    {"millom.subscriber.events", &millom__v1__subscriber_event__descriptor},
    {"millom.consents", &millom__v1__consent_change__descriptor},
    {"millom.purchase.events", &millom__v1__purchase_event__descriptor},
    {NULL, NULL},
};

static void *setup(runner *r) {
    (void)r;
    return (void *)types;
}

int main(void) {
    static const char *const topics[] = {"millom.subscriber.events", "millom.consents",
                                         "millom.purchase.events", NULL};
    runner_opts opts = {
        .name = "notifier",
        .admin_port_env = "MILLOM_NOTIFIER_PORT",
        .admin_port = 9103,
        .topics = topics,
        .handler = runner_decode_only,
        .setup = setup,
    };
    return runner_main(&opts);
}
