/* Unit tests for the small shared utilities: money, crypto, offerContext,
 * MSISDN normalisation, metrics and the ErrorDocument table. Runs with and
 * without CK_FORK (the metrics registry is process-wide, so every test uses
 * its own metric names). */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "shared/crypto.h"
#include "shared/errors.h"
#include "shared/metrics.h"
#include "shared/money.h"
#include "shared/msisdn.h"
#include "shared/keys.h"
#include "shared/offer_context.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ money */

static const struct {
    const char *text;
    int scale;
    int rc;
    int64_t minor;
} parse_cases[] = {
    {"160.5", 2, 0, 16050},
    {"160.50", 2, 0, 16050},
    {"160", 2, 0, 16000},
    {"0", 2, 0, 0},
    {"0.01", 2, 0, 1},
    {"-0.01", 2, 0, -1},
    {"-160.5", 2, 0, -16050},
    {"-0", 2, 0, 0},
    {"007.10", 2, 0, 710},
    {"42", 0, 0, 42},
    {"-42", 0, 0, -42},
    {"1.234", 3, 0, 1234},
    {"1.2", 3, 0, 1200},
    {"92233720368547758.07", 2, 0, INT64_MAX},
    {"-92233720368547758.07", 2, 0, -INT64_MAX},
    {"9223372036854775807", 0, 0, INT64_MAX},
    /* rejects */
    {"92233720368547758.08", 2, -1, 0},
    {"9223372036854775808", 0, -1, 0},
    {"92233720368547758080", 0, -1, 0},
    {"92233720368547759", 2, -1, 0}, /* overflows while padding */
    {"160.505", 2, -1, 0},
    {"1.0", 0, -1, 0},
    {"", 2, -1, 0},
    {".", 2, -1, 0},
    {".5", 2, -1, 0},
    {"1.", 2, -1, 0},
    {"-", 2, -1, 0},
    {"-.5", 2, -1, 0},
    {"--1", 2, -1, 0},
    {"+1", 2, -1, 0},
    {" 1", 2, -1, 0},
    {"1 ", 2, -1, 0},
    {"1e3", 2, -1, 0},
    {"abc", 2, -1, 0},
    {"1.2.3", 2, -1, 0},
    {"1,50", 2, -1, 0},
    {"0x10", 2, -1, 0},
    {"1", -1, -1, 0},
    {"1", 19, -1, 0},
};

START_TEST(test_money_parse)
{
    const char *text = parse_cases[_i].text;
    int64_t minor = 777;
    int rc = money_parse(text, parse_cases[_i].scale, &minor);
    ck_assert_msg(rc == parse_cases[_i].rc, "money_parse(\"%s\", %d) = %d", text,
                  parse_cases[_i].scale, rc);
    if (rc == 0)
        ck_assert_msg(minor == parse_cases[_i].minor, "money_parse(\"%s\") -> %lld", text,
                      (long long)minor);
    else
        ck_assert_msg(minor == 777, "output written on failure for \"%s\"", text);
}
END_TEST

START_TEST(test_money_parse_null)
{
    int64_t minor;
    ck_assert_int_eq(money_parse(NULL, 2, &minor), -1);
    ck_assert_int_eq(money_parse("1", 2, NULL), -1);
}
END_TEST

static const struct {
    int64_t minor;
    int scale;
    const char *text;
} format_cases[] = {
    {16050, 2, "160.50"},
    {16000, 2, "160.00"},
    {1, 2, "0.01"},
    {-1, 2, "-0.01"},
    {-16050, 2, "-160.50"},
    {0, 2, "0.00"},
    {0, 0, "0"},
    {42, 0, "42"},
    {-42, 0, "-42"},
    {5, 3, "0.005"},
    {1234, 3, "1.234"},
    {INT64_MAX, 2, "92233720368547758.07"},
    {INT64_MIN, 2, "-92233720368547758.08"},
    {INT64_MIN, 0, "-9223372036854775808"},
    {1, 18, "0.000000000000000001"},
};

START_TEST(test_money_format)
{
    char buf[64];
    int n = money_format(format_cases[_i].minor, format_cases[_i].scale, buf, sizeof buf);
    ck_assert_str_eq(buf, format_cases[_i].text);
    ck_assert_int_eq(n, (int)strlen(format_cases[_i].text));

    /* Round trip (INT64_MIN has no positive twin and does not parse back). */
    if (format_cases[_i].minor != INT64_MIN) {
        int64_t back = 0;
        ck_assert_int_eq(money_parse(buf, format_cases[_i].scale, &back), 0);
        ck_assert(back == format_cases[_i].minor);
    }
}
END_TEST

START_TEST(test_money_format_buffer)
{
    char buf[7];
    ck_assert_int_eq(money_format(16050, 2, buf, 7), 6); /* "160.50" + NUL fits exactly */
    ck_assert_str_eq(buf, "160.50");
    ck_assert_int_eq(money_format(16050, 2, buf, 6), -1);
    ck_assert_int_eq(money_format(-16050, 2, buf, 7), -1);
    ck_assert_int_eq(money_format(1, 2, buf, 0), -1);
    ck_assert_int_eq(money_format(1, 2, NULL, 10), -1);
    ck_assert_int_eq(money_format(1, -1, buf, sizeof buf), -1);
}
END_TEST

START_TEST(test_money_round_trip_range)
{
    char buf[64];
    for (int scale = 0; scale <= 4; scale++) {
        for (int64_t v = -2500; v <= 2500; v += 7) {
            int64_t back = 0;
            ck_assert_int_gt(money_format(v, scale, buf, sizeof buf), 0);
            ck_assert_int_eq(money_parse(buf, scale, &back), 0);
            ck_assert(back == v);
        }
    }
}
END_TEST

/* Reals are interpreted as the decimal the backend wrote (15 significant
 * digits), then rounded half away from zero; see money.c. */
static const struct {
    double value;
    int scale;
    int rc;
    int64_t minor;
} real_cases[] = {
    {160.1, 2, 0, 16010},
    {160.0, 2, 0, 16000},
    {15.5, 2, 0, 1550},
    {15.5, 0, 0, 16},
    {14.5, 0, 0, 15},    /* printf would say 14 (half to even) */
    {-14.5, 0, 0, -15},
    {0.125, 2, 0, 13},   /* exact binary tie, away from zero */
    {-0.125, 2, 0, -13},
    {0.1 + 0.2, 2, 0, 30},
    {0.3, 2, 0, 30},
    {1e9, 2, 0, 100000000000LL},
    {-3.005, 2, 0, -301}, /* the backend wrote -3.005; the double is -3.00499999... */
    {3.005, 2, 0, 301},
    {1.005, 2, 0, 101},
    {2.675, 2, 0, 268},
    {0.004, 2, 0, 0},
    {0.005, 2, 0, 1},
    {-0.005, 2, 0, -1},
    {-0.004, 2, 0, 0},
    {0.0, 2, 0, 0},
    {-0.0, 2, 0, 0},
    {1e-300, 2, 0, 0},
    {0.1, 0, 0, 0},
    {0.5, 0, 0, 1},
    {123.456, 3, 0, 123456},
    {9e15, 0, 0, 9000000000000000LL},
    {-9e15, 0, 0, -9000000000000000LL},
    {9e15, 2, 0, 900000000000000000LL},
    {9e15, 4, -1, 0},    /* does not fit int64 minor units */
    {9.000000000000002e15, 0, -1, 0},
    {1e16, 2, -1, 0},
    {-1e300, 2, -1, 0},
};

START_TEST(test_money_from_json_real)
{
    json_t *v = json_real(real_cases[_i].value);
    ck_assert_ptr_nonnull(v);
    int64_t minor = 777;
    int rc = money_from_json(v, real_cases[_i].scale, &minor);
    json_decref(v);
    ck_assert_msg(rc == real_cases[_i].rc, "money_from_json(%.17g, %d) = %d",
                  real_cases[_i].value, real_cases[_i].scale, rc);
    if (rc == 0)
        ck_assert_msg(minor == real_cases[_i].minor, "money_from_json(%.17g, %d) -> %lld",
                      real_cases[_i].value, real_cases[_i].scale, (long long)minor);
}
END_TEST

START_TEST(test_money_from_json_parsed_text)
{
    /* The same through jansson's own parser, as a backend body arrives. */
    static const struct {
        const char *json;
        int64_t minor;
    } cases[] = {
        {"[160.1]", 16010}, {"[15.5]", 1550},   {"[-3.005]", -301},   {"[1e9]", 100000000000LL},
        {"[160]", 16000},   {"[-7]", -700},     {"[0.30000000000000004]", 30},
        {"[1.23e2]", 12300}, {"[99.999]", 10000},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        json_t *doc = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(doc);
        int64_t minor = 0;
        ck_assert_int_eq(money_from_json(json_array_get(doc, 0), 2, &minor), 0);
        ck_assert_msg(minor == cases[i].minor, "%s -> %lld", cases[i].json, (long long)minor);
        json_decref(doc);
    }
}
END_TEST

START_TEST(test_money_from_json_non_finite)
{
    /* jansson refuses to build NaN/inf reals, so hand them over the only way
     * a caller could: json_real() returns NULL, which is rejected. */
    int64_t minor = 777;
    ck_assert_int_eq(money_from_json(json_real(NAN), 2, &minor), -1);
    ck_assert_int_eq(money_from_json(json_real(INFINITY), 2, &minor), -1);
    ck_assert_int_eq(money_from_json(json_real(-INFINITY), 2, &minor), -1);
    /* And a real that json_real_set tried to turn into NaN keeps its value. */
    json_t *r = json_real(1.5);
    json_real_set(r, NAN);
    ck_assert_int_eq(money_from_json(r, 2, &minor), 0);
    ck_assert(minor == 150);
    json_decref(r);
}
END_TEST

START_TEST(test_money_from_json_integer)
{
    static const struct {
        json_int_t value;
        int scale;
        int rc;
        int64_t minor;
    } cases[] = {
        {160, 2, 0, 16000},
        {-160, 2, 0, -16000},
        {0, 2, 0, 0},
        {42, 0, 0, 42},
        {INT64_MAX, 0, 0, INT64_MAX},
        {INT64_MAX / 100, 2, 0, INT64_MAX / 100 * 100},
        {INT64_MAX / 100 + 1, 2, -1, 0},
        {-(INT64_MAX / 100) - 1, 2, -1, 0},
        {INT64_MIN, 0, -1, 0},
        {1, 18, 0, 1000000000000000000LL},
        {10, 18, -1, 0},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        json_t *v = json_integer(cases[i].value);
        int64_t minor = 0;
        int rc = money_from_json(v, cases[i].scale, &minor);
        json_decref(v);
        ck_assert_msg(rc == cases[i].rc, "case %zu: rc %d", i, rc);
        if (rc == 0)
            ck_assert_msg(minor == cases[i].minor, "case %zu: %lld", i, (long long)minor);
    }
}
END_TEST

START_TEST(test_money_from_json_not_number)
{
    int64_t minor = 0;
    json_t *vals[] = {json_string("160.50"), json_true(), json_null(), json_object(),
                      json_array()};
    for (size_t i = 0; i < N_ELEMS(vals); i++) {
        ck_assert_int_eq(money_from_json(vals[i], 2, &minor), -1);
        json_decref(vals[i]);
    }
    ck_assert_int_eq(money_from_json(NULL, 2, &minor), -1);
    json_t *v = json_integer(1);
    ck_assert_int_eq(money_from_json(v, 2, NULL), -1);
    ck_assert_int_eq(money_from_json(v, -1, &minor), -1);
    ck_assert_int_eq(money_from_json(v, 19, &minor), -1);
    json_decref(v);
}
END_TEST

/* ----------------------------------------------------------------- crypto */

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

START_TEST(test_hmac_rfc4231)
{
    unsigned char mac[CRYPTO_SHA256_LEN];
    char h[2 * CRYPTO_SHA256_LEN + 1];

    /* Test case 2 */
    const char *msg = "what do ya want for nothing?";
    ck_assert_int_eq(crypto_hmac_sha256("Jefe", 4, msg, strlen(msg), mac), 0);
    hex(mac, sizeof mac, h);
    ck_assert_str_eq(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* Test case 1 */
    unsigned char key[20];
    memset(key, 0x0b, sizeof key);
    ck_assert_int_eq(crypto_hmac_sha256(key, sizeof key, "Hi There", 8, mac), 0);
    hex(mac, sizeof mac, h);
    ck_assert_str_eq(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    /* Test case 6: a key longer than the block size. */
    unsigned char long_key[131];
    memset(long_key, 0xaa, sizeof long_key);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    ck_assert_int_eq(crypto_hmac_sha256(long_key, sizeof long_key, m6, strlen(m6), mac), 0);
    hex(mac, sizeof mac, h);
    ck_assert_str_eq(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

    /* Empty key and message are allowed. */
    ck_assert_int_eq(crypto_hmac_sha256("", 0, "", 0, mac), 0);
    hex(mac, sizeof mac, h);
    ck_assert_str_eq(h, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    memset(mac, 0, sizeof mac);
    ck_assert_int_eq(crypto_hmac_sha256(NULL, 0, NULL, 0, mac), 0);
    hex(mac, sizeof mac, h);
    ck_assert_str_eq(h, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");

    ck_assert_int_eq(crypto_hmac_sha256(NULL, 3, "x", 1, mac), -1);
    ck_assert_int_eq(crypto_hmac_sha256("k", 1, NULL, 3, mac), -1);
}
END_TEST

START_TEST(test_b64url_vectors)
{
    static const struct {
        const char *raw;
        size_t len;
        const char *enc;
    } cases[] = {
        {"", 0, ""},
        {"f", 1, "Zg"},
        {"fo", 2, "Zm8"},
        {"foo", 3, "Zm9v"},
        {"foob", 4, "Zm9vYg"},
        {"fooba", 5, "Zm9vYmE"},
        {"foobar", 6, "Zm9vYmFy"},
        {"\xfb\xff", 2, "-_8"},
        {"\xfb\xef\xbe", 3, "----"},
        {"\xff\xff\xff", 3, "____"},
        {"\0\0", 2, "AAA"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *enc = crypto_b64url_encode(cases[i].raw, cases[i].len);
        ck_assert_ptr_nonnull(enc);
        ck_assert_str_eq(enc, cases[i].enc);
        free(enc);
        size_t len = 99;
        unsigned char *dec = crypto_b64url_decode(cases[i].enc, &len);
        ck_assert_ptr_nonnull(dec);
        ck_assert_uint_eq(len, cases[i].len);
        ck_assert(memcmp(dec, cases[i].raw, len) == 0);
        free(dec);
    }
    char *enc = crypto_b64url_encode(NULL, 0);
    ck_assert_str_eq(enc, "");
    free(enc);
    ck_assert_ptr_null(crypto_b64url_encode(NULL, 1));
}
END_TEST

START_TEST(test_b64url_all_bytes)
{
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    /* Every prefix length, so all three remainders and all byte values. */
    for (size_t n = 0; n <= sizeof all; n++) {
        const unsigned char *src = all + (sizeof all - n); /* vary the tail too */
        char *enc = crypto_b64url_encode(src, n);
        ck_assert_ptr_nonnull(enc);
        ck_assert_uint_eq(strlen(enc), (4 * n + 2) / 3);
        ck_assert_msg(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
                          strlen(enc),
                      "non-url character in %s", enc);
        size_t len = 0;
        unsigned char *dec = crypto_b64url_decode(enc, &len);
        ck_assert_ptr_nonnull(dec);
        ck_assert_uint_eq(len, n);
        ck_assert(memcmp(dec, src, n) == 0);
        free(dec);
        free(enc);
    }
    char *enc = crypto_b64url_encode(all, sizeof all);
    ck_assert_ptr_nonnull(strchr(enc, '-'));
    ck_assert_ptr_nonnull(strchr(enc, '_'));
    free(enc);
}
END_TEST

START_TEST(test_b64url_rejects)
{
    static const char *bad[] = {
        "Z",          /* impossible length */
        "Zm9vY",      /* impossible length */
        "Zg==",       /* padding */
        "Zg=",        /* padding */
        "Zm9v====",
        "Zm+v",       /* standard alphabet */
        "Zm/v",
        "Zm 9v",      /* whitespace */
        " Zm9v",
        "Zm9v\n",
        "Zm9v!",
        "Zh",         /* non-zero unused bits: not canonical */
        "Zm9",        /* non-zero unused bits */
        "é",
        "Zm9v.Zm9v",
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        size_t len = 0;
        unsigned char *dec = crypto_b64url_decode(bad[i], &len);
        ck_assert_msg(dec == NULL, "accepted \"%s\"", bad[i]);
    }
    ck_assert_ptr_null(crypto_b64url_decode(NULL, NULL));
    /* out_len may be NULL on good input. */
    unsigned char *dec = crypto_b64url_decode("Zm9v", NULL);
    ck_assert_ptr_nonnull(dec);
    free(dec);
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

START_TEST(test_uuid)
{
    enum { N = 2000 };
    static char ids[N][37];
    for (int i = 0; i < N; i++) {
        memset(ids[i], 'X', sizeof ids[i]);
        crypto_uuid(ids[i]);
        const char *u = ids[i];
        ck_assert_uint_eq(strlen(u), 36);
        for (int j = 0; j < 36; j++) {
            if (j == 8 || j == 13 || j == 18 || j == 23)
                ck_assert_msg(u[j] == '-', "%s", u);
            else
                ck_assert_msg(strchr("0123456789abcdef", u[j]) != NULL && u[j] != '\0', "%s",
                              u);
        }
        ck_assert_msg(u[14] == '4', "version in %s", u);
        ck_assert_msg(strchr("89ab", u[19]) != NULL, "variant in %s", u);
    }
    qsort(ids, N, sizeof ids[0], cmp_str);
    for (int i = 1; i < N; i++)
        ck_assert_str_ne(ids[i - 1], ids[i]);
}
END_TEST

START_TEST(test_random_and_equal)
{
    unsigned char a[64], b[64];
    ck_assert_int_eq(crypto_random(a, sizeof a), 0);
    ck_assert_int_eq(crypto_random(b, sizeof b), 0);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    ck_assert_int_eq(crypto_random(NULL, 0), 0);
    ck_assert_int_eq(crypto_random(NULL, 1), -1);

    memcpy(b, a, sizeof a);
    ck_assert_int_eq(crypto_equal(a, b, sizeof a), 1);
    b[0] ^= 1;
    ck_assert_int_eq(crypto_equal(a, b, sizeof a), 0);
    b[0] ^= 1;
    b[63] ^= 0x80;
    ck_assert_int_eq(crypto_equal(a, b, sizeof a), 0);
    ck_assert_int_eq(crypto_equal(a, b, 63), 1);
    ck_assert_int_eq(crypto_equal(NULL, NULL, 0), 1);
    ck_assert_int_eq(crypto_equal(a, NULL, 1), 0);
}
END_TEST

/* ---------------------------------------------------------- offerContext */

#define KEY "unit-test-key"
#define NOW 1700000000000LL

static offer_context sample_context(void)
{
    offer_context c;
    memset(&c, 0, sizeof c);
    strcpy(c.plan_id, "plan-5gb-30d");
    strcpy(c.subscriber, "924542610003");
    strcpy(c.provider, "acme-sp");
    strcpy(c.op, "jazz");
    c.price_minor = 16050;
    strcpy(c.currency, "PKR");
    c.expires_at_ms = NOW + 60000;
    return c;
}

static void assert_context_eq(const offer_context *a, const offer_context *b)
{
    ck_assert_str_eq(a->plan_id, b->plan_id);
    ck_assert_str_eq(a->subscriber, b->subscriber);
    ck_assert_str_eq(a->provider, b->provider);
    ck_assert_str_eq(a->op, b->op);
    ck_assert(a->price_minor == b->price_minor);
    ck_assert_str_eq(a->currency, b->currency);
    ck_assert(a->expires_at_ms == b->expires_at_ms);
}

/* A correctly sealed token over arbitrary claims text (the layout of
 * offer_context.c: b64url(IV || AES-256-GCM(claims) || tag), its AAD). */
static char *seal_raw_aad(const char *claims_json, const char *key, const char *aad)
{
    unsigned char k[CRYPTO_AEAD_KEY_LEN];
    ck_assert_int_eq(crypto_aead_key_from_text(key, k), 0);
    size_t n = strlen(claims_json);
    unsigned char *blob = malloc(n + CRYPTO_AEAD_OVERHEAD);
    ck_assert_int_eq(crypto_aead_seal(k, aad, strlen(aad), claims_json, n, blob),
                     (int)(n + CRYPTO_AEAD_OVERHEAD));
    char *token = crypto_b64url_encode(blob, n + CRYPTO_AEAD_OVERHEAD);
    free(blob);
    return token;
}

static char *sign_raw(const char *claims_json, const char *key)
{
    return seal_raw_aad(claims_json, key, "millom-offer-context-v1");
}

START_TEST(test_offer_context_round_trip)
{
    offer_context c = sample_context();
    char *token = offer_context_sign(&c, KEY);
    ck_assert_ptr_nonnull(token);
    /* One base64url run: no separator, no padding. */
    ck_assert_uint_eq(strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_"),
                      strlen(token));

    offer_context out;
    memset(&out, 0, sizeof out);
    ck_assert_int_eq(offer_context_verify(token, KEY, NOW, &out), 0);
    assert_context_eq(&c, &out);
    ck_assert_int_eq(offer_context_verify(token, KEY, NOW, NULL), 0);

    /* Opaque: neither the token nor its decoding shows any claim. Each
     * needle is at least 5 bytes: the decoding is random-looking bytes, in
     * which a 1-byte needle such as "{" turns up in about 4 tokens of 10
     * (that made this test fail one run in a few). */
    size_t blen = 0;
    unsigned char *blob = crypto_b64url_decode(token, &blen);
    ck_assert_ptr_nonnull(blob);
    const char *secrets[] = {"924542610003", "4542610003", "plan-5gb-30d", "acme-sp", "16050",
                             "\"s\":\"", "\"p\":\""};
    for (size_t i = 0; i < N_ELEMS(secrets); i++) {
        ck_assert_msg(strstr(token, secrets[i]) == NULL, "token shows %s", secrets[i]);
        ck_assert_msg(memmem(blob, blen, secrets[i], strlen(secrets[i])) == NULL,
                      "decoded token shows %s", secrets[i]);
    }
    free(blob);

    /* Compact: the claims plus IV and tag, base64url. */
    ck_assert_uint_lt(strlen(token), 200);
    /* A fresh IV each time: the same offer gives a different token. */
    char *again = offer_context_sign(&c, KEY);
    ck_assert_str_ne(token, again);
    ck_assert_int_eq(offer_context_verify(again, KEY, NOW, NULL), 0);
    free(again);
    free(token);
}
END_TEST

START_TEST(test_offer_context_foreign_provider)
{
    /* The provider is sealed in: purchase-executor compares it with the
     * provider asking, and no provider can rewrite it. */
    offer_context c = sample_context();
    char *token = offer_context_sign(&c, KEY);
    offer_context out;
    ck_assert_int_eq(offer_context_verify(token, KEY, NOW, &out), 0);
    ck_assert_str_eq(out.provider, "acme-sp");
    ck_assert_str_ne(out.provider, "other-sp");
    /* A token another provider forges for itself under a guessed key. */
    offer_context mine = c;
    strcpy(mine.provider, "other-sp");
    mine.price_minor = 1;
    char *forged = offer_context_sign(&mine, "sandbox-offer-context-key-change-me");
    ck_assert_int_eq(offer_context_verify(forged, KEY, NOW, &out), -1);
    ck_assert_str_eq(out.provider, "acme-sp"); /* untouched on -1 */
    free(forged);
    free(token);
}
END_TEST

START_TEST(test_offer_context_max_fields)
{
    /* Every field at its longest, negative price, awkward characters. */
    offer_context c;
    memset(&c, 0, sizeof c);
    memset(c.plan_id, 'p', sizeof c.plan_id - 1);
    memset(c.subscriber, '"', sizeof c.subscriber - 1);
    memset(c.provider, '\\', sizeof c.provider - 1);
    memset(c.op, '\n', sizeof c.op - 1);
    strcpy(c.currency, "\xc3\xa9uro"); /* "éuro", 5 bytes */
    c.price_minor = -1;
    c.expires_at_ms = INT64_MAX;
    char *token = offer_context_sign(&c, KEY);
    ck_assert_ptr_nonnull(token);
    offer_context out;
    ck_assert_int_eq(offer_context_verify(token, KEY, NOW, &out), 0);
    assert_context_eq(&c, &out);
    free(token);
}
END_TEST

START_TEST(test_offer_context_sign_rejects)
{
    offer_context c = sample_context();
    ck_assert_ptr_null(offer_context_sign(NULL, KEY));
    ck_assert_ptr_null(offer_context_sign(&c, NULL));
    /* Not NUL-terminated inside its array. */
    offer_context bad = c;
    memset(bad.currency, 'X', sizeof bad.currency);
    ck_assert_ptr_null(offer_context_sign(&bad, KEY));
    bad = c;
    memset(bad.plan_id, 'X', sizeof bad.plan_id);
    ck_assert_ptr_null(offer_context_sign(&bad, KEY));
    /* Not UTF-8. */
    bad = c;
    strcpy(bad.plan_id, "\xff\xfe");
    ck_assert_ptr_null(offer_context_sign(&bad, KEY));
}
END_TEST

START_TEST(test_offer_context_tampered)
{
    offer_context c = sample_context();
    char *token = offer_context_sign(&c, KEY);
    ck_assert_ptr_nonnull(token);
    size_t n = strlen(token);
    offer_context out = sample_context();
    strcpy(out.plan_id, "untouched");

    /* Every single-character change anywhere in the token is refused. */
    for (size_t i = 0; i < n; i++) {
        char *t = strdup(token);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        int rc = offer_context_verify(t, KEY, NOW, &out);
        ck_assert_msg(rc == -1, "changed char %zu: rc %d", i, rc);
        free(t);
    }
    /* Every single-bit flip of the sealed bytes too. */
    size_t blen = 0;
    unsigned char *blob = crypto_b64url_decode(token, &blen);
    for (size_t i = 0; i < blen * 8; i += 7) {
        blob[i / 8] ^= (unsigned char)(1u << (i % 8));
        char *t = crypto_b64url_encode(blob, blen);
        ck_assert_int_eq(offer_context_verify(t, KEY, NOW, &out), -1);
        free(t);
        blob[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    free(blob);
    ck_assert_str_eq(out.plan_id, "untouched");

    /* A different price sealed with a different key is foreign. */
    offer_context cheaper = c;
    cheaper.price_minor = 1;
    char *other = offer_context_sign(&cheaper, "attacker-key");
    ck_assert_int_eq(offer_context_verify(other, KEY, NOW, &out), -1);
    free(other);
    /* Sealed with our key for another use (another AAD) is refused. */
    char *cross = seal_raw_aad("{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,"
                               "\"c\":\"PKR\",\"e\":9999999999999}",
                               KEY, "millom-cpid-v1,41006");
    ck_assert_int_eq(offer_context_verify(cross, KEY, NOW, &out), -1);
    free(cross);

    /* Truncated, appended data, the old signed form, wrong key. */
    char *t = strdup(token);
    t[n - 1] = '\0';
    ck_assert_int_eq(offer_context_verify(t, KEY, NOW, &out), -1);
    t[n - 4] = '\0';
    ck_assert_int_eq(offer_context_verify(t, KEY, NOW, &out), -1);
    free(t);
    t = malloc(n + 3);
    sprintf(t, "%sAA", token);
    ck_assert_int_eq(offer_context_verify(t, KEY, NOW, &out), -1);
    free(t);
    t = malloc(n + 3);
    sprintf(t, "%s.A", token);
    ck_assert_int_eq(offer_context_verify(t, KEY, NOW, &out), -1);
    free(t);
    ck_assert_int_eq(offer_context_verify(token, "wrong-key", NOW, &out), -1);
    ck_assert_int_eq(offer_context_verify(token, "", NOW, &out), -1);
    ck_assert_str_eq(out.plan_id, "untouched");
    free(token);
}
END_TEST

START_TEST(test_offer_context_expiry)
{
    offer_context c = sample_context();
    char *token = offer_context_sign(&c, KEY);
    offer_context out;
    ck_assert_int_eq(offer_context_verify(token, KEY, c.expires_at_ms - 1, &out), 0);
    ck_assert_int_eq(offer_context_verify(token, KEY, c.expires_at_ms, &out), -2);
    ck_assert_int_eq(offer_context_verify(token, KEY, c.expires_at_ms + 1, &out), -2);
    ck_assert_int_eq(offer_context_verify(token, KEY, INT64_MAX, &out), -2);
    /* A forged token is -1, never -2, whatever the time. */
    ck_assert_int_eq(offer_context_verify(token, "wrong-key", INT64_MAX, &out), -1);
    free(token);
}
END_TEST

START_TEST(test_offer_context_garbage)
{
    static const char *bad[] = {
        "", ".", "..", "a.", ".b", "a.b", "a.b.c", "no-dot-at-all",
        "eyJwIjoxfQ", "eyJwIjoxfQ.", "!!!.???", "eyJwIjoxfQ.eyJwIjoxfQ.eyJwIjoxfQ",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    offer_context out;
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        ck_assert_msg(offer_context_verify(bad[i], KEY, NOW, &out) == -1, "accepted \"%s\"",
                      bad[i]);
    ck_assert_int_eq(offer_context_verify(NULL, KEY, NOW, &out), -1);
    ck_assert_int_eq(offer_context_verify("a.b", NULL, NOW, &out), -1);

    /* Very long input. */
    size_t big = 100000;
    char *huge = malloc(big + 1);
    memset(huge, 'A', big);
    huge[big / 2] = '.';
    huge[big] = '\0';
    ck_assert_int_eq(offer_context_verify(huge, KEY, NOW, &out), -1);
    free(huge);
}
END_TEST

START_TEST(test_offer_context_bad_claims)
{
    /* Correctly signed, but the claims are unusable: still -1. */
    char longp[200];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    char too_long_plan[400];
    snprintf(too_long_plan, sizeof too_long_plan,
             "{\"p\":\"%.128s\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\","
             "\"e\":9999999999999}",
             longp);
    const char *bad[] = {
        "not json",
        "[]",
        "\"string\"",
        "42",
        "{}",
        "{\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\",\"e\":9999999999999}",
        "{\"p\":1,\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\",\"e\":9999999999999}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":\"1\",\"c\":\"PKR\",\"e\":9999999999999}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1.5,\"c\":\"PKR\",\"e\":9999999999999}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\",\"e\":null}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\"}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKRPKRPK\",\"e\":9999999999999}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\",\"e\":9999999999999,"
        "\"p\":\"b\"}",
        "{\"p\":\"a\\u0000b\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\",\"e\":9999999999999}",
        too_long_plan,
    };
    offer_context out;
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        char *token = sign_raw(bad[i], KEY);
        ck_assert_msg(offer_context_verify(token, KEY, NOW, &out) == -1, "accepted %s", bad[i]);
        free(token);
    }

    /* The same shape with good values is accepted, so the cases above fail
     * for the reason they show. */
    char *token = sign_raw(
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKRPKRP\",\"e\":9999999999999}",
        KEY);
    ck_assert_int_eq(offer_context_verify(token, KEY, NOW, &out), 0);
    ck_assert_str_eq(out.currency, "PKRPKRP");
    free(token);
}
END_TEST

START_TEST(test_offer_context_key)
{
    /* The unit tests run in the sandbox profile: the key comes from
     * shared/keys.h, which gives the sandbox default unless the variable is
     * set. Both forms of key text work: a passphrase and 64 hex digits. */
    const char *env = getenv("MILLOM_OFFER_CONTEXT_KEY");
    ck_assert_str_eq(offer_context_key(), env && *env ? env : "sandbox-offer-context-key-change-me");
    ck_assert_str_eq(offer_context_key(), keys_get("MILLOM_OFFER_CONTEXT_KEY"));

    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    offer_context c = sample_context();
    char *token = offer_context_sign(&c, hex);
    ck_assert_int_eq(offer_context_verify(token, hex, NOW, NULL), 0);
    ck_assert_int_eq(offer_context_verify(token, "sandbox-offer-context-key-change-me", NOW, NULL),
                     -1);
    free(token);
}
END_TEST

/* ---------------------------------------------------------------- msisdn */

static const struct {
    const char *in;
    const char *out; /* NULL: rejected */
} msisdn_cases[] = {
    {"+924542610003", "924542610003"},
    {"00924542610003", "924542610003"},
    {"924542610003", "924542610003"},
    {"12345678", "12345678"},            /* 8 digits */
    {"+12345678", "12345678"},
    {"123456789012345", "123456789012345"}, /* 15 digits */
    {"00123456789012345", "123456789012345"},
    {"1234567", NULL},                   /* 7 digits */
    {"+1234567", NULL},
    {"001234567", NULL},
    {"1234567890123456", NULL},          /* 16 digits */
    {"+1234567890123456", NULL},
    {"0924542610003", NULL},             /* leading 0 (national format) */
    {"000924542610003", NULL},           /* leading 0 after "00" */
    {"+0924542610003", NULL},
    {"+00924542610003", NULL},
    {"", NULL},
    {"+", NULL},
    {"00", NULL},
    {"++924542610003", NULL},
    {"92454261000a", NULL},
    {"abcdefghij", NULL},
    {"92 4542610003", NULL},
    {" 924542610003", NULL},
    {"924542610003 ", NULL},
    {"924-542-610003", NULL},
    {"+92(454)2610003", NULL},
    {"924542610003\n", NULL},
    {"0x924542610003", NULL},
};

START_TEST(test_msisdn)
{
    char out[32];
    strcpy(out, "untouched");
    bool ok = msisdn_normalize(msisdn_cases[_i].in, out, sizeof out);
    if (msisdn_cases[_i].out != NULL) {
        ck_assert_msg(ok, "rejected \"%s\"", msisdn_cases[_i].in);
        ck_assert_str_eq(out, msisdn_cases[_i].out);
    } else {
        ck_assert_msg(!ok, "accepted \"%s\" as %s", msisdn_cases[_i].in, out);
        ck_assert_str_eq(out, "untouched");
    }
}
END_TEST

START_TEST(test_msisdn_edges)
{
    char out[16];
    ck_assert(!msisdn_normalize(NULL, out, sizeof out));
    ck_assert(!msisdn_normalize("924542610003", NULL, 16));
    ck_assert(msisdn_normalize("924542610003", out, 13)); /* 12 digits + NUL */
    ck_assert_str_eq(out, "924542610003");
    ck_assert(!msisdn_normalize("924542610003", out, 12));
    ck_assert(!msisdn_normalize("924542610003", out, 0));
    ck_assert(msisdn_normalize("123456789012345", out, 16));
    ck_assert_str_eq(out, "123456789012345");
}
END_TEST

/* --------------------------------------------------------------- metrics */

static char *render(void)
{
    char *text = metrics_render();
    ck_assert_ptr_nonnull(text);
    return text;
}

static void assert_has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    }
    ck_abort_msg("missing line \"%s\" in:\n%s", line, text);
}

static int count_occurrences(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

START_TEST(test_metrics_counter_gauge)
{
    metric *c = metric_counter("t1_requests_total", "Requests served.", "route=\"balance\"");
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_eq(metric_counter("t1_requests_total", "Requests served.", "route=\"balance\""), c);
    metric *c2 = metric_counter("t1_requests_total", "Requests served.", "route=\"purchase\"");
    ck_assert_ptr_ne(c2, c);
    metric *plain = metric_counter("t1_plain_total", "No labels.", NULL);
    ck_assert_ptr_eq(metric_counter("t1_plain_total", "No labels.", ""), plain);
    metric_add(c, 2);
    metric_add(c, 1);
    metric_add(c, -5); /* counters never go down */
    metric_add(plain, 7);
    ck_assert_int_eq(metric_value(c), 3);
    ck_assert_int_eq(metric_value(c2), 0);

    metric *g = metric_gauge("t1_in_flight", "In-flight requests.", NULL);
    metric_set(g, 10);
    metric_add(g, -3);
    ck_assert_int_eq(metric_value(g), 7);
    metric_set(c, 100); /* not a gauge: ignored */
    ck_assert_int_eq(metric_value(c), 3);

    /* One name, one type. */
    ck_assert_ptr_null(metric_gauge("t1_requests_total", "x", "route=\"balance\""));
    ck_assert_ptr_null(metric_counter(NULL, "x", NULL));

    char *text = render();
    assert_has_line(text, "# HELP t1_requests_total Requests served.");
    assert_has_line(text, "# TYPE t1_requests_total counter");
    assert_has_line(text, "t1_requests_total{route=\"balance\"} 3");
    assert_has_line(text, "t1_requests_total{route=\"purchase\"} 0");
    assert_has_line(text, "# TYPE t1_plain_total counter");
    assert_has_line(text, "t1_plain_total 7");
    assert_has_line(text, "# TYPE t1_in_flight gauge");
    assert_has_line(text, "t1_in_flight 7");
    ck_assert_int_eq(count_occurrences(text, "# HELP t1_requests_total "), 1);
    ck_assert_int_eq(count_occurrences(text, "# TYPE t1_requests_total "), 1);
    free(text);

    /* NULL is harmless. */
    metric_add(NULL, 1);
    metric_set(NULL, 1);
    metric_observe_ms(NULL, 1);
    ck_assert_int_eq(metric_value(NULL), 0);
}
END_TEST

START_TEST(test_metrics_grouping)
{
    /* Series of one name registered apart still render together. */
    metric *a = metric_counter("t2_group_total", "Grouped.", "k=\"a\"");
    metric *other = metric_counter("t2_other_total", "Other.", NULL);
    metric *b = metric_counter("t2_group_total", "Grouped.", "k=\"b\"");
    metric_add(a, 1);
    metric_add(b, 2);
    metric_add(other, 3);
    char *text = render();
    ck_assert_int_eq(count_occurrences(text, "# HELP t2_group_total "), 1);
    ck_assert_int_eq(count_occurrences(text, "# TYPE t2_group_total counter\n"), 1);
    const char *type = strstr(text, "# TYPE t2_group_total counter\n");
    const char *sa = strstr(text, "t2_group_total{k=\"a\"} 1\n");
    const char *sb = strstr(text, "t2_group_total{k=\"b\"} 2\n");
    const char *so = strstr(text, "# HELP t2_other_total");
    ck_assert_ptr_nonnull(type);
    ck_assert_ptr_nonnull(sa);
    ck_assert_ptr_nonnull(sb);
    ck_assert_ptr_nonnull(so);
    ck_assert(type < sa && sa < sb);
    ck_assert(sb < so || so < type); /* no other family in between */
    ck_assert_msg(!(so > type && so < sb), "family split:\n%s", text);

    metric *h = metric_counter("t2_help_total", "Line one\nback\\slash", NULL);
    ck_assert_ptr_nonnull(h);
    free(text);
    text = render();
    assert_has_line(text, "# HELP t2_help_total Line one\\nback\\\\slash");
    free(text);
}
END_TEST

START_TEST(test_metrics_histogram)
{
    metric *h = metric_histogram("t3_latency_seconds", "Latency.", "route=\"balance\"");
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_eq(metric_histogram("t3_latency_seconds", "Latency.", "route=\"balance\""), h);
    metric_observe_ms(h, 0.5);     /* <= 0.001 */
    metric_observe_ms(h, 1.0);     /* exactly on the 0.001 bound */
    metric_observe_ms(h, 3);       /* <= 0.005 */
    metric_observe_ms(h, 20);      /* <= 0.025 */
    metric_observe_ms(h, 20000);   /* above 10s: +Inf only */
    metric_observe_ms(h, -4);      /* clamped to 0 */
    metric_observe_ms(h, NAN);     /* ignored */
    ck_assert_int_eq(metric_value(h), 6);
    metric_add(h, 5); /* not a counter: ignored */
    ck_assert_int_eq(metric_value(h), 6);

    metric *plain = metric_histogram("t3_plain_seconds", "Plain.", NULL);
    metric_observe_ms(plain, 250);

    char *text = render();
    assert_has_line(text, "# HELP t3_latency_seconds Latency.");
    assert_has_line(text, "# TYPE t3_latency_seconds histogram");
    static const char *lines[] = {
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.001\"} 3",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.0025\"} 3",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.005\"} 4",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.01\"} 4",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.025\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.05\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.1\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.25\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.5\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"1\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"2.5\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"5\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"10\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"+Inf\"} 6",
        "t3_latency_seconds_sum{route=\"balance\"} 20.024500",
        "t3_latency_seconds_count{route=\"balance\"} 6",
        "# TYPE t3_plain_seconds histogram",
        "t3_plain_seconds_bucket{le=\"0.1\"} 0",
        "t3_plain_seconds_bucket{le=\"0.25\"} 1",
        "t3_plain_seconds_bucket{le=\"10\"} 1",
        "t3_plain_seconds_bucket{le=\"+Inf\"} 1",
        "t3_plain_seconds_sum 0.250000",
        "t3_plain_seconds_count 1",
    };
    for (size_t i = 0; i < N_ELEMS(lines); i++)
        assert_has_line(text, lines[i]);
    /* Buckets appear in ascending order, +Inf last. */
    ck_assert(strstr(text, "le=\"0.001\"} 3") < strstr(text, "le=\"0.0025\"} 3"));
    ck_assert(strstr(text, "route=\"balance\",le=\"10\"") <
              strstr(text, "route=\"balance\",le=\"+Inf\""));
    ck_assert(strstr(text, "route=\"balance\",le=\"+Inf\"") <
              strstr(text, "t3_latency_seconds_sum{"));
    free(text);
}
END_TEST

enum { THREADS = 8, PER_THREAD = 20000 };

static void *hammer(void *arg)
{
    (void)arg;
    metric *c = metric_counter("t4_concurrent_total", "Concurrent.", NULL);
    metric *h = metric_histogram("t4_concurrent_seconds", "Concurrent.", NULL);
    for (int i = 0; i < PER_THREAD; i++) {
        metric_add(c, 1);
        metric_observe_ms(h, 2);
    }
    return NULL;
}

START_TEST(test_metrics_concurrent)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    metric *c = metric_counter("t4_concurrent_total", "Concurrent.", NULL);
    ck_assert_int_eq(metric_value(c), THREADS * PER_THREAD);
    char *text = render();
    char line[128];
    snprintf(line, sizeof line, "t4_concurrent_total %d", THREADS * PER_THREAD);
    assert_has_line(text, line);
    snprintf(line, sizeof line, "t4_concurrent_seconds_bucket{le=\"0.0025\"} %d",
             THREADS * PER_THREAD);
    assert_has_line(text, line);
    snprintf(line, sizeof line, "t4_concurrent_seconds_count %d", THREADS * PER_THREAD);
    assert_has_line(text, line);
    snprintf(line, sizeof line, "t4_concurrent_seconds_sum %.6f", THREADS * PER_THREAD * 0.002);
    assert_has_line(text, line);
    ck_assert_int_eq(count_occurrences(text, "# TYPE t4_concurrent_total"), 1);
    free(text);
}
END_TEST

/* ---------------------------------------------------------------- errors */

static const struct {
    const char *cause;
    int status;
    int retry_after;
} status_cases[] = {
    {CAUSE_UNSPECIFIED, 500, 0},
    {CAUSE_INVALID_NUMBER, 404, 0},
    {CAUSE_BAD_REQUEST, 400, 0},
    {CAUSE_USER_ROAMING, 403, 0},
    {CAUSE_USER_OPT_OUT, 403, 0},
    {CAUSE_TOO_MANY_REQUESTS, 429, 1},
    {CAUSE_SERVICE_UNAVAILABLE, 503, 1},
    {CAUSE_PURCHASE_CONFLICT, 409, 0},
    {CAUSE_INSUFFICIENT_FUNDS, 402, 0},
    {CAUSE_NOT_ALLOWED, 403, 0},
    {CAUSE_BAD_CPID, 410, 0},
    {CAUSE_UNAUTHORIZED, 401, 0},
    {CAUSE_PAYLOAD_TOO_LARGE, 413, 0},
    {CAUSE_NOT_FOUND, 404, 0},
    {CAUSE_METHOD_NOT_ALLOWED, 405, 0},
    {"SOMETHING_ELSE", 500, 0},
    {"", 500, 0},
    {"bad_request", 500, 0},
    {NULL, 500, 0},
};

START_TEST(test_error_status)
{
    ck_assert_int_eq(error_status(status_cases[_i].cause), status_cases[_i].status);
    ck_assert_int_eq(error_retry_after(status_cases[_i].cause), status_cases[_i].retry_after);
}
END_TEST

START_TEST(test_error_document)
{
    json_t *doc = error_document(CAUSE_BAD_REQUEST, "msisdn is malformed");
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "errorMessage")),
                     "msisdn is malformed");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "cause")), "BAD_REQUEST");
    ck_assert_int_eq(json_object_size(doc), 2);
    json_decref(doc);

    doc = error_document(CAUSE_NOT_FOUND, NULL);
    ck_assert_ptr_null(json_object_get(doc, "errorMessage"));
    ck_assert_str_eq(json_string_value(json_object_get(doc, "cause")), "NOT_FOUND");
    ck_assert_int_eq(json_object_size(doc), 1);
    json_decref(doc);

    char *text = error_document_text(CAUSE_BAD_REQUEST, "msisdn is malformed");
    ck_assert_str_eq(text, "{\"errorMessage\":\"msisdn is malformed\",\"cause\":\"BAD_REQUEST\"}");
    free(text);
    text = error_document_text(CAUSE_PURCHASE_CONFLICT, NULL);
    ck_assert_str_eq(text, "{\"cause\":\"PURCHASE_CONFLICT\"}");
    free(text);
    text = error_document_text(NULL, "x");
    ck_assert_str_eq(text, "{\"errorMessage\":\"x\",\"cause\":\"ERROR_CAUSE_UNSPECIFIED\"}");
    free(text);

    /* Quotes and control characters are escaped by jansson. */
    text = error_document_text(CAUSE_BAD_REQUEST, "field \"a\"\n\\");
    ck_assert_str_eq(text,
                     "{\"errorMessage\":\"field \\\"a\\\"\\n\\\\\",\"cause\":\"BAD_REQUEST\"}");
    free(text);

    /* Invalid UTF-8 from a hostile request still yields a document. */
    text = error_document_text(CAUSE_BAD_REQUEST, "bad \xff\xfe byte");
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, "{\"errorMessage\":\"bad ?? byte\",\"cause\":\"BAD_REQUEST\"}");
    free(text);
}
END_TEST

/* ------------------------------------------------------------------ main */

static Suite *shared_utils_suite(void)
{
    Suite *s = suite_create("shared_utils");

    TCase *tc = tcase_create("money");
    tcase_add_loop_test(tc, test_money_parse, 0, N_ELEMS(parse_cases));
    tcase_add_test(tc, test_money_parse_null);
    tcase_add_loop_test(tc, test_money_format, 0, N_ELEMS(format_cases));
    tcase_add_test(tc, test_money_format_buffer);
    tcase_add_test(tc, test_money_round_trip_range);
    tcase_add_loop_test(tc, test_money_from_json_real, 0, N_ELEMS(real_cases));
    tcase_add_test(tc, test_money_from_json_parsed_text);
    tcase_add_test(tc, test_money_from_json_non_finite);
    tcase_add_test(tc, test_money_from_json_integer);
    tcase_add_test(tc, test_money_from_json_not_number);
    suite_add_tcase(s, tc);

    tc = tcase_create("crypto");
    tcase_add_test(tc, test_hmac_rfc4231);
    tcase_add_test(tc, test_b64url_vectors);
    tcase_add_test(tc, test_b64url_all_bytes);
    tcase_add_test(tc, test_b64url_rejects);
    tcase_add_test(tc, test_uuid);
    tcase_add_test(tc, test_random_and_equal);
    suite_add_tcase(s, tc);

    tc = tcase_create("offer_context");
    tcase_add_test(tc, test_offer_context_round_trip);
    tcase_add_test(tc, test_offer_context_foreign_provider);
    tcase_add_test(tc, test_offer_context_max_fields);
    tcase_add_test(tc, test_offer_context_sign_rejects);
    tcase_add_test(tc, test_offer_context_tampered);
    tcase_add_test(tc, test_offer_context_expiry);
    tcase_add_test(tc, test_offer_context_garbage);
    tcase_add_test(tc, test_offer_context_bad_claims);
    tcase_add_test(tc, test_offer_context_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("msisdn");
    tcase_add_loop_test(tc, test_msisdn, 0, N_ELEMS(msisdn_cases));
    tcase_add_test(tc, test_msisdn_edges);
    suite_add_tcase(s, tc);

    tc = tcase_create("metrics");
    tcase_add_test(tc, test_metrics_counter_gauge);
    tcase_add_test(tc, test_metrics_grouping);
    tcase_add_test(tc, test_metrics_histogram);
    tcase_add_test(tc, test_metrics_concurrent);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_error_status, 0, N_ELEMS(status_cases));
    tcase_add_test(tc, test_error_document);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(shared_utils_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
