/* Secret keys by name, one place for every program, per profile:
 *
 *   sandbox    (MILLOM_PROFILE=sandbox, or unset with MILLOM_AUTH_DISABLED
 *              not 0): a key's environment variable if set, else its public
 *              sandbox default, with one loud warning naming them.
 *   secure     (MILLOM_PROFILE=secure, or unset with MILLOM_AUTH_DISABLED=0):
 *              the environment variable if set, else the key file
 *              <key dir>/<NAME>, generated on first start (32 random bytes
 *              as 64 hex digits, mode 0600) and reused by every program
 *              that shares the key dir.
 *   production (MILLOM_PROFILE=production): every key must be set in the
 *              environment; a missing one stops the program (named in one
 *              log line, exit status 1).
 * Outside the sandbox a key equal to its sandbox default is refused too.
 *
 * Key dir: MILLOM_KEY_DIR, default <MILLOM_DATA_DIR>/keys.
 * Key files are created atomically: the key is written to a private
 * temporary file (O_EXCL) and link()ed to its name, which fails if the name
 * exists, so of two programs starting at once one wins and both read the
 * winner's key. */
#ifndef MILLOM_KEYS_H
#define MILLOM_KEYS_H

#include <stddef.h>

typedef enum {
    KEYS_PROFILE_SANDBOX,
    KEYS_PROFILE_SECURE,
    KEYS_PROFILE_PRODUCTION,
    KEYS_PROFILE_UNKNOWN, /* MILLOM_PROFILE names no profile */
} keys_profile;

/* Every key name, NULL-terminated. */
extern const char *const keys_names[];

/* The profile from MILLOM_PROFILE and MILLOM_AUTH_DISABLED. */
keys_profile keys_profile_from_env(void);
const char *keys_profile_name(keys_profile p);
/* The public sandbox default of a key; NULL for an unknown name. */
const char *keys_sandbox_default(const char *name);
/* The key dir: MILLOM_KEY_DIR or <MILLOM_DATA_DIR>/keys, into buf. */
const char *keys_dir(char *buf, size_t len);

typedef enum {
    KEYS_FROM_ENV,
    KEYS_FROM_SANDBOX_DEFAULT,
    KEYS_FROM_FILE,
} keys_source;

/* Resolves one key for a profile (dir: the key dir, for secure) into out.
 * 0 with *source set, or -1 with a one-line reason in err that names the
 * key (unknown profile or name, missing in production, sandbox default
 * outside the sandbox, key dir or file unusable). No caching, no logging. */
int keys_resolve(const char *name, keys_profile profile, const char *dir, char *out, size_t outlen,
                 keys_source *source, char *err, size_t errlen);

/* Resolves every key for this process's profile, once (thread-safe);
 * warns once when sandbox defaults are in use. 0, or -1 after logging the
 * reason. Every service calls it first thing (runner_main, api-edge's
 * main) and stops with exit status 1 on -1; programs that hold no key
 * (devbroker, the sandboxes) never touch the key dir. */
int keys_init(void);
/* The key text of `name` (one of keys_names) after keys_init; a failed
 * keys_init ends the process (exit 1): no key is ever guessed. */
const char *keys_get(const char *name);

#endif
