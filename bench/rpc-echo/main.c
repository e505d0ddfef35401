/* rpc-echo: the floor of Millom's read path, the Kafka request/reply hop
 * alone (issue 14), for scripts/bench_kafka_floor.sh.
 *
 *   rpc-echo respond
 *       A group consumer of millom.queries that answers every Query with
 *       rpc_reply() (200, a fixed tiny body) in its consumer thread and does
 *       nothing else: offer-resolver without the cache, the backend call
 *       and the worker hand-off. Runs until SIGINT or SIGTERM.
 *   rpc-echo call [--callers N] [--seconds S] [--timeout-ms MS]
 *                 [--reply-partition P] [--key K] [--cpu-of NAME=PID]...
 *       N callers (50, like wrk's connections) each make round trips in a
 *       closed loop for S seconds (10), as api-edge does for /balance: a
 *       Query packed with rpc_call_begin's meta, produced to millom.queries
 *       keyed by K (the bench's /balance subscriber: one key, one
 *       partition), the reply read from partition P (0) of millom.replies,
 *       MS (3000, api-edge's MILLOM_QUERY_DEADLINE_MS) to answer. Before
 *       the clock starts, one call waits up to 30 s for the responder.
 *       Prints one JSON object on stdout: round trips, round trips/s, p50
 *       and p99 latency in ms, timeouts, send errors, replies other than
 *       200, and the CPU seconds (utime + stime from /proc/<pid>/stat) the
 *       client itself and every --cpu-of process used during the run, in
 *       all and per 1,000 round trips.
 *
 * Both sides use the services' own code with their settings: the producer
 * and group consumer of shared/plumbing/kafka.c, the rpc client of
 * shared/patterns/rpc.c, so MILLOM_KAFKA_* and MILLOM_RPC_* apply as they
 * do to api-edge and offer-resolver. The broker is the one named by
 * KAFKA_BOOTSTRAP or MILLOM_BROKER_FILE, as for every program. */
#include "shared/patterns/rpc.h"
#include "shared/plumbing/clock.h"
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/topics.h"
#include "millom/v1/query.pb-c.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ECHO_BODY "{\"echo\":true}"
#define DEFAULT_KEY "924542610003" /* scripts/bench.sh's /balance subscriber */
#define READY_TIMEOUT_MS 30000
#define MAX_CPU_OF 8

/* ------------------------------------------------------------- responder */

static atomic_long answered;

static kafka_verdict echo_on_query(void *arg, const rd_kafka_message_t *msg, char *err,
                                   size_t errlen) {
    kafka_producer *producer = arg;
    Millom__V1__Query *q = millom__v1__query__unpack(NULL, msg->len, msg->payload);
    if (!q) {
        snprintf(err, errlen, "not a millom.v1.Query");
        return KAFKA_DEAD_LETTER;
    }
    if (!q->meta || !q->meta->correlation_id || !*q->meta->correlation_id) {
        snprintf(err, errlen, "query lacks meta");
        millom__v1__query__free_unpacked(q, NULL);
        return KAFKA_DEAD_LETTER;
    }
    /* As offer-resolver: a query past its deadline has nobody waiting. */
    if (!rpc_expired(q->meta) &&
        rpc_reply(producer, q->meta, 200, "application/json", ECHO_BODY, strlen(ECHO_BODY), 0) == 0)
        atomic_fetch_add(&answered, 1);
    millom__v1__query__free_unpacked(q, NULL);
    return KAFKA_DONE;
}

/* The consumer as shared/patterns/runner.c makes offer-resolver's (its
 * group, the producer for replies and dead letters), without the admin
 * port: the caller's first call is its readiness check. */
static int respond(void) {
    char err[512];
    kafka_producer *producer = kafka_producer_new("rpc-echo", 0, err, sizeof err);
    if (!producer) {
        log_error("kafka producer: %s", err);
        return 1;
    }
    static const char *const topics[] = {TOPIC_QUERIES, NULL};
    kafka_consumer_opts opts = {
        .group_id = "rpc-echo",
        .client_id = "rpc-echo",
        .topics = topics,
        .handler = echo_on_query,
        .handler_arg = producer,
        .dlq = producer,
    };
    kafka_consumer *consumer = kafka_consumer_new(&opts, err, sizeof err);
    int code = 1;
    if (!consumer) {
        log_error("kafka consumer: %s", err);
    } else if (kafka_consumer_start(consumer) != 0) {
        log_error("cannot start the consumer thread");
    } else {
        log_info("rpc-echo: answering %s", TOPIC_QUERIES);
        service_wait_for_stop();
        code = kafka_fatal_error_seen() ? 1 : 0;
    }
    kafka_consumer_free(consumer);
    kafka_producer_free(producer);
    log_info("rpc-echo: answered %ld queries", atomic_load(&answered));
    return code;
}

/* ---------------------------------------------------------------- client */

typedef struct {
    const char *name;
    pid_t pid;
    long ticks_before, ticks_after;
} cpu_watch;

typedef struct {
    int callers;
    double seconds;
    int timeout_ms;
    int32_t reply_partition;
    const char *key;
    cpu_watch cpu[MAX_CPU_OF + 1]; /* [0]: the client itself */
    size_t n_cpu;
} call_opts;

/* The run's state. Replies (and timeouts) arrive on the rpc client's reader
 * thread, which starts each caller's next call from the callback, as
 * api-edge's next request would follow its reply; the main thread only
 * starts the first calls and stops the clock. */
typedef struct {
    const call_opts *opts;
    kafka_producer *producer;
    rpc_client *rpc;
    atomic_int measuring; /* 1 while the clock runs */
    atomic_int in_flight;

    pthread_mutex_t mu; /* the figures below */
    long round_trips, timeouts, send_errors, bad_replies;
    uint32_t *latency_us; /* one per round trip */
    size_t n_latency, cap_latency;
} floor_run;

typedef struct {
    floor_run *run;
    struct timespec sent;
} caller;

static double seconds_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* utime + stime of a process in clock ticks, or -1 when it is gone. Field
 * 2 (comm) may hold spaces: the fields are counted after its ')'. */
static long cpu_ticks(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long utime = 0, stime = 0;
    /* After ") ": state is field 3; utime and stime are fields 14 and 15. */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (long)(utime + stime);
}

static void cpu_snapshot(call_opts *o, int after) {
    for (size_t i = 0; i < o->n_cpu; i++) {
        long t = cpu_ticks(o->cpu[i].pid);
        if (after)
            o->cpu[i].ticks_after = t;
        else
            o->cpu[i].ticks_before = t;
    }
}

static void record_latency(floor_run *r, uint32_t us) {
    if (r->n_latency == r->cap_latency) {
        size_t cap = r->cap_latency ? r->cap_latency * 2 : 65536;
        uint32_t *grown = realloc(r->latency_us, cap * sizeof *grown);
        if (!grown) return; /* the percentiles lose this one; the count does not */
        r->latency_us = grown;
        r->cap_latency = cap;
    }
    r->latency_us[r->n_latency++] = us;
}

static void on_reply(void *arg, const Millom__V1__Reply *reply);

/* Starts c's next call: 0, or -1 when it could not be sent (counted). */
static int call_next(caller *c) {
    floor_run *r = c->run;
    Millom__V1__RequestMeta meta;
    Millom__V1__SubscriberRef sub = MILLOM__V1__SUBSCRIBER_REF__INIT;
    sub.operator_ = "tp";
    sub.subscriber_id = (char *)r->opts->key;
    Millom__V1__Query q = MILLOM__V1__QUERY__INIT;
    q.meta = &meta;
    q.kind = MILLOM__V1__QUERY_KIND__QUERY_KIND_BALANCE;
    q.service_provider = "testserviceprovider";
    q.subscriber = &sub;
    clock_gettime(CLOCK_MONOTONIC, &c->sent);
    atomic_fetch_add(&r->in_flight, 1);
    if (rpc_call_begin(r->rpc, r->opts->timeout_ms, on_reply, c, &meta) != 0) goto fail;
    /* As api-edge's edge_send_request: pack after begin filled the meta. */
    uint8_t buf[512];
    size_t len = millom__v1__query__get_packed_size(&q);
    if (len > sizeof buf) {
        rpc_call_cancel(r->rpc, meta.correlation_id);
        goto fail;
    }
    millom__v1__query__pack(&q, buf);
    if (kafka_produce(r->producer, TOPIC_QUERIES, -1, r->opts->key, strlen(r->opts->key), buf, len,
                      NULL, 0) != 0) {
        rpc_call_cancel(r->rpc, meta.correlation_id); /* on_reply will not run */
        goto fail;
    }
    return 0;
fail:
    atomic_fetch_sub(&r->in_flight, 1);
    pthread_mutex_lock(&r->mu);
    r->send_errors++;
    pthread_mutex_unlock(&r->mu);
    return -1;
}

/* A caller whose call could not be sent stops: the run reports it as a
 * send error, and its figures are not the floor's. The next call is
 * counted in flight before this one leaves it, so the main thread, which
 * waits for none to be in flight, never sees a gap between the two. */
static void on_reply(void *arg, const Millom__V1__Reply *reply) {
    caller *c = arg;
    floor_run *r = c->run;
    double s = seconds_since(&c->sent);
    int measuring = atomic_load(&r->measuring);
    if (measuring) {
        pthread_mutex_lock(&r->mu);
        if (!reply) {
            r->timeouts++;
        } else if (reply->http_status != 200) {
            r->bad_replies++;
        } else {
            r->round_trips++;
            record_latency(r, (uint32_t)(s * 1e6));
        }
        pthread_mutex_unlock(&r->mu);
    }
    if (measuring) call_next(c);
    atomic_fetch_sub(&r->in_flight, 1);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted latencies, in ms; -1 without any. */
static double percentile_ms(const uint32_t *sorted, size_t n, double pct) {
    if (n == 0) return -1;
    size_t rank = (size_t)((double)n * pct / 100.0 + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1] / 1000.0;
}

/* One call that waits for the responder (its consumer may still be
 * joining the group): 0 once a 200 came back. */
static int wait_for_responder(floor_run *r) {
    int64_t until = mono_ms() + READY_TIMEOUT_MS;
    while (mono_ms() < until && !service_stopping()) {
        Millom__V1__RequestMeta meta;
        Millom__V1__Query q = MILLOM__V1__QUERY__INIT;
        q.meta = &meta;
        q.kind = MILLOM__V1__QUERY_KIND__QUERY_KIND_BALANCE;
        int status = 0;
        char *body = NULL, err[256];
        int rc = rpc_call_wait(r->rpc, r->producer, TOPIC_QUERIES, r->opts->key, &q.base, &meta,
                               (int)(until - mono_ms()), &status, &body, err, sizeof err);
        free(body);
        if (rc == 0 && status == 200) return 0;
        if (rc != 0) {
            log_warn("rpc-echo: %s", err);
            clock_sleep_ms(100);
        }
    }
    return -1;
}

static json_t *cpu_json(const call_opts *o, long round_trips) {
    json_t *cpu = json_object();
    long tck = sysconf(_SC_CLK_TCK);
    for (size_t i = 0; i < o->n_cpu; i++) {
        const cpu_watch *w = &o->cpu[i];
        json_t *entry = json_object();
        if (w->ticks_before < 0 || w->ticks_after < 0) {
            json_object_set_new(entry, "cpu_s", json_null());
            json_object_set_new(entry, "cpu_s_per_1000", json_null());
        } else {
            double s = (double)(w->ticks_after - w->ticks_before) / (double)tck;
            json_object_set_new(entry, "cpu_s", json_real(s));
            json_object_set_new(entry, "cpu_s_per_1000",
                                round_trips ? json_real(s * 1000.0 / (double)round_trips)
                                            : json_null());
        }
        json_object_set_new(cpu, w->name, entry);
    }
    return cpu;
}

static int print_results(floor_run *r, call_opts *o, double seconds) {
    if (r->n_latency) qsort(r->latency_us, r->n_latency, sizeof *r->latency_us, cmp_u32);
    double p50 = percentile_ms(r->latency_us, r->n_latency, 50);
    double p99 = percentile_ms(r->latency_us, r->n_latency, 99);
    double rate = seconds > 0 ? (double)r->round_trips / seconds : 0.0;
    json_t *out = json_object();
    json_object_set_new(out, "callers", json_integer(o->callers));
    json_object_set_new(out, "seconds", json_real(seconds));
    json_object_set_new(out, "timeout_ms", json_integer(o->timeout_ms));
    json_object_set_new(out, "round_trips", json_integer(r->round_trips));
    json_object_set_new(out, "round_trips_per_s", json_real(rate));
    json_object_set_new(out, "p50_ms", p50 < 0 ? json_null() : json_real(p50));
    json_object_set_new(out, "p99_ms", p99 < 0 ? json_null() : json_real(p99));
    json_object_set_new(out, "timeouts", json_integer(r->timeouts));
    json_object_set_new(out, "send_errors", json_integer(r->send_errors));
    json_object_set_new(out, "bad_replies", json_integer(r->bad_replies));
    json_object_set_new(out, "cpu", cpu_json(o, r->round_trips));
    if (!out) return -1;
    int rc = json_dumpf(out, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(out);
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "rpc-echo: %ld round trips in %.2f s (%.0f/s), p50 %.2f ms, p99 %.2f ms",
            r->round_trips, seconds, rate, p50, p99);
    fprintf(stderr, ", %ld timeouts, %ld send errors, %ld other replies\n", r->timeouts,
            r->send_errors, r->bad_replies);
    return rc;
}

/* The measured run: every caller's first call, the clock, the stop; the
 * calls still in flight then end (reply or deadline) uncounted. */
static int measure(floor_run *r, call_opts *o) {
    caller *callers = calloc((size_t)o->callers, sizeof *callers);
    if (!callers) return -1;
    struct timespec t0;
    cpu_snapshot(o, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    atomic_store(&r->measuring, 1);
    for (int i = 0; i < o->callers; i++) {
        callers[i].run = r;
        call_next(&callers[i]);
    }
    while (seconds_since(&t0) < o->seconds && !service_stopping()) clock_sleep_ms(10);
    atomic_store(&r->measuring, 0);
    double seconds = seconds_since(&t0);
    cpu_snapshot(o, 1);
    /* The callers' memory must outlive their last callbacks. */
    int64_t until = mono_ms() + o->timeout_ms + 1000;
    while (atomic_load(&r->in_flight) > 0 && mono_ms() < until) clock_sleep_ms(5);
    rpc_client_close(r->rpc); /* ends any call left (callback with NULL) */
    free(callers);
    return print_results(r, o, seconds);
}

static int call(call_opts *o) {
    char err[512];
    floor_run r = {.opts = o};
    pthread_mutex_init(&r.mu, NULL);
    int code = 1;
    r.producer = kafka_producer_new("rpc-echo-client", 0, err, sizeof err);
    if (!r.producer) {
        log_error("kafka producer: %s", err);
        goto out;
    }
    r.rpc = rpc_client_new(r.producer, o->reply_partition, err, sizeof err);
    if (!r.rpc) {
        log_error("rpc client: %s", err);
        goto out;
    }
    if (rpc_client_start(r.rpc) != 0) goto out;
    if (wait_for_responder(&r) != 0) {
        log_error("rpc-echo: no answer to a query in %d s; is `rpc-echo respond` running on "
                  "this broker?",
                  READY_TIMEOUT_MS / 1000);
        goto out;
    }
    if (measure(&r, o) == 0) code = 0;
out:
    rpc_client_free(r.rpc);
    kafka_producer_free(r.producer);
    free(r.latency_us);
    pthread_mutex_destroy(&r.mu);
    return code;
}

/* ------------------------------------------------------------ arguments */

static int usage(void) {
    fprintf(stderr,
            "usage: rpc-echo respond\n"
            "       rpc-echo call [--callers N] [--seconds S] [--timeout-ms MS]\n"
            "                     [--reply-partition P] [--key K] [--cpu-of NAME=PID]...\n");
    return 2;
}

/* A whole decimal number in [lo, hi], or -1 with a message. */
static int parse_long(const char *flag, const char *text, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || errno || end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "rpc-echo: %s wants a whole number from %ld to %ld, not '%s'\n", flag, lo,
                hi, text ? text : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_call_opts(int argc, char **argv, call_opts *o) {
    *o = (call_opts){.callers = 50, .seconds = 10, .timeout_ms = 3000, .key = DEFAULT_KEY};
    o->cpu[o->n_cpu++] = (cpu_watch){.name = "client", .pid = getpid()};
    for (int i = 0; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        long v;
        if (strcmp(flag, "--callers") == 0) {
            if (parse_long(flag, value, 1, 10000, &v)) return -1;
            o->callers = (int)v;
        } else if (strcmp(flag, "--seconds") == 0) {
            if (parse_long(flag, value, 1, 3600, &v)) return -1;
            o->seconds = (double)v;
        } else if (strcmp(flag, "--timeout-ms") == 0) {
            if (parse_long(flag, value, 1, 600000, &v)) return -1;
            o->timeout_ms = (int)v;
        } else if (strcmp(flag, "--reply-partition") == 0) {
            if (parse_long(flag, value, 0, 100000, &v)) return -1;
            o->reply_partition = (int32_t)v;
        } else if (strcmp(flag, "--key") == 0 && value && *value) {
            o->key = value;
        } else if (strcmp(flag, "--cpu-of") == 0 && value && strchr(value, '=')) {
            if (o->n_cpu == MAX_CPU_OF + 1) {
                fprintf(stderr, "rpc-echo: at most %d --cpu-of\n", MAX_CPU_OF);
                return -1;
            }
            const char *eq = strchr(value, '=');
            if (eq == value || parse_long(flag, eq + 1, 1, 1L << 22, &v)) return -1;
            /* The name is the argument's text up to '=': cut it there. */
            argv[i + 1][eq - value] = '\0';
            o->cpu[o->n_cpu++] = (cpu_watch){.name = value, .pid = (pid_t)v};
        } else {
            return -1;
        }
        i++;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    service_init("rpc-echo");
    kafka_settings_load(); /* a bad MILLOM_KAFKA_* setting exits 1 here */
    if (strcmp(argv[1], "respond") == 0 && argc == 2) return respond();
    if (strcmp(argv[1], "call") == 0) {
        call_opts o;
        if (parse_call_opts(argc - 2, argv + 2, &o) != 0) return usage();
        return call(&o);
    }
    return usage();
}
