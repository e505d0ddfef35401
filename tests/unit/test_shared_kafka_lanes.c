/* shared/plumbing/kafka.c's lanes (kafka_consumer_opts.lanes) against an
 * in-process librdkafka mock cluster:
 *
 * - 32 keys x 8 messages on 4 partitions, consumer A with 8 lanes: every
 *   key's messages reach its handler in order and always in one lane (each
 *   lane has its own argument, lane_arg); a message answered KAFKA_RETRY
 *   twice is retried in its lane and the ones behind it wait; a
 *   KAFKA_DEAD_LETTER one goes to the DLQ and counts as done.
 * - One key's handler blocks on its 4th message. The other lanes carry on:
 *   every message outside that lane is handled while it blocks (so lanes
 *   run at once). The committed offset of each partition reaches, and
 *   never passes, its lowest message not handled (the blocked one and
 *   those queued behind it in its lane).
 * - A stops while the handler still refuses (KAFKA_RETRY): nothing of the
 *   blocked lane is committed. Consumer B, same group, then handles every
 *   message A did not (at least once in all), per key in order, starting
 *   with the blocked one.
 *
 * The lane of a key is FNV-1a(key) % lanes, as kafka.c computes it: the
 * test uses it only to know which keys wait behind the blocked one.
 * Works with CK_FORK=no. Waits are bounded polls, never timings. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "shared/plumbing/kafka.h"
#include "shared/plumbing/metrics.h"
#include "tests/lib/mock_cluster.h"

#define TOPIC "lanes"
#define N_PARTS 4
#define N_KEYS 32
#define PER_KEY 8
#define N_LANES 8
#define SLOW_KEY 3
#define SLOW_SEQ 3
#define RETRY_KEY 5
#define RETRY_SEQ 2
#define POISON_KEY 9
#define POISON_SEQ 4
#define MAX_OFFSETS 1024

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* What one consumer saw. */
typedef struct {
    pthread_mutex_t mu;
    int seq[N_KEYS][PER_KEY * 2]; /* per key, the seqs in handling order */
    int n[N_KEYS];
    int lane_of_key[N_KEYS]; /* -1 until seen */
    int out_of_order;        /* a key's seq went backwards or repeated */
    int wrong_lane;          /* a key seen in two lanes */
    unsigned char handled[N_PARTS][MAX_OFFSETS];
    int total;
    int slow_offset, slow_partition; /* the blocked message, -1 unknown */
    int retry_calls;
    int block;  /* the slow message's handler blocks while set */
    int refuse; /* ... then answers KAFKA_RETRY while set */
} record;

typedef struct {
    record *r;
    int lane;
} lane_state;

static lane_state lanes_a[N_LANES], lanes_b[N_LANES];

static void record_init(record *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    for (int k = 0; k < N_KEYS; k++) r->lane_of_key[k] = -1;
    r->slow_offset = r->slow_partition = -1;
}

static void *lane_arg_a(void *arg, int lane) {
    lanes_a[lane].r = arg;
    lanes_a[lane].lane = lane;
    return &lanes_a[lane];
}

static void *lane_arg_b(void *arg, int lane) {
    lanes_b[lane].r = arg;
    lanes_b[lane].lane = lane;
    return &lanes_b[lane];
}

static kafka_verdict handler(void *arg, const rd_kafka_message_t *m, char *err, size_t errlen) {
    lane_state *ls = arg;
    record *r = ls->r;
    char v[32] = "";
    memcpy(v, m->payload, m->len < sizeof v - 1 ? m->len : sizeof v - 1);
    int key = -1, seq = -1;
    ck_assert_int_eq(sscanf(v, "k%d:%d", &key, &seq), 2);
    ck_assert(key >= 0 && key < N_KEYS && seq >= 0 && seq < PER_KEY);
    ck_assert(m->partition >= 0 && m->partition < N_PARTS && m->offset < MAX_OFFSETS);
    if (key == SLOW_KEY && seq == SLOW_SEQ) {
        pthread_mutex_lock(&r->mu);
        r->slow_offset = (int)m->offset;
        r->slow_partition = (int)m->partition;
        pthread_mutex_unlock(&r->mu);
        for (;;) {
            pthread_mutex_lock(&r->mu);
            int block = r->block, refuse = r->refuse;
            pthread_mutex_unlock(&r->mu);
            if (refuse) return KAFKA_RETRY;
            if (!block) break;
            sleep_ms(5);
        }
    }
    if (key == RETRY_KEY && seq == RETRY_SEQ) {
        pthread_mutex_lock(&r->mu);
        int calls = ++r->retry_calls;
        pthread_mutex_unlock(&r->mu);
        if (calls <= 2) {
            snprintf(err, errlen, "test: not yet");
            return KAFKA_RETRY;
        }
    }
    pthread_mutex_lock(&r->mu);
    if (r->lane_of_key[key] < 0) r->lane_of_key[key] = ls->lane;
    if (r->lane_of_key[key] != ls->lane) r->wrong_lane = 1;
    if (r->n[key] > 0 && r->seq[key][r->n[key] - 1] >= seq) r->out_of_order = 1;
    if (r->n[key] < PER_KEY * 2) r->seq[key][r->n[key]++] = seq;
    if (!r->handled[m->partition][m->offset]) r->total++;
    r->handled[m->partition][m->offset] = 1;
    pthread_mutex_unlock(&r->mu);
    if (key == POISON_KEY && seq == POISON_SEQ) {
        snprintf(err, errlen, "test: poison");
        return KAFKA_DEAD_LETTER;
    }
    return KAFKA_DONE;
}

static uint32_t fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static int lane_of(int key) {
    char k[16];
    snprintf(k, sizeof k, "k%d", key);
    return (int)(fnv1a(k) % N_LANES);
}

static kafka_consumer *consumer(record *r, kafka_producer *dlq, void *(*lane_arg)(void *, int)) {
    static const char *const topics[] = {TOPIC, NULL};
    kafka_consumer_opts o = {
        .group_id = "lanes-test",
        .client_id = "lanes-test",
        .topics = topics,
        .handler = handler,
        .handler_arg = r,
        .dlq = dlq,
        .lanes = N_LANES,
        .lane_arg = lane_arg,
    };
    char err[256];
    kafka_consumer *c = kafka_consumer_new(&o, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(kafka_consumer_start(c), 0);
    return c;
}

/* The group's committed offsets (-1: none), through a handle of its own
 * that never joins. */
static void committed(rd_kafka_t *side, int64_t out[N_PARTS]) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(N_PARTS);
    for (int p = 0; p < N_PARTS; p++) rd_kafka_topic_partition_list_add(l, TOPIC, p);
    rd_kafka_resp_err_t e = rd_kafka_committed(side, l, 10000);
    for (int p = 0; p < N_PARTS; p++) out[p] = e ? -2 : l->elems[p].err ? -2 : l->elems[p].offset;
    rd_kafka_topic_partition_list_destroy(l);
}

static rd_kafka_t *side_handle(void) {
    char e[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(
        rd_kafka_conf_set(conf, "bootstrap.servers", getenv("KAFKA_BOOTSTRAP"), e, sizeof e),
        RD_KAFKA_CONF_OK);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "group.id", "lanes-test", e, sizeof e),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    ck_assert_msg(rk != NULL, "%s", e);
    return rk;
}

static int64_t high_watermark(rd_kafka_t *side, int p) {
    int64_t lo = 0, hi = 0;
    ck_assert_int_eq(rd_kafka_query_watermark_offsets(side, TOPIC, p, &lo, &hi, 10000), 0);
    return hi;
}

static long dlq_count(void) {
    char *text = metrics_render();
    ck_assert_ptr_nonnull(text);
    const char *needle = "millom_kafka_dlq_total{topic=\"" TOPIC "\"} ";
    char *p = strstr(text, needle);
    long v = p ? strtol(p + strlen(needle), NULL, 10) : 0;
    free(text);
    return v;
}

static record ra, rb;

START_TEST(order_per_key_and_offsets_below_the_unfinished) {
    setenv("MILLOM_KAFKA_COMMIT_INTERVAL_MS", "0", 1);
    setenv("MILLOM_KAFKA_SESSION_TIMEOUT_MS", "3000", 1);
    test_mock_cluster *mock = test_mock_cluster_start(1);
    ck_assert_int_eq(test_mock_topic(mock, TOPIC, N_PARTS), 0);
    ck_assert_int_eq(test_mock_topic(mock, TOPIC ".dlq", 1), 0);
    char err[256];
    kafka_producer *p = kafka_producer_new("lanes-test", 0, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    /* Interleaved: seq 0 of every key, then seq 1, ... */
    for (int s = 0; s < PER_KEY; s++)
        for (int k = 0; k < N_KEYS; k++) {
            char key[16], val[32];
            snprintf(key, sizeof key, "k%d", k);
            snprintf(val, sizeof val, "k%d:%d", k, s);
            ck_assert_int_eq(
                kafka_produce(p, TOPIC, -1, key, strlen(key), val, strlen(val), NULL, 0), 0);
        }
    ck_assert_int_eq(kafka_producer_flush(p, 10000), 0);
    rd_kafka_t *side = side_handle();
    int64_t high[N_PARTS];
    int64_t sum = 0;
    for (int q = 0; q < N_PARTS; q++) sum += high[q] = high_watermark(side, q);
    ck_assert_int_eq(sum, N_KEYS * PER_KEY);

    /* A: the slow key's 4th message blocks. */
    record_init(&ra);
    ra.block = 1;
    ck_assert(lane_of(RETRY_KEY) != lane_of(SLOW_KEY) && lane_of(POISON_KEY) != lane_of(SLOW_KEY));
    kafka_consumer *a = consumer(&ra, p, lane_arg_a);

    /* Every key outside the slow lane is handled completely. */
    int done = 0;
    for (int i = 0; i < 600 && !done; i++) {
        done = 1;
        pthread_mutex_lock(&ra.mu);
        for (int k = 0; k < N_KEYS; k++)
            if (lane_of(k) != lane_of(SLOW_KEY) && ra.n[k] < PER_KEY) done = 0;
        int slow_known = ra.slow_offset >= 0;
        pthread_mutex_unlock(&ra.mu);
        if (!slow_known) done = 0;
        if (!done) sleep_ms(50);
    }
    ck_assert_msg(done, "the other lanes did not finish while one key's handler blocked");

    /* The commit points: each partition's lowest message not handled. */
    int64_t want[N_PARTS];
    pthread_mutex_lock(&ra.mu);
    for (int q = 0; q < N_PARTS; q++) {
        want[q] = high[q];
        for (int64_t o = 0; o < high[q]; o++)
            if (!ra.handled[q][o]) {
                want[q] = o;
                break;
            }
    }
    ck_assert_int_eq(want[ra.slow_partition], ra.slow_offset);
    pthread_mutex_unlock(&ra.mu);
    int reached = 0;
    for (int i = 0; i < 300 && !reached; i++) {
        int64_t got[N_PARTS];
        committed(side, got);
        reached = 1;
        for (int q = 0; q < N_PARTS; q++) {
            ck_assert_msg(got[q] <= want[q], "partition %d committed at %lld, beyond %lld", q,
                          (long long)got[q], (long long)want[q]);
            if (got[q] != want[q]) reached = 0;
        }
        if (!reached) sleep_ms(50);
    }
    ck_assert_msg(reached, "the committed offsets did not reach the lowest unfinished messages");

    /* A stops while the blocked message is refused: it is abandoned,
     * never committed. */
    pthread_mutex_lock(&ra.mu);
    ra.refuse = 1;
    pthread_mutex_unlock(&ra.mu);
    kafka_consumer_free(a);
    int64_t got[N_PARTS];
    committed(side, got);
    for (int q = 0; q < N_PARTS; q++)
        ck_assert_msg(got[q] <= want[q],
                      "partition %d committed at %lld after the stop, beyond %lld", q,
                      (long long)got[q], (long long)want[q]);
    ck_assert_int_eq(ra.out_of_order, 0);
    ck_assert_int_eq(ra.wrong_lane, 0);
    /* Nothing of the slow key after the message given up on. */
    ck_assert_int_eq(ra.n[SLOW_KEY], SLOW_SEQ);
    ck_assert_int_ge(ra.retry_calls, 3); /* retried in its lane, then done */

    /* B handles the rest: every message at least once in all. */
    record_init(&rb);
    kafka_consumer *b = consumer(&rb, p, lane_arg_b);
    int all = 0;
    for (int i = 0; i < 600 && !all; i++) {
        all = 1;
        pthread_mutex_lock(&ra.mu);
        pthread_mutex_lock(&rb.mu);
        for (int q = 0; q < N_PARTS; q++)
            for (int64_t o = 0; o < high[q]; o++)
                if (!ra.handled[q][o] && !rb.handled[q][o]) all = 0;
        pthread_mutex_unlock(&rb.mu);
        pthread_mutex_unlock(&ra.mu);
        if (!all) sleep_ms(50);
    }
    ck_assert_msg(all, "messages lost between the two consumers");
    kafka_consumer_free(b);
    ck_assert_int_eq(rb.out_of_order, 0);
    ck_assert_int_eq(rb.wrong_lane, 0);
    /* B started the slow key at the blocked message, and had all after it. */
    ck_assert_int_ge(rb.n[SLOW_KEY], PER_KEY - SLOW_SEQ);
    ck_assert_int_eq(rb.seq[SLOW_KEY][0], SLOW_SEQ);
    ck_assert_int_eq(rb.seq[SLOW_KEY][rb.n[SLOW_KEY] - 1], PER_KEY - 1);
    /* A key per lane everywhere; A's keys outside the slow lane complete. */
    for (int k = 0; k < N_KEYS; k++)
        if (lane_of(k) != lane_of(SLOW_KEY)) ck_assert_int_eq(ra.n[k], PER_KEY);
    ck_assert_int_ge(dlq_count(), 1);

    rd_kafka_destroy(side);
    kafka_producer_free(p);
    test_mock_cluster_stop(mock);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_kafka_lanes");
    TCase *tc = tcase_create("lanes");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, order_per_key_and_offsets_below_the_unfinished);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
