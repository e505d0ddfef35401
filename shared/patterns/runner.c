/* See runner.h. */
#include "shared/plumbing/settings.h"
#include "shared/patterns/runner.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/http_server.h"
#include "shared/contracts/keys.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct runner {
    const runner_opts *opts;
    kafka_producer *producer;
    kafka_consumer *consumer;
    void *state;
};

kafka_producer *runner_producer(runner *r) { return r->producer; }

static int runner_ready(void *arg) {
    runner *r = arg;
    return r->consumer && kafka_consumer_ready(r->consumer) && kafka_healthy() && store_ready();
}

static void no_routes(void *app, http_request *req) {
    (void)app;
    http_respond_error(req, "NOT_FOUND", "no such path: %s", http_path(req));
}

int runner_main(const runner_opts *opts) {
    service_init(opts->name);
    /* Keys before anything else: a service never runs on a guessed key
     * (shared/contracts/keys.h; in production a missing key stops it here). */
    if (keys_init() != 0) return 1;
    /* Every shared setting before connecting anywhere: a bad one exits 1. */
    kafka_settings_load();
    http_server_settings_check();
    int admin_port = (int)setting_long(opts->admin_port_env, opts->admin_port, 0, 65535);
    http_client_global_init();
    runner r = {.opts = opts};
    char err[512];
    int code = 1;
    http_server *admin = NULL;

    r.producer = kafka_producer_new(opts->name, opts->background_producer, err, sizeof err);
    if (!r.producer) {
        log_error("kafka producer: %s", err);
        return 1;
    }
    if (opts->setup && !(r.state = opts->setup(&r))) goto out;

    kafka_consumer_opts copts = {
        .group_id = opts->name,
        .client_id = opts->name,
        .topics = opts->topics,
        .handler = opts->handler,
        .handler_arg = r.state,
        .dlq = r.producer,
        .on_assign = opts->on_assign,
        .on_revoke = opts->on_revoke,
        .before_commit = opts->before_commit,
        .batch_begin = opts->batch_begin,
        .batch_commit = opts->batch_commit,
        .batch_rollback = opts->batch_rollback,
        .lanes = opts->lanes ? opts->lanes(r.state) : 0,
        .lane_arg = opts->lane_arg,
        .background = opts->background,
    };
    r.consumer = kafka_consumer_new(&copts, err, sizeof err);
    if (!r.consumer) {
        log_error("kafka consumer: %s", err);
        goto out;
    }
    http_server_opts hopts = {
        .port = admin_port,
        .threads = 1,
        .handler = no_routes,
        .ready = runner_ready,
        .app = &r,
    };
    admin = http_server_start(&hopts, err, sizeof err);
    if (!admin) {
        log_error("admin port: %s", err);
        goto out;
    }
    if (kafka_consumer_start(r.consumer) != 0) {
        log_error("cannot start the consumer thread");
        goto out;
    }
    log_info("%s started", opts->name);
    service_wait_for_stop();
    log_info("%s stopping", opts->name);
    /* A fatal Kafka error asked for this stop: exit 1 so a supervisor
     * restarts the service with a fresh producer. */
    code = kafka_fatal_error_seen() ? 1 : 0;
out:
    /* The admin port goes first: its /readyz reads the consumer. */
    http_server_stop(admin);
    kafka_consumer_free(r.consumer); /* stops, commits, closes */
    if (opts->teardown && r.state) opts->teardown(r.state);
    kafka_producer_free(r.producer); /* flushes */
    return code;
}
