/* purchase-executor: owns purchases. It takes purchase commands from
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
#ifndef PURCHASE_EXECUTOR_EXECUTOR_H
#define PURCHASE_EXECUTOR_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include <jansson.h>

#include "shared/changelog.h"
#include "shared/topics.h"
#include "shared/config.h"
#include "shared/http_client.h"
#include "shared/kafka.h"
#include "shared/metrics.h"
#include "shared/outbox.h"
#include "millom/v1/common.pb-c.h"
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

const char *purchase_state_name(purchase_state s);  /* "activating" */
int purchase_state_parse(const char *name);         /* -1 if unknown */
Millom__V1__PurchaseState purchase_state_proto(purchase_state s);

/* One row of `purchases`. Text fields are NUL-terminated; longer input is
 * refused before it gets here (commands) or cut at a UTF-8 boundary
 * (operator texts). */
typedef struct {
    char service_provider[65];
    char transid[129];            /* the provider's transid */
    char op_transid[129];         /* the transId sent to the operator: derived
                                     per provider (purchase_operator_transid);
                                     rows from before it hold the transid */
    char fingerprint[65];         /* SHA-256 hex of the canonical request */
    char op[33];                  /* operator id */
    char subscriber[257];         /* MSISDN digits or OPET token */
    char key_type[8];             /* "MSISDN" | "OPET" */
    char plan_id[129];
    int64_t price_minor;
    char currency[8];
    char fund_source[8];          /* "WALLET" | "LOAN" */
    purchase_state state;
    char confirmation_code[257];
    char error_type[65];          /* backend errorType of a failure */
    char message[513];            /* operator's message, digits masked */
    int http_status;              /* the answer given, once final */
    char *response_body;          /* malloc'd; NULL until final */
    int attempts;                 /* activation calls made (or started) */
    int maybe_executed;           /* some call may have reached the operator
                                     (stored as 1 while a call runs) */
    int64_t next_attempt_ms;      /* when the retry thread may call again
                                     (activating: retry; pending: re-check) */
    int rechecks;                 /* re-checks of a pending purchase that
                                     left it pending (the backoff's exponent) */
    int64_t created_ms, updated_ms, completed_ms;
    char channel[33];
    char language[17];
    char client_name[65];         /* channelId sent to the backend, "" = default */
} purchase;

void purchase_clear(purchase *p);  /* frees response_body */
/* Copies src into dst (dst's old body freed). 0, or -1 out of memory. */
int purchase_copy(purchase *dst, const purchase *src);
/* Sets response_body to a copy of body. */
int purchase_set_body(purchase *p, const char *body);

/* Copies text into a buffer, cutting at a UTF-8 character boundary. */
void copy_text(char *dst, size_t dstlen, const char *src);

/* ------------------------------------------------- purchase_store.c (SQL) */

/* The purchases' changelog (see shared/changelog.h): rows follow the
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
                          const char *plan_id, const char *offer_context,
                          const char *fund_source, char out[65]);

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
create_result purchase_create(sqlite3 *db, const purchase *p, int64_t timer_ms,
                              purchase *existing, int64_t *other_created_ms);

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
int purchase_update(sqlite3 *db, const purchase *next, unsigned expect_states,
                    int expect_attempts, purchase *current);

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
int purchase_find_subscriber(sqlite3 *db, const char *op, const char *subscriber,
                             const char *sp, int64_t from_ms, int64_t to_ms, int limit,
                             purchase_each_fn each, void *arg);
/* The operator's purchases (every partition: each instance holds a copy of
 * all rows) not final and created before created_before_ms, oldest first,
 * optionally of one provider (sp NULL: all). */
int purchase_find_overdue(sqlite3 *db, const char *op, const char *sp,
                          int64_t created_before_ms, int limit, purchase_each_fn each,
                          void *arg);

/* The PurchaseEvent of a row (every field filled), packed; caller frees. */
uint8_t *purchase_event_pack(const purchase *p, int64_t occurred_ms, size_t *len);

/* --------------------------------- activation_client.c (backend calls) */

typedef enum {
    ACT_COMPLETED = 0,  /* 200 status OK */
    ACT_PENDING,        /* 200 status PENDING: a callback decides */
    ACT_ALREADY,        /* PURCHASE_ALREADY_EXECUTED: done before, completed */
    ACT_FAILED,         /* a definite refusal: error_type says why */
    ACT_UNKNOWN,        /* no usable answer; the operator may have executed it */
    ACT_NOT_EXECUTED,   /* no answer, but certainly not executed (no
                           connection, or refused as CONGESTED / 429) */
} activation_kind;

typedef struct {
    activation_kind kind;
    long http_status;             /* 0: no HTTP answer */
    char error_type[65];
    char message[513];            /* operator's message, digits masked */
    char confirmation_code[257];
    char detail[160];             /* for logs: curl error, malformed body */
    int status_fail;              /* a 2xx answer whose activationStatus is
                                     FAIL: the operator's stored outcome */
} activation_result;

const char *activation_kind_name(activation_kind k);

/* Classifies an answer of POST /activate. Pure. status 0 = no answer;
 * connected tells a refused connection (0) from a lost one (1). */
void activation_parse(long status, const char *body, size_t len, int connected,
                      activation_result *out);

typedef struct {
    const tenant_operator *op;
    const char *channel_id;       /* client name or the default "App" */
    const char *callback_url;
    long timeout_ms;
} activation_target;

/* The JSON body of POST /activate for p. Caller frees. */
char *activation_body(const purchase *p, const char *channel_id, const char *callback_url);
/* {backendUrl}/activate/{customerId}?customerIdType=MSISDN|OPET. -1 if too long. */
int activation_url(const tenant_operator *op, const purchase *p, char *url, size_t urllen);
/* Calls POST /activate and classifies the answer. */
void activation_call(http_client *hc, const activation_target *t, const purchase *p,
                     activation_result *out);

typedef enum {
    OFFER_PRICE_OK = 0,
    OFFER_NOT_OFFERED,   /* 400 planid is not offered to this subscriber */
    OFFER_NEED_TOPUP,    /* 402: not offered, and the operator says the
                            subscriber must top up (subscriberState NEED_TOPUP) */
    OFFER_BACKEND_ERROR, /* cause + msg say what to answer */
} offer_price_result;

/* Finds plan_id in a backend offersInfo body: 1 found (price, currency),
 * 0 not offered, -1 malformed. Pure. */
int offers_find_price(const json_t *offers, const char *plan_id, int scale,
                      const char *default_currency, int64_t *price_minor, char *currency,
                      size_t curlen);
/* GET /offers/{customerId} for p's subscriber and price of p's plan. */
offer_price_result offer_price(http_client *hc, const tenant_operator *op, const purchase *p,
                               const char *channel_id, long timeout_ms, int64_t *price_minor,
                               char *currency, size_t curlen, const char **cause, char *msg,
                               size_t msglen);

/* ----------------------- purchase_outcome.c (causes, answers, decisions) */

/* ErrorDocument cause for a backend errorType (NULL/unknown: the HTTP
 * status decides as in offer-resolver: 0/5xx/408/429 SERVICE_UNAVAILABLE,
 * bare 404 INVALID_NUMBER, else ERROR_CAUSE_UNSPECIFIED). *fallback gets
 * a message for when the operator sent none. */
const char *outcome_cause(const char *error_type, long http_status, const char **fallback);
/* Replaces runs of 7+ digits (subscriber numbers) as offer-resolver does. */
void outcome_mask_digits(const char *text, char *out, size_t outlen);

/* The answers (compact JSON, malloc'd). */
char *response_completed(const purchase *p);   /* 200 ActivationResponse */
char *response_processing(const purchase *p);  /* 202 ActivationResponse */
char *response_error(const char *cause, const char *message);  /* ErrorDocument */
/* The purchase timer's 409 message: one constant text, whether the
 * earlier purchase was the asking provider's or another's. */
const char *purchase_timer_message(void);
/* Callback answers {"status", "message"}. */
char *response_callback(const char *status, const char *message);

/* When the retry thread re-checks a pending purchase (how long to wait
 * for a callback, and at most between re-checks). */
typedef struct {
    int64_t first_ms;             /* MILLOM_PENDING_RECHECK_S */
    int64_t max_ms;               /* MILLOM_PENDING_RECHECK_MAX_S */
} recheck_policy;

/* The next row after one activation call. p is the row as claimed
 * (state activating, attempts counting this call); *next is written.
 * rnd jitters the backoff; a PENDING answer schedules the first re-check
 * pol->first_ms from now (pol NULL: none). Returns 0, or -1 out of
 * memory. Pure. */
int outcome_after_activation(const purchase *p, const activation_result *r, long max_attempts,
                             const recheck_policy *pol, int64_t now, uint32_t rnd,
                             purchase *next);
/* The next row after a re-check of a pending purchase (p pending, attempts
 * counting this call): completed, failed, or still pending with the next
 * re-check scheduled (rechecks + 1). See the head comment. Pure. */
int outcome_after_recheck(const purchase *p, const activation_result *r,
                          const recheck_policy *pol, int64_t now, uint32_t rnd, purchase *next);
/* Delay before the next re-check after `rechecks` re-checks that found the
 * purchase still pending: first_ms, then doubling to max_ms, jittered into
 * [d/2, d] but never below first_ms. */
int64_t recheck_delay_ms(const recheck_policy *pol, int rechecks, uint32_t rnd);
/* The next row after an operator callback (p activating or pending). */
int outcome_after_callback(const purchase *p, int ok, const char *error_type,
                           const char *message, int64_t now, purchase *next);
/* Backoff before attempt n+1 after n calls: 0.5 s doubling to 30 s, with
 * jitter into [d/2, d]. */
int64_t retry_backoff_ms(int attempts, uint32_t rnd);

/* -------------------------------------------------- the service (executor.c) */

typedef struct {
    long timer_s;                 /* MILLOM_PURCHASE_TIMER_S, 60; 0 disables */
    long activate_timeout_ms;     /* MILLOM_ACTIVATE_TIMEOUT_MS, 5000 */
    long backend_timeout_ms;      /* MILLOM_BACKEND_TIMEOUT_MS, 2000 (GET /offers) */
    long max_attempts;            /* MILLOM_ACTIVATE_MAX_ATTEMPTS, 20 */
    long invalidate_timeout_ms;   /* MILLOM_INVALIDATE_TIMEOUT_MS, 1000 */
    char callback_base[256];      /* MILLOM_CALLBACK_BASE_URL, http://127.0.0.1:8080 */
    char channel_id[65];          /* MILLOM_CHANNEL_ID, "App" */
    recheck_policy recheck;       /* MILLOM_PENDING_RECHECK_S (60),
                                     MILLOM_PENDING_RECHECK_MAX_S (600) */
    long pending_max_age_s;       /* MILLOM_PENDING_MAX_AGE_S, 3600: overdue after */
} executor_config;

typedef struct retry_worker retry_worker;

typedef struct {
    metric *completed, *failed, *pending, *processing, *conflict, *rejected;
    metric *activation_seconds;   /* backend POST /activate latency */
    metric *stuck;                /* gauge: millom_purchases_stuck */
    metric *overdue;              /* gauge: millom_purchases_overdue */
    metric *rechecks;             /* counter: millom_pending_rechecks_total */
    metric *callbacks;
} executor_metrics;

typedef struct executor {
    executor_config cfg;
    tenants *tenants;
    kafka_producer *producer;
    char db_path[512];
    sqlite3 *db;                  /* the consumer thread's connection */
    http_client *http;            /* the consumer thread's client */
    outbox_relay *relay;
    retry_worker *retry;
    changelog_follower *follower; /* other instances' changes, restores */
    executor_metrics m;
} executor;

/* Reads the configuration from the environment. */
void executor_config_load(executor_config *cfg);
/* Opens the store at db_path (migrating it), starts the outbox relay and
 * the retry thread (which resumes every activating purchase at once).
 * Takes ownership of t. NULL with a message on error. */
executor *executor_new(const executor_config *cfg, tenants *t, kafka_producer *producer,
                       const char *db_path, char *err, size_t errlen);
/* Stops the retry thread, then the relay; closes; frees. */
void executor_free(executor *ex);

/* Consumer hooks (see kafka_consumer_opts): restore and own newly
 * assigned partitions; hand revoked ones over (stop retrying them, deliver
 * their changelog records); commit offsets only after the changelog
 * records of the handled messages were delivered. */
void executor_on_assign(void *arg, const rd_kafka_topic_partition_list_t *parts);
void executor_on_revoke(void *arg, const rd_kafka_topic_partition_list_t *parts);
int executor_before_commit(void *arg);

/* The Kafka handler: dispatches by topic. */
kafka_verdict executor_handle(void *arg, const rd_kafka_message_t *msg, char *err,
                              size_t errlen);

/* Handlers (one per topic), also callable with a raw payload. */
kafka_verdict executor_on_command(executor *ex, const void *payload, size_t len, char *err,
                                  size_t errlen);
kafka_verdict executor_on_callback(executor *ex, const void *payload, size_t len, char *err,
                                   size_t errlen);
/* callbacks.c: 1 when a callback naming (id_type, id_value) - as api-edge
 * passes them: MSISDN normalized, CPID decoded - may apply to p (also when
 * it names no subscriber at all), else 0. Pure. */
int callback_subscriber_matches(const purchase *p, const char *id_type, const char *id_value);
kafka_verdict executor_on_lookup(executor *ex, const void *payload, size_t len, char *err,
                                 size_t errlen);

/* After a committed state change: wakes the relay, counts the outcome, and
 * for a completed purchase produces the INVALIDATE query and waits for its
 * delivery (so offer-resolver drops the cached balance before the SP can
 * ask again). Call before replying. */
void executor_after_change(executor *ex, const purchase *before, const purchase *after);
/* Produces Reply(status, body) when meta asks for one and has not expired. */
void executor_reply(executor *ex, const Millom__V1__RequestMeta *meta, int status,
                    const char *body);

/* One activation call for a claimed purchase (p: activating, or pending
 * for a re-check; attempts already counting this call) and the
 * application of its outcome (outcome_after_activation or, for a pending
 * row, outcome_after_recheck), compare-and-set on p's state and
 * expect_attempts. On
 * return *after holds the row as stored (the outcome, or whatever another
 * actor stored first). Returns 0, or -1 when the outcome could not be
 * stored (the row stays activating and the retry thread calls again). */
int executor_activate(executor *ex, http_client *hc, sqlite3 *db, const purchase *p,
                      int expect_attempts, purchase *after);

/* When a call started now may be retried by the retry thread: the call's
 * timeout plus a grace period (the row's lease while a call runs). */
int64_t executor_lease_until(const executor *ex, int64_t now);

/* retry_worker.c */
retry_worker *retry_worker_start(executor *ex, char *err, size_t errlen);
void retry_worker_wake(retry_worker *w);
/* Waits (up to timeout_ms) until the retry thread is not inside an
 * activation call. 0, or -1 on timeout. */
int retry_worker_quiesce(retry_worker *w, int timeout_ms);
void retry_worker_stop(retry_worker *w);

/* lookups.c: a purchase as the management API shows it. */
json_t *purchase_to_json(const purchase *p, int currency_scale);

#endif
