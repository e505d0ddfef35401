/* Limits on POST /oauth/v1/token (issue 16 item 3): who may have a client
 * secret checked, and when.
 *
 * The workload: every secret check costs a PBKDF2 run (milliseconds), so
 * guesses must be refused before they reach the hashing pool, and a guesser
 * must not be able to lock a legitimate client out from elsewhere. Three
 * keys are tracked for each request:
 *  - the source address (IPv6 by its /64): a token bucket on every
 *    attempt, and a lock-out after failed secrets for any client id (a
 *    guesser spraying ids or secrets);
 *  - the client id, from every address: a token bucket on every attempt
 *    (distributed guessing of one id gets at most this rate);
 *  - the client id from that address: a lock-out after failed secrets.
 *    So a burst of wrong secrets for a client locks that client out only
 *    from the guesser's address; the client itself, calling from its own
 *    address, still gets its token.
 * A lock-out starts after `fail_free` failures in a row and lasts
 * lock_s * 2^(failures - fail_free - 1), at most lock_max_s: each further
 * failure (once the lock-out has passed) doubles it. A success resets the
 * failures of its address and of its client id from that address.
 * Failures are forgotten after forget_s without one.
 *
 * Unknown client ids are tracked exactly like known ones, so the limits
 * tell nothing about which ids exist.
 *
 * Memory is fixed: a set-associative table of `tracked` entries (8 ways,
 * keyed hash so a client cannot aim at one set); an entry idle for forget_s
 * is free, and a full set gives up its least recently seen entry that is
 * not locked out. Thread-safe (one mutex); the clock is the caller's
 * (seconds, monotonic), so tests drive it. */
#ifndef API_EDGE_TOKEN_LIMITS_H
#define API_EDGE_TOKEN_LIMITS_H

#include <stddef.h>

typedef struct {
    double rate_ip, burst_ip;         /* MILLOM_TOKEN_RATE_PER_IP, _BURST_PER_IP */
    double rate_client, burst_client; /* MILLOM_TOKEN_RATE_PER_CLIENT, _BURST_PER_CLIENT */
    long fail_free_ip;                /* MILLOM_TOKEN_FAIL_FREE_PER_IP */
    long fail_free_client;            /* MILLOM_TOKEN_FAIL_FREE_PER_CLIENT */
    double lock_s, lock_max_s;        /* MILLOM_TOKEN_FAIL_LOCK_S, _LOCK_MAX_S */
    double forget_s;                  /* MILLOM_TOKEN_FAIL_FORGET_S */
    long tracked;                     /* MILLOM_TOKEN_TRACKED */
    long hash_threads;                /* MILLOM_TOKEN_HASH_THREADS */
    long hash_queue;                  /* MILLOM_TOKEN_HASH_QUEUE */
} token_limits_cfg;

/* The production defaults. */
void token_limits_cfg_default(token_limits_cfg *c);
/* Defaults overridden by the environment; -1 with err naming the variable
 * when one is not a number in its range. Read once, at start-up. */
int token_limits_cfg_from_env(token_limits_cfg *c, char *err, size_t errlen);

typedef struct token_limits token_limits;
/* NULL when out of memory. cfg is copied. */
token_limits *token_limits_new(const token_limits_cfg *cfg);
void token_limits_free(token_limits *l);

typedef enum {
    TOKEN_ALLOW = 0,
    TOKEN_REFUSE_IP_LOCKED,     /* too many failed secrets from this address */
    TOKEN_REFUSE_IP_RATE,       /* too many attempts from this address */
    TOKEN_REFUSE_CLIENT_LOCKED, /* too many failed secrets for this id from here */
    TOKEN_REFUSE_CLIENT_RATE,   /* too many attempts for this id */
} token_decision;

/* Whether an attempt for client_id from ip may have its secret checked at
 * `now`. TOKEN_ALLOW takes one token of each bucket; a refusal sets
 * *retry_after to the whole seconds to wait (at least 1) and takes only the
 * tokens of the checks before the one that refused. */
token_decision token_limits_check(token_limits *l, const char *ip, const char *client_id,
                                  double now, int *retry_after);
/* The outcome of an allowed attempt: ok 1 resets failures, 0 counts one. */
void token_limits_report(token_limits *l, const char *ip, const char *client_id, int ok,
                         double now);
/* Entries in use (for tests: bounded by cfg.tracked). */
size_t token_limits_entries(token_limits *l);
const char *token_decision_text(token_decision d);

#endif
