/* sp-sandbox: a simulated service provider that receives rich
 * notifications and purchase callbacks. See README.md in this folder.
 *
 *   MILLOM_SP_PORT      listen port (default 9091; 0 = any free port)
 *   MILLOM_SP_THREADS   HTTP polling threads (default 2)
 *   MILLOM_BIND         listen address (default 127.0.0.1)
 *   MILLOM_DATA_DIR     where sp-sandbox.db lives (default var/data)
 *   MILLOM_SP_WEBHOOK_SECRETS      one or two whsec_ secrets: webhooks must
 *                                  carry a Standard Webhooks signature by one
 *   MILLOM_SP_OAUTH_CLIENT_SECRET  set: POST /oauth/token issues tokens to
 *                                  MILLOM_SP_OAUTH_CLIENT_ID (default
 *                                  "millom"), and webhooks must carry one */
#include "sp_sandbox.h"

#include "shared/plumbing/settings.h"
#include "shared/contracts/config.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

#include <openssl/crypto.h>
#include <time.h>

static int ready(void *ctx) {
    sp_app *app = ctx;
    return app->store != NULL;
}

int main(void) {
    service_init("sp-sandbox");
    settings_reader s = SETTINGS_INIT; /* shared/plumbing/settings.h; a bad value exits 1 */
    long port = settings_long(&s, "MILLOM_SP_PORT", 9091, 0, 65535);
    long threads = settings_long(&s, "MILLOM_SP_THREADS", 2, 1, 256);
    sp_auth_cfg auth_cfg;
    sp_auth_cfg_from_env(&s, &auth_cfg);
    settings_exit_on_error(&s);

    char err[256];
    sp_app app = {0};
    app.auth = sp_auth_new(&auth_cfg);
    OPENSSL_cleanse(&auth_cfg, sizeof auth_cfg);
    if (!app.auth) return 1;
    app.store = sp_store_open(err, sizeof err);
    if (!app.store) {
        log_error("cannot open the store: %s", err);
        sp_auth_free(app.auth);
        return 1;
    }
    app.behaviour = sp_behaviour_new();
    if (!app.behaviour) {
        sp_store_close(app.store);
        sp_auth_free(app.auth);
        return 1;
    }

    http_server_opts opts = {
        .port = (int)port,
        .threads = (int)threads,
        .handler = sp_handle,
        .ready = ready,
        .app = &app,
    };
    http_server *server = http_server_start(&opts, err, sizeof err);
    if (!server) {
        log_error("cannot start the HTTP server: %s", err);
        sp_behaviour_free(app.behaviour);
        sp_store_close(app.store);
        sp_auth_free(app.auth);
        return 1;
    }
    log_info("sp-sandbox listening on port %d, %ld threads: POST /notifications, POST /callbacks",
             http_server_port(server), threads);
    log_info("webhooks: signatures %s (%zu secret(s)), bearer tokens %s",
             sp_auth_keys(app.auth) ? "checked" : "not checked", sp_auth_keys(app.auth),
             sp_auth_checks_tokens(app.auth) ? "checked (POST /oauth/token issues them)"
                                             : "not checked");

    service_wait_for_stop();
    log_info("stopping");
    /* Answer delayed and hung requests first: http_server_stop needs that. */
    if (sp_behaviour_shutdown(app.behaviour) > 0) {
        /* http_server_stop does not wait for resumed connections to write
         * their answers; give them a moment. */
        struct timespec grace = {0, 200 * 1000 * 1000};
        nanosleep(&grace, NULL);
    }
    http_server_stop(server);
    sp_behaviour_free(app.behaviour);
    sp_store_close(app.store);
    sp_auth_free(app.auth);
    log_info("stopped");
    return 0;
}
