/* Admin endpoints for tests, on the same port as the backend API:
 *
 *   POST /admin/behaviour {"delayMs": N, "failStatus": S, "failErrorType": T, "hang": B}
 *        Replaces the behaviour of every later backend call; absent fields
 *        mean normal (so {} is the same as no delay, no failure, no hang).
 *        delayMs 0..600000; failStatus 0 (none) or 400..599, answered with
 *        {"errorType": T} (T defaults from the status: 503 CONGESTED, 504
 *        TIMEOUT, 500 INTERNAL_ERROR, ...); hang true holds answers until
 *        hang is lifted. Answers the new behaviour.
 *   GET  /admin/behaviour   the current behaviour.
 *   POST /admin/reset       back to the start-up behaviour (MILLOM_MNO_DELAY_MS),
 *                           counters to zero, hung requests answered.
 *   GET  /admin/stats       {"balance": n, "offers": n, "pending": n}: backend
 *                           calls received since start or reset, and answers
 *                           now waiting for a delay or a hang.
 * These answer at once, whatever the behaviour. */
#include "mno_sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const error_types[] = {
    "TIMEOUT", "PARSING_ERROR", "INTERNAL_ERROR", "UNKNOWN_SUBSCRIBER_ID", "INVALID_PRODUCT",
    "USER_BARRED", "CONGESTED", "PURCHASE_IN_PROGRESS", "PURCHASE_ALREADY_EXECUTED",
    "NOT_IMPLEMENTED", "INSUFFICIENT_FUNDS", "BAD_REQUEST", "CONFLICT", "FORBIDDEN",
    "INVALID_TRANSID",
};

static void respond_json(http_request *req, int status, json_t *body) {
    size_t len;
    char *text = mno_json_text(body, &len);
    json_decref(body);
    if (!text) {
        mno_respond_error(req, 500, "INTERNAL_ERROR", "cannot serialize the answer");
        return;
    }
    http_respond(req, status, "application/json", text, len);
    free(text);
}

static json_t *behaviour_json(const mno_behaviour_cfg *c) {
    json_t *o = json_object();
    json_object_set_new(o, "delayMs", json_integer(c->delay_ms));
    json_object_set_new(o, "failStatus", json_integer(c->fail_status));
    if (c->fail_status) json_object_set_new(o, "failErrorType", json_string(mno_behaviour_error_type(c)));
    json_object_set_new(o, "hang", json_boolean(c->hang));
    return o;
}

/* Validates the body field by field; -1 with a message naming the field. */
static int parse_behaviour(const char *body, size_t len, mno_behaviour_cfg *out, char *msg,
                           size_t msglen) {
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", len, 0, &jerr);
    if (!j || !json_is_object(j)) {
        snprintf(msg, msglen, "body must be a JSON object%s%.80s", j ? "" : ": ", j ? "" : jerr.text);
        json_decref(j);
        return -1;
    }
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(j, key, v) {
        if (strcmp(key, "delayMs") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 600000) {
                snprintf(msg, msglen, "delayMs must be an integer from 0 to 600000");
                rc = -1;
                break;
            }
            out->delay_ms = (long)json_integer_value(v);
        } else if (strcmp(key, "failStatus") == 0) {
            json_int_t s = json_is_integer(v) ? json_integer_value(v) : -1;
            if (s != 0 && (s < 400 || s > 599)) {
                snprintf(msg, msglen, "failStatus must be 0 or an integer from 400 to 599");
                rc = -1;
                break;
            }
            out->fail_status = (int)s;
        } else if (strcmp(key, "failErrorType") == 0) {
            const char *t = json_string_value(v);
            bool known = false;
            for (size_t i = 0; t && i < sizeof error_types / sizeof *error_types; i++)
                known = known || strcmp(t, error_types[i]) == 0;
            if (!known) {
                snprintf(msg, msglen, "failErrorType must be an errorType of the backend API, e.g. CONGESTED");
                rc = -1;
                break;
            }
            snprintf(out->fail_error_type, sizeof out->fail_error_type, "%s", t);
        } else if (strcmp(key, "hang") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(msg, msglen, "hang must be true or false");
                rc = -1;
                break;
            }
            out->hang = json_is_true(v);
        } else {
            snprintf(msg, msglen, "unknown field %.40s (delayMs, failStatus, failErrorType, hang)", key);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && out->fail_error_type[0] && !out->fail_status) {
        snprintf(msg, msglen, "failErrorType needs failStatus");
        rc = -1;
    }
    json_decref(j);
    return rc;
}

void mno_route_admin(mno_app *app, http_request *req, const char *sub) {
    const char *method = http_method(req);
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    mno_behaviour_cfg cfg;

    if (strcmp(sub, "behaviour") == 0) {
        if (post) {
            size_t len;
            const char *body = http_body(req, &len);
            char msg[160];
            if (parse_behaviour(body, len, &cfg, msg, sizeof msg) != 0) {
                mno_respond_error(req, 400, "BAD_REQUEST", msg);
                return;
            }
            mno_behaviour_set(app->behaviour, &cfg);
        } else if (!get) {
            mno_method_not_allowed(req, "GET, POST");
            return;
        }
        mno_behaviour_get(app->behaviour, &cfg);
        respond_json(req, 200, behaviour_json(&cfg));
    } else if (strcmp(sub, "reset") == 0) {
        if (!post) {
            mno_method_not_allowed(req, "POST");
            return;
        }
        mno_behaviour_reset(app->behaviour);
        mno_behaviour_get(app->behaviour, &cfg);
        respond_json(req, 200, behaviour_json(&cfg));
    } else if (strcmp(sub, "stats") == 0) {
        if (!get) {
            mno_method_not_allowed(req, "GET");
            return;
        }
        json_t *o = json_object();
        json_object_set_new(o, "balance", json_integer(mno_behaviour_calls(app->behaviour, MNO_CALL_BALANCE)));
        json_object_set_new(o, "offers", json_integer(mno_behaviour_calls(app->behaviour, MNO_CALL_OFFERS)));
        json_object_set_new(o, "pending", json_integer(mno_behaviour_pending(app->behaviour)));
        respond_json(req, 200, o);
    } else {
        mno_respond_error(req, 404, "BAD_REQUEST", "no such admin path");
    }
}
