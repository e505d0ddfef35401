/* Settlement end to end: real purchases through api-edge (sync, async by
 * callback, failed with 402, a repeated transid) plus PurchaseEvents
 * produced straight to millom.purchase.events for the awkward cases
 * (duplicates, odd amounts, a late event of an earlier day, states that
 * are not settled). Then: records and aggregates hold exactly the
 * completed purchases, sums match to the minor unit, shares sum to the
 * gross, CSV and JSON agree, a restarted consumer that gets every event
 * again does not double count, and offer-performance sees the impressions. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/plumbing/kafka.h"
#include "shared/plumbing/service.h"
#include "millom/v1/purchase.pb-c.h"
#include "millom/v1/settlement.pb-c.h"

#define BASE_PORT 18380
#define SP "testserviceprovider"
#define OTHER "otherprovider"
#define OLD_DAY "2020-02-01"
#define OLD_DAY_MS 1580558400000LL /* 2020-02-01T12:00:00Z */

static test_stack stack;
static char edge[64], admin[64], run_tag[32];

/* ------------------------------------------------------------ helpers */

static json_t *get_json(const char *path, long *status) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", edge, path);
    return test_get_json(url, NULL, status);
}

static size_t collect(char *p, size_t size, size_t n, void *u) {
    FILE *f = u;
    return fwrite(p, size, n, f);
}

/* GET with the Content-Type of the answer. Caller frees the body. */
static char *get_text(const char *path, long *status, char *ctype, size_t ctlen) {
    char url[512], *buf = NULL;
    size_t len = 0;
    snprintf(url, sizeof url, "%s%s", edge, path);
    FILE *mem = open_memstream(&buf, &len);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    *status = 0;
    ctype[0] = '\0';
    if (curl_easy_perform(c) == CURLE_OK) {
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(ctype, ctlen, "%s", ct ? ct : "");
    }
    curl_easy_cleanup(c);
    fclose(mem);
    return buf;
}

static int64_t minor_of(const char *decimal) {
    long long units = 0, cents = 0;
    ck_assert_msg(decimal && sscanf(decimal, "%lld.%2lld", &units, &cents) == 2, "amount %s",
                  decimal ? decimal : "(null)");
    return units * 100 + cents;
}

static kafka_producer *producer;

static void produce_event(const char *transid, const char *sp, const char *plan, int64_t price,
                          Millom__V1__PurchaseState state, int64_t at) {
    Millom__V1__PurchaseEvent ev = MILLOM__V1__PURCHASE_EVENT__INIT;
    ev.transid = (char *)transid;
    ev.service_provider = (char *)sp;
    ev.operator_ = "tp";
    ev.msisdn = "924542619999";
    ev.plan_id = (char *)plan;
    ev.price_minor = price;
    ev.currency = "PKR";
    ev.state = state;
    ev.occurred_at_ms = at;
    ev.created_at_ms = at;
    uint8_t buf[512];
    size_t len = millom__v1__purchase_event__pack(&ev, buf);
    ck_assert_int_eq(kafka_produce(producer, "millom.purchase.events", -1, ev.msisdn,
                                   strlen(ev.msisdn), buf, len, NULL, 0),
                     0);
}

/* The settlements JSON of one (day, provider), or NULL. */
static json_t *find_day(json_t *doc, const char *day, const char *sp) {
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(doc, "days"), i, d) {
        if (strcmp(json_string_value(json_object_get(d, "day")), day) == 0 &&
            strcmp(json_string_value(json_object_get(d, "serviceProvider")), sp) == 0)
            return d;
    }
    return NULL;
}

/* Polls the settlements until (day, sp) has `count` purchases. */
static json_t *wait_day_count(const char *day, const char *sp, long count) {
    char path[256];
    snprintf(path, sizeof path, "/mgmt/tp/settlements?serviceProvider=%s", sp);
    for (int i = 0; i < 200; i++) {
        long status = 0;
        json_t *doc = get_json(path, &status);
        json_t *d = doc ? find_day(doc, day, sp) : NULL;
        if (status == 200 && d && json_integer_value(json_object_get(d, "count")) == count) {
            json_t *copy = json_deep_copy(d);
            json_decref(doc);
            return copy;
        }
        json_decref(doc);
        test_sleep_ms(100);
    }
    ck_abort_msg("%s/%s never reached %ld purchases", day, sp, count);
    return NULL;
}

static void check_shares_sum(json_t *o) {
    int64_t g = minor_of(json_string_value(json_object_get(o, "gross")));
    int64_t parts = minor_of(json_string_value(json_object_get(o, "operatorShare"))) +
                    minor_of(json_string_value(json_object_get(o, "providerShare"))) +
                    minor_of(json_string_value(json_object_get(o, "millomShare")));
    ck_assert_int_eq(parts, g);
}

/* ------------------------------------------------- real purchases */

static char today[11], sync_tid[64], async_tid[64];
static int64_t real_gross;

static char *offer_context(const char *msisdn, const char *plan) {
    char path[256];
    snprintf(path, sizeof path, "/std/" SP "/tp/%s/upsellOffer", msisdn);
    long status = 0;
    json_t *j = get_json(path, &status);
    ck_assert_int_eq(status, 200);
    char *ctx = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "offers"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "planId")), plan) == 0)
            ctx = strdup(json_string_value(json_object_get(o, "offerContext")));
    }
    json_decref(j);
    return ctx;
}

static long purchase(const char *msisdn, const char *tid, const char *plan, const char *ctx) {
    char url[256];
    snprintf(url, sizeof url, "%s/std/" SP "/tp/%s/purchasePlan", edge, msisdn);
    json_t *body = json_pack("{s:s,s:s}", "transid", tid, "planid", plan);
    if (ctx) json_object_set_new(body, "offercontext", json_string(ctx));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    long status = 0;
    json_decref(test_post_json(url, text, &status));
    free(text);
    return status;
}

static int64_t final_price(const char *tid) {
    char path[256];
    snprintf(path, sizeof path, "/mgmt/tp/purchases/%s", tid);
    for (int i = 0; i < 300; i++) {
        long status = 0;
        json_t *j = get_json(path, &status);
        const char *state = json_string_value(json_object_get(j, "state"));
        if (status == 200 && state && strcmp(state, "completed") == 0) {
            int64_t p = minor_of(json_string_value(json_object_get(j, "price")));
            json_decref(j);
            return p;
        }
        json_decref(j);
        test_sleep_ms(100);
    }
    ck_abort_msg("%s never completed", tid);
    return 0;
}

START_TEST(real_purchases_are_settled_once) {
    time_t now = time(NULL);
    strftime(today, sizeof today, "%Y-%m-%d", gmtime(&now));
    snprintf(sync_tid, sizeof sync_tid, "settle-sync-%s", run_tag);
    snprintf(async_tid, sizeof async_tid, "settle-async-%s", run_tag);
    char *ctx = offer_context("924542610003", "tp-social-daily");
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(purchase("924542610003", sync_tid, "tp-social-daily", ctx), 200);
    /* The same transid again: the same outcome, no second settlement. */
    ck_assert_int_eq(purchase("924542610003", sync_tid, "tp-social-daily", ctx), 200);
    free(ctx);
    ck_assert_int_eq(purchase("924542610006", async_tid, "tp-data-weekly-async", NULL), 202);
    char failed_tid[64];
    snprintf(failed_tid, sizeof failed_tid, "settle-poor-%s", run_tag);
    ck_assert_int_eq(purchase("924542610000", failed_tid, "tp-data-daily-3gb", NULL), 402);
    real_gross = final_price(sync_tid) + final_price(async_tid);
    json_t *d = wait_day_count(today, SP, 2);
    ck_assert_int_eq(minor_of(json_string_value(json_object_get(d, "gross"))), real_gross);
    check_shares_sum(d);
    ck_assert_int_eq(json_array_size(json_object_get(d, "plans")), 2);
    json_decref(d);
    test_sleep_ms(500); /* nothing more arrives for them */
    d = wait_day_count(today, SP, 2);
    json_decref(d);
}
END_TEST

/* ------------------------------------------------- awkward events */

static const int64_t awkward[] = {1, 7, 99, 101, 15938, 99999, 333333, 1};
#define N_AWKWARD (sizeof awkward / sizeof awkward[0])

START_TEST(direct_events_duplicates_and_awkward_amounts) {
    int64_t gross = 0;
    for (int round = 0; round < 2; round++) { /* everything twice: at least once */
        for (size_t i = 0; i < N_AWKWARD; i++) {
            char tid[64];
            snprintf(tid, sizeof tid, "awk-%s-%zu", run_tag, i);
            produce_event(tid, OTHER, i % 2 ? "plan,\"odd\"" : "tp-video-hour", awkward[i],
                          MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED,
                          OLD_DAY_MS + (int64_t)i);
            if (round == 0) gross += awkward[i];
        }
        /* Not money: never settled. */
        produce_event("awk-failed", OTHER, "tp-video-hour", 500,
                      MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_FAILED, OLD_DAY_MS);
        produce_event("awk-pending", OTHER, "tp-video-hour", 500,
                      MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_PENDING, OLD_DAY_MS);
    }
    kafka_producer_flush(producer, 5000);
    json_t *d = wait_day_count(OLD_DAY, OTHER, (long)N_AWKWARD);
    ck_assert_int_eq(minor_of(json_string_value(json_object_get(d, "gross"))), gross);
    check_shares_sum(d);
    /* Every plan row sums too; a day long gone is closed, its purchases late. */
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(d, "plans"), i, p) check_shares_sum(p);
    ck_assert(json_is_true(json_object_get(d, "closed")));
    json_decref(d);
}
END_TEST

START_TEST(late_event_lands_on_its_own_day) {
    /* Today has been settled (real purchases); yesterday's purchase now. */
    char tid[64], yesterday[11];
    snprintf(tid, sizeof tid, "late-%s", run_tag);
    int64_t at = now_ms() - 86400000LL;
    time_t secs = (time_t)(at / 1000);
    strftime(yesterday, sizeof yesterday, "%Y-%m-%d", gmtime(&secs));
    produce_event(tid, SP, "tp-music-daily", 2999,
                  MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED, at);
    kafka_producer_flush(producer, 5000);
    json_t *d = wait_day_count(yesterday, SP, 1);
    ck_assert_int_eq(minor_of(json_string_value(json_object_get(d, "gross"))), 2999);
    ck_assert(json_is_true(json_object_get(d, "closed")));
    ck_assert_int_eq(json_integer_value(json_object_get(d, "lateCount")), 1);
    json_decref(d);
    /* Today's aggregate did not move. */
    d = wait_day_count(today, SP, 2);
    ck_assert_int_eq(minor_of(json_string_value(json_object_get(d, "gross"))), real_gross);
    json_decref(d);
}
END_TEST

/* ------------------------------------------------- CSV vs JSON */

START_TEST(csv_and_json_agree) {
    long status = 0;
    char ctype[128];
    char *csv = get_text("/mgmt/tp/settlements?format=csv", &status, ctype, sizeof ctype);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(strncmp(ctype, "text/csv", 8) == 0, "Content-Type %s", ctype);
    ck_assert(strncmp(csv, "day,operator,serviceProvider,currency,planId,count,gross,", 57) == 0);
    ck_assert_ptr_nonnull(strstr(csv, "\"plan,\"\"odd\"\"\""));
    json_t *doc = get_json("/mgmt/tp/settlements?format=json", &status);
    ck_assert_int_eq(status, 200);
    /* Sum count and gross over the CSV rows (fields may be quoted). */
    int64_t rows_count = 0, rows_gross = 0;
    for (char *line = strstr(csv, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        const char *f = line + 2;
        char field[8][160];
        for (int k = 0; k < 7; k++) {
            size_t n = 0;
            if (*f == '"') {
                for (f++; *f && !(*f == '"' && f[1] != '"'); f++) {
                    if (*f == '"') f++;
                    if (n < 159) field[k][n++] = *f;
                }
                f++;
            } else {
                while (*f && *f != ',' && *f != '\r')
                    if (n < 159)
                        field[k][n++] = *f++;
                    else
                        f++;
            }
            field[k][n] = '\0';
            if (*f == ',') f++;
        }
        rows_count += strtoll(field[5], NULL, 10);
        rows_gross += minor_of(field[6]);
    }
    json_t *total = json_array_get(json_object_get(doc, "totals"), 0);
    ck_assert_int_eq(rows_count, json_integer_value(json_object_get(total, "count")));
    ck_assert_int_eq(rows_gross, minor_of(json_string_value(json_object_get(total, "gross"))));
    /* 2 real + the awkward ones + 1 late, nothing else. */
    ck_assert_int_eq(rows_count, 2 + (long)N_AWKWARD + 1);
    check_shares_sum(total);
    json_decref(doc);
    free(csv);
    /* Bad parameters are refused before Kafka. */
    json_decref(get_json("/mgmt/tp/settlements?format=xml", &status));
    ck_assert_int_eq(status, 400);
    json_decref(get_json("/mgmt/tp/settlements?from=yesterday", &status));
    ck_assert_int_eq(status, 400);
    json_decref(get_json("/mgmt/zz/settlements", &status));
    ck_assert_int_eq(status, 404);
}
END_TEST

/* ------------------------------------------------- records topic */

START_TEST(records_topic_has_each_purchase_once) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char group[64];
    snprintf(group, sizeof group, "test-records-%s", run_tag);
    ck_assert_int_eq(kafka_conf_common(conf, "test", err, sizeof err), 0);
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_ptr_nonnull(rk);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "millom.settlement.records", RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    long n = 0, expected = 2 + (long)N_AWKWARD + 1;
    char seen[32][96];
    int64_t until = mono_ms() + 20000;
    while (n < expected && mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        if (!m->err) {
            Millom__V1__SettlementRecord *r =
                millom__v1__settlement_record__unpack(NULL, m->len, m->payload);
            ck_assert_ptr_nonnull(r);
            ck_assert_int_eq((int)m->key_len, 2); /* keyed by operator */
            ck_assert(memcmp(m->key, "tp", 2) == 0);
            ck_assert_int_eq(strlen(r->subscriber_hash), 64);
            ck_assert(memmem(m->payload, m->len, "9245426", 7) == NULL); /* no MSISDN */
            ck_assert_int_eq(r->operator_share_minor + r->provider_share_minor +
                                 r->millom_share_minor,
                             r->amount_minor);
            ck_assert_int_eq(minor_of(r->amount), r->amount_minor);
            for (long k = 0; k < n; k++) ck_assert_str_ne(seen[k], r->transid);
            if (n < 32) snprintf(seen[n], sizeof seen[n], "%s", r->transid);
            n++;
            millom__v1__settlement_record__free_unpacked(r, NULL);
        }
        rd_kafka_message_destroy(m);
    }
    /* A little longer: nothing beyond the expected ones. */
    for (int k = 0; k < 5; k++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m && !m->err) n++;
        if (m) rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    ck_assert_int_eq(n, expected);
}
END_TEST

/* ------------------------------------------------- redelivery */

/* Produces again every message millom.purchase.events holds, from offset
 * 0 of each partition up to its current end: to settlement-reporter this
 * is exactly a redelivery from an earlier offset (the same bytes, keys
 * and partitions arrive again). devbroker's group coordinator does not
 * let a test rewind another group's committed offsets reliably, so the
 * replay is done this way. Returns the COMPLETED events replayed. */
static long replay_purchase_events(void) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(kafka_conf_common(conf, "test-replay", err, sizeof err), 0);
    rd_kafka_conf_set(conf, "group.id", "test-replay-unused", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_ptr_nonnull(rk);
    rd_kafka_poll_set_consumer(rk);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, "millom.purchase.events", NULL);
    ck_assert_int_eq(rd_kafka_metadata(rk, 0, t, &md, 5000), 0);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    int64_t remaining = 0;
    int64_t high[64] = {0};
    for (int i = 0; i < parts && i < 64; i++) {
        int64_t lo = 0;
        ck_assert_int_eq(
            rd_kafka_query_watermark_offsets(rk, "millom.purchase.events", i, &lo, &high[i], 5000),
            0);
        remaining += high[i] - lo;
        rd_kafka_topic_partition_list_add(l, "millom.purchase.events", i)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    long completed = 0;
    int64_t until = mono_ms() + 30000;
    while (remaining > 0 && mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        if (!m->err && m->offset < high[m->partition]) {
            ck_assert_int_eq(kafka_produce(producer, "millom.purchase.events", m->partition, m->key,
                                           m->key_len, m->payload, m->len, NULL, 0),
                             0);
            Millom__V1__PurchaseEvent *ev =
                millom__v1__purchase_event__unpack(NULL, m->len, m->payload);
            if (ev && ev->state == MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED)
                completed++;
            if (ev) millom__v1__purchase_event__free_unpacked(ev, NULL);
            remaining--;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    ck_assert_int_eq(remaining, 0);
    kafka_producer_flush(producer, 5000);
    return completed;
}

START_TEST(redelivery_after_restart_does_not_double_count) {
    ck_assert_int_gt(test_metric(admin, "millom_settlement_records_total"), 0);
    ck_assert_int_eq(stack_stop_one(&stack, "settlement-reporter"), 0);
    long replayed = replay_purchase_events();
    /* 2 real (one COMPLETED event each, maybe more: at least once), the
     * awkward ones twice, the late one. */
    ck_assert_int_ge(replayed, 2 + 2 * (long)N_AWKWARD + 1);
    ck_assert_int_gt(stack_spawn(&stack, "settlement-reporter", NULL), 0);
    ck_assert_int_eq(stack_wait_ready(stack.settlement_port, 60000), 0);
    /* Wait until the replayed completed events went through. */
    long dups = 0;
    for (int64_t until = mono_ms() + 30000; dups < replayed && mono_ms() < until;) {
        dups = test_metric(admin, "millom_settlement_duplicates_total");
        test_sleep_ms(100);
    }
    ck_assert_int_ge(dups, replayed);
    ck_assert_int_eq(test_metric(admin, "millom_settlement_records_total"), 0);
    json_t *d = wait_day_count(OLD_DAY, OTHER, (long)N_AWKWARD);
    json_decref(d);
    d = wait_day_count(today, SP, 2);
    ck_assert_int_eq(minor_of(json_string_value(json_object_get(d, "gross"))), real_gross);
    json_decref(d);
}
END_TEST

/* ------------------------------------------------- batches */

/* A burst of events lands in batches (one transaction each). A poison
 * message in the middle (not a PurchaseEvent) and one that cannot be
 * settled (negative price) roll their batch back; it is handled again one
 * message at a time: both go to the DLQ alone, every neighbour is settled
 * once, and nothing is counted twice. */
#define BATCH_DAY "2020-03-01"
#define BATCH_DAY_MS 1583064000000LL /* 2020-03-01T12:00:00Z */
#define BATCH_EVENTS 120

START_TEST(batch_with_poison_messages_settles_every_neighbour_once) {
    /* A backlog (settlement-reporter stopped while they are produced), so
     * the restarted consumer finds them fetched at once: batches. Its
     * metrics start from zero. */
    ck_assert_int_eq(stack_stop_one(&stack, "settlement-reporter"), 0);
    int64_t gross = 0;
    for (int i = 0; i < BATCH_EVENTS; i++) {
        char tid[64];
        snprintf(tid, sizeof tid, "batch-%s-%d", run_tag, i);
        produce_event(tid, OTHER, "tp-video-hour", 100 + i,
                      MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED, BATCH_DAY_MS + i);
        gross += 100 + i;
        if (i == BATCH_EVENTS / 3) { /* same key, so the same partition: in order */
            static const char junk[] = "\xff\xff\xff not protobuf";
            ck_assert_int_eq(kafka_produce(producer, "millom.purchase.events", -1, "924542619999",
                                           12, junk, sizeof junk - 1, NULL, 0),
                             0);
        }
        if (i == 2 * BATCH_EVENTS / 3)
            produce_event("batch-negative", OTHER, "tp-video-hour", -5,
                          MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED, BATCH_DAY_MS);
    }
    ck_assert_int_eq(kafka_producer_flush(producer, 5000), 0);
    /* A batch waits up to 1 s for more of the backlog: fetches may bring
     * it a few messages at a time (slowly, under ThreadSanitizer), and
     * the poison message must share a batch with its neighbours. */
    static const char *const batch_env[] = {"MILLOM_BATCH_WAIT_MS=1000", NULL};
    ck_assert_int_gt(stack_spawn(&stack, "settlement-reporter", batch_env), 0);
    ck_assert_int_eq(stack_wait_ready(stack.settlement_port, 60000), 0);
    json_t *d = wait_day_count(BATCH_DAY, OTHER, BATCH_EVENTS);
    ck_assert_int_eq(minor_of(json_string_value(json_object_get(d, "gross"))), gross);
    check_shares_sum(d);
    json_decref(d);
    long dlq = 0;
    for (int64_t until = mono_ms() + 10000; dlq < 2 && mono_ms() < until;) {
        dlq = test_metric_sum(admin, "millom_kafka_dlq_total", "millom.purchase.events");
        test_sleep_ms(50);
    }
    ck_assert_int_eq(dlq, 2);
    /* The restart re-read earlier events too (duplicates); what is new is
     * exactly the burst, each counted once though its batch ran twice. */
    ck_assert_int_eq(test_metric(admin, "millom_settlement_records_total"), BATCH_EVENTS);
    ck_assert_int_ge(test_metric(admin, "millom_kafka_batch_fallbacks_total"), 1);

    /* A clean backlog: its batches commit whole. */
    ck_assert_int_eq(stack_stop_one(&stack, "settlement-reporter"), 0);
    for (int i = 0; i < 30; i++) {
        char tid[64];
        snprintf(tid, sizeof tid, "batch-clean-%s-%d", run_tag, i);
        produce_event(tid, OTHER, "tp-video-hour", 1000,
                      MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED,
                      BATCH_DAY_MS + 1000 + i);
    }
    ck_assert_int_eq(kafka_producer_flush(producer, 5000), 0);
    ck_assert_int_gt(stack_spawn(&stack, "settlement-reporter", batch_env), 0);
    ck_assert_int_eq(stack_wait_ready(stack.settlement_port, 60000), 0);
    d = wait_day_count(BATCH_DAY, OTHER, BATCH_EVENTS + 30);
    ck_assert_int_eq(minor_of(json_string_value(json_object_get(d, "gross"))), gross + 30 * 1000);
    json_decref(d);
    ck_assert_int_eq(test_metric(admin, "millom_settlement_records_total"), 30);
    ck_assert_int_gt(test_metric(admin, "millom_kafka_batches_total"), 0);
    ck_assert_int_eq(test_metric(admin, "millom_kafka_batch_fallbacks_total"), 0);
}
END_TEST

/* ------------------------------------------------- offer performance */

START_TEST(offer_performance_counts_impressions_and_purchases) {
    long status = 0;
    json_t *doc = NULL;
    json_t *row = NULL;
    for (int64_t until = mono_ms() + 30000; !row && mono_ms() < until;) {
        json_decref(doc);
        /* 503 while the restarted service's query consumer rejoins. */
        doc = get_json("/mgmt/tp/offer-performance?serviceProvider=" SP, &status);
        ck_assert_msg(status == 200 || status == 503, "status %ld", status);
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(doc, "plans"), k, r) {
            if (strcmp(json_string_value(json_object_get(r, "planId")), "tp-social-daily") == 0 &&
                json_integer_value(json_object_get(r, "impressions")) >= 1)
                row = r;
        }
        if (!row) test_sleep_ms(100);
    }
    ck_assert_ptr_nonnull(row);
    ck_assert_int_eq(json_integer_value(json_object_get(row, "purchases")), 1);
    const char *rate = json_string_value(json_object_get(row, "conversionRate"));
    ck_assert_ptr_nonnull(rate);
    ck_assert_int_eq((int)strlen(rate), 6); /* "0.5000", "1.0000": four decimals */
    json_decref(doc);
    char ctype[128];
    char *csv = get_text("/mgmt/tp/offer-performance?format=csv", &status, ctype, sizeof ctype);
    ck_assert_int_eq(status, 200);
    ck_assert(strncmp(csv, "serviceProvider,planId,impressions,purchases,conversionRate\r\n", 61) ==
              0);
    free(csv);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(run_tag, sizeof run_tag, "%ld", (long)getpid());
    char cb_url[128];
    const char *env[] = {"MILLOM_PURCHASE_TIMER_S=0", "MILLOM_MNO_CALLBACK_DELAY_MS=200", cb_url,
                         "MILLOM_SETTLEMENT_CLOSE_CHECK_MS=500", NULL};
    snprintf(cb_url, sizeof cb_url, "MILLOM_CALLBACK_BASE_URL=http://127.0.0.1:%d", BASE_PORT);
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    snprintf(edge, sizeof edge, "http://127.0.0.1:%d", stack.edge_port);
    snprintf(admin, sizeof admin, "http://127.0.0.1:%d", stack.settlement_port);
    char err[256];
    producer = kafka_producer_new("test-settlement", 0, err, sizeof err);
    if (!producer) {
        fprintf(stderr, "producer: %s\n", err);
        stack_stop(&stack);
        return 1;
    }

    Suite *s = suite_create("settlement");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    /* In order: each builds on what the earlier ones settled. */
    tcase_add_test(tc, real_purchases_are_settled_once);
    tcase_add_test(tc, direct_events_duplicates_and_awkward_amounts);
    tcase_add_test(tc, late_event_lands_on_its_own_day);
    tcase_add_test(tc, csv_and_json_agree);
    tcase_add_test(tc, records_topic_has_each_purchase_once);
    tcase_add_test(tc, redelivery_after_restart_does_not_double_count);
    tcase_add_test(tc, offer_performance_counts_impressions_and_purchases);
    tcase_add_test(tc, batch_with_poison_messages_settles_every_neighbour_once);
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
