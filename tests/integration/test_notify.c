/* Notifications end to end: the Notification API on api-edge and events
 * produced straight to millom.subscriber.events reach sp-sandbox through
 * notifier's delivery queue; each verdict (400, 403, 404, 409, 429,
 * duplicate), quota and override; retries after 5xx, no retry after 400;
 * a purchase's final state gives exactly one callback when its answer was
 * 202 "processing", none when it was 200 (unless api-edge says it answered
 * 202 after all); a notification
 * carries offers and signed refresh/ping/shop links that work.
 *
 * Everything is polled with a bound; nothing measures wall-clock time.
 * MILLOM_NOTIFY_BACKOFF_MS=50 keeps retries short. */
#include "tests/lib/stack.h"
#include "shared/contracts/cpid.h"
#include "shared/plumbing/kafka.h"
#include "millom/v1/purchase.pb-c.h"
#include "millom/v1/subscriber.pb-c.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BASE_PORT 18680
#define SP "testserviceprovider"

static test_stack stack;
static char edge[64], sp[64], mno[64], notifier_admin[64], executor_admin[64];
static kafka_producer *producer;

static const char *new_tid(char *buf, size_t len, const char *tag) {
    static int seq;
    snprintf(buf, len, "notify-%s-%ld-%d", tag, (long)getpid(), ++seq);
    return buf;
}

static void do_register(const char *provider, const char *msisdn, const char *types) {
    char tid[64];
    ck_assert_int_eq(
        test_register_consent(edge, provider, msisdn, new_tid(tid, sizeof tid, "consent"), types),
        200);
}

/* POST /notify/tp/v1/single; returns the status, *out the parsed body
 * (NULL if none or not JSON) when out is given. */
static long notify_as(const char *id_type, const char *id, const char *tid, const char *type,
                      const char *extra_query, json_t **out) {
    char url[768], body[512];
    char *esc = curl_easy_escape(NULL, id, 0);
    snprintf(url, sizeof url, "%s/notify/tp/v1/single?idValue=%s&idType=%s%s", edge, esc, id_type,
             extra_query ? extra_query : "");
    curl_free(esc);
    snprintf(body, sizeof body,
             "{\"transactionId\":\"%s\",\"type\":\"%s\",\"messages\":[{\"language\":\"en\","
             "\"message\":\"almost out\"}],\"planDetails\":{\"planId\":\"p1\",\"balance\":10,"
             "\"quota\":\"2000\",\"expiry\":\"2019-02-28T23:59:59.723+05:00\"}}",
             tid, type);
    test_response r;
    test_http("POST", url, NULL, body, &r);
    long status = r.status;
    if (out) *out = r.body && r.len ? json_loads(r.body, 0, NULL) : NULL;
    test_response_free(&r);
    return status;
}

static long notify(const char *msisdn, const char *tid, const char *type, const char *extra,
                   json_t **out) {
    return notify_as("MSISDN", msisdn, tid, type, extra, out);
}

static const char *error_type(json_t *j) {
    return json_string_value(json_object_get(j, "errorType"));
}

/* Records at sp-sandbox of a kind whose transactionId is tid; with
 * status_ok only those answered 200. The first matching body into *first. */
static int received(const char *kind, const char *tid, int status_ok, json_t **first) {
    long status = 0;
    int n = test_sp_received_count(sp, kind, tid, status_ok, first, &status);
    ck_assert_int_eq(status, 200);
    return n;
}

/* Polls (up to ~20 s) until at least `want` records match. */
static int wait_received(const char *kind, const char *tid, int status_ok, int want) {
    int n = 0;
    for (int i = 0; i < 400 && (n = received(kind, tid, status_ok, NULL)) < want; i++)
        test_sleep_ms(50);
    return n;
}

/* POST base + "/admin/behaviour" (sp-sandbox's or mno-sandbox's). */
static void set_behaviour_of(const char *base, const char *json) {
    char url[128];
    snprintf(url, sizeof url, "%s/admin/behaviour", base);
    test_response r;
    test_http("POST", url, NULL, json, &r);
    ck_assert_int_eq(r.status, 200);
    test_response_free(&r);
}

START_TEST(consent_then_notify_reaches_the_provider) {
    const char *sub = "923001110001";
    do_register(SP, sub, "[\"out-of-data\",\"low-data\"]");
    do_register("otherprovider", sub, "[\"low-data\"]");
    char tid[64];
    new_tid(tid, sizeof tid, "ok");
    json_t *j = NULL;
    ck_assert_int_eq(notify(sub, tid, "out-of-data", NULL, &j), 202);
    json_decref(j);
    ck_assert_int_eq(wait_received("notification", tid, 1, 1), 1);
    json_t *body = NULL;
    received("notification", tid, 1, &body);
    ck_assert_str_eq(json_string_value(json_object_get(body, "eventType")), "out-of-data");
    ck_assert_str_eq(json_string_value(json_object_get(body, "transactionId")), tid);
    ck_assert(json_is_array(json_object_get(body, "offers")));
    /* The CPID names this subscriber and the consenting provider only. */
    cpid_info info;
    ck_assert_int_eq(cpid_decode(cpid_config_default(),
                                 json_string_value(json_object_get(body, "cpid")),
                                 (int64_t)time(NULL) * 1000, &info),
                     CPID_OK);
    ck_assert_str_eq(info.msisdn, sub);
    ck_assert_str_eq(info.provider, SP);
    json_decref(body);

    /* low-data: both providers consented, two deliveries. */
    new_tid(tid, sizeof tid, "both");
    ck_assert_int_eq(notify(sub, tid, "low-data", NULL, NULL), 202);
    ck_assert_int_eq(wait_received("notification", tid, 1, 2), 2);

    /* The same subscriber named by a CPID. */
    char cpid[CPID_MAX_LEN];
    ck_assert_int_eq(cpid_issue(cpid_config_default(), sub, SP, "41006", (int64_t)time(NULL) * 1000,
                                cpid, sizeof cpid),
                     0);
    new_tid(tid, sizeof tid, "cpid");
    ck_assert_int_eq(notify_as("CPID", cpid, tid, "out-of-data", NULL, NULL), 202);
    ck_assert_int_eq(wait_received("notification", tid, 1, 1), 1);
}
END_TEST

/* GET url; the status, and the Content-Type into ctype. */
static long get_with_type(const char *url, char *ctype, size_t ctlen) {
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    FILE *sink = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(sink);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    long status = 0;
    char *ct = NULL;
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    }
    snprintf(ctype, ctlen, "%s", ct ? ct : "");
    curl_easy_cleanup(c);
    fclose(sink);
    return status;
}

/* The notification carries offer-resolver's offers and signed links that
 * work on api-edge (MILLOM_PUBLIC_URL points at the test's api-edge). */
START_TEST(notification_has_offers_and_working_links) {
    const char *sub = "924542610003"; /* has offers in mno-sandbox */
    do_register(SP, sub, "[\"low-monetary-balance\"]");
    char tid[64];
    new_tid(tid, sizeof tid, "offers");
    ck_assert_int_eq(notify(sub, tid, "low-monetary-balance", NULL, NULL), 202);
    ck_assert_int_eq(wait_received("notification", tid, 1, 1), 1);
    json_t *body = NULL;
    received("notification", tid, 1, &body);
    ck_assert_ptr_null(json_object_get(body, "_millom"));
    json_t *offers = json_object_get(body, "offers");
    ck_assert(json_is_array(offers));
    ck_assert_int_gt(json_array_size(offers), 0);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(json_array_get(offers, 0), "planId")));
    const char *refresh = json_string_value(json_object_get(body, "refresh"));
    const char *ping = json_string_value(json_object_get(body, "ping"));
    const char *shop = json_string_value(json_object_get(body, "shop"));
    ck_assert_ptr_nonnull(refresh);
    ck_assert_ptr_nonnull(ping);
    ck_assert_ptr_nonnull(shop);
    ck_assert_int_eq(strncmp(refresh, edge, strlen(edge)), 0);
    ck_assert_ptr_nonnull(strstr(refresh, "/offers?"));
    ck_assert_ptr_nonnull(strstr(ping, "/ping?"));
    ck_assert_ptr_nonnull(strstr(shop, "/shop?"));
    ck_assert_ptr_nonnull(strstr(refresh, "signature="));

    long status = 0;
    json_t *j = test_get_json(refresh, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_gt(json_array_size(json_object_get(j, "offers")), 0);
    json_decref(j);
    test_response r;
    test_http("GET", ping, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    test_response_free(&r);
    char ctype[128];
    ck_assert_int_eq(get_with_type(shop, ctype, sizeof ctype), 200);
    ck_assert_msg(strncmp(ctype, "text/html", 9) == 0, "shop Content-Type %s", ctype);
    json_decref(body);
}
END_TEST

START_TEST(verdicts) {
    const char *sub = "923001110002";
    do_register(SP, sub, "[\"low-data\"]");
    char tid[64];
    json_t *j = NULL;
    ck_assert_int_eq(notify(sub, new_tid(tid, sizeof tid, "nc"), "out-of-data", NULL, &j), 403);
    ck_assert_str_eq(error_type(j), "NO_CONSENT");
    json_decref(j);
    ck_assert_int_eq(
        notify("923009999999", new_tid(tid, sizeof tid, "unknown"), "low-data", NULL, &j), 404);
    ck_assert_ptr_nonnull(error_type(j));
    json_decref(j);
    ck_assert_int_eq(
        notify("4712345678", new_tid(tid, sizeof tid, "foreign"), "low-data", NULL, NULL), 404);
    ck_assert_int_eq(notify_as("CPID", "garbage,41006", new_tid(tid, sizeof tid, "badcpid"),
                               "low-data", NULL, &j),
                     409);
    ck_assert_str_eq(error_type(j), "NO_CPID");
    json_decref(j);
    ck_assert_int_eq(
        notify_as("OPET", "tok", new_tid(tid, sizeof tid, "opet"), "low-data", NULL, NULL), 409);
    /* Validation. */
    ck_assert_int_eq(notify(sub, new_tid(tid, sizeof tid, "bt"), "no-such-type", NULL, NULL), 400);
    ck_assert_int_eq(notify(sub, "ab", "low-data", NULL, NULL), 400);
    ck_assert_int_eq(notify_as("IMSI", sub, new_tid(tid, sizeof tid, "it"), "low-data", NULL, NULL),
                     400);
    ck_assert_int_eq(
        notify(sub, new_tid(tid, sizeof tid, "ov"), "low-data", "&override=maybe", NULL), 400);
    char url[256];
    snprintf(url, sizeof url, "%s/notify/tp/v1/single?idValue=%s&idType=MSISDN", edge, sub);
    test_response r;
    test_http("POST", url, NULL,
              "{\"transactionId\":\"abc\",\"type\":\"low-data\","
              "\"planDetails\":{\"balance\":1}}",
              &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "planDetails.planId"));
    test_response_free(&r);
    test_http("POST", url, NULL,
              "{\"transactionId\":\"abc\",\"type\":\"low-data\","
              "\"subscriptionType\":\"weekly\"}",
              &r);
    ck_assert_int_eq(r.status, 400);
    test_response_free(&r);

    /* Duplicate transactionId. */
    new_tid(tid, sizeof tid, "dup");
    ck_assert_int_eq(notify(sub, tid, "low-data", NULL, NULL), 202);
    ck_assert_int_eq(notify(sub, tid, "low-data", NULL, &j), 409);
    ck_assert_ptr_nonnull(
        strstr(json_string_value(json_object_get(j, "description")), "duplicate"));
    json_decref(j);
    ck_assert_int_eq(wait_received("notification", tid, 1, 1), 1);
}
END_TEST

START_TEST(quota_then_override) {
    const char *sub = "923001110003";
    do_register(SP, sub, "[\"pack-expired\"]");
    char tid[64];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(notify(sub, new_tid(tid, sizeof tid, "q"), "pack-expired", NULL, NULL),
                         202);
    json_t *j = NULL;
    ck_assert_int_eq(notify(sub, new_tid(tid, sizeof tid, "q4"), "pack-expired", NULL, &j), 429);
    ck_assert_str_eq(error_type(j), "QUOTA_EXCEEDED");
    json_decref(j);
    /* The refused transactionId was not recorded: with override it goes. */
    ck_assert_int_eq(notify(sub, tid, "pack-expired", "&override=true", NULL), 202);
    ck_assert_int_eq(wait_received("notification", tid, 1, 1), 1);
    ck_assert_int_eq(
        notify(sub, new_tid(tid, sizeof tid, "q6"), "pack-expired", "&override=false", NULL), 429);
}
END_TEST

static void produce_event(const char *msisdn, const char *tid, const char *type) {
    Millom__V1__SubscriberRef s = MILLOM__V1__SUBSCRIBER_REF__INIT;
    s.operator_ = "tp";
    s.key_type = MILLOM__V1__KEY_TYPE__KEY_TYPE_MSISDN;
    s.subscriber_id = (char *)msisdn;
    Millom__V1__SubscriberEvent ev = MILLOM__V1__SUBSCRIBER_EVENT__INIT;
    ev.operator_ = "tp";
    ev.subscriber = &s;
    ev.type = (char *)type;
    ev.transaction_id = (char *)tid;
    uint8_t buf[512];
    ck_assert_uint_le(millom__v1__subscriber_event__get_packed_size(&ev), sizeof buf);
    size_t len = millom__v1__subscriber_event__pack(&ev, buf);
    ck_assert_int_eq(kafka_produce(producer, "millom.subscriber.events", -1, msisdn, strlen(msisdn),
                                   buf, len, NULL, 0),
                     0);
    kafka_producer_flush(producer, 5000);
}

START_TEST(event_from_kafka_is_delivered) {
    const char *sub = "923001110004";
    do_register(SP, sub, "[\"monetary-reload\"]");
    char tid[64], tid2[64];
    produce_event(sub, new_tid(tid, sizeof tid, "kafka"), "monetary-reload");
    ck_assert_int_eq(wait_received("notification", tid, 1, 1), 1);
    /* Not consented: nothing is sent (checked after a later event of the
     * same subscriber, same partition, was delivered). */
    produce_event(sub, new_tid(tid2, sizeof tid2, "kafka-nc"), "low-data");
    produce_event(sub, tid, "monetary-reload"); /* a duplicate, also dropped */
    produce_event(sub, new_tid(tid, sizeof tid, "kafka2"), "monetary-reload");
    ck_assert_int_eq(wait_received("notification", tid, 1, 1), 1);
    ck_assert_int_eq(received("notification", tid2, 0, NULL), 0);
}
END_TEST

START_TEST(retried_after_5xx) {
    const char *sub = "923001110005";
    do_register(SP, sub, "[\"pack-consumed\"]");
    set_behaviour_of(sp, "{\"failStatus\":503,\"failCount\":2}");
    long retried = test_metric(notifier_admin, "millom_notifications_retried_total");
    char tid[64];
    ck_assert_int_eq(notify(sub, new_tid(tid, sizeof tid, "retry"), "pack-consumed", NULL, NULL),
                     202);
    ck_assert_int_eq(wait_received("notification", tid, 1, 1), 1);
    ck_assert_int_eq(received("notification", tid, 0, NULL), 3);
    ck_assert_int_ge(test_metric(notifier_admin, "millom_notifications_retried_total"),
                     retried + 2);
    set_behaviour_of(sp, "{}");
}
END_TEST

START_TEST(not_retried_after_400) {
    const char *sub = "923001110006";
    do_register(SP, sub, "[\"pack-near-expiry\"]");
    long dead = test_metric(notifier_admin, "millom_notifications_dead_lettered_total");
    set_behaviour_of(sp, "{\"failStatus\":400,\"failCount\":1}");
    char tid[64];
    ck_assert_int_eq(notify(sub, new_tid(tid, sizeof tid, "400"), "pack-near-expiry", NULL, NULL),
                     202);
    long now_dead = dead;
    for (int i = 0;
         i < 400 && (now_dead = test_metric(notifier_admin,
                                            "millom_notifications_dead_lettered_total")) <= dead;
         i++)
        test_sleep_ms(50);
    ck_assert_int_gt(now_dead, dead);
    ck_assert_int_eq(received("notification", tid, 0, NULL), 1);
    ck_assert_int_eq(received("notification", tid, 1, NULL), 0);
    set_behaviour_of(sp, "{}");
}
END_TEST

/* The offerContext upsellOffer gives for a plan. Caller frees. */
static char *offer_context(const char *msisdn, const char *plan) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/upsellOffer", edge, msisdn);
    long status = 0;
    json_t *j = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    char *ctx = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "offers"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "planId")), plan) == 0)
            ctx = strdup(json_string_value(json_object_get(o, "offerContext")));
    }
    json_decref(j);
    ck_assert_msg(ctx != NULL, "plan %s not offered to %s", plan, msisdn);
    return ctx;
}

static void produce_purchase_event(const char *msisdn, const char *transid) {
    Millom__V1__PurchaseEvent ev = MILLOM__V1__PURCHASE_EVENT__INIT;
    ev.transid = (char *)transid;
    ev.service_provider = SP;
    ev.operator_ = "tp";
    ev.msisdn = (char *)msisdn;
    ev.plan_id = "tp-social-daily";
    ev.state = MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED;
    uint8_t buf[512];
    size_t len = millom__v1__purchase_event__pack(&ev, buf);
    ck_assert_int_eq(kafka_produce(producer, "millom.purchase.events", -1, msisdn, strlen(msisdn),
                                   buf, len, NULL, 0),
                     0);
    kafka_producer_flush(producer, 5000);
}

/* POST /std/SP/tp/{sub}/purchasePlan of tp-social-daily with the
 * offerContext ctx (freed); the status. */
static long buy_with(const char *sub, const char *tid, char *ctx) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, sub);
    json_t *body = json_pack("{s:s, s:s, s:s}", "transid", tid, "planid", "tp-social-daily",
                             "offercontext", ctx);
    char *text = json_dumps(body, JSON_COMPACT);
    long status = 0;
    json_t *j = test_post_json(url, text, &status);
    free(text);
    json_decref(body);
    free(ctx);
    json_decref(j);
    return status;
}

static long buy(const char *sub, const char *tid) {
    return buy_with(sub, tid, offer_context(sub, "tp-social-daily"));
}

/* Until purchase-executor's outbox is empty: its events are on Kafka, so a
 * message produced now to the same partition comes after them. */
static void wait_executor_outbox_empty(void) {
    long depth = -1;
    for (int i = 0; i < 400 && (depth = test_metric(executor_admin, "millom_outbox_depth")) != 0;
         i++)
        test_sleep_ms(50);
    ck_assert_int_eq(depth, 0);
}

/* Once purchase-executor's events are on Kafka, a later event of the same
 * subscriber (same partition) that gets its callback proves that every
 * event before it was handled: then tid has `want` callbacks. */
static void assert_callbacks(const char *sub, const char *tid, int want) {
    char marker[64];
    wait_executor_outbox_empty();
    produce_purchase_event(sub, new_tid(marker, sizeof marker, "marker"));
    ck_assert_int_eq(wait_received("callback", marker, 1, 1), 1);
    ck_assert_int_eq(received("callback", tid, 0, NULL), want);
}

static long executor_commands_consumed(void) {
    return test_metric_sum(executor_admin, "millom_kafka_consumed_total",
                           "millom.purchase.commands");
}

/* api-edge's word that it answered tid 202 after all (what it produces
 * when its deadline passes), produced here as it would; returns once
 * purchase-executor has taken it. */
static void produce_answered_processing(const char *tid) {
    long before = executor_commands_consumed();
    Millom__V1__PurchaseCommand cmd = MILLOM__V1__PURCHASE_COMMAND__INIT;
    cmd.service_provider = SP;
    cmd.transid = (char *)tid;
    cmd.answered_processing = 1;
    uint8_t buf[256];
    size_t len = millom__v1__purchase_command__pack(&cmd, buf);
    ck_assert_int_eq(kafka_produce(producer, "millom.purchase.commands", -1, tid, strlen(tid), buf,
                                   len, NULL, 0),
                     0);
    kafka_producer_flush(producer, 5000);
    for (int i = 0; i < 400 && executor_commands_consumed() <= before; i++) test_sleep_ms(50);
    ck_assert_int_gt(executor_commands_consumed(), before);
}

/* A purchase answered 200 had its outcome in the answer: no callback (the
 * standard API promises one for 202 only). Once api-edge says it answered
 * 202 after all, exactly one callback comes, and a redelivered event or a
 * second such word sends nothing more. */
START_TEST(purchase_answered_200_gets_no_callback_until_answered_202) {
    const char *sub = "924542610003";
    char tid[64];
    new_tid(tid, sizeof tid, "buy");
    ck_assert_int_eq(buy(sub, tid), 200);
    assert_callbacks(sub, tid, 0);

    produce_answered_processing(tid);
    ck_assert_int_eq(wait_received("callback", tid, 1, 1), 1);
    json_t *cb = NULL;
    received("callback", tid, 1, &cb);
    ck_assert_str_eq(json_string_value(json_object_get(cb, "appId")), SP);
    ck_assert_str_eq(json_string_value(json_object_get(cb, "transactionId")), tid);
    json_decref(cb);

    /* A redelivered event, and the word again: nothing more. */
    produce_purchase_event(sub, tid);
    produce_answered_processing(tid);
    assert_callbacks(sub, tid, 1);
}
END_TEST

/* The operator takes longer than api-edge waits (MILLOM_PURCHASE_DEADLINE_MS
 * 3000 here): the provider gets 202 "processing", then exactly one
 * callback with the outcome. */
START_TEST(purchase_answered_202_gets_one_callback) {
    const char *sub = "924542610003";
    char tid[64];
    new_tid(tid, sizeof tid, "slow");
    char *ctx = offer_context(sub, "tp-social-daily"); /* asked before the delay */
    set_behaviour_of(mno, "{\"delayMs\":4000}");
    long status = buy_with(sub, tid, ctx);
    set_behaviour_of(mno, "{}");
    ck_assert_int_eq(status, 202);
    ck_assert_int_eq(wait_received("callback", tid, 1, 1), 1);
    json_t *cb = NULL;
    received("callback", tid, 1, &cb);
    ck_assert_str_eq(json_string_value(json_object_get(cb, "transactionId")), tid);
    ck_assert_ptr_null(json_object_get(cb, "errorType")); /* completed */
    json_decref(cb);
    assert_callbacks(sub, tid, 1);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* The signed links in notifications point at this stack's api-edge. */
    char public_url[64];
    snprintf(public_url, sizeof public_url, "MILLOM_PUBLIC_URL=http://127.0.0.1:%d", BASE_PORT);
    const char *env[] = {"MILLOM_NOTIFY_BACKOFF_MS=50",
                         "MILLOM_NOTIFY_BACKOFF_MAX_MS=200",
                         "MILLOM_PURCHASE_TIMER_S=0",
                         "MILLOM_PURCHASE_DEADLINE_MS=3000",
                         public_url,
                         NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(sp, sizeof sp, "http://127.0.0.1:%d", stack.sp_port);
    snprintf(notifier_admin, sizeof notifier_admin, "http://127.0.0.1:%d", stack.notifier_port);
    snprintf(executor_admin, sizeof executor_admin, "http://127.0.0.1:%d", stack.executor_port);
    snprintf(mno, sizeof mno, "http://127.0.0.1:%d", stack.mno_port);
    char err[256];
    producer = kafka_producer_new("test-notify", 0, err, sizeof err);
    if (!producer) {
        fprintf(stderr, "producer: %s\n", err);
        stack_stop(&stack);
        return 1;
    }
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, consent_then_notify_reaches_the_provider);
    tcase_add_test(tc, notification_has_offers_and_working_links);
    tcase_add_test(tc, verdicts);
    tcase_add_test(tc, quota_then_override);
    tcase_add_test(tc, event_from_kafka_is_delivered);
    tcase_add_test(tc, retried_after_5xx);
    tcase_add_test(tc, not_retried_after_400);
    tcase_add_test(tc, purchase_answered_200_gets_no_callback_until_answered_202);
    tcase_add_test(tc, purchase_answered_202_gets_one_callback);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    kafka_producer_free(producer);
    int bad_exit = stack_stop(&stack);
    curl_global_cleanup();
    return failed || bad_exit ? 1 : 0;
}
