/* POST /notifications (rich notifications) and POST /callbacks (purchase
 * callbacks). First the provider's checks (provider_auth.c): a bearer
 * token and a signature when configured, else 401 at once (no simulated
 * behaviour applies: a refused request never reached the "application").
 * Then the body must be a JSON object, else 400. Every request is recorded
 * with the answer it got, a refused one with the reason, before the answer
 * goes out (now, or later when a delay or hang is set). */
#include "sp_sandbox.h"

#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static metric *received[2][2]; /* [kind][answered 2xx] */
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void register_metrics(void) {
    for (int k = 0; k < 2; k++)
        for (int ok = 0; ok < 2; ok++) {
            char labels[64];
            snprintf(labels, sizeof labels, "kind=\"%s\",answer=\"%s\"", sp_kind_name((sp_kind)k),
                     ok ? "ok" : "error");
            received[k][ok] = metric_counter("sp_sandbox_received_total",
                                             "Requests received by the simulated provider", labels);
        }
}

static void count(sp_kind kind, int status) {
    pthread_once(&metrics_once, register_metrics);
    metric_add(received[kind][status >= 200 && status < 300], 1);
}

static char *dump(json_t *o, size_t *len) {
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    *len = text ? strlen(text) : 0;
    return text;
}

static char *error_body(const char *message, size_t *len) {
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(message));
    return dump(o, len);
}

void sp_route_receive(sp_app *app, http_request *req, sp_kind kind) {
    if (strcmp(http_method(req), "POST") != 0) {
        sp_method_not_allowed(req, "POST");
        return;
    }
    size_t len = 0;
    const char *body = http_body(req, &len);
    sp_auth_request ar = {
        .authorization = http_header(req, "Authorization"),
        .webhook_id = http_header(req, "webhook-id"),
        .webhook_timestamp = http_header(req, "webhook-timestamp"),
        .webhook_signature = http_header(req, "webhook-signature"),
        .body = body,
        .body_len = len,
    };
    sp_auth_verdict verdict;
    sp_auth_check(app->auth, &ar, now_ms(), &verdict);
    int configured = sp_auth_checks_tokens(app->auth) || sp_auth_keys(app->auth);

    char error[200] = "";
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", len, 0, &jerr);
    if (!verdict.ok)
        snprintf(error, sizeof error, "%s", verdict.error);
    else if (!j)
        snprintf(error, sizeof error, "body is not JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
    else if (!json_is_object(j))
        snprintf(error, sizeof error, "body must be a JSON object");

    sp_behaviour_cfg applied = {0};
    int status =
        !verdict.ok ? 401 : sp_behaviour_decide(app->behaviour, error[0] ? 400 : 200, &applied);
    sp_received r = {
        .kind = kind,
        .received_at_ms = now_ms(),
        .content_type = http_header(req, "Content-Type"),
        .has_authorization = http_header(req, "Authorization") != NULL,
        .body = body,
        .body_len = len,
        .error = error[0] ? error : NULL,
        .transaction_id = json_string_value(json_object_get(j, "transactionId")),
        .status = status,
        .delivery_id = http_header(req, "X-Millom-Delivery-Id"),
        .correlator = http_header(req, "x-correlator"),
        .webhook_id = ar.webhook_id,
        .webhook_timestamp = ar.webhook_timestamp,
        .webhook_signature = ar.webhook_signature,
        .verified = configured ? verdict.checked : NULL,
    };
    int64_t id = sp_store_record(app->store, &r);
    json_decref(j);
    if (id < 0) {
        sp_respond_error(req, 500, "cannot record the request");
        return;
    }
    count(kind, status);

    if (!verdict.ok) {
        json_t *o = json_object();
        json_object_set_new(o, "error", json_string(verdict.error));
        char *text = dump(o, &len);
        if (!text) {
            sp_respond_error(req, 500, "cannot serialize the answer");
            return;
        }
        /* RFC 6750 §3: the error code only when a token came */
        if (verdict.token_refused)
            http_respond_with_header(req, 401, "application/json", text, len, "WWW-Authenticate",
                                     verdict.token_refused == 1
                                         ? "Bearer realm=\"sp-sandbox\""
                                         : "Bearer realm=\"sp-sandbox\", error=\"invalid_token\"");
        else
            http_respond(req, 401, "application/json", text, len);
        free(text);
        return;
    }
    size_t out_len;
    char *out;
    if (status >= 200 && status < 300) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(id));
        json_object_set_new(o, "kind", json_string(sp_kind_name(kind)));
        out = dump(o, &out_len);
    } else {
        out = error_body(status == 400 && error[0] ? error : "simulated failure", &out_len);
    }
    if (!out) {
        sp_respond_error(req, 500, "cannot serialize the answer");
        return;
    }
    sp_behaviour_answer(app->behaviour, &applied, req, status, out, out_len);
}
