/* Standard Webhooks signatures (shared/contracts/webhook_signature.c):
 * known vectors computed outside this code, the secret format, signing
 * with two keys (rotation) and every way a verification refuses. Works
 * with CK_FORK=no. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "shared/contracts/webhook_signature.h"

/* Bytes 0x00..0x1f as a secret. The signature below was computed by hand:
 *   printf '%s' '42.1800000000.{"transactionId":"t1"}' |
 *     openssl dgst -sha256 -mac HMAC -binary \
 *       -macopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f |
 *     base64
 * and agrees with Python's hmac.new(key, msg, "sha256"). */
#define SECRET_A "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define BODY_A "{\"transactionId\":\"t1\"}"
#define SIG_A "v1,X17iyrvXeQMjPPg751iAyRfnpoksc1X2mjf/WaOy8dA="
#define TS_A 1800000000LL

/* The example of the Standard Webhooks reference libraries (24-byte key),
 * checked here with the same openssl line. */
#define SECRET_REF "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define ID_REF "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define BODY_REF "{\"test\": 2432232314}"
#define SIG_REF "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* Another 32-byte key (0x20..0x3f), for rotation and wrong-key checks. */
#define SECRET_B "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

static webhook_key key(const char *secret) {
    webhook_key k;
    char err[160];
    ck_assert_msg(webhook_key_parse(secret, &k, err, sizeof err) == 0, "%s: %s", secret, err);
    return k;
}

static webhook_verdict verify(const webhook_key *keys, size_t n, const char *id, const char *ts,
                              const char *sig, const char *body, long long now) {
    return webhook_verify(keys, n, id, ts, sig, body, strlen(body), now, WEBHOOK_TOLERANCE_S);
}

START_TEST(known_vectors) {
    webhook_key a = key(SECRET_A);
    ck_assert_uint_eq(a.len, 32);
    char header[WEBHOOK_SIGNATURE_HEADER_MAX];
    ck_assert_int_eq(
        webhook_signature_header(&a, 1, "42", TS_A, BODY_A, strlen(BODY_A), header, sizeof header),
        0);
    ck_assert_str_eq(header, SIG_A);
    ck_assert_int_eq(verify(&a, 1, "42", "1800000000", SIG_A, BODY_A, TS_A), WEBHOOK_VERIFIED);

    webhook_key ref = key(SECRET_REF);
    ck_assert_uint_eq(ref.len, 24);
    ck_assert_int_eq(webhook_signature_header(&ref, 1, ID_REF, 1614265330LL, BODY_REF,
                                              strlen(BODY_REF), header, sizeof header),
                     0);
    ck_assert_str_eq(header, SIG_REF);
    ck_assert_int_eq(verify(&ref, 1, ID_REF, "1614265330", SIG_REF, BODY_REF, 1614265330LL),
                     WEBHOOK_VERIFIED);
    webhook_key_clear(&a);
    ck_assert_uint_eq(a.len, 0);
}
END_TEST

START_TEST(secrets_refused) {
    static const char *bad[] = {
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",         /* no prefix */
        "whsec_",                                               /* no key */
        "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",    /* not padded */
        "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", /* a newline */
        "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8=",   /* base64url */
        "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRY=",               /* 23 bytes */
        "whsec_"
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"
        "P0A=", /* 65 bytes */
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        webhook_key k;
        char err[160] = "";
        ck_assert_msg(webhook_key_parse(bad[i], &k, err, sizeof err) == -1, "accepted %s",
                      bad[i] ? bad[i] : "NULL");
        ck_assert(err[0] != '\0');
        /* the message never repeats the secret */
        ck_assert(!bad[i] || strlen(bad[i]) <= 6 || !strstr(err, bad[i] + 6));
        ck_assert_uint_eq(k.len, 0);
    }
}
END_TEST

START_TEST(rotation_signs_with_both) {
    webhook_key keys[2] = {key(SECRET_A), key(SECRET_B)};
    char header[WEBHOOK_SIGNATURE_HEADER_MAX];
    ck_assert_int_eq(webhook_signature_header(keys, 2, "42", TS_A, BODY_A, strlen(BODY_A), header,
                                              sizeof header),
                     0);
    /* the old key's signature first, then the new one's, space-separated */
    ck_assert_uint_eq(strlen(header), 2 * WEBHOOK_SIGNATURE_LEN + 1);
    ck_assert(strncmp(header, SIG_A " v1,", strlen(SIG_A) + 4) == 0);
    /* a receiver that knows only the old key, only the new one, or both */
    ck_assert_int_eq(verify(&keys[0], 1, "42", "1800000000", header, BODY_A, TS_A),
                     WEBHOOK_VERIFIED);
    ck_assert_int_eq(verify(&keys[1], 1, "42", "1800000000", header, BODY_A, TS_A),
                     WEBHOOK_VERIFIED);
    ck_assert_int_eq(verify(keys, 2, "42", "1800000000", header, BODY_A, TS_A), WEBHOOK_VERIFIED);
    /* the new key's signature alone is not the old key's */
    ck_assert_int_eq(
        verify(&keys[0], 1, "42", "1800000000", header + WEBHOOK_SIGNATURE_LEN + 1, BODY_A, TS_A),
        WEBHOOK_NO_MATCH);
    /* out too small for two */
    char small[WEBHOOK_SIGNATURE_LEN + 1];
    ck_assert_int_eq(
        webhook_signature_header(keys, 2, "42", TS_A, BODY_A, strlen(BODY_A), small, sizeof small),
        -1);
    ck_assert_int_eq(webhook_signature_header(keys, 0, "42", TS_A, BODY_A, strlen(BODY_A), header,
                                              sizeof header),
                     -1);
    ck_assert_int_eq(webhook_signature_header(keys, 1, "4.2", TS_A, BODY_A, strlen(BODY_A), header,
                                              sizeof header),
                     -1);
}
END_TEST

START_TEST(refusals) {
    webhook_key a = key(SECRET_A), b = key(SECRET_B);
    const char *ts = "1800000000";
    /* tampered body, id or timestamp (the signature no longer fits) */
    ck_assert_int_eq(verify(&a, 1, "42", ts, SIG_A, "{\"transactionId\":\"t2\"}", TS_A),
                     WEBHOOK_NO_MATCH);
    ck_assert_int_eq(verify(&a, 1, "43", ts, SIG_A, BODY_A, TS_A), WEBHOOK_NO_MATCH);
    ck_assert_int_eq(verify(&a, 1, "42", "1800000001", SIG_A, BODY_A, TS_A), WEBHOOK_NO_MATCH);
    /* another key */
    ck_assert_int_eq(verify(&b, 1, "42", ts, SIG_A, BODY_A, TS_A), WEBHOOK_NO_MATCH);
    /* the timestamp's window: 5 minutes either way */
    ck_assert_int_eq(verify(&a, 1, "42", ts, SIG_A, BODY_A, TS_A + 300), WEBHOOK_VERIFIED);
    ck_assert_int_eq(verify(&a, 1, "42", ts, SIG_A, BODY_A, TS_A + 301), WEBHOOK_TIMESTAMP_TOO_OLD);
    ck_assert_int_eq(verify(&a, 1, "42", ts, SIG_A, BODY_A, TS_A - 300), WEBHOOK_VERIFIED);
    ck_assert_int_eq(verify(&a, 1, "42", ts, SIG_A, BODY_A, TS_A - 301), WEBHOOK_TIMESTAMP_TOO_NEW);
    /* malformed or missing headers */
    ck_assert_int_eq(verify(&a, 1, NULL, ts, SIG_A, BODY_A, TS_A), WEBHOOK_MISSING_HEADER);
    ck_assert_int_eq(verify(&a, 1, "42", "", SIG_A, BODY_A, TS_A), WEBHOOK_MISSING_HEADER);
    ck_assert_int_eq(verify(&a, 1, "42", ts, NULL, BODY_A, TS_A), WEBHOOK_MISSING_HEADER);
    ck_assert_int_eq(verify(&a, 1, "4.2", ts, SIG_A, BODY_A, TS_A), WEBHOOK_BAD_ID);
    const char *bad_ts[] = {"+1800000000", "1800000000 ", "18e8", "-5", "1800000000000"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof *bad_ts; i++)
        ck_assert_msg(verify(&a, 1, "42", bad_ts[i], SIG_A, BODY_A, TS_A) == WEBHOOK_BAD_TIMESTAMP,
                      "timestamp \"%s\"", bad_ts[i]);
    /* other versions and junk around a good signature are skipped */
    ck_assert_int_eq(verify(&a, 1, "42", ts, "v1a,abc  junk " SIG_A " v2,x", BODY_A, TS_A),
                     WEBHOOK_VERIFIED);
    ck_assert_int_eq(
        verify(&a, 1, "42", ts, "v2,X17iyrvXeQMjPPg751iAyRfnpoksc1X2mjf/WaOy8dA=", BODY_A, TS_A),
        WEBHOOK_NO_MATCH);
    ck_assert_int_eq(
        verify(&a, 1, "42", ts, "v1,X17iyrvXeQMjPPg751iAyRfnpoksc1X2mjf/WaOy8dA", BODY_A, TS_A),
        WEBHOOK_NO_MATCH);
    ck_assert_int_eq(verify(&a, 0, "42", ts, SIG_A, BODY_A, TS_A), WEBHOOK_NO_MATCH);
    /* only the first 16 entries count */
    char many[2048] = "";
    for (int i = 0; i < 16; i++) strcat(many, "v0,x ");
    strcat(many, SIG_A);
    ck_assert_int_eq(verify(&a, 1, "42", ts, many, BODY_A, TS_A), WEBHOOK_NO_MATCH);
    ck_assert_str_eq(webhook_verdict_text(WEBHOOK_TIMESTAMP_TOO_OLD),
                     "webhook-timestamp is too old");
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_webhook_signature");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, known_vectors);
    tcase_add_test(tc, secrets_refused);
    tcase_add_test(tc, rotation_signs_with_both);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
