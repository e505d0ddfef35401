/* purchase-executor: owns purchases (state machine, idempotency, outbox).
 * For now it joins its consumer group, checks what arrives and serves
 * health and metrics; purchasing comes with the purchases work.
 * Settings: MILLOM_EXECUTOR_PORT (admin, 9102). */
#include "shared/runner.h"
#include "millom/v1/purchase.pb-c.h"

static const runner_topic_type types[] = {
    {"millom.purchase.commands", &millom__v1__purchase_command__descriptor},
    {"millom.activation.callbacks", &millom__v1__activation_callback__descriptor},
    {NULL, NULL},
};

static void *setup(runner *r) {
    (void)r;
    return (void *)types;
}

int main(void) {
    static const char *const topics[] = {"millom.purchase.commands", "millom.activation.callbacks",
                                         NULL};
    runner_opts opts = {
        .name = "purchase-executor",
        .admin_port_env = "MILLOM_EXECUTOR_PORT",
        .admin_port = 9102,
        .topics = topics,
        .handler = runner_decode_only,
        .setup = setup,
    };
    return runner_main(&opts);
}
