/* purchase-executor's store on a real SQLite file: fingerprints, the
 * checks and insert of a new purchase (idempotency, transid reuse, the
 * purchase timer window), compare-and-set state transitions with their
 * outbox events, the retry thread's claims, and the look-up JSON. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/purchase-executor/handlers.h"
#include "services/purchase-executor/purchase.h"
#include "shared/patterns/changelog.h"
#include "shared/patterns/outbox.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/store.h"
#include "millom/v1/changelog.pb-c.h"

static char dir[64], path[128];
static sqlite3 *db;

static void setup(void) {
    setenv("MILLOM_LOG_LEVEL", "error", 1);
    snprintf(dir, sizeof dir, "/tmp/millom-pe-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/purchase-executor.db", dir);
    char err[256];
    db = purchase_store_open(path, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
}

static void teardown(void) {
    store_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Purchase events in the outbox (changelog records are counted apart). */
#define EVENTS_IN_OUTBOX "SELECT count(*) FROM outbox WHERE topic = '" TOPIC_PURCHASE_EVENTS "'"

static long scalar(const char *sql) {
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    long v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static purchase make(const char *sp, const char *transid, const char *plan, int64_t created) {
    purchase p;
    memset(&p, 0, sizeof p);
    strcpy(p.service_provider, sp);
    strcpy(p.transid, transid);
    strcpy(p.op, "tp");
    strcpy(p.subscriber, "924542610003");
    strcpy(p.key_type, "MSISDN");
    strcpy(p.plan_id, plan);
    p.price_minor = 16000;
    strcpy(p.currency, "PKR");
    strcpy(p.fund_source, "WALLET");
    strcpy(p.channel, "api");
    strcpy(p.language, "en");
    p.state = PS_ACTIVATING;
    p.created_ms = p.updated_ms = created;
    p.next_attempt_ms = created + 7000;
    purchase_fingerprint(p.op, p.key_type, p.subscriber, p.plan_id, "", p.fund_source,
                         p.fingerprint);
    return p;
}

/* The last outbox event, decoded. Caller frees. */
static Millom__V1__PurchaseEvent *last_event(char *key, size_t keylen) {
    sqlite3_stmt *st;
    ck_assert_int_eq(
        sqlite3_prepare_v2(
            db,
            "SELECT topic, key, payload FROM outbox WHERE topic = '" TOPIC_PURCHASE_EVENTS
            "' ORDER BY id DESC "
            "LIMIT 1",
            -1, &st, NULL),
        SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), TOPIC_PURCHASE_EVENTS);
    snprintf(key, keylen, "%.*s", sqlite3_column_bytes(st, 1),
             (const char *)sqlite3_column_blob(st, 1));
    Millom__V1__PurchaseEvent *ev = millom__v1__purchase_event__unpack(
        NULL, (size_t)sqlite3_column_bytes(st, 2), sqlite3_column_blob(st, 2));
    sqlite3_finalize(st);
    ck_assert_ptr_nonnull(ev);
    return ev;
}

START_TEST(fingerprints_tell_bodies_apart) {
    char a[65], b[65];
    purchase_fingerprint("tp", "MSISDN", "924542610003", "plan1234", "", "WALLET", a);
    ck_assert_int_eq(strlen(a), 64);
    purchase_fingerprint("tp", "MSISDN", "924542610003", "plan1234", "", "WALLET", b);
    ck_assert_str_eq(a, b);
    purchase_fingerprint("tp", "MSISDN", "924542610003", "plan1234", "", "LOAN", b);
    ck_assert_str_ne(a, b);
    purchase_fingerprint("tp", "MSISDN", "924542610003", "plan1235", "", "WALLET", b);
    ck_assert_str_ne(a, b);
    purchase_fingerprint("tp", "MSISDN", "924542610003", "plan1234", "ctx", "WALLET", b);
    ck_assert_str_ne(a, b);
    purchase_fingerprint("tp", "OPET", "924542610003", "plan1234", "", "WALLET", b);
    ck_assert_str_ne(a, b);
    /* Field boundaries matter: "ab"+"c" is not "a"+"bc". */
    purchase_fingerprint("tp", "MSISDN", "92454261000", "3plan1234", "", "WALLET", b);
    ck_assert_str_ne(a, b);
    purchase_fingerprint("tp", "MSISDN", "924542610003", "plan1234", NULL, "WALLET", b);
    ck_assert_str_eq(a, b); /* absent offerContext == empty */
}
END_TEST

/* The request id of the command that created a purchase is kept with the
 * row, and every event of the purchase carries it (the outbox's
 * correlator column, sent as the Kafka header x-correlator), whatever the
 * writer's own: a callback's update goes out under the purchase's id. */
START_TEST(events_carry_the_purchase_request_id) {
    purchase p = make("sp1", "tx-corr-0000001", "plan1234", 100000), existing = {0}, got = {0};
    strcpy(p.correlator, "shop.order-17:a");
    int64_t other = 0;
    ck_assert_int_eq(purchase_create(db, &p, 0, &existing, &other), CREATE_OK);
    ck_assert_int_eq(purchase_get(db, "sp1", "tx-corr-0000001", &got), 1);
    ck_assert_str_eq(got.correlator, "shop.order-17:a");
    purchase next = got;
    next.response_body = NULL;
    next.state = PS_COMPLETED;
    next.updated_ms = next.completed_ms = 101000;
    strcpy(next.correlator, "someone-else"); /* the updater's own is not used */
    ck_assert_int_eq(purchase_update(db, &next, PS_MASK(PS_ACTIVATING), -1, NULL), 1);
    ck_assert_int_eq(scalar("SELECT count(*) FROM outbox WHERE topic = '" TOPIC_PURCHASE_EVENTS
                            "' AND correlator = 'shop.order-17:a'"),
                     2);
    /* A purchase created without one has none. */
    purchase q = make("sp1", "tx-corr-0000002", "plan5678", 100000);
    ck_assert_int_eq(purchase_create(db, &q, 0, &existing, &other), CREATE_OK);
    ck_assert_int_eq(scalar("SELECT count(*) FROM outbox WHERE topic = '" TOPIC_PURCHASE_EVENTS
                            "' AND correlator IS NULL"),
                     1);
    purchase_clear(&got);
    purchase_clear(&existing);
}
END_TEST

START_TEST(create_inserts_with_its_event) {
    purchase p = make("sp1", "tx-0000000001", "plan1234", 100000), existing = {0};
    int64_t other = 0;
    ck_assert_int_eq(purchase_create(db, &p, 60000, &existing, &other), CREATE_OK);
    ck_assert_int_eq(scalar("SELECT count(*) FROM purchases"), 1);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), 1);
    char key[64];
    Millom__V1__PurchaseEvent *ev = last_event(key, sizeof key);
    ck_assert_str_eq(key, "924542610003");
    ck_assert_str_eq(ev->transid, "tx-0000000001");
    ck_assert_str_eq(ev->service_provider, "sp1");
    ck_assert_str_eq(ev->operator_, "tp");
    ck_assert_str_eq(ev->msisdn, "924542610003");
    ck_assert_str_eq(ev->plan_id, "plan1234");
    ck_assert_int_eq(ev->price_minor, 16000);
    ck_assert_str_eq(ev->currency, "PKR");
    ck_assert_int_eq(ev->fund_source, MILLOM__V1__FUND_SOURCE__FUND_SOURCE_WALLET);
    ck_assert_int_eq(ev->state, MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_ACTIVATING);
    ck_assert_int_eq(ev->occurred_at_ms, 100000);
    ck_assert_int_eq(ev->created_at_ms, 100000);
    ck_assert_str_eq(ev->channel, "api");
    ck_assert_str_eq(ev->transid, "tx-0000000001");
    ck_assert_str_eq(ev->operator_trans_id, "2044455a-dac6-89e9-9a7f-0a08d358e287");
    ck_assert_int_eq(ev->attempts, 0);
    millom__v1__purchase_event__free_unpacked(ev, NULL);

    purchase got = {0};
    ck_assert_int_eq(purchase_get(db, "sp1", "tx-0000000001", &got), 1);
    ck_assert_int_eq(got.state, PS_ACTIVATING);
    ck_assert_str_eq(got.fingerprint, p.fingerprint);
    ck_assert_int_eq(got.next_attempt_ms, 107000);
    ck_assert_str_eq(got.language, "en");
    ck_assert_ptr_null(got.response_body);
    ck_assert_int_eq(purchase_get(db, "sp2", "tx-0000000001", &got), 0);

    /* Idempotency: the same key again is EXISTS, with the stored row. */
    purchase again = make("sp1", "tx-0000000001", "plan9999", 200000);
    ck_assert_int_eq(purchase_create(db, &again, 60000, &existing, &other), CREATE_EXISTS);
    ck_assert_str_eq(existing.plan_id, "plan1234");
    /* Another provider's same transid at the same operator is a purchase
     * of its own, with its own operator transId. */
    ck_assert_str_eq(got.op_transid, "2044455a-dac6-89e9-9a7f-0a08d358e287");
    purchase foreign = make("sp2", "tx-0000000001", "plan9999", 200000);
    ck_assert_int_eq(purchase_create(db, &foreign, 60000, &existing, &other), CREATE_OK);
    ck_assert_int_eq(scalar("SELECT count(*) FROM purchases"), 2);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), 2);
    ck_assert_int_eq(purchase_get(db, "sp2", "tx-0000000001", &got), 1);
    ck_assert_str_eq(got.op_transid, "01352186-41c2-8c09-a08e-ff8861b2b2b7");
    ck_assert_int_eq(
        purchase_get_operator_transid(db, "tp", "01352186-41c2-8c09-a08e-ff8861b2b2b7", NULL, &got),
        1);
    ck_assert_str_eq(got.service_provider, "sp2");
    ck_assert_int_eq(purchase_get_operator_transid(db, "tp", "01352186-41c2-8c09-a08e-ff8861b2b2b7",
                                                   "sp1", &got),
                     0);
    /* Callbacks know the operator transId only, not a provider's transid. */
    ck_assert_int_eq(purchase_get_operator_transid(db, "tp", "tx-0000000001", NULL, &got), 0);
    /* An operator transId already stored (only a pre-upgrade row could
     * hold one) is refused. */
    purchase clash = make("sp3", "tx-0000000009", "plan9999", 300000);
    strcpy(clash.op_transid, "01352186-41c2-8c09-a08e-ff8861b2b2b7");
    ck_assert_int_eq(purchase_create(db, &clash, 60000, &existing, &other), CREATE_TRANSID_TAKEN);
    ck_assert_int_eq(scalar("SELECT count(*) FROM purchases"), 2);
    purchase_clear(&got);
    purchase_clear(&existing);
}
END_TEST

START_TEST(purchase_timer_window) {
    purchase a = make("sp1", "tx-a000000001", "plan1234", 100000), existing = {0};
    int64_t other = 0;
    ck_assert_int_eq(purchase_create(db, &a, 60000, &existing, &other), CREATE_OK);

    /* Same plan, other transid, 59.999 s later: refused. */
    purchase b = make("sp1", "tx-b000000001", "plan1234", 159999);
    ck_assert_int_eq(purchase_create(db, &b, 60000, &existing, &other), CREATE_TIMER);
    ck_assert_int_eq(other, 100000);
    /* Another provider buying it for the same subscriber too. */
    purchase b2 = make("sp2", "tx-b200000001", "plan1234", 150000);
    ck_assert_int_eq(purchase_create(db, &b2, 60000, &existing, &other), CREATE_TIMER);
    /* Exactly 60 s later: allowed. */
    purchase c = make("sp1", "tx-c000000001", "plan1234", 160000);
    ck_assert_int_eq(purchase_timer_hit(db, &c, 160000 - 60000, &other), 0);
    /* Another plan, another subscriber: allowed. */
    purchase d = make("sp1", "tx-d000000001", "plan1235", 110000);
    ck_assert_int_eq(purchase_create(db, &d, 60000, &existing, &other), CREATE_OK);
    purchase e = make("sp1", "tx-e000000001", "plan1234", 110000);
    strcpy(e.subscriber, "924542610001");
    ck_assert_int_eq(purchase_create(db, &e, 60000, &existing, &other), CREATE_OK);
    /* Timer 0 disables it. */
    purchase f = make("sp1", "tx-f000000001", "plan1234", 120000);
    ck_assert_int_eq(purchase_create(db, &f, 0, &existing, &other), CREATE_OK);

    /* Failed purchases do not count; the others in every live state do. */
    ck_assert_int_eq(store_exec(db,
                                "UPDATE purchases SET state = 'failed' WHERE plan_id = 'plan1234'"
                                " AND subscriber = '924542610003'"),
                     SQLITE_OK);
    purchase g = make("sp1", "tx-g000000001", "plan1234", 130000);
    ck_assert_int_eq(purchase_timer_hit(db, &g, 130000 - 60000, &other), 0);
    const char *states[] = {"received", "activating", "pending", "completed"};
    for (size_t i = 0; i < 4; i++) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "UPDATE purchases SET state = '%s' WHERE transid = 'tx-a000000001'", states[i]);
        ck_assert_int_eq(store_exec(db, sql), SQLITE_OK);
        ck_assert_int_eq(purchase_timer_hit(db, &g, 130000 - 60000, &other), 1);
    }
    /* A purchase never conflicts with itself. */
    ck_assert_int_eq(purchase_timer_hit(db, &a, 100000 - 60000, &other), 0);
    purchase_clear(&existing);
}
END_TEST

START_TEST(transitions_are_compare_and_set) {
    purchase p = make("sp1", "tx-0000000001", "plan1234", 100000), existing = {0}, cur = {0};
    int64_t other;
    ck_assert_int_eq(purchase_create(db, &p, 60000, &existing, &other), CREATE_OK);

    /* The first call's outcome: activating(attempts 0) -> pending. */
    purchase next = p;
    next.attempts = 1;
    next.state = PS_PENDING;
    next.updated_ms = 101000;
    next.next_attempt_ms = 161000; /* its first re-check */
    ck_assert_int_eq(purchase_update(db, &next, PS_MASK(PS_ACTIVATING), 0, &cur), 1);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), 2);
    char key[64];
    Millom__V1__PurchaseEvent *ev = last_event(key, sizeof key);
    ck_assert_int_eq(ev->state, MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_PENDING);
    ck_assert_int_eq(ev->attempts, 1);
    ck_assert_int_eq(ev->occurred_at_ms, 101000);
    millom__v1__purchase_event__free_unpacked(ev, NULL);
    ck_assert_int_eq(scalar("SELECT next_attempt_ms FROM purchases"), 161000);

    /* A stale writer expecting activating loses, and sees the row. */
    purchase stale = p;
    stale.attempts = 1;
    stale.state = PS_FAILED;
    ck_assert_int_eq(purchase_update(db, &stale, PS_MASK(PS_ACTIVATING), 0, &cur), 0);
    ck_assert_int_eq(cur.state, PS_PENDING);

    /* A callback completes it: event, stored answer. */
    purchase done = {0};
    ck_assert_int_eq(outcome_after_callback(&cur, 1, "", "", 102000, &done), 0);
    /* with the callback's details, which the row and its event keep */
    snprintf(done.error_code, sizeof done.error_code, "200.1");
    snprintf(done.redirect_link, sizeof done.redirect_link, "https://op.example/done");
    ck_assert_int_eq(
        purchase_update(db, &done, PS_MASK(PS_ACTIVATING) | PS_MASK(PS_PENDING), -1, NULL), 1);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), 3);
    purchase got = {0};
    ck_assert_int_eq(purchase_get(db, "sp1", "tx-0000000001", &got), 1);
    ck_assert_int_eq(got.state, PS_COMPLETED);
    ck_assert_int_eq(got.http_status, 200);
    ck_assert_str_eq(got.response_body, done.response_body);
    ck_assert_int_eq(got.completed_ms, 102000);
    ck_assert_str_eq(got.error_code, "200.1");
    ck_assert_str_eq(got.redirect_link, "https://op.example/done");
    size_t ev_len = 0;
    uint8_t *ev_buf = purchase_event_pack(&got, 102000, &ev_len);
    Millom__V1__PurchaseEvent *done_ev = millom__v1__purchase_event__unpack(NULL, ev_len, ev_buf);
    ck_assert_ptr_nonnull(done_ev);
    ck_assert_str_eq(done_ev->error_code, "200.1");
    ck_assert_str_eq(done_ev->redirect_link, "https://op.example/done");
    millom__v1__purchase_event__free_unpacked(done_ev, NULL);
    free(ev_buf);
    ck_assert_int_eq(scalar("SELECT next_attempt_ms IS NULL FROM purchases"), 1);
    /* Final states do not move again. */
    ck_assert_int_eq(
        purchase_update(db, &stale, PS_MASK(PS_ACTIVATING) | PS_MASK(PS_PENDING), -1, NULL), 0);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), 3);

    /* An update that keeps the state (a retry) adds no event. */
    purchase q = make("sp1", "tx-0000000002", "plan1235", 100000);
    ck_assert_int_eq(purchase_create(db, &q, 60000, &existing, &other), CREATE_OK);
    purchase retry = q;
    retry.attempts = 1;
    retry.maybe_executed = 1;
    retry.next_attempt_ms = 100500;
    ck_assert_int_eq(purchase_update(db, &retry, PS_MASK(PS_ACTIVATING), 0, NULL), 1);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), 4); /* only q's ACTIVATING */
    ck_assert_int_eq(scalar("SELECT next_attempt_ms FROM purchases WHERE transid = "
                            "'tx-0000000002'"),
                     100500);
    /* Unknown purchase: an error. */
    purchase ghost = make("sp1", "tx-ghost00001", "x", 1);
    ck_assert_int_eq(purchase_update(db, &ghost, PS_MASK(PS_ACTIVATING), -1, NULL), -1);
    purchase_clear(&got);
    purchase_clear(&done);
    purchase_clear(&cur);
    purchase_clear(&existing);
}
END_TEST

/* An outcome answered with the command (outcome_answered) is stored and
 * published as such, for a final state only; "answered 202 after all"
 * publishes the final event again without it, once. */
START_TEST(answered_outcomes_owe_a_callback_only_when_told) {
    purchase p = make("sp1", "tx-0000000009", "plan1234", 100000), existing = {0};
    int64_t other;
    ck_assert_int_eq(purchase_create(db, &p, 0, &existing, &other), CREATE_OK);
    /* Nothing to owe while it is not final, whatever the caller says. */
    purchase pending = p;
    pending.attempts = 1;
    pending.state = PS_PENDING;
    pending.outcome_answered = 1;
    pending.updated_ms = 100500;
    ck_assert_int_eq(purchase_update(db, &pending, PS_MASK(PS_ACTIVATING), 0, NULL), 1);
    char key[64];
    Millom__V1__PurchaseEvent *ev = last_event(key, sizeof key);
    ck_assert(!ev->outcome_answered);
    millom__v1__purchase_event__free_unpacked(ev, NULL);
    ck_assert_int_eq(scalar("SELECT outcome_answered FROM purchases"), 0);
    ck_assert_int_eq(purchase_owe_callback(db, "sp1", "tx-0000000009", 100600), 0);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), 2);

    purchase done = pending;
    done.state = PS_COMPLETED;
    done.outcome_answered = 1;
    done.updated_ms = done.completed_ms = 101000;
    ck_assert_int_eq(purchase_update(db, &done, PS_MASK(PS_PENDING), -1, NULL), 1);
    ev = last_event(key, sizeof key);
    ck_assert_int_eq(ev->state, MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED);
    ck_assert(ev->outcome_answered);
    millom__v1__purchase_event__free_unpacked(ev, NULL);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), 3);

    ck_assert_int_eq(purchase_owe_callback(db, "sp1", "tx-0000000009", 102000), 1);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), 4);
    ev = last_event(key, sizeof key);
    ck_assert_int_eq(ev->state, MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED);
    ck_assert(!ev->outcome_answered);
    ck_assert_str_eq(ev->transid, "tx-0000000009");
    ck_assert_int_eq(ev->occurred_at_ms, 102000);
    millom__v1__purchase_event__free_unpacked(ev, NULL);
    /* once */
    ck_assert_int_eq(purchase_owe_callback(db, "sp1", "tx-0000000009", 103000), 0);
    ck_assert_int_eq(purchase_owe_callback(db, "sp1", "tx-unknown-0001", 103000), 0);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), 4);
    purchase_clear(&existing);
}
END_TEST

START_TEST(retry_claims_due_purchases) {
    purchase a = make("sp1", "tx-a000000001", "plan1", 100000), existing = {0}, c = {0};
    purchase b = make("sp1", "tx-b000000001", "plan2", 100000);
    int64_t other;
    a.next_attempt_ms = 105000;
    b.next_attempt_ms = 103000;
    ck_assert_int_eq(purchase_create(db, &a, 0, &existing, &other), CREATE_OK);
    ck_assert_int_eq(purchase_create(db, &b, 0, &existing, &other), CREATE_OK);
    ck_assert_int_eq(purchase_next_due_ms(db), 103000);
    ck_assert_int_eq(purchase_claim_due(db, 102999, 200000, &c), 0);
    ck_assert_int_eq(purchase_claim_due(db, 104000, 110000, &c), 1);
    ck_assert_str_eq(c.transid, "tx-b000000001"); /* earliest first */
    ck_assert_int_eq(c.attempts, 1);
    ck_assert_int_eq(c.next_attempt_ms, 110000);
    ck_assert_int_eq(scalar("SELECT attempts FROM purchases WHERE transid = 'tx-b000000001'"), 1);
    /* While the call runs the row says it may have executed; the claimed
     * copy keeps what was known before. */
    ck_assert_int_eq(c.maybe_executed, 0);
    ck_assert_int_eq(scalar("SELECT maybe_executed FROM purchases WHERE transid = "
                            "'tx-b000000001'"),
                     1);
    /* Leased: not claimed again before the lease ends. */
    ck_assert_int_eq(purchase_claim_due(db, 104000, 110000, &c), 0);
    ck_assert_int_eq(purchase_next_due_ms(db), 105000);
    /* An assignment makes every activating purchase it owns due now. */
    ck_assert_int_eq(purchase_resume_owned(db), 2);
    ck_assert_int_eq(purchase_claim_due(db, 1, 110000, &c), 1);
    ck_assert_int_eq(purchase_claim_due(db, 1, 110000, &c), 1);
    ck_assert_int_eq(purchase_claim_due(db, 1, 110000, &c), 0);
    ck_assert_int_eq(purchase_count_stuck(db, 2), 1);
    ck_assert_int_eq(purchase_count_stuck(db, 1), 2);
    /* Only activating ones count as stuck; final ones are never claimed. */
    ck_assert_int_eq(store_exec(db, "UPDATE purchases SET state = 'completed',"
                                    " next_attempt_ms = NULL"),
                     SQLITE_OK);
    ck_assert_int_eq(purchase_claim_due(db, 999999, 1, &c), 0);
    ck_assert_int_eq(purchase_count_stuck(db, 1), 0);
    ck_assert(purchase_next_due_ms(db) == INT64_MAX);
    purchase_clear(&c);
    purchase_clear(&existing);
}
END_TEST

/* Every change of a purchase also goes to the changelog, in the same
 * transaction: the whole row, with a version that grows, to the partition
 * the row belongs to; rows of partitions this instance does not own are
 * left to their owner's retry thread. */
START_TEST(changes_go_to_the_changelog_and_follow_ownership) {
    purchase a = make("sp1", "tx-cl00000001", "plan1", 100000), existing = {0}, c = {0};
    int64_t other;
    changelog_set_partition(3);
    ck_assert_int_eq(purchase_create(db, &a, 0, &existing, &other), CREATE_OK);
    changelog_set_partition(-1);
    ck_assert_int_eq(scalar("SELECT cl_partition FROM purchases"), 3);
    long v1 = scalar("SELECT cl_version FROM purchases");
    ck_assert_int_gt(v1, 0);
    ck_assert_int_eq(scalar("SELECT count(*) FROM outbox WHERE topic = '" TOPIC_PURCHASE_CHANGELOG
                            "' AND kafka_partition = 3"),
                     1);
    /* The record decodes to the row as stored. */
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(
                         db,
                         "SELECT key, payload FROM outbox WHERE topic = '" TOPIC_PURCHASE_CHANGELOG
                         "' ORDER BY id DESC LIMIT 1",
                         -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    Millom__V1__ChangelogKey *key = millom__v1__changelog_key__unpack(
        NULL, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 0));
    Millom__V1__ChangelogRecord *rec = millom__v1__changelog_record__unpack(
        NULL, (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_blob(st, 1));
    sqlite3_finalize(st);
    ck_assert_ptr_nonnull(key);
    ck_assert_ptr_nonnull(rec);
    ck_assert_str_eq(key->table, "purchases");
    ck_assert_int_eq(key->n_values, 2);
    ck_assert_str_eq(key->values[0]->text, "sp1");
    ck_assert_str_eq(key->values[1]->text, "tx-cl00000001");
    ck_assert_int_eq(rec->version, v1);
    int found_state = 0;
    for (size_t i = 0; i < rec->n_columns; i++)
        if (strcmp(rec->columns[i]->name, "state") == 0) {
            ck_assert_str_eq(rec->columns[i]->value->text, "activating");
            found_state = 1;
        }
    ck_assert(found_state);
    millom__v1__changelog_key__free_unpacked(key, NULL);
    millom__v1__changelog_record__free_unpacked(rec, NULL);

    /* Not owned: not claimed, not due, not resumed. */
    ck_assert_int_eq(purchase_claim_due(db, INT64_MAX / 2, 200000, &c), 0);
    ck_assert(purchase_next_due_ms(db) == INT64_MAX);
    /* Owned: claimed; the claim is a change with a higher version. */
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(parts, TOPIC_PURCHASE_COMMANDS, 3);
    rd_kafka_topic_partition_list_add(parts, TOPIC_ACTIVATION_CALLBACKS,
                                      5); /* other topics do not count */
    ck_assert_int_eq(changelog_own(db, parts, TOPIC_PURCHASE_COMMANDS, 1), 0);
    ck_assert_int_eq(scalar("SELECT count(*) FROM changelog_owned"), 1);
    ck_assert_int_eq(purchase_claim_due(db, INT64_MAX / 2, 200000, &c), 1);
    ck_assert_int_gt(scalar("SELECT cl_version FROM purchases"), v1);
    ck_assert_int_eq(
        scalar("SELECT count(*) FROM outbox WHERE topic = '" TOPIC_PURCHASE_CHANGELOG "'"), 2);
    ck_assert_int_eq(changelog_own(db, parts, TOPIC_PURCHASE_COMMANDS, 0), 0);
    ck_assert_int_eq(purchase_resume_owned(db), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    purchase_clear(&c);
    purchase_clear(&existing);
}
END_TEST

typedef struct {
    char transids[8][32];
    int n;
} seen;

static void remember(void *arg, const purchase *p) {
    seen *s = arg;
    if (s->n < 8) snprintf(s->transids[s->n++], 32, "%.31s", p->transid);
}

START_TEST(lookups_filter_and_order) {
    purchase existing = {0};
    int64_t other;
    const struct {
        const char *sp, *tx, *plan;
        int64_t at;
    } rows[] = {
        {"sp1", "tx-3000000000", "p1", 300000},
        {"sp1", "tx-1000000000", "p2", 100000},
        {"sp2", "tx-2000000000", "p3", 200000},
    };
    for (size_t i = 0; i < 3; i++) {
        purchase p = make(rows[i].sp, rows[i].tx, rows[i].plan, rows[i].at);
        ck_assert_int_eq(purchase_create(db, &p, 0, &existing, &other), CREATE_OK);
    }
    purchase o = make("sp1", "tx-4000000000", "p1", 150000);
    strcpy(o.subscriber, "924542610001");
    ck_assert_int_eq(purchase_create(db, &o, 0, &existing, &other), CREATE_OK);

    seen s = {0};
    ck_assert_int_eq(
        purchase_find_subscriber(db, "tp", "924542610003", NULL, 0, 0, 1000, remember, &s), 3);
    ck_assert_str_eq(s.transids[0], "tx-1000000000"); /* oldest first */
    ck_assert_str_eq(s.transids[1], "tx-2000000000");
    ck_assert_str_eq(s.transids[2], "tx-3000000000");
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(purchase_find_subscriber(db, "tp", "924542610003", NULL, 200000, 300000, 1000,
                                              remember, &s),
                     2); /* inclusive */
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(
        purchase_find_subscriber(db, "tp", "924542610003", "sp1", 0, 250000, 1000, remember, &s),
        1);
    ck_assert_str_eq(s.transids[0], "tx-1000000000");
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(
        purchase_find_subscriber(db, "tp", "924542610003", NULL, 0, 0, 2, remember, &s),
        2); /* limit */
    ck_assert_int_eq(
        purchase_find_subscriber(db, "xx", "924542610003", NULL, 0, 0, 10, remember, &s), 0);
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(purchase_find_transid(db, "tp", "tx-2000000000", NULL, 10, remember, &s), 1);
    /* The operator's transId finds it too. */
    char op_tid[37];
    purchase_operator_transid("sp2", "tx-2000000000", op_tid);
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(purchase_find_transid(db, "tp", op_tid, NULL, 10, remember, &s), 1);
    ck_assert_str_eq(s.transids[0], "tx-2000000000");
    ck_assert_int_eq(purchase_find_transid(db, "tp", "tx-2000000000", "sp1", 10, remember, &s), 0);
    ck_assert_int_eq(purchase_find_transid(db, "other", "tx-2000000000", NULL, 10, remember, &s),
                     0);
    purchase_clear(&existing);
}
END_TEST

static void parse_answer(long status, const char *body, activation_result *r) {
    activation_parse(status, body, strlen(body), 1, r);
}

/* A pending purchase is claimed for its re-check when due, like an
 * activating retry (attempt counted, leased); the re-check's outcome is a
 * compare-and-set on (pending, attempts), so a callback that came first
 * wins and the re-check's answer is dropped. */
START_TEST(pending_rechecks_are_claimed_and_lose_to_callbacks) {
    purchase p = make("sp1", "tx-pend000001", "plan1", 100000), existing = {0}, c = {0};
    purchase cur = {0}, next = {0};
    int64_t other;
    ck_assert_int_eq(purchase_create(db, &p, 0, &existing, &other), CREATE_OK);
    purchase pend = p;
    pend.attempts = 1;
    pend.state = PS_PENDING;
    pend.updated_ms = 101000;
    pend.next_attempt_ms = 161000;
    ck_assert_int_eq(purchase_update(db, &pend, PS_MASK(PS_ACTIVATING), 0, NULL), 1);
    ck_assert_int_eq(purchase_next_due_ms(db), 161000);
    ck_assert_int_eq(purchase_claim_due(db, 160999, 170000, &c), 0);
    /* An assignment resumes activating rows only: pending keep their time. */
    ck_assert_int_eq(purchase_resume_owned(db), 0);
    ck_assert_int_eq(purchase_claim_due(db, 161000, 170000, &c), 1);
    ck_assert_int_eq(c.state, PS_PENDING);
    ck_assert_int_eq(c.attempts, 2);
    ck_assert_int_eq(purchase_claim_due(db, 165000, 170000, &c), 0); /* leased */

    /* Still pending: stored with the next re-check, no event. */
    long events = scalar(EVENTS_IN_OUTBOX);
    activation_result r;
    parse_answer(200, "{\"activationStatus\":{\"status\":\"PENDING\"}}", &r);
    recheck_policy pol = {.first_ms = 60000, .max_ms = 600000};
    ck_assert_int_eq(outcome_after_recheck(&c, &r, &pol, 162000, 0, &next), 0);
    ck_assert_int_eq(purchase_update(db, &next, PS_MASK(PS_PENDING), c.attempts, &cur), 1);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), events);
    ck_assert_int_eq(scalar("SELECT rechecks FROM purchases WHERE transid = 'tx-pend000001'"), 1);
    ck_assert_int_eq(scalar("SELECT next_attempt_ms FROM purchases WHERE transid = "
                            "'tx-pend000001'"),
                     next.next_attempt_ms);
    ck_assert_int_ge(next.next_attempt_ms, 162000 + 60000);

    /* The next re-check is claimed; a callback completes it meanwhile. */
    ck_assert_int_eq(purchase_claim_due(db, next.next_attempt_ms, 999999999, &c), 1);
    purchase done = {0};
    ck_assert_int_eq(outcome_after_callback(&c, 1, "", "", 300000, &done), 0);
    ck_assert_int_eq(
        purchase_update(db, &done, PS_MASK(PS_ACTIVATING) | PS_MASK(PS_PENDING), -1, NULL), 1);
    /* The re-check's answer (say the FAIL of another story) comes second: dropped. */
    parse_answer(200,
                 "{\"activationStatus\":{\"status\":\"FAIL\",\"errorMessage\":"
                 "{\"errorType\":\"INTERNAL_ERROR\"}}}",
                 &r);
    ck_assert_int_eq(outcome_after_recheck(&c, &r, &pol, 301000, 0, &next), 0);
    ck_assert_int_eq(next.state, PS_FAILED);
    ck_assert_int_eq(purchase_update(db, &next, PS_MASK(PS_PENDING), c.attempts, &cur), 0);
    ck_assert_int_eq(cur.state, PS_COMPLETED);
    ck_assert_int_eq(scalar(EVENTS_IN_OUTBOX), events + 1);
    ck_assert(purchase_next_due_ms(db) == INT64_MAX);
    purchase_clear(&c);
    purchase_clear(&cur);
    purchase_clear(&next);
    purchase_clear(&done);
    purchase_clear(&existing);
}
END_TEST

static void count_row(void *arg, const purchase *p) {
    (void)p;
    (*(int *)arg)++;
}

/* Overdue: not final and created before the cut-off; counted for owned
 * partitions, listed per operator (and provider) from every partition. */
START_TEST(overdue_purchases_are_counted_and_listed) {
    purchase a = make("sp1", "tx-over000001", "plan1", 100000), existing = {0};
    purchase b = make("sp2", "tx-over000002", "plan2", 200000);
    purchase d = make("sp1", "tx-over000003", "plan3", 100000);
    int64_t other;
    ck_assert_int_eq(purchase_create(db, &a, 0, &existing, &other), CREATE_OK);
    ck_assert_int_eq(purchase_create(db, &b, 0, &existing, &other), CREATE_OK);
    ck_assert_int_eq(purchase_create(db, &d, 0, &existing, &other), CREATE_OK);
    ck_assert_int_eq(store_exec(db, "UPDATE purchases SET state = 'pending'"
                                    " WHERE transid = 'tx-over000002'"),
                     SQLITE_OK);
    ck_assert_int_eq(store_exec(db, "UPDATE purchases SET state = 'completed'"
                                    " WHERE transid = 'tx-over000003'"),
                     SQLITE_OK);
    ck_assert_int_eq(purchase_count_overdue(db, 100000), 0);
    ck_assert_int_eq(purchase_count_overdue(db, 100001), 1);
    ck_assert_int_eq(purchase_count_overdue(db, 300000), 2);
    int n = 0;
    ck_assert_int_eq(purchase_find_overdue(db, "tp", NULL, 300000, 10, count_row, &n), 2);
    ck_assert_int_eq(purchase_find_overdue(db, "tp", "sp2", 300000, 10, count_row, &n), 1);
    ck_assert_int_eq(purchase_find_overdue(db, "other", NULL, 300000, 10, count_row, &n), 0);
    ck_assert_int_eq(purchase_find_overdue(db, "tp", NULL, 150000, 10, count_row, &n), 1);
    /* Another instance's partition: listed, not counted here. */
    ck_assert_int_eq(store_exec(db, "UPDATE purchases SET cl_partition = 7"), SQLITE_OK);
    ck_assert_int_eq(purchase_count_overdue(db, 300000), 0);
    ck_assert_int_eq(purchase_find_overdue(db, "tp", NULL, 300000, 10, count_row, &n), 2);
    purchase_clear(&existing);
}
END_TEST

/* What a provider sees of its own purchase, and only where the path names it. */
START_TEST(provider_status_json) {
    purchase p = make("testserviceprovider", "tx-0000000001", "plan1234", 1795888509123LL);
    p.state = PS_PENDING;
    p.updated_ms = 1795888510000LL;
    json_t *j = purchase_status_json(&p);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_str_eq(s, "{\"transid\":\"tx-0000000001\",\"status\":\"processing\","
                        "\"planId\":\"plan1234\",\"fundSource\":\"WALLET\","
                        "\"createdAt\":\"2026-11-28T17:55:09.123Z\","
                        "\"updatedAt\":\"2026-11-28T17:55:10.000Z\"}");
    free(s);
    json_decref(j);
    p.state = PS_FAILED;
    p.completed_ms = 1795888510000LL;
    strcpy(p.error_type, "PIN_ENTRY_ERROR");
    strcpy(p.error_code, "400.70.2");
    strcpy(p.redirect_link, "https://op.example/pin");
    j = purchase_status_json(&p);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "failed");
    ck_assert_str_eq(json_string_value(json_object_get(j, "errorCode")), "400.70.2");
    ck_assert_str_eq(json_string_value(json_object_get(j, "redirectLink")),
                     "https://op.example/pin");
    ck_assert_ptr_nonnull(json_object_get(j, "completedAt"));
    ck_assert_ptr_null(json_object_get(j, "subscriberId")); /* the provider named it */
    json_decref(j);

    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    sub.subscriber_id = "924542610003";
    ck_assert(purchase_status_visible(&p, "tp", &sub));
    ck_assert(!purchase_status_visible(&p, "other", &sub));
    sub.subscriber_id = "924542610006";
    ck_assert(!purchase_status_visible(&p, "tp", &sub));
    sub.subscriber_id = "924542610003";
    sub.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_OPET;
    ck_assert(!purchase_status_visible(&p, "tp", &sub));
}
END_TEST

START_TEST(lookup_json) {
    purchase p = make("testserviceprovider", "tx-0000000001", "plan1234", 1795888509123LL);
    p.state = PS_COMPLETED;
    strcpy(p.confirmation_code, "CONF-9");
    p.updated_ms = 1795888510000LL;
    p.completed_ms = 1795888510000LL;
    p.attempts = 2;
    purchase_operator_transid(p.service_provider, p.transid, p.op_transid);
    json_t *j = purchase_to_json(&p, 2);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_str_eq(s, "{\"transid\":\"tx-0000000001\",\"operatorTransId\":"
                        "\"b1384f79-70c5-8081-8b5c-cbcbfacbd855\","
                        "\"serviceProvider\":\"testserviceprovider\","
                        "\"operator\":\"tp\",\"subscriberId\":\"924542610003\",\"planId\":"
                        "\"plan1234\",\"price\":\"160.00\",\"currency\":\"PKR\",\"fundSource\":"
                        "\"WALLET\",\"state\":\"completed\",\"confirmationCode\":\"CONF-9\","
                        "\"createdAt\":\"2026-11-28T17:55:09.123Z\",\"updatedAt\":"
                        "\"2026-11-28T17:55:10.000Z\",\"completedAt\":\"2026-11-28T17:55:10.000Z\","
                        "\"attempts\":2}");
    free(s);
    json_decref(j);
    p.state = PS_FAILED;
    p.confirmation_code[0] = '\0';
    strcpy(p.error_type, "INSUFFICIENT_FUNDS");
    p.completed_ms = 0;
    p.price_minor = 1550;
    j = purchase_to_json(&p, 2);
    ck_assert_str_eq(json_string_value(json_object_get(j, "price")), "15.50");
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "failed");
    ck_assert_str_eq(json_string_value(json_object_get(j, "errorType")), "INSUFFICIENT_FUNDS");
    ck_assert_ptr_null(json_object_get(j, "confirmationCode"));
    ck_assert_ptr_null(json_object_get(j, "completedAt"));
    json_decref(j);
    j = purchase_to_json(&p, 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "price")), "1550");
    json_decref(j);
}
END_TEST

START_TEST(reopening_keeps_the_schema) {
    store_close(db);
    char err[256];
    db = purchase_store_open(path, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(scalar("PRAGMA user_version"), 11); /* migrated to the latest */
    ck_assert_int_eq(scalar("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN "
                            "('purchases_timer', 'purchases_operator_transid', 'purchases_due',"
                            " 'purchases_operator_op_transid')"),
                     4);
}
END_TEST

/* The schema of version 5 (migrations 1, 4 and 5 of purchase_store.c as
 * they were; 2 and 3 are shared), to build a store from before operator
 * transIds. */
static const char V5_PURCHASES_SQL[] =
    "CREATE TABLE purchases ("
    " service_provider TEXT NOT NULL,"
    " transid TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL,"
    " operator TEXT NOT NULL,"
    " subscriber TEXT NOT NULL,"
    " key_type TEXT NOT NULL,"
    " plan_id TEXT NOT NULL,"
    " price_minor INTEGER NOT NULL,"
    " currency TEXT NOT NULL,"
    " fund_source TEXT NOT NULL,"
    " state TEXT NOT NULL"
    "   CHECK (state IN ('received','activating','pending','completed','failed')),"
    " confirmation_code TEXT,"
    " error_type TEXT,"
    " message TEXT,"
    " http_status INTEGER,"
    " response_body TEXT,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " maybe_executed INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_ms INTEGER,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " completed_ms INTEGER,"
    " channel TEXT,"
    " language TEXT,"
    " client_name TEXT,"
    " PRIMARY KEY (service_provider, transid));"
    /* The purchase timer and subscriber look-ups. */
    "CREATE INDEX purchases_timer ON purchases (operator, subscriber, plan_id, created_ms);"
    /* Callbacks and transid look-ups. Unique: the operator de-duplicates
     * activations by transId alone, so two providers must not share one
     * at the same operator (purchase_create refuses the second). */
    "CREATE UNIQUE INDEX purchases_operator_transid ON purchases (operator, transid);"
    /* The retry thread's due query. */
    "CREATE INDEX purchases_due ON purchases (state, next_attempt_ms);";
static const char V5_CHANGELOG_SQL[] =
    "ALTER TABLE purchases ADD COLUMN cl_version INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE purchases ADD COLUMN cl_partition INTEGER NOT NULL DEFAULT -1;";
static const char V5_RECHECK_SQL[] =
    "ALTER TABLE purchases ADD COLUMN rechecks INTEGER NOT NULL DEFAULT 0;"
    "UPDATE purchases SET next_attempt_ms = 0"
    " WHERE state = 'pending' AND next_attempt_ms IS NULL;";

START_TEST(rows_from_before_keep_their_transid) {
    store_close(db);
    char cmd[512], err[256];
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm'", path, path, path);
    ck_assert_int_eq(system(cmd), 0);
    const char *const v5[] = {V5_PURCHASES_SQL, outbox_migration_sql, changelog_migration_sql,
                              V5_CHANGELOG_SQL, V5_RECHECK_SQL};
    db = store_open_path(path, v5, 5, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    /* In flight at the upgrade: sent to the operator as "old-0000000001". */
    ck_assert_int_eq(
        sqlite3_exec(db,
                     "INSERT INTO purchases (service_provider, transid, fingerprint, operator,"
                     " subscriber, key_type, plan_id, price_minor, currency, fund_source, state,"
                     " attempts, maybe_executed, next_attempt_ms, created_ms, updated_ms)"
                     " VALUES ('sp1', 'old-0000000001', 'fp', 'tp', '924542610003', 'MSISDN',"
                     " 'plan1', 100, 'PKR', 'WALLET', 'activating', 1, 1, 0, 1000, 1000)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    store_close(db);

    db = purchase_store_open(path, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(scalar("PRAGMA user_version"), 11); /* migrated to the latest */
    purchase got = {0}, existing = {0};
    ck_assert_int_eq(purchase_get(db, "sp1", "old-0000000001", &got), 1);
    ck_assert_str_eq(got.op_transid, "old-0000000001");
    /* The resumed activation re-sends the transId it was sent with. */
    ck_assert_int_eq(purchase_claim_due(db, 5000, 9000, &got), 1);
    ck_assert_str_eq(got.transid, "old-0000000001");
    char *body = activation_body(&got, "App", NULL);
    ck_assert_ptr_nonnull(strstr(body, "\"transId\":\"old-0000000001\""));
    free(body);
    /* Its callback finds it by that transId. */
    ck_assert_int_eq(purchase_get_operator_transid(db, "tp", "old-0000000001", NULL, &got), 1);
    ck_assert_str_eq(got.service_provider, "sp1");
    /* Another provider may now use the same transid. */
    int64_t other = 0;
    purchase b = make("sp2", "old-0000000001", "plan1", 2000);
    ck_assert_int_eq(purchase_create(db, &b, 0, &existing, &other), CREATE_OK);
    ck_assert_int_eq(purchase_get(db, "sp2", "old-0000000001", &got), 1);
    ck_assert_str_ne(got.op_transid, "old-0000000001");
    purchase_clear(&got);
    purchase_clear(&existing);
}
END_TEST

int main(void) {
    Suite *s = suite_create("purchase_executor_store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, fingerprints_tell_bodies_apart);
    tcase_add_test(tc, create_inserts_with_its_event);
    tcase_add_test(tc, answered_outcomes_owe_a_callback_only_when_told);
    tcase_add_test(tc, events_carry_the_purchase_request_id);
    tcase_add_test(tc, purchase_timer_window);
    tcase_add_test(tc, transitions_are_compare_and_set);
    tcase_add_test(tc, retry_claims_due_purchases);
    tcase_add_test(tc, changes_go_to_the_changelog_and_follow_ownership);
    tcase_add_test(tc, lookups_filter_and_order);
    tcase_add_test(tc, pending_rechecks_are_claimed_and_lose_to_callbacks);
    tcase_add_test(tc, overdue_purchases_are_counted_and_listed);
    tcase_add_test(tc, lookup_json);
    tcase_add_test(tc, provider_status_json);
    tcase_add_test(tc, reopening_keeps_the_schema);
    tcase_add_test(tc, rows_from_before_keep_their_transid);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
