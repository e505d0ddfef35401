/* OAuth 2.0 for api-edge: the clients of the tenants file (auth_clients.c),
 * JWT bearer tokens (HS256, libjwt), client credentials parsing, per-client
 * token buckets and what a route of the route table needs (auth.c). Everything
 * here but edge_auth_request is pure or clock-injected, so it is
 * unit-tested directly. */
#ifndef API_EDGE_AUTH_H
#define API_EDGE_AUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include "shared/contracts/config.h"
#include "shared/contracts/keys.h"

#define AUTH_MAX_SECRETS 2
#define AUTH_MAX_SCOPES 16
#define AUTH_ISSUER "millom"
#define AUTH_SANDBOX_JWT_KEY "millom-sandbox-jwt-key-not-for-production"

/* One OAuth client ("clients" in the tenants file). Strings are borrowed
 * from the tenants JSON. */
typedef struct {
    const char *id;
    const char *provider; /* serviceProvider it belongs to, or NULL */
    const char *op;       /* operator it belongs to, or NULL */
    const char *secret_hashes[AUTH_MAX_SECRETS];
    size_t n_secrets;
    const char *scopes[AUTH_MAX_SCOPES];
    size_t n_scopes;
    bool enabled;
    double per_second, burst;
} auth_client;

typedef struct {
    auth_client *items;
    size_t n;
    /* The costliest check: the most hashes any client has, and the most
     * PBKDF2 work (iterations x 32-byte blocks) of any one hash. */
    size_t max_secrets;
    long max_cost;
} auth_clients;

/* Loads tenants_json(t)'s "clients" (absent means none). -1 with err. */
int auth_clients_load(auth_clients *out, const tenants *t, char *err, size_t errlen);
void auth_clients_free(auth_clients *c);
const auth_client *auth_clients_find(const auth_clients *c, const char *id);
/* 1 if secret matches one of the client's hashes ("sha256:<hex>" or
 * "pbkdf2-sha256:<iter>:<salt-hex>:<hash-hex>"); constant-time compare,
 * every hash checked. */
int auth_client_check_secret(const auth_client *c, const char *secret);
int auth_secret_matches(const char *stored, const char *secret);
/* Work done by a secret check: hash slots computed, and PBKDF2 work
 * (iterations x blocks) in all, real and dummy. */
typedef struct {
    long hashes;
    long iterations;
} auth_hash_work;
/* auth_client_check_secret at a cost that does not depend on the client:
 * c may be NULL (an unknown id; the answer is then 0). Every call computes
 * cs->max_secrets hash slots, each padded with dummy PBKDF2 work (the same
 * secret, a fixed salt) up to cs->max_cost; so a known id with one hash,
 * one with two (rotation) and an unknown id cost the same, and the answer
 * time tells nothing about which ids exist. Adds the work to *work (may
 * be NULL). Every hash is checked, each compare constant-time. */
int auth_check_secret_equal_cost(const auth_clients *cs, const auth_client *c, const char *secret,
                                 auth_hash_work *work);
int auth_client_has_scope(const auth_client *c, const char *scope);
/* Resolves a requested scope string (space-separated; NULL or blank: all
 * of the client's) into out as a space-separated list. -1 if any scope is
 * not the client's or the result does not fit. */
int auth_scope_resolve(const auth_client *c, const char *requested, char *out, size_t outlen);
/* 1 if the space-separated list contains scope. */
int auth_scope_list_has(const char *list, const char *scope);
/* 1 if one of `alternatives` (a route's scope: space-separated, any one
 * will do) is both in the token's space-separated scope list and still
 * the client's. */
int auth_scope_granted(const char *token_scopes, const auth_client *client,
                       const char *alternatives);

/* Tokens. now is epoch seconds. */
typedef struct {
    char sub[129];
    char scope[1024];
    char sp[65];
    char op[33];
    long iat, exp; /* iat 0 when the token has none */
    long nbf;      /* 0 when the token has none */
} auth_claims;

/* Clock skew tolerated between token issuers and this server, seconds. */
#define AUTH_CLOCK_LEEWAY_S 60

/* Issues a JWT for the client, signed with key (HS256) and, when the key
 * has an id (MILLOM_JWT_KEYS), naming it in the `kid` header; the default
 * key's tokens have no kid, as before key ids. NULL on failure. Caller
 * frees (free()). */
char *auth_token_issue(const auth_client *c, const char *scope, const keys_entry *key, long now,
                       long ttl_s);
/* 0 and the claims if the token is HS256 under the key of keys that its
 * `kid` header names (no kid: the default key; a kid keys does not have,
 * a retired key: refused, no other key tried), iss "millom", not expired
 * at now, and neither iat nor nbf (when present) later than now +
 * AUTH_CLOCK_LEEWAY_S; -1 otherwise with a reason in msg. */
int auth_token_verify(const char *token, const keys_set *keys, long now, auth_claims *out,
                      char *msg, size_t msglen);

/* 0 if the verified token lives no longer than this server issues tokens
 * for: exp - iat <= max_ttl_s + AUTH_CLOCK_LEEWAY_S (without iat: exp -
 * now). -1 with a reason in msg otherwise (a token minted elsewhere, or
 * with a leaked key, for years). */
int auth_token_lifetime_ok(const auth_claims *c, long now, long max_ttl_s, char *msg,
                           size_t msglen);

/* Token buckets per key, mutex-protected; the clock (seconds, monotonic)
 * is injectable. */
typedef double (*auth_clock_fn)(void);
typedef struct auth_limiter auth_limiter;
auth_limiter *auth_limiter_new(auth_clock_fn clock);
void auth_limiter_free(auth_limiter *l);
/* 1 if a request is allowed now; 0 otherwise with *retry_after the whole
 * seconds until a token is available (at least 1). */
int auth_limiter_take(auth_limiter *l, const char *key, double per_second, double burst,
                      int *retry_after);

/* What a route needs. */
typedef enum { AUTH_OPEN, AUTH_TOKEN } auth_need_kind;
typedef struct {
    auth_need_kind kind;
    char scope[96]; /* "" when any valid token will do */
    char sp[65];    /* the token's sp must equal this, when set */
    char op[33];    /* the token's op must equal this, when set */
} auth_need;
/* What the request's row of the route table (routes.h) needs: its kind,
 * its scope with the path's parameters filled in, and the path's tenant
 * the token must belong to. A 405 needs what the first row of its path
 * needs; an unknown path what its area's catch-all row says ("?" for a
 * tenant segment that is empty or too long: no token belongs to it). */
struct edge_match;
void auth_need_of(const struct edge_match *m, auth_need *out);
/* auth_need_of the row edge_route_find gives for method and path. */
void auth_route_need(const char *method, const char *path, auth_need *out);

/* The state api-edge keeps (edge.h's api_edge.auth). The clients are not
 * here: they come with the tenants file's version a request is served
 * with (tenants_reload.h), so a reload applies to the next request. */
struct edge_auth {
    bool enabled;         /* MILLOM_AUTH_DISABLED=0 */
    const keys_set *keys; /* MILLOM_JWT_KEY(S): e[0] signs (static, keys.h) */
    long ttl_s;
    auth_limiter *limiter;
    struct token_limits *token_limits; /* POST /oauth/v1/token (token_limits.h) */
    struct oauth_pool *oauth_pool;     /* its secret checks (routes_oauth.c) */
};
/* Reads MILLOM_AUTH_DISABLED, MILLOM_JWT_KEY(S) (through shared/contracts/keys.h),
 * MILLOM_TOKEN_TTL_S and the MILLOM_TOKEN_* limits (token_limits.h), and
 * starts the hashing threads. NULL with err (naming a bad setting). */
struct edge_auth *edge_auth_new(char *err, size_t errlen);
/* Before the HTTP server stops: lets running secret checks finish and
 * answers the waiting ones 503; later token requests get 503 at once. */
void edge_auth_close(struct edge_auth *a);
void edge_auth_free(struct edge_auth *a);

/* The token endpoint's hashing pool (routes_oauth.c): cfg's hash_threads
 * threads and a queue of hash_queue. NULL with err. */
struct oauth_pool *oauth_pool_new(struct edge_auth *a, long threads, long queue, char *err,
                                  size_t errlen);
void oauth_pool_close(struct oauth_pool *p);
void oauth_pool_free(struct oauth_pool *p);

#endif
