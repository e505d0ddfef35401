/* CPIDs ("Carrier Plan IDentifiers"): anonymous subscriber keys that apps
 * use instead of MSISDNs.
 *
 * Format (DESIGN.md, "Money and identity"):
 *
 *     [<kid> "."] <body> "," <operator MCCMNC>
 *     body = base64url, no padding ( IV[12] || AES-256-GCM ciphertext || tag[16] )
 *     plaintext = version 0x01 | issued-at ms (int64 BE) | ttl s (uint32 BE)
 *                 | msisdn length (1 byte) | msisdn digits | service provider id
 *     AAD = "millom-cpid-v1," MCCMNC   (the suffix cannot be swapped)
 *           [";kid=" kid]              (and with a key id, the id neither)
 *
 * Key ids (shared/contracts/keys.h, key sets): a CPID encrypted under a key
 * of MILLOM_CPID_KEYS starts with that key's id and a '.', which neither
 * base64 alphabet has; one under the default key (MILLOM_CPID_KEY) has no
 * id, exactly as every CPID issued before key ids, so those still decode.
 * The decoder takes the key the id names and no other.
 *
 * Why base64url for the body: the spec's example uses standard base64,
 * which may contain '/'. libmicrohttpd percent-decodes the path before the
 * handler sees it, so even a correctly URL-encoded "%2F" would split the
 * path segment. The body is therefore issued in the URL-safe alphabet
 * ('-' and '_', no '=' padding) and never contains '/'. The decoder also
 * accepts the standard alphabet and padding ('+', '/', '='), so a CPID that
 * went through a standard-base64 tool still decodes (as long as it reaches
 * us in one path segment). Apps should still URL-encode the whole CPID
 * (',' becomes %2C): it is opaque to them.
 *
 * A random 12-byte IV per CPID: every call gives a new CPID, each valid
 * for the TTL it was issued with. A CPID names its service provider; the
 * caller checks it against the provider asking (another's is useless).
 *
 * Key: MILLOM_CPID_KEY (and MILLOM_CPID_KEYS), each key 64 hex digits (the
 * raw 32-byte key) or any other text (a passphrase, hashed with SHA-256),
 * per profile through shared/contracts/keys.h (a sandbox passphrase in the
 * sandbox profile). TTL: MILLOM_CPID_TTL_S (default 2592000, 30 days). */
#ifndef MILLOM_CPID_H
#define MILLOM_CPID_H

#include <stddef.h>
#include <stdint.h>

#include "shared/contracts/keys.h"
#include "shared/plumbing/crypto.h"

#define CPID_DEFAULT_TTL_S 2592000L
#define CPID_SANDBOX_KEY "millom-sandbox-cpid-key (not for production)"
#define CPID_MAX_LEN 256 /* an issued CPID is ~100 characters, ~120 with a key id */

typedef struct {
    char kid[KEYS_KID_MAX + 1]; /* "" for the default key */
    unsigned char key[CRYPTO_AEAD_KEY_LEN];
} cpid_key;

typedef struct {
    cpid_key keys[KEYS_MAX_PER_SET]; /* keys[0] issues; every one decodes */
    size_t n;
    long ttl_s;
} cpid_config;

/* One default key from key text (hex or passphrase; NULL means the sandbox
 * key) and TTL (<= 0 means the default). 0, or -1 when the key text is
 * empty. */
int cpid_config_init(cpid_config *c, const char *key_text, long ttl_s);
/* The same from a key set (shared/contracts/keys.h): its first key issues,
 * every one decodes. 0, or -1 for an empty set or an empty key. */
int cpid_config_init_set(cpid_config *c, const keys_set *keys, long ttl_s);
/* The process-wide config from MILLOM_CPID_KEY(S) and MILLOM_CPID_TTL_S,
 * read once (thread-safe). */
const cpid_config *cpid_config_default(void);

/* Writes a new CPID for (msisdn digits, provider, operator MCCMNC) issued
 * at now_ms under the current key (with its key id, if it has one). 0, or
 * -1 on bad input or a crypto failure. */
int cpid_issue(const cpid_config *c, const char *msisdn, const char *provider, const char *mccmnc,
               int64_t now_ms, char *out, size_t outlen);

typedef enum {
    CPID_OK = 0,
    CPID_MALFORMED, /* no ",MCCMNC", bad base64, too short, wrong version */
    CPID_TAMPERED,  /* does not authenticate under the key its id names, or
                       names a key we do not have (foreign, or retired) */
    CPID_EXPIRED,   /* issued-at + ttl <= now (or issued in the future) */
} cpid_status;

typedef struct {
    char msisdn[16];
    char provider[65];
    char mccmnc[8];
    int64_t issued_ms;
    int64_t expires_ms;
} cpid_info;

/* Decodes and authenticates a CPID and checks its lifetime at now_ms.
 * out is filled for CPID_OK and CPID_EXPIRED (so a caller can still tell
 * whose it was); zeroed otherwise. */
cpid_status cpid_decode(const cpid_config *c, const char *cpid, int64_t now_ms, cpid_info *out);
const char *cpid_status_text(cpid_status s);

#endif
