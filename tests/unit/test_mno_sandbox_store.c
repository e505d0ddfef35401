/* Unit tests for services/mno-sandbox without HTTP: the seeded store, the
 * accountStatus/offersInfo JSON of every seeded subscriber, the offers
 * filters (maxPrice, numberofOffers, offerType), languages, errors and
 * query parameter validation, and the top-up extension's messages and
 * credits. Each test opens the store in its own
 * temporary MILLOM_DATA_DIR; works with CK_FORK=no. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "services/mno-sandbox/mno_sandbox.h"
#include "shared/plumbing/log.h"
#include "shared/contracts/money.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"

#define GOOD "924542610003"
#define TOPUP "924542610000"
#define LOW "924542610001"
#define LOANS "924542610002"
#define ROAMING "924542610004"
#define BARRED "924542610005"
#define POSTPAID "924542610006"
#define OPET "OPET-tp-0003"

static char dir[256];
static mno_store *store;

static void remove_dir(void) {
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[320];
        snprintf(path, sizeof path, "%s/mno-sandbox.db%s", dir, suffix[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/test_mno_sandbox_store.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("MILLOM_DATA_DIR", dir, 1);
    char err[256] = "";
    store = mno_store_open(2, err, sizeof err);
    ck_assert_msg(store != NULL, "mno_store_open: %s", err);
}

static void teardown(void) {
    mno_store_close(store);
    store = NULL;
    remove_dir();
}

/* ---- query parameters as a NULL-terminated name/value list ---- */

typedef struct {
    const char *kv[24];
} params;

static const char *get_param(void *ctx, const char *name) {
    const params *p = ctx;
    for (size_t i = 0; p->kv[i]; i += 2)
        if (strcmp(p->kv[i], name) == 0) return p->kv[i + 1];
    return NULL;
}

/* The required parameters plus `extra` (name, value, ..., NULL). */
static params base_params(const char *id_type, const char *const *extra) {
    params p = {{"customerIdType", id_type, "channelId", "App", "serviceProviderId",
                 "testserviceprovider", "transId", "0b6c9a4e-1d5f-4c1b-9f1e-3a2b4c5d6e7f"}};
    size_t n = 8;
    for (size_t i = 0; extra && extra[i]; i++) p.kv[n++] = extra[i];
    p.kv[n] = NULL;
    return p;
}

static mno_reply call(mno_call c, const char *id, const char *id_type, const char *const *extra) {
    params p = base_params(id_type, extra);
    mno_request rq;
    char msg[160];
    int rc = mno_parse_request(c, id, get_param, &p, &rq, msg, sizeof msg);
    ck_assert_msg(rc == 0, "parse: %s", msg);
    return c == MNO_CALL_BALANCE ? mno_balance(store, &rq, now_ms())
                                 : mno_offers(store, &rq, now_ms());
}

static mno_reply balance(const char *id) { return call(MNO_CALL_BALANCE, id, "MSISDN", NULL); }

static mno_reply offers(const char *id, const char *const *extra) {
    return call(MNO_CALL_OFFERS, id, "MSISDN", extra);
}

/* ---- assertions ---- */

static const char *str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    ck_assert_msg(s != NULL, "missing string %s", key);
    return s;
}

static json_int_t num(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "missing integer %s", key);
    return json_integer_value(v);
}

/* {currency: PKR, value: <JSON number>} in minor units. */
static int64_t money(const json_t *o, const char *key) {
    json_t *m = json_object_get(o, key);
    ck_assert_msg(json_is_object(m), "missing money %s", key);
    ck_assert_str_eq(str(m, "currency"), "PKR");
    json_t *v = json_object_get(m, "value");
    ck_assert_msg(json_is_number(v), "%s.value is not a JSON number", key);
    int64_t minor;
    ck_assert_int_eq(money_from_json(v, 2, &minor), 0);
    return minor;
}

static void assert_error(mno_reply r, int status, const char *type, const char *message) {
    ck_assert_int_eq(r.status, status);
    ck_assert_str_eq(str(r.body, "errorType"), type);
    if (message) ck_assert_str_eq(str(r.body, "message"), message);
    ck_assert_uint_eq(json_object_size(r.body), 2);
    json_decref(r.body);
}

/* "2026-11-28T17:00:00Z", in the future. */
static void assert_future_time(const char *iso) {
    struct tm tm = {0};
    const char *end = strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    ck_assert_msg(end && *end == '\0', "not ISO 8601 UTC: %s", iso);
    ck_assert_msg((int64_t)timegm(&tm) > now_ms() / 1000, "not in the future: %s", iso);
}

/* The ids of an offersInfo's offers, comma-separated. */
static const char *offer_ids(const json_t *body) {
    static char buf[512];
    buf[0] = '\0';
    json_t *arr = json_object_get(body, "offers");
    ck_assert(json_is_array(arr));
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        if (i) strcat(buf, ",");
        strcat(buf, str(o, "id"));
    }
    return buf;
}

static json_t *plan(const json_t *body, size_t i) {
    json_t *p = json_array_get(json_object_get(body, "subscribedPlans"), i);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ---- balance ---- */

START_TEST(balance_good_to_go) {
    mno_reply r = balance(GOOD);
    ck_assert_int_eq(r.status, 200);
    json_t *b = r.body;
    ck_assert_str_eq(str(b, "subscriptionType"), "PREPAID");
    ck_assert_str_eq(str(b, "pricePlan"), "djuice");
    ck_assert_int_eq(money(b, "monetaryBalance"), 52075);
    ck_assert_ptr_null(json_object_get(b, "loanBalance"));
    ck_assert_uint_eq(json_array_size(json_object_get(b, "subscribedPlans")), 3);

    json_t *p = plan(b, 0);
    ck_assert_str_eq(str(p, "planId"), "tp-plan-3g-weekly");
    ck_assert_str_eq(str(p, "planName"), "3G Weekly Bundle");
    assert_future_time(str(p, "expirationTime"));
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(p, "appType"), 0)),
                     "GENERIC");
    json_t *bal = json_object_get(p, "balance");
    ck_assert_int_eq(num(bal, "quotaBytes"), 3000000000LL);
    ck_assert_int_eq(num(bal, "remainingBytes"), 2500000000LL);
    ck_assert_uint_eq(json_object_size(bal), 2);
    ck_assert_str_eq(str(p, "overusagePolicy"), "THROTTLED");
    ck_assert_int_eq(num(p, "speedLimit"), 384);
    json_t *rec = json_object_get(p, "recurrence");
    ck_assert_int_eq(num(rec, "frequency"), 7);
    ck_assert_str_eq(str(rec, "resetDate"), str(p, "expirationTime"));

    p = plan(b, 1);
    ck_assert_str_eq(str(p, "planName"), "Daily Social Pack");
    json_t *apps = json_object_get(p, "appType");
    ck_assert_uint_eq(json_array_size(apps), 2);
    ck_assert_str_eq(json_string_value(json_array_get(apps, 0)), "SOCIAL");
    ck_assert_str_eq(json_string_value(json_array_get(apps, 1)), "MESSAGING");
    assert_future_time(str(p, "expirationTime"));

    p = plan(b, 2);
    ck_assert_str_eq(str(p, "planId"), "tp-plan-minutes-weekly");
    bal = json_object_get(p, "balance");
    ck_assert_int_eq(num(bal, "quotaMinutes"), 300);
    ck_assert_int_eq(num(bal, "remainingMinutes"), 238);
    ck_assert_ptr_null(json_object_get(bal, "quotaBytes"));
    ck_assert_ptr_null(json_object_get(p, "speedLimit"));

    /* On the wire the money is a plain JSON number with its decimals. */
    size_t len;
    char *text = mno_json_text(b, &len);
    ck_assert_uint_eq(strlen(text), len);
    ck_assert_ptr_nonnull(
        strstr(text, "\"monetaryBalance\":{\"currency\":\"PKR\",\"value\":520.75}"));
    free(text);
    json_decref(b);
}
END_TEST

START_TEST(balance_need_topup_has_loan) {
    mno_reply r = balance(TOPUP);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(money(r.body, "monetaryBalance"), 0);
    ck_assert_int_eq(money(r.body, "loanBalance"), 5000);
    ck_assert_int_eq(num(json_object_get(plan(r.body, 0), "balance"), "remainingBytes"), 0);
    json_decref(r.body);
}
END_TEST

START_TEST(balance_low_on_data) {
    mno_reply r = balance(LOW);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(money(r.body, "monetaryBalance"), 30000);
    json_t *bal = json_object_get(plan(r.body, 0), "balance");
    ck_assert_int_lt(num(bal, "remainingBytes"), 20 * 1024 * 1024);
    ck_assert_int_gt(num(bal, "quotaBytes"), 1000000000LL);
    json_decref(r.body);
}
END_TEST

START_TEST(balance_no_money) {
    mno_reply r = balance(LOANS);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(money(r.body, "monetaryBalance"), 0);
    ck_assert_ptr_null(json_object_get(r.body, "loanBalance"));
    json_decref(r.body);
}
END_TEST

START_TEST(balance_postpaid) {
    mno_reply r = balance(POSTPAID);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(str(r.body, "subscriptionType"), "POSTPAID");
    ck_assert_uint_eq(json_array_size(json_object_get(r.body, "subscribedPlans")), 2);
    json_decref(r.body);
}
END_TEST

START_TEST(balance_urdu) {
    static const char *const ur[] = {"lang", "ur", NULL};
    static const char *const ur_pk[] = {"lang", "UR-pk", NULL};
    static const char *const fr[] = {"lang", "fr", NULL};
    mno_reply r = call(MNO_CALL_BALANCE, GOOD, "MSISDN", ur);
    ck_assert_str_eq(str(plan(r.body, 1), "planName"), "روزانہ سوشل پیک");
    ck_assert_str_eq(str(plan(r.body, 2), "planName"), "ہفتہ وار منٹ");
    json_decref(r.body);
    r = call(MNO_CALL_BALANCE, GOOD, "MSISDN", ur_pk);
    ck_assert_str_eq(str(plan(r.body, 1), "planName"), "روزانہ سوشل پیک");
    json_decref(r.body);
    r = call(MNO_CALL_BALANCE, GOOD, "MSISDN", fr);
    ck_assert_str_eq(str(plan(r.body, 1), "planName"), "Daily Social Pack");
    json_decref(r.body);
}
END_TEST

START_TEST(balance_by_opet_and_plus) {
    mno_reply by_msisdn = balance(GOOD);
    mno_reply by_opet = call(MNO_CALL_BALANCE, OPET, "OPET", NULL);
    mno_reply by_plus = balance("+" GOOD);
    ck_assert_int_eq(by_opet.status, 200);
    ck_assert(json_equal(by_msisdn.body, by_opet.body));
    ck_assert(json_equal(by_msisdn.body, by_plus.body));
    json_decref(by_msisdn.body);
    json_decref(by_opet.body);
    json_decref(by_plus.body);
    /* An OPET token is not an MSISDN, nor the other way round. */
    assert_error(balance(OPET), 404, "UNKNOWN_SUBSCRIBER_ID", NULL);
    assert_error(call(MNO_CALL_BALANCE, GOOD, "opet", NULL), 404, "UNKNOWN_SUBSCRIBER_ID", NULL);
}
END_TEST

START_TEST(errors_unknown_barred_roaming) {
    assert_error(balance("924542619999"), 404, "UNKNOWN_SUBSCRIBER_ID", NULL);
    assert_error(offers("924542619999", NULL), 404, "UNKNOWN_SUBSCRIBER_ID", NULL);
    assert_error(balance(BARRED), 403, "USER_BARRED", NULL);
    assert_error(offers(BARRED, NULL), 403, "USER_BARRED", NULL);
    assert_error(balance(ROAMING), 403, "FORBIDDEN", "subscriber is roaming");
    assert_error(offers(ROAMING, NULL), 403, "FORBIDDEN", "subscriber is roaming");
}
END_TEST

/* ---- offers ---- */

START_TEST(offers_good_to_go) {
    mno_reply r = offers(GOOD, NULL);
    ck_assert_int_eq(r.status, 200);
    json_t *b = r.body;
    ck_assert_str_eq(str(b, "subscriberState"), "GOOD_TO_GO");
    ck_assert_str_eq(offer_ids(b), "tp-data-daily-3gb,tp-social-daily,tp-video-hour,tp-music-daily,"
                                   "tp-voice-weekly,tp-data-monthly-10gb,tp-data-weekly-async");
    ck_assert_str_ne(str(b, "upstreamTransId"), "");

    json_t *arr = json_object_get(b, "offers");
    static const int64_t costs[] = {16000, 6000, 1550, 2500, 12000, 100000, 25000};
    bool generic = false, app_specific = false;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        ck_assert_str_eq(str(o, "fundSource"), "WALLET");
        ck_assert_int_eq(money(o, "cost"), costs[i]);
        ck_assert_str_ne(str(o, "name"), "");
        ck_assert_str_ne(str(o, "description"), "");
        ck_assert_str_ne(str(o, "shortDescription"), "");
        ck_assert_int_gt(num(o, "duration"), 0);
        ck_assert(json_is_object(json_object_get(o, "quota")));
        const char *app = json_string_value(json_array_get(json_object_get(o, "appType"), 0));
        if (strcmp(app, "GENERIC") == 0) generic = true;
        if (strcmp(app, "SOCIAL") == 0 || strcmp(app, "VIDEO") == 0) app_specific = true;
    }
    ck_assert(generic && app_specific);

    o = json_array_get(arr, 0);
    ck_assert_str_eq(str(o, "name"), "3G Daily Bundle");
    ck_assert_int_eq(num(json_object_get(o, "quota"), "quotaBytes"), 3145728000LL);
    ck_assert_str_eq(str(o, "overusagePolicy"), "THROTTLED");
    ck_assert_int_eq(num(o, "speedLimit"), 384);
    ck_assert_int_eq(num(o, "duration"), 86400);
    ck_assert_str_eq(str(json_object_get(o, "recurrenceFrequency"), "frequency"), "DAILY");

    o = json_array_get(arr, 2); /* Video Hour: one-off */
    ck_assert_ptr_null(json_object_get(o, "recurrenceFrequency"));
    o = json_array_get(arr, 4); /* Weekly Minutes */
    ck_assert_int_eq(num(json_object_get(o, "quota"), "quotaMinutes"), 300);
    ck_assert_ptr_null(json_object_get(json_object_get(o, "quota"), "quotaBytes"));

    char *text = mno_json_text(b, NULL);
    ck_assert_ptr_nonnull(strstr(text, "\"cost\":{\"currency\":\"PKR\",\"value\":15.5}"));
    free(text);
    json_decref(b);
}
END_TEST

START_TEST(offers_states) {
    mno_reply r = offers(TOPUP, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(str(r.body, "subscriberState"), "NEED_TOPUP");
    ck_assert_str_eq(offer_ids(r.body), "");
    json_decref(r.body);

    r = offers(LOW, NULL);
    ck_assert_str_eq(str(r.body, "subscriberState"), "NEED_OFFERS");
    ck_assert_str_eq(offer_ids(r.body), "tp-social-daily,tp-data-daily-3gb,tp-video-hour");
    json_decref(r.body);

    r = offers(LOANS, NULL);
    ck_assert_str_eq(str(r.body, "subscriberState"), "NEED_LOANS");
    ck_assert_str_eq(offer_ids(r.body), "tp-loan-data-500mb,tp-loan-social-200mb");
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(r.body, "offers"), i, o)
        ck_assert_str_eq(str(o, "fundSource"), "LOAN");
    json_decref(r.body);

    r = offers(POSTPAID, NULL);
    ck_assert_str_eq(str(r.body, "subscriberState"), "GOOD_TO_GO");
    ck_assert_str_eq(offer_ids(r.body),
                     "tp-data-monthly-10gb,tp-data-daily-3gb,tp-voice-weekly,tp-data-weekly-async");
    json_decref(r.body);

    /* The OPET token reaches the same offers. */
    r = call(MNO_CALL_OFFERS, OPET, "OPET", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(r.body, "offers")), 7);
    json_decref(r.body);
}
END_TEST

static void assert_offers(const char *const *extra, const char *ids) {
    mno_reply r = offers(GOOD, extra);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(offer_ids(r.body), ids);
    json_decref(r.body);
}

START_TEST(offers_max_price) {
    /* Costs: 160.00, 60.00, 15.50, 25.00, 120.00, 1000.00, 250.00; the limit is inclusive. */
    assert_offers((const char *const[]){"maxPrice", "60", NULL},
                  "tp-social-daily,tp-video-hour,tp-music-daily");
    assert_offers((const char *const[]){"maxPrice", "60.00", NULL},
                  "tp-social-daily,tp-video-hour,tp-music-daily");
    assert_offers((const char *const[]){"maxPrice", "59.99", NULL}, "tp-video-hour,tp-music-daily");
    assert_offers((const char *const[]){"maxPrice", "15.5", NULL}, "tp-video-hour");
    assert_offers((const char *const[]){"maxPrice", "15.49", NULL}, "");
    assert_offers((const char *const[]){"maxPrice", "0", NULL}, "");
    assert_offers((const char *const[]){"maxPrice", "100000", NULL},
                  "tp-data-daily-3gb,tp-social-daily,tp-video-hour,tp-music-daily,"
                  "tp-voice-weekly,tp-data-monthly-10gb,tp-data-weekly-async");
}
END_TEST

START_TEST(offers_number_of_offers) {
    assert_offers((const char *const[]){"numberofOffers", "1", NULL}, "tp-data-daily-3gb");
    assert_offers((const char *const[]){"numberofOffers", "2", NULL},
                  "tp-data-daily-3gb,tp-social-daily");
    assert_offers((const char *const[]){"numberofOffers", "50", NULL},
                  "tp-data-daily-3gb,tp-social-daily,tp-video-hour,tp-music-daily,"
                  "tp-voice-weekly,tp-data-monthly-10gb,tp-data-weekly-async");
    /* The count applies after the other filters. */
    assert_offers((const char *const[]){"maxPrice", "60.00", "numberofOffers", "2", NULL},
                  "tp-social-daily,tp-video-hour");
}
END_TEST

START_TEST(offers_offer_type) {
    assert_offers((const char *const[]){"offerType", "Social", NULL}, "tp-social-daily");
    assert_offers((const char *const[]){"offerType", "SOCIAL", NULL}, "tp-social-daily");
    assert_offers((const char *const[]){"offerType", "data", NULL},
                  "tp-data-daily-3gb,tp-data-monthly-10gb,tp-data-weekly-async");
    assert_offers((const char *const[]){"offerType", "Video", NULL}, "tp-video-hour");
    assert_offers((const char *const[]){"offerType", "Music", NULL}, "tp-music-daily");
    assert_offers((const char *const[]){"offerType", "Voice", NULL}, "tp-voice-weekly");
    assert_offers((const char *const[]){"offerType", "SMS", NULL}, "");
    assert_offers((const char *const[]){"offerType", "Roaming", NULL}, "");
    assert_offers((const char *const[]){"offerType", "all", NULL},
                  "tp-data-daily-3gb,tp-social-daily,tp-video-hour,tp-music-daily,"
                  "tp-voice-weekly,tp-data-monthly-10gb,tp-data-weekly-async");
    assert_offers((const char *const[]){"offerType", "Data", "maxPrice", "200", NULL},
                  "tp-data-daily-3gb");
}
END_TEST

START_TEST(offers_urdu) {
    mno_reply r = offers(GOOD, (const char *const[]){"lang", "ur", "offerType", "Social", NULL});
    json_t *o = json_array_get(json_object_get(r.body, "offers"), 0);
    ck_assert_str_eq(str(o, "name"), "روزانہ سوشل پیک");
    ck_assert_str_eq(str(o, "shortDescription"), "1 جی بی سوشل، 1 دن");
    ck_assert_ptr_nonnull(strstr(str(o, "description"), "واٹس ایپ"));
    json_decref(r.body);

    r = offers(GOOD, (const char *const[]){"lang", "en", "offerType", "Social", NULL});
    o = json_array_get(json_object_get(r.body, "offers"), 0);
    ck_assert_str_eq(str(o, "name"), "Daily Social Pack");
    json_decref(r.body);

    r = offers(GOOD, (const char *const[]){"lang", "de", "offerType", "Social", NULL});
    o = json_array_get(json_object_get(r.body, "offers"), 0);
    ck_assert_str_eq(str(o, "name"), "Daily Social Pack");
    ck_assert_str_eq(str(o, "description"),
                     "1 GB for WhatsApp, Facebook and Instagram for 24 hours");
    json_decref(r.body);
}
END_TEST

/* ---- parameter validation ---- */

static void assert_bad(mno_call c, const params *p, const char *needle) {
    mno_request rq;
    char msg[160] = "";
    ck_assert_int_eq(mno_parse_request(c, GOOD, get_param, (void *)p, &rq, msg, sizeof msg), -1);
    ck_assert_msg(strstr(msg, needle) != NULL, "message '%s' does not name %s", msg, needle);
}

START_TEST(params_required) {
    params p = {{"channelId", "App", "serviceProviderId", "sp", NULL}};
    assert_bad(MNO_CALL_BALANCE, &p, "customerIdType");
    params q = {{"customerIdType", "MSISDN", "serviceProviderId", "sp", NULL}};
    assert_bad(MNO_CALL_OFFERS, &q, "channelId");
    params r = {{"customerIdType", "MSISDN", "channelId", "App", NULL}};
    assert_bad(MNO_CALL_BALANCE, &r, "serviceProviderId");
    params empty = {{"customerIdType", "MSISDN", "channelId", "", "serviceProviderId", "sp", NULL}};
    assert_bad(MNO_CALL_BALANCE, &empty, "channelId");
    params email = {
        {"customerIdType", "Email", "channelId", "App", "serviceProviderId", "sp", NULL}};
    assert_bad(MNO_CALL_BALANCE, &email, "customerIdType");

    mno_request rq;
    char msg[160];
    params ok = {{"customerIdType", "msisdn", "channelId", "App", "serviceProviderId", "sp", NULL}};
    ck_assert_int_eq(
        mno_parse_request(MNO_CALL_BALANCE, GOOD, get_param, &ok, &rq, msg, sizeof msg), 0);
    ck_assert_int_eq(rq.id_type, MNO_ID_MSISDN);
    ck_assert_str_eq(rq.lang, "en");
    ck_assert_ptr_null(rq.trans_id);
    ck_assert_int_eq(mno_parse_request(MNO_CALL_BALANCE, "", get_param, &ok, &rq, msg, sizeof msg),
                     -1);
}
END_TEST

START_TEST(params_offer_filters) {
    static const char *const bad_price[] = {"abc", "1.234", "-5", "1e3", ".5", " 5"};
    for (size_t i = 0; i < sizeof bad_price / sizeof *bad_price; i++) {
        params p = base_params("MSISDN", (const char *const[]){"maxPrice", bad_price[i], NULL});
        assert_bad(MNO_CALL_OFFERS, &p, "maxPrice");
    }
    static const char *const bad_count[] = {"0", "-1", "x", "2x", "+3", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_count / sizeof *bad_count; i++) {
        params p =
            base_params("MSISDN", (const char *const[]){"numberofOffers", bad_count[i], NULL});
        assert_bad(MNO_CALL_OFFERS, &p, "numberofOffers");
    }
    /* Balance ignores the offers filters. */
    params p = base_params("MSISDN", (const char *const[]){"maxPrice", "abc", NULL});
    mno_request rq;
    char msg[160];
    ck_assert_int_eq(mno_parse_request(MNO_CALL_BALANCE, GOOD, get_param, &p, &rq, msg, sizeof msg),
                     0);

    p = base_params("MSISDN", (const char *const[]){"maxPrice", "60.5", "numberofOffers", "3",
                                                    "offerType", "All", NULL});
    ck_assert_int_eq(mno_parse_request(MNO_CALL_OFFERS, GOOD, get_param, &p, &rq, msg, sizeof msg),
                     0);
    ck_assert_int_eq(rq.max_price_minor, 6050);
    ck_assert_int_eq(rq.max_offers, 3);
    ck_assert_ptr_null(rq.offer_type);
}
END_TEST

/* ---- store ---- */

START_TEST(store_reopens_without_reseeding) {
    mno_store_close(store);
    char err[256] = "";
    store = mno_store_open(1, err, sizeof err);
    ck_assert_msg(store != NULL, "reopen: %s", err);
    mno_reply r = offers(GOOD, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(r.body, "offers")), 7);
    json_decref(r.body);
}
END_TEST

START_TEST(store_upgrades_from_version_3) {
    /* A file of the previous schema (migrations 1-3) with an activation. */
    mno_store_close(store);
    store = NULL;
    char path[320], err[256] = "";
    snprintf(path, sizeof path, "%s/upgrade.db", dir);
    sqlite3 *old = store_open_path(path, mno_migrations, 3, err, sizeof err);
    ck_assert_msg(old != NULL, "%s", err);
    ck_assert_int_eq(sqlite3_exec(old,
                                  "INSERT INTO activations (trans_id, customer, channel_id,"
                                  " service_provider, offer_id, fund_source, amount_minor, status,"
                                  " http_status, debits, created_ms) VALUES ('old-0000000001',"
                                  " '" GOOD "', 'App', 'sp', 'tp-video-hour', 'WALLET', 1550, 'OK',"
                                  " 200, 1, 1)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    store_close(old);
    store = mno_store_open_path(path, 1, err, sizeof err);
    ck_assert_msg(store != NULL, "upgrade: %s", err);
    json_t *acts = mno_activations_json(store, "old-0000000001");
    ck_assert_int_eq(json_integer_value(json_object_get(acts, "count")), 1);
    json_decref(acts);
    mno_reply r = offers(GOOD, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(r.body, "offers")), 7);
    json_decref(r.body);
    r = offers("924542610007", NULL);
    ck_assert_int_eq(r.status, 200);
    const json_t *o = json_object_get(r.body, "offers");
    ck_assert_uint_eq(json_array_size(o), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(o, 1), "fundSource")),
                     "FREE");
    json_decref(r.body);
    r = balance("924542610007");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(json_object_get(r.body, "ewalletBalance"));
    json_decref(r.body);
    mno_store_close(store);
    store = NULL;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[340];
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}
END_TEST

static void *hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < 200; i++) {
        mno_reply r = i % 2 ? balance(GOOD) : offers(LOW, NULL);
        if (r.status != 200) return (void *)1;
        json_decref(r.body);
    }
    return NULL;
}

START_TEST(store_concurrent_readers) {
    /* More threads than readers: readers are shared under their locks. */
    pthread_t t[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        ck_assert_ptr_null(rv);
    }
}
END_TEST

/* ---- the top-up extension (store_topup.c): messages recorded once per
 * reference, credits once per transId, refused for unknown and barred
 * subscribers, and both wiped by a reseed. ---- */

static json_int_t count_to(const char *msisdn) {
    json_t *j = mno_messages_json(store, msisdn);
    ck_assert_ptr_nonnull(j);
    json_int_t n = json_integer_value(json_object_get(j, "count"));
    json_decref(j);
    return n;
}

START_TEST(messages_once_per_reference) {
    int64_t a = 0, b = 0, c = 0;
    ck_assert_int_eq(mno_message_record(store, "6582736491", "SMS", "hello", "tu-1", 1000, &a), 0);
    ck_assert_int_eq(mno_message_record(store, "6582736491", "SMS", "hello", "tu-1", 2000, &b), 0);
    ck_assert_int_eq(a, b);
    ck_assert_int_eq(mno_message_record(store, "6582736491", "USSD", "hi", NULL, 3000, &c), 0);
    ck_assert_int_ne(a, c);
    ck_assert_int_eq(count_to("6582736491"), 2);
    ck_assert_int_eq(count_to("924542610000"), 0);
    json_t *all = mno_messages_json(store, NULL);
    json_t *first = json_array_get(json_object_get(all, "messages"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(first, "to")), "6582736491");
    ck_assert_str_eq(json_string_value(json_object_get(first, "reference")), "tu-1");
    ck_assert_str_eq(json_string_value(json_object_get(first, "text")), "hello");
    json_decref(all);
    ck_assert_int_ge(mno_store_reseed(store), 0);
    ck_assert_int_eq(count_to(NULL), 0);
}
END_TEST

/* The credit's status; its balance value (a JSON number) into *balance. */
static int credit(const char *msisdn, const char *trans_id, int64_t amount, double *balance,
                  char *error_type) {
    mno_reply r = mno_credit(store, msisdn, trans_id, amount, 1000);
    ck_assert_ptr_nonnull(r.body);
    if (balance)
        *balance = json_number_value(json_object_get(json_object_get(r.body, "balance"), "value"));
    if (error_type)
        snprintf(error_type, 32, "%s",
                 json_string_value(json_object_get(r.body, "errorType"))
                     ? json_string_value(json_object_get(r.body, "errorType"))
                     : "");
    json_decref(r.body);
    return r.status;
}

START_TEST(credits_once_per_trans_id) {
    double balance = 0;
    char type[32];
    /* 924542610000 has 0.00 */
    ck_assert_int_eq(credit("924542610000", "tu-a", 25000, &balance, NULL), 200);
    ck_assert(balance == 250.0);
    ck_assert_int_eq(credit("+924542610000", "tu-a", 25000, &balance, NULL), 200);
    ck_assert(balance == 250.0);
    ck_assert_int_eq(credit("924542610000", "tu-a", 10000, NULL, type), 409);
    ck_assert_str_eq(type, "CONFLICT");
    ck_assert_int_eq(credit("924542610006", "tu-a", 25000, NULL, type), 409);
    ck_assert_int_eq(credit("924542610000", "tu-b", 10000, &balance, NULL), 200);
    ck_assert(balance == 350.0);
    ck_assert_int_eq(credit("924542619999", "tu-c", 100, NULL, type), 404);
    ck_assert_str_eq(type, "UNKNOWN_SUBSCRIBER_ID");
    ck_assert_int_eq(credit("924542610005", "tu-d", 100, NULL, type), 403);
    ck_assert_str_eq(type, "USER_BARRED");
    /* a reseed restores the seeded balance and forgets the credits */
    ck_assert_int_ge(mno_store_reseed(store), 0);
    ck_assert_int_eq(credit("924542610000", "tu-a", 100, &balance, NULL), 200);
    ck_assert(balance == 1.0);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("mno_sandbox_store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, balance_good_to_go);
    tcase_add_test(tc, balance_need_topup_has_loan);
    tcase_add_test(tc, balance_low_on_data);
    tcase_add_test(tc, balance_no_money);
    tcase_add_test(tc, balance_postpaid);
    tcase_add_test(tc, balance_urdu);
    tcase_add_test(tc, balance_by_opet_and_plus);
    tcase_add_test(tc, errors_unknown_barred_roaming);
    tcase_add_test(tc, offers_good_to_go);
    tcase_add_test(tc, offers_states);
    tcase_add_test(tc, offers_max_price);
    tcase_add_test(tc, offers_number_of_offers);
    tcase_add_test(tc, offers_offer_type);
    tcase_add_test(tc, offers_urdu);
    tcase_add_test(tc, params_required);
    tcase_add_test(tc, params_offer_filters);
    tcase_add_test(tc, store_reopens_without_reseeding);
    tcase_add_test(tc, store_upgrades_from_version_3);
    tcase_add_test(tc, store_concurrent_readers);
    tcase_add_test(tc, messages_once_per_reference);
    tcase_add_test(tc, credits_once_per_trans_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    setenv("MILLOM_LOG_LEVEL", "warn", 0);
    log_init("test_mno_sandbox_store");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
