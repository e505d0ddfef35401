/* notifier's delivery worker with several providers and many deliveries in
 * flight (issue 13):
 *   - many events to two providers: each (event, provider) delivered
 *     exactly once, each X-Millom-Delivery-Id seen exactly once;
 *   - a provider's maxInFlight (tenants file) bounds its calls at once;
 *   - a provider that hangs does not hold up another provider's
 *     deliveries, and gets its own once it answers again;
 *   - notifier killed (SIGKILL) while calls are in flight: after the
 *     restart each of them is sent again with the same delivery id.
 *
 * Two sp-sandbox instances: the stack's (testserviceprovider) and a
 * second one on base + 7 (otherprovider, maxInFlight 3), whose delay,
 * hang and "maxPending" (the most answers waiting at once, so the most
 * calls notifier had open to it) the tests use. The provider of a
 * received notification is read from its signed refresh link
 * (/rnf/{sp}/...). Events are produced straight to
 * millom.subscriber.events. Everything is polled with a bound; nothing
 * measures wall-clock time. */
#include "tests/lib/stack.h"
#include "shared/plumbing/kafka.h"
#include "millom/v1/subscriber.pb-c.h"

#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BASE_PORT 21120
#define SP2_PORT (BASE_PORT + 7)
#define SP "testserviceprovider"
#define OTHER "otherprovider"
#define OTHER_MAX_IN_FLIGHT 3
#define SUBSCRIBERS 6
#define TYPE "low-data"
#define MAX_EVENTS 400
#define MAX_IDS 100000

static test_stack stack;
static char edge[64], sp1[64], sp2[64], notifier_admin[64], tenants_env[400];
static kafka_producer *producer;

/* What the two sp-sandboxes received for one test's events (prefix). */
typedef struct {
    char prefix[48];
    int events;
    int ok[MAX_EVENTS][2];      /* 200 answers per event and provider (0: SP, 1: OTHER) */
    long ids[MAX_EVENTS][2][2]; /* the first two delivery ids seen for each */
    long since[2];              /* per sp-sandbox: the last record id read */
    unsigned char *id_count;    /* records per delivery id */
    long raw, wrong_provider;   /* records of this test; of an unexpected provider */
    long with_offers;           /* records whose body carried offers */
} seen;

static const char *subscriber(int i, char *buf, size_t len) {
    /* mno-sandbox's seeded subscribers, so offer-resolver has offers */
    snprintf(buf, len, "9245426100%02d", i % SUBSCRIBERS);
    return buf;
}

static void seen_init(seen *s, const char *name, int events) {
    memset(s, 0, sizeof *s);
    snprintf(s->prefix, sizeof s->prefix, "%s%ld", name, (long)getpid());
    s->events = events;
    s->id_count = calloc(MAX_IDS, 1);
    ck_assert_ptr_nonnull(s->id_count);
}

static void produce_event(const seen *s, int k) {
    char msisdn[32], tid[64];
    subscriber(k, msisdn, sizeof msisdn);
    snprintf(tid, sizeof tid, "%s-%d", s->prefix, k);
    Millom__V1__SubscriberRef ref = MILLOM__V1__SUBSCRIBER_REF__INIT;
    ref.operator_ = "tp";
    ref.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    ref.subscriber_id = msisdn;
    Millom__V1__SubscriberEvent ev = MILLOM__V1__SUBSCRIBER_EVENT__INIT;
    ev.operator_ = "tp";
    ev.subscriber = &ref;
    ev.type = TYPE;
    ev.transaction_id = tid;
    uint8_t buf[512];
    ck_assert_uint_le(millom__v1__subscriber_event__get_packed_size(&ev), sizeof buf);
    size_t len = millom__v1__subscriber_event__pack(&ev, buf);
    ck_assert_int_eq(kafka_produce(producer, "millom.subscriber.events", -1, msisdn, strlen(msisdn),
                                   buf, len, NULL, 0),
                     0);
}

static void produce_all(const seen *s) {
    for (int k = 0; k < s->events; k++) produce_event(s, k);
    ck_assert_int_eq(kafka_producer_flush(producer, 10000), 0);
}

/* The provider of a rich notification: its refresh link's /rnf/{sp}/. */
static int provider_of(json_t *body) {
    const char *link = json_string_value(json_object_get(body, "refresh"));
    const char *p = link ? strstr(link, "/rnf/") : NULL;
    if (!p) return -1;
    p += 5;
    if (strncmp(p, SP "/", strlen(SP) + 1) == 0) return 0;
    if (strncmp(p, OTHER "/", strlen(OTHER) + 1) == 0) return 1;
    return -1;
}

/* Reads the new records of sp-sandbox `which` (0: sp1, 1: sp2) into s. */
static void scan_one(seen *s, int which) {
    const char *base = which ? sp2 : sp1;
    for (;;) {
        long status = 0;
        json_t *j = test_sp_received(base, "notification", s->since[which], 1000, &status);
        ck_assert_int_eq(status, 200);
        json_t *list = json_object_get(j, "received");
        size_t n = json_array_size(list), i;
        json_t *rec;
        json_array_foreach(list, i, rec) {
            long id = (long)json_integer_value(json_object_get(rec, "id"));
            if (id > s->since[which]) s->since[which] = id;
            const char *t = json_string_value(json_object_get(rec, "transactionId"));
            size_t plen = strlen(s->prefix);
            if (!t || strncmp(t, s->prefix, plen) != 0 || t[plen] != '-') continue;
            int k = atoi(t + plen + 1);
            if (k < 0 || k >= s->events) continue;
            s->raw++;
            int p = provider_of(json_object_get(rec, "body"));
            if (p != which) {
                s->wrong_provider++;
                continue;
            }
            const char *did = json_string_value(json_object_get(rec, "deliveryId"));
            long d = did ? atol(did) : 0;
            ck_assert_msg(d > 0 && d < MAX_IDS, "record %ld has delivery id %s", id,
                          did ? did : "(none)");
            if (s->id_count[d] < 255) s->id_count[d]++;
            if (json_array_size(json_object_get(json_object_get(rec, "body"), "offers")) > 0)
                s->with_offers++;
            if (json_integer_value(json_object_get(rec, "status")) == 200) {
                if (s->ok[k][p] < 2) s->ids[k][p][s->ok[k][p]] = d;
                s->ok[k][p]++;
            }
        }
        json_decref(j);
        if (n < 1000) break;
    }
}

static void scan(seen *s) {
    scan_one(s, 0);
    scan_one(s, 1);
}

static int delivered(const seen *s, int p) {
    int d = 0;
    for (int k = 0; k < s->events; k++) d += s->ok[k][p] > 0;
    return d;
}

/* Polls (bounded) until every event reached provider p, or the bound. */
static void wait_delivered(seen *s, int p, int polls) {
    for (int i = 0; i < polls && delivered(s, p) < s->events; i++) {
        test_sleep_ms(100);
        scan(s);
    }
}

static void wait_queue_empty(void) {
    for (int i = 0; i < 400 && test_metric(notifier_admin, "millom_delivery_queue_depth") != 0; i++)
        test_sleep_ms(50);
}

static json_t *sp2_behaviour(const char *json) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/behaviour", sp2);
    long status = 0;
    json_t *j = json ? test_post_json(url, json, &status) : test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    return j;
}

static long sp2_field(const char *field) {
    json_t *j = sp2_behaviour(NULL);
    long v = (long)json_integer_value(json_object_get(j, field));
    json_decref(j);
    return v;
}

static void sp2_set(const char *json) { json_decref(sp2_behaviour(json)); }

static void assert_each_once(const seen *s, int p) {
    for (int k = 0; k < s->events; k++)
        ck_assert_msg(s->ok[k][p] == 1, "%s-%d reached %s %d times (delivery ids %ld, %ld)",
                      s->prefix, k, p ? OTHER : SP, s->ok[k][p], s->ids[k][p][0], s->ids[k][p][1]);
}

START_TEST(many_events_to_two_providers_exactly_once) {
    seen *s = calloc(1, sizeof *s);
    seen_init(s, "once", 120);
    produce_all(s);
    wait_delivered(s, 0, 1200);
    wait_delivered(s, 1, 1200);
    wait_queue_empty();
    scan(s);
    fprintf(stderr,
            "providers: %d events, %ld records (%ld with offers), %d/%d delivered to %s/%s\n",
            s->events, s->raw, s->with_offers, delivered(s, 0), delivered(s, 1), SP, OTHER);
    ck_assert_int_eq(s->wrong_provider, 0);
    assert_each_once(s, 0);
    assert_each_once(s, 1);
    ck_assert_int_eq(s->raw, 2L * s->events);
    ck_assert_int_gt(s->with_offers, 0); /* offers reach the providers */
    for (long d = 0; d < MAX_IDS; d++)
        ck_assert_msg(s->id_count[d] <= 1, "delivery id %ld received %d times", d, s->id_count[d]);
    free(s->id_count);
    free(s);
}
END_TEST

START_TEST(max_in_flight_bounds_calls_at_once) {
    seen *s = calloc(1, sizeof *s);
    seen_init(s, "inflight", 40);
    sp2_set("{\"delayMs\":300}"); /* also starts maxPending afresh */
    produce_all(s);
    wait_delivered(s, 1, 1200);
    long max_pending = sp2_field("maxPending");
    sp2_set("{}");
    wait_queue_empty();
    scan(s);
    fprintf(stderr, "providers: %s (maxInFlight %d) had at most %ld calls open at once\n", OTHER,
            OTHER_MAX_IN_FLIGHT, max_pending);
    assert_each_once(s, 0);
    assert_each_once(s, 1);
    ck_assert_int_le(max_pending, OTHER_MAX_IN_FLIGHT);
    /* and the calls did overlap: more than one at a time */
    ck_assert_int_ge(max_pending, 2);
    free(s->id_count);
    free(s);
}
END_TEST

START_TEST(hung_provider_does_not_hold_up_another) {
    seen *s = calloc(1, sizeof *s);
    seen_init(s, "hang", 40);
    sp2_set("{\"hang\":true}");
    produce_all(s);
    wait_delivered(s, 0, 1200);
    scan(s);
    int other_before = 0;
    for (int k = 0; k < s->events; k++) other_before += s->ok[k][1];
    long pending = sp2_field("pending");
    fprintf(stderr, "providers: %s got %d/%d while %s hung with %ld calls open\n", SP,
            delivered(s, 0), s->events, OTHER, pending);
    assert_each_once(s, 0);
    /* only its maxInFlight calls reached the hung provider */
    ck_assert_int_le(other_before, OTHER_MAX_IN_FLIGHT);
    ck_assert_int_le(pending, OTHER_MAX_IN_FLIGHT);
    sp2_set("{}"); /* answers the hung calls */
    wait_delivered(s, 1, 1200);
    wait_queue_empty();
    scan(s);
    assert_each_once(s, 1);
    free(s->id_count);
    free(s);
}
END_TEST

START_TEST(kill_mid_flight_resends_with_the_same_id) {
    seen *s = calloc(1, sizeof *s);
    seen_init(s, "kill", 20);
    sp2_set("{\"hang\":true}");
    produce_all(s);
    long pending = 0;
    for (int i = 0; i < 600 && (pending = sp2_field("pending")) < OTHER_MAX_IN_FLIGHT; i++)
        test_sleep_ms(50);
    ck_assert_int_eq(pending, OTHER_MAX_IN_FLIGHT);
    scan_one(s, 1); /* only the hung provider's so far */
    /* The calls in flight now: their delivery ids. */
    long in_flight[MAX_IDS > 64 ? 64 : MAX_IDS];
    int n_in_flight = 0;
    for (long d = 0; d < MAX_IDS && n_in_flight < 64; d++)
        if (s->id_count[d]) in_flight[n_in_flight++] = d;
    ck_assert_int_eq(n_in_flight, OTHER_MAX_IN_FLIGHT);
    int st = stack_kill(&stack, "notifier", SIGKILL);
    ck_assert(WIFSIGNALED(st));
    sp2_set("{}"); /* the hung answers go to a dead process */
    const char *env[] = {tenants_env, NULL};
    ck_assert_int_gt(stack_respawn_in_place(&stack, "notifier", env), 0);
    ck_assert_int_eq(stack_wait_ready(stack.notifier_port, 60000), 0);
    wait_delivered(s, 0, 1200);
    wait_delivered(s, 1, 1200);
    wait_queue_empty();
    scan(s);
    fprintf(stderr, "providers: killed with %d calls open; after the restart %d/%d delivered\n",
            n_in_flight, delivered(s, 1), s->events);
    for (int i = 0; i < n_in_flight; i++)
        ck_assert_msg(s->id_count[in_flight[i]] >= 2,
                      "delivery id %ld, in flight at the kill, was not sent again", in_flight[i]);
    for (int k = 0; k < s->events; k++) {
        ck_assert_msg(s->ok[k][0] >= 1, "%s-%d never reached %s", s->prefix, k, SP);
        ck_assert_msg(s->ok[k][1] >= 1, "%s-%d never reached %s", s->prefix, k, OTHER);
    }
    free(s->id_count);
    free(s);
}
END_TEST

/* The stack's tenants with otherprovider on the second sp-sandbox and its
 * maxInFlight, testserviceprovider with a rate it never reaches here. */
static int write_tenants(char *path, size_t len) {
    json_t *t = json_load_file(stack.tenants_file, 0, NULL);
    if (!t) return -1;
    size_t i;
    json_t *p;
    char url[128];
    json_array_foreach(json_object_get(t, "serviceProviders"), i, p) {
        const char *id = json_string_value(json_object_get(p, "id"));
        if (id && strcmp(id, OTHER) == 0) {
            snprintf(url, sizeof url, "http://127.0.0.1:%d/notifications", SP2_PORT);
            json_object_set_new(p, "notificationUrl", json_string(url));
            json_object_set_new(p, "maxInFlight", json_integer(OTHER_MAX_IN_FLIGHT));
        } else if (id && strcmp(id, SP) == 0) {
            json_object_set_new(p, "maxInFlight", json_integer(8));
            json_object_set_new(p, "maxPerSecond", json_integer(100000));
        }
    }
    snprintf(path, len, "%s/tenants-providers.json", stack.dir);
    int rc = json_dump_file(t, path, JSON_INDENT(2));
    json_decref(t);
    return rc;
}

static int start_more(void) {
    char dir2[320], dir_env[340], port_env[64], tenants[360];
    snprintf(dir2, sizeof dir2, "%s/sp2", stack.dir);
    if (mkdir(dir2, 0700) != 0) return -1;
    snprintf(dir_env, sizeof dir_env, "MILLOM_DATA_DIR=%s", dir2);
    snprintf(port_env, sizeof port_env, "MILLOM_SP_PORT=%d", SP2_PORT);
    const char *env2[] = {dir_env, port_env, NULL};
    if (stack_spawn_as(&stack, "sp-sandbox", "sp-sandbox-2", env2) < 0 ||
        stack_wait_ready(SP2_PORT, 30000) != 0)
        return -1;
    if (write_tenants(tenants, sizeof tenants) != 0) return -1;
    snprintf(tenants_env, sizeof tenants_env, "MILLOM_TENANTS=%s", tenants);
    const char *env[] = {tenants_env, NULL};
    if (stack_stop_one(&stack, "notifier") != 0 ||
        stack_respawn_in_place(&stack, "notifier", env) <= 0 ||
        stack_wait_ready(stack.notifier_port, 60000) != 0)
        return -1;
    /* Both providers' consent for every subscriber. */
    for (int i = 0; i < SUBSCRIBERS; i++) {
        char msisdn[32], tid[96];
        subscriber(i, msisdn, sizeof msisdn);
        for (int p = 0; p < 2; p++) {
            snprintf(tid, sizeof tid, "prov%ld-consent-%d-%d", (long)getpid(), p, i);
            long st = test_register_consent(edge, p ? OTHER : SP, msisdn, tid, "[\"" TYPE "\"]");
            if (st != 200) {
                fprintf(stderr, "register %s for %s: %ld\n", msisdn, p ? OTHER : SP, st);
                return -1;
            }
        }
    }
    return 0;
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char public_url[64];
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    const char *env[] = {"MILLOM_NOTIFY_BACKOFF_MS=50", "MILLOM_NOTIFY_BACKOFF_MAX_MS=500",
                         "MILLOM_NOTIFY_MAX_ATTEMPTS=1000", "MILLOM_NOTIFY_QUOTA=100000",
                         /* hung calls stay open for the whole test */
                         "MILLOM_NOTIFY_TIMEOUT_MS=120000", "MILLOM_KAFKA_SESSION_TIMEOUT_MS=5000",
                         "MILLOM_PURCHASE_TIMER_S=0", public_url, NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp1, sizeof sp1, "http://127.0.0.1:%d", stack.sp_port);
    snprintf(sp2, sizeof sp2, "http://127.0.0.1:%d", SP2_PORT);
    snprintf(notifier_admin, sizeof notifier_admin, "http://127.0.0.1:%d", stack.notifier_port);
    char err[256];
    producer = kafka_producer_new("test-notify-providers", 0, err, sizeof err);
    if (!producer || start_more() != 0) {
        fprintf(stderr, "setup: %s\n", producer ? "second sp-sandbox, notifier or consent" : err);
        kafka_producer_free(producer);
        stack_stop(&stack);
        return 1;
    }
    Suite *s = suite_create("notify providers");
    TCase *tc = tcase_create("providers");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, many_events_to_two_providers_exactly_once);
    tcase_add_test(tc, max_in_flight_bounds_calls_at_once);
    tcase_add_test(tc, hung_provider_does_not_hold_up_another);
    tcase_add_test(tc, kill_mid_flight_resends_with_the_same_id);
    suite_add_tcase(s, tc);
    int rc = stack_run_suite(&stack, s);
    kafka_producer_free(producer);
    return rc;
}
