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
 * Key sets (rotation): four keys have a second, list setting, the key's
 * name with an S (MILLOM_JWT_KEYS, MILLOM_CPID_KEYS, MILLOM_LINK_KEYS,
 * MILLOM_OFFER_CONTEXT_KEYS), e.g.
 *
 *     MILLOM_CPID_KEYS="k2:<secret>,default"
 *
 * Entries are separated by commas (spaces around them ignored); each is
 * kid:secret or the word default. The FIRST entry signs or encrypts what is
 * issued from now on; every entry verifies or decrypts. Key ids are 1 to
 * KEYS_KID_MAX of A-Z a-z 0-9 _ -; a secret in the list is 1 to
 * KEYS_SECRET_MAX printable ASCII characters without spaces or commas
 * (any text it is as a single key: hex or passphrase, the module decides).
 * `default` is the key of the single-key setting (MILLOM_CPID_KEY),
 * resolved per profile as above; what it issues carries no key id, exactly
 * as before key ids existed, so everything issued before them still
 * verifies. The list unset or empty is `default` alone: the one key of
 * before. A list without `default` leaves the single-key setting unused:
 * then it must not be set either (an error, so that retiring it is never
 * an accident), the secure profile makes no key file for it and the
 * production profile does not require it.
 * Every issued artefact names its key: no key id means the default key,
 * "<kid>." in front of a CPID, offerContext or link signature (JWT: the
 * `kid` header) names a listed one. A verifier looks the id up
 * (keys_set_find) and uses that key alone; an id it does not know (a
 * retired key) fails like a forgery. Errors name the setting and the
 * entry, never a secret; the log names key ids only.
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
    KEYS_FROM_NONE, /* a key set without the default key (keys_resolve_set) */
} keys_source;

/* Resolves one key for a profile (dir: the key dir, for secure) into out.
 * 0 with *source set, or -1 with a one-line reason in err that names the
 * key (unknown profile or name, missing in production, sandbox default
 * outside the sandbox, key dir or file unusable). No caching, no logging. */
int keys_resolve(const char *name, keys_profile profile, const char *dir, char *out, size_t outlen,
                 keys_source *source, char *err, size_t errlen);

/* Key sets (see above). */
#define KEYS_MAX_PER_SET 8
#define KEYS_KID_MAX 16
#define KEYS_SECRET_MAX 511
#define KEYS_DEFAULT_ENTRY "default"

typedef struct {
    char kid[KEYS_KID_MAX + 1]; /* "" for the default key (artefacts without a key id) */
    char secret[KEYS_SECRET_MAX + 1];
} keys_entry;

typedef struct {
    size_t n;                       /* 1 to KEYS_MAX_PER_SET once resolved */
    keys_entry e[KEYS_MAX_PER_SET]; /* e[0] is the current key: it signs */
} keys_set;

/* The list setting of a key that rotates ("MILLOM_CPID_KEYS" for
 * "MILLOM_CPID_KEY"); NULL for one that does not (the subscriber hash: a
 * hash has no room for a key id) or an unknown name. */
const char *keys_list_setting(const char *name);
/* 1 if the len bytes at kid are a key id: 1 to KEYS_KID_MAX of
 * A-Z a-z 0-9 _ -, and not the word default. */
int keys_kid_ok(const char *kid, size_t len);
/* Parses a list setting's value (pure: no environment, no files). The
 * entries into out in their order, `default` as an entry with kid "" and
 * an empty secret for the caller to fill, its index into *default_at (-1
 * when absent). 0, or -1 with one line in err that names `setting` and the
 * entry (by position and key id), never a secret: an empty entry, no ':',
 * a bad key id, an empty, long or unprintable secret, default with a
 * secret, a key id or default twice, the same secret twice, more than
 * KEYS_MAX_PER_SET entries. */
int keys_parse_list(const char *setting, const char *value, keys_set *out, int *default_at,
                    char *err, size_t errlen);
/* Resolves the key set of `name` for a profile: its list setting, with
 * `default` (or the whole set when the list is unset) resolved as
 * keys_resolve does. *default_source (may be NULL) gets where the default
 * key came from, KEYS_FROM_NONE when the set has none. 0, or -1 with one line in
 * err naming the setting (keys_parse_list's errors, keys_resolve's, a
 * sandbox default in the list outside the sandbox, the single-key setting
 * set while the list leaves it out). No caching, no logging. */
int keys_resolve_set(const char *name, keys_profile profile, const char *dir, keys_set *out,
                     keys_source *default_source, char *err, size_t errlen);
/* The entry with key id kid (kid_len bytes; 0: the default key), or NULL
 * when the set has none: the artefact is refused. */
const keys_entry *keys_set_find(const keys_set *s, const char *kid, size_t kid_len);
/* A set of one default key (tests, tools): 0, or -1 when secret is NULL,
 * empty or longer than KEYS_SECRET_MAX. */
int keys_set_one(keys_set *out, const char *secret);
/* The key id in front of an artefact's text ("<kid>.<rest>"): 0 with
 * *kid_len its length, 0 when the text has no '.' (the default key; the
 * rest is all of it); the rest starts at *kid_len + 1 otherwise. -1 when
 * there is a '.' but no key id before it. Looks at len bytes at most. */
int keys_kid_prefix(const char *text, size_t len, size_t *kid_len);

/* Resolves every key for this process's profile, once (thread-safe);
 * warns once when sandbox defaults are in use. 0, or -1 after logging the
 * reason. Every service calls it first thing (runner_main, api-edge's
 * main) and stops with exit status 1 on -1; programs that hold no key
 * (devbroker, the sandboxes) never touch the key dir. */
int keys_init(void);
/* The key set of `name` (one of keys_names) after keys_init; a failed
 * keys_init ends the process (exit 1): no key is ever guessed. Static:
 * valid for the process's life. */
const keys_set *keys_get_set(const char *name);
/* The current key's text of `name` (keys_get_set's e[0].secret): for a key
 * that does not rotate; a verifier of one that does needs the whole set. */
const char *keys_get(const char *name);

#endif
