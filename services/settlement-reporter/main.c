/* settlement-reporter: settles completed purchases and aggregates them.
 * For now it joins its consumer group, checks what arrives and serves
 * health and metrics; settlement comes with the settlement work.
 * Settings: MILLOM_SETTLEMENT_PORT (admin, 9104). */
#include "shared/runner.h"
#include "millom/v1/purchase.pb-c.h"
#include "millom/v1/settlement.pb-c.h"

static const runner_topic_type types[] = {
    {"millom.purchase.events", &millom__v1__purchase_event__descriptor},
    {"millom.offer.impressions", &millom__v1__offer_impression__descriptor},
    {NULL, NULL},
};

static void *setup(runner *r) {
    (void)r;
    return (void *)types;
}

int main(void) {
    static const char *const topics[] = {"millom.purchase.events", "millom.offer.impressions",
                                         NULL};
    runner_opts opts = {
        .name = "settlement-reporter",
        .admin_port_env = "MILLOM_SETTLEMENT_PORT",
        .admin_port = 9104,
        .topics = topics,
        .handler = runner_decode_only,
        .setup = setup,
    };
    return runner_main(&opts);
}
