/* CPIDs: issue, decode, expiry (injected clock), tampering, keys. */
#include "shared/contracts/cpid.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1800000000000LL

static cpid_config cfg;

static void setup(void) { ck_assert_int_eq(cpid_config_init(&cfg, NULL, 100), 0); }

START_TEST(keys_and_ttl) {
    cpid_config a, b, c;
    ck_assert_int_eq(cpid_config_init(&a,
                                      "00112233445566778899aabbccddeeff"
                                      "00112233445566778899AABBCCDDEEFF",
                                      0),
                     0);
    ck_assert_int_eq(a.key[0], 0x00);
    ck_assert_int_eq(a.key[1], 0x11);
    ck_assert_int_eq(a.key[31], 0xff);
    ck_assert_int_eq(a.ttl_s, CPID_DEFAULT_TTL_S);
    ck_assert_int_eq(cpid_config_init(&b, "a passphrase", -5), 0);
    ck_assert_int_eq(cpid_config_init(&c, "a passphrase", 7), 0);
    ck_assert_int_eq(memcmp(b.key, c.key, 32), 0);
    ck_assert_int_eq(c.ttl_s, 7);
    ck_assert_int_ne(memcmp(a.key, b.key, 32), 0);
    ck_assert_int_eq(cpid_config_init(&c, "", 0), -1);
    /* The sandbox key is the passphrase default. */
    ck_assert_int_eq(cpid_config_init(&c, CPID_SANDBOX_KEY, 0), 0);
    ck_assert_int_eq(cpid_config_init(&b, NULL, 0), 0);
    ck_assert_int_eq(memcmp(b.key, c.key, 32), 0);
}
END_TEST

START_TEST(every_cpid_is_new_and_decodes) {
    char a[CPID_MAX_LEN], b[CPID_MAX_LEN];
    ck_assert_int_eq(
        cpid_issue(&cfg, "924542610003", "testserviceprovider", "41006", T0, a, sizeof a), 0);
    ck_assert_int_eq(
        cpid_issue(&cfg, "924542610003", "testserviceprovider", "41006", T0, b, sizeof b), 0);
    ck_assert_str_ne(a, b);
    ck_assert_ptr_nonnull(strstr(a, ",41006"));
    ck_assert_str_eq(strrchr(a, ','), ",41006");
    /* base64url body: path-safe, no '/', '+' or padding */
    ck_assert_ptr_null(strpbrk(a, "/+= %"));
    const char *both[] = {a, b};
    for (int i = 0; i < 2; i++) {
        cpid_info info;
        ck_assert_int_eq(cpid_decode(&cfg, both[i], T0 + 99999, &info), CPID_OK);
        ck_assert_str_eq(info.msisdn, "924542610003");
        ck_assert_str_eq(info.provider, "testserviceprovider");
        ck_assert_str_eq(info.mccmnc, "41006");
        ck_assert_int_eq(info.issued_ms, T0);
        ck_assert_int_eq(info.expires_ms, T0 + 100000);
    }
}
END_TEST

START_TEST(expiry_uses_the_injected_clock) {
    char a[CPID_MAX_LEN];
    ck_assert_int_eq(cpid_issue(&cfg, "924542610003", "sp", "41006", T0, a, sizeof a), 0);
    cpid_info info;
    ck_assert_int_eq(cpid_decode(&cfg, a, T0, &info), CPID_OK);
    ck_assert_int_eq(cpid_decode(&cfg, a, T0 + 100000 - 1, &info), CPID_OK);
    ck_assert_int_eq(cpid_decode(&cfg, a, T0 + 100000, &info), CPID_EXPIRED);
    ck_assert_str_eq(info.provider, "sp"); /* still says whose it was */
    /* Issued in the future (beyond clock skew): refused too. */
    ck_assert_int_eq(cpid_decode(&cfg, a, T0 - 3600000, &info), CPID_EXPIRED);
    /* The TTL is the one it was issued with, not today's setting. */
    cpid_config longer = cfg;
    longer.ttl_s = 1000;
    ck_assert_int_eq(cpid_decode(&longer, a, T0 + 100000, &info), CPID_EXPIRED);
}
END_TEST

START_TEST(tampering_is_detected) {
    char a[CPID_MAX_LEN], t[CPID_MAX_LEN];
    ck_assert_int_eq(
        cpid_issue(&cfg, "924542610003", "testserviceprovider", "41006", T0, a, sizeof a), 0);
    size_t body = (size_t)(strrchr(a, ',') - a);
    cpid_info info;
    for (size_t i = 0; i < body; i++) {
        strcpy(t, a);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        cpid_status s = cpid_decode(&cfg, t, T0, &info);
        ck_assert_msg(s == CPID_TAMPERED || s == CPID_MALFORMED, "position %zu accepted", i);
        ck_assert_str_eq(info.msisdn, "");
    }
    /* Another operator's suffix: authenticated data, so refused. */
    strcpy(t, a);
    strcpy(strrchr(t, ',') + 1, "41001");
    ck_assert_int_eq(cpid_decode(&cfg, t, T0, &info), CPID_TAMPERED);
    /* Another key. */
    cpid_config other;
    cpid_config_init(&other, "another key", 100);
    ck_assert_int_eq(cpid_decode(&other, a, T0, &info), CPID_TAMPERED);
    /* Truncated. */
    strcpy(t, a);
    memmove(t + body - 4, t + body, strlen(t + body) + 1);
    ck_assert_int_ne(cpid_decode(&cfg, t, T0, &info), CPID_OK);
}
END_TEST

START_TEST(malformed_inputs) {
    cpid_info info;
    const char *bad[] = {"",           ",",           "abc",         "abc,",      "abc,4100x",
                         "abc,4100",   "abc,4100611", ",41006",      "a b,41006", "abc!,41006",
                         "YWJj,41006", "a=bc,41006",  "abc===,41006"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(cpid_decode(&cfg, bad[i], T0, &info) == CPID_MALFORMED, "'%s'", bad[i]);
    ck_assert_int_eq(cpid_decode(&cfg, NULL, T0, &info), CPID_MALFORMED);
    char big[600];
    memset(big, 'A', sizeof big);
    strcpy(big + 500, ",41006");
    ck_assert_int_eq(cpid_decode(&cfg, big, T0, &info), CPID_MALFORMED);
    char out[CPID_MAX_LEN];
    ck_assert_int_eq(cpid_issue(&cfg, "1234567890123456", "sp", "41006", T0, out, sizeof out), -1);
    ck_assert_int_eq(cpid_issue(&cfg, "", "sp", "41006", T0, out, sizeof out), -1);
    ck_assert_int_eq(cpid_issue(&cfg, "924542610003", "", "41006", T0, out, sizeof out), -1);
    ck_assert_int_eq(cpid_issue(&cfg, "924542610003", "sp", "41x06", T0, out, sizeof out), -1);
    ck_assert_int_eq(cpid_issue(&cfg, "924542610003", "sp", "41006", T0, out, 20), -1);
}
END_TEST

START_TEST(standard_alphabet_is_accepted) {
    /* A CPID rewritten to standard base64 (with padding) still decodes. */
    char a[CPID_MAX_LEN], s[CPID_MAX_LEN + 4];
    cpid_info info;
    int seen_special = 0;
    for (int round = 0; round < 50 && !seen_special; round++) {
        ck_assert_int_eq(cpid_issue(&cfg, "924542610003", "sp", "41006", T0, a, sizeof a), 0);
        size_t body = (size_t)(strrchr(a, ',') - a), o = 0;
        for (size_t i = 0; i < body; i++) {
            s[o++] = a[i] == '-' ? '+' : a[i] == '_' ? '/' : a[i];
            if (a[i] == '-' || a[i] == '_') seen_special = 1;
        }
        while (o % 4) s[o++] = '=';
        strcpy(s + o, a + body);
        ck_assert_int_eq(cpid_decode(&cfg, s, T0, &info), CPID_OK);
        ck_assert_str_eq(info.msisdn, "924542610003");
    }
    ck_assert(seen_special);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared cpid");
    TCase *tc = tcase_create("cpid");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, keys_and_ttl);
    tcase_add_test(tc, every_cpid_is_new_and_decodes);
    tcase_add_test(tc, expiry_uses_the_injected_clock);
    tcase_add_test(tc, tampering_is_detected);
    tcase_add_test(tc, malformed_inputs);
    tcase_add_test(tc, standard_alphabet_is_accepted);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
