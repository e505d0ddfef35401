/* Signed links: good links, tampering (path, parameter, signature),
 * expiry with an injected clock, missing and malformed parameters, and
 * key ids for rotation (a link of before key ids still verifies). */
#include "shared/contracts/signed_link.h"
#include "shared/plumbing/crypto.h"

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
    keys_set other;
    ck_assert_int_eq(keys_set_one(&other, "other"), 0);
    ck_assert_int_eq(signed_link_verify_keys(&other, PATH, get, &orig, NAMES, T0), SIGNED_LINK_BAD);
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

/* A key set from a list (shared/contracts/keys.h), default filled in. */
static void set_of(keys_set *set, const char *list, const char *default_secret) {
    int at;
    char err[256];
    ck_assert_msg(keys_parse_list("MILLOM_LINK_KEYS", list, set, &at, err, sizeof err) == 0, "%s",
                  err);
    if (at >= 0) snprintf(set->e[at].secret, sizeof set->e[at].secret, "%s", default_secret);
}

/* base64url HMAC-SHA256(key, text), computed here on its own. */
static void expected_mac(const char *key, const char *text, char *out, size_t outlen) {
    unsigned char mac[CRYPTO_SHA256_LEN];
    ck_assert_int_eq(crypto_hmac_sha256(key, strlen(key), text, strlen(text), mac), 0);
    char *b = crypto_b64url_encode(mac, sizeof mac);
    snprintf(out, outlen, "%s", b);
    free(b);
}

/* Rotation: the default key signs exactly as before key ids (the v1 text,
 * no id); key 2's links carry "k2." and sign the v2 text with the id in
 * it; each verifies under every set that has its key and under no other;
 * an id moved onto another key's signature, or dropped, is refused. */
START_TEST(key_ids_rotate) {
    const char *path = "/rnf/sp/op/c/ping";
    keys_set one, both, two;
    set_of(&one, "default", "key one");
    set_of(&both, "k2:key-two,default", "key one");
    set_of(&two, "k2:key-two", NULL);
    query q_old, q_new, q;
    char *old = signed_link_make_keys(&one, "", path, NULL, 0, 600, T0);
    char *new_ = signed_link_make_keys(&both, "", path, NULL, 0, 600, T0);
    ck_assert_ptr_nonnull(old);
    ck_assert_ptr_nonnull(new_);
    parse(old, &q_old);
    parse(new_, &q_new);
    /* The texts signed, as signed_link.h has them. */
    char text[512], mac[64], want[80];
    snprintf(text, sizeof text, "14:millom-link-v1;%zu:%s;36:%s;10:%s;", strlen(path), path,
             get(&q_old, "uuid"), get(&q_old, "expirySeconds"));
    expected_mac("key one", text, mac, sizeof mac);
    ck_assert_str_eq(get(&q_old, "signature"), mac);
    snprintf(text, sizeof text, "14:millom-link-v2;2:k2;%zu:%s;36:%s;10:%s;", strlen(path), path,
             get(&q_new, "uuid"), get(&q_new, "expirySeconds"));
    expected_mac("key-two", text, mac, sizeof mac);
    snprintf(want, sizeof want, "k2.%s", mac);
    ck_assert_str_eq(get(&q_new, "signature"), want);

    ck_assert_int_eq(signed_link_verify_keys(&both, path, get, &q_old, NULL, T0), SIGNED_LINK_OK);
    ck_assert_int_eq(signed_link_verify_keys(&both, path, get, &q_new, NULL, T0), SIGNED_LINK_OK);
    ck_assert_int_eq(signed_link_verify_keys(&two, path, get, &q_new, NULL, T0), SIGNED_LINK_OK);
    ck_assert_int_eq(signed_link_verify_keys(&two, path, get, &q_new, NULL, T0 + 600000),
                     SIGNED_LINK_EXPIRED);
    ck_assert_int_eq(signed_link_verify_keys(&two, path, get, &q_old, NULL, T0), SIGNED_LINK_BAD);
    ck_assert_int_eq(signed_link_verify_keys(&one, path, get, &q_new, NULL, T0), SIGNED_LINK_BAD);
    /* The id is signed: another id on the same MAC, or none, is refused
     * even where that id (or default) has the same secret. */
    keys_set relabelled;
    set_of(&relabelled, "k3:key-two,default", "key-two");
    q = q_new;
    snprintf(want, sizeof want, "k3.%s", get(&q_new, "signature") + 3);
    set(&q, "signature", want);
    ck_assert_int_eq(signed_link_verify_keys(&relabelled, path, get, &q, NULL, T0),
                     SIGNED_LINK_BAD);
    snprintf(want, sizeof want, "%s", get(&q_new, "signature") + 3);
    set(&q, "signature", want);
    ck_assert_int_eq(signed_link_verify_keys(&relabelled, path, get, &q, NULL, T0),
                     SIGNED_LINK_BAD);
    snprintf(want, sizeof want, ".%s", get(&q_new, "signature") + 3);
    set(&q, "signature", want);
    ck_assert_int_eq(signed_link_verify_keys(&both, path, get, &q, NULL, T0), SIGNED_LINK_BAD);
    set(&q, "signature", "k2.");
    ck_assert_int_eq(signed_link_verify_keys(&both, path, get, &q, NULL, T0), SIGNED_LINK_BAD);
    /* The longest key id still fits a form's signature. */
    keys_set longest;
    set_of(&longest, "abcdefghijklmnop:key", NULL);
    char *l = signed_link_make_keys(&longest, "", path, NULL, 0, 600, T0);
    parse(l, &q);
    ck_assert_uint_lt(strlen(get(&q, "signature")), sizeof(((signed_link_form *)0)->signature));
    ck_assert_int_eq(signed_link_verify_keys(&longest, path, get, &q, NULL, T0), SIGNED_LINK_OK);
    free(l);
    keys_set none;
    memset(&none, 0, sizeof none);
    ck_assert_ptr_null(signed_link_make_keys(&none, "", path, NULL, 0, 600, T0));
    ck_assert_int_eq(signed_link_verify_keys(&none, path, get, &q_old, NULL, T0), SIGNED_LINK_BAD);
    free(old);
    free(new_);
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
    tcase_add_test(tc, key_ids_rotate);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
