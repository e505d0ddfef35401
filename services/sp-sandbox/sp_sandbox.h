/* sp-sandbox: a simulated service provider. It receives Millom's rich
 * notifications (POST /notifications) and purchase callbacks
 * (POST /callbacks), checks their bearer token and signature when
 * configured, issues those tokens (POST /oauth/token), records every
 * request in its own SQLite file, lists them for tests
 * (GET /admin/received) and can be told to fail, answer late or hang
 * (POST /admin/behaviour). See README.md in this folder.
 *
 * Layers, each in its own file:
 *   store_received.c   schema, recording, listing and clearing (no HTTP)
 *   behaviour.c        simulated failure/delay/hang and the timer thread
 *                      that answers deferred requests
 *   provider_auth.c    the token and signature checks, issued tokens (no HTTP)
 *   routes_receive.c   HTTP glue for /notifications and /callbacks
 *   routes_token.c     HTTP glue for /oauth/token
 *   routes_admin.c     HTTP glue for /admin/
 *   router.c           path dispatch
 *   main.c             configuration, signals, start and stop */
#ifndef MILLOM_SP_SANDBOX_H
#define MILLOM_SP_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "shared/contracts/webhook_signature.h"
#include "shared/plumbing/http_server.h"
#include "shared/plumbing/settings.h"

typedef enum { SP_KIND_NOTIFICATION = 0, SP_KIND_CALLBACK } sp_kind;
const char *sp_kind_name(sp_kind k);
/* -1 when the name is neither "notification" nor "callback". */
int sp_kind_parse(const char *name);

/* ---- store_received.c ---- */

typedef struct sp_store sp_store;

/* Opens <MILLOM_DATA_DIR>/sp-sandbox.db (migrating it). One connection
 * under a mutex: the sandbox's load is small. NULL with err on failure. */
sp_store *sp_store_open(char *err, size_t errlen);
/* Same with an explicit path (":memory:" works). */
sp_store *sp_store_open_path(const char *path, char *err, size_t errlen);
void sp_store_close(sp_store *s);

typedef struct {
    sp_kind kind;
    int64_t received_at_ms;   /* Unix epoch ms */
    const char *content_type; /* NULL when absent */
    bool has_authorization;
    const char *body; /* as received, may be NULL when empty */
    size_t body_len;
    const char *error;          /* why the body was refused, NULL if valid */
    const char *transaction_id; /* the body's transactionId, NULL if none */
    int status;                 /* the answer given (or planned, if deferred) */
    const char *delivery_id;    /* the X-Millom-Delivery-Id header, NULL if absent */
    /* The Standard Webhooks headers as received (NULL if absent) and what
     * was checked and passed: "token", "signature", "token signature" or
     * "" (NULL: nothing was configured to check). */
    const char *webhook_id, *webhook_timestamp, *webhook_signature;
    const char *verified;
    const char *correlator; /* Millom's x-correlator header, NULL if absent */
} sp_received;

/* Records one request; its id (> 0), or -1 on error. */
int64_t sp_store_record(sp_store *s, const sp_received *r);
/* {"received": [...], "count": n}: requests with id > since, oldest first,
 * of one kind (kind < 0: all), at most limit (<= 0: all). NULL on error. */
json_t *sp_store_list(sp_store *s, int kind, int64_t since, long limit);
/* Deletes every record (ids keep growing); the number deleted, -1 on error. */
long sp_store_clear(sp_store *s);

/* ---- behaviour.c ---- */

typedef struct {
    int fail_status;       /* 0 = answer normally, else 400..599 */
    long fail_count;       /* failures left before answering normally; 0 = always */
    long delay_ms;         /* every answer waits this long */
    bool hang;             /* answers wait until hang is lifted or the stop */
    int token_fail_status; /* POST /oauth/token: 0 = normal, else 400..599 until changed */
} sp_behaviour_cfg;

typedef struct sp_behaviour sp_behaviour;

sp_behaviour *sp_behaviour_new(void);
/* Stops the timer thread and answers what waits (hung ones with 503);
 * returns how many were answered. Call before http_server_stop. */
size_t sp_behaviour_shutdown(sp_behaviour *b);
void sp_behaviour_free(sp_behaviour *b);
void sp_behaviour_get(sp_behaviour *b, sp_behaviour_cfg *out);
/* Replaces the behaviour; lifting hang sends the hung answers now. */
void sp_behaviour_set(sp_behaviour *b, const sp_behaviour_cfg *cfg);
/* Back to normal, hung answers sent. */
void sp_behaviour_reset(sp_behaviour *b);
/* Decides the answer status for one incoming request (consuming one of
 * failCount) and snapshots the delay and hang to apply. `normal` is the
 * status the request deserves when no failure is simulated. */
int sp_behaviour_decide(sp_behaviour *b, int normal, sp_behaviour_cfg *applied);
/* Answers now, or later per `applied` (delay, hang) without holding a
 * server thread. Takes ownership of body (malloc'd). */
void sp_behaviour_answer(sp_behaviour *b, const sp_behaviour_cfg *applied, http_request *req,
                         int status, char *body, size_t len);
/* Answers waiting for a delay or a hang. */
long sp_behaviour_pending(sp_behaviour *b);
/* The most answers waiting at once since the behaviour was last set
 * (with a delay or hang, how many calls a client had in flight). */
long sp_behaviour_max_pending(sp_behaviour *b);

/* ---- provider_auth.c ---- */

#define SP_DEFAULT_CLIENT_ID "millom"
/* Lifetime of the tokens POST /oauth/token issues. */
#define SP_TOKEN_TTL_S 3600
/* Room for a token it issues, NUL included. */
#define SP_TOKEN_MAX 48

typedef struct {
    webhook_key keys[WEBHOOK_KEYS_MAX]; /* MILLOM_SP_WEBHOOK_SECRETS */
    size_t n_keys;                      /* 0: signatures are not checked */
    char client_id[129];                /* MILLOM_SP_OAUTH_CLIENT_ID */
    char client_secret[257]; /* MILLOM_SP_OAUTH_CLIENT_SECRET; "": no client, tokens not checked */
} sp_auth_cfg;

/* One or two whsec_ secrets separated by spaces or commas into cfg's
 * keys. 0, or -1 with a message (never the secret; no key kept). */
int sp_auth_parse_secrets(const char *list, sp_auth_cfg *cfg, char *err, size_t errlen);
/* The settings above (a malformed secret is an error of s). */
void sp_auth_cfg_from_env(settings_reader *s, sp_auth_cfg *cfg);

typedef struct sp_auth sp_auth;

/* A copy of cfg (which the caller may wipe). NULL when out of memory. */
sp_auth *sp_auth_new(const sp_auth_cfg *cfg);
/* Wipes and frees (NULL: nothing). */
void sp_auth_free(sp_auth *a);
/* 1 when a client secret is configured: tokens are issued and required. */
int sp_auth_checks_tokens(const sp_auth *a);
/* How many webhook secrets are configured (0: signatures not checked). */
size_t sp_auth_keys(const sp_auth *a);
/* A new token for these client credentials, valid SP_TOKEN_TTL_S from
 * now_ms (Unix ms). 0; -1 for credentials other than the configured
 * client's (or none configured); -2 when no random bytes could be had. */
int sp_auth_issue(sp_auth *a, const char *client_id, const char *client_secret, int64_t now_ms,
                  char token[SP_TOKEN_MAX]);
/* Forgets every issued token (the next webhook with one gets 401); how
 * many there were. */
long sp_auth_revoke_all(sp_auth *a);

/* A webhook request as the checks see it (any header may be NULL). */
typedef struct {
    const char *authorization;
    const char *webhook_id, *webhook_timestamp, *webhook_signature;
    const void *body;
    size_t body_len;
} sp_auth_request;

typedef struct {
    int ok;            /* 1: everything configured passed */
    int token_refused; /* the refusal is about the bearer token: 1 none, 2 a bad one */
    char error[160];   /* why refused */
    char checked[32];  /* what passed: "token", "signature", "token signature", "" */
} sp_auth_verdict;

/* The token (when required), then the signature and its timestamp (when
 * secrets are configured) at now_ms (Unix ms). */
void sp_auth_check(sp_auth *a, const sp_auth_request *r, int64_t now_ms, sp_auth_verdict *out);

/* ---- routes ---- */

typedef struct {
    sp_store *store;
    sp_behaviour *behaviour;
    sp_auth *auth; /* NULL: nothing is checked, no token is issued */
} sp_app;

void sp_handle(void *app, http_request *req);
void sp_route_receive(sp_app *app, http_request *req, sp_kind kind);
void sp_route_token(sp_app *app, http_request *req);
void sp_route_admin(sp_app *app, http_request *req, const char *sub);
void sp_method_not_allowed(http_request *req, const char *allow);
/* {"error": message} with the status. */
void sp_respond_error(http_request *req, int status, const char *message);

#endif
