/* devbroker answers a waiting fetch as soon as records arrive
 * (services/devbroker/fetch_wait.c). A mock cluster runs in this process,
 * as in devbroker; a plain TCP client speaks the Kafka protocol to it
 * (Fetch v4, Metadata v0) and a librdkafka producer appends records.
 * The first case shows the mock's own way (a fetch waits out its MaxWait
 * although records arrived), so the others can fail. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "services/devbroker/devbroker.h"
#include "shared/plumbing/topics.h"

#define LONG_WAIT_MS 20000 /* far longer than any case waits for an answer */

typedef struct {
    uint8_t b[512];
    size_t len;
} frame_writer;

static void put(frame_writer *w, uint64_t v, size_t width) {
    for (size_t i = 0; i < width; i++) w->b[w->len++] = (uint8_t)(v >> (8 * (width - 1 - i)));
}
static void put_str(frame_writer *w, const char *s) {
    put(w, strlen(s), 2);
    memcpy(w->b + w->len, s, strlen(s));
    w->len += strlen(s);
}
static void begin(frame_writer *w, int api_key, int version, int32_t corrid) {
    w->len = 0;
    put(w, 0, 4); /* size, set by send_frame */
    put(w, (uint64_t)api_key, 2);
    put(w, (uint64_t)version, 2);
    put(w, (uint32_t)corrid, 4);
    put_str(w, "fetch-wait-test");
}
/* Writes the frame's size field; the frame is then ready to send. */
static void finish(frame_writer *w) {
    uint32_t size = htonl((uint32_t)(w->len - 4));
    memcpy(w->b, &size, 4);
}
static void send_frame(int fd, frame_writer *w) {
    finish(w);
    ck_assert_int_eq(send(fd, w->b, w->len, 0), (ssize_t)w->len);
}

static void send_fetch(int fd, int32_t corrid, const char *topic, int partition, int64_t offset,
                       int max_wait_ms) {
    frame_writer w;
    begin(&w, 1, 4, corrid);
    put(&w, 0xffffffffu, 4); /* ReplicaId -1 */
    put(&w, (uint32_t)max_wait_ms, 4);
    put(&w, 1, 4);       /* MinBytes */
    put(&w, 1 << 20, 4); /* MaxBytes */
    put(&w, 0, 1);       /* IsolationLevel */
    put(&w, 1, 4);       /* one topic */
    put_str(&w, topic);
    put(&w, 1, 4); /* one partition */
    put(&w, (uint32_t)partition, 4);
    put(&w, (uint64_t)offset, 8);
    put(&w, 1 << 20, 4);
    send_frame(fd, &w);
}

static void send_metadata(int fd, int32_t corrid) {
    frame_writer w;
    begin(&w, 3, 0, corrid);
    put(&w, 0, 4); /* no topics named: all of them */
    send_frame(fd, &w);
}

static int connect_to(const devbroker *b) {
    int port = 0;
    ck_assert_int_eq(sscanf(devbroker_bootstraps(b), "127.0.0.1:%d", &port), 1);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    return s;
}

/* Reads exactly n bytes, or returns -1 when none came within timeout_ms. */
static int read_exactly(int fd, uint8_t *p, size_t n, int timeout_ms) {
    size_t got = 0;
    while (got < n) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, timeout_ms) <= 0) return -1;
        ssize_t r = recv(fd, p + got, n - got, 0);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

typedef struct {
    int32_t corrid;
    int16_t error;
    int64_t high_watermark;
    int32_t records_size;
    uint8_t body[4096];
    size_t len;
} answer;

static uint64_t get(const uint8_t *p, size_t width) {
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++) v = v << 8 | p[i];
    return v;
}

/* The next answer on fd within timeout_ms; false if none came. */
static bool read_answer(int fd, answer *a, int timeout_ms) {
    uint8_t head[8];
    if (read_exactly(fd, head, 8, timeout_ms)) return false;
    uint32_t size = (uint32_t)get(head, 4);
    ck_assert_uint_ge(size, 4);
    a->len = size - 4;
    ck_assert_uint_le(a->len, sizeof a->body);
    a->corrid = (int32_t)get(head + 4, 4);
    ck_assert_int_eq(read_exactly(fd, a->body, a->len, 5000), 0);
    return true;
}

/* A Fetch v4 answer for one partition: its error, watermark and records. */
static void parse_fetch(answer *a, const char *topic) {
    const uint8_t *p = a->body + 4; /* ThrottleTime */
    ck_assert_uint_eq(get(p, 4), 1);
    p += 4;
    size_t name_len = get(p, 2);
    ck_assert_uint_eq(name_len, strlen(topic));
    ck_assert(memcmp(p + 2, topic, name_len) == 0);
    p += 2 + name_len;
    ck_assert_uint_eq(get(p, 4), 1); /* one partition */
    p += 8;                          /* and its number */
    a->error = (int16_t)get(p, 2);
    a->high_watermark = (int64_t)get(p + 2, 8);
    p += 2 + 8 + 8; /* ErrorCode, HighWatermark, LastStableOffset */
    int32_t aborted = (int32_t)get(p, 4);
    p += 4 + (aborted > 0 ? (size_t)aborted * 16 : 0);
    a->records_size = (int32_t)get(p, 4);
}

static bool no_answer_within(int fd, int ms) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, ms) == 0;
}

static rd_kafka_t *producer_to(const devbroker *b) {
    char e[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(
        rd_kafka_conf_set(conf, "bootstrap.servers", devbroker_bootstraps(b), e, sizeof e),
        RD_KAFKA_CONF_OK);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "linger.ms", "0", e, sizeof e), RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    ck_assert_msg(rk != NULL, "%s", e);
    return rk;
}

static void produce_one(rd_kafka_t *rk, const char *topic, int partition) {
    ck_assert_int_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_VALUE("record", 6), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* A new connection to b with a fetch of topic's partition from offset 0
 * that finds nothing, so is held. */
static int held_fetch(const devbroker *b, int32_t corrid, const char *topic, int partition) {
    int fd = connect_to(b);
    send_fetch(fd, corrid, topic, partition, 0, LONG_WAIT_MS);
    ck_assert_msg(no_answer_within(fd, 200), "an empty fetch was answered at once");
    return fd;
}

static devbroker *start_broker(void) {
    setenv("MILLOM_LOG_LEVEL", "error", 1);
    char err[256];
    devbroker *b = devbroker_new(1, 2, 8, err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    return b;
}

START_TEST(mock_waits_out_maxwait_then_answers_when_records_arrive) {
    const char *topic = millom_topics[0].name;
    devbroker *b = start_broker();
    rd_kafka_t *rk = producer_to(b);

    /* The mock's own way: a connection accepted before the switch. */
    int before = connect_to(b);
    send_fetch(before, 7, topic, 1, 0, 3000);
    ck_assert(no_answer_within(before, 300));
    produce_one(rk, topic, 1);
    ck_assert_msg(no_answer_within(before, 1000), "the mock answered a waiting fetch early");
    answer a;
    ck_assert(read_answer(before, &a, 10000)); /* at the end of its 3 s */
    ck_assert_int_eq(a.corrid, 7);

    /* From the switch on, connections accepted (the producer's too: its
     * Produce answers are what wake a fetch) are followed. */
    devbroker_answer_fetches_early();
    rd_kafka_t *rk_after = producer_to(b);
    int after = connect_to(b);
    send_fetch(after, 8, topic, 0, 0, LONG_WAIT_MS);
    ck_assert(no_answer_within(after, 300)); /* nothing to answer with: held */
    produce_one(rk_after, topic, 0);
    ck_assert_msg(read_answer(after, &a, 10000),
                  "a waiting fetch was not answered when records arrived");
    ck_assert_int_eq(a.corrid, 8);
    parse_fetch(&a, topic);
    ck_assert_int_eq(a.error, 0);
    /* With the record: the mock read the fetch again instead of the empty
     * answer going out, so the client needs no second fetch. */
    ck_assert_int_eq(a.high_watermark, 1);
    ck_assert_int_gt(a.records_size, 0);
    ck_assert(no_answer_within(after, 300)); /* one answer for one request */

    /* The connection reads on as before: a fetch past the record waits. */
    send_fetch(after, 9, topic, 0, 1, LONG_WAIT_MS);
    ck_assert(no_answer_within(after, 300));
    produce_one(rk_after, topic, 0);
    ck_assert(read_answer(after, &a, 10000));
    ck_assert_int_eq(a.corrid, 9);
    parse_fetch(&a, topic);
    ck_assert_int_eq(a.error, 0);
    ck_assert_int_eq(a.high_watermark, 2);
    ck_assert_int_gt(a.records_size, 0);

    close(before);
    close(after);
    rd_kafka_destroy(rk_after);
    rd_kafka_destroy(rk);
    devbroker_free(b);
}
END_TEST

START_TEST(an_empty_fetch_is_answered_when_its_wait_ends) {
    const char *topic = millom_topics[0].name;
    devbroker_answer_fetches_early();
    devbroker *b = start_broker();
    int fd = connect_to(b);
    send_fetch(fd, 21, topic, 1, 0, 600);
    ck_assert_msg(no_answer_within(fd, 200), "an empty fetch was answered before its wait");
    answer a;
    ck_assert(read_answer(fd, &a, 10000));
    ck_assert_int_eq(a.corrid, 21);
    parse_fetch(&a, topic);
    ck_assert_int_eq(a.error, 0);
    ck_assert_int_le(a.records_size, 0);

    /* A fetch that does not wait is answered at once, as by the mock. */
    send_fetch(fd, 22, topic, 1, 0, 0);
    ck_assert(read_answer(fd, &a, 10000));
    ck_assert_int_eq(a.corrid, 22);
    close(fd);
    devbroker_free(b);
}
END_TEST

START_TEST(records_on_another_partition_do_not_answer_it) {
    const char *topic = millom_topics[0].name;
    devbroker_answer_fetches_early();
    devbroker *b = start_broker();
    rd_kafka_t *rk = producer_to(b);
    int fd = held_fetch(b, 31, topic, 1);
    produce_one(rk, topic, 0);
    produce_one(rk, millom_topics[1].name, 1);
    ck_assert_msg(no_answer_within(fd, 500), "records elsewhere answered the fetch");
    /* Closing a connection with a held answer drops it. */
    close(fd);
    rd_kafka_destroy(rk);
    devbroker_free(b);
}
END_TEST

START_TEST(answers_keep_their_order) {
    const char *topic = millom_topics[0].name;
    devbroker_answer_fetches_early();
    devbroker *b = start_broker();
    int fd = held_fetch(b, 41, topic, 0);
    send_metadata(fd, 42);
    answer a;
    ck_assert_msg(read_answer(fd, &a, 10000), "the answer after a held fetch did not come");
    ck_assert_int_eq(a.corrid, 41); /* the held fetch goes first */
    ck_assert(read_answer(fd, &a, 10000));
    ck_assert_int_eq(a.corrid, 42);
    close(fd);
    devbroker_free(b);
}
END_TEST

/* A request half read after the held fetch: reading the fetch again would
 * put it in the middle of that one, so the fetch is answered empty, first,
 * and the client finds the records with its next fetch. */
START_TEST(a_fetch_held_behind_a_half_read_request_is_answered_empty) {
    const char *topic = millom_topics[0].name;
    devbroker_answer_fetches_early();
    devbroker *b = start_broker();
    rd_kafka_t *rk = producer_to(b);
    int fd = held_fetch(b, 51, topic, 1);

    frame_writer w;
    begin(&w, 3, 0, 52); /* Metadata v0, sent in two parts */
    put(&w, 0, 4);
    finish(&w);
    size_t first = 10;
    ck_assert_int_eq(send(fd, w.b, first, 0), (ssize_t)first);
    ck_assert(no_answer_within(fd, 300)); /* the mock has read the first part */

    produce_one(rk, topic, 1);
    answer a;
    ck_assert_msg(read_answer(fd, &a, 10000), "the held fetch was not answered");
    ck_assert_int_eq(a.corrid, 51);
    parse_fetch(&a, topic);
    ck_assert_int_eq(a.error, 0);
    ck_assert_int_le(a.records_size, 0);

    ck_assert_int_eq(send(fd, w.b + first, w.len - first, 0), (ssize_t)(w.len - first));
    ck_assert(read_answer(fd, &a, 10000));
    ck_assert_int_eq(a.corrid, 52);

    send_fetch(fd, 53, topic, 1, 0, LONG_WAIT_MS);
    ck_assert(read_answer(fd, &a, 10000));
    ck_assert_int_eq(a.corrid, 53);
    parse_fetch(&a, topic);
    ck_assert_int_eq(a.high_watermark, 1);
    ck_assert_int_gt(a.records_size, 0);
    close(fd);
    rd_kafka_destroy(rk);
    devbroker_free(b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("devbroker fetch wait");
    TCase *tc = tcase_create("fetch");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mock_waits_out_maxwait_then_answers_when_records_arrive);
    tcase_add_test(tc, an_empty_fetch_is_answered_when_its_wait_ends);
    tcase_add_test(tc, records_on_another_partition_do_not_answer_it);
    tcase_add_test(tc, answers_keep_their_order);
    tcase_add_test(tc, a_fetch_held_behind_a_half_read_request_is_answered_empty);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
