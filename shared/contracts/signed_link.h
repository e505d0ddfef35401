/* Signed links (DESIGN.md, Security): URLs that carry their own credential,
 * for the rich-notification endpoints /rnf/{serviceProvider}/{operator}/
 * {cpid}/{offers|ping|purchasePlan|shop} (rich-notification-api.yaml).
 *
 * A link carries the spec's query parameters
 *
 *     uuid=<random RFC 4122 v4>&expirySeconds=<epoch seconds>&signature=<s>
 *
 * plus the endpoint's own parameters (purchasePlan: planId, transactionId,
 * fundSource). signature = base64url (no padding) of
 *
 *     HMAC-SHA256(key, "millom-link-v1" | path | uuid | expirySeconds
 *                      | each present parameter, sorted by name: name, value)
 *
 * where every field is written "<length>:<bytes>;" so no choice of values
 * can make two different links sign the same text. path is the decoded
 * path ("/rnf/sp/op/<cpid>/offers", as the HTTP server hands it over);
 * signed_link_make percent-encodes its segments in the URL.
 *
 * The verifier names the parameters its endpoint reads: those are covered
 * (present or absent alike: adding or removing one breaks the signature);
 * any other query parameter is ignored by the endpoint anyway.
 *
 * Keys: a key set (shared/contracts/keys.h), read once. A link signed with
 * the default key (MILLOM_LINK_KEY) is exactly as above, as every link was
 * before key ids. One signed with a key of MILLOM_LINK_KEYS has
 *
 *     signature = <kid> "." base64url(HMAC-SHA256(key, "millom-link-v2" | kid
 *                       | path | uuid | expirySeconds | parameters))
 *
 * (the same fields; the id is signed too, and '.' is no base64url
 * character). So the link keeps the spec's three parameters, the shop's
 * form its fields, and the verifier takes the key the id names and no
 * other: a link of a retired key is refused like a forged one. Keys are
 * any text. */
#ifndef MILLOM_SIGNED_LINK_H
#define MILLOM_SIGNED_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "shared/contracts/keys.h"

#define SIGNED_LINK_SANDBOX_KEY "millom-sandbox-link-key (not for production)"
#define SIGNED_LINK_MAX_PARAMS 16

typedef struct {
    const char *name;
    const char *value; /* NULL: the parameter is absent */
} signed_link_param;

/* "<base_url><encoded path>?uuid=..&expirySeconds=..&<params>&signature=..",
 * expiring ttl_s seconds after now_ms (a ttl <= 0 makes a link that is
 * already expired: for tests). base_url may be "" for a path-absolute
 * link. NULL on bad input (path not starting with '/', a parameter named
 * uuid/expirySeconds/signature, more than SIGNED_LINK_MAX_PARAMS, a
 * duplicate name). Caller frees. */
char *signed_link_make(const char *base_url, const char *path, const signed_link_param *params,
                       size_t n_params, long ttl_s, int64_t now_ms);

/* The same link's parts for an HTML form (a POST carrying them as fields
 * instead of the query): action is the percent-encoded path (caller
 * frees), uuid, expirySeconds and signature the values the link's query
 * would carry. 0, or -1 on bad input (as signed_link_make). */
typedef struct {
    char *action;
    char uuid[37];
    char expiry[32];
    char signature[64]; /* a key id (16 at most), '.', 43 characters */
} signed_link_form;
int signed_link_make_form(const char *path, const signed_link_param *params, size_t n_params,
                          long ttl_s, int64_t now_ms, signed_link_form *out);

/* How the verifier reads the request's query parameters (NULL: absent). */
typedef const char *(*signed_link_query_fn)(void *ctx, const char *name);

#define SIGNED_LINK_OK 0
#define SIGNED_LINK_BAD (-1)     /* tampered, malformed, missing uuid/expiry/signature */
#define SIGNED_LINK_EXPIRED (-2) /* authentic, but expirySeconds <= now */

/* Verifies the link that reached `path` with the query read by get(ctx, ..).
 * names: the endpoint's own parameters (NULL-terminated list, may be NULL).
 * The signature is compared in constant time and checked before expiry. */
int signed_link_verify(const char *path, signed_link_query_fn get, void *ctx,
                       const char *const *names, int64_t now_ms);

/* The same with explicit keys (tests, tools, and the process's keys above):
 * made with the set's current key (e[0]), verified with the key of the set
 * that the signature's key id names. */
char *signed_link_make_keys(const keys_set *keys, const char *base_url, const char *path,
                            const signed_link_param *params, size_t n_params, long ttl_s,
                            int64_t now_ms);
int signed_link_verify_keys(const keys_set *keys, const char *path, signed_link_query_fn get,
                            void *ctx, const char *const *names, int64_t now_ms);

#endif
