/* shared/plumbing/kafka.c's batches (kafka_consumer_opts.batch_begin)
 * against an in-process mock cluster: a backlog of two partitions comes
 * in one batch; a poison message rolls it back and it is handled again one
 * message at a time; a message that then asks to be retried is handled
 * again, and so is every message behind it in the batch, of its own
 * partition and of the other one: nothing is skipped, nothing is counted
 * from a rolled-back batch. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "shared/plumbing/kafka.h"
#include "tests/lib/mock_cluster.h"

#define TOPIC "batches"
#define PER_PART 40
#define POISON_SEQ 5 /* on partition 0: dead-lettered */
#define RETRY_SEQ 7  /* on partition 0: KAFKA_RETRY the first time on its own */

static kafka_consumer *consumer;
static pthread_mutex_t watchdog_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watchdog_cv = PTHREAD_COND_INITIALIZER;
static int watchdog_off;

static void *watchdog_main(void *arg) {
    (void)arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&watchdog_mu);
    while (!watchdog_off)
        if (pthread_cond_timedwait(&watchdog_cv, &watchdog_mu, &until) != 0) break;
    int fire = !watchdog_off;
    pthread_mutex_unlock(&watchdog_mu);
    if (fire) kafka_consumer_stop(consumer); /* an atomic flag */
    return NULL;
}

typedef struct {
    int in_batch;
    int pending[2][PER_PART]; /* handled in the open batch */
    int done[2][PER_PART];    /* handled for good (committed, or on its own) */
    int retried;
    int batches, commits, rollbacks;
} record;

static record rec;

static int all_done(const record *r) {
    for (int p = 0; p < 2; p++)
        for (int s = 0; s < PER_PART; s++)
            if (!(p == 0 && s == POISON_SEQ) && r->done[p][s] == 0) return 0;
    return 1;
}

static int seq_of(const rd_kafka_message_t *m) {
    char buf[32];
    size_t n = m->len < sizeof buf - 1 ? m->len : sizeof buf - 1;
    memcpy(buf, m->payload, n);
    buf[n] = '\0';
    const char *colon = strchr(buf, ':');
    return colon ? atoi(colon + 1) : -1;
}

static kafka_verdict handler(void *arg, const rd_kafka_message_t *m, char *err, size_t errlen) {
    record *r = arg;
    int p = m->partition, seq = seq_of(m);
    ck_assert(p == 0 || p == 1);
    ck_assert(seq >= 0 && seq < PER_PART);
    if (p == 0 && seq == POISON_SEQ) {
        snprintf(err, errlen, "poison");
        return KAFKA_DEAD_LETTER;
    }
    if (p == 0 && seq == RETRY_SEQ && !r->in_batch && !r->retried) {
        r->retried = 1;
        return KAFKA_RETRY;
    }
    if (r->in_batch) {
        r->pending[p][seq]++;
    } else {
        r->done[p][seq]++;
        if (all_done(r)) kafka_consumer_stop(consumer);
    }
    return KAFKA_DONE;
}

static int batch_begin(void *arg) {
    record *r = arg;
    memset(r->pending, 0, sizeof r->pending);
    r->in_batch = 1;
    r->batches++;
    return 0;
}

static int batch_commit(void *arg) {
    record *r = arg;
    for (int p = 0; p < 2; p++)
        for (int s = 0; s < PER_PART; s++) r->done[p][s] += r->pending[p][s];
    r->in_batch = 0;
    r->commits++;
    if (all_done(r)) kafka_consumer_stop(consumer);
    return 0;
}

static void batch_rollback(void *arg) {
    record *r = arg;
    r->in_batch = 0;
    r->rollbacks++;
}

START_TEST(a_retry_in_the_fallback_skips_nothing) {
    setenv("MILLOM_KAFKA_COMMIT_INTERVAL_MS", "0", 1);
    setenv("MILLOM_KAFKA_SESSION_TIMEOUT_MS", "3000", 1);
    setenv("MILLOM_BATCH_WAIT_MS", "1000", 1); /* the whole backlog in one batch */
    test_mock_cluster *mock = test_mock_cluster_start(1);
    ck_assert_int_eq(test_mock_topic(mock, TOPIC, 2), 0);
    ck_assert_int_eq(test_mock_topic(mock, TOPIC ".dlq", 1), 0);
    char err[256];
    kafka_producer *p = kafka_producer_new("batches-test", 0, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    for (int s = 0; s < PER_PART; s++)
        for (int part = 0; part < 2; part++) {
            char val[32];
            snprintf(val, sizeof val, "p%d:%d", part, s);
            ck_assert_int_eq(kafka_produce(p, TOPIC, part, NULL, 0, val, strlen(val), NULL, 0), 0);
        }
    ck_assert_int_eq(kafka_producer_flush(p, 10000), 0);

    static const char *const topics[] = {TOPIC, NULL};
    kafka_consumer_opts o = {
        .group_id = "batches-test",
        .client_id = "batches-test",
        .topics = topics,
        .handler = handler,
        .handler_arg = &rec,
        .dlq = p,
        .batch_begin = batch_begin,
        .batch_commit = batch_commit,
        .batch_rollback = batch_rollback,
    };
    consumer = kafka_consumer_new(&o, err, sizeof err);
    ck_assert_msg(consumer != NULL, "%s", err);
    /* The consumer runs in this thread (the handler and the test share
     * `rec` without locks); the handler stops it once everything was
     * handled, a watchdog after 30 s if that never happens. */
    pthread_t watchdog;
    ck_assert_int_eq(pthread_create(&watchdog, NULL, watchdog_main, NULL), 0);
    kafka_consumer_run(consumer);
    pthread_mutex_lock(&watchdog_mu);
    watchdog_off = 1;
    pthread_cond_signal(&watchdog_cv);
    pthread_mutex_unlock(&watchdog_mu);
    pthread_join(watchdog, NULL);
    kafka_consumer_free(consumer);
    ck_assert_msg(all_done(&rec), "a message was skipped after the retry");
    ck_assert_int_eq(rec.retried, 1);
    ck_assert_int_ge(rec.rollbacks, 1); /* the poison rolled a batch back */
    /* Before the retried message nothing was handled twice: the rolled-back
     * batch counted nothing. */
    for (int s = 0; s < RETRY_SEQ; s++)
        if (s != POISON_SEQ) ck_assert_int_eq(rec.done[0][s], 1);
    ck_assert_int_eq(rec.done[0][POISON_SEQ], 0);
    kafka_producer_free(p);
    test_mock_cluster_stop(mock);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_kafka_batches");
    TCase *tc = tcase_create("batches");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_retry_in_the_fallback_skips_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
