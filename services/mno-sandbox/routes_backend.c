/* HTTP glue for the backend API: GET /balance/{customerId},
 * GET /offers/{customerId} and POST /activate/{customerId}. The answer is
 * computed at once (SQLite look-ups; for /activate the whole activation,
 * committed) and handed to behaviour.c, which sends it now, later or, when
 * the backend is set to hang, not until the hang is lifted: a slow or hung
 * /activate has still happened, as when a real backend's answer is lost,
 * and a retry with the same transId gets the stored outcome. A simulated
 * failure (failStatus) replaces the answer, whatever the request, and
 * activates nothing. Every call that reaches these routes is counted for
 * GET /admin/stats. */
#include "mno_sandbox.h"

#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static metric *calls_metric[MNO_CALL_COUNT];
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void metrics_register(void) {
    calls_metric[MNO_CALL_BALANCE] = metric_counter(
        "mno_sandbox_backend_calls_total", "Backend API calls received", "route=\"balance\"");
    calls_metric[MNO_CALL_OFFERS] = metric_counter(
        "mno_sandbox_backend_calls_total", "Backend API calls received", "route=\"offers\"");
    calls_metric[MNO_CALL_ACTIVATE] = metric_counter(
        "mno_sandbox_backend_calls_total", "Backend API calls received", "route=\"activate\"");
}

void mno_respond_error(http_request *req, int status, const char *error_type, const char *message) {
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

static mno_reply activate(mno_app *app, http_request *req, const mno_behaviour_cfg *cfg,
                          const char *customer_id) {
    mno_activate_request rq;
    const char *error_type;
    char msg[160];
    size_t len;
    const char *body = http_body(req, &len);
    if (mno_parse_activate(customer_id, query_param, req, body, len, &rq, &error_type, msg,
                           sizeof msg) != 0)
        return (mno_reply){400, mno_error_json(error_type, msg)};
    bool pending = false;
    mno_reply reply = mno_activate(app->store, &rq, cfg->repeat_answer, now_ms(), &pending);
    if (pending && app->activations)
        mno_activations_schedule(app->activations, rq.trans_id,
                                 cfg->callback_delay_set ? cfg->callback_delay_ms : -1,
                                 cfg->callback_style, cfg->callback_fail);
    return reply;
}

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
        if (call == MNO_CALL_ACTIVATE) {
            reply = activate(app, req, &cfg, customer_id);
        } else if (mno_parse_request(call, customer_id, query_param, req, &rq, msg, sizeof msg) !=
                   0) {
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
