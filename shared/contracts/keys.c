/* Secret keys per profile: see keys.h. */
#include "shared/plumbing/settings.h"
#include "shared/contracts/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "shared/plumbing/crypto.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

#define KEY_MAX 512
#define GENERATED_BYTES 32

/* Name and public sandbox default, as the programs had them before. */
static const struct {
    const char *name;
    const char *sandbox;
} key_table[] = {
    {"MILLOM_JWT_KEY", "millom-sandbox-jwt-key-not-for-production"},
    {"MILLOM_CPID_KEY", "millom-sandbox-cpid-key (not for production)"},
    {"MILLOM_LINK_KEY", "millom-sandbox-link-key (not for production)"},
    {"MILLOM_OFFER_CONTEXT_KEY", "sandbox-offer-context-key-change-me"},
    {"MILLOM_SUBSCRIBER_HASH_KEY", "millom-sandbox-subscriber-hash-key"},
};
#define N_KEYS (sizeof key_table / sizeof key_table[0])

const char *const keys_names[] = {"MILLOM_JWT_KEY",
                                  "MILLOM_CPID_KEY",
                                  "MILLOM_LINK_KEY",
                                  "MILLOM_OFFER_CONTEXT_KEY",
                                  "MILLOM_SUBSCRIBER_HASH_KEY",
                                  NULL};
_Static_assert(sizeof keys_names / sizeof keys_names[0] == N_KEYS + 1,
               "keys_names lists every key of key_table");

static int key_index(const char *name) {
    for (size_t i = 0; name && i < N_KEYS; i++)
        if (strcmp(key_table[i].name, name) == 0) return (int)i;
    return -1;
}

const char *keys_sandbox_default(const char *name) {
    int i = key_index(name);
    return i < 0 ? NULL : key_table[i].sandbox;
}

keys_profile keys_profile_from_env(void) {
    const char *p = setting_str("MILLOM_PROFILE", NULL);
    if (p && *p) {
        if (strcmp(p, "sandbox") == 0) return KEYS_PROFILE_SANDBOX;
        if (strcmp(p, "secure") == 0) return KEYS_PROFILE_SECURE;
        if (strcmp(p, "production") == 0) return KEYS_PROFILE_PRODUCTION;
        return KEYS_PROFILE_UNKNOWN;
    }
    return setting_bool("MILLOM_AUTH_DISABLED", true) ? KEYS_PROFILE_SANDBOX : KEYS_PROFILE_SECURE;
}

const char *keys_profile_name(keys_profile p) {
    switch (p) {
    case KEYS_PROFILE_SANDBOX: return "sandbox";
    case KEYS_PROFILE_SECURE: return "secure";
    case KEYS_PROFILE_PRODUCTION: return "production";
    case KEYS_PROFILE_UNKNOWN: break;
    }
    return "unknown";
}

const char *keys_dir(char *buf, size_t len) {
    const char *d = setting_str("MILLOM_KEY_DIR", NULL);
    if (d && *d)
        snprintf(buf, len, "%s", d);
    else
        snprintf(buf, len, "%s/keys", service_data_dir());
    return buf;
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *dir) {
    char path[1024];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Reads a key file into out without trailing whitespace. 0, -1 (errno). */
static int read_key_file(const char *path, char *out, size_t outlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    while (n + 1 < outlen) {
        ssize_t r = read(fd, out + n, outlen - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) n--;
    out[n] = '\0';
    if (n == 0 || n + 1 >= outlen) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* Creates <path> with a new random key unless it exists. 0 when the file
 * exists afterwards (ours or another program's), -1 otherwise. */
static int create_key_file(const char *dir, const char *name, const char *path) {
    unsigned char raw[GENERATED_BYTES];
    char text[2 * GENERATED_BYTES + 2], tmp[1100], suffix[37];
    if (crypto_random(raw, sizeof raw) != 0) return -1;
    for (size_t i = 0; i < sizeof raw; i++) snprintf(text + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof raw);
    text[2 * GENERATED_BYTES] = '\n';
    text[2 * GENERATED_BYTES + 1] = '\0';
    crypto_uuid(suffix);
    if (snprintf(tmp, sizeof tmp, "%s/.%s.%s.tmp", dir, name, suffix) >= (int)sizeof tmp) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    OPENSSL_cleanse(text, sizeof text);
    /* link() never replaces an existing name: the first program wins. */
    int rc = ok && (link(tmp, path) == 0 || errno == EEXIST) ? 0 : -1;
    int saved = errno;
    unlink(tmp);
    errno = saved;
    return rc;
}

int keys_resolve(const char *name, keys_profile profile, const char *dir, char *out, size_t outlen,
                 keys_source *source, char *err, size_t errlen) {
    int i = key_index(name);
    if (i < 0) {
        snprintf(err, errlen, "unknown key %s", name ? name : "(null)");
        return -1;
    }
    if (profile == KEYS_PROFILE_UNKNOWN) {
        snprintf(err, errlen, "MILLOM_PROFILE must be sandbox, secure or production");
        return -1;
    }
    const char *env = setting_str(name, NULL);
    if (env && *env) {
        if (profile != KEYS_PROFILE_SANDBOX && strcmp(env, key_table[i].sandbox) == 0) {
            snprintf(err, errlen, "%s is the public sandbox default; set a secret key (%s profile)",
                     name, keys_profile_name(profile));
            return -1;
        }
        if (strlen(env) >= outlen) {
            snprintf(err, errlen, "%s is too long (at most %zu bytes)", name, outlen - 1);
            return -1;
        }
        snprintf(out, outlen, "%s", env);
        *source = KEYS_FROM_ENV;
        return 0;
    }
    if (profile == KEYS_PROFILE_SANDBOX) {
        snprintf(out, outlen, "%s", key_table[i].sandbox);
        *source = KEYS_FROM_SANDBOX_DEFAULT;
        return 0;
    }
    if (profile == KEYS_PROFILE_PRODUCTION) {
        snprintf(err, errlen,
                 "%s is not set; the production profile needs every key "
                 "(MILLOM_JWT_KEY, MILLOM_CPID_KEY, MILLOM_LINK_KEY, "
                 "MILLOM_OFFER_CONTEXT_KEY, MILLOM_SUBSCRIBER_HASH_KEY)",
                 name);
        return -1;
    }
    /* secure: the shared key file, made on first start. */
    char path[1100];
    if (!dir || !*dir || snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        snprintf(err, errlen, "%s: no usable key dir", name);
        return -1;
    }
    if (read_key_file(path, out, outlen) == 0) {
        *source = KEYS_FROM_FILE;
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: cannot read %s: %s", name, path, strerror(errno));
        return -1;
    }
    if (make_dirs(dir) != 0 || create_key_file(dir, name, path) != 0 ||
        read_key_file(path, out, outlen) != 0) {
        snprintf(err, errlen, "%s: cannot create %s: %s", name, path, strerror(errno));
        return -1;
    }
    *source = KEYS_FROM_FILE;
    return 0;
}

/* The process's keys, written once under keys_once, then read-only. */
static char loaded[N_KEYS][KEY_MAX];
static int load_status = -1;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void load_all(void) {
    keys_profile profile = keys_profile_from_env();
    char dir[1024], err[512], defaults[512] = "";
    keys_dir(dir, sizeof dir);
    for (size_t i = 0; i < N_KEYS; i++) {
        keys_source source;
        if (keys_resolve(key_table[i].name, profile, dir, loaded[i], sizeof loaded[i], &source, err,
                         sizeof err) != 0) {
            log_error("refusing to start: %s", err);
            return;
        }
        if (source == KEYS_FROM_SANDBOX_DEFAULT) {
            size_t used = strlen(defaults);
            snprintf(defaults + used, sizeof defaults - used, "%s%s", used ? ", " : "",
                     key_table[i].name);
        }
    }
    if (defaults[0])
        log_warn("SANDBOX PROFILE: PUBLIC DEFAULT KEYS in use (%s); anyone can forge tokens, "
                 "links, CPIDs and offerContexts. Never expose this outside a demo.",
                 defaults);
    else if (profile == KEYS_PROFILE_SECURE)
        log_info("keys: secure profile, unset keys from %s", dir);
    load_status = 0;
}

int keys_init(void) {
    pthread_once(&keys_once, load_all);
    return load_status;
}

const char *keys_get(const char *name) {
    int i = key_index(name);
    if (keys_init() != 0 || i < 0) {
        log_error("key %s is not available; stopping", name ? name : "(null)");
        exit(1);
    }
    return loaded[i];
}
