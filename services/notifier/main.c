/* notifier: consents, quotas and webhook deliveries to providers.
 * Today it owns consents and CPID registrations (notifier.db) and answers
 * the management read of them; subscriber and purchase events are checked
 * to decode, notifications come with the notifications work.
 * Settings: MILLOM_NOTIFIER_PORT (admin, 9103), MILLOM_DATA_DIR. */
#include "notifier.h"
#include "shared/log.h"
#include "shared/runner.h"

#include <stdlib.h>

static void *setup(runner *r) {
    notifier *n = calloc(1, sizeof *n);
    char err[256];
    if (!n) return NULL;
    n->producer = runner_producer(r);
    if (notifier_open(n, NULL, err, sizeof err) != 0) {
        log_error("notifier store: %s", err);
        free(n);
        return NULL;
    }
    return n;
}

static void teardown(void *state) {
    notifier *n = state;
    notifier_close(n);
    free(n);
}

int main(void) {
    static const char *const topics[] = {"millom.subscriber.events", "millom.consents",
                                         "millom.purchase.events", "millom.cpid.registrations",
                                         "millom.consent.queries", NULL};
    runner_opts opts = {
        .name = "notifier",
        .admin_port_env = "MILLOM_NOTIFIER_PORT",
        .admin_port = 9103,
        .topics = topics,
        .handler = notifier_on_message,
        .setup = setup,
        .teardown = teardown,
    };
    return runner_main(&opts);
}
