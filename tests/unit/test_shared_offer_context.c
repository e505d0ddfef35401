/* Unit tests of offerContexts: sealing, opening, tampering, expiry and keys (shared/contracts/offer_context.c). Runs with and without CK_FORK. */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/crypto.h"
#include "shared/contracts/keys.h"
#include "shared/contracts/offer_context.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define KEY "unit-test-key"
#define NOW 1700000000000LL

/* A one-key set (the default key: tokens without a key id) of secret;
 * an empty set when it has none. Four in turn, so one call can hold two. */
static const keys_set *ks(const char *secret) {
    static keys_set sets[4];
    static int next;
    keys_set *s = &sets[next++ % 4];
    if (keys_set_one(s, secret) != 0) memset(s, 0, sizeof *s);
    return s;
}

static offer_context sample_context(void) {
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

static void assert_context_eq(const offer_context *a, const offer_context *b) {
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
static char *seal_raw_aad(const char *claims_json, const char *key, const char *aad) {
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

static char *sign_raw(const char *claims_json, const char *key) {
    return seal_raw_aad(claims_json, key, "millom-offer-context-v1");
}

START_TEST(test_offer_context_round_trip) {
    offer_context c = sample_context();
    char *token = offer_context_sign(&c, ks(KEY));
    ck_assert_ptr_nonnull(token);
    /* One base64url run: no separator, no padding. */
    ck_assert_uint_eq(strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_"),
                      strlen(token));

    offer_context out;
    memset(&out, 0, sizeof out);
    ck_assert_int_eq(offer_context_verify(token, ks(KEY), NOW, &out), 0);
    assert_context_eq(&c, &out);
    ck_assert_int_eq(offer_context_verify(token, ks(KEY), NOW, NULL), 0);

    /* Opaque: neither the token nor its decoding shows any claim. Each
     * needle is at least 5 bytes: the decoding is random-looking bytes, in
     * which a 1-byte needle such as "{" turns up in about 4 tokens of 10
     * (that made this test fail one run in a few). */
    size_t blen = 0;
    unsigned char *blob = crypto_b64url_decode(token, &blen);
    ck_assert_ptr_nonnull(blob);
    const char *secrets[] = {"924542610003", "4542610003", "plan-5gb-30d", "acme-sp",
                             "16050",        "\"s\":\"",   "\"p\":\""};
    for (size_t i = 0; i < N_ELEMS(secrets); i++) {
        ck_assert_msg(strstr(token, secrets[i]) == NULL, "token shows %s", secrets[i]);
        ck_assert_msg(memmem(blob, blen, secrets[i], strlen(secrets[i])) == NULL,
                      "decoded token shows %s", secrets[i]);
    }
    free(blob);

    /* Compact: the claims plus IV and tag, base64url. */
    ck_assert_uint_lt(strlen(token), 200);
    /* A fresh IV each time: the same offer gives a different token. */
    char *again = offer_context_sign(&c, ks(KEY));
    ck_assert_str_ne(token, again);
    ck_assert_int_eq(offer_context_verify(again, ks(KEY), NOW, NULL), 0);
    free(again);
    free(token);
}
END_TEST

/* Claims written once, sealed again and again with a new expiry (what
 * offer-resolver's upsellOffer templates do). */
START_TEST(test_offer_context_claims_then_seal) {
    offer_context c = sample_context();
    char *claims = offer_context_claims(&c);
    ck_assert_ptr_nonnull(claims);
    ck_assert_ptr_null(strstr(claims, "\"e\""));
    for (int64_t e = NOW + 1000; e < NOW + 4000; e += 1000) {
        char *token = offer_context_seal(claims, e, ks(KEY));
        ck_assert_ptr_nonnull(token);
        offer_context got;
        ck_assert_int_eq(offer_context_verify(token, ks(KEY), NOW, &got), 0);
        c.expires_at_ms = e;
        assert_context_eq(&got, &c);
        ck_assert_int_eq(offer_context_verify(token, ks(KEY), e, NULL), -2);
        free(token);
    }
    /* Not a claims object, or no key: no token. */
    ck_assert_ptr_null(offer_context_seal("", NOW, ks(KEY)));
    ck_assert_ptr_null(offer_context_seal("[1]", NOW, ks(KEY)));
    ck_assert_ptr_null(offer_context_seal(NULL, NOW, ks(KEY)));
    keys_set none = {0};
    ck_assert_ptr_null(offer_context_seal(claims, NOW, &none));
    free(claims);
    /* A field not NUL-terminated in its array, or not UTF-8: no claims. */
    offer_context bad = sample_context();
    memset(bad.currency, 'X', sizeof bad.currency);
    ck_assert_ptr_null(offer_context_claims(&bad));
    bad = sample_context();
    bad.plan_id[0] = (char)0xff;
    ck_assert_ptr_null(offer_context_claims(&bad));
    ck_assert_ptr_null(offer_context_claims(NULL));
}
END_TEST

START_TEST(test_offer_context_foreign_provider) {
    /* The provider is sealed in: purchase-executor compares it with the
     * provider asking, and no provider can rewrite it. */
    offer_context c = sample_context();
    char *token = offer_context_sign(&c, ks(KEY));
    offer_context out;
    ck_assert_int_eq(offer_context_verify(token, ks(KEY), NOW, &out), 0);
    ck_assert_str_eq(out.provider, "acme-sp");
    ck_assert_str_ne(out.provider, "other-sp");
    /* A token another provider forges for itself under a guessed key. */
    offer_context mine = c;
    strcpy(mine.provider, "other-sp");
    mine.price_minor = 1;
    char *forged = offer_context_sign(&mine, ks("sandbox-offer-context-key-change-me"));
    ck_assert_int_eq(offer_context_verify(forged, ks(KEY), NOW, &out), -1);
    ck_assert_str_eq(out.provider, "acme-sp"); /* untouched on -1 */
    free(forged);
    free(token);
}
END_TEST

START_TEST(test_offer_context_max_fields) {
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
    char *token = offer_context_sign(&c, ks(KEY));
    ck_assert_ptr_nonnull(token);
    offer_context out;
    ck_assert_int_eq(offer_context_verify(token, ks(KEY), NOW, &out), 0);
    assert_context_eq(&c, &out);
    free(token);
}
END_TEST

START_TEST(test_offer_context_sign_rejects) {
    offer_context c = sample_context();
    ck_assert_ptr_null(offer_context_sign(NULL, ks(KEY)));
    ck_assert_ptr_null(offer_context_sign(&c, NULL));
    /* Not NUL-terminated inside its array. */
    offer_context bad = c;
    memset(bad.currency, 'X', sizeof bad.currency);
    ck_assert_ptr_null(offer_context_sign(&bad, ks(KEY)));
    bad = c;
    memset(bad.plan_id, 'X', sizeof bad.plan_id);
    ck_assert_ptr_null(offer_context_sign(&bad, ks(KEY)));
    /* Not UTF-8. */
    bad = c;
    strcpy(bad.plan_id, "\xff\xfe");
    ck_assert_ptr_null(offer_context_sign(&bad, ks(KEY)));
}
END_TEST

START_TEST(test_offer_context_tampered) {
    offer_context c = sample_context();
    char *token = offer_context_sign(&c, ks(KEY));
    ck_assert_ptr_nonnull(token);
    size_t n = strlen(token);
    offer_context out = sample_context();
    strcpy(out.plan_id, "untouched");

    /* Every single-character change anywhere in the token is refused. */
    for (size_t i = 0; i < n; i++) {
        char *t = strdup(token);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        int rc = offer_context_verify(t, ks(KEY), NOW, &out);
        ck_assert_msg(rc == -1, "changed char %zu: rc %d", i, rc);
        free(t);
    }
    /* Every single-bit flip of the sealed bytes too. */
    size_t blen = 0;
    unsigned char *blob = crypto_b64url_decode(token, &blen);
    for (size_t i = 0; i < blen * 8; i += 7) {
        blob[i / 8] ^= (unsigned char)(1u << (i % 8));
        char *t = crypto_b64url_encode(blob, blen);
        ck_assert_int_eq(offer_context_verify(t, ks(KEY), NOW, &out), -1);
        free(t);
        blob[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    free(blob);
    ck_assert_str_eq(out.plan_id, "untouched");

    /* A different price sealed with a different key is foreign. */
    offer_context cheaper = c;
    cheaper.price_minor = 1;
    char *other = offer_context_sign(&cheaper, ks("attacker-key"));
    ck_assert_int_eq(offer_context_verify(other, ks(KEY), NOW, &out), -1);
    free(other);
    /* Sealed with our key for another use (another AAD) is refused. */
    char *cross = seal_raw_aad("{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,"
                               "\"c\":\"PKR\",\"e\":9999999999999}",
                               KEY, "millom-cpid-v1,41006");
    ck_assert_int_eq(offer_context_verify(cross, ks(KEY), NOW, &out), -1);
    free(cross);

    /* Truncated, appended data, the old signed form, wrong key. */
    char *t = strdup(token);
    t[n - 1] = '\0';
    ck_assert_int_eq(offer_context_verify(t, ks(KEY), NOW, &out), -1);
    t[n - 4] = '\0';
    ck_assert_int_eq(offer_context_verify(t, ks(KEY), NOW, &out), -1);
    free(t);
    t = malloc(n + 3);
    sprintf(t, "%sAA", token);
    ck_assert_int_eq(offer_context_verify(t, ks(KEY), NOW, &out), -1);
    free(t);
    t = malloc(n + 3);
    sprintf(t, "%s.A", token);
    ck_assert_int_eq(offer_context_verify(t, ks(KEY), NOW, &out), -1);
    free(t);
    ck_assert_int_eq(offer_context_verify(token, ks("wrong-key"), NOW, &out), -1);
    ck_assert_int_eq(offer_context_verify(token, ks(""), NOW, &out), -1);
    ck_assert_str_eq(out.plan_id, "untouched");
    free(token);
}
END_TEST

START_TEST(test_offer_context_expiry) {
    offer_context c = sample_context();
    char *token = offer_context_sign(&c, ks(KEY));
    offer_context out;
    ck_assert_int_eq(offer_context_verify(token, ks(KEY), c.expires_at_ms - 1, &out), 0);
    ck_assert_int_eq(offer_context_verify(token, ks(KEY), c.expires_at_ms, &out), -2);
    ck_assert_int_eq(offer_context_verify(token, ks(KEY), c.expires_at_ms + 1, &out), -2);
    ck_assert_int_eq(offer_context_verify(token, ks(KEY), INT64_MAX, &out), -2);
    /* A forged token is -1, never -2, whatever the time. */
    ck_assert_int_eq(offer_context_verify(token, ks("wrong-key"), INT64_MAX, &out), -1);
    free(token);
}
END_TEST

START_TEST(test_offer_context_garbage) {
    static const char *bad[] = {
        "",
        ".",
        "..",
        "a.",
        ".b",
        "a.b",
        "a.b.c",
        "no-dot-at-all",
        "eyJwIjoxfQ",
        "eyJwIjoxfQ.",
        "!!!.???",
        "eyJwIjoxfQ.eyJwIjoxfQ.eyJwIjoxfQ",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    offer_context out;
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        ck_assert_msg(offer_context_verify(bad[i], ks(KEY), NOW, &out) == -1, "accepted \"%s\"",
                      bad[i]);
    ck_assert_int_eq(offer_context_verify(NULL, ks(KEY), NOW, &out), -1);
    ck_assert_int_eq(offer_context_verify("a.b", NULL, NOW, &out), -1);

    /* Very long input. */
    size_t big = 100000;
    char *huge = malloc(big + 1);
    memset(huge, 'A', big);
    huge[big / 2] = '.';
    huge[big] = '\0';
    ck_assert_int_eq(offer_context_verify(huge, ks(KEY), NOW, &out), -1);
    free(huge);
}
END_TEST

START_TEST(test_offer_context_bad_claims) {
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
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":\"1\",\"c\":\"PKR\",\"e\":"
        "9999999999999}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1.5,\"c\":\"PKR\",\"e\":"
        "9999999999999}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\",\"e\":null}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\"}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKRPKRPK\",\"e\":"
        "9999999999999}",
        "{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\",\"e\":"
        "9999999999999,"
        "\"p\":\"b\"}",
        "{\"p\":\"a\\u0000b\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":\"PKR\",\"e\":"
        "9999999999999}",
        too_long_plan,
    };
    offer_context out;
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        char *token = sign_raw(bad[i], KEY);
        ck_assert_msg(offer_context_verify(token, ks(KEY), NOW, &out) == -1, "accepted %s", bad[i]);
        free(token);
    }

    /* The same shape with good values is accepted, so the cases above fail
     * for the reason they show. */
    char *token = sign_raw("{\"p\":\"a\",\"s\":\"1\",\"sp\":\"x\",\"o\":\"j\",\"a\":1,\"c\":"
                           "\"PKRPKRP\",\"e\":9999999999999}",
                           KEY);
    ck_assert_int_eq(offer_context_verify(token, ks(KEY), NOW, &out), 0);
    ck_assert_str_eq(out.currency, "PKRPKRP");
    free(token);
}
END_TEST

START_TEST(test_offer_context_key) {
    /* The unit tests run in the sandbox profile: the key comes from
     * shared/contracts/keys.h, which gives the sandbox default unless the variable is
     * set. Both forms of key text work: a passphrase and 64 hex digits. */
    const char *env = getenv("MILLOM_OFFER_CONTEXT_KEY");
    const char *list = getenv("MILLOM_OFFER_CONTEXT_KEYS");
    if (!list || !*list) {
        ck_assert_uint_eq(offer_context_keys()->n, 1);
        ck_assert_str_eq(offer_context_keys()->e[0].kid, "");
        ck_assert_str_eq(offer_context_keys()->e[0].secret,
                         env && *env ? env : "sandbox-offer-context-key-change-me");
    }
    ck_assert_ptr_eq(offer_context_keys(), keys_get_set("MILLOM_OFFER_CONTEXT_KEY"));

    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    offer_context c = sample_context();
    char *token = offer_context_sign(&c, ks(hex));
    ck_assert_int_eq(offer_context_verify(token, ks(hex), NOW, NULL), 0);
    ck_assert_int_eq(
        offer_context_verify(token, ks("sandbox-offer-context-key-change-me"), NOW, NULL), -1);
    free(token);
}
END_TEST

/* A key set from a list (shared/contracts/keys.h), default filled in. */
static void set_of(keys_set *set, const char *list, const char *default_secret) {
    int at;
    char err[256];
    ck_assert_msg(keys_parse_list("MILLOM_OFFER_CONTEXT_KEYS", list, set, &at, err, sizeof err) ==
                      0,
                  "%s", err);
    if (at >= 0) snprintf(set->e[at].secret, sizeof set->e[at].secret, "%s", default_secret);
}

/* Rotation: a token of the single key of before (no key id) verifies
 * while that key is listed as default; key 2's tokens carry "k2." and
 * verify under every set that has k2; a retired key's tokens, a token
 * moved under another id or stripped of its id, are refused. */
START_TEST(test_offer_context_key_ids) {
    offer_context c = sample_context(), out;
    keys_set both, two, relabelled;
    set_of(&both, "k2:key-two,default", KEY);
    set_of(&two, "k2:key-two", NULL);
    char *old = offer_context_sign(&c, ks(KEY));
    ck_assert_ptr_nonnull(old);
    ck_assert_ptr_null(strchr(old, '.'));
    char *new_ = offer_context_sign(&c, &both);
    ck_assert_ptr_nonnull(new_);
    ck_assert_int_eq(strncmp(new_, "k2.", 3), 0);
    ck_assert_int_eq(offer_context_verify(old, &both, NOW, &out), 0);
    assert_context_eq(&out, &c);
    ck_assert_int_eq(offer_context_verify(new_, &both, NOW, &out), 0);
    assert_context_eq(&out, &c);
    ck_assert_int_eq(offer_context_verify(new_, &two, NOW, &out), 0);
    ck_assert_int_eq(offer_context_verify(new_, &two, c.expires_at_ms, &out), -2);
    ck_assert_int_eq(offer_context_verify(old, &two, NOW, &out), -1);     /* key 1 retired */
    ck_assert_int_eq(offer_context_verify(new_, ks(KEY), NOW, &out), -1); /* k2 unknown */
    /* A token sealed the way every token was before key ids (sign_raw: the
     * layout and AAD of before, on its own) verifies under default. */
    char *before = sign_raw("{\"p\":\"plan-5gb-30d\",\"s\":\"924542610003\",\"sp\":\"acme-sp\","
                            "\"o\":\"jazz\",\"a\":16050,\"c\":\"PKR\",\"e\":1700000060000}",
                            KEY);
    ck_assert_int_eq(offer_context_verify(before, &both, NOW, &out), 0);
    assert_context_eq(&out, &c);
    ck_assert_int_eq(offer_context_verify(before, &two, NOW, &out), -1);
    free(before);

    set_of(&relabelled, "k3:key-two,default", "key-two");
    char *moved = malloc(strlen(new_) + 1);
    ck_assert_ptr_nonnull(moved);
    sprintf(moved, "k3.%s", new_ + 3);
    ck_assert_int_eq(offer_context_verify(moved, &relabelled, NOW, &out), -1);
    ck_assert_int_eq(offer_context_verify(new_ + 3, &relabelled, NOW, &out), -1);
    sprintf(moved, ".%s", new_ + 3);
    ck_assert_int_eq(offer_context_verify(moved, &both, NOW, &out), -1);
    sprintf(moved, "k%%.%s", new_ + 3);
    ck_assert_int_eq(offer_context_verify(moved, &both, NOW, &out), -1);
    ck_assert_int_eq(offer_context_verify("k2.", &both, NOW, &out), -1);
    free(moved);
    keys_set none;
    memset(&none, 0, sizeof none);
    ck_assert_ptr_null(offer_context_sign(&c, &none));
    ck_assert_int_eq(offer_context_verify(old, &none, NOW, &out), -1);
    free(old);
    free(new_);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_offer_context");
    TCase *tc = tcase_create("offer_context");
    tcase_add_test(tc, test_offer_context_round_trip);
    tcase_add_test(tc, test_offer_context_claims_then_seal);
    tcase_add_test(tc, test_offer_context_foreign_provider);
    tcase_add_test(tc, test_offer_context_max_fields);
    tcase_add_test(tc, test_offer_context_sign_rejects);
    tcase_add_test(tc, test_offer_context_tampered);
    tcase_add_test(tc, test_offer_context_expiry);
    tcase_add_test(tc, test_offer_context_garbage);
    tcase_add_test(tc, test_offer_context_bad_claims);
    tcase_add_test(tc, test_offer_context_key);
    tcase_add_test(tc, test_offer_context_key_ids);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
