/* millomctl's operator commands (issue 19 item 4) against a real stack:
 *   purchases get TRANSID   a real purchase, in table, CSV and JSON; an
 *                           unknown one exits 1; api-edge down exits 3
 *   consents SUBSCRIBER     a registered consent; none exits 1
 *   dlq list [TOPIC]        a message notifier really dead-lettered, with
 *                           its error; every DLQ's count
 *   dlq replay TOPIC        --dry-run changes nothing; a replay republishes
 *                           key, payload and original headers (not the DLQ
 *                           ones) to the source topic, notifier then
 *                           delivers it exactly once, the DLQ offset is
 *                           committed (a second replay finds nothing new),
 *                           a progress/summary line goes to stderr
 *   usage errors exit 2, an unreachable broker exits 3.
 * Everything is polled with a bound; nothing measures wall-clock time. */
#include "tests/lib/stack.h"
#include "shared/plumbing/kafka.h"
#include "millom/v1/subscriber.pb-c.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BASE_PORT 22320
#define SP "testserviceprovider"
#define EVENTS "millom.subscriber.events"

static test_stack stack;
static char edge[64], sp[64];
static kafka_producer *producer;

typedef struct {
    int exit_code;
    char out[65536];
    char err[8192];
} ctl_result;

static void read_file(const char *path, char *buf, size_t len) {
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs `$BUILD/bin/millomctl <args>` (the stack's broker file and edge port
 * in its environment, MILLOM_EDGE_PORT pointing at this stack). */
static void ctl(const char *args, ctl_result *r) {
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build/release";
    char out[400], err[400], cmd[2048];
    snprintf(out, sizeof out, "%s/ctl-out.txt", stack.dir);
    snprintf(err, sizeof err, "%s/ctl-err.txt", stack.dir);
    snprintf(cmd, sizeof cmd, "MILLOM_EDGE_PORT=%d %s/bin/millomctl %s > %s 2> %s", stack.edge_port,
             build, args, out, err);
    int st = system(cmd);
    r->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    read_file(out, r->out, sizeof r->out);
    read_file(err, r->err, sizeof r->err);
}

/* The first JSON line of r->out (caller decrefs). */
static json_t *first_json_line(const ctl_result *r) {
    json_error_t e;
    json_t *j = json_loads(r->out, JSON_DISABLE_EOF_CHECK, &e);
    ck_assert_msg(j != NULL, "not JSON: %s (stderr: %s)", r->out, r->err);
    return j;
}

/* Every JSON line of r->out as an array (caller decrefs). */
static json_t *json_lines(const ctl_result *r) {
    json_t *all = json_array();
    const char *p = r->out;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len) {
            json_t *j = json_loadb(p, len, 0, NULL);
            ck_assert_msg(j != NULL, "not a JSON line: %.*s", (int)len, p);
            json_array_append_new(all, j);
        }
        p += len + (nl ? 1 : 0);
    }
    return all;
}

static const char *str_of(json_t *o, const char *name) {
    const char *s = json_string_value(json_object_get(o, name));
    ck_assert_msg(s != NULL, "no string field %s", name);
    return s;
}

/* ------------------------------------------------------------ purchases */

static void buy(const char *msisdn, const char *plan, const char *tid) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/upsellOffer", edge, msisdn);
    long status = 0;
    json_t *offers = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    const char *ctx = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(offers, "offers"), i, o) {
        if (strcmp(str_of(o, "planId"), plan) == 0) ctx = str_of(o, "offerContext");
    }
    ck_assert_ptr_nonnull(ctx);
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, msisdn);
    json_t *req = json_pack("{s:s,s:s,s:s}", "transid", tid, "planid", plan, "offercontext", ctx);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_decref(offers);
    json_decref(test_post_json(url, text, &status));
    free(text);
    ck_assert_int_eq(status, 200);
}

START_TEST(purchases_get_in_every_format) {
    char tid[64], args[256];
    snprintf(tid, sizeof tid, "ctl-buy-%ld", (long)getpid());
    buy("924542610003", "tp-social-daily", tid);
    ctl_result r;
    /* Completed once purchase-executor recorded it (polled). */
    snprintf(args, sizeof args, "purchases get %s --format json", tid);
    json_t *p = NULL;
    for (int i = 0; i < 100; i++) {
        ctl(args, &r);
        if (r.exit_code == 0) {
            p = first_json_line(&r);
            if (strcmp(str_of(p, "state"), "completed") == 0) break;
            json_decref(p);
            p = NULL;
        }
        test_sleep_ms(100);
    }
    ck_assert_msg(p != NULL, "exit %d: %s", r.exit_code, r.err);
    ck_assert_str_eq(str_of(p, "transid"), tid);
    ck_assert_str_eq(str_of(p, "planId"), "tp-social-daily");
    ck_assert_str_eq(str_of(p, "serviceProvider"), SP);
    char price[32];
    snprintf(price, sizeof price, "%s", str_of(p, "price"));
    json_decref(p);

    snprintf(args, sizeof args, "purchases get %s", tid); /* table by default */
    ctl(args, &r);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_msg(strstr(r.out, "state ") && strstr(r.out, "completed\n"), "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, tid));

    snprintf(args, sizeof args, "purchases get %s --format csv --service-provider " SP, tid);
    ctl(args, &r);
    ck_assert_int_eq(r.exit_code, 0);
    /* A header row naming the fields, then one row of values. */
    ck_assert_msg(strncmp(r.out, "transid,", 8) == 0, "%s", r.out);
    char *row = strstr(r.out, "\r\n");
    ck_assert_ptr_nonnull(row);
    ck_assert_msg(strncmp(row + 2, tid, strlen(tid)) == 0, "%s", r.out);
    ck_assert_ptr_nonnull(strstr(row, price));
    ck_assert_ptr_nonnull(strstr(row, ",completed,"));
}
END_TEST

START_TEST(purchases_get_exit_codes) {
    ctl_result r;
    ctl("purchases get ctl-no-such-purchase --format json", &r);
    ck_assert_int_eq(r.exit_code, 1);
    ck_assert_str_eq(r.out, "");
    ck_assert_ptr_nonnull(strstr(r.err, "404"));
    ctl("purchases get", &r);
    ck_assert_int_eq(r.exit_code, 2);
    ctl("purchases get x --format yaml", &r);
    ck_assert_int_eq(r.exit_code, 2);
    /* Nothing listens on BASE_PORT + 9. */
    char args[128];
    snprintf(args, sizeof args, "purchases get ctl-x --edge http://127.0.0.1:%d", BASE_PORT + 9);
    ctl(args, &r);
    ck_assert_int_eq(r.exit_code, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "no answer"));
}
END_TEST

/* ------------------------------------------------------------- consents */

START_TEST(consents_of_a_subscriber) {
    const char *sub = "923001130001";
    char tid[64];
    snprintf(tid, sizeof tid, "ctl-consent-%ld", (long)getpid());
    ck_assert_int_eq(test_register_consent(edge, SP, sub, tid, "[\"out-of-data\",\"low-data\"]"),
                     200);
    ctl_result r;
    ctl("consents 923001130001 --format json", &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    json_t *j = first_json_line(&r);
    json_t *c = json_array_get(json_object_get(j, "consents"), 0);
    ck_assert_str_eq(str_of(c, "serviceProvider"), SP);
    ck_assert_str_eq(str_of(c, "transactionId"), tid);
    ck_assert_int_eq(json_array_size(json_object_get(c, "types")), 2);
    json_decref(j);

    ctl("consents 923001130001 --format csv", &r);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_msg(strncmp(r.out, "kind,serviceProvider,active,types,", 34) == 0, "%s", r.out);
    ck_assert_msg(strstr(r.out, "consent," SP ",true,\"out-of-data,low-data\"") ||
                      strstr(r.out, "consent," SP ",true,\"low-data,out-of-data\""),
                  "%s", r.out);
    ctl("consents 923001130001", &r);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "serviceProvider"));
    ck_assert_ptr_nonnull(strstr(r.out, tid));

    ctl("consents 923001130999", &r); /* never registered */
    ck_assert_int_eq(r.exit_code, 1);
    ck_assert_str_eq(r.out, "");
}
END_TEST

/* ------------------------------------------------------------------ dlq */

static void event_bytes(const char *msisdn, const char *tid, const char *type, uint8_t *buf,
                        size_t cap, size_t *len) {
    Millom__V1__SubscriberRef s = MILLOM__V1__SUBSCRIBER_REF__INIT;
    s.operator_ = "tp";
    s.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    s.subscriber_id = (char *)msisdn;
    Millom__V1__SubscriberEvent ev = MILLOM__V1__SUBSCRIBER_EVENT__INIT;
    ev.operator_ = "tp";
    ev.subscriber = &s;
    ev.type = (char *)type;
    ev.transaction_id = (char *)tid;
    ck_assert_uint_le(millom__v1__subscriber_event__get_packed_size(&ev), cap);
    *len = millom__v1__subscriber_event__pack(&ev, buf);
}

static void produce(const char *topic, const char *key, const void *value, size_t len,
                    const kafka_header *h, size_t n_h) {
    ck_assert_int_eq(kafka_produce(producer, topic, -1, key, strlen(key), value, len, h, n_h), 0);
    ck_assert_int_eq(kafka_producer_flush(producer, 10000), 0);
}

/* The rows of `dlq list TOPIC --format json` whose key is key. */
static int dlq_rows_with_key(const char *key, json_t **first) {
    ctl_result r;
    ctl("dlq list " EVENTS " --format json", &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    json_t *rows = json_lines(&r);
    int n = 0;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *k = json_string_value(json_object_get(row, "key"));
        if (k && strcmp(k, key) == 0 && n++ == 0 && first) *first = json_incref(row);
    }
    json_decref(rows);
    return n;
}

/* How many messages `dlq list TOPIC` shows as pending. */
static int pending_count(void) {
    ctl_result r;
    ctl("dlq list " EVENTS " --format json", &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    json_t *rows = json_lines(&r);
    int n = (int)json_array_size(rows);
    json_decref(rows);
    return n;
}

/* `key<TAB>headers` lines of every message of topic (kcat). */
static void kcat_dump(const char *topic, char *out, size_t len) {
    char path[400], cmd[1024];
    snprintf(path, sizeof path, "%s/kcat.txt", stack.dir);
    snprintf(cmd, sizeof cmd, "kcat -C -b %s -t %s -o beginning -e -q -f '%%k\\t%%h\\n' > %s 2>&1",
             stack.bootstrap, topic, path);
    ck_assert_int_eq(system(cmd), 0);
    read_file(path, out, len);
}

START_TEST(dlq_list_and_replay) {
    char garbage_key[32], fixed_key[32], tid[64];
    snprintf(garbage_key, sizeof garbage_key, "9230011%05ld", (long)getpid() % 100000);
    snprintf(fixed_key, sizeof fixed_key, "923001140001");
    snprintf(tid, sizeof tid, "ctl-replay-%ld", (long)getpid());

    /* A message notifier cannot decode: notifier dead-letters it itself. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
    produce(EVENTS, garbage_key, junk, sizeof junk, NULL, 0);
    json_t *row = NULL;
    for (int i = 0; i < 200 && dlq_rows_with_key(garbage_key, NULL) == 0; i++) test_sleep_ms(100);
    ck_assert_int_eq(dlq_rows_with_key(garbage_key, &row), 1);
    ck_assert_str_eq(str_of(row, "sourceTopic"), EVENTS);
    ck_assert(strlen(str_of(row, "error")) > 0);
    json_decref(row);

    /* A good event that was dead-lettered before a fix (as kafka.c writes
     * it: the original headers plus the four DLQ ones), for a subscriber
     * who consented. */
    ck_assert_int_eq(
        test_register_consent(edge, SP, fixed_key, "ctl-replay-consent", "[\"out-of-data\"]"), 200);
    uint8_t buf[512];
    size_t len;
    event_bytes(fixed_key, tid, "out-of-data", buf, sizeof buf, &len);
    const kafka_header h[] = {{"traceparent", "00-replay-trace-01"},
                              {"error", "store unavailable"},
                              {"source.topic", EVENTS},
                              {"source.partition", "0"},
                              {"source.offset", "42"}};
    produce(EVENTS ".dlq", fixed_key, buf, len, h, sizeof h / sizeof h[0]);
    ck_assert_int_eq(dlq_rows_with_key(fixed_key, NULL), 1);

    /* Every DLQ's counts: this one has at least the two. */
    ctl_result r;
    ctl("dlq list --format csv", &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_msg(strncmp(r.out, "topic,dlq,messages,pending\r\n", 28) == 0, "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, EVENTS "," EVENTS ".dlq,"));

    /* A dry run lists both and changes nothing. */
    ctl("dlq replay " EVENTS " --dry-run --format json", &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, garbage_key));
    ck_assert_ptr_nonnull(strstr(r.out, fixed_key));
    ck_assert_ptr_nonnull(strstr(r.err, "dry run"));
    ck_assert_int_eq(dlq_rows_with_key(fixed_key, NULL), 1);
    long status = 0;
    ck_assert_int_eq(test_sp_received_count(sp, "notification", tid, 0, NULL, &status), 0);

    /* One message (--max 1): it is no longer pending, the others are. (A
     * replayed junk message comes back at a new offset, so offsets are
     * compared, not counts.) */
    int pending = pending_count();
    ck_assert_int_ge(pending, 2);
    ctl("dlq replay " EVENTS " --max 1 --format json", &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_msg(strstr(r.err, "replayed 1 of 1 message(s)") != NULL, "stderr: %s", r.err);
    json_t *replayed = json_lines(&r);
    ck_assert_int_eq(json_array_size(replayed), 1);
    json_t *first = json_array_get(replayed, 0);
    ctl("dlq list " EVENTS " --format json", &r);
    json_t *rows = json_lines(&r);
    size_t k;
    json_t *row_left;
    int still_pending = 0;
    json_array_foreach(rows, k, row_left) {
        int same =
            json_equal(json_object_get(row_left, "partition"),
                       json_object_get(first, "partition")) &&
            json_equal(json_object_get(row_left, "offset"), json_object_get(first, "offset"));
        ck_assert_msg(!same, "the replayed message is still pending");
        still_pending++;
    }
    ck_assert_int_ge(still_pending, pending - 1);
    json_decref(rows);
    json_decref(replayed);

    /* The rest: every pending message back to its topic. */
    ctl("dlq replay " EVENTS " --format json", &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_msg(strstr(r.err, "message(s) from " EVENTS ".dlq to " EVENTS) != NULL, "stderr: %s",
                  r.err);
    ck_assert_int_eq(pending_count() <= 1, 1); /* at most the junk, back again */

    /* notifier handles the fixed event like any other: one webhook. */
    int n = 0;
    for (int i = 0; i < 300 && n == 0; i++) {
        n = test_sp_received_count(sp, "notification", tid, 1, NULL, &status);
        if (!n) test_sleep_ms(100);
    }
    ck_assert_int_eq(n, 1);
    /* Original headers kept, the DLQ's dropped, the key unchanged. */
    char dump[65536];
    kcat_dump(EVENTS, dump, sizeof dump);
    char want[128];
    snprintf(want, sizeof want, "%s\ttraceparent=00-replay-trace-01\n", fixed_key);
    ck_assert_msg(strstr(dump, want) != NULL, "%s", dump);

    /* Committed: the fixed event is no longer pending; the junk failed
     * again and is back, at a new offset, once. */
    for (int i = 0; i < 200 && dlq_rows_with_key(garbage_key, NULL) == 0; i++) test_sleep_ms(100);
    ck_assert_int_eq(dlq_rows_with_key(fixed_key, NULL), 0);
    ck_assert_int_eq(dlq_rows_with_key(garbage_key, NULL), 1);
    /* And no second webhook for the replayed event. */
    ck_assert_int_eq(test_sp_received_count(sp, "notification", tid, 0, NULL, &status), 1);
}
END_TEST

START_TEST(dlq_exit_codes) {
    ctl_result r;
    ctl("dlq replay", &r);
    ck_assert_int_eq(r.exit_code, 2);
    ctl("dlq replay millom.replies", &r); /* no DLQ twin */
    ck_assert_int_eq(r.exit_code, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "millom.subscriber.events"));
    ctl("dlq list --max x", &r);
    ck_assert_int_eq(r.exit_code, 2);
    /* No broker at this address. */
    char bootstrap[64];
    snprintf(bootstrap, sizeof bootstrap, "127.0.0.1:%d", BASE_PORT + 9);
    setenv("KAFKA_BOOTSTRAP", bootstrap, 1);
    ctl("dlq list " EVENTS " --timeout-ms 2000", &r);
    unsetenv("KAFKA_BOOTSTRAP");
    ck_assert_msg(r.exit_code == 3, "exit %d: %s", r.exit_code, r.err);
}
END_TEST

static void free_producer(void) {
    kafka_producer_free(producer);
    producer = NULL;
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *env[] = {"MILLOM_NOTIFY_BACKOFF_MS=50", "MILLOM_NOTIFY_BACKOFF_MAX_MS=200", NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp, sizeof sp, "http://127.0.0.1:%d", stack.sp_port);
    char err[256];
    producer = kafka_producer_new("test-millomctl", 0, err, sizeof err);
    if (!producer) {
        fprintf(stderr, "producer: %s\n", err);
        stack_stop(&stack);
        return 1;
    }
    Suite *s = suite_create("millomctl");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 180);
    tcase_add_unchecked_fixture(tc, NULL, free_producer); /* before the stack stops */
    tcase_add_test(tc, purchases_get_in_every_format);
    tcase_add_test(tc, purchases_get_exit_codes);
    tcase_add_test(tc, consents_of_a_subscriber);
    tcase_add_test(tc, dlq_list_and_replay);
    tcase_add_test(tc, dlq_exit_codes);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
