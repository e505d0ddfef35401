/* mno-sandbox: a simulated operator backend (Telenor Pakistan, "tp") that
 * serves the backend-integration API (millom-backend-integration.yaml:
 * GET /balance/{customerId}, GET /offers/{customerId}) from seeded
 * subscribers in its own SQLite file, plus /admin/ endpoints with which
 * tests make it slow, failing or hanging.
 *
 * Layers, each in its own file:
 *   seed_data.c         schema and seeded subscribers (migrations)
 *   store_subscribers.c read-only look-ups and the accountStatus/offersInfo
 *                       JSON (no HTTP, callable from unit tests)
 *   backend_request.c   query parameter validation (no HTTP)
 *   behaviour.c         simulated delay/failure/hang, call counters, and
 *                       the timer thread that answers deferred requests
 *   routes_backend.c    HTTP glue for /balance and /offers
 *   routes_admin.c      HTTP glue for /admin/
 *   router.c            path dispatch
 *   main.c              configuration, signals, start and stop */
#ifndef MILLOM_MNO_SANDBOX_H
#define MILLOM_MNO_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <sqlite3.h>

#include "shared/http_server.h"

/* The one operator this sandbox simulates. */
#define MNO_OPERATOR "tp"
#define MNO_CURRENCY "PKR"
#define MNO_CURRENCY_SCALE 2

/* ---- seed_data.c ---- */

extern const char *const mno_migrations[];
extern const size_t mno_migration_count;

/* ---- store_subscribers.c ---- */

typedef struct mno_store mno_store;

/* Opens <MILLOM_DATA_DIR>/mno-sandbox.db (migrating and seeding it) plus
 * `readers` read-only connections, each with its own prepared statements
 * and lock. A thread keeps using the same reader, so with at least as many
 * readers as threads no lock is ever contended. NULL with err on failure. */
mno_store *mno_store_open(size_t readers, char *err, size_t errlen);
/* Same with an explicit file path (not ":memory:": readers need a file). */
mno_store *mno_store_open_path(const char *path, size_t readers, char *err, size_t errlen);
void mno_store_close(mno_store *s);

typedef enum { MNO_ID_MSISDN = 0, MNO_ID_OPET } mno_id_type;

/* A validated backend request (see backend_request.c). */
typedef struct {
    const char *customer_id;  /* as in the path; a leading '+' is ignored */
    mno_id_type id_type;
    char lang[4];             /* lang's primary subtag, lowercased ("ur" for
                                 "ur-PK"); "en" when absent or odd. Texts in
                                 a language without a row are English. */
    const char *trans_id;     /* NULL when absent */
    /* offers only */
    const char *offer_type;   /* NULL = no filter (absent or "All") */
    int64_t max_price_minor;  /* -1 = no limit; offers costing <= this */
    long max_offers;          /* -1 = all */
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

typedef enum { MNO_CALL_BALANCE = 0, MNO_CALL_OFFERS } mno_call;

/* Validates the query parameters of a balance or offers call (read through
 * get). Returns 0 and fills rq (pointing into the parameter strings), or -1
 * with a message naming the parameter in msg (answer 400 BAD_REQUEST). */
int mno_parse_request(mno_call call, const char *customer_id, mno_param_fn get, void *ctx,
                      mno_request *rq, char *msg, size_t msglen);

/* ---- behaviour.c ---- */

typedef struct {
    long delay_ms;            /* wait before answering */
    int fail_status;          /* 0 = answer normally; else this status ... */
    char fail_error_type[32]; /* ... with this errorType ("" = by status) */
    bool hang;                /* never answer (until hang is lifted) */
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

/* ---- routes ---- */

typedef struct {
    mno_store *store;
    mno_behaviour *behaviour;
} mno_app;

/* The http_server handler: dispatches to the backend and admin routes. */
void mno_handle(void *app, http_request *req);
void mno_route_backend(mno_app *app, http_request *req, mno_call call, const char *customer_id);
void mno_route_admin(mno_app *app, http_request *req, const char *sub_path);

/* 405 with an Allow header. */
void mno_method_not_allowed(http_request *req, const char *allow);
/* Answers at once with an errorResponse. */
void mno_respond_error(http_request *req, int status, const char *error_type,
                       const char *message);

#endif
