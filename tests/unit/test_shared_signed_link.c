/* Signed links: good links, tampering (path, parameter, signature),
 * expiry with an injected clock, missing and malformed parameters. */
#include "shared/contracts/signed_link.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1800000000000LL /* epoch ms */
#define PATH "/rnf/testserviceprovider/tp/abc-_DEF,41001/purchasePlan"

/* A parsed query string: the decoded values by name. */
typedef struct {
    char names[24][64];
    char values[24][256];
    int n;
} query;

static void parse(const char *url, query *q) {
    memset(q, 0, sizeof *q);
    const char *p = strchr(url, '?');
    ck_assert_ptr_nonnull(p);
    p++;
    while (*p && q->n < 24) {
        size_t n = strcspn(p, "&");
        char pair[400];
        ck_assert_uint_lt(n, sizeof pair);
        memcpy(pair, p, n);
        pair[n] = '\0';
        char *eq = strchr(pair, '=');
        ck_assert_ptr_nonnull(eq);
        *eq = '\0';
        int len = 0;
        char *v = curl_easy_unescape(NULL, eq + 1, 0, &len);
        ck_assert_uint_lt(strlen(pair), sizeof q->names[0]);
        ck_assert_uint_lt(strlen(v), sizeof q->values[0]);
        memcpy(q->names[q->n], pair, strlen(pair) + 1);
        memcpy(q->values[q->n], v, strlen(v) + 1);
        curl_free(v);
        q->n++;
        p += n;
        if (*p == '&') p++;
    }
}

static const char *get(void *ctx, const char *name) {
    query *q = ctx;
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->names[i], name) == 0) return q->values[i];
    return NULL;
}

static void set(query *q, const char *name, const char *value) {
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->names[i], name) == 0) {
            if (value)
                snprintf(q->values[i], sizeof q->values[0], "%s", value);
            else
                q->names[i][0] = '\0'; /* removed */
            return;
        }
    snprintf(q->names[q->n], sizeof q->names[0], "%s", name);
    snprintf(q->values[q->n], sizeof q->values[0], "%s", value);
    q->n++;
}

static const char *const NAMES[] = {"planId", "transactionId", "fundSource", NULL};

static char *make(long ttl_s) {
    signed_link_param p[] = {
        {"transactionId", "rnf-tx-0001"}, {"planId", "tp-music daily&x=1"}, {"fundSource", NULL}};
    return signed_link_make("http://edge", PATH, p, 3, ttl_s, T0);
}

START_TEST(good_link_verifies) {
    char *url = make(600);
    ck_assert_ptr_nonnull(url);
    /* the path is percent-encoded in the URL, the values too */
    ck_assert_msg(
        strncmp(url, "http://edge/rnf/testserviceprovider/tp/abc-_DEF%2C41001/purchasePlan?uuid=",
                74) == 0,
        "%s", url);
    ck_assert_ptr_nonnull(strstr(url, "planId=tp-music%20daily%26x%3D1"));
    ck_assert_ptr_null(strstr(url, "fundSource"));
    query q;
    parse(url, &q);
    ck_assert_str_eq(get(&q, "expirySeconds"), "1800000600");
    ck_assert_int_eq(strlen(get(&q, "uuid")), 36);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_OK);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0 + 599999), SIGNED_LINK_OK);
    /* extra parameters the endpoint does not read are ignored */
    set(&q, "utm", "x");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_OK);
    /* two links for the same thing differ (random uuid) */
    char *again = make(600);
    ck_assert_str_ne(url, again);
    free(again);
    /* no parameters at all, base "" */
    char *ping = signed_link_make("", "/rnf/sp/op/c/ping", NULL, 0, 60, T0);
    ck_assert_ptr_nonnull(ping);
    ck_assert_msg(strncmp(ping, "/rnf/sp/op/c/ping?uuid=", 23) == 0, "%s", ping);
    parse(ping, &q);
    ck_assert_int_eq(signed_link_verify("/rnf/sp/op/c/ping", get, &q, NULL, T0), SIGNED_LINK_OK);
    free(ping);
    free(url);
}
END_TEST

START_TEST(tampering_is_refused) {
    char *url = make(600);
    query q, orig;
    parse(url, &orig);
    /* another path (another CPID, another endpoint) */
    ck_assert_int_eq(signed_link_verify("/rnf/testserviceprovider/tp/abc-_DEF,41002/purchasePlan",
                                        get, &orig, NAMES, T0),
                     SIGNED_LINK_BAD);
    ck_assert_int_eq(signed_link_verify("/rnf/testserviceprovider/tp/abc-_DEF,41001/offers", get,
                                        &orig, NAMES, T0),
                     SIGNED_LINK_BAD);
    /* a parameter changed, added, removed */
    q = orig;
    set(&q, "planId", "tp-data-daily-3gb");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    q = orig;
    set(&q, "fundSource", "LOAN");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    q = orig;
    set(&q, "transactionId", NULL);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    /* expiry pushed out, another uuid */
    q = orig;
    set(&q, "expirySeconds", "1900000000");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    q = orig;
    set(&q, "uuid", "00000000-0000-4000-8000-000000000000");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    /* the signature: one character, truncated, extended, empty */
    q = orig;
    char sig[128];
    snprintf(sig, sizeof sig, "%s", get(&orig, "signature"));
    sig[5] = sig[5] == 'A' ? 'B' : 'A';
    set(&q, "signature", sig);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    snprintf(sig, sizeof sig, "%s", get(&orig, "signature"));
    sig[strlen(sig) - 1] = '\0';
    set(&q, "signature", sig);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    snprintf(sig, sizeof sig, "%s=", get(&orig, "signature"));
    set(&q, "signature", sig);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    set(&q, "signature", "");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    /* another key */
    ck_assert_int_eq(signed_link_verify_key("other", 5, PATH, get, &orig, NAMES, T0),
                     SIGNED_LINK_BAD);
    ck_assert_int_eq(signed_link_verify(PATH, get, &orig, NAMES, T0), SIGNED_LINK_OK);
    free(url);
}
END_TEST

START_TEST(expiry_uses_the_clock) {
    char *url = make(600);
    query q;
    parse(url, &q);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0 + 600000), SIGNED_LINK_EXPIRED);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0 + 86400000), SIGNED_LINK_EXPIRED);
    free(url);
    /* a ttl in the past: born expired, but authentic */
    url = make(-10);
    parse(url, &q);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_EXPIRED);
    /* tampered and expired: tampered wins (no oracle on the signature) */
    set(&q, "planId", "x");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    free(url);
}
END_TEST

START_TEST(missing_or_malformed_parameters) {
    char *url = make(600);
    query orig, q;
    parse(url, &orig);
    const char *required[] = {"uuid", "expirySeconds", "signature"};
    for (int i = 0; i < 3; i++) {
        q = orig;
        set(&q, required[i], NULL);
        ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    }
    q = orig;
    set(&q, "expirySeconds", "18e8");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    set(&q, "expirySeconds", "-1");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    q = orig;
    set(&q, "uuid", "not-a-uuid");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    ck_assert_int_eq(signed_link_verify("no-slash", get, &orig, NAMES, T0), SIGNED_LINK_BAD);
    ck_assert_int_eq(signed_link_verify(PATH, NULL, &orig, NAMES, T0), SIGNED_LINK_BAD);
    free(url);
    /* bad input to make */
    signed_link_param reserved[] = {{"signature", "x"}};
    ck_assert_ptr_null(signed_link_make("", PATH, reserved, 1, 60, T0));
    signed_link_param dup[] = {{"a", "1"}, {"a", "2"}};
    ck_assert_ptr_null(signed_link_make("", PATH, dup, 2, 60, T0));
    ck_assert_ptr_null(signed_link_make("", "rnf/x", NULL, 0, 60, T0));
}
END_TEST

/* The same link as form fields (the shop's POST): they verify like the
 * query of signed_link_make's URL, and tampering or expiry still shows. */
START_TEST(form_fields_verify_like_a_link) {
    signed_link_param p[] = {{"transactionId", "rnf-tx-0001"}, {"planId", "tp-music daily&x=1"}};
    signed_link_form f;
    ck_assert_int_eq(signed_link_make_form(PATH, p, 2, 600, T0, &f), 0);
    ck_assert_str_eq(f.action, "/rnf/testserviceprovider/tp/abc-_DEF%2C41001/purchasePlan");
    query q = {0};
    set(&q, "planId", "tp-music daily&x=1");
    set(&q, "transactionId", "rnf-tx-0001");
    set(&q, "uuid", f.uuid);
    set(&q, "expirySeconds", f.expiry);
    set(&q, "signature", f.signature);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_OK);
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0 + 601000), SIGNED_LINK_EXPIRED);
    set(&q, "transactionId", "rnf-tx-0002");
    ck_assert_int_eq(signed_link_verify(PATH, get, &q, NAMES, T0), SIGNED_LINK_BAD);
    free(f.action);
    /* bad input as signed_link_make */
    signed_link_param bad[] = {{"signature", "x"}};
    ck_assert_int_eq(signed_link_make_form(PATH, bad, 1, 60, T0, &f), -1);
    ck_assert_ptr_null(f.action);
    ck_assert_int_eq(signed_link_make_form("rnf/x", NULL, 0, 60, T0, &f), -1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("signed_link");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, good_link_verifies);
    tcase_add_test(tc, tampering_is_refused);
    tcase_add_test(tc, expiry_uses_the_clock);
    tcase_add_test(tc, missing_or_malformed_parameters);
    tcase_add_test(tc, form_fields_verify_like_a_link);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
