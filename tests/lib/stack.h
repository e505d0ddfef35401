/* Test harness: starts the real programs (devbroker, the sandboxes, the
 * services) on loopback with their own ports and a temporary data
 * directory, waits until each is ready, and stops them. Plus a small HTTP
 * helper on libcurl for the tests' requests. */
#ifndef TESTS_STACK_H
#define TESTS_STACK_H

#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#define STACK_MAX_PROCS 16

typedef struct {
    char dir[256]; /* temporary data dir, logs too */
    char broker_file[300];
    char bootstrap[256];
    char tenants_file[300]; /* the sandbox tenants with this stack's ports */
    int edge_port, mno_port, resolver_port, executor_port, notifier_port, settlement_port, sp_port;
    pid_t pids[STACK_MAX_PROCS];
    char names[STACK_MAX_PROCS][32];
    int n;
} test_stack;

/* Starts devbroker + mno-sandbox + sp-sandbox + all five services. `env` is a
 * NULL-terminated list of extra "NAME=value" settings for every program.
 * The tenants file is the sandbox's, with this stack's URLs (and every
 * provider's "purchaseCallbacks" set to the test process's
 * MILLOM_TEST_PURCHASE_CALLBACKS when set).
 * Ports are base_port + 0 (api-edge), +1 (mno), +2..+5 (admin ports),
 * +6 (sp-sandbox). */
int stack_start(test_stack *s, int base_port, const char *const *env);
/* Starts one program (name of a binary in $BUILD/bin) with the stack's env. */
pid_t stack_spawn(test_stack *s, const char *name, const char *const *env);
/* Starts another instance of a program under its own name (for
 * stack_kill, stack_stop_one and its log file <name>.log); env should
 * give it its own ports and MILLOM_DATA_DIR. */
pid_t stack_spawn_as(test_stack *s, const char *program, const char *name, const char *const *env);
/* Sends sig (SIGKILL for a crash) to a program and reaps it. */
int stack_kill(test_stack *s, const char *name, int sig);
/* Sends SIGTERM to a program and waits; returns its exit status. */
int stack_stop_one(test_stack *s, const char *name);
/* Stops everything (SIGTERM, then SIGKILL after 10 s) and removes the dir
 * unless MILLOM_KEEP_TEST_DIR is set. Prints the logs of programs that
 * exited badly; returns non-zero if any did (a crash, a sanitizer report). */
int stack_stop(test_stack *s);

/* The end of an integration test's main(): runs suite (check, no fork)
 * against the started stack, stops the stack, cleans up curl, and returns
 * the exit status: 1 if a test failed or a program exited badly. */
typedef struct Suite Suite;
int stack_run_suite(test_stack *s, Suite *suite);
/* Waits for GET /readyz on the port to answer 200. 0 when ready. */
int stack_wait_ready(int port, int timeout_ms);

typedef struct {
    long status;
    char *body;
    size_t len;
    char retry_after[16];
    char correlator[136]; /* the answer's x-correlator header, "" without */
    double seconds;
} test_response;

/* One request. headers: NULL-terminated "Name: value" list, may be NULL.
 * A body goes as application/json unless headers give a Content-Type. */
int test_http(const char *method, const char *url, const char *const *headers, const char *body,
              test_response *out);
void test_response_free(test_response *r);
/* GET and parse JSON; NULL if the body is not JSON. */
json_t *test_get_json(const char *url, const char *const *headers, long *status);
/* Sleeps ms milliseconds (for bounded polling loops, never for timing). */
void test_sleep_ms(int ms);
/* The value of the unlabelled series `name` on base_url + "/metrics"
 * (e.g. "http://127.0.0.1:18684"), or -1 when absent or unreachable. */
long test_metric(const char *base_url, const char *name);
/* The sum over every series of `name` (any labels) whose line contains
 * label_substring (NULL: all series) on base_url + "/metrics"; 0 when none,
 * -1 when unreachable or not answered 200. */
long test_metric_sum(const char *base_url, const char *name, const char *label_substring);
/* POST a JSON body and parse the JSON answer; NULL if not JSON. */
json_t *test_post_json(const char *url, const char *body, long *status);

/* Requests to the sandboxes and api-edge that several tests make. */

/* The transId Millom sends the operator for provider sp's transid
 * (purchase-executor's purchase_operator_transid, computed here on its
 * own): SHA-256 of "millom.operator-transid.v1\n" and the length-prefixed
 * fields "<len>:sp\n<len>:transid\n", first 16 bytes as a version-8 UUID. */
void test_operator_transid(const char *sp, const char *transid, char out[37]);
/* mno-sandbox's activations of the sandbox provider's (testserviceprovider)
 * transid, asked by the operator transId Millom sent for it (GET mno_base +
 * "/admin/activations?transId="): the sums of their "debits" and "refunds"
 * into *debits and *refunds (each may be NULL); returns the HTTP status. */
long test_mno_activations(const char *mno_base, const char *transid, long *debits, long *refunds);
/* The same for provider sp's transid. */
long test_mno_activations_of(const char *mno_base, const char *sp, const char *transid,
                             long *debits, long *refunds);
/* GET edge_base + "/std/{sp}/{op}/{msisdn}/accountInfo" past the cache
 * (Cache-Control: no-cache), asserting 200; the "balance" of the balance
 * whose balanceType is `type` (malloc'ed, caller frees), or NULL when the
 * answer has none. */
char *test_balance(const char *edge_base, const char *sp, const char *op, const char *msisdn,
                   const char *type);
/* Consent: POST edge_base + "/std/{sp}/{msisdn}/register" with the body
 * {"transactionId":"<transaction_id>","types":<types_json>}; the status. */
long test_register_consent(const char *edge_base, const char *sp, const char *msisdn,
                           const char *transaction_id, const char *types_json);
/* GET sp_base + "/admin/received?kind=<kind>[&since=<since>]&limit=<limit>"
 * (since < 0: none); the parsed answer (records in its "received" array,
 * caller decrefs) or NULL, *status the HTTP status when given. */
json_t *test_sp_received(const char *sp_base, const char *kind, long since, int limit,
                         long *status);
/* How many of sp-sandbox's records of `kind` (up to 10000) have
 * transactionId tid, with status_ok only those answered 200; the first
 * match's "body" into *first (caller decrefs) when first is given, the
 * listing's HTTP status into *status when given. */
int test_sp_received_count(const char *sp_base, const char *kind, const char *tid, int status_ok,
                           json_t **first, long *status);

/* ---- Whole-stack restart (tests/integration/test_restart.c) ---- */

/* Stops every program of the standard stack but devbroker (api-edge first,
 * the sandboxes last) with sig: SIGTERM waits for each to exit (SIGKILL
 * after 10 s) and counts an exit status other than 0 as a problem (its log
 * is printed); SIGKILL kills and reaps. Then starts them again on the same
 * data directory, ports and env (stack_start's), and waits until each
 * answers /readyz (timeout_ms each). 0 when every program stopped as
 * expected and became ready again; otherwise the number of problems. Extra
 * instances started with stack_spawn_as are left alone. */
int stack_restart_all(test_stack *s, int sig, int timeout_ms);

/* Starts a program stopped or killed before (stack_kill, stack_stop_one)
 * again in its old place, so stack_stop stops it in its old order (e.g.
 * devbroker after the services). The stack's env plus `env`. */
pid_t stack_respawn_in_place(test_stack *s, const char *name, const char *const *env);
/* The same for an instance started with stack_spawn_as(program, name). */
pid_t stack_respawn_as_in_place(test_stack *s, const char *program, const char *name,
                                const char *const *env);

#endif
