/* shared/patterns/outbox.c against an in-process librdkafka mock cluster and a real
 * SQLite file: a rolled-back outbox_add publishes nothing; committed rows
 * are relayed in id order and deleted only once the broker acknowledged
 * them; rows whose delivery was not confirmed at stop go out again with
 * the next relay (at least once, never lost). Works with CK_FORK=no. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "shared/plumbing/kafka.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/outbox.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"
#include "tests/lib/mock_cluster.h"

static test_mock_cluster *mock;
static kafka_producer *producer;
static sqlite3 *db;
static char dir[64], db_path[128], topic[64];
static int topic_seq;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#define WAIT_UNTIL(cond, timeout_ms)                       \
    ({                                                     \
        int64_t until_ = mono_ms() + (timeout_ms);         \
        while (!(cond) && mono_ms() < until_) sleep_ms(5); \
        (cond);                                            \
    })

static const char *const things_sql = "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)";

static void setup(void) {
    setenv("MILLOM_LOG_LEVEL", getenv("TEST_LOG_LEVEL") ? getenv("TEST_LOG_LEVEL") : "error", 1);
    log_init("test_shared_outbox");
    char err[512];
    if (!mock) mock = test_mock_cluster_start(1);
    snprintf(topic, sizeof topic, "test.outbox.%d", ++topic_seq);
    ck_assert_int_eq(test_mock_topic(mock, topic, 1), 0);
    producer = kafka_producer_new("test-outbox", 0, err, sizeof err);
    ck_assert_msg(producer != NULL, "producer: %s", err);

    snprintf(dir, sizeof dir, "/tmp/millom-outbox-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/svc.db", dir);
    const char *m[] = {things_sql, outbox_migration_sql, outbox_correlator_migration_sql};
    db = store_open_path(db_path, m, sizeof m / sizeof m[0], err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
}

static void teardown(void) {
    store_close(db);
    kafka_producer_free(producer);
    producer = NULL;
    rd_kafka_mock_broker_set_rtt(mock->mock, 1, 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static long outbox_rows(void) {
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM outbox", -1, &st, NULL),
                     SQLITE_OK);
    long n = -1;
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void add_event(const char *key, const char *value) {
    ck_assert_int_eq(outbox_add(db, topic, key, strlen(key), value, strlen(value)), SQLITE_OK);
}

/* A plain consumer assigned to partition 0 of the test topic. */
static rd_kafka_t *reader(void) {
    char err[512], group[64];
    snprintf(group, sizeof group, "outbox-reader-%ld-%d", (long)getpid(), topic_seq);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(kafka_conf_common(conf, "outbox-reader", err, sizeof err), 0);
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_msg(rk != NULL, "%s", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

/* Reads up to max values (as "key=value") for at most timeout_ms. */
static int read_values(rd_kafka_t *rk, char out[][64], int max, int timeout_ms) {
    int n = 0;
    int64_t until = mono_ms() + timeout_ms;
    while (n < max && mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 20);
        if (!m) continue;
        if (!m->err)
            snprintf(out[n++], 64, "%.*s=%.*s", (int)m->key_len, (const char *)m->key, (int)m->len,
                     (const char *)m->payload);
        rd_kafka_message_destroy(m);
    }
    return n;
}

static void close_reader(rd_kafka_t *rk) {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* An event goes out with the request id (x-correlator header) of the
 * thread that wrote it, or an explicit one; without one, with none. And a
 * consumer handler runs with the id of its message as the current one. */
START_TEST(events_carry_their_request_id) {
    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    correlator_set("req-1.a:b");
    add_event("k", "with");
    correlator_clear();
    add_event("k", "without");
    ck_assert_int_eq(outbox_add_correlated(db, "explicit_2", topic, "k", 1, "given", 5), SQLITE_OK);
    ck_assert_int_eq(store_commit(db), SQLITE_OK);
    outbox_relay *r = outbox_relay_start(db_path, producer);
    ck_assert_ptr_nonnull(r);
    outbox_relay_notify(r);
    rd_kafka_t *rk = reader();
    const char *want[][2] = {{"with", "req-1.a:b"}, {"without", NULL}, {"given", "explicit_2"}};
    int n = 0;
    int64_t until = mono_ms() + 10000;
    while (n < 3 && mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 20);
        if (!m) continue;
        if (!m->err) {
            ck_assert_int_eq((int)m->len, (int)strlen(want[n][0]));
            ck_assert_int_eq(memcmp(m->payload, want[n][0], m->len), 0);
            rd_kafka_headers_t *h = NULL;
            const void *v = NULL;
            size_t len = 0;
            int has = rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                      rd_kafka_header_get_last(h, CORRELATOR_HEADER, &v, &len) ==
                          RD_KAFKA_RESP_ERR_NO_ERROR;
            if (want[n][1]) {
                ck_assert_msg(has, "%s: no x-correlator header", want[n][0]);
                ck_assert_int_eq((int)len, (int)strlen(want[n][1]));
                ck_assert_int_eq(memcmp(v, want[n][1], len), 0);
                /* What a consumer does with it. */
                ck_assert_int_eq(kafka_take_correlator(m, 1), 1);
                ck_assert_str_eq(correlator_current(), want[n][1]);
            } else {
                ck_assert_msg(!has, "%s: an x-correlator header", want[n][0]);
                ck_assert_int_eq(kafka_take_correlator(m, 0), 0);
                ck_assert_str_eq(correlator_current(), "");
                ck_assert_int_eq(kafka_take_correlator(m, 1), 0); /* a fresh one */
                ck_assert_int_eq(strlen(correlator_current()), 36);
            }
            correlator_clear();
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    ck_assert_int_eq(n, 3);
    outbox_relay_stop(r);
    close_reader(rk);
}
END_TEST

START_TEST(rolled_back_rows_are_never_published) {
    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    ck_assert_int_eq(store_exec(db, "INSERT INTO things (name) VALUES ('x')"), SQLITE_OK);
    add_event("k", "rolled-back");
    store_rollback(db);
    ck_assert_int_eq(outbox_rows(), 0);

    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    add_event("k", "committed");
    ck_assert_int_eq(store_commit(db), SQLITE_OK);

    outbox_relay *r = outbox_relay_start(db_path, producer);
    ck_assert_ptr_nonnull(r);
    outbox_relay_notify(r);
    rd_kafka_t *rk = reader();
    char got[4][64];
    ck_assert_int_eq(read_values(rk, got, 1, 10000), 1);
    ck_assert_str_eq(got[0], "k=committed");
    /* Nothing else arrives: the rolled-back event never existed. */
    ck_assert_int_eq(read_values(rk, got, 1, 300), 0);
    ck_assert(WAIT_UNTIL(outbox_rows() == 0, 5000));
    outbox_relay_stop(r);
    close_reader(rk);
}
END_TEST

START_TEST(committed_rows_relay_in_order) {
    enum { N = 1200 }; /* more than one batch of 128 */
    outbox_relay *r = outbox_relay_start(db_path, producer);
    ck_assert_ptr_nonnull(r);
    char v[32];
    for (int t = 0; t < 3; t++) { /* three transactions */
        ck_assert_int_eq(store_begin(db), SQLITE_OK);
        for (int i = t * N / 3; i < (t + 1) * N / 3; i++) {
            snprintf(v, sizeof v, "e%04d", i);
            add_event("sub1", v);
        }
        ck_assert_int_eq(store_commit(db), SQLITE_OK);
        outbox_relay_notify(r);
    }
    rd_kafka_t *rk = reader();
    static char got[N + 1][64];
    int n = read_values(rk, got, N, 15000);
    ck_assert_int_eq(n, N);
    ck_assert_int_eq(read_values(rk, got + N, 1, 200), 0); /* exactly once here */
    for (int i = 0; i < N; i++) {
        snprintf(v, sizeof v, "sub1=e%04d", i);
        ck_assert_str_eq(got[i], v);
    }
    ck_assert(WAIT_UNTIL(outbox_rows() == 0, 5000));
    ck_assert(WAIT_UNTIL(outbox_relay_depth(r) == 0, 1000));
    outbox_relay_stop(r);
    close_reader(rk);
}
END_TEST

START_TEST(rows_are_deleted_only_after_delivery) {
    outbox_relay *r = outbox_relay_start(db_path, producer);
    ck_assert_ptr_nonnull(r);
    rd_kafka_t *rk = reader();
    char got[4][64];
    /* The first event warms up the producer's connection. */
    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    add_event("k", "warm");
    ck_assert_int_eq(store_commit(db), SQLITE_OK);
    outbox_relay_notify(r);
    ck_assert_int_eq(read_values(rk, got, 1, 10000), 1);
    ck_assert(WAIT_UNTIL(outbox_rows() == 0, 5000));

    /* Slow acknowledgements: the row stays while its delivery is pending. */
    rd_kafka_mock_broker_set_rtt(mock->mock, 1, 1500);
    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    add_event("k", "slow");
    ck_assert_int_eq(store_commit(db), SQLITE_OK);
    outbox_relay_notify(r);
    sleep_ms(600);
    ck_assert_int_eq(outbox_rows(), 1);
    ck_assert(WAIT_UNTIL(outbox_rows() == 0, 10000));
    rd_kafka_mock_broker_set_rtt(mock->mock, 1, 0);
    ck_assert_int_eq(read_values(rk, got, 1, 10000), 1);
    ck_assert_str_eq(got[0], "k=slow");
    outbox_relay_stop(r);
    close_reader(rk);
}
END_TEST

START_TEST(unconfirmed_rows_go_out_again_after_restart) {
    setenv("MILLOM_OUTBOX_STOP_WAIT_MS", "100", 1);
    outbox_relay *r = outbox_relay_start(db_path, producer);
    ck_assert_ptr_nonnull(r);
    rd_kafka_t *rk = reader();
    char got[4][64];
    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    add_event("k", "warm");
    ck_assert_int_eq(store_commit(db), SQLITE_OK);
    outbox_relay_notify(r);
    ck_assert_int_eq(read_values(rk, got, 1, 10000), 1);
    ck_assert(WAIT_UNTIL(outbox_rows() == 0, 5000));

    /* Produced, but the relay stops before the acknowledgement: like a
     * crash between produce and delete, the row survives. */
    rd_kafka_mock_broker_set_rtt(mock->mock, 1, 2000);
    ck_assert_int_eq(store_begin(db), SQLITE_OK);
    add_event("k", "unconfirmed");
    ck_assert_int_eq(store_commit(db), SQLITE_OK);
    outbox_relay_notify(r);
    sleep_ms(300);
    outbox_relay_stop(r);
    unsetenv("MILLOM_OUTBOX_STOP_WAIT_MS");
    ck_assert_int_eq(outbox_rows(), 1);
    rd_kafka_mock_broker_set_rtt(mock->mock, 1, 0);

    /* The next relay sends it again: at least once, never lost. */
    r = outbox_relay_start(db_path, producer);
    ck_assert_ptr_nonnull(r);
    ck_assert(WAIT_UNTIL(outbox_rows() == 0, 10000));
    int n = read_values(rk, got, 2, 10000);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(got[0], "k=unconfirmed");
    ck_assert_str_eq(got[1], "k=unconfirmed");
    outbox_relay_stop(r);
    close_reader(rk);
}
END_TEST

START_TEST(start_refuses_a_file_without_outbox) {
    char path[160];
    snprintf(path, sizeof path, "%s/none.db", dir);
    const char *m[] = {things_sql};
    char err[256];
    sqlite3 *other = store_open_path(path, m, 1, err, sizeof err);
    ck_assert_ptr_nonnull(other);
    ck_assert_ptr_null(outbox_relay_start(path, producer));
    store_close(other);
    snprintf(path, sizeof path, "%s/missing/x.db", dir);
    ck_assert_ptr_null(outbox_relay_start(path, producer));
    /* NULL relays are no-ops. */
    outbox_relay_notify(NULL);
    ck_assert_int_eq(outbox_relay_depth(NULL), 0);
    outbox_relay_stop(NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("outbox");
    TCase *tc = tcase_create("relay");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rolled_back_rows_are_never_published);
    tcase_add_test(tc, events_carry_their_request_id);
    tcase_add_test(tc, committed_rows_relay_in_order);
    tcase_add_test(tc, rows_are_deleted_only_after_delivery);
    tcase_add_test(tc, unconfirmed_rows_go_out_again_after_restart);
    tcase_add_test(tc, start_refuses_a_file_without_outbox);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    test_mock_cluster_stop(mock);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
