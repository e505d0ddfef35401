/* api-edge token endpoint limits (token_limits.h) on a clock the test
 * drives: buckets per address and per client id, the lock-out after failed
 * secrets (per address, and per client id from an address) that doubles
 * and is capped, success resetting it, failures forgotten, IPv6 by /64,
 * the settings parser naming a bad variable, bounded memory under churn
 * and from several threads; and the equal-cost secret check
 * (auth_check_secret_equal_cost): the same hash work for a client with one
 * hash, one with two, and an unknown id. */
#include "services/api-edge/auth.h"
#include "services/api-edge/token_limits.h"

#include <check.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1000.0

/* Small numbers so each rule shows in a few calls. */
static token_limits_cfg small_cfg(void) {
    token_limits_cfg c;
    token_limits_cfg_default(&c);
    c.rate_ip = 1, c.burst_ip = 5;
    c.rate_client = 1, c.burst_client = 3;
    c.fail_free_ip = 6, c.fail_free_client = 2;
    c.lock_s = 2, c.lock_max_s = 10, c.forget_s = 100;
    c.tracked = 256;
    return c;
}

static token_decision check(token_limits *l, const char *ip, const char *id, double now,
                            int *retry) {
    *retry = -1;
    return token_limits_check(l, ip, id, now, retry);
}

START_TEST(address_bucket) {
    token_limits_cfg c = small_cfg();
    c.burst_client = 100, c.rate_client = 100;
    token_limits *l = token_limits_new(&c);
    int retry;
    char id[32];
    for (int i = 0; i < 5; i++) { /* different ids: only the address counts */
        snprintf(id, sizeof id, "id%d", i);
        ck_assert_int_eq(check(l, "10.0.0.1", id, T0, &retry), TOKEN_ALLOW);
        ck_assert_int_eq(retry, -1); /* untouched when allowed */
    }
    ck_assert_int_eq(check(l, "10.0.0.1", "other", T0, &retry), TOKEN_REFUSE_IP_RATE);
    ck_assert_int_eq(retry, 1);
    ck_assert_int_eq(check(l, "10.0.0.2", "other", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "10.0.0.1", "other", T0 + 1, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "10.0.0.1", "other", T0 + 1, &retry), TOKEN_REFUSE_IP_RATE);
    token_limits_free(l);
}
END_TEST

START_TEST(client_bucket_across_addresses) {
    token_limits_cfg c = small_cfg();
    c.rate_client = 0.25; /* one every 4 s */
    token_limits *l = token_limits_new(&c);
    int retry;
    ck_assert_int_eq(check(l, "10.0.0.1", "sp", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "10.0.0.2", "sp", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "10.0.0.3", "sp", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "10.0.0.4", "sp", T0, &retry), TOKEN_REFUSE_CLIENT_RATE);
    ck_assert_int_eq(retry, 4);
    ck_assert_int_eq(check(l, "10.0.0.4", "other", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "10.0.0.4", "sp", T0 + 3, &retry), TOKEN_REFUSE_CLIENT_RATE);
    ck_assert_int_eq(retry, 1);
    ck_assert_int_eq(check(l, "10.0.0.4", "sp", T0 + 4, &retry), TOKEN_ALLOW);
    token_limits_free(l);
}
END_TEST

/* fail_free_client 2, lock 2 s doubling, at most 10 s. */
START_TEST(lock_out_per_client_from_an_address_grows) {
    token_limits_cfg c = small_cfg();
    c.burst_ip = c.burst_client = 1000, c.rate_ip = c.rate_client = 1000;
    token_limits *l = token_limits_new(&c);
    int retry;
    double now = T0;
    token_limits_report(l, "10.0.0.1", "me", 1, now); /* address failures: see below */
    for (int i = 0; i < 2; i++) {                     /* the free failures */
        ck_assert_int_eq(check(l, "10.0.0.1", "sp", now, &retry), TOKEN_ALLOW);
        token_limits_report(l, "10.0.0.1", "sp", 0, now);
    }
    ck_assert_int_eq(check(l, "10.0.0.1", "sp", now, &retry), TOKEN_ALLOW);
    token_limits_report(l, "10.0.0.1", "sp", 0, now); /* third: 2 s */
    ck_assert_int_eq(check(l, "10.0.0.1", "sp", now, &retry), TOKEN_REFUSE_CLIENT_LOCKED);
    ck_assert_int_eq(retry, 2);
    /* the same client from its own address is not locked out */
    ck_assert_int_eq(check(l, "10.9.9.9", "sp", now, &retry), TOKEN_ALLOW);
    /* nor another client from the guesser's address (fail_free_ip 6) */
    ck_assert_int_eq(check(l, "10.0.0.1", "other", now, &retry), TOKEN_ALLOW);
    token_limits_report(l, "10.0.0.1", "other", 1, now); /* resets the address's count */
    ck_assert_int_eq(check(l, "10.0.0.1", "sp", now + 1.5, &retry), TOKEN_REFUSE_CLIENT_LOCKED);
    ck_assert_int_eq(retry, 1);
    int want[] = {4, 8, 10, 10}; /* doubling, capped */
    now += 2;
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(check(l, "10.0.0.1", "sp", now, &retry), TOKEN_ALLOW);
        token_limits_report(l, "10.0.0.1", "sp", 0, now);
        ck_assert_int_eq(check(l, "10.0.0.1", "sp", now, &retry), TOKEN_REFUSE_CLIENT_LOCKED);
        ck_assert_int_eq(retry, want[k]);
        now += want[k];
    }
    /* a success resets: two free failures again */
    ck_assert_int_eq(check(l, "10.0.0.1", "sp", now, &retry), TOKEN_ALLOW);
    token_limits_report(l, "10.0.0.1", "sp", 1, now);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(check(l, "10.0.0.1", "sp", now, &retry), TOKEN_ALLOW);
        token_limits_report(l, "10.0.0.1", "sp", 0, now);
    }
    ck_assert_int_eq(check(l, "10.0.0.1", "sp", now, &retry), TOKEN_ALLOW);
    token_limits_report(l, "10.0.0.1", "sp", 0, now);
    ck_assert_int_eq(check(l, "10.0.0.1", "sp", now, &retry), TOKEN_REFUSE_CLIENT_LOCKED);
    ck_assert_int_eq(retry, 2);
    token_limits_free(l);
}
END_TEST

/* fail_free_ip 6: spraying ids from one address locks the address out. */
START_TEST(lock_out_per_address_across_ids) {
    token_limits_cfg c = small_cfg();
    c.burst_ip = c.burst_client = 1000, c.rate_ip = c.rate_client = 1000;
    token_limits *l = token_limits_new(&c);
    int retry;
    char id[32];
    for (int i = 0; i < 7; i++) {
        snprintf(id, sizeof id, "guess%d", i);
        ck_assert_int_eq(check(l, "10.0.0.1", id, T0, &retry), TOKEN_ALLOW);
        token_limits_report(l, "10.0.0.1", id, 0, T0);
    }
    ck_assert_int_eq(check(l, "10.0.0.1", "sp", T0, &retry), TOKEN_REFUSE_IP_LOCKED);
    ck_assert_int_eq(retry, 2);
    ck_assert_int_eq(check(l, "10.0.0.2", "guess0", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "10.0.0.1", "sp", T0 + 2, &retry), TOKEN_ALLOW);
    /* failures are forgotten after forget_s without one */
    token_limits_report(l, "10.0.0.1", "sp", 0, T0 + 2); /* 8th: 4 s */
    ck_assert_int_eq(check(l, "10.0.0.1", "sp", T0 + 3, &retry), TOKEN_REFUSE_IP_LOCKED);
    ck_assert_int_eq(retry, 3);
    double later = T0 + 2 + 100;
    ck_assert_int_eq(check(l, "10.0.0.1", "x", later, &retry), TOKEN_ALLOW);
    token_limits_report(l, "10.0.0.1", "x", 0, later); /* counts as the first again */
    ck_assert_int_eq(check(l, "10.0.0.1", "y", later, &retry), TOKEN_ALLOW);
    token_limits_free(l);
}
END_TEST

START_TEST(ipv6_by_its_64_and_mapped_ipv4) {
    token_limits_cfg c = small_cfg();
    c.burst_ip = 2, c.burst_client = c.rate_client = 1000;
    token_limits *l = token_limits_new(&c);
    int retry;
    ck_assert_int_eq(check(l, "2001:db8:1:2::1", "a", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "2001:db8:1:2:ffff::9", "b", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "2001:db8:1:2::77", "c", T0, &retry), TOKEN_REFUSE_IP_RATE);
    ck_assert_int_eq(check(l, "2001:db8:1:3::1", "c", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "192.0.2.1", "a", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "::ffff:192.0.2.1", "b", T0, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "192.0.2.1", "c", T0, &retry), TOKEN_REFUSE_IP_RATE);
    token_limits_free(l);
}
END_TEST

/* A churn of addresses and ids in a small table stays within it, and a
 * lock-out survives the churn (unlocked entries go first). */
START_TEST(memory_is_bounded_and_lock_outs_survive_churn) {
    token_limits_cfg c = small_cfg();
    c.tracked = 64;
    c.burst_ip = c.burst_client = 1000, c.rate_ip = c.rate_client = 1000;
    c.lock_max_s = c.lock_s = 1000;
    token_limits *l = token_limits_new(&c);
    int retry;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(check(l, "10.0.0.1", "victim", T0, &retry), TOKEN_ALLOW);
        token_limits_report(l, "10.0.0.1", "victim", 0, T0);
    }
    char ip[32], id[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(ip, sizeof ip, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        snprintf(id, sizeof id, "id-%d", i);
        ck_assert_int_eq(check(l, ip, id, T0 + 1, &retry), TOKEN_ALLOW);
        token_limits_report(l, ip, id, i % 2, T0 + 1);
        ck_assert_uint_le(token_limits_entries(l), 64);
    }
    ck_assert_int_eq(check(l, "10.0.0.1", "victim", T0 + 2, &retry), TOKEN_REFUSE_CLIENT_LOCKED);
    /* long ids and odd addresses are keys like any other */
    char longid[300];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    ck_assert_int_eq(check(l, "not an address", longid, T0 + 2, &retry), TOKEN_ALLOW);
    ck_assert_int_eq(check(l, "", "", T0 + 2, &retry), TOKEN_ALLOW);
    token_limits_free(l);
}
END_TEST

static token_limits *shared_l;

static void *hammer(void *arg) {
    int t = (int)(long)arg;
    char ip[32], id[32];
    int retry;
    for (int i = 0; i < 5000; i++) {
        snprintf(ip, sizeof ip, "10.%d.0.%d", t, i % 50);
        snprintf(id, sizeof id, "id-%d", i % 70);
        if (token_limits_check(shared_l, ip, id, T0 + i * 0.001, &retry) == TOKEN_ALLOW)
            token_limits_report(shared_l, ip, id, i % 3 == 0, T0 + i * 0.001);
    }
    return NULL;
}

START_TEST(thread_safe) {
    token_limits_cfg c = small_cfg();
    c.tracked = 128;
    shared_l = token_limits_new(&c);
    pthread_t th[4];
    for (long i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, (void *)i), 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    ck_assert_uint_le(token_limits_entries(shared_l), 128);
    token_limits_free(shared_l);
}
END_TEST

static const char *const vars[] = {
    "MILLOM_TOKEN_RATE_PER_IP",      "MILLOM_TOKEN_BURST_PER_IP",
    "MILLOM_TOKEN_RATE_PER_CLIENT",  "MILLOM_TOKEN_BURST_PER_CLIENT",
    "MILLOM_TOKEN_FAIL_FREE_PER_IP", "MILLOM_TOKEN_FAIL_FREE_PER_CLIENT",
    "MILLOM_TOKEN_FAIL_LOCK_S",      "MILLOM_TOKEN_FAIL_LOCK_MAX_S",
    "MILLOM_TOKEN_FAIL_FORGET_S",    "MILLOM_TOKEN_TRACKED",
    "MILLOM_TOKEN_HASH_THREADS",     "MILLOM_TOKEN_HASH_QUEUE",
};

static void clear_env(void) {
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
}

static void expect_bad(const char *name, const char *value) {
    clear_env();
    setenv(name, value, 1);
    token_limits_cfg c;
    char err[256] = "";
    ck_assert_msg(token_limits_cfg_from_env(&c, err, sizeof err) == -1, "%s=%s accepted", name,
                  value);
    ck_assert_msg(strstr(err, name) != NULL, "error does not name %s: %s", name, err);
}

START_TEST(settings_from_the_environment) {
    clear_env();
    token_limits_cfg c, d;
    char err[256];
    ck_assert_int_eq(token_limits_cfg_from_env(&c, err, sizeof err), 0);
    token_limits_cfg_default(&d);
    ck_assert(memcmp(&c, &d, sizeof c) == 0);
    /* production defaults: limits on, a small pool */
    ck_assert(d.rate_ip > 0 && d.rate_client > 0 && d.fail_free_client > 0);
    ck_assert(d.hash_threads >= 1 && d.hash_threads <= 2 && d.hash_queue >= 1);
    setenv("MILLOM_TOKEN_RATE_PER_IP", "2.5", 1);
    setenv("MILLOM_TOKEN_FAIL_FREE_PER_CLIENT", "0", 1);
    setenv("MILLOM_TOKEN_HASH_THREADS", "2", 1);
    ck_assert_int_eq(token_limits_cfg_from_env(&c, err, sizeof err), 0);
    ck_assert(c.rate_ip == 2.5);
    ck_assert_int_eq(c.fail_free_client, 0);
    ck_assert_int_eq(c.hash_threads, 2);
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        expect_bad(vars[i], "abc");
        expect_bad(vars[i], "-1");
        expect_bad(vars[i], "1e99");
        expect_bad(vars[i], "3x");
    }
    expect_bad("MILLOM_TOKEN_HASH_THREADS", "0");
    expect_bad("MILLOM_TOKEN_HASH_THREADS", "1.5");
    expect_bad("MILLOM_TOKEN_RATE_PER_IP", "0");
    expect_bad("MILLOM_TOKEN_RATE_PER_IP", "nan");
    clear_env();
    setenv("MILLOM_TOKEN_FAIL_LOCK_S", "60", 1);
    setenv("MILLOM_TOKEN_FAIL_LOCK_MAX_S", "30", 1);
    ck_assert_int_eq(token_limits_cfg_from_env(&c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "MILLOM_TOKEN_FAIL_LOCK_MAX_S"));
    clear_env();
}
END_TEST

/* ---- equal cost ---- */

static void hex(const unsigned char *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

static char *pbkdf2_hash(const char *secret, int iter, int len) {
    unsigned char salt[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, out[64];
    ck_assert(PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, sizeof salt, iter, EVP_sha256(),
                                len, out));
    char s[64], h[129];
    hex(salt, sizeof salt, s);
    hex(out, (size_t)len, h);
    char *r = malloc(300);
    snprintf(r, 300, "pbkdf2-sha256:%d:%s:%s", iter, s, h);
    return r;
}

/* A tenants file like the sandbox's with three clients: "one" (one hash,
 * 1000 iterations), "two" (a 64-byte hash of 2000 iterations, so 4000 of
 * work, and a sha256 one) and "legacy" (sha256 only). */
static tenants *equal_cost_tenants(void) {
    json_error_t je;
    json_t *root = json_load_file("config/tenants.sandbox.json", 0, &je);
    ck_assert_ptr_nonnull(root);
    char *h1 = pbkdf2_hash("one-secret", 1000, 32), *h2 = pbkdf2_hash("two-secret", 2000, 64);
    unsigned char d[32];
    unsigned int n;
    EVP_Digest("two-secret-2", 12, d, &n, EVP_sha256(), NULL);
    char sha[80] = "sha256:";
    hex(d, 32, sha + 7);
    const char *sp = json_string_value(
        json_object_get(json_array_get(json_object_get(root, "serviceProviders"), 0), "id"));
    ck_assert_ptr_nonnull(sp);
    json_t *clients =
        json_pack("[{s:s, s:s, s:[s], s:[]}, {s:s, s:s, s:[s,s], s:[]}, "
                  "{s:s, s:s, s:[s], s:[]}]",
                  "id", "one", "serviceProvider", sp, "secretHashes", h1, "scopes", "id", "two",
                  "serviceProvider", sp, "secretHashes", h2, sha, "scopes", "id", "legacy",
                  "serviceProvider", sp, "secretHashes", sha, "scopes");
    ck_assert_ptr_nonnull(clients);
    json_object_set_new(root, "clients", clients);
    char path[] = "/tmp/millom-token-limits-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(json_dump_file(root, path, 0), 0);
    json_decref(root);
    free(h1), free(h2);
    char err[256];
    tenants *t = tenants_load(path, err, sizeof err);
    unlink(path);
    ck_assert_msg(t != NULL, "%s", err);
    return t;
}

START_TEST(equal_cost_for_known_and_unknown_ids) {
    tenants *t = equal_cost_tenants();
    auth_clients cs;
    char err[256];
    ck_assert_msg(auth_clients_load(&cs, t, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(cs.max_secrets, 2);
    ck_assert_int_eq(cs.max_cost, 4000);
    struct {
        const char *id, *secret;
        int ok;
    } cases[] = {
        {"one", "one-secret", 1},   {"one", "wrong", 0},         {"two", "two-secret", 1},
        {"two", "two-secret-2", 1}, {"two", "one-secret", 0},    {"legacy", "two-secret-2", 1},
        {"legacy", "x", 0},         {"nobody", "one-secret", 0}, {"nobody", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const auth_client *c = auth_clients_find(&cs, cases[i].id);
        auth_hash_work w = {0};
        int ok = auth_check_secret_equal_cost(&cs, c, cases[i].secret, &w);
        ck_assert_msg(ok == cases[i].ok, "%s/%s: %d", cases[i].id, cases[i].secret, ok);
        /* two slots, each as costly as the costliest hash */
        ck_assert_msg(w.hashes == 2 && w.iterations == 8000, "%s: %ld hashes, %ld iterations",
                      cases[i].id, w.hashes, w.iterations);
        if (c) ck_assert_int_eq(ok, auth_client_check_secret(c, cases[i].secret));
    }
    auth_clients_free(&cs);
    tenants_free(t);
}
END_TEST

START_TEST(equal_cost_in_the_sandbox_tenants) {
    char err[256];
    tenants *t = tenants_load("config/tenants.sandbox.json", err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    auth_clients cs;
    ck_assert_msg(auth_clients_load(&cs, t, err, sizeof err) == 0, "%s", err);
    const char *ids[] = {"sp-demo", "other-demo", "tp-demo", "no-such-client"};
    auth_hash_work first = {0};
    for (size_t i = 0; i < 4; i++) {
        auth_hash_work w = {0};
        ck_assert_int_eq(
            auth_check_secret_equal_cost(&cs, auth_clients_find(&cs, ids[i]), "wrong", &w), 0);
        if (i == 0) first = w;
        ck_assert_msg(w.hashes == first.hashes && w.iterations == first.iterations,
                      "%s: %ld/%ld, sp-demo %ld/%ld", ids[i], w.hashes, w.iterations, first.hashes,
                      first.iterations);
    }
    ck_assert_int_eq(first.hashes, (long)cs.max_secrets);
    ck_assert_int_eq(first.iterations, (long)cs.max_secrets * cs.max_cost);
    auth_hash_work w = {0};
    ck_assert_int_eq(
        auth_check_secret_equal_cost(&cs, auth_clients_find(&cs, "sp-demo"), "sp-demo-secret", &w),
        1);
    ck_assert_int_eq(w.iterations, first.iterations);
    auth_clients_free(&cs);
    tenants_free(t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("api-edge token limits");
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, address_bucket);
    tcase_add_test(tc, client_bucket_across_addresses);
    tcase_add_test(tc, lock_out_per_client_from_an_address_grows);
    tcase_add_test(tc, lock_out_per_address_across_ids);
    tcase_add_test(tc, ipv6_by_its_64_and_mapped_ipv4);
    tcase_add_test(tc, memory_is_bounded_and_lock_outs_survive_churn);
    tcase_add_test(tc, thread_safe);
    tcase_add_test(tc, settings_from_the_environment);
    tcase_add_test(tc, equal_cost_for_known_and_unknown_ids);
    tcase_add_test(tc, equal_cost_in_the_sandbox_tenants);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
