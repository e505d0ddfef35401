/* Unit tests for services/offer-resolver/mapping_backend.c: operator backend
 * JSON (accountStatus, offersInfo, errorResponse) to the standard API
 * (AccountInfoResponse, BalanceResponse, OfferInfoResponse, ErrorDocument).
 * Table-driven; runs with CK_FORK=no (no state shared between tests, every
 * json_t released). */
#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/offer-resolver/mapping_backend.h"
#include "services/offer-resolver/upsell_template.h" /* map_upsell_offer */
#include "shared/plumbing/errors.h"
#include "shared/contracts/offer_context.h"

#define KEY "unit-test-offer-context-key"
#define NOW_MS INT64_C(1795880000000)
#define VALID_UNTIL_MS INT64_C(1795887000000) /* 2026-11-28T17:30:00Z */
#define VALID_UNTIL "2026-11-28T17:30:00Z"
#define TTL_MS INT64_C(900000)
#define MSISDN "924542610003"
#define UNLIMITED "9223372036854775807"

static const char *const LANGS[] = {"en", "ur", NULL};

static const tenant_operator OP = {
    .id = "tp",
    .name = "Telenor Pakistan",
    .mccmnc = "41006",
    .country_code = "92",
    .currency = "PKR",
    .currency_scale = 2,
    .backend_url = "http://127.0.0.1:9090",
    .default_language = "en",
    .languages = LANGS,
    .json = NULL,
};

/* KEY as a one-key set (the default key). */
static const keys_set *key_set(void) {
    static keys_set set;
    if (set.n == 0) ck_assert_int_eq(keys_set_one(&set, KEY), 0);
    return &set;
}

static mapping_ctx ctx(void) {
    mapping_ctx m = {
        .op = &OP,
        .service_provider = "testserviceprovider",
        .subscriber = MSISDN,
        .language = "ur",
        .now_ms = NOW_MS,
        .valid_until_ms = VALID_UNTIL_MS,
        .plan_type = NULL,
        .offer_context_keys = key_set(),
        .offer_ttl_ms = TTL_MS,
    };
    return m;
}

static json_t *J(const char *text) {
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    ck_assert_msg(v != NULL, "bad test JSON (%s): %s", e.text, text);
    return v;
}

static const char *str_at(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void assert_str(const json_t *obj, const char *key, const char *want) {
    const char *got = str_at(obj, key);
    ck_assert_msg(got != NULL, "%s missing or not a string", key);
    ck_assert_str_eq(got, want);
}

/* [{"language": lang, "text": text}] */
static void assert_mtext(const json_t *arr, const char *lang, const char *text) {
    ck_assert_msg(json_is_array(arr) && json_array_size(arr) == 1, "not a 1-element array");
    const json_t *e = json_array_get(arr, 0);
    assert_str(e, "language", lang);
    assert_str(e, "text", text);
}

/* A dump of v never shows a JSON real (money and quotas are strings/ints). */
static void assert_no_reals(const json_t *v) {
    if (json_is_real(v)) ck_abort_msg("a JSON real in the output");
    const char *k;
    json_t *c;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, c) assert_no_reals(c);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, c) assert_no_reals(c);
    }
}

/* -------------------------------------------------------------- money */

static const struct {
    const char *json; /* the backend's value, as JSON text */
    const char *want; /* quoted decimal at scale 2 */
} MONEY[] = {
    {"160.1", "160.10"},
    {"15.5", "15.50"},
    {"0", "0.00"},
    {"0.0", "0.00"},
    {"1e9", "1000000000.00"},
    {"1000000000", "1000000000.00"},
    {"0.30000000000000004", "0.30"}, /* 0.1 + 0.2 */
    {"520.75", "520.75"},
    {"0.125", "0.13"},
    {"14.999", "15.00"},
    {"1", "1.00"},
    {"\"160.00\"", "160.00"}, /* the backend spec's own example sends a string */
    {"\"160.5\"", "160.50"},
    {"\"7\"", "7.00"},
};
#define N_MONEY (int)(sizeof MONEY / sizeof MONEY[0])

START_TEST(account_info_money) {
    char text[256], err[256];
    snprintf(text, sizeof text,
             "{\"subscriptionType\":\"PREPAID\",\"pricePlan\":\"djuice\","
             "\"monetaryBalance\":{\"currency\":\"PKR\",\"value\":%s}}",
             MONEY[_i].json);
    json_t *body = J(text);
    mapping_ctx m = ctx();
    json_t *out = map_account_info(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s: %s", MONEY[_i].json, err);
    const json_t *main_bal = json_array_get(json_object_get(out, "balances"), 0);
    assert_str(main_bal, "balanceType", "main");
    assert_str(main_bal, "balance", MONEY[_i].want);
    assert_no_reals(out);
    json_decref(out);
    json_decref(body);
}
END_TEST

START_TEST(offer_cost_money) {
    char text[512], err[256];
    snprintf(text, sizeof text,
             "{\"subscriberState\":\"NEED_OFFERS\",\"offers\":[{\"id\":\"p1\",\"name\":\"P\","
             "\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1024},\"duration\":86400,"
             "\"cost\":{\"currency\":\"PKR\",\"value\":%s}}]}",
             MONEY[_i].json);
    json_t *body = J(text);
    mapping_ctx m = ctx();
    json_t *out = map_upsell_offer(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s: %s", MONEY[_i].json, err);
    ck_assert_str_eq(err, "");
    const json_t *o = json_array_get(json_object_get(out, "offers"), 0);
    ck_assert_ptr_nonnull(o);
    assert_str(o, "cost", MONEY[_i].want);
    assert_no_reals(out);
    json_decref(out);
    json_decref(body);
}
END_TEST

START_TEST(negative_balance_kept) {
    static const struct {
        const char *json, *want;
    } T[] = {{"-12.5", "-12.50"}, {"-3.005", "-3.01"}, {"\"-0.5\"", "-0.50"}};
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        char text[256], err[256];
        snprintf(text, sizeof text,
                 "{\"subscriptionType\":\"POSTPAID\",\"monetaryBalance\":{\"value\":%s}}",
                 T[i].json);
        json_t *body = J(text);
        mapping_ctx m = ctx();
        json_t *out = map_account_info(&m, body, err, sizeof err);
        ck_assert_msg(out != NULL, "%s", err);
        assert_str(json_array_get(json_object_get(out, "balances"), 0), "balance", T[i].want);
        json_decref(out);
        json_decref(body);
    }
}
END_TEST

START_TEST(other_currency_scales) {
    static const char *const langs[] = {"en", NULL};
    static const struct {
        int scale;
        const char *json, *want;
    } T[] = {
        {0, "160.4", "160"},    {0, "160.5", "161"}, {0, "0", "0"},
        {3, "1.0005", "1.001"}, {3, "2", "2.000"},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        tenant_operator op = {.id = "xx",
                              .currency = "XXX",
                              .currency_scale = T[i].scale,
                              .default_language = "en",
                              .languages = langs};
        mapping_ctx m = ctx();
        m.op = &op;
        char text[256], err[256];
        snprintf(text, sizeof text, "{\"monetaryBalance\":{\"value\":%s}}", T[i].json);
        json_t *body = J(text);
        json_t *out = map_account_info(&m, body, err, sizeof err);
        ck_assert_msg(out != NULL, "%s", err);
        assert_str(json_array_get(json_object_get(out, "balances"), 0), "balance", T[i].want);
        assert_str(out, "currency", "XXX");
        json_decref(out);
        json_decref(body);
    }
}
END_TEST

/* ---------------------------------------------------------- accountInfo */

START_TEST(account_info_full) {
    json_t *body = J("{\"subscriptionType\":\"PREPAID\",\"pricePlan\":\"djuice\","
                     "\"monetaryBalance\":{\"currency\":\"PKR\",\"value\":520.75},"
                     "\"subscribedPlans\":[]}");
    mapping_ctx m = ctx();
    char err[256] = "junk";
    json_t *out = map_account_info(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(err, "");
    assert_str(out, "accountType", "PREPAID");
    assert_str(out, "currency", "PKR");
    assert_str(out, "validUntil", VALID_UNTIL);
    const json_t *b = json_object_get(out, "balances");
    ck_assert_uint_eq(json_array_size(b), 1);
    assert_str(json_array_get(b, 0), "balanceType", "main");
    assert_str(json_array_get(b, 0), "balance", "520.75");
    ck_assert_uint_eq(json_object_size(out), 4);
    json_decref(out);
    json_decref(body);
}
END_TEST

START_TEST(account_info_loan) {
    json_t *body = J("{\"subscriptionType\":\"PREPAID\",\"pricePlan\":\"djuice\","
                     "\"monetaryBalance\":{\"currency\":\"PKR\",\"value\":3.5},"
                     "\"loanBalance\":{\"currency\":\"PKR\",\"value\":50}}");
    mapping_ctx m = ctx();
    char err[256];
    json_t *out = map_account_info(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    const json_t *b = json_object_get(out, "balances");
    ck_assert_uint_eq(json_array_size(b), 2);
    assert_str(json_array_get(b, 0), "balanceType", "main");
    assert_str(json_array_get(b, 0), "balance", "3.50");
    assert_str(json_array_get(b, 1), "balanceType", "loan");
    assert_str(json_array_get(b, 1), "balance", "50.00");
    json_decref(out);
    json_decref(body);

    /* a malformed loanBalance is a malformed body */
    body = J("{\"monetaryBalance\":{\"value\":3.5},\"loanBalance\":{\"value\":\"lots\"}}");
    out = map_account_info(&m, body, err, sizeof err);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(err, "loanBalance"));
    json_decref(body);

    /* null loanBalance is just absent */
    body = J("{\"monetaryBalance\":{\"value\":3.5},\"loanBalance\":null}");
    out = map_account_info(&m, body, err, sizeof err);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(json_array_size(json_object_get(out, "balances")), 1);
    json_decref(out);
    json_decref(body);
}
END_TEST

START_TEST(account_info_ewallet_and_offer_fund_sources) {
    json_t *body = J("{\"monetaryBalance\":{\"currency\":\"PKR\",\"value\":5},"
                     "\"ewalletBalance\":{\"currency\":\"PKR\",\"value\":150}}");
    mapping_ctx m = ctx();
    char err[256];
    json_t *out = map_account_info(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    const json_t *b = json_object_get(out, "balances");
    ck_assert_uint_eq(json_array_size(b), 2);
    assert_str(json_array_get(b, 1), "balanceType", "ewallet");
    assert_str(json_array_get(b, 1), "balance", "150.00");
    json_decref(out);
    json_decref(body);
    body = J("{\"monetaryBalance\":{\"value\":5},\"ewalletBalance\":{\"value\":\"lots\"}}");
    ck_assert_ptr_null(map_account_info(&m, body, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "ewalletBalance"));
    json_decref(body);

    /* offers: the four fund sources pass, others are left out, FREE must cost 0 */
    body = J("{\"subscriberState\":\"GOOD_TO_GO\",\"offers\":["
             "{\"id\":\"e\",\"name\":\"E\",\"fundSource\":\"EWALLET\",\"quota\":1,"
             "\"cost\":{\"value\":120}},"
             "{\"id\":\"f\",\"name\":\"F\",\"fundSource\":\"FREE\",\"quota\":1,"
             "\"cost\":{\"value\":0}},"
             "{\"id\":\"p\",\"name\":\"P\",\"fundSource\":\"PURCHASE\",\"quota\":1,"
             "\"cost\":{\"value\":1}},"
             "{\"id\":\"x\",\"name\":\"X\",\"fundSource\":\"FREE\",\"quota\":1,"
             "\"cost\":{\"value\":1}}]}");
    out = map_upsell_offer(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    const json_t *offers = json_object_get(out, "offers");
    ck_assert_uint_eq(json_array_size(offers), 3); /* the costly FREE one dropped */
    assert_str(json_array_get(offers, 0), "fundSource", "EWALLET");
    assert_str(json_array_get(offers, 1), "fundSource", "FREE");
    assert_str(json_array_get(offers, 1), "cost", "0.00");
    ck_assert_ptr_null(json_object_get(json_array_get(offers, 2), "fundSource"));
    ck_assert_ptr_nonnull(strstr(err, "FREE"));
    json_decref(out);
    json_decref(body);
}
END_TEST

static const struct {
    const char *field; /* "subscriptionType":... fragment, "" = absent */
    const char *want;  /* accountType, NULL = omitted, "ERR" = error */
} ACCOUNT_TYPES[] = {
    {"\"subscriptionType\":\"PREPAID\",", "PREPAID"},
    {"\"subscriptionType\":\"POSTPAID\",", "POSTPAID"},
    {"\"subscriptionType\":\"UNSPECIFIED\",", NULL},
    {"", NULL},
    {"\"subscriptionType\":null,", NULL},
    {"\"subscriptionType\":\"HYBRID\",", "ERR"},
    {"\"subscriptionType\":\"prepaid\",", "ERR"},
    {"\"subscriptionType\":1,", "ERR"},
};
#define N_ACCOUNT_TYPES (int)(sizeof ACCOUNT_TYPES / sizeof ACCOUNT_TYPES[0])

START_TEST(account_type_mapping) {
    char text[256], err[256];
    snprintf(text, sizeof text, "{%s\"pricePlan\":\"djuice\",\"monetaryBalance\":{\"value\":1}}",
             ACCOUNT_TYPES[_i].field);
    json_t *body = J(text);
    mapping_ctx m = ctx();
    json_t *(*const fns[])(const mapping_ctx *, const json_t *, char *, size_t) = {map_account_info,
                                                                                   map_balance};
    for (size_t f = 0; f < 2; f++) {
        json_t *out = fns[f](&m, body, err, sizeof err);
        const char *want = ACCOUNT_TYPES[_i].want;
        if (want && strcmp(want, "ERR") == 0) {
            ck_assert_ptr_null(out);
            ck_assert_ptr_nonnull(strstr(err, "subscriptionType"));
            continue;
        }
        ck_assert_msg(out != NULL, "%s", err);
        if (want)
            assert_str(out, "accountType", want);
        else
            ck_assert_ptr_null(json_object_get(out, "accountType"));
        json_decref(out);
    }
    json_decref(body);
}
END_TEST

START_TEST(account_info_currency_fallback) {
    mapping_ctx m = ctx();
    char err[256];
    json_t *body = J("{\"monetaryBalance\":{\"value\":10}}");
    json_t *out = map_account_info(&m, body, err, sizeof err);
    ck_assert_ptr_nonnull(out);
    assert_str(out, "currency", "PKR");
    json_decref(out);
    json_decref(body);

    body = J("{\"monetaryBalance\":{\"currency\":\"\",\"value\":10}}");
    out = map_account_info(&m, body, err, sizeof err);
    ck_assert_ptr_nonnull(out);
    assert_str(out, "currency", "PKR");
    json_decref(out);
    json_decref(body);

    body = J("{\"monetaryBalance\":{\"currency\":\"USD\",\"value\":10}}");
    out = map_account_info(&m, body, err, sizeof err);
    ck_assert_ptr_nonnull(out);
    assert_str(out, "currency", "USD");
    json_decref(out);
    json_decref(body);
}
END_TEST

/* Bodies both accountInfo and balance reject. */
static const char *const BAD_ACCOUNT_BODIES[] = {
    "[]",
    "\"accountStatus\"",
    "42",
    "null",
    "true",
    "{}",
    "{\"monetaryBalance\":null}",
    "{\"monetaryBalance\":520.75}",
    "{\"monetaryBalance\":{}}",
    "{\"monetaryBalance\":{\"currency\":\"PKR\"}}",
    "{\"monetaryBalance\":{\"value\":\"abc\"}}",
    "{\"monetaryBalance\":{\"value\":\"160.005\"}}", /* more decimals than the scale */
    "{\"monetaryBalance\":{\"value\":\"1e3\"}}",
    "{\"monetaryBalance\":{\"value\":true}}",
    "{\"monetaryBalance\":{\"value\":1e300}}",
    "{\"monetaryBalance\":{\"value\":1,\"currency\":5}}",
};
#define N_BAD_ACCOUNT (int)(sizeof BAD_ACCOUNT_BODIES / sizeof BAD_ACCOUNT_BODIES[0])

START_TEST(account_bodies_rejected) {
    json_t *body = J(BAD_ACCOUNT_BODIES[_i]);
    mapping_ctx m = ctx();
    char err[256];
    err[0] = '\0';
    json_t *out = map_account_info(&m, body, err, sizeof err);
    ck_assert_msg(out == NULL, "accepted %s", BAD_ACCOUNT_BODIES[_i]);
    ck_assert_msg(err[0] != '\0', "no message for %s", BAD_ACCOUNT_BODIES[_i]);
    err[0] = '\0';
    out = map_balance(&m, body, err, sizeof err);
    ck_assert_msg(out == NULL, "balance accepted %s", BAD_ACCOUNT_BODIES[_i]);
    ck_assert(err[0] != '\0');
    json_decref(body);
}
END_TEST

START_TEST(null_arguments) {
    mapping_ctx m = ctx();
    char err[128];
    ck_assert_ptr_null(map_account_info(&m, NULL, err, sizeof err));
    ck_assert_ptr_null(map_balance(&m, NULL, err, sizeof err));
    ck_assert_ptr_null(map_upsell_offer(&m, NULL, err, sizeof err));
    json_t *body = J("{\"monetaryBalance\":{\"value\":1}}");
    ck_assert_ptr_null(map_account_info(NULL, body, err, sizeof err));
    mapping_ctx no_op = ctx();
    no_op.op = NULL;
    ck_assert_ptr_null(map_balance(&no_op, body, err, sizeof err));
    /* err may be NULL */
    ck_assert_ptr_null(map_account_info(&m, NULL, NULL, 0));
    json_t *out = map_account_info(&m, body, NULL, 0);
    ck_assert_ptr_nonnull(out);
    json_decref(out);
    json_decref(body);
}
END_TEST

/* -------------------------------------------------------------- balance */

static const char *BALANCE_BODY =
    "{\"subscriptionType\":\"PREPAID\",\"pricePlan\":\"djuice\","
    "\"monetaryBalance\":{\"currency\":\"PKR\",\"value\":520.75},"
    "\"subscribedPlans\":["
    "{\"planId\":\"P1\",\"planName\":\"3G weekly plan\","
    "\"expirationTime\":\"2026-12-01T10:00:00+05:00\",\"appType\":[\"GENERIC\"],"
    "\"balance\":{\"quotaBytes\":3000000000,\"remainingBytes\":2500000000}},"
    "{\"planId\":\"P2\",\"planName\":\"Unlimited YouTube\",\"planDescription\":\"Video all day\","
    "\"expirationTime\":\"2026-12-01T05:00:00Z\",\"appType\":[\"VIDEO\",\"Music\"],"
    "\"balance\":{\"quotaBytes\":" UNLIMITED ",\"remainingBytes\":" UNLIMITED "}},"
    "{\"planId\":\"P3\",\"planName\":\"Daily minutes\",\"expirationTime\":\"soon\","
    "\"appType\":[],\"balance\":{\"quotaMinutes\":1440,\"remainingMinutes\":600}}"
    "]}";

START_TEST(balance_full) {
    json_t *body = J(BALANCE_BODY);
    mapping_ctx m = ctx();
    char err[256] = "junk";
    json_t *out = map_balance(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(err, "");

    assert_str(out, "validUntil", VALID_UNTIL);
    assert_str(out, "operator", "tp");
    assert_str(out, "accountType", "PREPAID");
    assert_str(out, "accountStatus", "ACTIVE");
    assert_str(out, "ratePlanId", "djuice");
    assert_str(json_object_get(out, "monetaryBalance"), "balance", "520.75");
    /* unlimited + anything saturates at unlimited */
    assert_str(json_object_get(out, "dataBalance"), "balance", UNLIMITED);

    const json_t *plans = json_object_get(out, "activePlans");
    ck_assert_uint_eq(json_array_size(plans), 3);

    const json_t *p1 = json_array_get(plans, 0);
    assert_str(p1, "planId", "P1");
    assert_mtext(json_object_get(p1, "planName"), "ur", "3G weekly plan");
    ck_assert_ptr_null(json_object_get(p1, "planDescription"));
    assert_str(p1, "expiry", "2026-12-01T05:00:00Z");
    const json_t *g = json_array_get(json_object_get(p1, "gauge"), 0);
    assert_str(g, "unit", "bytes");
    ck_assert(json_is_integer(json_object_get(g, "quota")));
    ck_assert_int_eq(json_integer_value(json_object_get(g, "quota")), 3000000000LL);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "remaining")), 2500000000LL);
    const json_t *apps = json_object_get(p1, "applications");
    ck_assert_uint_eq(json_array_size(apps), 1);
    ck_assert_str_eq(json_string_value(json_array_get(apps, 0)), "generic");

    const json_t *p2 = json_array_get(plans, 1);
    assert_str(p2, "planId", "P2");
    assert_mtext(json_object_get(p2, "planDescription"), "ur", "Video all day");
    assert_str(p2, "expiry", "2026-12-01T05:00:00Z");
    g = json_array_get(json_object_get(p2, "gauge"), 0);
    ck_assert(json_is_integer(json_object_get(g, "quota")));
    ck_assert(json_integer_value(json_object_get(g, "quota")) == INT64_MAX);
    ck_assert(json_integer_value(json_object_get(g, "remaining")) == INT64_MAX);
    apps = json_object_get(p2, "applications");
    ck_assert_uint_eq(json_array_size(apps), 2);
    ck_assert_str_eq(json_string_value(json_array_get(apps, 0)), "video");
    ck_assert_str_eq(json_string_value(json_array_get(apps, 1)), "music");

    const json_t *p3 = json_array_get(plans, 2);
    ck_assert_ptr_null(json_object_get(p3, "expiry")); /* "soon" is not a date */
    g = json_array_get(json_object_get(p3, "gauge"), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(p3, "gauge")), 1);
    assert_str(g, "unit", "data-minutes");
    ck_assert_int_eq(json_integer_value(json_object_get(g, "quota")), 1440);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "remaining")), 600);
    apps = json_object_get(p3, "applications");
    ck_assert_str_eq(json_string_value(json_array_get(apps, 0)), "generic");

    /* the unlimited value survives serialization exactly */
    char *text = json_dumps(out, JSON_COMPACT);
    ck_assert_ptr_nonnull(strstr(text, "\"quota\":" UNLIMITED ","));
    ck_assert_ptr_nonnull(strstr(text, "\"remaining\":" UNLIMITED "}"));
    ck_assert_ptr_null(strstr(text, "e+18"));
    free(text);
    assert_no_reals(out);

    json_decref(out);
    json_decref(body);
}
END_TEST

static const struct {
    const char *plans; /* subscribedPlans JSON, NULL = absent */
    const char *data;  /* dataBalance.balance, NULL = absent */
    size_t n;          /* active plans */
} DATA_BALANCES[] = {
    {"[{\"planId\":\"a\",\"planName\":\"A\",\"balance\":{\"quotaBytes\":1000,\"remainingBytes\":"
     "100}},"
     "{\"planId\":\"b\",\"planName\":\"B\",\"balance\":{\"quotaBytes\":1000,\"remainingBytes\":250}"
     "}]",
     "350", 2},
    {"[{\"planId\":\"a\",\"planName\":\"A\",\"balance\":{\"quotaMinutes\":10,\"remainingMinutes\":"
     "5}}]",
     NULL, 1},
    {"[{\"planId\":\"a\",\"planName\":\"A\",\"balance\":{\"quotaBytes\":1000}}]", "0", 1},
    {"[{\"planId\":\"a\",\"planName\":\"A\",\"balance\":{\"quotaBytes\":1000,\"remainingBytes\":0}}"
     "]",
     "0", 1},
    {"[{\"planId\":\"a\",\"planName\":\"A\",\"balance\":{\"quotaBytes\":3e9,\"remainingBytes\":2."
     "5e9}}]",
     "2500000000", 1},
    {"[{\"planId\":\"a\",\"planName\":\"A\"}]", NULL, 1},
    {"[]", NULL, 0},
    {"null", NULL, 0},
    {NULL, NULL, 0},
};
#define N_DATA_BALANCES (int)(sizeof DATA_BALANCES / sizeof DATA_BALANCES[0])

START_TEST(balance_data_balance) {
    char text[1024], err[256];
    if (DATA_BALANCES[_i].plans)
        snprintf(text, sizeof text,
                 "{\"subscriptionType\":\"PREPAID\",\"pricePlan\":\"x\","
                 "\"monetaryBalance\":{\"value\":0},\"subscribedPlans\":%s}",
                 DATA_BALANCES[_i].plans);
    else
        snprintf(text, sizeof text,
                 "{\"subscriptionType\":\"PREPAID\",\"pricePlan\":\"x\","
                 "\"monetaryBalance\":{\"value\":0}}");
    json_t *body = J(text);
    mapping_ctx m = ctx();
    json_t *out = map_balance(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(err, "");
    ck_assert_uint_eq(json_array_size(json_object_get(out, "activePlans")), DATA_BALANCES[_i].n);
    ck_assert(json_is_array(json_object_get(out, "activePlans")));
    if (DATA_BALANCES[_i].data)
        assert_str(json_object_get(out, "dataBalance"), "balance", DATA_BALANCES[_i].data);
    else
        ck_assert_ptr_null(json_object_get(out, "dataBalance"));
    assert_str(json_object_get(out, "monetaryBalance"), "balance", "0.00");
    assert_no_reals(out);
    json_decref(out);
    json_decref(body);
}
END_TEST

/* A malformed plan is dropped, the others kept. */
static const char *const BAD_PLANS[] = {
    "42",
    "\"P\"",
    "{\"planName\":\"no id\"}",
    "{\"planId\":\"\",\"planName\":\"empty id\"}",
    "{\"planId\":7,\"planName\":\"numeric id\"}",
    "{\"planId\":\"x\"}",
    "{\"planId\":\"x\",\"planName\":[\"not\",\"a string\"]}",
    "{\"planId\":\"x\",\"planName\":\"X\",\"balance\":5}",
    "{\"planId\":\"x\",\"planName\":\"X\",\"balance\":{\"quotaBytes\":\"lots\"}}",
    "{\"planId\":\"x\",\"planName\":\"X\",\"balance\":{\"quotaBytes\":10,\"remainingBytes\":-1}}",
    "{\"planId\":\"x\",\"planName\":\"X\",\"balance\":{\"quotaMinutes\":1.5}}",
    "{\"planId\":\"x\",\"planName\":\"X\",\"balance\":{\"quotaBytes\":1e19}}",
    "{\"planId\":\"x\",\"planName\":\"X\",\"appType\":\"VIDEO\"}",
};
#define N_BAD_PLANS (int)(sizeof BAD_PLANS / sizeof BAD_PLANS[0])

START_TEST(balance_malformed_plan_dropped) {
    char text[1024], err[256];
    snprintf(
        text, sizeof text,
        "{\"subscriptionType\":\"PREPAID\",\"pricePlan\":\"x\",\"monetaryBalance\":{\"value\":1},"
        "\"subscribedPlans\":["
        "{\"planId\":\"good1\",\"planName\":\"G1\",\"balance\":{\"quotaBytes\":10,"
        "\"remainingBytes\":4}},"
        "%s,"
        "{\"planId\":\"good2\",\"planName\":\"G2\",\"balance\":{\"quotaBytes\":10,"
        "\"remainingBytes\":5}}]}",
        BAD_PLANS[_i]);
    json_t *body = J(text);
    mapping_ctx m = ctx();
    json_t *out = map_balance(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    const json_t *plans = json_object_get(out, "activePlans");
    ck_assert_msg(json_array_size(plans) == 2, "kept %s", BAD_PLANS[_i]);
    assert_str(json_array_get(plans, 0), "planId", "good1");
    assert_str(json_array_get(plans, 1), "planId", "good2");
    assert_str(json_object_get(out, "dataBalance"), "balance", "9");
    ck_assert_msg(strstr(err, "dropped 1 malformed plan") != NULL, "err: %s", err);
    ck_assert_ptr_nonnull(strstr(err, "subscribedPlans[1]"));
    json_decref(out);
    json_decref(body);
}
END_TEST

START_TEST(balance_bad_top_level) {
    static const char *const T[] = {
        "{\"monetaryBalance\":{\"value\":1},\"subscribedPlans\":{}}",
        "{\"monetaryBalance\":{\"value\":1},\"subscribedPlans\":\"none\"}",
        "{\"monetaryBalance\":{\"value\":1},\"pricePlan\":5}",
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        json_t *body = J(T[i]);
        mapping_ctx m = ctx();
        char err[256] = "";
        ck_assert_msg(map_balance(&m, body, err, sizeof err) == NULL, "accepted %s", T[i]);
        ck_assert(err[0] != '\0');
        json_decref(body);
    }
}
END_TEST

START_TEST(balance_language_default) {
    json_t *body = J(BALANCE_BODY);
    mapping_ctx m = ctx();
    m.language = NULL; /* falls back to the operator's default */
    char err[256];
    json_t *out = map_balance(&m, body, err, sizeof err);
    ck_assert_ptr_nonnull(out);
    assert_mtext(
        json_object_get(json_array_get(json_object_get(out, "activePlans"), 0), "planName"), "en",
        "3G weekly plan");
    json_decref(out);
    m.language = "";
    out = map_balance(&m, body, err, sizeof err);
    assert_mtext(
        json_object_get(json_array_get(json_object_get(out, "activePlans"), 0), "planName"), "en",
        "3G weekly plan");
    json_decref(out);
    json_decref(body);
}
END_TEST

static const struct {
    const char *in;
    const char *want; /* NULL = expiry omitted */
} EXPIRIES[] = {
    {"2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z"},
    {"2026-12-01T10:00:00z", "2026-12-01T10:00:00Z"},
    {"2026-12-01T10:00:00+00:00", "2026-12-01T10:00:00Z"},
    {"2026-12-01T10:00:00+05:00", "2026-12-01T05:00:00Z"},
    {"2026-12-01T01:00:00-0300", "2026-12-01T04:00:00Z"},
    {"2026-12-01T10:00:00+05", "2026-12-01T05:00:00Z"},
    {"2026-12-31T23:30:00-01:00", "2027-01-01T00:30:00Z"},
    {"2026-12-01T10:00:00.250+00:00", "2026-12-01T10:00:00.250Z"},
    {"2026-12-01T10:00:00,5Z", "2026-12-01T10:00:00.5Z"},
    {"2026-12-01 10:00:00Z", "2026-12-01T10:00:00Z"},
    {"2026-12-01T10:00Z", "2026-12-01T10:00:00Z"},
    {"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
    {"2018-09-13T06:17:21+00:00", "2018-09-13T06:17:21Z"},
    {"2026-12-01T10:00:00", "2026-12-01T10:00:00"}, /* local time: passed through */
    {"2099-12-31T23:59:59", "2099-12-31T23:59:59"},
    {"2026-02-29T10:00:00Z", NULL},
    {"2026-02-30T10:00:00Z", NULL},
    {"2026-13-01T10:00:00Z", NULL},
    {"2026-12-01T24:00:00Z", NULL},
    {"2026-12-01T10:60:00Z", NULL},
    {"2026-12-01T10:00:00+25:00", NULL},
    {"2026-12-01T10:00:00.Z", NULL},
    {"2026-12-01T10:00:00Zjunk", NULL},
    {"2026-12-01", NULL},
    {"20261201T100000Z", NULL},
    {"tomorrow", NULL},
    {"", NULL},
};
#define N_EXPIRIES (int)(sizeof EXPIRIES / sizeof EXPIRIES[0])

START_TEST(plan_expiry) {
    char text[512], err[256];
    snprintf(text, sizeof text,
             "{\"monetaryBalance\":{\"value\":1},\"subscribedPlans\":[{\"planId\":\"p\","
             "\"planName\":\"P\",\"expirationTime\":\"%s\"}]}",
             EXPIRIES[_i].in);
    json_t *body = J(text);
    mapping_ctx m = ctx();
    json_t *out = map_balance(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    const json_t *p = json_array_get(json_object_get(out, "activePlans"), 0);
    ck_assert_ptr_nonnull(p); /* a bad expiry never drops the plan */
    if (EXPIRIES[_i].want)
        assert_str(p, "expiry", EXPIRIES[_i].want);
    else
        ck_assert_msg(json_object_get(p, "expiry") == NULL, "kept expiry for %s", EXPIRIES[_i].in);
    json_decref(out);
    json_decref(body);
}
END_TEST

/* ---------------------------------------------------------- upsellOffer */

static const char *OFFERS_BODY =
    "{\"subscriberState\":\"NEED_OFFERS\",\"upstreamTransId\":\"u-1\",\"offers\":["
    "{\"id\":\"plan1234\",\"name\":\"3G Daily Bundle\",\"description\":\"3 GB for a day\","
    "\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":3145728000},\"appType\":[\"MUSIC\"],"
    "\"overusagePolicy\":\"THROTTLED\",\"speedLimit\":384,\"duration\":86400,"
    "\"cost\":{\"currency\":\"PKR\",\"value\":160.1},\"recurrenceFrequency\":{\"frequency\":"
    "\"DAILY\"}},"
    "{\"id\":\"plan1235\",\"name\":\"Daily Minutes\",\"shortDescription\":\"A day of data time\","
    "\"fundSource\":\"LOAN\",\"quota\":{\"quotaMinutes\":1440},\"appType\":[\"GENERIC\"],"
    "\"duration\":86400,\"cost\":{\"value\":15.5}},"
    "{\"id\":\"plan9\",\"name\":\"Unlimited\",\"fundSource\":\"WALLET\","
    "\"quota\":{\"quotaBytes\":" UNLIMITED "},\"duration\":2592000,"
    "\"cost\":{\"currency\":\"PKR\",\"value\":1e9}}"
    "]}";

START_TEST(upsell_full) {
    json_t *body = J(OFFERS_BODY);
    mapping_ctx m = ctx();
    char err[256] = "junk";
    json_t *out = map_upsell_offer(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(err, "");
    assert_str(out, "subscriberState", "NEED_OFFERS");
    ck_assert_uint_eq(json_object_size(out), 2);
    const json_t *offers = json_object_get(out, "offers");
    ck_assert_uint_eq(json_array_size(offers), 3);

    /* the backend's order is kept */
    const json_t *o = json_array_get(offers, 0);
    assert_str(o, "planId", "plan1234");
    assert_str(o, "cost", "160.10");
    assert_str(o, "costCurrency", "PKR");
    assert_str(o, "type", "Data");
    assert_mtext(json_object_get(o, "planName"), "ur", "3G Daily Bundle");
    assert_mtext(json_object_get(o, "planDescription"), "ur", "3 GB for a day");
    const json_t *q = json_array_get(json_object_get(o, "quota"), 0);
    assert_str(q, "unit", "bytes");
    ck_assert_int_eq(json_integer_value(json_object_get(q, "quota")), 3145728000LL);
    ck_assert_ptr_nonnull(str_at(o, "offerContext"));
    /* the rich-notification Offer's fundSource; no other field the
     * standard Offer does not have */
    assert_str(o, "fundSource", "WALLET");
    ck_assert_ptr_null(json_object_get(o, "appType"));
    ck_assert_ptr_null(json_object_get(o, "duration"));
    ck_assert_uint_eq(json_object_size(o), 9);

    o = json_array_get(offers, 1);
    assert_str(o, "planId", "plan1235");
    assert_str(o, "cost", "15.50");
    assert_str(o, "costCurrency", "PKR"); /* operator currency */
    assert_str(o, "type", "Minutes");
    assert_mtext(json_object_get(o, "planDescription"), "ur", "A day of data time");
    q = json_array_get(json_object_get(o, "quota"), 0);
    assert_str(q, "unit", "data-minutes");
    ck_assert_int_eq(json_integer_value(json_object_get(q, "quota")), 1440);
    assert_str(o, "fundSource", "LOAN");

    o = json_array_get(offers, 2);
    assert_str(o, "planId", "plan9");
    assert_str(o, "cost", "1000000000.00");
    ck_assert_ptr_null(json_object_get(o, "planDescription"));
    q = json_array_get(json_object_get(o, "quota"), 0);
    ck_assert(json_is_integer(json_object_get(q, "quota")));
    ck_assert(json_integer_value(json_object_get(q, "quota")) == INT64_MAX);

    char *text = json_dumps(out, JSON_COMPACT);
    ck_assert_ptr_nonnull(strstr(text, "\"quota\":" UNLIMITED "}"));
    ck_assert_ptr_nonnull(strstr(text, "\"fundSource\":\"WALLET\""));
    free(text);
    assert_no_reals(out);
    json_decref(out);
    json_decref(body);
}
END_TEST

/* The backend spec's own example: cost as a string, fundSource PURCHASE. */
START_TEST(upsell_spec_example) {
    json_t *body =
        J("{\"subscriberState\":\"GOOD_TO_GO\",\"offers\":["
          "{\"id\":\"plan1234\",\"name\":\"3G Daily Bundle\",\"fundSource\":\"PURCHASE\","
          "\"quota\":{\"quotaBytes\":3145728000},\"appType\":[\"MUSIC\"],"
          "\"overusagePolicy\":\"THROTTLED\",\"speedLimit\":384,\"duration\":86400,"
          "\"cost\":{\"currency\":\"PKR\",\"value\":\"160.00\"},"
          "\"recurrenceFrequency\":{\"frequency\":\"DAILY\"}},"
          "{\"id\":\"plan1235\",\"name\":\"Daily Social Pack\",\"fundSource\":\"PURCHASE\","
          "\"quota\":{\"quotaMinutes\":1440},\"appType\":[\"GENERIC\"],"
          "\"overusagePolicy\":\"PAY_AS_YOU_GO\",\"speedLimit\":384,\"duration\":86400,"
          "\"cost\":{\"currency\":\"PKR\",\"value\":\"60.00\"},"
          "\"recurrenceFrequency\":{\"frequency\":\"DAILY\"}}]}");
    mapping_ctx m = ctx();
    char err[256];
    json_t *out = map_upsell_offer(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(err, "");
    const json_t *offers = json_object_get(out, "offers");
    ck_assert_uint_eq(json_array_size(offers), 2);
    assert_str(json_array_get(offers, 0), "cost", "160.00");
    assert_str(json_array_get(offers, 1), "cost", "60.00");
    assert_str(json_array_get(offers, 1), "type", "Minutes");
    json_decref(out);
    json_decref(body);
}
END_TEST

START_TEST(upsell_bare_integer_quota) {
    json_t *body =
        J("{\"subscriberState\":\"NEED_OFFERS\",\"offers\":[{\"id\":\"p\",\"name\":\"P\","
          "\"fundSource\":\"WALLET\",\"quota\":1073741824,\"duration\":1,"
          "\"cost\":{\"value\":14}}]}");
    mapping_ctx m = ctx();
    char err[256];
    json_t *out = map_upsell_offer(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    const json_t *o = json_array_get(json_object_get(out, "offers"), 0);
    ck_assert_ptr_nonnull(o);
    assert_str(o, "type", "Data");
    assert_str(o, "cost", "14.00");
    const json_t *q = json_array_get(json_object_get(o, "quota"), 0);
    assert_str(q, "unit", "bytes");
    ck_assert_int_eq(json_integer_value(json_object_get(q, "quota")), 1073741824LL);
    json_decref(out);
    json_decref(body);
}
END_TEST

START_TEST(upsell_empty_offers) {
    json_t *body = J("{\"subscriberState\":\"NEED_TOPUP\",\"offers\":[]}");
    mapping_ctx m = ctx();
    char err[256];
    json_t *out = map_upsell_offer(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    assert_str(out, "subscriberState", "NEED_TOPUP");
    ck_assert(json_is_array(json_object_get(out, "offers")));
    ck_assert_uint_eq(json_array_size(json_object_get(out, "offers")), 0);
    json_decref(out);
    json_decref(body);
}
END_TEST

/* planType filtering over one list of offers with assorted appTypes. */
static const char *PLAN_TYPE_BODY =
    "{\"subscriberState\":\"NEED_OFFERS\",\"offers\":["
    "{\"id\":\"none\",\"name\":\"n\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
    "\"cost\":{\"value\":1}},"
    "{\"id\":\"music\",\"name\":\"n\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
    "\"appType\":[\"MUSIC\"],\"cost\":{\"value\":1}},"
    "{\"id\":\"generic\",\"name\":\"n\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
    "\"appType\":[\"GENERIC\"],\"cost\":{\"value\":1}},"
    "{\"id\":\"video\",\"name\":\"n\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
    "\"appType\":[\"VIDEO\"],\"cost\":{\"value\":1}},"
    "{\"id\":\"empty\",\"name\":\"n\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
    "\"appType\":[],\"cost\":{\"value\":1}},"
    "{\"id\":\"social\",\"name\":\"n\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
    "\"appType\":[\"SOCIAL\"],\"cost\":{\"value\":1}},"
    "{\"id\":\"generic2\",\"name\":\"n\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
    "\"appType\":[\"GENERIC\",\"generic\"],\"cost\":{\"value\":1}},"
    "{\"id\":\"gaming\",\"name\":\"n\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
    "\"appType\":[\"GAMING\"],\"cost\":{\"value\":1}},"
    "{\"id\":\"mixed\",\"name\":\"n\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
    "\"appType\":[\"GENERIC\",\"MESSAGING\"],\"cost\":{\"value\":1}},"
    "{\"id\":\"nullapp\",\"name\":\"n\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
    "\"appType\":null,\"cost\":{\"value\":1}}"
    "]}";

static const struct {
    const char *plan_type;
    const char *want; /* space-separated planIds in order, NULL = error */
} PLAN_TYPES[] = {
    {NULL, "none music generic video empty social generic2 gaming mixed nullapp"},
    {"", "none music generic video empty social generic2 gaming mixed nullapp"},
    {"principal", "none generic empty generic2 nullapp"},
    {"supplementary", "music video social gaming mixed"},
    {"Principal", NULL},
    {"bogus", NULL},
};
#define N_PLAN_TYPES (int)(sizeof PLAN_TYPES / sizeof PLAN_TYPES[0])

/* maxPrice and limit applied to the backend's answer too (a backend may
 * ignore them): price at most max_price_minor, then the first `limit`. */
static const char *PRICED_BODY =
    "{\"subscriberState\":\"GOOD_TO_GO\",\"offers\":["
    "{\"id\":\"a\",\"name\":\"n\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":160}},"
    "{\"id\":\"b\",\"name\":\"n\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":60}},"
    "{\"id\":\"c\",\"name\":\"n\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":15.5}},"
    "{\"id\":\"d\",\"name\":\"n\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":60.01}}"
    "]}";

static const struct {
    bool has_max_price;
    int64_t max_price_minor;
    int limit;
    const char *want;
} PRICE_FILTERS[] = {
    {false, 0, 0, "a b c d"}, {true, 6000, 0, "b c"}, {true, 0, 0, ""},
    {false, 0, 2, "a b"},     {true, 6000, 1, "b"},   {true, 100000, 9, "a b c d"},
};
#define N_PRICE_FILTERS (int)(sizeof PRICE_FILTERS / sizeof PRICE_FILTERS[0])

START_TEST(upsell_max_price_and_limit) {
    json_t *body = J(PRICED_BODY);
    mapping_ctx m = ctx();
    m.has_max_price = PRICE_FILTERS[_i].has_max_price;
    m.max_price_minor = PRICE_FILTERS[_i].max_price_minor;
    m.limit = PRICE_FILTERS[_i].limit;
    char err[256] = "";
    json_t *out = map_upsell_offer(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(err, "");
    char ids[64] = "";
    size_t i;
    const json_t *o;
    json_array_foreach(json_object_get(out, "offers"), i, o) {
        if (i > 0) strcat(ids, " ");
        strcat(ids, str_at(o, "planId"));
    }
    ck_assert_str_eq(ids, PRICE_FILTERS[_i].want);
    json_decref(out);
    json_decref(body);
}
END_TEST

START_TEST(offer_type_of_plan_type) {
    ck_assert_str_eq(map_offer_type("principal"), "Data");
    ck_assert_ptr_null(map_offer_type("supplementary"));
    ck_assert_ptr_null(map_offer_type(""));
    ck_assert_ptr_null(map_offer_type(NULL));
}
END_TEST

START_TEST(upsell_plan_type) {
    json_t *body = J(PLAN_TYPE_BODY);
    mapping_ctx m = ctx();
    m.plan_type = PLAN_TYPES[_i].plan_type;
    char err[256] = "";
    json_t *out = map_upsell_offer(&m, body, err, sizeof err);
    if (!PLAN_TYPES[_i].want) {
        ck_assert_ptr_null(out);
        ck_assert_ptr_nonnull(strstr(err, "planType"));
        json_decref(body);
        return;
    }
    ck_assert_msg(out != NULL, "%s", err);
    ck_assert_str_eq(err, ""); /* filtered offers are not "dropped" */
    char ids[256] = "";
    size_t i;
    const json_t *o;
    json_array_foreach(json_object_get(out, "offers"), i, o) {
        if (i > 0) strcat(ids, " ");
        strcat(ids, str_at(o, "planId"));
    }
    ck_assert_str_eq(ids, PLAN_TYPES[_i].want);
    json_decref(out);
    json_decref(body);
}
END_TEST

/* A malformed offer is dropped, its neighbours returned. */
static const char *const BAD_OFFERS[] = {
    "42",
    "null",
    "[]",
    "{\"name\":\"no id\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":1}}",
    "{\"id\":5,\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":1}}",
    "{\"id\":\"\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":1}}",
    "{\"id\":\"a\\u0000b\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":1}}",
    "{\"id\":\"x\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":1}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"cost\":14}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"cost\":{}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":\"abc\"}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":\"1.234\"}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":-5}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"cost\":{\"value\":1,\"currency\":"
    "\"TOOLONGCUR\"}}",
    "{\"id\":\"x\",\"name\":\"x\",\"cost\":{\"value\":1}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{},\"cost\":{\"value\":1}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":-1},\"cost\":{\"value\":1}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":\"lots\"},\"cost\":{\"value\":1}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaMinutes\":2.5},\"cost\":{\"value\":1}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":\"big\",\"cost\":{\"value\":1}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":-3,\"cost\":{\"value\":1}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"appType\":\"VIDEO\",\"cost\":{"
    "\"value\":1}}",
    "{\"id\":\"x\",\"name\":\"x\",\"quota\":{\"quotaBytes\":1},\"appType\":[1],\"cost\":{\"value\":"
    "1}}",
};
#define N_BAD_OFFERS (int)(sizeof BAD_OFFERS / sizeof BAD_OFFERS[0])

START_TEST(upsell_malformed_offer_dropped) {
    char text[1024], err[256];
    snprintf(
        text, sizeof text,
        "{\"subscriberState\":\"NEED_OFFERS\",\"offers\":["
        "{\"id\":\"good1\",\"name\":\"G1\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
        "\"cost\":{\"value\":1}},%s,"
        "{\"id\":\"good2\",\"name\":\"G2\",\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
        "\"cost\":{\"value\":2}}]}",
        BAD_OFFERS[_i]);
    json_t *body = J(text);
    for (int filtered = 0; filtered < 2; filtered++) {
        mapping_ctx m = ctx();
        m.plan_type = filtered ? "principal" : NULL;
        json_t *out = map_upsell_offer(&m, body, err, sizeof err);
        ck_assert_msg(out != NULL, "%s", err);
        const json_t *offers = json_object_get(out, "offers");
        ck_assert_msg(json_array_size(offers) == 2, "kept %s", BAD_OFFERS[_i]);
        assert_str(json_array_get(offers, 0), "planId", "good1");
        assert_str(json_array_get(offers, 1), "planId", "good2");
        ck_assert_msg(strstr(err, "dropped 1 malformed offer") != NULL, "err: %s", err);
        ck_assert_ptr_nonnull(strstr(err, "offers[1]"));
        json_decref(out);
    }
    json_decref(body);
}
END_TEST

static const struct {
    const char *body;
    bool ok;
} OFFER_TOP_LEVEL[] = {
    {"{\"subscriberState\":\"GOOD_TO_GO\",\"offers\":[]}", true},
    {"{\"subscriberState\":\"NEED_OFFERS\",\"offers\":[]}", true},
    {"{\"subscriberState\":\"NEED_LOANS\",\"offers\":[]}", true},
    {"{\"subscriberState\":\"NEED_TOPUP\",\"offers\":[]}", true},
    {"{\"subscriberState\":\"BOGUS\",\"offers\":[]}", false},
    {"{\"subscriberState\":\"good_to_go\",\"offers\":[]}", false},
    {"{\"subscriberState\":5,\"offers\":[]}", false},
    {"{\"offers\":[]}", false},
    {"{\"subscriberState\":\"NEED_OFFERS\"}", false},
    {"{\"subscriberState\":\"NEED_OFFERS\",\"offers\":{}}", false},
    {"{\"subscriberState\":\"NEED_OFFERS\",\"offers\":null}", false},
    {"[{\"subscriberState\":\"NEED_OFFERS\",\"offers\":[]}]", false},
    {"\"NEED_OFFERS\"", false},
    {"7", false},
    {"null", false},
};
#define N_OFFER_TOP_LEVEL (int)(sizeof OFFER_TOP_LEVEL / sizeof OFFER_TOP_LEVEL[0])

START_TEST(upsell_top_level) {
    json_t *body = J(OFFER_TOP_LEVEL[_i].body);
    mapping_ctx m = ctx();
    char err[256] = "";
    json_t *out = map_upsell_offer(&m, body, err, sizeof err);
    if (OFFER_TOP_LEVEL[_i].ok) {
        ck_assert_msg(out != NULL, "%s: %s", OFFER_TOP_LEVEL[_i].body, err);
        assert_str(out, "subscriberState",
                   json_string_value(json_object_get(body, "subscriberState")));
    } else {
        ck_assert_msg(out == NULL, "accepted %s", OFFER_TOP_LEVEL[_i].body);
        ck_assert(err[0] != '\0');
    }
    json_decref(out);
    json_decref(body);
}
END_TEST

START_TEST(offer_context_binds_offer) {
    json_t *body = J(OFFERS_BODY);
    mapping_ctx m = ctx();
    char err[256];
    json_t *out = map_upsell_offer(&m, body, err, sizeof err);
    ck_assert_msg(out != NULL, "%s", err);
    const json_t *offers = json_object_get(out, "offers");

    static const struct {
        const char *plan;
        int64_t price;
    } WANT[] = {{"plan1234", 16010}, {"plan1235", 1550}, {"plan9", INT64_C(100000000000)}};
    for (size_t i = 0; i < 3; i++) {
        const char *token = str_at(json_array_get(offers, i), "offerContext");
        ck_assert_ptr_nonnull(token);
        offer_context oc;
        ck_assert_int_eq(offer_context_verify(token, key_set(), NOW_MS, &oc), 0);
        ck_assert_str_eq(oc.plan_id, WANT[i].plan);
        ck_assert_str_eq(oc.subscriber, MSISDN);
        ck_assert_str_eq(oc.provider, "testserviceprovider");
        ck_assert_str_eq(oc.op, "tp");
        ck_assert(oc.price_minor == WANT[i].price);
        ck_assert_str_eq(oc.currency, "PKR");
        ck_assert(oc.expires_at_ms == NOW_MS + TTL_MS);
        /* valid until the expiry, not at it */
        ck_assert_int_eq(offer_context_verify(token, key_set(), NOW_MS + TTL_MS - 1, NULL), 0);
        ck_assert_int_eq(offer_context_verify(token, key_set(), NOW_MS + TTL_MS, NULL), -2);
        /* another key, or a flipped character, does not verify */
        keys_set another;
        ck_assert_int_eq(keys_set_one(&another, "another-key"), 0);
        ck_assert_int_eq(offer_context_verify(token, &another, NOW_MS, NULL), -1);
        char *bad = strdup(token);
        bad[3] = bad[3] == 'A' ? 'B' : 'A';
        ck_assert_int_eq(offer_context_verify(bad, key_set(), NOW_MS, NULL), -1);
        free(bad);
    }
    json_decref(out);

    /* With offer_context_keys NULL the service's keys sign it. */
    m.offer_context_keys = NULL;
    out = map_upsell_offer(&m, body, err, sizeof err);
    ck_assert_ptr_nonnull(out);
    const char *token = str_at(json_array_get(json_object_get(out, "offers"), 0), "offerContext");
    ck_assert_int_eq(offer_context_verify(token, offer_context_keys(), NOW_MS, NULL), 0);
    json_decref(out);
    json_decref(body);
}
END_TEST

/* A price change on the backend changes the bound price. */
START_TEST(offer_context_price_differs) {
    static const struct {
        const char *value;
        int64_t minor;
    } T[] = {{"160.1", 16010}, {"160.11", 16011}, {"0", 0}, {"\"99.99\"", 9999}};
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        char text[512], err[256];
        snprintf(text, sizeof text,
                 "{\"subscriberState\":\"NEED_OFFERS\",\"offers\":[{\"id\":\"p\",\"name\":\"P\","
                 "\"fundSource\":\"WALLET\",\"quota\":{\"quotaBytes\":1},"
                 "\"cost\":{\"currency\":\"PKR\",\"value\":%s}}]}",
                 T[i].value);
        json_t *body = J(text);
        mapping_ctx m = ctx();
        json_t *out = map_upsell_offer(&m, body, err, sizeof err);
        ck_assert_msg(out != NULL, "%s", err);
        offer_context oc;
        const char *token =
            str_at(json_array_get(json_object_get(out, "offers"), 0), "offerContext");
        ck_assert_int_eq(offer_context_verify(token, key_set(), NOW_MS, &oc), 0);
        ck_assert(oc.price_minor == T[i].minor);
        json_decref(out);
        json_decref(body);
    }
}
END_TEST

START_TEST(upsell_bad_context) {
    json_t *body = J(OFFERS_BODY);
    char err[256];
    char long_sub[200];
    memset(long_sub, '9', sizeof long_sub - 1);
    long_sub[sizeof long_sub - 1] = '\0';
    mapping_ctx m = ctx();
    m.subscriber = long_sub;
    ck_assert_ptr_null(map_upsell_offer(&m, body, err, sizeof err));
    m = ctx();
    m.subscriber = NULL;
    ck_assert_ptr_null(map_upsell_offer(&m, body, err, sizeof err));
    m = ctx();
    m.service_provider = NULL;
    ck_assert_ptr_null(map_upsell_offer(&m, body, err, sizeof err));
    json_decref(body);
}
END_TEST

/* --------------------------------------------------------------- errors */

static const struct {
    long status;
    const char *body; /* JSON text, NULL = no body */
    const char *cause;
    const char *msg_has; /* substring of the message, NULL = don't care */
} ERRORS[] = {
    {404, "{\"errorType\":\"UNKNOWN_SUBSCRIBER_ID\",\"message\":\"unknown subscriber " MSISDN "\"}",
     CAUSE_INVALID_NUMBER, "subscriber is unknown to the operator"},
    {400, "{\"errorType\":\"UNKNOWN_SUBSCRIBER_ID\"}", CAUSE_INVALID_NUMBER, "unknown"},
    {403, "{\"errorType\":\"FORBIDDEN\",\"message\":\"subscriber is roaming\"}", CAUSE_USER_ROAMING,
     "subscriber is roaming"},
    {403, "{\"errorType\":\"FORBIDDEN\"}", CAUSE_USER_ROAMING, "roaming"},
    {403, "{\"errorType\":\"forbidden\"}", CAUSE_USER_ROAMING, NULL},
    {403, "{\"errorType\":\"USER_BARRED\",\"message\":\"subscriber is barred\"}", CAUSE_NOT_ALLOWED,
     "barred"},
    {402, "{\"errorType\":\"INSUFFICIENT_FUNDS\"}", CAUSE_INSUFFICIENT_FUNDS, NULL},
    {400, "{\"errorType\":\"INSUFFICIENT_FUNDS\",\"message\":\"balance 3.50 too low\"}",
     CAUSE_INSUFFICIENT_FUNDS, "insufficient funds"}, /* the operator's text is not passed on */
    {409, "{\"errorType\":\"PURCHASE_IN_PROGRESS\"}", CAUSE_PURCHASE_CONFLICT, NULL},
    {409, "{\"errorType\":\"CONFLICT\"}", CAUSE_PURCHASE_CONFLICT, NULL},
    {409, "{\"errorType\":\"PURCHASE_ALREADY_EXECUTED\"}", CAUSE_PURCHASE_CONFLICT, NULL},
    {504, "{\"errorType\":\"TIMEOUT\"}", CAUSE_SERVICE_UNAVAILABLE, NULL},
    {503, "{\"errorType\":\"CONGESTED\",\"message\":\"busy\"}", CAUSE_SERVICE_UNAVAILABLE,
     "congested"},
    {500, "{\"errorType\":\"INTERNAL_ERROR\"}", CAUSE_SERVICE_UNAVAILABLE, NULL},
    {400, "{\"errorType\":\"INTERNAL_ERROR\"}", CAUSE_SERVICE_UNAVAILABLE, NULL},
    {400, "{\"errorType\":\"BAD_REQUEST\",\"message\":\"channelId missing\"}", CAUSE_BAD_REQUEST,
     "rejected the request"},
    {400, "{\"errorType\":\"PARSING_ERROR\"}", CAUSE_BAD_REQUEST, NULL},
    {400, "{\"errorType\":\"INVALID_PRODUCT\"}", CAUSE_BAD_REQUEST, NULL},
    {400, "{\"errorType\":\"INVALID_TRANSID\"}", CAUSE_BAD_REQUEST, NULL},
    {501, "{\"errorType\":\"NOT_IMPLEMENTED\"}", CAUSE_NOT_ALLOWED, NULL}, /* errorType wins */
    {0, NULL, CAUSE_SERVICE_UNAVAILABLE, "did not answer"},
    {0, "{\"errorType\":\"TIMEOUT\"}", CAUSE_SERVICE_UNAVAILABLE, NULL},
    {500, NULL, CAUSE_SERVICE_UNAVAILABLE, "unavailable"},
    {502, NULL, CAUSE_SERVICE_UNAVAILABLE, "502"},
    {503, "{}", CAUSE_SERVICE_UNAVAILABLE, NULL},
    {503, "\"<html>Service Unavailable</html>\"", CAUSE_SERVICE_UNAVAILABLE, NULL},
    {500, "{\"errorType\":\"WHATEVER\",\"message\":\"odd\"}", CAUSE_SERVICE_UNAVAILABLE,
     "unavailable"},
    {408, NULL, CAUSE_SERVICE_UNAVAILABLE, NULL},
    {429, NULL, CAUSE_SERVICE_UNAVAILABLE, NULL},
    {429, "{\"message\":\"slow down\"}", CAUSE_SERVICE_UNAVAILABLE, "429"},
    {404, NULL, CAUSE_INVALID_NUMBER, NULL},
    {404, "{}", CAUSE_INVALID_NUMBER, NULL},
    {404, "[1,2]", CAUSE_INVALID_NUMBER, NULL},
    {404, "{\"errorType\":\"WHATEVER\"}", CAUSE_UNSPECIFIED, NULL},
    {400, NULL, CAUSE_UNSPECIFIED, "400"},
    {401, NULL, CAUSE_UNSPECIFIED, NULL},
    {403, NULL, CAUSE_UNSPECIFIED, NULL},
    {418, "{\"message\":\"teapot\"}", CAUSE_UNSPECIFIED, "418"},
    {400, "{\"errorType\":5,\"message\":\"x\"}", CAUSE_UNSPECIFIED, "operator backend error"},
    {200, NULL, CAUSE_UNSPECIFIED, NULL},
    {302, NULL, CAUSE_UNSPECIFIED, NULL},
};
#define N_ERRORS (int)(sizeof ERRORS / sizeof ERRORS[0])

START_TEST(backend_error_mapping) {
    json_t *body = ERRORS[_i].body ? J(ERRORS[_i].body) : NULL;
    char msg[256];
    memset(msg, 'Z', sizeof msg);
    const char *cause = map_backend_error(ERRORS[_i].status, body, msg, sizeof msg);
    ck_assert_msg(cause != NULL && strcmp(cause, ERRORS[_i].cause) == 0, "%ld %s: got %s want %s",
                  ERRORS[_i].status, ERRORS[_i].body ? ERRORS[_i].body : "(none)",
                  cause ? cause : "NULL", ERRORS[_i].cause);
    ck_assert_msg(memchr(msg, '\0', sizeof msg) != NULL, "message not terminated");
    ck_assert_msg(msg[0] != '\0', "empty message");
    ck_assert_ptr_null(strstr(msg, MSISDN));
    if (ERRORS[_i].msg_has)
        ck_assert_msg(strstr(msg, ERRORS[_i].msg_has) != NULL, "message '%s' lacks '%s'", msg,
                      ERRORS[_i].msg_has);
    /* the cause is one ErrorDocument knows */
    json_t *doc = error_document(cause, msg);
    ck_assert_ptr_nonnull(doc);
    assert_str(doc, "cause", ERRORS[_i].cause);
    json_decref(doc);
    /* msg may be NULL, the cause is the same */
    ck_assert_str_eq(map_backend_error(ERRORS[_i].status, body, NULL, 0), ERRORS[_i].cause);
    json_decref(body);
}
END_TEST

START_TEST(backend_error_message_safety) {
    /* The operator's text (here with MSISDNs and control characters) never
     * reaches the message: Millom's fixed text for the cause does. */
    json_t *body = J("{\"errorType\":\"UNKNOWN_SUBSCRIBER_ID\",\"message\":"
                     "\"+" MSISDN " not found\\nretry 92454261 or 0" MSISDN "1, code 123456\"}");
    char msg[256];
    ck_assert_str_eq(map_backend_error(404, body, msg, sizeof msg), CAUSE_INVALID_NUMBER);
    ck_assert_str_eq(msg, "subscriber is unknown to the operator");
    ck_assert_ptr_null(strstr(msg, "9245"));
    /* truncation keeps the string terminated */
    char small[8];
    map_backend_error(404, body, small, sizeof small);
    ck_assert_uint_eq(strlen(small), 7);
    ck_assert_str_eq(small, "subscri");
    json_decref(body);
}
END_TEST

static const struct {
    const char *in, *want;
} MASKS[] = {
    {"924542610003", "9245****0003"},
    {"unknown 4542610003x", "unknown 45******03x"},
    {"1234567", "12***67"},
    {"123456", "123456"},
    {"a1b2c3", "a1b2c3"},
    {"", ""},
    {"tab\there", "tab here"},
    {"30-day pack 1024 MB", "30-day pack 1024 MB"},
};

START_TEST(mask_digits) {
    for (size_t i = 0; i < sizeof MASKS / sizeof MASKS[0]; i++) {
        char out[64];
        mapping_mask_digits(MASKS[i].in, out, sizeof out);
        ck_assert_str_eq(out, MASKS[i].want);
    }
    char out[4];
    mapping_mask_digits(NULL, out, sizeof out);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(rfc3339) {
    static const struct {
        int64_t ms;
        const char *want;
    } T[] = {
        {0, "1970-01-01T00:00:00Z"},
        {VALID_UNTIL_MS, VALID_UNTIL},
        {VALID_UNTIL_MS + 999, VALID_UNTIL},
        {-1, "1969-12-31T23:59:59Z"},
        {INT64_C(4102444799000), "2099-12-31T23:59:59Z"},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        char buf[32];
        ck_assert_int_eq(mapping_rfc3339_utc(T[i].ms, buf, sizeof buf), 20);
        ck_assert_str_eq(buf, T[i].want);
    }
    char tiny[10];
    ck_assert_int_eq(mapping_rfc3339_utc(0, tiny, sizeof tiny), -1);
}
END_TEST

/* ----------------------------------------------------------------- main */

static Suite *mapping_suite(void) {
    Suite *s = suite_create("offer_resolver_mapping");

    TCase *money = tcase_create("money");
    tcase_add_loop_test(money, account_info_money, 0, N_MONEY);
    tcase_add_loop_test(money, offer_cost_money, 0, N_MONEY);
    tcase_add_test(money, negative_balance_kept);
    tcase_add_test(money, other_currency_scales);
    suite_add_tcase(s, money);

    TCase *acct = tcase_create("accountInfo");
    tcase_add_test(acct, account_info_full);
    tcase_add_test(acct, account_info_ewallet_and_offer_fund_sources);
    tcase_add_test(acct, account_info_loan);
    tcase_add_loop_test(acct, account_type_mapping, 0, N_ACCOUNT_TYPES);
    tcase_add_test(acct, account_info_currency_fallback);
    tcase_add_loop_test(acct, account_bodies_rejected, 0, N_BAD_ACCOUNT);
    tcase_add_test(acct, null_arguments);
    suite_add_tcase(s, acct);

    TCase *bal = tcase_create("balance");
    tcase_add_test(bal, balance_full);
    tcase_add_loop_test(bal, balance_data_balance, 0, N_DATA_BALANCES);
    tcase_add_loop_test(bal, balance_malformed_plan_dropped, 0, N_BAD_PLANS);
    tcase_add_test(bal, balance_bad_top_level);
    tcase_add_test(bal, balance_language_default);
    tcase_add_loop_test(bal, plan_expiry, 0, N_EXPIRIES);
    suite_add_tcase(s, bal);

    TCase *up = tcase_create("upsellOffer");
    tcase_add_test(up, upsell_full);
    tcase_add_test(up, upsell_spec_example);
    tcase_add_test(up, upsell_bare_integer_quota);
    tcase_add_test(up, upsell_empty_offers);
    tcase_add_loop_test(up, upsell_plan_type, 0, N_PLAN_TYPES);
    tcase_add_loop_test(up, upsell_max_price_and_limit, 0, N_PRICE_FILTERS);
    tcase_add_test(up, offer_type_of_plan_type);
    tcase_add_loop_test(up, upsell_malformed_offer_dropped, 0, N_BAD_OFFERS);
    tcase_add_loop_test(up, upsell_top_level, 0, N_OFFER_TOP_LEVEL);
    tcase_add_test(up, offer_context_binds_offer);
    tcase_add_test(up, offer_context_price_differs);
    tcase_add_test(up, upsell_bad_context);
    suite_add_tcase(s, up);

    TCase *errs = tcase_create("errors");
    tcase_add_loop_test(errs, backend_error_mapping, 0, N_ERRORS);
    tcase_add_test(errs, backend_error_message_safety);
    tcase_add_test(errs, mask_digits);
    tcase_add_test(errs, rfc3339);
    suite_add_tcase(s, errs);

    return s;
}

int main(void) {
    SRunner *sr = srunner_create(mapping_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
