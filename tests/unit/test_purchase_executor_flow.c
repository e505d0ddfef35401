/* purchase-executor end to end inside one process: the real executor
 * (store, outbox relay, retry thread) against an in-process librdkafka mock
 * cluster and a fake operator backend on loopback (shared/http_server).
 * Commands, callbacks and look-ups are handed to the handlers as packed
 * protobuf, exactly as the consumer would; replies, events and cache
 * invalidations are read back from the mock cluster's topics. One test goes
 * through a real group consumer with executor_handle. Works with
 * CK_FORK=no. */
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
#include "services/purchase-executor/executor.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/log.h"
#include "shared/contracts/offer_context.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/service.h"
#include "tests/lib/mock_cluster.h"

#define MSISDN "924542610003"
#define SP "testserviceprovider"

static test_mock_cluster *mock;
static kafka_producer *producer;
static http_server *backend;
static char dir[64], db_path[128], tenants_path[128];
static executor *ex;
static rd_kafka_t *replies, *events, *queries;
static int seq;

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

/* ------------------------------------------------------- fake backend */

typedef enum { B_OK, B_PENDING, B_FAIL, B_ERROR500, B_SLOW, B_ALREADY, B_CONGESTED } backend_mode;

static struct {
    pthread_mutex_t mu;
    backend_mode mode[16]; /* answer of the n-th activate call (last repeats) */
    int n_modes;
    const char *fail_type;
    atomic_int activates, offers;
    char last_body[1024];
    char last_correlator[64]; /* the last activate's x-correlator ("": none) */
    char transids[16][64];
} be = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void backend_set(int n, const backend_mode *modes) {
    pthread_mutex_lock(&be.mu);
    memcpy(be.mode, modes, (size_t)n * sizeof *modes);
    be.n_modes = n;
    pthread_mutex_unlock(&be.mu);
}

static void reply_text(http_request *req, int status, const char *body) {
    http_respond(req, status, "application/json", body, strlen(body));
}

static void backend_handler(void *app, http_request *req) {
    (void)app;
    const char *path = http_path(req);
    if (strncmp(path, "/offers/", 8) == 0) {
        atomic_fetch_add(&be.offers, 1);
        const char *body = "{\"subscriberState\":\"GOOD_TO_GO\",\"offers\":["
                           "{\"id\":\"plan1234\",\"name\":\"3G "
                           "Daily\",\"cost\":{\"currency\":\"PKR\",\"value\":160.0}},"
                           "{\"id\":\"plan1235\",\"name\":\"Social\",\"cost\":{\"currency\":"
                           "\"PKR\",\"value\":60}}]}";
        http_respond(req, 200, "application/json", body, strlen(body));
        return;
    }
    if (strncmp(path, "/activate/", 10) != 0 || strcmp(http_method(req), "POST") != 0) {
        http_respond(req, 404, "application/json", "{}", 2);
        return;
    }
    int n = atomic_fetch_add(&be.activates, 1);
    size_t len;
    const char *body = http_body(req, &len);
    json_t *j = json_loadb(body, len, 0, NULL);
    pthread_mutex_lock(&be.mu);
    snprintf(be.last_body, sizeof be.last_body, "%.*s", (int)len, body);
    const char *id = http_header(req, "x-correlator");
    snprintf(be.last_correlator, sizeof be.last_correlator, "%s", id ? id : "");
    if (n < 16)
        snprintf(be.transids[n], sizeof be.transids[n], "%s",
                 json_string_value(json_object_get(j, "transId")));
    backend_mode mode = be.n_modes ? be.mode[n < be.n_modes ? n : be.n_modes - 1] : B_OK;
    const char *fail_type = be.fail_type ? be.fail_type : "INSUFFICIENT_FUNDS";
    pthread_mutex_unlock(&be.mu);
    json_decref(j);
    char out[256];
    switch (mode) {
    case B_OK:
        snprintf(out, sizeof out,
                 "{\"activationStatus\":{\"status\":\"OK\"},\"confirmationCode\":\"CONF-%d\"}", n);
        http_respond(req, 200, "application/json", out, strlen(out));
        return;
    case B_PENDING: reply_text(req, 200, "{\"activationStatus\":{\"status\":\"PENDING\"}}"); return;
    case B_FAIL:
        snprintf(out, sizeof out, "{\"errorType\":\"%s\",\"message\":\"not enough balance\"}",
                 fail_type);
        http_respond(req, 400, "application/json", out, strlen(out));
        return;
    case B_ERROR500: reply_text(req, 500, "{\"errorType\":\"INTERNAL_ERROR\"}"); return;
    case B_SLOW:
        sleep_ms(700); /* beyond MILLOM_ACTIVATE_TIMEOUT_MS */
        reply_text(req, 200, "{\"activationStatus\":{\"status\":\"OK\"}}");
        return;
    case B_CONGESTED: reply_text(req, 503, "{\"errorType\":\"CONGESTED\"}"); return;
    case B_ALREADY: reply_text(req, 409, "{\"errorType\":\"PURCHASE_ALREADY_EXECUTED\"}"); return;
    }
}

/* ------------------------------------------------------------ fixture */

static rd_kafka_t *reader(const char *topic) {
    char err[512], group[64];
    snprintf(group, sizeof group, "flow-%ld-%d-%s", (long)getpid(), ++seq, topic);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(kafka_conf_common(conf, "flow-reader", err, sizeof err), 0);
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_msg(rk != NULL, "%s", err);
    rd_kafka_poll_set_consumer(rk);
    int64_t lo = 0, hi = 0;
    ck_assert_int_eq(rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 5000), 0);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = hi;
    ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

static void close_reader(rd_kafka_t *rk) {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static void start_executor(void) {
    char err[512];
    tenants *t = tenants_load(tenants_path, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    executor_config cfg;
    executor_config_load(&cfg);
    ex = executor_new(&cfg, t, producer, db_path, err, sizeof err);
    ck_assert_msg(ex != NULL, "%s", err);
}

/* What the consumer does when it gets partition 0 after a (re)start:
 * restore it from the changelog, own it, resume its activating purchases. */
static void assign_partition_0(void) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, TOPIC_PURCHASE_COMMANDS, 0);
    executor_on_assign(ex, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

static void setup(void) {
    setenv("MILLOM_LOG_LEVEL", getenv("TEST_LOG_LEVEL") ? getenv("TEST_LOG_LEVEL") : "error", 1);
    log_init("test_purchase_executor_flow");
    setenv("MILLOM_KAFKA_SESSION_TIMEOUT_MS", "4000", 1);
    setenv("MILLOM_ACTIVATE_TIMEOUT_MS", "300", 1);
    setenv("MILLOM_PURCHASE_TIMER_S", "60", 1);
    setenv("MILLOM_CALLBACK_BASE_URL", "http://edge.example/", 1);
    char err[512];
    /* A new cluster per test: the executor's changelog follower would
     * otherwise restore the previous tests' purchases into this one. */
    {
        http_client_global_init();
        mock = test_mock_cluster_start(1);
        const char *topics[] = {
            TOPIC_REPLIES,           TOPIC_PURCHASE_EVENTS,      TOPIC_QUERIES,
            TOPIC_PURCHASE_COMMANDS, TOPIC_ACTIVATION_CALLBACKS, TOPIC_PURCHASE_LOOKUPS,
            TOPIC_PURCHASE_CHANGELOG};
        for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
            ck_assert_int_eq(test_mock_topic(mock, topics[i], 1), 0);
    }
    producer = kafka_producer_new("test-flow", 0, err, sizeof err);
    ck_assert_msg(producer != NULL, "%s", err);

    http_server_opts o = {.port = 0, .threads = 4, .handler = backend_handler};
    backend = http_server_start(&o, err, sizeof err);
    ck_assert_msg(backend != NULL, "%s", err);
    atomic_store(&be.activates, 0);
    atomic_store(&be.offers, 0);
    be.n_modes = 0;
    be.fail_type = NULL;

    snprintf(dir, sizeof dir, "/tmp/millom-pe-flow-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/data/purchase-executor.db", dir);
    snprintf(tenants_path, sizeof tenants_path, "%s/tenants.json", dir);
    FILE *f = fopen(tenants_path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"operators\":[{\"id\":\"tp\",\"name\":\"Telenor Pakistan\",\"mccmnc\":\"41006\","
            "\"countryCode\":\"92\",\"currency\":\"PKR\",\"currencyScale\":2,"
            "\"backendUrl\":\"http://127.0.0.1:%d\",\"defaultLanguage\":\"en\","
            "\"languages\":[\"en\",\"ur\"]}],"
            "\"serviceProviders\":[{\"id\":\"" SP "\",\"name\":\"T\",\"operators\":[\"tp\"]},"
            "{\"id\":\"otherprovider\",\"name\":\"O\",\"operators\":[\"tp\"]}]}",
            http_server_port(backend));
    fclose(f);
    replies = reader(TOPIC_REPLIES);
    events = reader(TOPIC_PURCHASE_EVENTS);
    queries = reader(TOPIC_QUERIES);
    start_executor();
}

static void teardown(void) {
    executor_free(ex);
    ex = NULL;
    close_reader(replies);
    close_reader(events);
    close_reader(queries);
    http_server_stop(backend);
    kafka_producer_free(producer);
    test_mock_cluster_stop(mock);
    mock = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ------------------------------------------------------------ helpers */

typedef struct {
    int status;
    char body[2048];
    int retry_after;
} reply_t;

/* Sends a command through handle_command with a fresh correlation id
 * and returns its reply. */
/* The provider send_command() sends as. */
static const char *cmd_sp = SP;

static kafka_verdict send_command(const char *transid, const char *plan, const char *offer_ctx,
                                  int loan, reply_t *out) {
    char corr[64];
    snprintf(corr, sizeof corr, "corr-%d", ++seq);
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    meta.correlation_id = corr;
    meta.reply_partition = 0;
    meta.deadline_ms = now_ms() + 10000;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = "tp";
    sub.subscriber_id = MSISDN;
    Millom__V1__PurchaseCommand c = MILLOM__V1__PURCHASE_COMMAND__INIT;
    c.meta = &meta;
    c.service_provider = (char *)cmd_sp;
    c.subscriber = &sub;
    c.transid = (char *)transid;
    c.plan_id = (char *)plan;
    c.offer_context = (char *)(offer_ctx ? offer_ctx : "");
    c.fund_source = loan ? MILLOM__V1__FUND_SOURCE__FUND_SOURCE_LOAN
                         : MILLOM__V1__FUND_SOURCE__FUND_SOURCE_WALLET;
    c.language = "en";
    c.channel = "api";
    uint8_t buf[8192];
    size_t len = millom__v1__purchase_command__pack(&c, buf);
    char err[256] = "";
    kafka_verdict v = handle_command(&ex->flow, buf, len, err, sizeof err);
    if (!out) return v;
    memset(out, 0, sizeof *out);
    int64_t until = mono_ms() + 5000;
    while (mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(replies, 20);
        if (!m) continue;
        Millom__V1__Reply *r =
            m->err ? NULL : millom__v1__reply__unpack(NULL, m->len, (const uint8_t *)m->payload);
        rd_kafka_message_destroy(m);
        if (!r) continue;
        int mine = strcmp(r->correlation_id, corr) == 0;
        if (mine) {
            out->status = r->http_status;
            snprintf(out->body, sizeof out->body, "%.*s", (int)r->body.len,
                     (const char *)r->body.data);
            out->retry_after = r->retry_after_s;
        }
        millom__v1__reply__free_unpacked(r, NULL);
        if (mine) return v;
    }
    ck_abort_msg("no reply for %s", corr);
    return v;
}

/* The transId the operator was sent for SP's transid. */
static const char *op_tid(const char *transid) {
    static char buf[4][37];
    static int i;
    char *out = buf[i++ % 4];
    purchase_operator_transid(SP, transid, out);
    return out;
}

/* A callback as api-edge relays it: the operator's transId, and the
 * subscriber named (id_type NULL: the backend spec's callback, none). */
static kafka_verdict send_callback_as(const char *op_transid, const char *id_type,
                                      const char *id_value, int ok, const char *error_type,
                                      reply_t *out) {
    char corr[64];
    snprintf(corr, sizeof corr, "cb-%d", ++seq);
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    meta.correlation_id = corr;
    meta.deadline_ms = now_ms() + 10000;
    Millom__V1__ActivationCallback cb = MILLOM__V1__ACTIVATION_CALLBACK__INIT;
    cb.meta = &meta;
    cb.operator_ = "tp";
    cb.trans_id = (char *)op_transid;
    cb.id_type = (char *)(id_type ? id_type : "");
    cb.id_value = (char *)(id_value ? id_value : "");
    cb.ok = ok;
    cb.error_type = (char *)(error_type ? error_type : "");
    uint8_t buf[1024];
    size_t len = millom__v1__activation_callback__pack(&cb, buf);
    char err[256] = "";
    kafka_verdict v = handle_callback(&ex->flow, buf, len, err, sizeof err);
    memset(out, 0, sizeof *out);
    int64_t until = mono_ms() + 5000;
    while (mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(replies, 20);
        if (!m) continue;
        Millom__V1__Reply *r =
            m->err ? NULL : millom__v1__reply__unpack(NULL, m->len, (const uint8_t *)m->payload);
        rd_kafka_message_destroy(m);
        if (!r) continue;
        int mine = strcmp(r->correlation_id, corr) == 0;
        if (mine) {
            out->status = r->http_status;
            snprintf(out->body, sizeof out->body, "%.*s", (int)r->body.len,
                     (const char *)r->body.data);
        }
        millom__v1__reply__free_unpacked(r, NULL);
        if (mine) return v;
    }
    ck_abort_msg("no reply for %s", corr);
    return v;
}

/* The operator's callback for SP's transid. */
static kafka_verdict send_callback(const char *transid, int ok, const char *error_type,
                                   reply_t *out) {
    return send_callback_as(op_tid(transid), NULL, NULL, ok, error_type, out);
}

static void send_lookup(const char *transid, const char *msisdn, reply_t *out) {
    char corr[64];
    snprintf(corr, sizeof corr, "lk-%d", ++seq);
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    meta.correlation_id = corr;
    meta.deadline_ms = now_ms() + 10000;
    Millom__V1__PurchaseLookup l = MILLOM__V1__PURCHASE_LOOKUP__INIT;
    l.meta = &meta;
    l.operator_ = "tp";
    l.transid = (char *)(transid ? transid : "");
    l.msisdn = (char *)(msisdn ? msisdn : "");
    uint8_t buf[1024];
    size_t len = millom__v1__purchase_lookup__pack(&l, buf);
    char err[256] = "";
    ck_assert_int_eq(handle_lookup(&ex->flow, buf, len, err, sizeof err), KAFKA_DONE);
    memset(out, 0, sizeof *out);
    int64_t until = mono_ms() + 5000;
    while (mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(replies, 20);
        if (!m) continue;
        Millom__V1__Reply *r =
            m->err ? NULL : millom__v1__reply__unpack(NULL, m->len, (const uint8_t *)m->payload);
        rd_kafka_message_destroy(m);
        if (!r) continue;
        int mine = strcmp(r->correlation_id, corr) == 0;
        if (mine) {
            out->status = r->http_status;
            snprintf(out->body, sizeof out->body, "%.*s", (int)r->body.len,
                     (const char *)r->body.data);
        }
        millom__v1__reply__free_unpacked(r, NULL);
        if (mine) return;
    }
    ck_abort_msg("no reply for %s", corr);
}

/* Reads the next PurchaseEvent state names ("transid:state") into out. */
static int read_events(char out[][96], int max, int timeout_ms) {
    int n = 0;
    int64_t until = mono_ms() + timeout_ms;
    while (n < max && mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(events, 20);
        if (!m) continue;
        if (!m->err) {
            Millom__V1__PurchaseEvent *e =
                millom__v1__purchase_event__unpack(NULL, m->len, (const uint8_t *)m->payload);
            if (e) {
                snprintf(out[n++], 96, "%.40s:%d:%lld:%.12s", e->transid, (int)e->state,
                         (long long)e->price_minor, e->confirmation_code);
                millom__v1__purchase_event__free_unpacked(e, NULL);
            }
        }
        rd_kafka_message_destroy(m);
    }
    return n;
}

/* Counts INVALIDATE queries already on millom.queries (no waiting beyond
 * what is fetchable in timeout_ms). */
static int read_invalidations(int timeout_ms) {
    int n = 0;
    int64_t until = mono_ms() + timeout_ms;
    while (mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(queries, 20);
        if (!m) continue;
        if (!m->err) {
            Millom__V1__Query *q =
                millom__v1__query__unpack(NULL, m->len, (const uint8_t *)m->payload);
            if (q && q->kind == MILLOM__V1__QUERY_KIND__QUERY_KIND_INVALIDATE &&
                strcmp(q->subscriber->subscriber_id, MSISDN) == 0 &&
                strcmp(q->service_provider, SP) == 0 &&
                strncmp((const char *)m->key, MSISDN, 12) == 0)
                n++;
            if (q) millom__v1__query__free_unpacked(q, NULL);
        }
        rd_kafka_message_destroy(m);
    }
    return n;
}

static char *sign_context(const char *plan, int64_t price, int64_t expires) {
    offer_context oc;
    memset(&oc, 0, sizeof oc);
    snprintf(oc.plan_id, sizeof oc.plan_id, "%s", plan);
    snprintf(oc.subscriber, sizeof oc.subscriber, MSISDN);
    snprintf(oc.provider, sizeof oc.provider, SP);
    snprintf(oc.op, sizeof oc.op, "tp");
    oc.price_minor = price;
    snprintf(oc.currency, sizeof oc.currency, "PKR");
    oc.expires_at_ms = expires;
    return offer_context_sign(&oc, offer_context_keys());
}

/* -------------------------------------------------------------- tests */

START_TEST(completed_purchase_is_idempotent) {
    reply_t r, again;
    correlator_set("req.flow:1"); /* the command's request id, as from its Kafka header */
    ck_assert_int_eq(send_command("tx-flow-000001", "plan1234", NULL, 0, &r), KAFKA_DONE);
    correlator_clear();
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"transid\":\"tx-flow-000001\",\"status\":\"completed\","
                             "\"fundSource\":\"WALLET\",\"confirmationCode\":\"CONF-0\"}");
    ck_assert_int_eq(atomic_load(&be.offers), 1);
    ck_assert_int_eq(atomic_load(&be.activates), 1);
    /* The activation request. */
    char want[512];
    snprintf(want, sizeof want,
             "{\"channelId\":\"App\",\"serviceProviderId\":\"" SP "\",\"offerId\":"
             "\"plan1234\",\"transId\":\"%s\",\"callbackUrl\":"
             "\"http://edge.example/activationCallback/tp\",\"fundSource\":\"WALLET\"}",
             op_tid("tx-flow-000001"));
    pthread_mutex_lock(&be.mu); /* written by the backend's HTTP thread */
    char got[sizeof be.last_body], got_id[sizeof be.last_correlator];
    snprintf(got, sizeof got, "%s", be.last_body);
    snprintf(got_id, sizeof got_id, "%s", be.last_correlator);
    pthread_mutex_unlock(&be.mu);
    ck_assert_str_eq(got, want);
    ck_assert_str_eq(got_id, "req.flow:1"); /* the operator sees the request id */
    /* The invalidation was delivered before the reply was produced. */
    ck_assert_int_eq(read_invalidations(300), 1);

    /* Same transid, same body: the original answer, byte for byte, and
     * no second activation. */
    ck_assert_int_eq(send_command("tx-flow-000001", "plan1234", NULL, 0, &again), KAFKA_DONE);
    ck_assert_int_eq(again.status, 200);
    ck_assert_str_eq(again.body, r.body);
    ck_assert_int_eq(atomic_load(&be.activates), 1);
    /* Same transid, different body: conflict. */
    ck_assert_int_eq(send_command("tx-flow-000001", "plan1234", NULL, 1, &again), KAFKA_DONE);
    ck_assert_int_eq(again.status, 409);
    ck_assert_str_eq(again.body, "{\"errorMessage\":\"transid was already used for a different "
                                 "purchase request\",\"cause\":\"PURCHASE_CONFLICT\"}");
    /* The same plan again under another transid: the purchase timer. */
    ck_assert_int_eq(send_command("tx-flow-000002", "plan1234", NULL, 0, &again), KAFKA_DONE);
    ck_assert_int_eq(again.status, 409);
    const char *timer_409 = "{\"errorMessage\":\"this plan cannot be bought again for this "
                            "subscriber yet; try again later\",\"cause\":\"PURCHASE_CONFLICT\"}";
    ck_assert_str_eq(again.body, timer_409);
    /* Another provider, even with the same transid: the same rule, the
     * same words (nothing says whose the earlier purchase was). */
    cmd_sp = "otherprovider";
    ck_assert_int_eq(send_command("tx-flow-000003", "plan1234", NULL, 0, &again), KAFKA_DONE);
    ck_assert_int_eq(again.status, 409);
    ck_assert_str_eq(again.body, timer_409);
    ck_assert_int_eq(send_command("tx-flow-000001", "plan1234", NULL, 0, &again), KAFKA_DONE);
    cmd_sp = SP;
    ck_assert_int_eq(again.status, 409);
    ck_assert_str_eq(again.body, timer_409);
    ck_assert_int_eq(atomic_load(&be.activates), 1);

    /* Events, in order: ACTIVATING then COMPLETED, with the price. */
    char ev[4][96];
    ck_assert_int_eq(read_events(ev, 2, 5000), 2);
    ck_assert_str_eq(ev[0], "tx-flow-000001:2:16000:");
    ck_assert_str_eq(ev[1], "tx-flow-000001:4:16000:CONF-0");
    ck_assert_int_eq(read_events(ev, 1, 300), 0);
    ck_assert(WAIT_UNTIL(outbox_relay_depth(ex->flow.relay) == 0, 2000));

    /* Look-ups. */
    reply_t l;
    send_lookup("tx-flow-000001", NULL, &l);
    ck_assert_int_eq(l.status, 200);
    json_t *j = json_loads(l.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "completed");
    ck_assert_str_eq(json_string_value(json_object_get(j, "price")), "160.00");
    ck_assert_str_eq(json_string_value(json_object_get(j, "confirmationCode")), "CONF-0");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "attempts")), 1);
    json_decref(j);
    send_lookup(NULL, MSISDN, &l);
    ck_assert_int_eq(l.status, 200);
    j = json_loads(l.body, 0, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(j, "purchases")), 1);
    json_decref(j);
    send_lookup("tx-nope-000001", NULL, &l);
    ck_assert_int_eq(l.status, 404);
    ck_assert_str_eq(l.body, "{\"errorMessage\":\"no such purchase\",\"cause\":\"NOT_FOUND\"}");
}
END_TEST

START_TEST(offer_context_sets_the_price) {
    reply_t r;
    char *good = sign_context("plan1235", 5999, now_ms() + 60000);
    ck_assert_int_eq(send_command("tx-ctx-0000001", "plan1235", good, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(atomic_load(&be.offers), 0); /* no price look-up */
    char ev[2][96];
    ck_assert_int_eq(read_events(ev, 2, 5000), 2);
    ck_assert_str_eq(ev[1], "tx-ctx-0000001:4:5999:CONF-0");

    char *tampered = strdup(good);
    tampered[3] = tampered[3] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(send_command("tx-ctx-0000002", "plan1234", tampered, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.body,
                     "{\"errorMessage\":\"offercontext is not valid\",\"cause\":\"BAD_REQUEST\"}");
    char *expired = sign_context("plan1234", 16000, now_ms() - 1);
    ck_assert_int_eq(send_command("tx-ctx-0000003", "plan1234", expired, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.body,
                     "{\"errorMessage\":\"offercontext expired\",\"cause\":\"BAD_REQUEST\"}");
    char *other_plan = sign_context("plan9999", 100, now_ms() + 60000);
    ck_assert_int_eq(send_command("tx-ctx-0000004", "plan1234", other_plan, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "another planid"));
    ck_assert_int_eq(atomic_load(&be.activates), 1);
    free(good);
    free(tampered);
    free(expired);
    free(other_plan);

    /* Without offerContext a plan the operator does not offer is refused. */
    ck_assert_int_eq(send_command("tx-ctx-0000005", "plan0000", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.body, "{\"errorMessage\":\"planid is not offered to this subscriber\","
                             "\"cause\":\"BAD_REQUEST\"}");
}
END_TEST

START_TEST(pending_then_callback) {
    backend_mode m[] = {B_PENDING};
    backend_set(1, m);
    reply_t r, cb;
    ck_assert_int_eq(send_command("tx-pend-000001", "plan1234", NULL, 1, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(r.body, "{\"transid\":\"tx-pend-000001\",\"status\":\"processing\","
                             "\"fundSource\":\"LOAN\"}");
    ck_assert_int_eq(read_invalidations(200), 0);
    /* A repeat while pending: processing, no second activation. */
    ck_assert_int_eq(send_command("tx-pend-000001", "plan1234", NULL, 1, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 202);
    ck_assert_int_eq(atomic_load(&be.activates), 1);

    /* The provider's transid is not what the operator knows: unknown. */
    ck_assert_int_eq(send_callback_as("tx-pend-000001", NULL, NULL, 1, NULL, &cb), KAFKA_DONE);
    ck_assert_int_eq(cb.status, 404);
    /* Another subscriber named, or the right one with another idType:
     * answered as an unknown transaction, the purchase left pending. */
    ck_assert_int_eq(
        send_callback_as(op_tid("tx-pend-000001"), "MSISDN", "924542610099", 1, NULL, &cb),
        KAFKA_DONE);
    ck_assert_int_eq(cb.status, 404);
    ck_assert_str_eq(cb.body, "{\"status\":\"FAIL\",\"message\":\"unknown transaction\"}");
    ck_assert_int_eq(send_callback_as(op_tid("tx-pend-000001"), "OPET", MSISDN, 1, NULL, &cb),
                     KAFKA_DONE);
    ck_assert_int_eq(cb.status, 404);
    ck_assert_int_eq(send_command("tx-pend-000001", "plan1234", NULL, 1, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 202);
    /* The right subscriber: applied. */
    ck_assert_int_eq(send_callback_as(op_tid("tx-pend-000001"), "MSISDN", MSISDN, 1, NULL, &cb),
                     KAFKA_DONE);
    ck_assert_int_eq(cb.status, 200);
    ck_assert_str_eq(cb.body, "{\"status\":\"OK\",\"message\":\"Callback received by Millom\"}");
    ck_assert_int_eq(read_invalidations(300), 1);
    ck_assert_int_eq(send_callback("tx-pend-000001", 1, NULL, &cb), KAFKA_DONE);
    ck_assert_int_eq(cb.status, 409);
    ck_assert_str_eq(cb.body,
                     "{\"status\":\"FAIL\",\"message\":\"transaction already completed\"}");
    ck_assert_int_eq(send_callback("tx-unknown-0001", 1, NULL, &cb), KAFKA_DONE);
    ck_assert_int_eq(cb.status, 404);
    ck_assert_str_eq(cb.body, "{\"status\":\"FAIL\",\"message\":\"unknown transaction\"}");

    ck_assert_int_eq(send_command("tx-pend-000001", "plan1234", NULL, 1, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"transid\":\"tx-pend-000001\",\"status\":\"completed\","
                             "\"fundSource\":\"LOAN\"}");
    char ev[4][96];
    ck_assert_int_eq(read_events(ev, 3, 5000), 3);
    ck_assert_str_eq(ev[0], "tx-pend-000001:2:16000:");
    ck_assert_str_eq(ev[1], "tx-pend-000001:3:16000:");
    ck_assert_str_eq(ev[2], "tx-pend-000001:4:16000:");

    /* A failing callback maps its errorType. */
    ck_assert_int_eq(send_command("tx-pend-000002", "plan1235", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 202);
    ck_assert_int_eq(send_callback("tx-pend-000002", 0, "USER_BARRED", &cb), KAFKA_DONE);
    ck_assert_int_eq(cb.status, 200);
    ck_assert_int_eq(send_command("tx-pend-000002", "plan1235", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 403);
    ck_assert_str_eq(r.body, "{\"errorMessage\":\"subscriber is barred by the operator\","
                             "\"cause\":\"NOT_ALLOWED\"}");
}
END_TEST

START_TEST(definite_failure_is_final) {
    backend_mode m[] = {B_FAIL};
    backend_set(1, m);
    reply_t r, again;
    ck_assert_int_eq(send_command("tx-fail-000001", "plan1234", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 402);
    ck_assert_str_eq(r.body,
                     "{\"errorMessage\":\"insufficient funds\",\"cause\":\"INSUFFICIENT_FUNDS\"}");
    ck_assert_int_eq(send_command("tx-fail-000001", "plan1234", NULL, 0, &again), KAFKA_DONE);
    ck_assert_int_eq(again.status, 402);
    ck_assert_str_eq(again.body, r.body);
    ck_assert_int_eq(atomic_load(&be.activates), 1);
    /* A failed purchase does not block the same plan (the timer). */
    backend_mode ok[] = {B_OK};
    backend_set(1, ok);
    ck_assert_int_eq(send_command("tx-fail-000002", "plan1234", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(unknown_outcome_is_retried_with_the_same_transid) {
    backend_mode m[] = {B_ERROR500, B_SLOW, B_OK};
    backend_set(3, m);
    reply_t r;
    ck_assert_int_eq(send_command("tx-retry-00001", "plan1234", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(r.body, "{\"transid\":\"tx-retry-00001\",\"status\":\"processing\","
                             "\"fundSource\":\"WALLET\"}");
    /* The retry thread: a timeout, then OK (backoff 0.25-0.5 s, then 0.5-1 s). */
    ck_assert_msg(WAIT_UNTIL(atomic_load(&be.activates) >= 3, 8000), "activates: %d",
                  atomic_load(&be.activates));
    char ev[3][96];
    ck_assert_int_eq(read_events(ev, 2, 8000), 2);
    ck_assert_str_eq(ev[0], "tx-retry-00001:2:16000:");
    ck_assert_str_eq(ev[1], "tx-retry-00001:4:16000:CONF-2");
    ck_assert_int_eq(read_invalidations(300), 1);
    pthread_mutex_lock(&be.mu); /* written by the backend's HTTP thread */
    for (int i = 0; i < 3; i++) ck_assert_str_eq(be.transids[i], op_tid("tx-retry-00001"));
    pthread_mutex_unlock(&be.mu);
    sleep_ms(200);
    ck_assert_int_eq(atomic_load(&be.activates), 3);
    ck_assert_int_eq(send_command("tx-retry-00001", "plan1234", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"transid\":\"tx-retry-00001\",\"status\":\"completed\","
                             "\"fundSource\":\"WALLET\",\"confirmationCode\":\"CONF-2\"}");
    reply_t l;
    send_lookup("tx-retry-00001", NULL, &l);
    json_t *j = json_loads(l.body, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "attempts")), 3);
    json_decref(j);
}
END_TEST

START_TEST(restart_resumes_activating_purchases) {
    backend_mode m[] = {B_SLOW, B_ERROR500, B_ALREADY};
    backend_set(3, m);
    setenv("MILLOM_ACTIVATE_TIMEOUT_MS", "300", 1);
    reply_t r;
    ck_assert_int_eq(send_command("tx-resume-0001", "plan1234", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 202);
    /* Stop before the retry; the row is left activating. */
    executor_free(ex);
    ex = NULL;
    int calls = atomic_load(&be.activates);
    ck_assert_int_le(calls, 2);
    /* Restart and assignment: resumed at once with the same transId; the operator says it
     * already executed it, so it is completed. */
    start_executor();
    assign_partition_0();
    ck_assert(WAIT_UNTIL(atomic_load(&be.activates) >= 3, 8000));
    ck_assert_int_eq(send_command("tx-resume-0001", "plan1234", NULL, 0, &r), KAFKA_DONE);
    if (r.status == 202) { /* the resumed call may still be running */
        sleep_ms(1000);
        send_command("tx-resume-0001", "plan1234", NULL, 0, &r);
    }
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"transid\":\"tx-resume-0001\",\"status\":\"completed\","
                             "\"fundSource\":\"WALLET\"}");
    pthread_mutex_lock(&be.mu);
    for (int i = 0; i < 3; i++) ck_assert_str_eq(be.transids[i], op_tid("tx-resume-0001"));
    pthread_mutex_unlock(&be.mu);
}
END_TEST

/* Max attempts: failed only when no call can have executed it. */
START_TEST(giving_up_only_when_nothing_can_have_executed) {
    executor_free(ex);
    setenv("MILLOM_ACTIVATE_MAX_ATTEMPTS", "3", 1);
    start_executor();
    backend_mode congested[] = {B_CONGESTED};
    backend_set(1, congested);
    reply_t r;
    ck_assert_int_eq(send_command("tx-giveup-0001", "plan1234", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 202);
    ck_assert_msg(WAIT_UNTIL(atomic_load(&be.activates) >= 3, 8000), "activates %d",
                  atomic_load(&be.activates));
    sleep_ms(200);
    ck_assert_int_eq(send_command("tx-giveup-0001", "plan1234", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "{\"errorMessage\":\"the operator backend could not be reached (3 "
                             "attempts)\",\"cause\":\"SERVICE_UNAVAILABLE\"}");
    ck_assert_int_eq(r.retry_after, 1);
    ck_assert_int_eq(atomic_load(&be.activates), 3);

    /* One call with an unknown outcome: never failed, counted as stuck. */
    backend_mode mixed[] = {B_CONGESTED, B_ERROR500, B_CONGESTED};
    atomic_store(&be.activates, 0);
    backend_set(3, mixed);
    ck_assert_int_eq(send_command("tx-stuck-00001", "plan1235", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 202);
    ck_assert(WAIT_UNTIL(metric_value(ex->flow.m.stuck) == 1, 8000));
    ck_assert_int_eq(send_command("tx-stuck-00001", "plan1235", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 202);
    /* Stuck ones wait 15-30 s between calls; the assignment after a
     * restart resumes at once. The operator finally answers: completed, no
     * longer stuck. */
    backend_mode ok[] = {B_OK};
    backend_set(1, ok);
    executor_free(ex);
    start_executor();
    assign_partition_0();
    ck_assert(WAIT_UNTIL(metric_value(ex->flow.m.stuck) == 0, 5000));
    ck_assert_int_eq(send_command("tx-stuck-00001", "plan1235", NULL, 0, &r), KAFKA_DONE);
    ck_assert_int_eq(r.status, 200);
    unsetenv("MILLOM_ACTIVATE_MAX_ATTEMPTS");
}
END_TEST

START_TEST(malformed_messages_go_to_the_dlq_verdict) {
    char err[256] = "";
    ck_assert_int_eq(handle_command(&ex->flow, "\xff\xff\xff", 3, err, sizeof err),
                     KAFKA_DEAD_LETTER);
    ck_assert_str_eq(err, "not a millom.v1.PurchaseCommand");
    ck_assert_int_eq(handle_callback(&ex->flow, "\xff\xff\xff", 3, err, sizeof err),
                     KAFKA_DEAD_LETTER);
    ck_assert_int_eq(handle_lookup(&ex->flow, "\xff\xff\xff", 3, err, sizeof err),
                     KAFKA_DEAD_LETTER);
    /* Decodes, but lacks what a purchase needs: 400 to the caller, DLQ. */
    reply_t r;
    ck_assert_int_eq(send_command("", "plan1234", NULL, 0, &r), KAFKA_DEAD_LETTER);
    ck_assert_int_eq(r.status, 400);
    ck_assert_int_eq(atomic_load(&be.activates), 0);
}
END_TEST

/* Lanes: commands racing on their own threads, each with its lane's
 * connection and client (as MILLOM_EXECUTOR_LANES runs them). A store
 * busy answer is retried as the consumer would (KAFKA_RETRY). */
typedef struct {
    int lane;
    const char *transid, *plan;
    kafka_verdict v;
} race_arg;

static void *race_command(void *arg) {
    race_arg *a = arg;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = "tp";
    sub.subscriber_id = MSISDN;
    Millom__V1__PurchaseCommand c = MILLOM__V1__PURCHASE_COMMAND__INIT;
    c.service_provider = SP;
    c.subscriber = &sub;
    c.transid = (char *)a->transid;
    c.plan_id = (char *)a->plan;
    c.language = "en";
    c.channel = "api";
    uint8_t buf[1024];
    size_t len = millom__v1__purchase_command__pack(&c, buf);
    for (int i = 0; i < 50; i++) {
        char err[256] = "";
        a->v = handle_command(&ex->lanes[a->lane], buf, len, err, sizeof err);
        if (a->v != KAFKA_RETRY) break;
        sleep_ms(20);
    }
    return NULL;
}

static void race(const char *const *transids, const char *plan, int n) {
    pthread_t th[8];
    race_arg a[8];
    for (int i = 0; i < n; i++) {
        a[i] = (race_arg){.lane = i, .transid = transids[i], .plan = plan, .v = KAFKA_RETRY};
        ck_assert_int_eq(pthread_create(&th[i], NULL, race_command, &a[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(a[i].v, KAFKA_DONE);
    }
}

START_TEST(racing_lanes_activate_once) {
    ck_assert_int_ge(ex->n_lanes, 8);
    /* One transid from eight lanes at once: one activation. */
    const char *same[8];
    for (int i = 0; i < 8; i++) same[i] = "tx-race-00001";
    race(same, "plan1234", 8);
    ck_assert_int_eq(atomic_load(&be.activates), 1);
    /* Eight transids for one subscriber and plan at once: the purchase
     * timer lets one through. */
    const char *distinct[8] = {"tx-race-10001", "tx-race-10002", "tx-race-10003", "tx-race-10004",
                               "tx-race-10005", "tx-race-10006", "tx-race-10007", "tx-race-10008"};
    race(distinct, "plan1235", 8);
    ck_assert_int_eq(atomic_load(&be.activates), 2);
}
END_TEST

/* Through a real group consumer: executor_handle dispatches by topic. */
START_TEST(dispatch_through_a_consumer) {
    const char *topics[] = {TOPIC_PURCHASE_COMMANDS, TOPIC_ACTIVATION_CALLBACKS,
                            TOPIC_PURCHASE_LOOKUPS, NULL};
    char group[64], err[512];
    snprintf(group, sizeof group, "pe-flow-%ld", (long)getpid());
    kafka_consumer_opts o = {
        .group_id = group,
        .client_id = group,
        .topics = topics,
        .handler = executor_handle,
        .handler_arg = ex,
        .dlq = producer,
        .poll_timeout_ms = 20,
        .lanes = executor_lanes(ex),
        .lane_arg = executor_lane_arg,
    };
    setenv("MILLOM_KAFKA_OFFSET_RESET", "earliest", 1);
    kafka_consumer *c = kafka_consumer_new(&o, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(kafka_consumer_start(c), 0);

    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    meta.correlation_id = "via-kafka-1";
    meta.deadline_ms = now_ms() + 20000;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = "tp";
    sub.subscriber_id = MSISDN;
    Millom__V1__PurchaseCommand cmd = MILLOM__V1__PURCHASE_COMMAND__INIT;
    cmd.meta = &meta;
    cmd.service_provider = SP;
    cmd.subscriber = &sub;
    cmd.transid = "tx-kafka-00001";
    cmd.plan_id = "plan1234";
    uint8_t buf[1024];
    size_t len = millom__v1__purchase_command__pack(&cmd, buf);
    ck_assert_int_eq(kafka_produce(producer, TOPIC_PURCHASE_COMMANDS, -1, MSISDN, strlen(MSISDN),
                                   buf, len, NULL, 0),
                     0);
    int got = 0;
    int64_t until = mono_ms() + 15000;
    while (!got && mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(replies, 20);
        if (!m) continue;
        Millom__V1__Reply *r =
            m->err ? NULL : millom__v1__reply__unpack(NULL, m->len, (const uint8_t *)m->payload);
        rd_kafka_message_destroy(m);
        if (!r) continue;
        if (strcmp(r->correlation_id, "via-kafka-1") == 0) {
            ck_assert_int_eq(r->http_status, 200);
            got = 1;
        }
        millom__v1__reply__free_unpacked(r, NULL);
    }
    ck_assert_msg(got, "no reply through Kafka");
    kafka_consumer_free(c);
    unsetenv("MILLOM_KAFKA_OFFSET_RESET");
}
END_TEST

int main(void) {
    Suite *s = suite_create("purchase_executor_flow");
    TCase *tc = tcase_create("flow");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, completed_purchase_is_idempotent);
    tcase_add_test(tc, offer_context_sets_the_price);
    tcase_add_test(tc, pending_then_callback);
    tcase_add_test(tc, definite_failure_is_final);
    tcase_add_test(tc, unknown_outcome_is_retried_with_the_same_transid);
    tcase_add_test(tc, restart_resumes_activating_purchases);
    tcase_add_test(tc, giving_up_only_when_nothing_can_have_executed);
    tcase_add_test(tc, malformed_messages_go_to_the_dlq_verdict);
    tcase_add_test(tc, racing_lanes_activate_once);
    tcase_add_test(tc, dispatch_through_a_consumer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
