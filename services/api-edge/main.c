/* api-edge: the HTTP front door. It validates requests, puts them on Kafka
 * and answers from the replies, holding no thread per waiting request.
 *
 * Settings: MILLOM_EDGE_PORT (8080), MILLOM_EDGE_THREADS (2),
 * MILLOM_REPLY_PARTITION (0; distinct per instance),
 * MILLOM_QUERY_DEADLINE_MS (3000), MILLOM_PURCHASE_DEADLINE_MS (8000),
 * MILLOM_TENANTS (reloaded at SIGHUP and, with MILLOM_TENANTS_WATCH=1, the
 * default, when the file changes: tenants_reload.h), KAFKA_BOOTSTRAP;
 * auth: MILLOM_AUTH_DISABLED (1), MILLOM_JWT_KEY,
 * MILLOM_TOKEN_TTL_S (300), MILLOM_TOKEN_* (token endpoint limits, token_limits.h);
 * MILLOM_ALLOWED_HOSTS (localhost,127.0.0.1,[::1]: the
 * Host names answered, request_http.h); MILLOM_TLS_CERT and MILLOM_TLS_KEY
 * (PEM files: HTTPS instead of HTTP on MILLOM_EDGE_PORT,
 * shared/plumbing/http_tls.h); MILLOM_OPENAPI_FILE
 * (schemas/openapi/millom-extensions.yaml, served at
 * GET /openapi/millom-extensions.yaml: routes_openapi.c). */
#include "edge.h"
#include "rnf_limits.h"
#include "auth.h"
#include "request_http.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/http_client.h"
#include "shared/contracts/keys.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"

#include <time.h>

/* api-edge's own settings, read once at the start. */
typedef struct {
    int port, threads;
    int32_t reply_partition;
    bool tenants_watch; /* MILLOM_TENANTS_WATCH */
} edge_settings;

/* Everything api-edge reads from the environment besides what the shared
 * modules read at their own start; a bad value exits 1 naming it. */
static void read_settings(api_edge *e, edge_settings *cfg) {
    settings_reader s = SETTINGS_INIT;
    e->query_deadline_ms = (int)settings_ms(&s, "MILLOM_QUERY_DEADLINE_MS", 3000, 1, 600000);
    e->purchase_deadline_ms = (int)settings_ms(&s, "MILLOM_PURCHASE_DEADLINE_MS", 8000, 1, 600000);
    e->allowed_hosts = settings_str(&s, "MILLOM_ALLOWED_HOSTS", EDGE_DEFAULT_ALLOWED_HOSTS);
    e->openapi_path =
        settings_str(&s, "MILLOM_OPENAPI_FILE", "schemas/openapi/millom-extensions.yaml");
    e->bulk_max_items = settings_long(&s, "MILLOM_NOTIFY_BULK_MAX_ITEMS", 10000, 1, 100000);
    e->bulk_max_body =
        settings_long(&s, "MILLOM_NOTIFY_BULK_MAX_BODY", 4L * 1024 * 1024, 1024, 1L << 30);
    e->bulk_deadline_ms = (int)settings_ms(&s, "MILLOM_NOTIFY_BULK_DEADLINE_MS", 30000, 1, 600000);
    cfg->reply_partition = (int32_t)settings_long(&s, "MILLOM_REPLY_PARTITION", 0, 0, 100000);
    cfg->port = (int)settings_long(&s, "MILLOM_EDGE_PORT", 8080, 0, 65535);
    cfg->threads = (int)settings_long(&s, "MILLOM_EDGE_THREADS", 2, 1, 1024);
    cfg->tenants_watch = settings_bool(&s, "MILLOM_TENANTS_WATCH", true);
    settings_exit_on_error(&s);
    kafka_settings_load();        /* the shared modules' settings too, before */
    http_server_settings_check(); /* connecting anywhere */
}

static int edge_ready(void *app) {
    api_edge *e = app;
    return e->rpc && rpc_client_ready(e->rpc) && kafka_healthy() && store_ready();
}

int main(void) {
    service_init("api-edge");
    char err[512];
    api_edge e = {0};
    edge_settings cfg;
    read_settings(&e, &cfg);
    http_tls tls;
    if (http_tls_from_env(&tls, err, sizeof err) != 0) { /* a bad file: exit 1, named */
        log_error("%s", err);
        return 1;
    }
    if (keys_init() != 0) return 1; /* shared/contracts/keys.h: no guessed key, ever */
    rnf_limits_init();              /* the signed links' limits (rnf_limits.h) */
    edge_topup_init();              /* the donor's link and amounts (routes_topup.c) */
    cpid_config_default();          /* reads MILLOM_CPID_TTL_S now, not at a request */
    http_server *server = NULL;
    tenants_reloader *reloader = NULL;
    int code = 1;

    const char *tenants_path = tenants_default_path();
    edge_config *first = edge_config_load(tenants_path, err, sizeof err);
    if (!first) {
        log_error("tenants: %s", err);
        http_tls_clear(&tls);
        return 1;
    }
    size_t n_clients = first->clients.n;
    e.config = snapshot_cell_new(first, edge_config_free);
    if (!e.config) {
        log_error("tenants: out of memory");
        edge_config_free(first);
        http_tls_clear(&tls);
        return 1;
    }
    e.auth = edge_auth_new(err, sizeof err);
    if (!e.auth) {
        log_error("auth: %s", err);
        snapshot_cell_free(e.config);
        http_tls_clear(&tls);
        return 1;
    }
    edge_openapi_load(&e, e.openapi_path); /* a file missing is logged, then 404 */
    /* Before the listener: SIGHUP is a reload from now on, not the end. */
    reloader = tenants_reloader_start(e.config, tenants_path, cfg.tenants_watch, err, sizeof err);
    if (!reloader) {
        log_error("tenants reload: %s", err);
        goto out;
    }
    edge_relay_metrics_init();
    e.producer = kafka_producer_new("api-edge", 0, err, sizeof err);
    if (!e.producer) {
        log_error("kafka producer: %s", err);
        goto out;
    }
    e.rpc = rpc_client_new(e.producer, cfg.reply_partition, err, sizeof err);
    if (!e.rpc || rpc_client_start(e.rpc) != 0) {
        log_error("reply reader: %s", e.rpc ? "cannot start" : err);
        goto out;
    }
    http_server_opts opts = {
        .port = cfg.port,
        .threads = cfg.threads,
        .handler = edge_route,
        .ready = edge_ready,
        .app = &e,
        .tls = &tls,
        .correlate = 1,   /* x-correlator: README "Request ids" */
        .defers_most = 1, /* reads and purchases wait for Kafka replies */
        .max_body_for = notify_bulk_max_body,
    };
    int https = tls.cert_pem != NULL;
    server = http_server_start(&opts, err, sizeof err);
    http_tls_clear(&tls); /* the server keeps its own copy */
    if (!server) {
        log_error("http: %s", err);
        goto out;
    }
    if (!e.auth->enabled)
        log_warn("SANDBOX PROFILE: authentication is DISABLED; every caller is trusted");
    else
        log_info("auth enabled: %zu OAuth clients, tokens for %lds", n_clients, e.auth->ttl_s);
    log_info("tenants from %s; reloaded at SIGHUP%s", tenants_path,
             cfg.tenants_watch ? " and when the file changes" : " (MILLOM_TENANTS_WATCH=0)");
    log_info("api-edge ready on port %d (%s)", http_server_port(server), https ? "HTTPS" : "HTTP");
    service_wait_for_stop();
    log_info("api-edge stopping");
    code = kafka_fatal_error_seen() ? 1 : 0; /* exit 1: be restarted */
out:
    http_tls_clear(&tls); /* an early way out */
    /* Answer every waiting request (503) before the server goes away;
     * requests still arriving get 503 from rpc_call_begin. The client is
     * freed only once no HTTP thread can reach it. */
    rpc_client_close(e.rpc);
    edge_auth_close(e.auth); /* token requests waiting for a secret check: 503 */
    if (server) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL); /* let resumed connections send their answer */
        http_server_stop(server);
    }
    tenants_reloader_stop(reloader); /* no reload while the rest goes */
    rpc_client_free(e.rpc);
    kafka_producer_free(e.producer);
    edge_auth_free(e.auth); /* its token checks' pins are gone */
    snapshot_cell_free(e.config);
    edge_openapi_free(&e);
    return code;
}
