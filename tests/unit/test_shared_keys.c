/* The key loader (shared/contracts/keys.h): sandbox defaults with one warning, the
 * secure profile's generated key files (mode 0600, reused, one key when
 * loaders race), production refusing a missing key and naming it, and no
 * sandbox default accepted outside the sandbox. Real files in a temporary
 * directory. */
#include "shared/contracts/keys.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void clear_key_env(void) {
    for (size_t i = 0; keys_names[i]; i++) unsetenv(keys_names[i]);
    unsetenv("MILLOM_PROFILE");
    unsetenv("MILLOM_AUTH_DISABLED");
}

static void setup(void) {
    clear_key_env();
    snprintf(dir, sizeof dir, "/tmp/millom-keys-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Removes the test dir and the key dir(s) inside it. */
static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char child[1024];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        remove_tree(child);
    }
    closedir(d);
    rmdir(path);
}

static void teardown(void) {
    remove_tree(dir);
    clear_key_env();
}

/* Entries of a directory (to see that no temporary file is left). */
static int count_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* Runs first (one process: keys_init works once): the sandbox profile
 * gives the public defaults and says so in one warning. */
START_TEST(sandbox_defaults_and_one_warning) {
    char log[300];
    snprintf(log, sizeof log, "%s/stderr.log", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    setenv("MILLOM_CPID_KEY", "set-in-env", 1);
    int rc = keys_init();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(keys_get("MILLOM_JWT_KEY"), keys_sandbox_default("MILLOM_JWT_KEY"));
    ck_assert_str_eq(keys_get("MILLOM_CPID_KEY"), "set-in-env");
    ck_assert_str_eq(keys_get("MILLOM_OFFER_CONTEXT_KEY"), "sandbox-offer-context-key-change-me");

    FILE *f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *w = strstr(text, "PUBLIC DEFAULT KEYS");
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_null(strstr(w + 1, "PUBLIC DEFAULT KEYS")); /* one warning */
    ck_assert_ptr_nonnull(strstr(text, "MILLOM_LINK_KEY"));
    ck_assert_ptr_null(strstr(text, "MILLOM_CPID_KEY")); /* set: not a default */
    /* A second init neither warns again nor changes anything. */
    ck_assert_int_eq(keys_init(), 0);
}
END_TEST

START_TEST(profiles_from_env) {
    ck_assert_int_eq(keys_profile_from_env(), KEYS_PROFILE_SANDBOX);
    setenv("MILLOM_AUTH_DISABLED", "0", 1);
    ck_assert_int_eq(keys_profile_from_env(), KEYS_PROFILE_SECURE);
    setenv("MILLOM_PROFILE", "production", 1);
    ck_assert_int_eq(keys_profile_from_env(), KEYS_PROFILE_PRODUCTION);
    setenv("MILLOM_PROFILE", "sandbox", 1);
    ck_assert_int_eq(keys_profile_from_env(), KEYS_PROFILE_SANDBOX);
    setenv("MILLOM_PROFILE", "prod", 1);
    ck_assert_int_eq(keys_profile_from_env(), KEYS_PROFILE_UNKNOWN);
    char out[128], err[256];
    keys_source src;
    ck_assert_int_eq(keys_resolve("MILLOM_JWT_KEY", KEYS_PROFILE_UNKNOWN, dir, out, sizeof out,
                                  &src, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "MILLOM_PROFILE"));
    ck_assert_int_eq(keys_resolve("MILLOM_NO_SUCH_KEY", KEYS_PROFILE_SANDBOX, dir, out, sizeof out,
                                  &src, err, sizeof err),
                     -1);
    unsetenv("MILLOM_PROFILE");
    setenv("MILLOM_AUTH_DISABLED", "1", 1);
    ck_assert_int_eq(keys_profile_from_env(), KEYS_PROFILE_SANDBOX);
    /* The key dir: MILLOM_KEY_DIR, else <MILLOM_DATA_DIR>/keys. */
    char buf[512];
    setenv("MILLOM_DATA_DIR", "/some/data", 1);
    ck_assert_str_eq(keys_dir(buf, sizeof buf), "/some/data/keys");
    setenv("MILLOM_KEY_DIR", "/shared/keys", 1);
    ck_assert_str_eq(keys_dir(buf, sizeof buf), "/shared/keys");
    unsetenv("MILLOM_KEY_DIR");
    unsetenv("MILLOM_DATA_DIR");
}
END_TEST

START_TEST(secure_generates_a_private_file_and_reuses_it) {
    char kdir[300], path[400], first[128], again[128], other[128], err[256];
    snprintf(kdir, sizeof kdir, "%s/data/keys", dir); /* made on demand */
    keys_source src;
    ck_assert_int_eq(keys_resolve("MILLOM_LINK_KEY", KEYS_PROFILE_SECURE, kdir, first, sizeof first,
                                  &src, err, sizeof err),
                     0);
    ck_assert_int_eq(src, KEYS_FROM_FILE);
    ck_assert_uint_eq(strlen(first), 64);
    ck_assert_uint_eq(strspn(first, "0123456789abcdef"), 64);
    ck_assert_str_ne(first, keys_sandbox_default("MILLOM_LINK_KEY"));

    snprintf(path, sizeof path, "%s/MILLOM_LINK_KEY", kdir);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(kdir, &st), 0);
    ck_assert_int_eq(st.st_mode & 077, 0); /* the dir is private too */

    /* Reused: a second load (another program) reads the same key. */
    ck_assert_int_eq(keys_resolve("MILLOM_LINK_KEY", KEYS_PROFILE_SECURE, kdir, again, sizeof again,
                                  &src, err, sizeof err),
                     0);
    ck_assert_str_eq(first, again);
    /* Each key has its own random value. */
    ck_assert_int_eq(keys_resolve("MILLOM_CPID_KEY", KEYS_PROFILE_SECURE, kdir, other, sizeof other,
                                  &src, err, sizeof err),
                     0);
    ck_assert_str_ne(first, other);
    ck_assert_int_eq(count_entries(kdir), 2); /* no temporary file left */

    /* The environment wins over the file. */
    setenv("MILLOM_LINK_KEY", "operator-chosen", 1);
    ck_assert_int_eq(keys_resolve("MILLOM_LINK_KEY", KEYS_PROFILE_SECURE, kdir, again, sizeof again,
                                  &src, err, sizeof err),
                     0);
    ck_assert_int_eq(src, KEYS_FROM_ENV);
    ck_assert_str_eq(again, "operator-chosen");

    /* An unusable key dir is an error that names the key, never a default. */
    char bad[400];
    snprintf(bad, sizeof bad, "%s/MILLOM_LINK_KEY/sub", kdir); /* under a file */
    ck_assert_int_eq(keys_resolve("MILLOM_JWT_KEY", KEYS_PROFILE_SECURE, bad, again, sizeof again,
                                  &src, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "MILLOM_JWT_KEY"));
}
END_TEST

typedef struct {
    const char *kdir;
    pthread_barrier_t *start;
    char key[128];
    int rc;
} racer;

static void *race(void *arg) {
    racer *r = arg;
    char err[256];
    keys_source src;
    pthread_barrier_wait(r->start);
    r->rc = keys_resolve("MILLOM_OFFER_CONTEXT_KEY", KEYS_PROFILE_SECURE, r->kdir, r->key,
                         sizeof r->key, &src, err, sizeof err);
    return NULL;
}

START_TEST(concurrent_loaders_agree) {
    enum { N = 8 };
    char kdir[300];
    snprintf(kdir, sizeof kdir, "%s/race", dir);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    racer r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].kdir = kdir;
        r[i].start = &start;
    }
    for (int i = 0; i < N; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].rc, 0);
        ck_assert_str_eq(r[i].key, r[0].key);
    }
    ck_assert_uint_eq(strlen(r[0].key), 64);
    ck_assert_int_eq(count_entries(kdir), 1);
}
END_TEST

START_TEST(production_refuses_and_names_the_key) {
    char out[128], err[512];
    keys_source src;
    for (size_t i = 0; keys_names[i]; i++) setenv(keys_names[i], "a-real-secret", 1);
    for (size_t i = 0; keys_names[i]; i++)
        ck_assert_int_eq(keys_resolve(keys_names[i], KEYS_PROFILE_PRODUCTION, dir, out, sizeof out,
                                      &src, err, sizeof err),
                         0);
    unsetenv("MILLOM_SUBSCRIBER_HASH_KEY");
    ck_assert_int_eq(keys_resolve("MILLOM_SUBSCRIBER_HASH_KEY", KEYS_PROFILE_PRODUCTION, dir, out,
                                  sizeof out, &src, err, sizeof err),
                     -1);
    ck_assert_msg(strncmp(err, "MILLOM_SUBSCRIBER_HASH_KEY is not set", 37) == 0, "%s", err);
    ck_assert_ptr_null(strchr(err, '\n'));       /* one line */
    setenv("MILLOM_SUBSCRIBER_HASH_KEY", "", 1); /* empty counts as missing */
    ck_assert_int_eq(keys_resolve("MILLOM_SUBSCRIBER_HASH_KEY", KEYS_PROFILE_PRODUCTION, dir, out,
                                  sizeof out, &src, err, sizeof err),
                     -1);
    ck_assert_int_eq(count_entries(dir), 0); /* production never writes key files */

    /* A sandbox default is refused outside the sandbox, even when set. */
    setenv("MILLOM_JWT_KEY", keys_sandbox_default("MILLOM_JWT_KEY"), 1);
    ck_assert_int_eq(keys_resolve("MILLOM_JWT_KEY", KEYS_PROFILE_PRODUCTION, dir, out, sizeof out,
                                  &src, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "MILLOM_JWT_KEY"));
    ck_assert_int_eq(keys_resolve("MILLOM_JWT_KEY", KEYS_PROFILE_SECURE, dir, out, sizeof out, &src,
                                  err, sizeof err),
                     -1);
    ck_assert_int_eq(keys_resolve("MILLOM_JWT_KEY", KEYS_PROFILE_SANDBOX, dir, out, sizeof out,
                                  &src, err, sizeof err),
                     0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared keys");
    TCase *tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sandbox_defaults_and_one_warning);
    tcase_add_test(tc, profiles_from_env);
    tcase_add_test(tc, secure_generates_a_private_file_and_reuses_it);
    tcase_add_test(tc, concurrent_loaders_agree);
    tcase_add_test(tc, production_refuses_and_names_the_key);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
