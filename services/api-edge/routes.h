/* api-edge's routes in one table (routes.c): for every endpoint its
 * method(s), its path pattern, the handler, the authentication it needs
 * (an OAuth token with a scope and the tenant the token must belong to,
 * or none, a signed link, the operator's IP ranges) and how its body and
 * errors look. router.c finds a request's row here once and applies the
 * Host check, the row's authentication (auth.c), the JSON body check and
 * then the handler, 404 or 405 (with Allow). The matcher is pure, so
 * every rule is unit-tested directly (test_api_edge_routes.c).
 *
 * Patterns: "/"-separated segments, each a literal, a parameter
 * ({serviceProvider}, {operator}, {subscriberId}, {cpid}, {transid}, {planId}, {topupId}:
 * non-empty, at most the size of its edge_params field, copied as the
 * (already percent-decoded) path has it), or a final "**" (any rest,
 * also none). Rows are tried in order; the first whose pattern matches
 * decides the authentication. */
#ifndef API_EDGE_ROUTES_H
#define API_EDGE_ROUTES_H

#include <stddef.h>
#include "shared/contracts/cpid.h"
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/snapshot.h"

/* A route's parameters, extracted by the router ("" when the pattern has
 * none of that name). */
typedef struct {
    char provider[65];           /* {serviceProvider} */
    char op[33];                 /* {operator} */
    char subscriber[257];        /* {subscriberId}: MSISDN, CPID or OPET */
    char cpid[CPID_MAX_LEN + 1]; /* {cpid} */
    char transid[129];           /* {transid} */
    char plan_id[129];           /* {planId} */
    char topup_id[65];           /* {topupId} */
} edge_params;

/* Who may call a route. */
typedef enum {
    EDGE_AUTH_TOKEN,         /* an OAuth bearer token (auth.c) with `scope`, bound by `bind` */
    EDGE_AUTH_NONE,          /* public: /oauth/v1/token, health and metrics */
    EDGE_AUTH_SIGNED_LINK,   /* the link is the credential (routes_rnf.c) */
    EDGE_AUTH_OPERATOR_CIDR, /* the caller's IP picks the operator (routes_cpid.c) */
} edge_auth_kind;

/* Which tenant the token must belong to: the path's. */
typedef enum { EDGE_BIND_NONE, EDGE_BIND_PROVIDER, EDGE_BIND_OPERATOR } edge_bind;

enum {
    EDGE_ROUTE_TRAILING_SLASH = 1,  /* one trailing '/' is also accepted */
    EDGE_ROUTE_FORM_BODY = 2,       /* the body is a form, not JSON (no JSON check) */
    EDGE_ROUTE_OPERATOR_ERRORS = 4, /* 404/405 as the operator APIs' {errorType, message} */
};

struct api_edge; /* edge.h */
typedef struct edge_route_row edge_route_row;
typedef struct edge_match edge_match;

/* A handler: the request, its row and its parameters. */
typedef void (*edge_handler)(struct api_edge *e, http_request *req, const edge_match *m);

struct edge_route_row {
    const char *methods; /* "GET", "GET POST"; NULL: an area's catch-all (any method, 404) */
    const char *pattern;
    edge_handler handler; /* NULL: answered before routing (shared/plumbing/http_server.c) or 404 */
    int action;           /* told to the handler: std_action, rnf_action, ... */
    edge_auth_kind auth;
    const char *scope; /* EDGE_AUTH_TOKEN: the scope needed ("{operator}" is replaced),
                            * or alternatives separated by a space (any one
                            * will do); NULL for any valid token (catch-alls) */
    edge_bind bind;
    unsigned flags;             /* EDGE_ROUTE_* */
    const char *const *headers; /* response headers on every answer of the row, or NULL */
};

struct edge_match {
    const edge_route_row *route; /* never NULL after edge_route_find */
    int status;                  /* 0: route answers; 404: unknown path; 405: method not allowed */
    char allow[64];              /* 405: the methods the path takes, "GET, POST" */
    edge_params params;
    /* The version of the tenants file (an edge_config, tenants_reload.h)
     * the request is served with: pinned by router.c for the request's
     * authentication and handler, so both see one version whatever a
     * reload publishes meanwhile. NULL from edge_route_find alone. Work
     * that outlives the handler (a deferred answer) copies what it needs
     * from it, or pins a version of its own (routes_oauth.c). */
    snapshot_version *config;
};

/* The table, in matching order; the last row ("/" then "**") matches every path. */
extern const edge_route_row edge_routes[];
extern const size_t edge_routes_count;

/* Matches one pattern (flags: EDGE_ROUTE_TRAILING_SLASH). A catch-all
 * (lenient) puts "?" in a parameter that is empty or too long instead of
 * failing. 1 and the parameters on a match. */
int edge_pattern_match(const char *pattern, unsigned flags, int lenient, const char *path,
                       edge_params *out);

/* Finds the request's row: the first row matching path and method
 * (status 0); else, when rows match the path but not the method, the
 * first of them (405, with allow); else the first catch-all (404). */
void edge_route_find(const char *method, const char *path, edge_match *out);

/* 1 if the request's body must be JSON: POST, PUT and PATCH on a row
 * without EDGE_ROUTE_FORM_BODY. */
int edge_match_body_is_json(const char *method, const edge_match *m);

/* The row's scope with its parameters filled in ("" when none). */
void edge_match_scope(const edge_match *m, char *out, size_t outlen);

#endif
