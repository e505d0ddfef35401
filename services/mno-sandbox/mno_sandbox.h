/* mno-sandbox: a simulated operator backend (Telenor Pakistan, "tp") that
 * serves the backend-integration API (millom-backend-integration.yaml:
 * GET /balance/{customerId}, GET /offers/{customerId},
 * POST /activate/{customerId}) from seeded subscribers in its own SQLite
 * file, plus /admin/ endpoints with which tests make it slow, failing or
 * hanging, inspect activations and reseed it.
 *
 * Layers, each in its own file:
 *   seed_data.c          schema and seeded subscribers (migrations)
 *   store_subscribers.c  look-ups and the accountStatus/offersInfo JSON
 *                        (no HTTP, callable from unit tests)
 *   store_activations.c  the activation transaction, async completion,
 *                        activation listing and reseeding (the writer)
 *   store_internal.h     what those two share
 *   backend_request.c    query parameter validation (no HTTP)
 *   activate_request.c   /activate body validation (no HTTP)
 *   activation_worker.c  background thread: completes PENDING activations
 *                        and POSTs their callbacks (with retries)
 *   callback_auth.c      OAuth 2.0 client credentials for those callbacks
 *   behaviour.c          simulated delay/failure/hang, call counters, and
 *                        the timer thread that answers deferred requests
 *   routes_backend.c     HTTP glue for /balance, /offers and /activate
 *   routes_admin.c       HTTP glue for /admin/
 *   store_topup.c        the top-up extension: messages sent, credits
 *   routes_topup.c       HTTP glue for POST /messages, POST /topup/{id}
 *   router.c             path dispatch
 *   main.c               configuration, signals, start and stop */
#ifndef MILLOM_MNO_SANDBOX_H
#define MILLOM_MNO_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <sqlite3.h>

#include "shared/plumbing/http_client.h"
#include "shared/plumbing/http_server.h"

/* The one operator this sandbox simulates. */
#define MNO_OPERATOR "tp"
#define MNO_CURRENCY "PKR"
#define MNO_CURRENCY_SCALE 2

/* ---- seed_data.c ---- */

extern const char *const mno_migrations[];
extern const size_t mno_migration_count;
/* The seed data alone (for POST /admin/reseed), in order. */
extern const char *const mno_seeds[];
extern const size_t mno_seed_count;

/* ---- store_subscribers.c ---- */

typedef struct mno_store mno_store;

/* Opens <MILLOM_DATA_DIR>/mno-sandbox.db (migrating and seeding it) plus
 * `readers` read-only connections, each with its own prepared statements
 * and lock. A thread keeps using the same reader, so with at least as many
 * readers as threads no lock is ever contended. Writes (activations,
 * reseeding) go through the one writable connection under its own mutex,
 * each in a BEGIN IMMEDIATE transaction; a read that takes more than one
 * statement runs in one read transaction, so it sees a write whole or not
 * at all. NULL with err on failure. */
mno_store *mno_store_open(size_t readers, char *err, size_t errlen);
/* Same with an explicit file path (not ":memory:": readers need a file). */
mno_store *mno_store_open_path(const char *path, size_t readers, char *err, size_t errlen);
void mno_store_close(mno_store *s);

typedef enum { MNO_ID_MSISDN = 0, MNO_ID_OPET } mno_id_type;

/* The customerIdType query parameter (NULL or "" when absent) of every
 * backend call: MSISDN or OPET, ignoring case. 0, or -1 with msg. */
int mno_parse_id_type(const char *type, mno_id_type *out, char *msg, size_t msglen);

/* A validated backend request (see backend_request.c). */
typedef struct {
    const char *customer_id; /* as in the path; a leading '+' is ignored */
    mno_id_type id_type;
    char lang[4];         /* lang's primary subtag, lowercased ("ur" for
                                 "ur-PK"); "en" when absent or odd. Texts in
                                 a language without a row are English. */
    const char *trans_id; /* NULL when absent */
    /* offers only */
    const char *offer_type;  /* NULL = no filter (absent or "All") */
    int64_t max_price_minor; /* -1 = no limit; offers costing <= this */
    long max_offers;         /* -1 = all */
} mno_request;

/* A complete answer: HTTP status and JSON body (caller owns body). */
typedef struct {
    int status;
    json_t *body;
} mno_reply;

/* accountStatus for the subscriber, or an errorResponse (404
 * UNKNOWN_SUBSCRIBER_ID, 403 USER_BARRED, 403 FORBIDDEN for roaming, 500
 * INTERNAL_ERROR). Expiration times are relative to now_ms. Read-only. */
mno_reply mno_balance(mno_store *s, const mno_request *rq, int64_t now_ms);
/* offersInfo for the subscriber (filters from rq applied), or an error as
 * for mno_balance. Read-only. */
mno_reply mno_offers(mno_store *s, const mno_request *rq, int64_t now_ms);

/* errorResponse {errorType, message}. */
json_t *mno_error_json(const char *error_type, const char *message);
/* The JSON text the sandbox answers with (compact; money as JSON numbers
 * with at most 15 significant digits, so 520.75 prints as 520.75).
 * Caller frees. */
char *mno_json_text(const json_t *body, size_t *len);

/* ---- backend_request.c ---- */

typedef const char *(*mno_param_fn)(void *ctx, const char *name);

typedef enum { MNO_CALL_BALANCE = 0, MNO_CALL_OFFERS, MNO_CALL_ACTIVATE, MNO_CALL_COUNT } mno_call;

/* Validates the query parameters of a balance or offers call (read through
 * get). Returns 0 and fills rq (pointing into the parameter strings), or -1
 * with a message naming the parameter in msg (answer 400 BAD_REQUEST). */
int mno_parse_request(mno_call call, const char *customer_id, mno_param_fn get, void *ctx,
                      mno_request *rq, char *msg, size_t msglen);

/* ---- activate_request.c ---- */

/* A validated POST /activate/{customerId} (strings copied, NUL-terminated). */
typedef struct {
    char customer_id[65]; /* as in the path; a leading '+' is ignored */
    mno_id_type id_type;  /* query parameter customerIdType */
    char channel_id[65];
    char service_provider[65];
    char offer_id[65];
    char trans_id[129];     /* 10..128 of [A-Za-z0-9._:-] */
    char callback_url[513]; /* "" = none (then the configured default) */
    char fund_source[8];    /* "WALLET", "EWALLET", "LOAN", "FREE" or "" = the offer's own */
} mno_activate_request;

/* Validates customerIdType (through get) and the JSON body. Returns 0, or
 * -1 with *error_type "PARSING_ERROR" (body is not JSON) or "BAD_REQUEST"
 * (a field missing, of the wrong type or with a bad value; msg names it). */
int mno_parse_activate(const char *customer_id, mno_param_fn get, void *ctx, const char *body,
                       size_t len, mno_activate_request *rq, const char **error_type, char *msg,
                       size_t msglen);

/* ---- behaviour.c ---- */

/* How a repeated transId is answered. */
typedef enum {
    MNO_REPEAT_ORIGINAL = 0,     /* the original outcome again */
    MNO_REPEAT_ALREADY_EXECUTED, /* 409 PURCHASE_ALREADY_EXECUTED (completed OK) or
                                     409 PURCHASE_IN_PROGRESS (still PENDING) */
} mno_repeat_answer;

/* Where and in which shape async completions are reported. */
typedef enum {
    MNO_CALLBACK_BACKEND = 0, /* POST activationCallback body to the callbackUrl */
    MNO_CALLBACK_MILLOM,      /* POST millom-callback.yaml body to <millom>/callback/v1/tp/ */
} mno_callback_style;

/* All-zero is the normal behaviour. */
typedef struct {
    long delay_ms;            /* wait before answering */
    int fail_status;          /* 0 = answer normally; else this status ... */
    char fail_error_type[32]; /* ... with this errorType ("" = by status) */
    bool hang;                /* never answer (until hang is lifted) */
    /* activations */
    mno_repeat_answer repeat_answer;
    bool callback_delay_set; /* false: the configured default delay */
    long callback_delay_ms;  /* PENDING -> completed after this long */
    mno_callback_style callback_style;
    bool callback_fail; /* async completions FAIL (and refund) */
} mno_behaviour_cfg;

typedef struct mno_behaviour mno_behaviour;

/* Starts the timer thread. `initial` is also what reset restores. */
mno_behaviour *mno_behaviour_new(const mno_behaviour_cfg *initial);
/* Answers every pending request (hung ones with 503 CONGESTED), stops the
 * timer thread; later requests are answered at once. Call before
 * http_server_stop. Returns how many requests it answered. */
size_t mno_behaviour_shutdown(mno_behaviour *b);
void mno_behaviour_free(mno_behaviour *b);

void mno_behaviour_get(mno_behaviour *b, mno_behaviour_cfg *out);
/* Replaces the behaviour. Lifting hang releases the hung requests. */
void mno_behaviour_set(mno_behaviour *b, const mno_behaviour_cfg *cfg);
/* Back to the initial behaviour, counters to zero, hung requests released. */
void mno_behaviour_reset(mno_behaviour *b);
/* The errorType a simulated failure answers with. */
const char *mno_behaviour_error_type(const mno_behaviour_cfg *cfg);

void mno_behaviour_count(mno_behaviour *b, mno_call call);
long mno_behaviour_calls(mno_behaviour *b, mno_call call);
/* Requests waiting for their delay or hung. */
long mno_behaviour_pending(mno_behaviour *b);

/* Answers req with status and body (taking ownership of body, a malloc'd
 * string) as cfg says: at once, after cfg->delay_ms (the connection is
 * deferred and answered from the timer thread, so no polling thread
 * waits), or not until hang is lifted. */
void mno_behaviour_answer(mno_behaviour *b, const mno_behaviour_cfg *cfg, http_request *req,
                          int status, char *body, size_t len);

/* ---- store_activations.c ---- */

/* Runs one activation in one SQLite transaction (see README.md): resolves
 * the subscriber (404/403 as for reads), answers a known transId from its
 * stored outcome (409 CONFLICT for another customer or offer; `repeat`
 * decides the rest), else checks the offer (catalogue, fund source) and the
 * funds, charges the wallet or the loan, adds the plan (or records PENDING
 * for an async offer) and records the activation, whatever its outcome.
 * *new_pending is set when a new PENDING activation was recorded: the
 * caller schedules its completion. */
mno_reply mno_activate(mno_store *s, const mno_activate_request *rq, mno_repeat_answer repeat,
                       int64_t now_ms, bool *new_pending);

/* What an async completion reports. */
typedef struct {
    char trans_id[129];
    char customer[32];
    char channel_id[65];
    char service_provider[65];
    char offer_id[65];
    char callback_url[513]; /* "" = none given */
    bool ok;
    char error_type[32]; /* on failure */
    char error_message[128];
    char confirmation_code[32];
} mno_completion;

/* Completes a PENDING activation: OK (plan added, confirmation code) or,
 * with fail, FAIL with INTERNAL_ERROR and the charge refunded. 1 done (out
 * filled), 0 no PENDING activation with that transId, -1 store error. */
int mno_activation_complete(mno_store *s, const char *trans_id, bool fail, int64_t now_ms,
                            mno_completion *out);
/* Counts a callback POST for the activation and records its HTTP status
 * (0: no answer). */
int mno_activation_callback_result(mno_store *s, const char *trans_id, long http_status);
/* Calls fn for every PENDING activation (oldest first). */
int mno_activations_each_pending(mno_store *s, void (*fn)(void *ctx, const char *trans_id),
                                 void *ctx);
/* {"activations": [...], "count": n} (all, or the one with trans_id). */
json_t *mno_activations_json(mno_store *s, const char *trans_id);
/* Back to the seeded subscribers, balances, plans and offers; deletes
 * every activation. Returns how many activations were deleted, -1 on error. */
long mno_store_reseed(mno_store *s);

/* A subscriber as POST /admin/subscribers gives it (validated there: the
 * enums are the schema's, money in PKR minor units, offers known ids
 * without repeats). */
typedef struct {
    const char *msisdn;            /* digits, no '+' */
    const char *opet;              /* NULL = none */
    const char *subscription_type; /* UNSPECIFIED, PREPAID, POSTPAID */
    const char *price_plan;
    int64_t balance_minor, loan_minor, ewallet_minor;
    const char *state;         /* GOOD_TO_GO, NEED_OFFERS, NEED_LOANS, NEED_TOPUP */
    const char *status;        /* ACTIVE, BARRED, ROAMING */
    bool offers_set;           /* false: an existing subscriber keeps its offers */
    const char *const *offers; /* offer ids in the operator's ranking */
    size_t n_offers;
} mno_subscriber_spec;

/* Adds the subscriber, or replaces the fields (and, with offers_set, the
 * offers) of the one with that MSISDN; subscribed plans and activations are
 * kept. One transaction. 0 (*created: whether it was new); 1 with msg for a
 * request the store refuses (an offer not in the catalogue, an OPET of
 * another subscriber); -1 on a store failure (logged). */
int mno_subscriber_put(mno_store *s, const mno_subscriber_spec *spec, bool *created, char *msg,
                       size_t msglen);

/* ---- store_topup.c: the top-up extension (README, "Top-up") ---- */

/* Records a message (channel "SMS" or "USSD") to msisdn (digits). A
 * non-empty reference already recorded is the same message: its id
 * again. 0 with *message_id, -1 on a store failure. */
int mno_message_record(mno_store *s, const char *msisdn, const char *channel, const char *text,
                       const char *reference, int64_t now_ms, int64_t *message_id);
/* {"messages": [...], "count": n}, oldest first; only those to msisdn
 * when not NULL. NULL on a store failure. */
json_t *mno_messages_json(mno_store *s, const char *msisdn);
/* Credits amount_minor to the subscriber's airtime balance once per
 * trans_id: the subscriber must exist and be ACTIVE (mno_admit's errors);
 * a trans_id already used for the same msisdn and amount answers as the
 * first time, for anything else 409 CONFLICT. 200 with {transId,
 * customerId, creditedMinor, balance}. */
mno_reply mno_credit(mno_store *s, const char *msisdn, const char *trans_id, int64_t amount_minor,
                     int64_t now_ms);

/* ---- callback_auth.c ---- */

/* OAuth 2.0 client credentials for the callbacks (Millom's secure profile
 * requires a bearer token of the operator's client). */
typedef struct {
    char client_id[129];     /* MILLOM_MNO_OAUTH_CLIENT_ID (default: the tenants
                                  file's client of operator tp, else tp-demo) */
    char client_secret[257]; /* MILLOM_MNO_OAUTH_CLIENT_SECRET; "" = no token */
    char token_url[513];     /* MILLOM_MNO_OAUTH_TOKEN_URL; "" = derived from
                                  each callback URL (mno_token_url_for) */
    char scope[129];         /* MILLOM_MNO_OAUTH_SCOPE, cco.dd.data-plan.inquire */
} mno_callback_auth;

/* Reads the MILLOM_MNO_OAUTH_* settings (the tenants file only for the
 * default client id, and only when a secret is set). */
void mno_callback_auth_from_env(mno_callback_auth *a);
/* "<scheme>://<host>[:<port>]/oauth/v1/token" for a callback URL (parsed
 * with curl's URL API). 0, or -1 when it is not a URL or does not fit. */
int mno_token_url_for(const char *callback_url, char *out, size_t len);
/* Fills hdr with "Authorization: Bearer <token>" for a callback to
 * callback_url (fetching or reusing the cached token): 1. 0 with hdr ""
 * when no secret is configured (no token). -1 with a message in hdr when
 * no token could be had. */
int mno_callback_auth_header(const mno_callback_auth *a, http_client *hc, const char *callback_url,
                             char *hdr, size_t len);
/* A callback sent with hdr was answered 401: drop that token. */
void mno_callback_auth_rejected(const mno_callback_auth *a, const char *callback_url,
                                const char *hdr);

/* ---- activation_worker.c ---- */

typedef struct {
    const char *callback_url; /* backend-style default target (MILLOM_MNO_CALLBACK_URL) */
    const char *millom_url;   /* base of millom-style callbacks (MILLOM_MNO_MILLOM_URL) */
    long delay_ms;            /* PENDING -> completed (MILLOM_MNO_CALLBACK_DELAY_MS) */
    int max_attempts;         /* callback POSTs per completion (>= 1) */
    long backoff_ms;          /* wait before the 2nd attempt, doubling after */
    long timeout_ms;          /* per POST */
    mno_callback_auth auth;   /* bearer tokens (callback_auth.c) */
} mno_callback_cfg;

/* Fills cfg with the defaults (500 ms, 5 attempts, 200 ms, 2000 ms, the
 * default URLs) overridden by the MILLOM_MNO_CALLBACK_* environment. */
void mno_callback_cfg_from_env(mno_callback_cfg *cfg);

typedef struct mno_activations mno_activations;

/* Starts the worker thread (copying cfg) and schedules the completion of
 * every activation left PENDING in the store (default delay, backend
 * style). Call http_client_global_init() first. */
mno_activations *mno_activations_new(mno_store *s, const mno_callback_cfg *cfg);
/* Stops the thread (a POST in flight finishes first) and drops what is queued. */
void mno_activations_free(mno_activations *a);
/* Completes trans_id after delay_ms (< 0: the configured default), then
 * reports it in `style`; fail makes the completion FAIL. */
void mno_activations_schedule(mno_activations *a, const char *trans_id, long delay_ms,
                              mno_callback_style style, bool fail);
/* Drops everything queued (after a reseed). */
void mno_activations_cancel_all(mno_activations *a);
/* Completions and callback deliveries queued or running. */
long mno_activations_queued(mno_activations *a);

/* ---- routes ---- */

typedef struct {
    mno_store *store;
    mno_behaviour *behaviour;
    mno_activations *activations; /* NULL: PENDING activations are not completed */
} mno_app;

/* The http_server handler: dispatches to the backend and admin routes. */
void mno_handle(void *app, http_request *req);
/* POST /messages and POST /topup/{customerId}: the top-up extension
 * (routes_topup.c); GET /admin/messages. */
void mno_route_messages(mno_app *app, http_request *req);
void mno_route_credit(mno_app *app, http_request *req, const char *customer_id);
void mno_route_admin_messages(mno_app *app, http_request *req);
/* GET /balance, GET /offers, POST /activate. */
void mno_route_backend(mno_app *app, http_request *req, mno_call call, const char *customer_id);
void mno_route_admin(mno_app *app, http_request *req, const char *sub_path);

/* 405 with an Allow header. */
void mno_method_not_allowed(http_request *req, const char *allow);
/* Answers at once with an errorResponse. */
void mno_respond_error(http_request *req, int status, const char *error_type, const char *message);

#endif
