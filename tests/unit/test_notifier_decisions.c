/* notifier's decisions on a subscriber event (notify_decide in
 * services/notifier/notify_events.c): validation, de-duplication, unknown
 * subscribers, consent, the quota and the override cap, against a real
 * notifier.db in a temporary directory and the sandbox tenants file. No
 * Kafka: the event is handed over decoded, as the consumer would after
 * unpacking it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/notifier/notifier.h"
#include "shared/contracts/cpid.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "millom/v1/purchase.pb-c.h"

#define MSISDN "924542610003"
#define OTHER_MSISDN "924542610004"
#define SP "testserviceprovider"
#define SP2 "otherprovider"

static notifier n;
static char dir[64], db_path[128];
static int seq;

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/millom-notifier-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/notifier.db", dir);
    memset(&n, 0, sizeof n);
    char err[256];
    n.tenants = tenants_load("config/tenants.sandbox.json", err, sizeof err);
    ck_assert_msg(n.tenants != NULL, "%s", err);
    ck_assert_int_eq(notifier_open(&n, db_path, err, sizeof err), 0);
    n.quota = 2;
    n.quota_window_ms = 3600 * 1000;
    n.override_max = 1;
}

static void teardown(void) {
    notifier_close(&n);
    tenants_free(n.tenants);
    char path[160];
    const char *files[] = {"notifier.db", "notifier.db-wal", "notifier.db-shm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Decides one event for (msisdn or CPID, type); the transaction id is fresh
 * unless tid is given. Returns the verdict's status; *queued the count. */
static int decide_ex(const char *subscriber, Millom__V1__KeyType key_type, const char *type,
                     const char *tid, int override, notify_verdict *v, int *queued) {
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = "tp";
    sub.subscriber_id = (char *)subscriber;
    sub.key_type = key_type;
    Millom__V1__SubscriberEvent ev = MILLOM__V1__SUBSCRIBER_EVENT__INIT;
    char fresh[32];
    snprintf(fresh, sizeof fresh, "tid-%d", ++seq);
    ev.operator_ = "tp";
    ev.subscriber = &sub;
    ev.type = (char *)type;
    ev.transaction_id = (char *)(tid ? tid : fresh);
    ev.override = override;
    ck_assert_int_eq(notify_decide(&n, &ev, v, queued), 0);
    return v->status;
}

static int decide(const char *msisdn, const char *type, int override, int *queued) {
    notify_verdict v;
    return decide_ex(msisdn, MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN, type, NULL, override, &v,
                     queued);
}

static int64_t count(const char *sql) {
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(n.db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t c = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return c;
}

static void consent(const char *provider, const char *msisdn, const char *types) {
    ck_assert_int_eq(consent_put(&n, provider, "tp", msisdn, types, "en", "c-1", now_ms()), 0);
}

START_TEST(malformed_events_are_400) {
    notify_verdict v;
    int queued;
    ck_assert_int_eq(decide_ex(MSISDN, MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN, "no-such-type", NULL,
                               0, &v, &queued),
                     400);
    ck_assert_ptr_null(v.error_type);
    ck_assert_int_eq(
        decide_ex(MSISDN, MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN, "low-data", "ab", 0, &v, &queued),
        400); /* transaction id shorter than 3 */
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries"), 0);
}
END_TEST

START_TEST(unknown_subscriber_is_404) {
    int queued;
    ck_assert_int_eq(decide(MSISDN, "low-data", 0, &queued), 404);
    /* A number of another country is not this operator's either. */
    ck_assert_int_eq(decide("441234567890", "low-data", 0, &queued), 404);
    ck_assert_int_eq(queued, 0);
}
END_TEST

START_TEST(no_consent_to_this_type_is_403) {
    consent(SP, MSISDN, "[\"low-data\"]");
    int queued;
    notify_verdict v;
    ck_assert_int_eq(decide_ex(MSISDN, MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN, "out-of-data", NULL,
                               0, &v, &queued),
                     403);
    ck_assert_str_eq(v.error_type, "NO_CONSENT");
    /* A revoked consent (empty list) counts as none. */
    consent(SP, MSISDN, "[]");
    ck_assert_int_eq(decide(MSISDN, "low-data", 0, &queued), 403);
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries"), 0);
}
END_TEST

START_TEST(one_delivery_per_consenting_provider) {
    consent(SP, MSISDN, "[\"low-data\",\"out-of-data\"]");
    consent(SP2, MSISDN, "[\"out-of-data\"]");
    consent(SP2, OTHER_MSISDN, "[\"out-of-data\"]");
    int queued;
    ck_assert_int_eq(decide(MSISDN, "out-of-data", 0, &queued), 202);
    ck_assert_int_eq(queued, 2);
    ck_assert_int_eq(decide(MSISDN, "low-data", 0, &queued), 202);
    ck_assert_int_eq(queued, 1);
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries WHERE provider='" SP2 "'"), 1);
    /* The body carries a CPID for the provider, never the number outside
     * the private "_millom" part the worker strips. */
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries WHERE json_extract(body, "
                           "'$.cpid') LIKE '%" MSISDN "%'"),
                     0);
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries WHERE "
                           "json_extract(body, '$._millom.msisdn')='" MSISDN "'"),
                     3);
}
END_TEST

START_TEST(duplicate_transaction_id_is_409) {
    consent(SP, MSISDN, "[\"low-data\"]");
    notify_verdict v;
    int queued;
    ck_assert_int_eq(decide_ex(MSISDN, MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN, "low-data", "dup-1",
                               0, &v, &queued),
                     202);
    ck_assert_int_eq(decide_ex(MSISDN, MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN, "low-data", "dup-1",
                               0, &v, &queued),
                     409);
    ck_assert_int_eq(queued, 0);
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries"), 1);
}
END_TEST

START_TEST(quota_per_provider_then_429) {
    consent(SP, MSISDN, "[\"low-data\"]");
    consent(SP2, MSISDN, "[\"low-data\"]");
    int queued;
    ck_assert_int_eq(decide(MSISDN, "low-data", 0, &queued), 202);
    ck_assert_int_eq(decide(MSISDN, "low-data", 0, &queued), 202);
    notify_verdict v;
    ck_assert_int_eq(
        decide_ex(MSISDN, MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN, "low-data", NULL, 0, &v, &queued),
        429); /* quota 2 used by both providers */
    ck_assert_str_eq(v.error_type, "QUOTA_EXCEEDED");
    /* The quota is per type: another type still goes out. */
    consent(SP, MSISDN, "[\"low-data\",\"pack-expired\"]");
    ck_assert_int_eq(decide(MSISDN, "pack-expired", 0, &queued), 202);
    ck_assert_int_eq(queued, 1);
    /* Usage outside the window no longer counts. */
    ck_assert_int_eq(
        sqlite3_exec(n.db, "UPDATE notify_usage SET sent_ms = sent_ms - 7200000", NULL, NULL, NULL),
        SQLITE_OK);
    ck_assert_int_eq(decide(MSISDN, "low-data", 0, &queued), 202);
    ck_assert_int_eq(queued, 2);
}
END_TEST

START_TEST(override_skips_the_quota_up_to_its_cap) {
    consent(SP, MSISDN, "[\"low-data\"]");
    int queued;
    ck_assert_int_eq(decide(MSISDN, "low-data", 0, &queued), 202);
    ck_assert_int_eq(decide(MSISDN, "low-data", 0, &queued), 202);
    ck_assert_int_eq(decide(MSISDN, "low-data", 0, &queued), 429);
    ck_assert_int_eq(decide(MSISDN, "low-data", 1, &queued), 202); /* override 1 of 1 */
    ck_assert_int_eq(decide(MSISDN, "low-data", 1, &queued), 429); /* cap reached: quota applies */
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries"), 3);
}
END_TEST

START_TEST(cpid_subscribers) {
    consent(SP, MSISDN, "[\"low-data\"]");
    char cpid[CPID_MAX_LEN];
    ck_assert_int_eq(
        cpid_issue(cpid_config_default(), MSISDN, SP, "41006", now_ms(), cpid, sizeof cpid), 0);
    notify_verdict v;
    int queued;
    ck_assert_int_eq(
        decide_ex(cpid, MILLOM__V1__KEY_TYPE__KEY_TYPE_CPID, "low-data", NULL, 0, &v, &queued),
        202);
    ck_assert_int_eq(queued, 1);
    /* A CPID of another operator's network, or a broken one, is 409 NO_CPID. */
    ck_assert_int_eq(
        cpid_issue(cpid_config_default(), MSISDN, SP, "99999", now_ms(), cpid, sizeof cpid), 0);
    ck_assert_int_eq(
        decide_ex(cpid, MILLOM__V1__KEY_TYPE__KEY_TYPE_CPID, "low-data", NULL, 0, &v, &queued),
        409);
    ck_assert_str_eq(v.error_type, "NO_CPID");
    ck_assert_int_eq(decide_ex("not-a-cpid,41006", MILLOM__V1__KEY_TYPE__KEY_TYPE_CPID, "low-data",
                               NULL, 0, &v, &queued),
                     409);
}
END_TEST

/* A final purchase event queues one callback to its provider, once per
 * (provider, transid, state); events of other states queue nothing. */
static kafka_verdict purchase_event(const char *transid, Millom__V1__PurchaseState state,
                                    const char *error_type) {
    Millom__V1__PurchaseEvent ev = MILLOM__V1__PURCHASE_EVENT__INIT;
    ev.transid = (char *)transid;
    ev.service_provider = SP;
    ev.operator_ = "tp";
    ev.msisdn = MSISDN;
    ev.state = state;
    if (error_type) ev.error_type = (char *)error_type;
    uint8_t buf[512];
    size_t len = millom__v1__purchase_event__pack(&ev, buf);
    rd_kafka_message_t msg = {.payload = buf, .len = len};
    char err[128] = "";
    return notify_on_purchase_event(&n, &msg, err, sizeof err);
}

START_TEST(purchase_callbacks_once_per_final_state) {
    ck_assert_int_eq(
        purchase_event("t-1", MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_PENDING, NULL),
        KAFKA_DONE);
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries"), 0);
    for (int i = 0; i < 2; i++) /* the second is a redelivery */
        ck_assert_int_eq(
            purchase_event("t-1", MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED, NULL),
            KAFKA_DONE);
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries WHERE kind='callback'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries WHERE "
                           "json_extract(body, '$.transactionId')='t-1' AND "
                           "json_extract(body, '$.message')='COMPLETED'"),
                     1);
    ck_assert_int_eq(purchase_event("t-2", MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_FAILED,
                                    "INSUFFICIENT_BALANCE"),
                     KAFKA_DONE);
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries WHERE "
                           "json_extract(body, '$.errorType')='INSUFFICIENT_BALANCE'"),
                     1);
    /* Not a PurchaseEvent at all: to the DLQ, nothing queued. */
    rd_kafka_message_t junk = {.payload = "\xff\xff\xff", .len = 3};
    char err[128] = "";
    ck_assert_int_eq(notify_on_purchase_event(&n, &junk, err, sizeof err), KAFKA_DEAD_LETTER);
    ck_assert_int_eq(count("SELECT count(*) FROM deliveries"), 2);
}
END_TEST

int main(void) {
    setenv("MILLOM_PROFILE", "sandbox", 0);
    log_init("test_notifier_decisions");
    Suite *s = suite_create("notifier_decisions");
    TCase *tc = tcase_create("decide");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, malformed_events_are_400);
    tcase_add_test(tc, unknown_subscriber_is_404);
    tcase_add_test(tc, no_consent_to_this_type_is_403);
    tcase_add_test(tc, one_delivery_per_consenting_provider);
    tcase_add_test(tc, duplicate_transaction_id_is_409);
    tcase_add_test(tc, quota_per_provider_then_429);
    tcase_add_test(tc, override_skips_the_quota_up_to_its_cap);
    tcase_add_test(tc, cpid_subscribers);
    tcase_add_test(tc, purchase_callbacks_once_per_final_state);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
