/* notifier: consents, quotas and webhook deliveries to providers.
 * It owns consents and CPID registrations (notifier.db) and answers the
 * management read of them; subscriber events become queued rich
 * notifications (notify_events.c), final purchase events queued purchase
 * callbacks, and the delivery worker sends them (delivery_worker.c).
 * Settings: MILLOM_NOTIFIER_PORT (admin, 9103), MILLOM_DATA_DIR,
 * MILLOM_TENANTS, MILLOM_NOTIFY_QUOTA (3), MILLOM_NOTIFY_QUOTA_WINDOW_S
 * (86400), the delivery settings in delivery_worker.c
 * (MILLOM_NOTIFY_CONCURRENCY, MILLOM_NOTIFY_PROVIDER_MAX_IN_FLIGHT and the
 * providers' maxInFlight and maxPerSecond in the tenants file,
 * MILLOM_NOTIFY_OFFERS_CACHE_MS, ...) and the rich
 * notification settings in rich_notification.c: MILLOM_REPLY_PARTITION
 * (notifier's own partition of millom.replies for its offers calls,
 * default 7: api-edge uses 0, every instance needs its own),
 * MILLOM_NOTIFY_OFFERS_TIMEOUT_MS (2000), MILLOM_PUBLIC_URL
 * (http://127.0.0.1:8080), MILLOM_LINK_TTL_S (86400), MILLOM_LINK_SHOP_TTL_S
 * (3600), MILLOM_LINK_PURCHASE_TTL_S (600), MILLOM_LINK_UNSUBSCRIBE_TTL_S
 * (2592000); MILLOM_CONSENT_TTL_DAYS (365). */
#include "notifier.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/topics.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/rpc.h"
#include "shared/patterns/runner.h"

#include <stdio.h>
#include <stdlib.h>

static void *setup(runner *r) {
    notifier *n = calloc(1, sizeof *n);
    char err[256];
    if (!n) return NULL;
    n->producer = runner_producer(r);
    /* The settings, once, through shared/plumbing/settings.h: a bad value exits 1
     * with a message naming the variable and its range. */
    settings_reader s = SETTINGS_INIT;
    n->quota = settings_long(&s, "MILLOM_NOTIFY_QUOTA", 3, 0, 1000000);
    n->quota_window_ms =
        settings_seconds(&s, "MILLOM_NOTIFY_QUOTA_WINDOW_S", 86400, 1, 365 * 86400) * 1000;
    n->override_max = settings_long(&s, "MILLOM_NOTIFY_OVERRIDE_MAX", 2, 0, 1000000);
    n->offers_timeout_ms = settings_ms(&s, "MILLOM_NOTIFY_OFFERS_TIMEOUT_MS", 2000, 1, 600000);
    n->link_ttl_s = settings_seconds(&s, "MILLOM_LINK_TTL_S", 86400, 1, 365 * 86400);
    n->shop_link_ttl_s = settings_seconds(&s, "MILLOM_LINK_SHOP_TTL_S", 3600, 1, 7 * 86400);
    if (n->shop_link_ttl_s > n->link_ttl_s) n->shop_link_ttl_s = n->link_ttl_s;
    n->purchase_link_ttl_s = settings_seconds(&s, "MILLOM_LINK_PURCHASE_TTL_S", 600, 1, 86400);
    if (n->purchase_link_ttl_s > n->link_ttl_s) n->purchase_link_ttl_s = n->link_ttl_s;
    n->unsubscribe_link_ttl_s =
        settings_seconds(&s, "MILLOM_LINK_UNSUBSCRIBE_TTL_S", 30 * 86400, 1, 365 * 86400);
    n->consent_ttl_ms =
        (int64_t)(settings_number(&s, "MILLOM_CONSENT_TTL_DAYS", 365, 1e-6, 36500) * 86400000.0);
    if (n->consent_ttl_ms < 1) n->consent_ttl_ms = 1;
    snprintf(n->public_url, sizeof n->public_url, "%s",
             settings_url(&s, "MILLOM_PUBLIC_URL", "http://127.0.0.1:8080"));
    /* Its own partition of millom.replies: 7 by default, never api-edge's 0. */
    int32_t reply_partition = (int32_t)settings_long(&s, "MILLOM_REPLY_PARTITION", 7, 0, 100000);
    if (!settings_ok(&s)) free(n);
    settings_exit_on_error(&s);
    n->rpc = rpc_client_new(n->producer, reply_partition, err, sizeof err);
    if (!n->rpc || rpc_client_start(n->rpc) != 0) {
        log_error("rpc client: %s", n->rpc ? "cannot read millom.replies" : err);
        rpc_client_free(n->rpc);
        free(n);
        return NULL;
    }
    n->tenants = tenants_load_default(err, sizeof err);
    if (!n->tenants) {
        log_error("tenants: %s", err);
        rpc_client_free(n->rpc);
        free(n);
        return NULL;
    }
    if (notifier_open(n, NULL, err, sizeof err) != 0) {
        log_error("notifier store: %s", err);
        tenants_free(n->tenants);
        rpc_client_free(n->rpc);
        free(n);
        return NULL;
    }
    /* Ownership comes with the assignment; the follower runs before the
     * consumer so that an assignment can wait for it to restore. */
    n->follower = changelog_disown_all(n->db) == 0
                      ? changelog_follower_start(n->db_path, &notifier_changelog, err, sizeof err)
                      : NULL;
    n->outbox = n->follower ? outbox_relay_start(n->db_path, n->producer) : NULL;
    n->worker = n->outbox ? delivery_worker_start(n, err, sizeof err) : NULL;
    if (!n->worker) {
        log_error("notifier: %s",
                  n->follower && !n->outbox ? "cannot start the outbox relay" : err);
        outbox_relay_stop(n->outbox);
        changelog_follower_stop(n->follower);
        notifier_close(n);
        tenants_free(n->tenants);
        rpc_client_free(n->rpc);
        free(n);
        return NULL;
    }
    return n;
}

static void teardown(void *state) {
    notifier *n = state;
    delivery_worker_stop(n->worker); /* before the rpc client it calls through */
    outbox_relay_stop(n->outbox);
    changelog_follower_stop(n->follower);
    rpc_client_free(n->rpc);
    notifier_close(n);
    tenants_free(n->tenants);
    free(n);
}

int main(void) {
    static const char *const topics[] = {TOPIC_SUBSCRIBER_EVENTS,
                                         TOPIC_CONSENTS,
                                         TOPIC_PURCHASE_EVENTS,
                                         TOPIC_CPID_REGISTRATIONS,
                                         TOPIC_CONSENT_QUERIES,
                                         TOPIC_TOPUP_EVENTS,
                                         NULL};
    runner_opts opts = {
        .name = "notifier",
        .background_producer = 1,
        .admin_port_env = "MILLOM_NOTIFIER_PORT",
        .admin_port = 9103,
        .topics = topics,
        .handler = notifier_on_message,
        .setup = setup,
        .teardown = teardown,
        .on_assign = notifier_on_assign,
        .on_revoke = notifier_on_revoke,
        .before_commit = notifier_before_commit,
        /* A batch of messages in one transaction (MILLOM_BATCH_MAX,
         * MILLOM_BATCH_WAIT_MS); replies after its commit (replies.c). */
        .batch_begin = notifier_batch_begin,
        .batch_commit = notifier_batch_commit,
        .batch_rollback = notifier_batch_rollback,
    };
    return runner_main(&opts);
}
