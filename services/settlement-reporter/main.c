/* settlement-reporter: wiring. Settles completed purchases from
 * millom.purchase.events (see settlement.h), records offer impressions,
 * answers millom.settlement.queries, publishes millom.settlement.records
 * and millom.settlement.reports through its outbox.
 *
 * Settings: MILLOM_SETTLEMENT_PORT (admin, 9104),
 * MILLOM_SUBSCRIBER_HASH_KEY (key of the subscriber hash, per profile:
 * shared/contracts/keys.h), MILLOM_SETTLEMENT_CLOSE_GRACE_S (3600: a day closes this long
 * after its end at the latest), MILLOM_SETTLEMENT_CLOSE_CHECK_MS (60000:
 * how often the timer looks), MILLOM_TENANTS (revenueShares per operator),
 * MILLOM_DATA_DIR, MILLOM_OUTBOX_STOP_WAIT_MS. */
#include "settlement.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/runner.h"

static void *setup(runner *r) {
    char err[512];
    settlement *s = settlement_new(runner_producer(r), err, sizeof err);
    if (!s) log_error("settlement-reporter: %s", err);
    return s;
}

static void teardown(void *state) { settlement_free(state); }

int main(void) {
    static const char *const topics[] = {TOPIC_PURCHASE_EVENTS, TOPIC_OFFER_IMPRESSIONS, NULL};
    runner_opts opts = {
        .name = "settlement-reporter",
        .background_producer = 1,
        .admin_port_env = "MILLOM_SETTLEMENT_PORT",
        .admin_port = 9104,
        .topics = topics,
        .handler = settlement_handle,
        .setup = setup,
        .teardown = teardown,
        .batch_begin = settlement_batch_begin,
        .batch_commit = settlement_batch_commit,
        .batch_rollback = settlement_batch_rollback,
        /* Purchase events and impressions: nobody waits on their settling. */
        .background = 1,
    };
    return runner_main(&opts);
}
