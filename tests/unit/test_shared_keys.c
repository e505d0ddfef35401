/* The key loader (shared/contracts/keys.h): sandbox defaults with one warning, the
 * secure profile's generated key files (mode 0600, reused, one key when
 * loaders race), production refusing a missing key and naming it, and no
 * sandbox default accepted outside the sandbox. Key sets for rotation: the
 * *_KEYS lists parsed (every malformed one refused with the setting and
 * entry named, never the secret), resolved with `default` per profile, and
 * a key picked by its id. Real files in a temporary directory. */
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
    for (size_t i = 0; keys_names[i]; i++) {
        unsetenv(keys_names[i]);
        if (keys_list_setting(keys_names[i])) unsetenv(keys_list_setting(keys_names[i]));
    }
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
    setenv("MILLOM_LINK_KEYS", "l2:link-secret-two, default", 1);
    setenv("MILLOM_LOG_LEVEL", "info", 1);
    int rc = keys_init();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(keys_get("MILLOM_JWT_KEY"), keys_sandbox_default("MILLOM_JWT_KEY"));
    ck_assert_str_eq(keys_get("MILLOM_CPID_KEY"), "set-in-env");
    ck_assert_str_eq(keys_get("MILLOM_OFFER_CONTEXT_KEY"), "sandbox-offer-context-key-change-me");
    /* A list: its first entry is current; default still verifies. */
    const keys_set *link = keys_get_set("MILLOM_LINK_KEY");
    ck_assert_uint_eq(link->n, 2);
    ck_assert_str_eq(link->e[0].kid, "l2");
    ck_assert_str_eq(keys_get("MILLOM_LINK_KEY"), "link-secret-two");
    ck_assert_str_eq(link->e[1].kid, "");
    ck_assert_str_eq(link->e[1].secret, keys_sandbox_default("MILLOM_LINK_KEY"));
    ck_assert_uint_eq(keys_get_set("MILLOM_CPID_KEY")->n, 1);
    ck_assert_str_eq(keys_get_set("MILLOM_CPID_KEY")->e[0].kid, "");

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
    /* The set is named by key ids; no secret reaches the log. */
    ck_assert_ptr_nonnull(strstr(text, "MILLOM_LINK_KEYS: l2 signs; verifying l2, default"));
    ck_assert_ptr_null(strstr(text, "link-secret-two"));
    ck_assert_ptr_null(strstr(text, "set-in-env"));
    ck_assert_ptr_null(strstr(text, "not-for-production"));
    ck_assert_ptr_null(strstr(text, "MILLOM_CPID_KEYS")); /* one key: nothing to say */
    unsetenv("MILLOM_LOG_LEVEL");
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

/* keys_parse_list on good lists: order kept, spaces around entries
 * ignored, default anywhere, a ':' inside a secret kept. */
START_TEST(key_lists_parse) {
    keys_set set;
    int at;
    char err[512] = "";
    ck_assert_int_eq(keys_parse_list("MILLOM_CPID_KEYS", "k2:two", &set, &at, err, sizeof err), 0);
    ck_assert_uint_eq(set.n, 1);
    ck_assert_int_eq(at, -1);
    ck_assert_str_eq(set.e[0].kid, "k2");
    ck_assert_str_eq(set.e[0].secret, "two");
    ck_assert_int_eq(keys_parse_list("MILLOM_CPID_KEYS", " 2025-06_b:a:b:c ,\tdefault , K-1:x ",
                                     &set, &at, err, sizeof err),
                     0);
    ck_assert_uint_eq(set.n, 3);
    ck_assert_int_eq(at, 1);
    ck_assert_str_eq(set.e[0].kid, "2025-06_b");
    ck_assert_str_eq(set.e[0].secret, "a:b:c");
    ck_assert_str_eq(set.e[1].kid, "");
    ck_assert_str_eq(set.e[1].secret, "");
    ck_assert_str_eq(set.e[2].kid, "K-1");
    ck_assert_str_eq(set.e[2].secret, "x");
    ck_assert_int_eq(keys_parse_list("MILLOM_CPID_KEYS", "default", &set, &at, err, sizeof err), 0);
    ck_assert_uint_eq(set.n, 1);
    ck_assert_int_eq(at, 0);
    /* Eight entries fit; a 16-character id and a 511-byte secret too. */
    char list[1200], secret[KEYS_SECRET_MAX + 2];
    memset(secret, 'z', KEYS_SECRET_MAX);
    secret[KEYS_SECRET_MAX] = '\0';
    snprintf(list, sizeof list, "abcdefghijklmnop:%s,b:2,c:3,d:4,e:5,f:6,g:7,default", secret);
    ck_assert_int_eq(keys_parse_list("MILLOM_CPID_KEYS", list, &set, &at, err, sizeof err), 0);
    ck_assert_uint_eq(set.n, KEYS_MAX_PER_SET);
    ck_assert_uint_eq(strlen(set.e[0].secret), KEYS_SECRET_MAX);
}
END_TEST

/* Every malformed list: -1, the setting named, a reason, and never the
 * secret (each case's secret contains "SECRET"). */
START_TEST(bad_key_lists_are_refused_without_the_secret) {
    static const struct {
        const char *value, *reason;
    } cases[] = {
        {"", "entry 1 is empty"},
        {"k1:aSECRET,,k2:bSECRET", "entry 2 is empty"},
        {"k1:aSECRET,", "entry 2 is empty"},
        {"aSECRETwithoutkid", "entry 1 is neither kid:secret nor default"},
        {"k1:aSECRET, default:bSECRET",
         "entry 2: write default alone (its key is MILLOM_LINK_KEY's)"},
        {":aSECRET", "entry 1: a key id is 1 to 16 of A-Z a-z 0-9 _ -"},
        {"k 1:aSECRET", "entry 1: a key id is 1 to 16"},
        {"k.1:aSECRET", "entry 1: a key id is 1 to 16"},
        {"abcdefghijklmnopq:aSECRET", "entry 1: a key id is 1 to 16"},
        {"k1:", "entry 1 (key id k1): the secret is empty"},
        {"k1:aSECRET b", "entry 1 (key id k1): a secret here is printable ASCII without spaces"},
        {"k1:aSECRET\x01", "entry 1 (key id k1): a secret here is printable ASCII"},
        {"k1:aSECRET\xc3\xa9", "entry 1 (key id k1): a secret here is printable ASCII"},
        {"k1:aSECRET,k1:bSECRET", "key id k1 is there twice (entries 1 and 2)"},
        {"default,k1:aSECRET,default", "default is there twice (entries 1 and 3)"},
        {"k1:aSECRET,k2:aSECRET", "entries 1 and 2 (key ids k1 and k2) have the same secret"},
        {"a:1SECRET,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9", "more than 8 entries"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        keys_set set;
        int at;
        char err[512] = "";
        ck_assert_msg(
            keys_parse_list("MILLOM_LINK_KEYS", cases[i].value, &set, &at, err, sizeof err) == -1,
            "accepted case %zu", i);
        ck_assert_msg(strncmp(err, "MILLOM_LINK_KEYS must be ", 25) == 0, "case %zu: %s", i, err);
        ck_assert_msg(strstr(err, cases[i].reason) != NULL, "case %zu: %s", i, err);
        ck_assert_msg(strstr(err, "SECRET") == NULL, "case %zu leaks: %s", i, err);
        ck_assert_ptr_null(strchr(err, '\n'));
    }
    /* A secret one byte too long. */
    char list[600];
    memset(list, 'x', sizeof list);
    memcpy(list, "k1:", 3);
    list[3 + KEYS_SECRET_MAX + 1] = '\0';
    keys_set set;
    int at;
    char err[512];
    ck_assert_int_eq(keys_parse_list("MILLOM_LINK_KEYS", list, &set, &at, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "longer than 511 bytes"));
}
END_TEST

START_TEST(key_ids_and_kid_prefixes) {
    ck_assert(keys_kid_ok("k2", 2));
    ck_assert(keys_kid_ok("A-z_09", 6));
    ck_assert(!keys_kid_ok("", 0));
    ck_assert(!keys_kid_ok("default", 7));
    ck_assert(keys_kid_ok("defaults", 8));
    ck_assert(!keys_kid_ok("k/2", 3));
    ck_assert(!keys_kid_ok("abcdefghijklmnopq", 17));
    size_t k = 99;
    ck_assert_int_eq(keys_kid_prefix("AbC-_x,41006", 12, &k), 0);
    ck_assert_uint_eq(k, 0); /* no '.': the default key */
    ck_assert_int_eq(keys_kid_prefix("k2.AbC,41006", 12, &k), 0);
    ck_assert_uint_eq(k, 2);
    ck_assert_int_eq(keys_kid_prefix(".AbC", 4, &k), -1);
    ck_assert_int_eq(keys_kid_prefix("k+2.AbC", 7, &k), -1);
    ck_assert_int_eq(keys_kid_prefix("default.AbC", 11, &k), -1);
    ck_assert_int_eq(keys_kid_prefix("k2.AbC", 2, &k), 0); /* only len bytes are read */
    ck_assert_uint_eq(k, 0);

    keys_set set;
    int at;
    char err[256];
    ck_assert_int_eq(
        keys_parse_list("MILLOM_CPID_KEYS", "k3:three,k2:two,default", &set, &at, err, sizeof err),
        0);
    snprintf(set.e[at].secret, sizeof set.e[at].secret, "one");
    ck_assert_str_eq(keys_set_find(&set, "k2", 2)->secret, "two");
    ck_assert_str_eq(keys_set_find(&set, "k3.rest", 2)->secret, "three");
    ck_assert_str_eq(keys_set_find(&set, NULL, 0)->secret, "one");
    ck_assert_ptr_null(keys_set_find(&set, "k1", 2));
    ck_assert_ptr_null(keys_set_find(&set, "k", 1));
    ck_assert_ptr_null(keys_set_find(&set, "k22", 3));
    ck_assert_int_eq(keys_parse_list("MILLOM_CPID_KEYS", "k2:two", &set, &at, err, sizeof err), 0);
    ck_assert_ptr_null(keys_set_find(&set, "", 0)); /* default retired */
    ck_assert_int_eq(keys_set_one(&set, "only"), 0);
    ck_assert_uint_eq(set.n, 1);
    ck_assert_str_eq(keys_set_find(&set, NULL, 0)->secret, "only");
    ck_assert_int_eq(keys_set_one(&set, ""), -1);
    ck_assert_int_eq(keys_set_one(&set, NULL), -1);
    ck_assert_str_eq(keys_list_setting("MILLOM_OFFER_CONTEXT_KEY"), "MILLOM_OFFER_CONTEXT_KEYS");
    ck_assert_ptr_null(keys_list_setting("MILLOM_SUBSCRIBER_HASH_KEY"));
    ck_assert_ptr_null(keys_list_setting("MILLOM_NO_SUCH_KEY"));
}
END_TEST

/* keys_resolve_set per profile: the list, default filled from the
 * single-key setting, the single key refused when the list leaves it out,
 * no key file for a list without default, production satisfied by a list. */
START_TEST(key_sets_resolve_per_profile) {
    char kdir[300], err[512];
    snprintf(kdir, sizeof kdir, "%s/keys", dir);
    keys_set set;
    keys_source src;
    /* No list: the single key of before, as default. */
    setenv("MILLOM_CPID_KEY", "one", 1);
    ck_assert_int_eq(keys_resolve_set("MILLOM_CPID_KEY", KEYS_PROFILE_PRODUCTION, kdir, &set, &src,
                                      err, sizeof err),
                     0);
    ck_assert_uint_eq(set.n, 1);
    ck_assert_str_eq(set.e[0].kid, "");
    ck_assert_str_eq(set.e[0].secret, "one");
    ck_assert_int_eq(src, KEYS_FROM_ENV);
    /* Key 2 added, current; the old one verifies as default. */
    setenv("MILLOM_CPID_KEYS", "k2:two,default", 1);
    ck_assert_int_eq(keys_resolve_set("MILLOM_CPID_KEY", KEYS_PROFILE_PRODUCTION, kdir, &set, &src,
                                      err, sizeof err),
                     0);
    ck_assert_uint_eq(set.n, 2);
    ck_assert_str_eq(set.e[0].kid, "k2");
    ck_assert_str_eq(set.e[0].secret, "two");
    ck_assert_str_eq(set.e[1].kid, "");
    ck_assert_str_eq(set.e[1].secret, "one");
    /* Key 1 retired from the list but still set: refused, both named. */
    setenv("MILLOM_CPID_KEYS", "k2:two", 1);
    ck_assert_int_eq(keys_resolve_set("MILLOM_CPID_KEY", KEYS_PROFILE_PRODUCTION, kdir, &set, &src,
                                      err, sizeof err),
                     -1);
    ck_assert_msg(
        strstr(err, "MILLOM_CPID_KEY is set, but MILLOM_CPID_KEYS does not list default") == err,
        "%s", err);
    ck_assert_ptr_null(strstr(err, "one"));
    /* ... and unset: production needs nothing more. */
    unsetenv("MILLOM_CPID_KEY");
    ck_assert_int_eq(keys_resolve_set("MILLOM_CPID_KEY", KEYS_PROFILE_PRODUCTION, kdir, &set, &src,
                                      err, sizeof err),
                     0);
    ck_assert_uint_eq(set.n, 1);
    ck_assert_str_eq(set.e[0].kid, "k2");
    ck_assert_int_eq(src, KEYS_FROM_NONE);
    ck_assert_ptr_null(keys_set_find(&set, NULL, 0));
    /* The secure profile makes no key file for a set without default ... */
    ck_assert_int_eq(
        keys_resolve_set("MILLOM_CPID_KEY", KEYS_PROFILE_SECURE, kdir, &set, &src, err, sizeof err),
        0);
    ck_assert_int_eq(count_entries(kdir), -1);
    /* ... and its default is the generated file when listed. */
    setenv("MILLOM_CPID_KEYS", "default,k2:two", 1);
    ck_assert_int_eq(
        keys_resolve_set("MILLOM_CPID_KEY", KEYS_PROFILE_SECURE, kdir, &set, &src, err, sizeof err),
        0);
    ck_assert_int_eq(src, KEYS_FROM_FILE);
    ck_assert_str_eq(set.e[0].kid, "");
    ck_assert_uint_eq(strlen(set.e[0].secret), 64);
    ck_assert_int_eq(count_entries(kdir), 1);
    /* Production: default listed needs the single key. */
    ck_assert_int_eq(keys_resolve_set("MILLOM_CPID_KEY", KEYS_PROFILE_PRODUCTION, kdir, &set, &src,
                                      err, sizeof err),
                     -1);
    ck_assert_str_eq(err, "MILLOM_CPID_KEYS lists default, but MILLOM_CPID_KEY is not set "
                          "(production profile)");
    /* The same secret as default under a key id: refused. */
    setenv("MILLOM_CPID_KEY", "two", 1);
    ck_assert_int_eq(keys_resolve_set("MILLOM_CPID_KEY", KEYS_PROFILE_PRODUCTION, kdir, &set, &src,
                                      err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "key id k2 has the same secret as default"));
    /* A public sandbox default in the list: refused outside the sandbox. */
    unsetenv("MILLOM_CPID_KEY");
    char list[256];
    snprintf(list, sizeof list, "k9:%s", keys_sandbox_default("MILLOM_JWT_KEY"));
    setenv("MILLOM_JWT_KEYS", list, 1);
    ck_assert_int_eq(
        keys_resolve_set("MILLOM_JWT_KEY", KEYS_PROFILE_SECURE, kdir, &set, &src, err, sizeof err),
        -1);
    ck_assert_str_eq(err, "MILLOM_JWT_KEYS: key id k9 is the public sandbox default; set a "
                          "secret key (secure profile)");
    ck_assert_int_eq(
        keys_resolve_set("MILLOM_JWT_KEY", KEYS_PROFILE_SANDBOX, kdir, &set, &src, err, sizeof err),
        0);
    /* A bad list is the parser's error. */
    setenv("MILLOM_LINK_KEYS", "k1", 1);
    ck_assert_int_eq(keys_resolve_set("MILLOM_LINK_KEY", KEYS_PROFILE_SANDBOX, kdir, &set, &src,
                                      err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "MILLOM_LINK_KEYS must be a list"));
    /* The subscriber hash does not rotate: no list is read. */
    setenv("MILLOM_SUBSCRIBER_HASH_KEYS", "nonsense", 1);
    ck_assert_int_eq(keys_resolve_set("MILLOM_SUBSCRIBER_HASH_KEY", KEYS_PROFILE_SANDBOX, kdir,
                                      &set, &src, err, sizeof err),
                     0);
    ck_assert_int_eq(src, KEYS_FROM_SANDBOX_DEFAULT);
    unsetenv("MILLOM_SUBSCRIBER_HASH_KEYS");
    ck_assert_int_eq(keys_resolve_set("MILLOM_NO_SUCH_KEY", KEYS_PROFILE_SANDBOX, kdir, &set, &src,
                                      err, sizeof err),
                     -1);
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
    tcase_add_test(tc, key_lists_parse);
    tcase_add_test(tc, bad_key_lists_are_refused_without_the_secret);
    tcase_add_test(tc, key_ids_and_kid_prefixes);
    tcase_add_test(tc, key_sets_resolve_per_profile);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
