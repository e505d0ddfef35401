/* mno-sandbox: a simulated operator backend for operator "tp" (Telenor
 * Pakistan, MCCMNC 41006, PKR). See README.md in this folder.
 *
 *   MILLOM_MNO_PORT      listen port (default 9090; 0 = any free port)
 *   MILLOM_MNO_THREADS   HTTP polling threads (default 2)
 *   MILLOM_MNO_DELAY_MS  initial delay before each backend answer (default 0)
 *   MILLOM_BIND          listen address (default 127.0.0.1)
 *   MILLOM_DATA_DIR      where mno-sandbox.db lives (default var/data)
 * Async activations (activation_worker.c):
 *   MILLOM_MNO_CALLBACK_DELAY_MS    PENDING -> completed (default 500)
 *   MILLOM_MNO_CALLBACK_URL         backend-style callback target without a
 *                                   callbackUrl (default http://127.0.0.1:8080/activationCallback/tp)
 *   MILLOM_MNO_MILLOM_URL           base of millom-style callbacks (default http://127.0.0.1:8080)
 *   MILLOM_MNO_CALLBACK_ATTEMPTS    POSTs per callback (default 5)
 *   MILLOM_MNO_CALLBACK_BACKOFF_MS  first retry delay, doubling (default 200)
 *   MILLOM_MNO_CALLBACK_TIMEOUT_MS  per POST (default 2000)
 * Callback authentication (callback_auth.c), for Millom's secure profile:
 *   MILLOM_MNO_OAUTH_CLIENT_SECRET  operator client's secret (unset: no token)
 *   MILLOM_MNO_OAUTH_CLIENT_ID      default: the tenants file's tp client, else tp-demo
 *   MILLOM_MNO_OAUTH_TOKEN_URL      default: <callback URL's origin>/oauth/v1/token
 *   MILLOM_MNO_OAUTH_SCOPE          default cco.dd.data-plan.inquire */
#include "mno_sandbox.h"

#include "shared/plumbing/settings.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/http_client.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

#include <stdio.h>
#include <time.h>

static int ready(void *ctx) {
    mno_app *app = ctx;
    return app->store != NULL;
}

int main(void) {
    service_init("mno-sandbox");
    /* The settings, once, through shared/plumbing/settings.h: a bad value exits 1
     * with a message naming the variable and its range. */
    settings_reader s = SETTINGS_INIT;
    long port = settings_long(&s, "MILLOM_MNO_PORT", 9090, 0, 65535);
    long threads = settings_long(&s, "MILLOM_MNO_THREADS", 2, 1, 256);
    long delay = settings_ms(&s, "MILLOM_MNO_DELAY_MS", 0, 0, 600000);
    settings_exit_on_error(&s);
    mno_callback_cfg callbacks;
    mno_callback_cfg_from_env(&callbacks);
    http_client_global_init();

    char err[256];
    mno_app app = {0};
    /* One reader per polling thread, plus spares for other callers. */
    app.store = mno_store_open((size_t)threads + 2, err, sizeof err);
    if (!app.store) {
        log_error("cannot open the store: %s", err);
        return 1;
    }
    mno_behaviour_cfg initial = {.delay_ms = delay};
    app.behaviour = mno_behaviour_new(&initial);
    if (!app.behaviour) {
        mno_store_close(app.store);
        return 1;
    }
    app.activations = mno_activations_new(app.store, &callbacks);
    if (!app.activations) {
        mno_behaviour_free(app.behaviour);
        mno_store_close(app.store);
        return 1;
    }

    http_server_opts opts = {
        .port = (int)port,
        .threads = (int)threads,
        .handler = mno_handle,
        .ready = ready,
        .app = &app,
    };
    http_server *server = http_server_start(&opts, err, sizeof err);
    if (!server) {
        log_error("cannot start the HTTP server: %s", err);
        mno_activations_free(app.activations);
        mno_behaviour_free(app.behaviour);
        mno_store_close(app.store);
        return 1;
    }
    log_info("mno-sandbox (operator %s) listening on port %d, %ld threads, delay %ld ms;"
             " async activations complete after %ld ms, callbacks to %s (millom style: %s)",
             MNO_OPERATOR, http_server_port(server), threads, delay, callbacks.delay_ms,
             callbacks.callback_url, callbacks.millom_url);
    if (callbacks.auth.client_secret[0])
        log_info("callbacks carry OAuth 2.0 bearer tokens of client %s (token URL %s)",
                 callbacks.auth.client_id,
                 callbacks.auth.token_url[0] ? callbacks.auth.token_url
                                             : "<callback origin>/oauth/v1/token");
    else
        log_info("callbacks go without a token (MILLOM_MNO_OAUTH_CLIENT_SECRET is not set)");

    service_wait_for_stop();
    log_info("stopping");
    /* Answer delayed and hung requests first: http_server_stop needs that. */
    if (mno_behaviour_shutdown(app.behaviour) > 0) {
        /* http_server_stop does not wait for resumed connections to write
         * their answers; give them a moment. */
        struct timespec grace = {0, 200 * 1000 * 1000};
        nanosleep(&grace, NULL);
    }
    http_server_stop(server);
    mno_activations_free(app.activations);
    mno_behaviour_free(app.behaviour);
    mno_store_close(app.store);
    log_info("stopped");
    return 0;
}
