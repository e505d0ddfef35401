/* Operators report the outcome of an asynchronous activation here, in
 * either of the two documented shapes:
 *   POST /activationCallback/{operator}          (backend-integration spec)
 *   POST /callback/v1/{operator}/?idValue&idType (millom-callback.yaml)
 * api-edge validates and publishes an ActivationCallback; purchase-executor
 * answers 200, 404 (unknown transaction, or not the subscriber idValue
 * names) or 409 (already completed). idValue is passed on as the
 * purchase store holds subscribers: an MSISDN normalized, a CPID decoded
 * to its MSISDN, an OPET as it is.
 * Errors use the operator APIs' own shape {errorType, message}. */
#include "edge.h"
#include "shared/plumbing/topics.h"
#include "request_purchase.h"
#include "shared/contracts/cpid.h"
#include "shared/contracts/msisdn.h"
#include "shared/plumbing/service.h"
#include "millom/v1/purchase.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void respond_operator_error(http_request *req, int status, const char *error_type,
                                   const char *message) {
    json_t *body = json_pack("{s:s, s:s}", "errorType", error_type, "message", message);
    if (status == 503) {
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        http_respond_with_header(req, 503, "application/json", text ? text : "{}",
                                 text ? strlen(text) : 2, "Retry-After", "1");
        free(text);
        return;
    }
    http_respond_json(req, status, body);
}

static void on_callback_reply(void *arg, const Millom__V1__Reply *reply) {
    http_request *req = arg;
    if (!reply) {
        /* Published but not yet confirmed: it will be applied; a retry by
         * the operator gets 200 or 409. */
        respond_operator_error(req, 503, "TIMEOUT", "callback queued but not yet confirmed");
        return;
    }
    edge_relay_reply(req, reply);
}

void routes_callbacks(api_edge *e, http_request *req, const edge_match *m) {
    int millom_style = m->route->action == CALLBACK_MILLOM;
    const tenant_operator *op = tenants_operator(edge_tenants(m), m->params.op);
    if (!op) {
        respond_operator_error(req, 404, "BAD_REQUEST", "unknown operator or path");
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    activation_callback cb;
    char msg[256];
    char subscriber[257] = "";
    const char *sub_type = NULL;
    int rc;
    if (millom_style) {
        const char *id_value = http_query(req, "idValue");
        const char *id_type = http_query(req, "idType");
        if (!id_value || !*id_value) {
            respond_operator_error(req, 400, "BAD_REQUEST", "idValue is required");
            return;
        }
        if (!id_type || (strcmp(id_type, "OPET") != 0 && strcmp(id_type, "MSISDN") != 0 &&
                         strcmp(id_type, "CPID") != 0)) {
            respond_operator_error(req, 400, "BAD_REQUEST",
                                   "idType must be one of OPET, MSISDN, CPID");
            return;
        }
        sub_type = id_type;
        if (strcmp(id_type, "MSISDN") == 0) {
            if (!msisdn_normalize(id_value, subscriber, sizeof subscriber))
                snprintf(subscriber, sizeof subscriber, "%.256s", id_value);
        } else if (strcmp(id_type, "CPID") == 0) {
            cpid_info info;
            cpid_status cs = cpid_decode(cpid_config_default(), id_value, now_ms(), &info);
            /* An expired CPID still names its subscriber (authenticated). */
            if (cs == CPID_OK || cs == CPID_EXPIRED) {
                snprintf(subscriber, sizeof subscriber, "%s", info.msisdn);
                sub_type = "MSISDN";
            } else {
                snprintf(subscriber, sizeof subscriber, "%.256s", id_value);
            }
        } else {
            snprintf(subscriber, sizeof subscriber, "%.256s", id_value);
        }
        rc = callback_millom_parse(body, len, &cb, msg, sizeof msg);
    } else {
        rc = callback_backend_parse(body, len, &cb, msg, sizeof msg);
    }
    if (rc != 0) {
        respond_operator_error(req, 400, "PARSING_ERROR", msg);
        return;
    }
    if (cb.dry_run) {
        http_respond_json(
            req, 200, json_pack("{s:s, s:s}", "status", "OK", "message", "dry run: not processed"));
        return;
    }
    Millom__V1__RequestMeta meta = MILLOM__V1__REQUEST_META__INIT;
    Millom__V1__ActivationCallback msg_cb = MILLOM__V1__ACTIVATION_CALLBACK__INIT;
    msg_cb.meta = &meta;
    msg_cb.operator_ = (char *)op->id;
    msg_cb.trans_id = cb.trans_id;
    msg_cb.ok = cb.ok;
    msg_cb.error_type = cb.error_type;
    msg_cb.message = cb.message;
    msg_cb.offer_id = cb.offer_id;
    msg_cb.service_provider = cb.service_provider;
    msg_cb.received_at_ms = now_ms();
    msg_cb.id_value = subscriber;
    msg_cb.id_type = (char *)(sub_type ? sub_type : "");
    msg_cb.error_code = cb.error_code;
    msg_cb.redirect_link = cb.redirect_link;
    edge_send_request(e, req, TOPIC_ACTIVATION_CALLBACKS, cb.trans_id, e->query_deadline_ms,
                      &edge_callback_codec, &msg_cb, &meta, on_callback_reply, req);
}
