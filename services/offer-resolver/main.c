/* offer-resolver: wiring. Settings: MILLOM_RESOLVER_PORT (admin, 9101),
 * MILLOM_RESOLVER_BACKEND_CONNECTIONS (64, per operator backend),
 * MILLOM_RESOLVER_WORKERS (4, for calls that wait for a token fetch),
 * MILLOM_CACHE_TTL_S (30), MILLOM_CACHE_MAX_KB (4096), MILLOM_BACKEND_TIMEOUT_MS
 * (2000), MILLOM_OFFER_TTL_S (900), MILLOM_CHANNEL_ID ("App"), MILLOM_TENANTS. */
#include "resolver.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/runner.h"

#include <stdlib.h>

static void *worker_init(void *arg) {
    (void)arg;
    return http_client_new();
}

static void worker_free(void *state) { http_client_free(state); }

static void worker_run(void *arg, void *state, void *job) { resolver_answer(arg, state, job); }

static void worker_drop(void *arg, void *job) { resolver_job_free(arg, job); }

resolver *resolver_new(kafka_producer *producer, char *err, size_t errlen) {
    resolver *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->producer = producer;
    /* The settings, through shared/plumbing/settings.h (a bad value: an error naming
     * the variable, and the program exits 1). */
    settings_reader s = SETTINGS_INIT;
    r->cache_ttl_ms = settings_seconds(&s, "MILLOM_CACHE_TTL_S", 30, 0, 86400) * 1000;
    r->backend_timeout_ms = settings_ms(&s, "MILLOM_BACKEND_TIMEOUT_MS", 2000, 1, 600000);
    r->offer_ttl_ms = settings_seconds(&s, "MILLOM_OFFER_TTL_S", 900, 1, 7 * 86400) * 1000;
    r->channel_id = settings_str(&s, "MILLOM_CHANNEL_ID", "App");
    long cache_kb = settings_long(&s, "MILLOM_CACHE_MAX_KB", 4096, 64, 16L * 1024 * 1024);
    int workers = (int)settings_long(&s, "MILLOM_RESOLVER_WORKERS", 4, 1, 1024);
    long connections = settings_long(&s, "MILLOM_RESOLVER_BACKEND_CONNECTIONS", 64, 1, 10000);
    if (!settings_ok(&s)) {
        snprintf(err, errlen, "%s", settings_error(&s));
        goto fail;
    }
    r->cache_hits = metric_counter("millom_cache_hits_total", "balance cache hits", NULL);
    r->cache_misses = metric_counter("millom_cache_misses_total", "balance cache misses", NULL);
    r->offers_hits = metric_counter("millom_offers_cache_hits_total", "offers cache hits", NULL);
    r->offers_misses =
        metric_counter("millom_offers_cache_misses_total", "offers cache misses", NULL);
    r->backend_latency =
        metric_histogram("millom_backend_request_seconds", "operator backend call latency", NULL);
    r->tenants = tenants_load_default(err, errlen);
    if (!r->tenants) goto fail;
    r->cache = backend_cache_new(r->cache_ttl_ms, (size_t)cache_kb * 1024);
    if (!r->cache) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    http_loop_opts lo = {
        .name = "backend loop",
        .max_host_connections = connections,
        .max_in_flight = 1024,
        .max_waiting = 4096,
    };
    r->backend = http_loop_start(&lo, err, errlen);
    if (!r->backend) goto fail;
    work_queue_opts wq = {
        .threads = workers,
        .capacity = 4096,
        .worker_init = worker_init,
        .worker_free = worker_free,
        .run = worker_run,
        .drop = worker_drop,
        .arg = r,
    };
    r->workers = work_queue_new(&wq);
    if (!r->workers) {
        snprintf(err, errlen, "cannot start workers");
        goto fail;
    }
    return r;
fail:
    resolver_free(r);
    return NULL;
}

void resolver_free(resolver *r) {
    if (!r) return;
    http_loop_stop(r->backend); /* its last completions may hand queries to workers */
    work_queue_free(r->workers);
    backend_cache_free(r->cache);
    tenants_free(r->tenants);
    free(r);
}

static void *setup(runner *run) {
    char err[512];
    resolver *r = resolver_new(runner_producer(run), err, sizeof err);
    if (!r) log_error("offer-resolver: %s", err);
    return r;
}

static void teardown(void *state) { resolver_free(state); }

int main(void) {
    static const char *const topics[] = {TOPIC_QUERIES, TOPIC_PURCHASE_EVENTS, NULL};
    runner_opts opts = {
        .name = "offer-resolver",
        .admin_port_env = "MILLOM_RESOLVER_PORT",
        .admin_port = 9101,
        .topics = topics,
        .handler = resolver_on_message,
        .setup = setup,
        .teardown = teardown,
    };
    return runner_main(&opts);
}
