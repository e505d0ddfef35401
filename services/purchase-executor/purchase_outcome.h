/* purchase_outcome.c: what an operator's answer means for a purchase (the
 * classification of an answer, activation_result, which activation_client.c
 * fills), the ErrorDocument causes, the answers the SP gets, and the next
 * row after an activation call, a re-check or a callback. Pure: no I/O, no
 * clock. See purchase_outcome.c for the rules. */
#ifndef PURCHASE_EXECUTOR_PURCHASE_OUTCOME_H
#define PURCHASE_EXECUTOR_PURCHASE_OUTCOME_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "purchase.h"

/* One answer of POST /activate as classified (activation_parse). */
typedef enum {
    ACT_COMPLETED = 0, /* 200 status OK */
    ACT_PENDING,       /* 200 status PENDING: a callback decides */
    ACT_ALREADY,       /* PURCHASE_ALREADY_EXECUTED: done before, completed */
    ACT_FAILED,        /* a definite refusal: error_type says why */
    ACT_UNKNOWN,       /* no usable answer; the operator may have executed it */
    ACT_NOT_EXECUTED,  /* no answer, but certainly not executed (no
                           connection, or refused as CONGESTED / 429) */
} activation_kind;

typedef struct {
    activation_kind kind;
    long http_status; /* 0: no HTTP answer */
    char error_type[65];
    char message[513]; /* operator's message, digits masked */
    char confirmation_code[257];
    char detail[160]; /* for logs: curl error, malformed body */
    int status_fail;  /* a 2xx answer whose activationStatus is
                                     FAIL: the operator's stored outcome */
} activation_result;

const char *activation_kind_name(activation_kind k); /* "unknown" */

/* ErrorDocument cause for a backend errorType (NULL/unknown: the HTTP
 * status decides as in offer-resolver: 0/5xx/408/429 SERVICE_UNAVAILABLE,
 * bare 404 INVALID_NUMBER, else ERROR_CAUSE_UNSPECIFIED). *fallback gets
 * a message for when the operator sent none. */
const char *outcome_cause(const char *error_type, long http_status, const char **fallback);
/* Replaces runs of 7+ digits (subscriber numbers) as offer-resolver does. */
void outcome_mask_digits(const char *text, char *out, size_t outlen);

/* The answers (compact JSON, malloc'd). */
char *response_completed(const purchase *p);                  /* 200 ActivationResponse */
char *response_processing(const purchase *p);                 /* 202 ActivationResponse */
char *response_error(const char *cause, const char *message); /* ErrorDocument */
/* The purchase timer's 409 message: one constant text, whether the
 * earlier purchase was the asking provider's or another's. */
const char *purchase_timer_message(void);
/* Callback answers {"status", "message"}. */
char *response_callback(const char *status, const char *message);

/* Whether the subscriber's funds (account_status: the backend's GET
 * /balance body) cover price_minor bought with fund_source: WALLET from
 * monetaryBalance, EWALLET from ewalletBalance (the sandbox's extension;
 * absent: nothing), LOAN and FREE always (the operator grants the loan; a
 * free plan costs nothing). 1 covered, 0 short, -1 when the balance it
 * needs is missing or unreadable. Pure. */
int funds_cover(const json_t *account_status, const char *fund_source, int64_t price_minor,
                int scale);

/* An eligibility answer (GET .../eligibility/{planId}, a dry-run
 * command): cause NULL when a purchase would go through now, else the
 * ErrorDocument cause and message it would get, and the operator's
 * errorType when the refusal is the operator's. */
typedef struct {
    const char *plan_id;
    const char *fund_source;
    int64_t price_minor; /* -1: not known (the plan was not found) */
    const char *currency;
    int currency_scale;
    const char *cause;      /* NULL: eligible */
    const char *message;    /* with cause */
    const char *error_type; /* NULL or "": none */
} eligibility;
/* {"planId","fundSource","eligible":true|false,["cost","costCurrency"],
 *  ["status","cause","errorMessage",["errorType"]]} (compact, malloc'd). */
char *response_eligibility(const eligibility *e);

/* When the retry thread re-checks a pending purchase (how long to wait
 * for a callback, and at most between re-checks). */
typedef struct {
    int64_t first_ms; /* MILLOM_PENDING_RECHECK_S */
    int64_t max_ms;   /* MILLOM_PENDING_RECHECK_MAX_S */
} recheck_policy;

/* The next row after one activation call. p is the row as claimed
 * (state activating, attempts counting this call); *next is written.
 * rnd jitters the backoff; a PENDING answer schedules the first re-check
 * pol->first_ms from now (pol NULL: none). Returns 0, or -1 out of
 * memory. Pure. */
int outcome_after_activation(const purchase *p, const activation_result *r, long max_attempts,
                             const recheck_policy *pol, int64_t now, uint32_t rnd, purchase *next);
/* The next row after a re-check of a pending purchase (p pending, attempts
 * counting this call): completed, failed, or still pending with the next
 * re-check scheduled (rechecks + 1). See the head comment. Pure. */
int outcome_after_recheck(const purchase *p, const activation_result *r, const recheck_policy *pol,
                          int64_t now, uint32_t rnd, purchase *next);
/* Delay before the next re-check after `rechecks` re-checks that found the
 * purchase still pending: first_ms, then doubling to max_ms, jittered into
 * [d/2, d] but never below first_ms. */
int64_t recheck_delay_ms(const recheck_policy *pol, int rechecks, uint32_t rnd);
/* The next row after an operator callback (p activating or pending). */
int outcome_after_callback(const purchase *p, int ok, const char *error_type, const char *message,
                           int64_t now, purchase *next);
/* Backoff before attempt n+1 after n calls: 0.5 s doubling to 30 s, with
 * jitter into [d/2, d]. */
int64_t retry_backoff_ms(int attempts, uint32_t rnd);

#endif
