/* millomctl: a small command-line tool for analysts and operators.
 *
 *   millomctl settlements tail [--format csv|json] [--from-beginning]
 *                              [--max N] [--idle-exit-ms MS]
 *       prints millom.settlement.records as CSV rows or JSON lines
 *   millomctl reports tail     (same options)
 *       prints millom.settlement.reports (the daily aggregates)
 *   millomctl purchases generate --count N [--day YYYY-MM-DD] [--prefix P]
 *       produces N synthetic COMPLETED PurchaseEvents (benchmarks, demos)
 *   millomctl events generate --count N --msisdn M [--msisdn M2]... [--type T]
 *                             [--operator OP] [--prefix P] [--times FILE]
 *       produces N SubscriberEvents on millom.subscriber.events (bench)
 *   millomctl link --path /rnf/... [--base URL] [--ttl S] [--param k=v]...
 *       prints a signed link (shared/contracts/signed_link.h: MILLOM_LINK_KEY, or
 *       the current key of MILLOM_LINK_KEYS, whose id the signature carries)
 *   millomctl purchases get TRANSID [--operator OP] [--service-provider SP]
 *                                   [--edge URL] [--format table|json|csv]
 *       one purchase from api-edge's management API (mgmt.c)
 *   millomctl consents SUBSCRIBER   (same options)
 *       a subscriber's consents and CPID registrations (mgmt.c)
 *   millomctl dlq list [TOPIC] | dlq replay TOPIC [--dry-run] [--max N]
 *       the dead-letter topics: pending messages, or republish them (dlq.c)
 *
 * The broker is found like every Millom program: KAFKA_BOOTSTRAP, else
 * the file devbroker writes (MILLOM_BROKER_FILE, var/broker.bootstrap). */
#ifndef MILLOMCTL_H
#define MILLOMCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "millom/v1/settlement.pb-c.h"

typedef enum { OUT_CSV = 0, OUT_JSON, OUT_TABLE } out_format;

/* Exit codes of the operator commands (purchases get, consents, dlq), for
 * scripts; the README lists them. */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_NOT_FOUND = 1,   /* no such purchase, no consent record */
    CTL_EXIT_USAGE = 2,       /* bad arguments, or the API answered 400 */
    CTL_EXIT_UNREACHABLE = 3, /* api-edge or the broker did not answer (or 502-504) */
    CTL_EXIT_FAILED = 4,      /* refused (401, 403), another error, a replay that stopped */
};

/* format.c: one message as text. Headers only for CSV. */
void print_record_header(FILE *out, out_format f);
void print_record(FILE *out, out_format f, const Millom__V1__SettlementRecord *r);
void print_report_header(FILE *out, out_format f);
/* CSV: one row per plan of the report (the report's columns repeated). */
void print_report(FILE *out, out_format f, const Millom__V1__SettlementReport *r);
/* RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
void csv_write_field(FILE *out, const char *s);
/* Minor units at a scale as a decimal string ("160.50"). */
void decimal_text(int64_t minor, int scale, char out[48]);
/* "table", "csv" or "json" into *f; -1 for anything else. */
int parse_format(const char *s, out_format *f);
/* rows (a JSON array of objects) with these columns (NULL-terminated):
 * an aligned table with a header line, CSV with a header row, or one JSON
 * object per line (the whole row, every field). Arrays of strings show as
 * "a,b" in table and CSV. */
void print_rows(FILE *out, out_format f, const char *const *columns, json_t *rows);
/* One object: "field  value" lines, CSV of one header row and one row, or
 * one JSON line. */
void print_object(FILE *out, out_format f, json_t *object);

typedef struct {
    const char *topic;
    out_format format;
    int from_beginning;
    long max;          /* stop after this many messages; 0 = no limit */
    long idle_exit_ms; /* stop after this long without a message; 0 = never */
} tail_opts;

/* tail.c: consumes and prints until SIGINT/SIGTERM or a limit. Exit code. */
int tail_run(const tail_opts *o);

typedef struct {
    long count;
    const char *day;    /* YYYY-MM-DD of occurred_at, NULL = now */
    const char *prefix; /* transid prefix */
} generate_opts;

/* generate.c: produces synthetic COMPLETED purchase events. Exit code. */
int generate_run(const generate_opts *o);

#define MILLOMCTL_MAX_LIST 64

typedef struct {
    long count;
    const char *msisdns[MILLOMCTL_MAX_LIST];
    size_t n_msisdns;
    const char *type;       /* default low-data */
    const char *op;         /* default tp */
    const char *prefix;     /* transactionId prefix */
    const char *times_file; /* "<transactionId>\t<produce ms>" lines, or NULL */
} events_opts;

/* events.c: produces synthetic SubscriberEvents. Exit code. */
int events_run(const events_opts *o);

typedef struct {
    const char *path;
    const char *base; /* "" by default: a path-absolute link */
    long ttl_s;
    const char *params[MILLOMCTL_MAX_LIST]; /* "name=value" */
    size_t n_params;
} link_opts;

/* link.c: prints one signed link. Exit code. */
int link_run(const link_opts *o);

typedef struct {
    out_format format;
    const char *edge;     /* api-edge's base URL */
    const char *op;       /* operator id, default tp */
    const char *provider; /* serviceProvider filter, or NULL */
} mgmt_opts;

/* mgmt.c: the management API of api-edge (GET /mgmt/{operator}/...), with
 * MILLOM_MGMT_TOKEN as a bearer token when set. CTL_EXIT_* codes. */
int purchases_get_run(const mgmt_opts *o, const char *transid);
int consents_run(const mgmt_opts *o, const char *subscriber);

typedef struct {
    out_format format;
    const char *topic; /* a consumed topic or its .dlq; NULL: every DLQ (list) */
    int replay;
    int dry_run;
    long max;        /* at most this many messages; 0 = all */
    long timeout_ms; /* per broker request and replayed message (10000) */
} dlq_opts;

/* dlq.c: lists a DLQ's messages not yet replayed, or replays them to
 * their source topic. CTL_EXIT_* codes. */
int dlq_run(const dlq_opts *o);

#endif
