/* shared/plumbing/kafka.c and shared/patterns/rpc.c against an in-process librdkafka mock
 * cluster: group consumption with commits, dead-lettering, request/reply,
 * timeouts and reply-partition isolation. Works with CK_FORK=no. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "millom/v1/query.pb-c.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/service.h"
#include "tests/lib/mock_cluster.h"

/* ------------------------------------------------------------- fixture */

/* One mock cluster per process (destroying one costs up to a second), and
 * fresh topics per test so tests never see each other's messages. In fork
 * mode each test's child process makes its own cluster. */
static test_mock_cluster *mock;
static kafka_producer *producer;
static int group_seq, topic_seq;
static char events_topic[64], dlq_topic[64], requests_topic[64];

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls `cond` every 5 ms for up to timeout_ms; returns its last value. */
#define WAIT_UNTIL(cond, timeout_ms)                       \
    ({                                                     \
        int64_t until_ = mono_ms() + (timeout_ms);         \
        while (!(cond) && mono_ms() < until_) sleep_ms(5); \
        (cond);                                            \
    })

static void group_name(char *buf, size_t len, const char *what) {
    snprintf(buf, len, "test-%s-%ld-%d", what, (long)getpid(), ++group_seq);
}

static void setup(void) {
    setenv("MILLOM_LOG_LEVEL", getenv("TEST_LOG_LEVEL") ? getenv("TEST_LOG_LEVEL") : "error", 1);
    log_init("test_rpc");
    /* The mock coordinator keeps a group its last member left in "Joining"
     * for session.timeout.ms - 1 s, and holds a first JoinGroup for 3 s
     * (so the session timeout must exceed that): keep restarts short. */
    setenv("MILLOM_KAFKA_SESSION_TIMEOUT_MS", "4000", 1);
    char err[512];
    if (!mock) {
        mock = test_mock_cluster_start(1);
        ck_assert_int_eq(test_mock_topic(mock, TOPIC_REPLIES, 8), 0);
    }
    topic_seq++;
    snprintf(events_topic, sizeof events_topic, "test.events.%d", topic_seq);
    snprintf(dlq_topic, sizeof dlq_topic, "test.events.%d.dlq", topic_seq);
    snprintf(requests_topic, sizeof requests_topic, "test.requests.%d", topic_seq);
    ck_assert_int_eq(test_mock_topic(mock, events_topic, 2), 0);
    ck_assert_int_eq(test_mock_topic(mock, dlq_topic, 1), 0);
    ck_assert_int_eq(test_mock_topic(mock, requests_topic, 2), 0);
    producer = kafka_producer_new("test-producer", 0, err, sizeof err);
    ck_assert_msg(producer != NULL, "producer: %s", err);
}

static void teardown(void) {
    kafka_producer_free(producer);
    producer = NULL;
}

static void destroy_cluster(void) {
    test_mock_cluster_stop(mock);
    mock = NULL;
}

static kafka_consumer *consumer(const char *group, const char *topic, kafka_handler_fn fn,
                                void *arg) {
    const char *topics[] = {topic, NULL};
    kafka_consumer_opts o = {
        .group_id = group,
        .client_id = group,
        .topics = topics,
        .handler = fn,
        .handler_arg = arg,
        .dlq = producer,
        .poll_timeout_ms = 20,
    };
    char err[512];
    kafka_consumer *c = kafka_consumer_new(&o, err, sizeof err);
    ck_assert_msg(c != NULL, "consumer: %s", err);
    ck_assert_int_eq(kafka_consumer_start(c), 0);
    return c;
}

static void produce_str(const char *topic, const char *key, const char *value) {
    ck_assert_int_eq(
        kafka_produce(producer, topic, -1, key, strlen(key), value, strlen(value), NULL, 0), 0);
}

/* ---------------------------------------------- recorded consumption */

#define MAX_SEEN 64

typedef struct {
    pthread_mutex_t mu;
    char values[MAX_SEEN][64];
    char errors[MAX_SEEN][128];      /* "error" header, if any */
    char source_topic[MAX_SEEN][64]; /* "source.topic" header, if any */
    atomic_int n;
    const char *reject; /* value to dead-letter */
    const char *flaky;  /* value to retry once */
    atomic_int flaky_attempts;
} seen_t;

static void seen_init(seen_t *s, const char *reject, const char *flaky) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->reject = reject;
    s->flaky = flaky;
}

static void header_str(const rd_kafka_message_t *m, const char *name, char *out, size_t len) {
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t vlen = 0;
    out[0] = '\0';
    if (rd_kafka_message_headers(m, &h) || !h) return;
    if (rd_kafka_header_get_last(h, name, &v, &vlen) || !v) return;
    snprintf(out, len, "%.*s", (int)vlen, (const char *)v);
}

static kafka_verdict record(void *arg, const rd_kafka_message_t *m, char *err, size_t errlen) {
    seen_t *s = arg;
    char value[64];
    snprintf(value, sizeof value, "%.*s", (int)m->len, (const char *)m->payload);
    if (s->reject && strcmp(value, s->reject) == 0) {
        snprintf(err, errlen, "cannot decode %s", value);
        return KAFKA_DEAD_LETTER;
    }
    if (s->flaky && strcmp(value, s->flaky) == 0 && atomic_fetch_add(&s->flaky_attempts, 1) == 0)
        return KAFKA_RETRY;
    pthread_mutex_lock(&s->mu);
    int i = atomic_load(&s->n);
    if (i < MAX_SEEN) {
        strcpy(s->values[i], value);
        header_str(m, "error", s->errors[i], sizeof s->errors[i]);
        header_str(m, "source.topic", s->source_topic[i], sizeof s->source_topic[i]);
        atomic_store(&s->n, i + 1);
    }
    pthread_mutex_unlock(&s->mu);
    return KAFKA_DONE;
}

static int seen_has(seen_t *s, const char *value) {
    int found = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < atomic_load(&s->n); i++)
        if (strcmp(s->values[i], value) == 0) found++;
    pthread_mutex_unlock(&s->mu);
    return found;
}

/* (a) everything produced is consumed once; a restarted member of the same
 * group starts after what was committed. */
START_TEST(test_consume_commit_restart) {
    enum { N = 20 };
    char group[64], v[32], k[32];
    group_name(group, sizeof group, "commit");
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key%d", i % 5);
        snprintf(v, sizeof v, "m%d", i);
        produce_str(events_topic, k, v);
    }
    ck_assert_int_eq(kafka_producer_flush(producer, 5000), 0);

    seen_t s;
    seen_init(&s, NULL, NULL);
    kafka_consumer *c = consumer(group, events_topic, record, &s);
    ck_assert_msg(WAIT_UNTIL(atomic_load(&s.n) >= N, 10000), "consumed %d of %d", atomic_load(&s.n),
                  N);
    ck_assert(kafka_consumer_ready(c));
    for (int i = 0; i < N; i++) {
        snprintf(v, sizeof v, "m%d", i);
        ck_assert_int_eq(seen_has(&s, v), 1);
    }
    kafka_consumer_free(c);

    /* Same group again: only what was produced after the commits shows up. */
    seen_t s2;
    seen_init(&s2, NULL, NULL);
    produce_str(events_topic, "key0", "marker");
    c = consumer(group, events_topic, record, &s2);
    ck_assert_msg(WAIT_UNTIL(seen_has(&s2, "marker"), 10000), "marker not consumed");
    sleep_ms(100);
    ck_assert_int_eq(atomic_load(&s2.n), 1);
    kafka_consumer_free(c);
}
END_TEST

/* (b) a rejected message lands on <topic>.dlq with its error, and the
 * partition keeps flowing; a message whose handler asks for a retry is
 * redelivered, in order. */
START_TEST(test_dead_letter) {
    char group[64], dlq_group[64];
    group_name(group, sizeof group, "dlq");
    group_name(dlq_group, sizeof dlq_group, "dlqread");
    /* One key, so one partition, so this order. */
    produce_str(events_topic, "k", "ok1");
    produce_str(events_topic, "k", "flaky");
    produce_str(events_topic, "k", "bad");
    produce_str(events_topic, "k", "ok2");

    /* Both groups join at once (each first join costs the mock 3 s). */
    seen_t s, d;
    seen_init(&s, "bad", "flaky");
    seen_init(&d, NULL, NULL);
    kafka_consumer *c = consumer(group, events_topic, record, &s);
    kafka_consumer *dc = consumer(dlq_group, dlq_topic, record, &d);
    ck_assert_msg(WAIT_UNTIL(seen_has(&s, "ok2"), 10000), "consumer stopped at the bad message");
    ck_assert_int_eq(atomic_load(&s.n), 3);
    ck_assert_str_eq(s.values[0], "ok1");
    ck_assert_str_eq(s.values[1], "flaky");
    ck_assert_str_eq(s.values[2], "ok2");
    ck_assert_int_eq(atomic_load(&s.flaky_attempts), 2);

    ck_assert_msg(WAIT_UNTIL(atomic_load(&d.n) >= 1, 10000), "nothing on %s", dlq_topic);
    sleep_ms(100);
    ck_assert_int_eq(atomic_load(&d.n), 1);
    ck_assert_str_eq(d.values[0], "bad");
    ck_assert_str_eq(d.errors[0], "cannot decode bad");
    ck_assert_str_eq(d.source_topic[0], events_topic);
    char labels[128];
    snprintf(labels, sizeof labels, "topic=\"%s\"", events_topic);
    ck_assert_int_eq(metric_value(metric_counter("millom_kafka_dlq_total", "", labels)), 1);
    ck_assert_int_eq(metric_value(metric_counter("millom_kafka_consumed_total", "", labels)), 5);
    kafka_consumer_free(dc);
    kafka_consumer_free(c);
}
END_TEST

/* ------------------------------------------------------------- rpc */

/* A responder: decodes a Query and echoes what it learned in the body. */

static kafka_verdict respond(void *arg, const rd_kafka_message_t *m, char *err, size_t errlen) {
    (void)arg;
    Millom__V1__Query *q = millom__v1__query__unpack(NULL, m->len, m->payload);
    if (!q || !q->meta) {
        if (q) millom__v1__query__free_unpacked(q, NULL);
        snprintf(err, errlen, "not a Query");
        return KAFKA_DEAD_LETTER;
    }
    if (!rpc_expired(q->meta)) {
        char body[256];
        int n = snprintf(body, sizeof body,
                         "{\"sp\":\"%s\",\"kind\":%d,\"partition\":%d,\"id\":\"%s\"}",
                         q->service_provider, (int)q->kind, (int)q->meta->reply_partition,
                         q->meta->correlation_id);
        rpc_reply(producer, q->meta, 200, "application/json", body, (size_t)n, 0);
    }
    millom__v1__query__free_unpacked(q, NULL);
    return KAFKA_DONE;
}

/* A responder thread on a plain consumer assigned to every partition of
 * the request topic (no group: a group's first join costs the mock 3 s). */
typedef struct {
    rd_kafka_t *rk;
    pthread_t thread;
    atomic_int stop;
} responder_t;

static void *responder_loop(void *arg) {
    responder_t *r = arg;
    while (!atomic_load(&r->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 20);
        if (!m) continue;
        if (!m->err) {
            char err[128];
            respond(NULL, m, err, sizeof err);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static void responder_start(responder_t *r) {
    char err[512], group[64];
    memset(r, 0, sizeof *r);
    group_name(group, sizeof group, "responder");
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(kafka_conf_common(conf, "responder", err, sizeof err), 0);
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_msg(r->rk != NULL, "responder: %s", err);
    rd_kafka_poll_set_consumer(r->rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, requests_topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_topic_partition_list_add(l, requests_topic, 1)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(r->rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    ck_assert_int_eq(pthread_create(&r->thread, NULL, responder_loop, r), 0);
}

static void responder_stop(responder_t *r) {
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
}

typedef struct {
    atomic_int done;
    int got_reply;
    int status;
    int retry_after;
    char content_type[64];
    char body[512];
    char id[40];       /* the call's correlation id (send_query) */
    char reply_id[40]; /* the reply's, written by the reader thread */
    int64_t at;        /* mono_ms() of the callback */
} result_t;

static void on_reply(void *arg, const Millom__V1__Reply *r) {
    result_t *res = arg;
    res->at = mono_ms();
    if (r) {
        res->got_reply = 1;
        res->status = r->http_status;
        res->retry_after = r->retry_after_s;
        snprintf(res->content_type, sizeof res->content_type, "%s", r->content_type);
        snprintf(res->body, sizeof res->body, "%.*s", (int)r->body.len, (const char *)r->body.data);
        snprintf(res->reply_id, sizeof res->reply_id, "%s", r->correlation_id);
    }
    atomic_store(&res->done, 1);
}

static rpc_client *client(int32_t partition) {
    char err[512];
    rpc_client *c = rpc_client_new(producer, partition, err, sizeof err);
    ck_assert_msg(c != NULL, "rpc client: %s", err);
    ck_assert_int_eq(rpc_client_start(c), 0);
    ck_assert(rpc_client_ready(c));
    return c;
}

/* Registers a call and produces a Query carrying its meta. */
static void send_query(rpc_client *c, int timeout_ms, result_t *res, const char *sp) {
    Millom__V1__RequestMeta meta;
    ck_assert_int_eq(rpc_call_begin(c, timeout_ms, on_reply, res, &meta), 0);
    snprintf(res->id, sizeof res->id, "%s", meta.correlation_id);
    Millom__V1__Query q = MILLOM__V1__QUERY__INIT;
    q.meta = &meta;
    q.kind = MILLOM__V1__QUERY_KIND__QUERY_KIND_BALANCE;
    q.service_provider = (char *)sp;
    uint8_t buf[512];
    size_t len = millom__v1__query__get_packed_size(&q);
    ck_assert_uint_le(len, sizeof buf);
    millom__v1__query__pack(&q, buf);
    if (kafka_produce(producer, requests_topic, -1, meta.correlation_id,
                      strlen(meta.correlation_id), buf, len, NULL, 0) != 0) {
        rpc_call_cancel(c, meta.correlation_id);
        ck_abort_msg("produce failed");
    }
}

/* (c) request, responder, reply to the caller's partition. */
START_TEST(test_rpc_round_trip) {
    responder_t resp;
    responder_start(&resp);
    rpc_client *c = client(3);

    result_t res = {0};
    send_query(c, 8000, &res, "acme");
    ck_assert_int_eq(rpc_pending_count(c), 1);
    ck_assert_msg(WAIT_UNTIL(atomic_load(&res.done), 10000), "no callback");
    ck_assert_int_eq(res.got_reply, 1);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.content_type, "application/json");
    ck_assert_str_eq(res.reply_id, res.id);
    char want[256];
    snprintf(want, sizeof want, "{\"sp\":\"acme\",\"kind\":2,\"partition\":3,\"id\":\"%s\"}",
             res.id);
    ck_assert_str_eq(res.body, want);
    ck_assert_int_eq(rpc_pending_count(c), 0);

    /* A second call on a warm path. */
    result_t res2 = {0};
    send_query(c, 8000, &res2, "beta");
    ck_assert_msg(WAIT_UNTIL(atomic_load(&res2.done), 10000), "no second callback");
    ck_assert_int_eq(res2.got_reply, 1);
    ck_assert_ptr_nonnull(strstr(res2.body, "\"sp\":\"beta\""));

    rpc_client_free(c);
    responder_stop(&resp);
}
END_TEST

/* (d) no responder: the callback gets NULL once the deadline passed. */
START_TEST(test_rpc_timeout) {
    rpc_client *c = client(0);
    result_t res = {0};
    int64_t begun = mono_ms();
    send_query(c, 300, &res, "nobody");
    ck_assert_msg(WAIT_UNTIL(atomic_load(&res.done), 5000), "timeout never reported");
    ck_assert_int_eq(res.got_reply, 0);
    ck_assert_int_ge(res.at - begun, 300);
    ck_assert_int_eq(rpc_pending_count(c), 0);

    /* Pending calls at shutdown are failed too, exactly once. */
    result_t late = {0};
    Millom__V1__RequestMeta meta;
    ck_assert_int_eq(rpc_call_begin(c, 60000, on_reply, &late, &meta), 0);
    ck_assert_int_eq(meta.reply_partition, 0);
    ck_assert_int_eq(rpc_pending_count(c), 1);
    /* A cancelled call is never called back. */
    result_t cancelled = {0};
    ck_assert_int_eq(rpc_call_begin(c, 100, on_reply, &cancelled, &meta), 0);
    rpc_call_cancel(c, meta.correlation_id);
    ck_assert_int_eq(rpc_pending_count(c), 1);
    rpc_client_free(c);
    ck_assert_int_eq(atomic_load(&late.done), 1);
    ck_assert_int_eq(late.got_reply, 0);
    ck_assert_int_eq(atomic_load(&cancelled.done), 0);
}
END_TEST

/* The reader waits until the earliest deadline, at most MILLOM_RPC_POLL_MS:
 * a call due sooner than the reader's wait wakes it, and so does closing.
 * With a one-minute wait, both would otherwise take a minute. */
START_TEST(test_rpc_short_call_wakes_a_long_wait) {
    setenv("MILLOM_RPC_POLL_MS", "60000", 1);
    rpc_client *c = client(2);
    unsetenv("MILLOM_RPC_POLL_MS");
    result_t slow = {0}, quick = {0};
    Millom__V1__RequestMeta meta;
    ck_assert_int_eq(rpc_call_begin(c, 60000, on_reply, &slow, &meta), 0);
    sleep_ms(200); /* the reader is now waiting for the slow call's deadline */
    int64_t begun = mono_ms();
    send_query(c, 300, &quick, "nobody");
    ck_assert_msg(WAIT_UNTIL(atomic_load(&quick.done), 10000),
                  "a call due before the reader's wait was not timed out");
    ck_assert_int_eq(quick.got_reply, 0);
    ck_assert_int_ge(quick.at - begun, 300);
    ck_assert_int_eq(atomic_load(&slow.done), 0);

    begun = mono_ms();
    rpc_client_free(c);
    ck_assert_msg(mono_ms() - begun < 20000, "closing waited out the reader's wait");
    ck_assert_int_eq(atomic_load(&slow.done), 1);
}
END_TEST

/* (e) two callers on different partitions each get only their replies. */
START_TEST(test_rpc_partitions_isolated) {
    enum { PER = 4 };
    responder_t resp;
    responder_start(&resp);
    rpc_client *a = client(1), *b = client(5);

    result_t ra[PER], rb[PER];
    memset(ra, 0, sizeof ra);
    memset(rb, 0, sizeof rb);
    for (int i = 0; i < PER; i++) {
        send_query(a, 8000, &ra[i], "a");
        send_query(b, 8000, &rb[i], "b");
    }
    for (int i = 0; i < PER; i++) {
        ck_assert_msg(WAIT_UNTIL(atomic_load(&ra[i].done), 10000), "a[%d] not answered", i);
        ck_assert_msg(WAIT_UNTIL(atomic_load(&rb[i].done), 10000), "b[%d] not answered", i);
    }
    for (int i = 0; i < PER; i++) {
        ck_assert_int_eq(ra[i].got_reply, 1);
        ck_assert_int_eq(rb[i].got_reply, 1);
        ck_assert_ptr_nonnull(strstr(ra[i].body, "\"sp\":\"a\",\"kind\":2,\"partition\":1,"));
        ck_assert_ptr_nonnull(strstr(rb[i].body, "\"sp\":\"b\",\"kind\":2,\"partition\":5,"));
    }
    ck_assert_int_eq(rpc_pending_count(a), 0);
    ck_assert_int_eq(rpc_pending_count(b), 0);

    /* Partition isolation at the wire: a reply produced to partition 5 with
     * a pending id of a never reaches a, and b ignores it. */
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    result_t pending_a = {0};
    ck_assert_int_eq(rpc_call_begin(a, 500, on_reply, &pending_a, &meta), 0);
    meta.reply_partition = 5; /* misrouted on purpose */
    ck_assert_int_eq(rpc_reply(producer, &meta, 200, "text/plain", "x", 1, 0), 0);
    ck_assert_msg(WAIT_UNTIL(atomic_load(&pending_a.done), 5000), "no timeout for a");
    ck_assert_int_eq(pending_a.got_reply, 0);

    rpc_client_free(a);
    rpc_client_free(b);
    responder_stop(&resp);
}
END_TEST

/* rpc_expired and rpc_reply's argument checks. */
START_TEST(test_rpc_expired) {
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    ck_assert_int_eq(rpc_expired(&meta), 0); /* no deadline */
    meta.deadline_ms = now_ms() - 1;
    ck_assert_int_eq(rpc_expired(&meta), 1);
    meta.deadline_ms = now_ms() + 10000;
    ck_assert_int_eq(rpc_expired(&meta), 0);
    ck_assert_int_eq(rpc_reply(producer, &meta, 200, "", "", 0, 0), -1); /* no id */
}
END_TEST

int main(void) {
    Suite *s = suite_create("rpc");
    TCase *tc = tcase_create("kafka");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_consume_commit_restart);
    tcase_add_test(tc, test_dead_letter);
    tcase_add_test(tc, test_rpc_round_trip);
    tcase_add_test(tc, test_rpc_timeout);
    tcase_add_test(tc, test_rpc_short_call_wakes_a_long_wait);
    tcase_add_test(tc, test_rpc_partitions_isolated);
    tcase_add_test(tc, test_rpc_expired);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    destroy_cluster(); /* CK_FORK=no: the cluster lived in this process */
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
