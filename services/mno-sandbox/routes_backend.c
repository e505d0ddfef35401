/* HTTP glue for the backend API: GET /balance/{customerId} and
 * GET /offers/{customerId}. The answer is computed at once (read-only
 * SQLite look-ups) and handed to behaviour.c, which sends it now, later
 * or, when the backend is set to hang, not until the hang is lifted. A
 * simulated failure (failStatus) replaces the answer, whatever the request.
 * Every call that reaches these routes is counted for GET /admin/stats. */
#include "mno_sandbox.h"

#include "shared/metrics.h"
#include "shared/service.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static metric *calls_metric[2];
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void metrics_register(void) {
    calls_metric[MNO_CALL_BALANCE] = metric_counter(
        "mno_sandbox_backend_calls_total", "Backend API calls received", "route=\"balance\"");
    calls_metric[MNO_CALL_OFFERS] = metric_counter(
        "mno_sandbox_backend_calls_total", "Backend API calls received", "route=\"offers\"");
}

void mno_respond_error(http_request *req, int status, const char *error_type,
                       const char *message) {
    json_t *body = mno_error_json(error_type, message);
    size_t len;
    char *text = mno_json_text(body, &len);
    json_decref(body);
    if (text) {
        http_respond(req, status, "application/json", text, len);
        free(text);
    } else {
        http_respond(req, 500, "application/json", "{\"errorType\":\"INTERNAL_ERROR\"}", 30);
    }
}

static const char *query_param(void *ctx, const char *name) { return http_query(ctx, name); }

void mno_route_backend(mno_app *app, http_request *req, mno_call call, const char *customer_id) {
    pthread_once(&metrics_once, metrics_register);
    metric_add(calls_metric[call], 1);
    mno_behaviour_count(app->behaviour, call);

    mno_behaviour_cfg cfg;
    mno_behaviour_get(app->behaviour, &cfg);
    mno_reply reply;
    if (cfg.fail_status) {
        reply.status = cfg.fail_status;
        reply.body = mno_error_json(mno_behaviour_error_type(&cfg),
                                    "simulated failure (POST /admin/reset clears it)");
    } else {
        mno_request rq;
        char msg[160];
        if (mno_parse_request(call, customer_id, query_param, req, &rq, msg, sizeof msg) != 0) {
            reply.status = 400;
            reply.body = mno_error_json("BAD_REQUEST", msg);
        } else if (call == MNO_CALL_BALANCE) {
            reply = mno_balance(app->store, &rq, now_ms());
        } else {
            reply = mno_offers(app->store, &rq, now_ms());
        }
    }
    size_t len;
    char *text = mno_json_text(reply.body, &len);
    json_decref(reply.body);
    if (!text) {
        mno_respond_error(req, 500, "INTERNAL_ERROR", "cannot serialize the answer");
        return;
    }
    mno_behaviour_answer(app->behaviour, &cfg, req, reply.status, text, len);
}
