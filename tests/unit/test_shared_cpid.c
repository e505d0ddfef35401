/* CPIDs: issue, decode, expiry (injected clock), tampering, keys, and key
 * ids for rotation (an old CPID without one still decodes). */
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
    ck_assert_uint_eq(a.n, 1);
    ck_assert_str_eq(a.keys[0].kid, "");
    ck_assert_int_eq(a.keys[0].key[0], 0x00);
    ck_assert_int_eq(a.keys[0].key[1], 0x11);
    ck_assert_int_eq(a.keys[0].key[31], 0xff);
    ck_assert_int_eq(a.ttl_s, CPID_DEFAULT_TTL_S);
    ck_assert_int_eq(cpid_config_init(&b, "a passphrase", -5), 0);
    ck_assert_int_eq(cpid_config_init(&c, "a passphrase", 7), 0);
    ck_assert_int_eq(memcmp(b.keys[0].key, c.keys[0].key, 32), 0);
    ck_assert_int_eq(c.ttl_s, 7);
    ck_assert_int_ne(memcmp(a.keys[0].key, b.keys[0].key, 32), 0);
    ck_assert_int_eq(cpid_config_init(&c, "", 0), -1);
    /* The sandbox key is the passphrase default. */
    ck_assert_int_eq(cpid_config_init(&c, CPID_SANDBOX_KEY, 0), 0);
    ck_assert_int_eq(cpid_config_init(&b, NULL, 0), 0);
    ck_assert_int_eq(memcmp(b.keys[0].key, c.keys[0].key, 32), 0);
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

/* A key set from a list (shared/contracts/keys.h), default filled in. */
static void set_of(keys_set *set, const char *list, const char *default_secret) {
    int at;
    char err[256];
    ck_assert_msg(keys_parse_list("MILLOM_CPID_KEYS", list, set, &at, err, sizeof err) == 0, "%s",
                  err);
    if (at >= 0) snprintf(set->e[at].secret, sizeof set->e[at].secret, "%s", default_secret);
}

/* Rotation: key 1 (the single key of before) issues; key 2 is added and
 * current: its CPIDs carry "k2.", key 1's still decode; key 1 removed:
 * they are refused, key 2's still decode. */
START_TEST(key_ids_rotate) {
    cpid_config one, both, two;
    ck_assert_int_eq(cpid_config_init(&one, "key one", 100), 0);
    keys_set set;
    set_of(&set, "k2:key-two,default", "key one");
    ck_assert_int_eq(cpid_config_init_set(&both, &set, 100), 0);
    ck_assert_uint_eq(both.n, 2);
    ck_assert_str_eq(both.keys[0].kid, "k2");
    set_of(&set, "k2:key-two", NULL);
    ck_assert_int_eq(cpid_config_init_set(&two, &set, 100), 0);

    char old[CPID_MAX_LEN], new_[CPID_MAX_LEN];
    ck_assert_int_eq(cpid_issue(&one, "924542610003", "sp", "41006", T0, old, sizeof old), 0);
    ck_assert_ptr_null(strchr(old, '.')); /* the format of before key ids */
    ck_assert_int_eq(cpid_issue(&both, "924542610003", "sp", "41006", T0, new_, sizeof new_), 0);
    ck_assert_int_eq(strncmp(new_, "k2.", 3), 0);
    ck_assert_str_eq(strrchr(new_, ','), ",41006");
    cpid_info info;
    ck_assert_int_eq(cpid_decode(&both, old, T0 + 1, &info), CPID_OK);
    ck_assert_str_eq(info.msisdn, "924542610003");
    ck_assert_int_eq(cpid_decode(&both, new_, T0 + 1, &info), CPID_OK);
    ck_assert_str_eq(info.provider, "sp");
    ck_assert_int_eq(cpid_decode(&two, new_, T0 + 1, &info), CPID_OK);
    ck_assert_int_eq(cpid_decode(&two, old, T0 + 1, &info), CPID_TAMPERED);  /* key 1 retired */
    ck_assert_int_eq(cpid_decode(&one, new_, T0 + 1, &info), CPID_TAMPERED); /* k2 unknown */
    ck_assert_int_eq(cpid_decode(&two, new_, T0 + 100000, &info), CPID_EXPIRED);

    /* The key id is authenticated: the same ciphertext under another id
     * (even one naming the same secret), or without its id, is refused. */
    cpid_config relabelled;
    set_of(&set, "k3:key-two,default", "key-two");
    /* (the same secret twice is refused by the resolver, not the parser) */
    ck_assert_int_eq(cpid_config_init_set(&relabelled, &set, 100), 0);
    char moved[CPID_MAX_LEN + 8];
    snprintf(moved, sizeof moved, "k3.%s", new_ + 3);
    ck_assert_int_eq(cpid_decode(&relabelled, moved, T0 + 1, &info), CPID_TAMPERED);
    ck_assert_int_eq(cpid_decode(&relabelled, new_ + 3, T0 + 1, &info), CPID_TAMPERED);
    /* Shapes of a key id that are no key id. */
    snprintf(moved, sizeof moved, ".%s", new_ + 3);
    ck_assert_int_eq(cpid_decode(&both, moved, T0 + 1, &info), CPID_MALFORMED);
    snprintf(moved, sizeof moved, "k+2.%s", new_ + 3);
    ck_assert_int_eq(cpid_decode(&both, moved, T0 + 1, &info), CPID_MALFORMED);
    ck_assert_int_eq(cpid_decode(&both, "k2.,41006", T0 + 1, &info), CPID_MALFORMED);
    ck_assert_int_eq(cpid_decode(&both, "k2.k2.AAAA,41006", T0 + 1, &info), CPID_MALFORMED);

    /* A CPID issued before key ids existed (the sandbox key, for
     * 924542610003, a minute before 1800000000000 ms; the fuzz seed
     * validate-cpid) decodes under a set that lists default, and only
     * there. */
    static const char before[] =
        "kJFKXCvvlQyNzPKqrlNpUrU8gvZrGyfPjMsApi1KyGAtqXToixdXkYn5XdugnksK6S"
        "Ts1L9zddW6Xb3w69qPK20HfU_RFFy30Q,41006";
    set_of(&set, "k2:key-two,default", CPID_SANDBOX_KEY);
    ck_assert_int_eq(cpid_config_init_set(&relabelled, &set, 100), 0);
    ck_assert_int_eq(cpid_decode(&relabelled, before, 1800000000000LL, &info), CPID_OK);
    ck_assert_str_eq(info.msisdn, "924542610003");
    ck_assert_str_eq(info.provider, "testserviceprovider");
    set_of(&set, "k2:key-two", NULL);
    ck_assert_int_eq(cpid_config_init_set(&relabelled, &set, 100), 0);
    ck_assert_int_eq(cpid_decode(&relabelled, before, 1800000000000LL, &info), CPID_TAMPERED);

    /* The longest key id with the longest provider still fits. */
    set_of(&set, "abcdefghijklmnop:key", NULL);
    ck_assert_int_eq(cpid_config_init_set(&two, &set, 100), 0);
    char provider[65];
    memset(provider, 'p', 64);
    provider[64] = '\0';
    ck_assert_int_eq(cpid_issue(&two, "924542610003123", provider, "410061", T0, new_, sizeof new_),
                     0);
    ck_assert_int_eq(cpid_decode(&two, new_, T0 + 1, &info), CPID_OK);
    ck_assert_str_eq(info.provider, provider);
    /* Empty sets and keys are refused. */
    memset(&set, 0, sizeof set);
    ck_assert_int_eq(cpid_config_init_set(&two, &set, 100), -1);
    ck_assert_int_eq(cpid_config_init_set(&two, NULL, 100), -1);
    set.n = 1; /* one entry with an empty secret */
    ck_assert_int_eq(cpid_config_init_set(&two, &set, 100), -1);
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
    tcase_add_test(tc, key_ids_rotate);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
