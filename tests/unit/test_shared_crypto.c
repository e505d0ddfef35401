/* Unit tests of crypto helpers: HMAC vectors, base64 and base64url, UUIDs (also after a fork), random bytes and constant-time compare (shared/plumbing/crypto.c). Runs with and without CK_FORK. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared/plumbing/crypto.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void hex(const unsigned char *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

START_TEST(test_hmac_rfc4231) {
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

/* One base64 vector: raw bytes and their encoding. */
typedef struct {
    const char *raw;
    size_t len;
    const char *enc;
} b64_case;

/* Each case encodes to its text and decodes back to its bytes. */
static void round_trips(const b64_case *cases, size_t n, char *(*encode)(const void *, size_t),
                        unsigned char *(*decode)(const char *, size_t *)) {
    for (size_t i = 0; i < n; i++) {
        char *enc = encode(cases[i].raw, cases[i].len);
        ck_assert_ptr_nonnull(enc);
        ck_assert_str_eq(enc, cases[i].enc);
        free(enc);
        size_t len = 99;
        unsigned char *dec = decode(cases[i].enc, &len);
        ck_assert_ptr_nonnull(dec);
        ck_assert_uint_eq(len, cases[i].len);
        ck_assert(memcmp(dec, cases[i].raw, len) == 0);
        free(dec);
    }
}

START_TEST(test_b64url_vectors) {
    static const b64_case cases[] = {
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
    round_trips(cases, N_ELEMS(cases), crypto_b64url_encode, crypto_b64url_decode);
    char *enc = crypto_b64url_encode(NULL, 0);
    ck_assert_str_eq(enc, "");
    free(enc);
    ck_assert_ptr_null(crypto_b64url_encode(NULL, 1));
}
END_TEST

START_TEST(test_b64url_all_bytes) {
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    /* Every prefix length, so all three remainders and all byte values. */
    for (size_t n = 0; n <= sizeof all; n++) {
        const unsigned char *src = all + (sizeof all - n); /* vary the tail too */
        char *enc = crypto_b64url_encode(src, n);
        ck_assert_ptr_nonnull(enc);
        ck_assert_uint_eq(strlen(enc), (4 * n + 2) / 3);
        ck_assert_msg(
            strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
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

START_TEST(test_b64url_rejects) {
    static const char *bad[] = {
        "Z",                                    /* impossible length */
        "Zm9vY",                                /* impossible length */
        "Zg==",                                 /* padding */
        "Zg=",                                  /* padding */
        "Zm9v====", "Zm+v",                     /* standard alphabet */
        "Zm/v",     "Zm 9v",                    /* whitespace */
        " Zm9v",    "Zm9v\n",    "Zm9v!", "Zh", /* non-zero unused bits: not canonical */
        "Zm9",                                  /* non-zero unused bits */
        "é",        "Zm9v.Zm9v",
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

/* Standard base64 (RFC 4648 §4 vectors), as Standard Webhooks secrets and
 * signatures use it. */
START_TEST(test_b64_vectors_and_rejects) {
    static const b64_case cases[] = {
        {"", 0, ""},
        {"f", 1, "Zg=="},
        {"fo", 2, "Zm8="},
        {"foo", 3, "Zm9v"},
        {"foob", 4, "Zm9vYg=="},
        {"fooba", 5, "Zm9vYmE="},
        {"foobar", 6, "Zm9vYmFy"},
        {"\xfb\xff", 2, "+/8="},
        {"\xff\xff\xff", 3, "////"},
    };
    round_trips(cases, N_ELEMS(cases), crypto_b64_encode, crypto_b64_decode);
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    for (size_t n = 0; n <= sizeof all; n++) {
        char *enc = crypto_b64_encode(all + (sizeof all - n), n);
        ck_assert_ptr_nonnull(enc);
        ck_assert_uint_eq(strlen(enc), 4 * ((n + 2) / 3));
        size_t len = 0;
        unsigned char *dec = crypto_b64_decode(enc, &len);
        ck_assert_ptr_nonnull(dec);
        ck_assert_uint_eq(len, n);
        ck_assert(memcmp(dec, all + (sizeof all - n), n) == 0);
        free(dec);
        free(enc);
    }
    static const char *bad[] = {
        "Zg",    "Zg=",    "Zm8",   /* not padded to a multiple of 4 */
        "Z===",  "====",   "Zg=a",  /* padding in the wrong place */
        "Zm-v",  "Zm_v",            /* the url alphabet */
        "Zh==",  "Zm9=",            /* non-zero unused bits: not canonical */
        " Zm9v", "Zm9v\n", "Zm 9v", /* whitespace */
        "Zm9v=",                    /* a stray '=' */
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        ck_assert_msg(crypto_b64_decode(bad[i], NULL) == NULL, "accepted \"%s\"", bad[i]);
    ck_assert_ptr_null(crypto_b64_decode(NULL, NULL));
    ck_assert_ptr_null(crypto_b64_encode(NULL, 1));
}
END_TEST

static int cmp_str(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

START_TEST(test_uuid) {
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
                ck_assert_msg(strchr("0123456789abcdef", u[j]) != NULL && u[j] != '\0', "%s", u);
        }
        ck_assert_msg(u[14] == '4', "version in %s", u);
        ck_assert_msg(strchr("89ab", u[19]) != NULL, "variant in %s", u);
    }
    qsort(ids, N, sizeof ids[0], cmp_str);
    for (int i = 1; i < N; i++) ck_assert_str_ne(ids[i - 1], ids[i]);
}
END_TEST

/* Version 7: the first 48 bits are the Unix time in milliseconds, so ids
 * made in a later millisecond sort after earlier ones, and ids of one
 * millisecond still differ. */
START_TEST(test_uuid_v7) {
    enum { N = 2000 };
    static char ids[N][37];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long before =
        (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
    for (int i = 0; i < N; i++) {
        crypto_uuid_v7(ids[i]);
        const char *u = ids[i];
        ck_assert_uint_eq(strlen(u), 36);
        ck_assert_msg(u[8] == '-' && u[13] == '-' && u[18] == '-' && u[23] == '-', "%s", u);
        ck_assert_msg(u[14] == '7', "version in %s", u);
        ck_assert_msg(strchr("89ab", u[19]) != NULL, "variant in %s", u);
        if (i > 0) ck_assert_msg(strncmp(ids[i - 1], u, 13) <= 0, "%s after %s", u, ids[i - 1]);
    }
    char hex[13];
    memcpy(hex, ids[0], 8);
    memcpy(hex + 8, ids[0] + 9, 4);
    hex[12] = '\0';
    unsigned long long ms = strtoull(hex, NULL, 16);
    ck_assert_uint_ge(ms, before);
    ck_assert_uint_le(ms, before + 60000);
    struct timespec pause = {0, 3 * 1000 * 1000};
    nanosleep(&pause, NULL);
    char later[37];
    crypto_uuid_v7(later);
    ck_assert_int_lt(strcmp(ids[N - 1], later), 0);
    qsort(ids, N, sizeof ids[0], cmp_str);
    for (int i = 1; i < N; i++) ck_assert_str_ne(ids[i - 1], ids[i]);
}
END_TEST

/* crypto_uuid hands out a per-thread pool of random bytes: a forked child
 * must not make the ids its parent makes next from the same pool. */
START_TEST(test_uuid_after_fork) {
    char before[37], parent_next[37], child_next[37] = "";
    crypto_uuid(before); /* the pool now holds bytes for later ids */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char id[37];
        crypto_uuid(id);
        ssize_t n = write(fds[1], id, sizeof id);
        _exit(n == (ssize_t)sizeof id ? 0 : 1);
    }
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], child_next, sizeof child_next), (ssize_t)sizeof child_next);
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    crypto_uuid(parent_next);
    ck_assert_str_ne(parent_next, child_next);
    ck_assert_str_ne(before, child_next);
}
END_TEST

START_TEST(test_random_and_equal) {
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

static int cmp_iv(const void *a, const void *b) { return memcmp(a, b, CRYPTO_AEAD_IV_LEN); }

/* AES-256-GCM: a seal opens with the same key and associated data, and
 * with nothing else; every seal has a nonce of its own, also when the
 * nonces and the uuids come from the same per-thread pool of random
 * bytes (a GCM nonce used twice under one key gives the key away). */
START_TEST(test_aead_seal_open_and_fresh_nonces) {
    enum { N = 3000 };
    unsigned char key[CRYPTO_AEAD_KEY_LEN], other[CRYPTO_AEAD_KEY_LEN];
    ck_assert_int_eq(crypto_aead_key_from_text("a passphrase, hashed", key), 0);
    ck_assert_int_eq(crypto_aead_key_from_text("another passphrase", other), 0);
    static const char msg[] = "{\"p\":\"plan\",\"a\":500}";
    const size_t len = sizeof msg - 1;
    static unsigned char ivs[N][CRYPTO_AEAD_IV_LEN];
    unsigned char blob[sizeof msg + CRYPTO_AEAD_OVERHEAD], out[sizeof msg];
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(crypto_aead_seal(key, "aad", 3, msg, len, blob),
                         (int)(len + CRYPTO_AEAD_OVERHEAD));
        memcpy(ivs[i], blob, CRYPTO_AEAD_IV_LEN);
        if (i % 7 == 0) { /* uuids drawn from the same pool in between */
            char id[37];
            crypto_uuid(id);
        }
        if (i % 500 != 0) continue;
        ck_assert_int_eq(crypto_aead_open(key, "aad", 3, blob, len + CRYPTO_AEAD_OVERHEAD, out),
                         (int)len);
        ck_assert(memcmp(out, msg, len) == 0);
        ck_assert_int_eq(crypto_aead_open(other, "aad", 3, blob, len + CRYPTO_AEAD_OVERHEAD, out),
                         -1);
        ck_assert_int_eq(crypto_aead_open(key, "aaX", 3, blob, len + CRYPTO_AEAD_OVERHEAD, out),
                         -1);
        blob[CRYPTO_AEAD_IV_LEN + 2] ^= 1;
        ck_assert_int_eq(crypto_aead_open(key, "aad", 3, blob, len + CRYPTO_AEAD_OVERHEAD, out),
                         -1);
    }
    qsort(ivs, N, sizeof ivs[0], cmp_iv);
    for (int i = 1; i < N; i++)
        ck_assert_msg(memcmp(ivs[i - 1], ivs[i], CRYPTO_AEAD_IV_LEN) != 0, "a nonce used twice");
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_crypto");
    TCase *tc = tcase_create("crypto");
    tcase_add_test(tc, test_hmac_rfc4231);
    tcase_add_test(tc, test_uuid_v7);
    tcase_add_test(tc, test_b64url_vectors);
    tcase_add_test(tc, test_b64url_all_bytes);
    tcase_add_test(tc, test_b64url_rejects);
    tcase_add_test(tc, test_b64_vectors_and_rejects);
    tcase_add_test(tc, test_uuid);
    tcase_add_test(tc, test_uuid_after_fork);
    tcase_add_test(tc, test_random_and_equal);
    tcase_add_test(tc, test_aead_seal_open_and_fresh_nonces);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
