/* purchase-executor: wiring. Consumes millom.purchase.commands,
 * millom.activation.callbacks and millom.purchase.lookups; produces
 * millom.replies, millom.purchase.events (outbox) and millom.queries
 * (INVALIDATE). See purchase.h for the state machine and executor.h for the layers.
 *
 * Settings: MILLOM_EXECUTOR_PORT (admin, 9102), MILLOM_PURCHASE_TIMER_S
 * (60; 0 disables), MILLOM_ACTIVATE_TIMEOUT_MS (5000),
 * MILLOM_ACTIVATE_MAX_ATTEMPTS (20), MILLOM_BACKEND_TIMEOUT_MS (2000, GET
 * /offers), MILLOM_INVALIDATE_TIMEOUT_MS (1000), MILLOM_CALLBACK_BASE_URL
 * (http://127.0.0.1:8080), MILLOM_CHANNEL_ID ("App"), MILLOM_OFFER_CONTEXT_KEY,
 * MILLOM_OUTBOX_STOP_WAIT_MS (10000), MILLOM_EXECUTOR_LANES (24),
 * MILLOM_TENANTS, MILLOM_DATA_DIR. */
#include "executor.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/runner.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"

#include <stdio.h>

static void *setup(runner *r) {
    char err[512];
    /* The lanes' 4 read connections, the writes thread's, the relay's, the
     * follower's, the retry thread's and the consumer's would hold up to
     * MILLOM_SQLITE_CACHE_KB each; their reads are look-ups by key, and
     * 1 MB for all of them kept 0.4-0.5 MB off the peak in the purchase
     * bench (19.1 and 19.3 MB against 19.6 and 19.7, runs alternated). */
    store_default_heap_kb(1024);
    executor_config cfg;
    executor_config_load(&cfg);
    tenants *t = tenants_load_default(err, sizeof err);
    if (!t) {
        log_error("purchase-executor: tenants: %s", err);
        return NULL;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/purchase-executor.db", service_data_dir());
    executor *ex = executor_new(&cfg, t, runner_producer(r), path, err, sizeof err);
    if (!ex) log_error("purchase-executor: %s", err);
    return ex;
}

/* After the consumer stopped and committed; before the producer flushes:
 * the retry thread first, then the relay's last pass. */
static void teardown(void *state) { executor_free(state); }

int main(void) {
    static const char *const topics[] = {TOPIC_PURCHASE_COMMANDS, TOPIC_ACTIVATION_CALLBACKS,
                                         TOPIC_PURCHASE_LOOKUPS, TOPIC_TOPUP_COMMANDS, NULL};
    runner_opts opts = {
        .name = "purchase-executor",
        .background_producer = 1,
        .admin_port_env = "MILLOM_EXECUTOR_PORT",
        .admin_port = 9102,
        .topics = topics,
        .handler = executor_handle,
        .setup = setup,
        .teardown = teardown,
        .on_assign = executor_on_assign,
        .on_revoke = executor_on_revoke,
        .before_commit = executor_before_commit,
        .lanes = executor_lanes,
        .lane_arg = executor_lane_arg,
    };
    return runner_main(&opts);
}
