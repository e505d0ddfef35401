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

#include <stdarg.h>

#define GENERATED_BYTES 32

/* Name, list setting (keys that rotate) and public sandbox default, as the
 * programs had them before. */
static const struct {
    const char *name;
    const char *list;
    const char *sandbox;
} key_table[] = {
    {"MILLOM_JWT_KEY", "MILLOM_JWT_KEYS", "millom-sandbox-jwt-key-not-for-production"},
    {"MILLOM_CPID_KEY", "MILLOM_CPID_KEYS", "millom-sandbox-cpid-key (not for production)"},
    {"MILLOM_LINK_KEY", "MILLOM_LINK_KEYS", "millom-sandbox-link-key (not for production)"},
    {"MILLOM_OFFER_CONTEXT_KEY", "MILLOM_OFFER_CONTEXT_KEYS",
     "sandbox-offer-context-key-change-me"},
    {"MILLOM_SUBSCRIBER_HASH_KEY", NULL, "millom-sandbox-subscriber-hash-key"},
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

const char *keys_list_setting(const char *name) {
    int i = key_index(name);
    return i < 0 ? NULL : key_table[i].list;
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

/* The key table's index of name, when name is a key and the profile is
 * known; -1 with err otherwise. */
static int key_checked(const char *name, keys_profile profile, char *err, size_t errlen) {
    int i = key_index(name);
    if (i < 0) {
        snprintf(err, errlen, "unknown key %s", name ? name : "(null)");
        return -1;
    }
    if (profile == KEYS_PROFILE_UNKNOWN) {
        snprintf(err, errlen, "MILLOM_PROFILE must be sandbox, secure or production");
        return -1;
    }
    return i;
}

int keys_resolve(const char *name, keys_profile profile, const char *dir, char *out, size_t outlen,
                 keys_source *source, char *err, size_t errlen) {
    int i = key_checked(name, profile, err, errlen);
    if (i < 0) return -1;
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
                 "MILLOM_OFFER_CONTEXT_KEY, MILLOM_SUBSCRIBER_HASH_KEY; the first four "
                 "may be *_KEYS lists instead)",
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

/* ---- key sets ---- */

int keys_kid_ok(const char *kid, size_t len) {
    if (!kid || len == 0 || len > KEYS_KID_MAX) return 0;
    if (len == strlen(KEYS_DEFAULT_ENTRY) && memcmp(kid, KEYS_DEFAULT_ENTRY, len) == 0) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = kid[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* "<setting> must be <shape>: <reason>"; -1. Reasons name entries by
 * position and key id, never a secret. */
static int list_fail(char *err, size_t errlen, const char *setting, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int list_fail(char *err, size_t errlen, const char *setting, const char *fmt, ...) {
    int n = snprintf(
        err, errlen,
        "%s must be a list of kid:secret or default entries separated by commas: ", setting);
    if (n > 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A secret in a list: printable ASCII, no space (the comma ends the entry). */
static int secret_ok(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
    return 1;
}

/* keys_parse_list's work; on -1, out may hold part of the secrets. */
static int parse_entries(const char *setting, const char *value, keys_set *out, int *default_at,
                         char *err, size_t errlen) {
    const size_t dlen = strlen(KEYS_DEFAULT_ENTRY);
    /* The single-key setting's name: the list's without its final S. */
    int single_len = (int)strlen(setting) - 1;
    const char *p = value ? value : "";
    for (int entry = 1;; entry++) {
        const char *comma = strchr(p, ',');
        const char *s = p;
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*s == ' ' || *s == '\t')) s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
        if (n == 0) return list_fail(err, errlen, setting, "entry %d is empty", entry);
        if (out->n == KEYS_MAX_PER_SET)
            return list_fail(err, errlen, setting, "more than %d entries", KEYS_MAX_PER_SET);
        if (n == dlen && memcmp(s, KEYS_DEFAULT_ENTRY, dlen) == 0) {
            if (*default_at >= 0)
                return list_fail(err, errlen, setting, "default is there twice (entries %d and %d)",
                                 *default_at + 1, entry);
            *default_at = (int)out->n++; /* its secret: the caller's */
        } else {
            const char *colon = memchr(s, ':', n);
            if (!colon)
                return list_fail(err, errlen, setting, "entry %d is neither kid:secret nor default",
                                 entry);
            size_t klen = (size_t)(colon - s), slen = n - klen - 1;
            const char *secret = colon + 1;
            if (klen == dlen && memcmp(s, KEYS_DEFAULT_ENTRY, dlen) == 0)
                return list_fail(err, errlen, setting,
                                 "entry %d: write default alone (its key is %.*s's)", entry,
                                 single_len, setting);
            if (!keys_kid_ok(s, klen))
                return list_fail(err, errlen, setting,
                                 "entry %d: a key id is 1 to %d of A-Z a-z 0-9 _ -", entry,
                                 KEYS_KID_MAX);
            keys_entry *e = &out->e[out->n];
            memcpy(e->kid, s, klen);
            e->kid[klen] = '\0';
            if (slen == 0)
                return list_fail(err, errlen, setting, "entry %d (key id %s): the secret is empty",
                                 entry, e->kid);
            if (slen > KEYS_SECRET_MAX)
                return list_fail(err, errlen, setting,
                                 "entry %d (key id %s): the secret is longer than %d bytes", entry,
                                 e->kid, KEYS_SECRET_MAX);
            if (!secret_ok(secret, slen))
                return list_fail(err, errlen, setting,
                                 "entry %d (key id %s): a secret here is printable ASCII without "
                                 "spaces",
                                 entry, e->kid);
            memcpy(e->secret, secret, slen);
            e->secret[slen] = '\0';
            for (size_t k = 0; k < out->n; k++) {
                if ((int)k == *default_at) continue;
                if (strcmp(out->e[k].kid, e->kid) == 0)
                    return list_fail(err, errlen, setting,
                                     "key id %s is there twice (entries %zu and %d)", e->kid, k + 1,
                                     entry);
                if (strcmp(out->e[k].secret, e->secret) == 0)
                    return list_fail(err, errlen, setting,
                                     "entries %zu and %d (key ids %s and %s) have the same secret",
                                     k + 1, entry, out->e[k].kid, e->kid);
            }
            out->n++;
        }
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

int keys_parse_list(const char *setting, const char *value, keys_set *out, int *default_at,
                    char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    *default_at = -1;
    if (parse_entries(setting, value, out, default_at, err, errlen) == 0) return 0;
    OPENSSL_cleanse(out, sizeof *out); /* no secret stays behind a refused list */
    out->n = 0;
    *default_at = -1;
    return -1;
}

/* keys_resolve_set's work; on -1, out may hold secrets. */
static int resolve_set(const char *name, keys_profile profile, const char *dir, keys_set *out,
                       keys_source *default_source, char *err, size_t errlen) {
    int i = key_checked(name, profile, err, errlen);
    if (i < 0) return -1;
    const char *list = key_table[i].list;
    const char *value = list ? setting_str(list, NULL) : NULL;
    const char *single = setting_str(name, NULL);
    int default_at = 0;
    if (value && *value) {
        if (keys_parse_list(list, value, out, &default_at, err, errlen) != 0) return -1;
    } else {
        out->n = 1; /* the single key of before: the default key alone */
    }
    if (default_at < 0 && single && *single) {
        snprintf(err, errlen,
                 "%s is set, but %s does not list default: add default to %s to keep "
                 "verifying what %s issued, or unset %s to retire that key",
                 name, list, list, name, name);
        return -1;
    }
    if (default_at >= 0 && value && *value && profile == KEYS_PROFILE_PRODUCTION &&
        !(single && *single)) {
        snprintf(err, errlen, "%s lists default, but %s is not set (production profile)", list,
                 name);
        return -1;
    }
    keys_source src = KEYS_FROM_NONE;
    if (default_at >= 0) {
        keys_entry *d = &out->e[default_at];
        if (keys_resolve(name, profile, dir, d->secret, sizeof d->secret, &src, err, errlen) != 0)
            return -1;
        for (size_t k = 0; k < out->n; k++) {
            if ((int)k != default_at && strcmp(out->e[k].secret, d->secret) == 0) {
                snprintf(err, errlen,
                         "%s: key id %s has the same secret as default (%s); give each key its "
                         "own",
                         list, out->e[k].kid, name);
                return -1;
            }
        }
    }
    for (size_t k = 0; profile != KEYS_PROFILE_SANDBOX && k < out->n; k++) {
        if ((int)k != default_at && strcmp(out->e[k].secret, key_table[i].sandbox) == 0) {
            snprintf(err, errlen,
                     "%s: key id %s is the public sandbox default; set a secret key (%s profile)",
                     list, out->e[k].kid, keys_profile_name(profile));
            return -1;
        }
    }
    if (default_source) *default_source = src;
    return 0;
}

int keys_resolve_set(const char *name, keys_profile profile, const char *dir, keys_set *out,
                     keys_source *default_source, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (default_source) *default_source = KEYS_FROM_NONE;
    if (resolve_set(name, profile, dir, out, default_source, err, errlen) == 0) return 0;
    OPENSSL_cleanse(out, sizeof *out);
    out->n = 0;
    if (default_source) *default_source = KEYS_FROM_NONE;
    return -1;
}

const keys_entry *keys_set_find(const keys_set *s, const char *kid, size_t kid_len) {
    if (!s || (kid_len && !kid)) return NULL;
    for (size_t i = 0; i < s->n && i < KEYS_MAX_PER_SET; i++) {
        const keys_entry *e = &s->e[i];
        if (strlen(e->kid) == kid_len && (kid_len == 0 || memcmp(e->kid, kid, kid_len) == 0))
            return e;
    }
    return NULL;
}

int keys_set_one(keys_set *out, const char *secret) {
    memset(out, 0, sizeof *out);
    size_t n = secret ? strlen(secret) : 0;
    if (n == 0 || n > KEYS_SECRET_MAX) return -1;
    memcpy(out->e[0].secret, secret, n + 1);
    out->n = 1;
    return 0;
}

int keys_kid_prefix(const char *text, size_t len, size_t *kid_len) {
    *kid_len = 0;
    const char *dot = text ? memchr(text, '.', len) : NULL;
    if (!dot) return 0;
    size_t k = (size_t)(dot - text);
    if (!keys_kid_ok(text, k)) return -1;
    *kid_len = k;
    return 0;
}

/* ---- the process's keys ---- */

/* Written once under keys_once, then read-only. */
static keys_set loaded[N_KEYS];
static int load_status = -1;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

/* One line for a set that has key ids: which signs, which verify. Key ids
 * only, never a secret. */
static void log_set(size_t i) {
    const keys_set *s = &loaded[i];
    if (s->n == 1 && !s->e[0].kid[0]) return; /* the single key of before */
    char kids[KEYS_MAX_PER_SET * (KEYS_KID_MAX + 2) + 1] = "";
    for (size_t k = 0; k < s->n; k++) {
        size_t used = strlen(kids);
        snprintf(kids + used, sizeof kids - used, "%s%s", k ? ", " : "",
                 s->e[k].kid[0] ? s->e[k].kid : KEYS_DEFAULT_ENTRY);
    }
    log_info("keys: %s: %s signs; verifying %s", key_table[i].list,
             s->e[0].kid[0] ? s->e[0].kid : KEYS_DEFAULT_ENTRY, kids);
}

static void load_all(void) {
    keys_profile profile = keys_profile_from_env();
    char dir[1024], err[512], defaults[512] = "";
    keys_dir(dir, sizeof dir);
    for (size_t i = 0; i < N_KEYS; i++) {
        keys_source source;
        if (keys_resolve_set(key_table[i].name, profile, dir, &loaded[i], &source, err,
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
    for (size_t i = 0; i < N_KEYS; i++) log_set(i);
    load_status = 0;
}

int keys_init(void) {
    pthread_once(&keys_once, load_all);
    return load_status;
}

const keys_set *keys_get_set(const char *name) {
    int i = key_index(name);
    if (keys_init() != 0 || i < 0) {
        log_error("key %s is not available; stopping", name ? name : "(null)");
        exit(1);
    }
    return &loaded[i];
}

const char *keys_get(const char *name) { return keys_get_set(name)->e[0].secret; }
