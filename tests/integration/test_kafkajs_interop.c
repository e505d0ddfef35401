/* Kafka interoperability (issue 19 item 3): a client from another
 * ecosystem on the MNO-facing topics. tools/kafkajs/interop.js (kafkajs and
 * protobufjs, payloads encoded from schemas/millom/v1 at run time) publishes
 * SubscriberEvents keyed by MSISDN with kafkajs's Java-compatible
 * partitioner and reads millom.settlement.records with a kafkajs consumer
 * group, against a real stack (devbroker and the services):
 *   - notifier treats kafkajs's events exactly like Millom's own: a
 *     consented out-of-data event reaches sp-sandbox, an event of a type the
 *     subscriber did not consent to and a duplicate transactionId do not;
 *   - Millom's producers (librdkafka, partitioner murmur2_random in
 *     shared/plumbing/kafka.c) put every MSISDN on the partition kafkajs's
 *     Java-compatible partitioner chose for it, so one subscriber's events
 *     stay in order whichever client an operator uses;
 *   - a real purchase's settlement record decodes in kafkajs with the
 *     expected fields (keyed by operator, shares summing to the amount).
 *
 * Needs node and tools/kafkajs/node_modules (scripts/deps.sh runs npm ci);
 * without them it fails, never skips. Everything is polled with a bound. */
#include "tests/lib/stack.h"
#include "shared/contracts/money.h"
#include "shared/plumbing/kafka.h"
#include "millom/v1/subscriber.pb-c.h"

#include <check.h>
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BASE_PORT 22300
#define SP "testserviceprovider"
#define INTEROP "tools/kafkajs/interop.js"
#define MAX_LINES 512

static test_stack stack;
static char edge[64], sp[64];
static kafka_producer *producer;

/* ------------------------------------------------------ the node client */

typedef struct {
    json_t *lines[MAX_LINES]; /* one parsed JSON object per output line */
    size_t n;
    int exit_status;
} node_output;

static void node_output_free(node_output *o) {
    for (size_t i = 0; i < o->n; i++) json_decref(o->lines[i]);
    o->n = 0;
}

/* Runs `node tools/kafkajs/interop.js <args>` with stdin from stdin_text
 * (may be NULL) and parses its stdout, one JSON object a line. */
static void run_interop(const char *args, const char *stdin_text, node_output *out) {
    memset(out, 0, sizeof *out);
    char input[400] = "/dev/null";
    if (stdin_text) {
        snprintf(input, sizeof input, "%s/interop-input-%ld.jsonl", stack.dir, (long)getpid());
        FILE *f = fopen(input, "w");
        ck_assert_ptr_nonnull(f);
        fputs(stdin_text, f);
        fclose(f);
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "node " INTEROP " %s --brokers %s < %s", args, stack.bootstrap,
             input);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[8192];
    while (fgets(line, sizeof line, p)) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        ck_assert_msg(j != NULL, "interop.js printed a line that is not JSON: %s", line);
        ck_assert_msg(out->n < MAX_LINES, "interop.js printed more than %d lines", MAX_LINES);
        out->lines[out->n++] = j;
    }
    int st = pclose(p);
    out->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    ck_assert_msg(out->exit_status == 0, "%s exited with %d", cmd, out->exit_status);
}

static const char *str_of(json_t *o, const char *name) {
    const char *s = json_string_value(json_object_get(o, name));
    ck_assert_msg(s != NULL, "no string field %s", name);
    return s;
}

/* Publishes SubscriberEvents with kafkajs (JSON lines as interop.js reads
 * them); the partitions it reported, in order, into partitions (may be
 * NULL). */
static void kafkajs_publish(const char *jsonl, int *partitions, size_t n_expected) {
    node_output o;
    run_interop("produce-subscriber-events", jsonl, &o);
    ck_assert_uint_eq(o.n, n_expected);
    for (size_t i = 0; partitions && i < o.n; i++)
        partitions[i] = (int)json_integer_value(json_object_get(o.lines[i], "partition"));
    node_output_free(&o);
}

static void kafkajs_publish_one(const char *msisdn, const char *type, const char *tid) {
    char line[256];
    snprintf(line, sizeof line, "{\"msisdn\":\"%s\",\"type\":\"%s\",\"transactionId\":\"%s\"}\n",
             msisdn, type, tid);
    kafkajs_publish(line, NULL, 1);
}

/* ------------------------------------------------------------- helpers */

static const char *new_tid(char *buf, size_t len, const char *tag) {
    static int seq;
    snprintf(buf, len, "kjs-%s-%ld-%d", tag, (long)getpid(), ++seq);
    return buf;
}

/* Records at sp-sandbox of a kind whose transactionId is tid (answered
 * 200), polled up to ~20 s until at least `want`. */
static int wait_received(const char *kind, const char *tid, int want, json_t **first) {
    int n = 0;
    long status = 0;
    for (int i = 0; i < 400; i++) {
        n = test_sp_received_count(sp, kind, tid, 1, NULL, &status);
        ck_assert_int_eq(status, 200);
        if (n >= want) break;
        test_sleep_ms(50);
    }
    if (first && n > 0) test_sp_received_count(sp, kind, tid, 1, first, &status);
    return n;
}

/* ---------------------------------------------------------------- tests */

START_TEST(kafkajs_events_are_notified_like_millom_own) {
    const char *sub = "923001120001";
    char tid[64], not_consented[64], later[64];
    ck_assert_int_eq(test_register_consent(edge, SP, sub, new_tid(tid, sizeof tid, "consent"),
                                           "[\"out-of-data\"]"),
                     200);
    /* An out-of-data event from kafkajs: one webhook at sp-sandbox. */
    kafkajs_publish_one(sub, "out-of-data", new_tid(tid, sizeof tid, "ood"));
    json_t *body = NULL;
    ck_assert_int_eq(wait_received("notification", tid, 1, &body), 1);
    ck_assert_str_eq(str_of(body, "eventType"), "out-of-data");
    ck_assert_str_eq(str_of(body, "transactionId"), tid);
    ck_assert(json_is_array(json_object_get(body, "offers")));
    char *text = json_dumps(body, JSON_COMPACT);
    ck_assert_ptr_null(strstr(text, sub)); /* the provider sees a CPID, never the MSISDN */
    free(text);
    json_decref(body);

    /* A type the subscriber did not consent to, then the same
     * transactionId again (a duplicate): neither is delivered. Checked
     * after a later event of the same subscriber (same partition, so
     * handled after both) was delivered. */
    kafkajs_publish_one(sub, "low-data", new_tid(not_consented, sizeof not_consented, "nc"));
    kafkajs_publish_one(sub, "out-of-data", tid);
    kafkajs_publish_one(sub, "out-of-data", new_tid(later, sizeof later, "later"));
    ck_assert_int_eq(wait_received("notification", later, 1, NULL), 1);
    long status = 0;
    ck_assert_int_eq(test_sp_received_count(sp, "notification", not_consented, 0, NULL, &status),
                     0);
    ck_assert_int_eq(test_sp_received_count(sp, "notification", tid, 0, NULL, &status), 1);
}
END_TEST

#define N_KEYS 24

/* librdkafka's message through Millom's own producer (shared/plumbing/
 * kafka.c), partition chosen by the key. */
static void millom_publish(const char *msisdn, const char *tid) {
    Millom__V1__SubscriberRef s = MILLOM__V1__SUBSCRIBER_REF__INIT;
    s.operator_ = "tp";
    s.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    s.subscriber_id = (char *)msisdn;
    Millom__V1__SubscriberEvent ev = MILLOM__V1__SUBSCRIBER_EVENT__INIT;
    ev.operator_ = "tp";
    ev.subscriber = &s;
    ev.type = "pack-consumed"; /* nobody consented: notifier drops it */
    ev.transaction_id = (char *)tid;
    uint8_t buf[512];
    ck_assert_uint_le(millom__v1__subscriber_event__get_packed_size(&ev), sizeof buf);
    size_t len = millom__v1__subscriber_event__pack(&ev, buf);
    rd_kafka_resp_err_t err = 0;
    ck_assert_int_eq(kafka_produce_wait(producer, "millom.subscriber.events", -1, msisdn,
                                        strlen(msisdn), buf, len, 10000, &err),
                     KAFKA_WAIT_DELIVERED);
}

START_TEST(millom_producers_partition_keys_like_the_java_client) {
    char msisdns[N_KEYS][16], tid[64];
    char jsonl[N_KEYS * 128] = "";
    size_t used = 0;
    for (int i = 0; i < N_KEYS; i++) {
        snprintf(msisdns[i], sizeof msisdns[i], "9230012%05d", 3000 + i * 37);
        used += (size_t)snprintf(jsonl + used, sizeof jsonl - used,
                                 "{\"msisdn\":\"%s\",\"type\":\"pack-consumed\","
                                 "\"transactionId\":\"%s\"}\n",
                                 msisdns[i], new_tid(tid, sizeof tid, "part-js"));
        ck_assert_uint_lt(used, sizeof jsonl);
    }
    int js_partition[N_KEYS];
    kafkajs_publish(jsonl, js_partition, N_KEYS);
    /* Not all on one partition: otherwise the comparison proves little. */
    int spread = 0;
    for (int i = 1; i < N_KEYS; i++) spread |= js_partition[i] != js_partition[0];
    ck_assert(spread);

    for (int i = 0; i < N_KEYS; i++)
        millom_publish(msisdns[i], new_tid(tid, sizeof tid, "part-rd"));

    /* Read everything back with a kafkajs consumer group: every message of
     * these keys, from either producer, is on kafkajs's partition. */
    char args[256];
    snprintf(args, sizeof args,
             "consume --topic millom.subscriber.events --type millom.v1.SubscriberEvent "
             "--group kjs-partitions-%ld --idle-ms 5000",
             (long)getpid());
    node_output o;
    run_interop(args, NULL, &o);
    int seen_rd = 0;
    for (size_t l = 0; l < o.n; l++) {
        const char *key = json_string_value(json_object_get(o.lines[l], "key"));
        for (int i = 0; key && i < N_KEYS; i++) {
            if (strcmp(key, msisdns[i]) != 0) continue;
            int part = (int)json_integer_value(json_object_get(o.lines[l], "partition"));
            ck_assert_msg(part == js_partition[i], "key %s: partition %d, kafkajs chose %d", key,
                          part, js_partition[i]);
            json_t *v = json_object_get(o.lines[l], "value");
            ck_assert_msg(v != NULL, "key %s did not decode", key);
            if (strncmp(str_of(v, "transactionId"), "kjs-part-rd", 11) == 0) seen_rd++;
        }
    }
    node_output_free(&o);
    ck_assert_int_eq(seen_rd, N_KEYS);
}
END_TEST

/* ------------------------------------------------- settlement records */

static json_t *edge_json(const char *path, long *status) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", edge, path);
    return test_get_json(url, NULL, status);
}

/* A decimal amount at the record's scale in minor units. */
static int64_t minor_units(const char *decimal, int scale) {
    int64_t minor = 0;
    ck_assert_msg(money_parse(decimal, scale, &minor) == 0, "amount %s", decimal);
    return minor;
}

START_TEST(settlement_records_read_by_a_kafkajs_group) {
    const char *msisdn = "924542610003";
    const char *plan = "tp-social-daily";
    char tid[64], path[256];
    new_tid(tid, sizeof tid, "settle");
    /* A real purchase through api-edge: the offer, then purchasePlan. */
    snprintf(path, sizeof path, "/std/" SP "/tp/%s/upsellOffer", msisdn);
    long status = 0;
    json_t *offers = edge_json(path, &status);
    ck_assert_int_eq(status, 200);
    const char *ctx = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(offers, "offers"), i, o) {
        if (strcmp(str_of(o, "planId"), plan) == 0) ctx = str_of(o, "offerContext");
    }
    ck_assert_ptr_nonnull(ctx);
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, msisdn);
    json_t *req = json_pack("{s:s,s:s,s:s}", "transid", tid, "planid", plan, "offercontext", ctx);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_decref(offers);
    json_decref(test_post_json(url, text, &status));
    free(text);
    ck_assert_int_eq(status, 200);

    /* Its price as the management API shows it once completed. */
    snprintf(path, sizeof path, "/mgmt/tp/purchases/%s", tid);
    char price[32] = "", currency[8] = "";
    for (int n = 0; n < 300 && !*price; n++) {
        json_t *p = edge_json(path, &status);
        const char *state = json_string_value(json_object_get(p, "state"));
        if (status == 200 && state && strcmp(state, "completed") == 0) {
            snprintf(price, sizeof price, "%s", str_of(p, "price"));
            snprintf(currency, sizeof currency, "%s", str_of(p, "currency"));
        }
        json_decref(p);
        if (!*price) test_sleep_ms(100);
    }
    ck_assert_msg(*price, "%s never completed", tid);

    /* kafkajs reads millom.settlement.records; the record of this purchase
     * arrives once settlement-reporter settled it (polled: a new group
     * each round reads the topic from the beginning). */
    json_t *rec = NULL, *line = NULL;
    for (int round = 0; round < 6 && !rec; round++) {
        char args[256];
        snprintf(args, sizeof args,
                 "consume --topic millom.settlement.records --type millom.v1.SettlementRecord "
                 "--group kjs-settlement-%ld-%d --idle-ms 4000",
                 (long)getpid(), round);
        node_output out;
        run_interop(args, NULL, &out);
        for (size_t l = 0; l < out.n && !rec; l++) {
            json_t *v = json_object_get(out.lines[l], "value");
            if (v && strcmp(str_of(v, "transid"), tid) == 0) {
                line = json_incref(out.lines[l]);
                rec = v;
            }
        }
        node_output_free(&out);
    }
    ck_assert_msg(rec != NULL, "no settlement record of %s", tid);
    ck_assert_str_eq(str_of(line, "key"), "tp"); /* key = operator */
    ck_assert_str_eq(str_of(rec, "operator"), "tp");
    ck_assert_str_eq(str_of(rec, "serviceProvider"), SP);
    ck_assert_str_eq(str_of(rec, "planId"), plan);
    ck_assert_str_eq(str_of(rec, "currency"), currency);
    ck_assert_str_eq(str_of(rec, "fundSource"), "FUND_SOURCE_WALLET");
    int64_t amount = strtoll(str_of(rec, "amountMinor"), NULL, 10);
    int scale = (int)json_integer_value(json_object_get(rec, "currencyScale"));
    ck_assert_int_gt(amount, 0);
    ck_assert_int_eq(amount, minor_units(price, scale));
    ck_assert_int_eq(minor_units(str_of(rec, "amount"), scale), amount);
    ck_assert_int_eq(strtoll(str_of(rec, "operatorShareMinor"), NULL, 10) +
                         strtoll(str_of(rec, "providerShareMinor"), NULL, 10) +
                         strtoll(str_of(rec, "millomShareMinor"), NULL, 10),
                     amount);
    const char *hash = str_of(rec, "subscriberHash");
    ck_assert(*hash);
    ck_assert_ptr_null(strstr(hash, msisdn));
    /* day: the UTC date of completedAtMs */
    time_t completed = (time_t)(strtoll(str_of(rec, "completedAtMs"), NULL, 10) / 1000);
    ck_assert(completed > 0);
    char day[11];
    strftime(day, sizeof day, "%Y-%m-%d", gmtime(&completed));
    ck_assert_str_eq(str_of(rec, "day"), day);
    json_decref(line);
}
END_TEST

static void free_producer(void) {
    kafka_producer_free(producer);
    producer = NULL;
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (access(INTEROP, R_OK) != 0 || access("tools/kafkajs/node_modules/kafkajs", R_OK) != 0 ||
        system("node --version > /dev/null 2>&1") != 0) {
        fprintf(stderr, "test_kafkajs_interop: needs node and tools/kafkajs/node_modules "
                        "(scripts/deps.sh installs them); run from the repository's root\n");
        return 1;
    }
    char public_url[64];
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    const char *env[] = {"MILLOM_NOTIFY_BACKOFF_MS=50", "MILLOM_NOTIFY_BACKOFF_MAX_MS=200",
                         public_url, NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp, sizeof sp, "http://127.0.0.1:%d", stack.sp_port);
    char err[256];
    producer = kafka_producer_new("test-kafkajs-interop", 0, err, sizeof err);
    if (!producer) {
        fprintf(stderr, "producer: %s\n", err);
        stack_stop(&stack);
        return 1;
    }
    Suite *s = suite_create("kafkajs_interop");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 180);
    tcase_add_unchecked_fixture(tc, NULL, free_producer); /* before the stack stops */
    tcase_add_test(tc, kafkajs_events_are_notified_like_millom_own);
    tcase_add_test(tc, millom_producers_partition_keys_like_the_java_client);
    tcase_add_test(tc, settlement_records_read_by_a_kafkajs_group);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
