/* The purchase record and its store (purchase_store.c), the bottom layer of
 * purchase-executor: everything above reads and writes purchases through
 * this API, and nothing here calls up.
 *
 * purchase-executor owns purchases. It takes purchase commands from
 * api-edge (idempotent per service provider and transid), activates them
 * at the operator's backend (POST /activate), applies the operators'
 * asynchronous callbacks, answers the management look-ups, and publishes a
 * PurchaseEvent after every state change through the outbox.
 *
 * State machine (column `state`):
 *
 *   (new command) ──insert──> activating ──200 OK / PURCHASE_ALREADY_EXECUTED──> completed
 *                                 │  ^   ──200 PENDING──> pending ──callback ok──> completed
 *                                 │  │                      │ └────callback fail──> failed
 *                                 │  │                      └── re-check (no callback within
 *                                 │  │                          MILLOM_PENDING_RECHECK_S): see below
 *                                 │  └── outcome unknown (no answer, timeout, 5xx,
 *                                 │      TIMEOUT/CONGESTED/INTERNAL_ERROR): stays
 *                                 │      activating, re-sent with the same transId by
 *                                 │      the retry thread (backoff 0.5 s .. 30 s)
 *                                 ├── definite error (errorType mapped) ──> failed
 *                                 └── callback ok / fail ──> completed / failed
 *
 * Pending re-checks. An operator that answered PENDING promises a
 * callback; should it never come (lost, refused, the operator's bug), the
 * purchase would stay pending forever. So a pending row carries a due time
 * (next_attempt_ms) too: MILLOM_PENDING_RECHECK_S after it became pending,
 * then doubling (with jitter) up to MILLOM_PENDING_RECHECK_MAX_S. When due,
 * the retry thread claims it exactly as it claims an activating retry (one
 * transaction: attempts + 1, leased for the call's timeout plus a grace
 * period, so a crash mid-call re-checks again after the lease) and re-sends
 * POST /activate with the SAME transId. The operator de-duplicates on it
 * and answers its stored outcome, so nothing is activated twice. The answer
 * decides (outcome_after_recheck): OK or PURCHASE_ALREADY_EXECUTED ->
 * completed; a FAIL activationStatus or a definite errorType -> failed;
 * PENDING, PURCHASE_IN_PROGRESS, CONFLICT and every unknown outcome (no
 * answer, timeout, 5xx, TIMEOUT/CONGESTED/INTERNAL_ERROR errors) -> stays
 * pending until the next re-check. A callback arriving meanwhile wins by
 * the same compare-and-set (state, attempts) as for activating rows.
 * Purchases not final MILLOM_PENDING_MAX_AGE_S after their creation are
 * "overdue": counted in the gauge millom_purchases_overdue (rows of owned
 * partitions) and listed by the management look-up (overdue = true).
 *
 * `received` exists in the schema (and counts for the purchase timer) but
 * this version inserts straight into `activating`: the row and its
 * ACTIVATING event commit before the operator is called.
 *
 * Threads: the Kafka consumer thread handles commands, callbacks and
 * look-ups in order with its own SQLite connection and HTTP client; the
 * retry thread has its own connection and client; the outbox relay has its
 * own connection. Writes race only through SQLite (BEGIN IMMEDIATE) and
 * every outcome is applied with a compare-and-set on (state, attempts), so
 * whichever of the consumer, the retry thread or a callback comes second
 * sees the first one's result instead of overwriting it. */
#ifndef PURCHASE_EXECUTOR_PURCHASE_H
#define PURCHASE_EXECUTOR_PURCHASE_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "shared/patterns/changelog.h"
#include "shared/plumbing/correlator.h"
#include "millom/v1/purchase.pb-c.h"

/* ------------------------------------------------------------ purchases */

typedef enum {
    PS_RECEIVED = 0,
    PS_ACTIVATING,
    PS_PENDING,
    PS_COMPLETED,
    PS_FAILED,
} purchase_state;

#define PS_MASK(s) (1u << (s))
#define PS_FINAL(s) ((s) == PS_COMPLETED || (s) == PS_FAILED)

const char *purchase_state_name(purchase_state s); /* "activating" */
int purchase_state_parse(const char *name);        /* -1 if unknown */
Millom__V1__PurchaseState purchase_state_proto(purchase_state s);

/* One row of `purchases`. Text fields are NUL-terminated; longer input is
 * refused before it gets here (commands) or cut at a UTF-8 boundary
 * (operator texts). */
typedef struct {
    char service_provider[65];
    char transid[129];    /* the provider's transid */
    char op_transid[129]; /* the transId sent to the operator: derived
                                     per provider (purchase_operator_transid);
                                     rows from before it hold the transid */
    char fingerprint[65]; /* SHA-256 hex of the canonical request */
    char op[33];          /* operator id */
    char subscriber[257]; /* MSISDN digits or OPET token */
    char key_type[8];     /* "MSISDN" | "OPET" */
    char plan_id[129];
    int64_t price_minor;
    char currency[8];
    char fund_source[8]; /* "WALLET", "EWALLET", "LOAN" or "FREE" (fund_source.h) */
    purchase_state state;
    char confirmation_code[257];
    char error_type[65];      /* backend errorType of a failure */
    char message[513];        /* operator's message, digits masked */
    char error_code[65];      /* the operator callback's errorCode, "" none */
    char redirect_link[1025]; /* the operator callback's redirectLink, "" none */
    int http_status;          /* the answer given, once final */
    char *response_body;      /* malloc'd; NULL until final */
    int attempts;             /* activation calls made (or started) */
    int maybe_executed;       /* some call may have reached the operator
                                     (stored as 1 while a call runs) */
    int64_t next_attempt_ms;  /* when the retry thread may call again
                                     (activating: retry; pending: re-check) */
    int rechecks;             /* re-checks of a pending purchase that
                                     left it pending (the backoff's exponent) */
    int64_t created_ms, updated_ms, completed_ms;
    char channel[33];
    char language[17];
    char client_name[65]; /* channelId sent to the backend, "" = default */
    /* The request id of the command that created it ("": none, or a row
     * from before migration 7): every event of the purchase carries it,
     * also those of a retry, a re-check or the operator's callback. */
    char correlator[CORRELATOR_SIZE];
    /* 1: the final state was in the answer to the provider's purchasePlan
     * (its command's reply, in time), so no callback is owed (the event's
     * outcome_answered). 0 otherwise, and in every row not final. */
    int outcome_answered;
} purchase;

void purchase_clear(purchase *p); /* frees response_body */
/* Copies src into dst (dst's old body freed). 0, or -1 out of memory. */
int purchase_copy(purchase *dst, const purchase *src);
/* ------------------------------------------------- purchase_store.c (SQL) */

/* The purchases' changelog (see shared/patterns/changelog.h): rows follow the
 * partition of millom.purchase.commands they arrived on. Commands,
 * callbacks and look-ups by transid are all keyed by transid, so one
 * purchase's messages share a partition number on the three topics. */
extern const changelog_spec purchase_changelog;

/* Opens (creating and migrating) the store; every thread opens its own.
 * Every connection captures its changes into the changelog (outbox). */
sqlite3 *purchase_store_open(const char *path, char *err, size_t errlen);

/* SHA-256 hex of operator, key type, subscriber, plan, offerContext and
 * fund source: the "same body" test of the idempotency rule. */
void purchase_fingerprint(const char *op, const char *key_type, const char *subscriber,
                          const char *plan_id, const char *offer_context, const char *fund_source,
                          char out[65]);

/* The transId Millom sends to the operator for the provider's transid:
 * SHA-256 of (sp, transid), length-prefixed and domain-separated, shaped
 * as an RFC 4122 UUID (version 8 - RFC 9562 - and variant 10, lower-case).
 * Deterministic, so every instance and every retry derives the same one;
 * different providers' equal transids get different transIds. Pure. */
void purchase_operator_transid(const char *sp, const char *transid, char out[37]);

/* 1 found (out filled, caller clears), 0 none, -1 database error. */
int purchase_get(sqlite3 *db, const char *sp, const char *transid, purchase *out);

typedef enum {
    CREATE_OK = 0,
    CREATE_EXISTS,        /* (sp, transid) exists: *existing filled */
    CREATE_TRANSID_TAKEN, /* the derived operator transId is already stored
                             (only an old row could hold it) */
    CREATE_TIMER,         /* same plan bought recently: *other_created_ms */
    CREATE_BUSY,          /* database locked: retry the message */
    CREATE_ERROR,
} create_result;

/* In one BEGIN IMMEDIATE transaction: the idempotency check,
 * the purchase timer (timer_ms > 0), the insert of p (state activating,
 * attempts 0) and its ACTIVATING event in the outbox. */
create_result purchase_create(sqlite3 *db, const purchase *p, int64_t timer_ms, purchase *existing,
                              int64_t *other_created_ms);

/* The purchase timer's query alone: 1 when a purchase of the same
 * (operator, subscriber, plan) other than (sp, transid), in state
 * received/activating/pending/completed, was created after since_ms (its created_ms in *created); 0 none; -1 error. */
int purchase_timer_hit(sqlite3 *db, const purchase *p, int64_t since_ms, int64_t *created);

/* Writes next's mutable fields (state, confirmation code, error, message,
 * answer, attempts, maybe_executed, next attempt, times) if the stored
 * row's state is in expect_states and (expect_attempts < 0 or) its
 * attempts equal expect_attempts; adds the PurchaseEvent when the state
 * changed. One transaction. Returns 1 applied, 0 the row had moved on
 * (*current filled with it, may be NULL), -1 error (SQLITE_BUSY included). */
int purchase_update(sqlite3 *db, const purchase *next, unsigned expect_states, int expect_attempts,
                    purchase *current);

/* The provider was answered 202 "processing" after all (api-edge's
 * answered_processing): a final purchase whose event said
 * outcome_answered gets outcome_answered 0 and its final event again,
 * now owing the callback. One transaction. 1 re-published, 0 nothing owed
 * (no such purchase, not final yet, or already without it), -1 error. */
int purchase_owe_callback(sqlite3 *db, const char *sp, const char *transid, int64_t now);

/* Retry thread: takes the activating or pending purchase due first
 * (next_attempt_ms <= now), counts the attempt and leases it until
 * lease_until_ms, in one transaction. It also stores maybe_executed = 1 for the time of the call
 * (should the process die during it, nobody knows whether the operator
 * executed it), while *out keeps the value from before, which the
 * outcome builds on. 1 claimed (*out), 0 none due, -1 error. */
int purchase_claim_due(sqlite3 *db, int64_t now, int64_t lease_until_ms, purchase *out);
/* Makes every activating purchase of an owned partition due now (when
 * partitions were assigned). Returns the count or -1. */
int purchase_resume_owned(sqlite3 *db);
/* Earliest next_attempt_ms of an activating or pending purchase (owned
 * partitions), or INT64_MAX. */
int64_t purchase_next_due_ms(sqlite3 *db);
/* Activating purchases with attempts >= max_attempts, or -1. */
long purchase_count_stuck(sqlite3 *db, long max_attempts);
/* Purchases of owned partitions not final and created before
 * created_before_ms (overdue), or -1. */
long purchase_count_overdue(sqlite3 *db, int64_t created_before_ms);

/* Look-ups: calls each() for every matching purchase (at most `limit`,
 * ordered by created time). Returns the number of rows, or -1. */
typedef void (*purchase_each_fn)(void *arg, const purchase *p);
/* Management look-up: purchases whose operator transId or provider
 * transid is `transid`. */
int purchase_find_transid(sqlite3 *db, const char *op, const char *transid, const char *sp,
                          int limit, purchase_each_fn each, void *arg);
/* Callbacks: the purchase the operator knows as (op, op_transid), of
 * provider sp when not NULL. 1 found (out filled), 0 none, -1 error. */
int purchase_get_operator_transid(sqlite3 *db, const char *op, const char *op_transid,
                                  const char *sp, purchase *out);
int purchase_find_subscriber(sqlite3 *db, const char *op, const char *subscriber, const char *sp,
                             int64_t from_ms, int64_t to_ms, int limit, purchase_each_fn each,
                             void *arg);
/* The operator's purchases (every partition: each instance holds a copy of
 * all rows) not final and created before created_before_ms, oldest first,
 * optionally of one provider (sp NULL: all). */
int purchase_find_overdue(sqlite3 *db, const char *op, const char *sp, int64_t created_before_ms,
                          int limit, purchase_each_fn each, void *arg);

/* The PurchaseEvent of a row (every field filled), packed; caller frees. */
uint8_t *purchase_event_pack(const purchase *p, int64_t occurred_ms, size_t *len);

#endif
