/* HTTP glue for the top-up extension (store_topup.c). Not in the
 * backend-integration spec, which has neither a message nor a credit call;
 * documented in the README's "Top-up" section:
 *
 *   POST /messages {"to": "9245...", "channel": "SMS"|"USSD", "text": "...",
 *                   "reference": "..."}
 *        Sends (here: records) a message to a subscriber. 202
 *        {"messageId": n}; a reference already seen is the same message.
 *   POST /topup/{customerId} {"transId": "...", "amountMinor": n}
 *        Credits the subscriber's airtime balance, once per transId. 200
 *        {"transId", "customerId", "creditedMinor", "balance"}; 404/403 as
 *        for /balance; 409 CONFLICT for a transId used otherwise.
 *   GET  /admin/messages[?to=9245...]
 *        {"messages": [...], "count": n}: what was asked to be sent. */
#include "mno_sandbox.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/json_body.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void respond_reply(http_request *req, mno_reply r) {
    size_t len;
    char *text = mno_json_text(r.body, &len);
    json_decref(r.body);
    if (!text) {
        mno_respond_error(req, 500, "INTERNAL_ERROR", "cannot serialize the answer");
        return;
    }
    http_respond(req, r.status, "application/json", text, len);
    free(text);
}

/* 5 to 20 digits after an optional '+'. */
static const char *msisdn_digits(const char *s) {
    if (!s) return NULL;
    if (*s == '+') s++;
    size_t n = strlen(s);
    if (n < 5 || n > 20) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return NULL;
    return s;
}

/* A string field of o, 1..max bytes; NULL (with msg) when present and
 * bad or, if required, absent (*bad set). */
static const char *field_text(json_t *o, const char *name, size_t max, int required, int *bad,
                              char *msg, size_t msglen) {
    json_t *v = json_object_get(o, name);
    if (!v && !required) return NULL;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
        snprintf(msg, msglen, "%s must be a string of 1 to %zu characters", name, max);
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

void mno_route_messages(mno_app *app, http_request *req) {
    if (strcmp(http_method(req), "POST") != 0) {
        mno_method_not_allowed(req, "POST");
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    char msg[160];
    json_t *o = json_body_object(body, len, msg, sizeof msg);
    if (!o) {
        mno_respond_error(req, 400, "PARSING_ERROR", msg);
        return;
    }
    int bad = 0;
    const char *to = field_text(o, "to", 21, 1, &bad, msg, sizeof msg);
    const char *channel = bad ? NULL : field_text(o, "channel", 8, 0, &bad, msg, sizeof msg);
    const char *text = bad ? NULL : field_text(o, "text", 1000, 1, &bad, msg, sizeof msg);
    const char *ref = bad ? NULL : field_text(o, "reference", 128, 0, &bad, msg, sizeof msg);
    if (!bad && !msisdn_digits(to)) {
        snprintf(msg, sizeof msg, "to must be an MSISDN (5 to 20 digits)");
        bad = 1;
    }
    if (!bad && channel && strcmp(channel, "SMS") != 0 && strcmp(channel, "USSD") != 0) {
        snprintf(msg, sizeof msg, "channel must be SMS or USSD");
        bad = 1;
    }
    int64_t id = 0;
    if (bad) {
        mno_respond_error(req, 400, "BAD_REQUEST", msg);
    } else if (mno_message_record(app->store, msisdn_digits(to), channel ? channel : "SMS", text,
                                  ref, now_ms(), &id) != 0) {
        mno_respond_error(req, 500, "INTERNAL_ERROR", "the message could not be stored");
    } else {
        respond_reply(req, (mno_reply){202, json_pack("{s:I}", "messageId", (json_int_t)id)});
    }
    json_decref(o);
}

void mno_route_credit(mno_app *app, http_request *req, const char *customer_id) {
    if (strcmp(http_method(req), "POST") != 0) {
        mno_method_not_allowed(req, "POST");
        return;
    }
    const char *msisdn = msisdn_digits(customer_id);
    if (!msisdn) {
        mno_respond_error(req, 404, "BAD_REQUEST", "no such path");
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    char msg[160];
    json_t *o = json_body_object(body, len, msg, sizeof msg);
    if (!o) {
        mno_respond_error(req, 400, "PARSING_ERROR", msg);
        return;
    }
    int bad = 0;
    const char *trans_id = field_text(o, "transId", 128, 1, &bad, msg, sizeof msg);
    json_t *amount = json_object_get(o, "amountMinor");
    if (!bad && (!json_is_integer(amount) || json_integer_value(amount) < 1 ||
                 json_integer_value(amount) > 1000000000)) {
        snprintf(msg, sizeof msg, "amountMinor must be an integer from 1 to 1000000000");
        bad = 1;
    }
    if (bad)
        mno_respond_error(req, 400, "BAD_REQUEST", msg);
    else
        respond_reply(
            req, mno_credit(app->store, msisdn, trans_id, json_integer_value(amount), now_ms()));
    json_decref(o);
}

void mno_route_admin_messages(mno_app *app, http_request *req) {
    if (strcmp(http_method(req), "GET") != 0) {
        mno_method_not_allowed(req, "GET");
        return;
    }
    const char *to = http_query(req, "to");
    if (to && *to == '+') to++;
    json_t *o = mno_messages_json(app->store, to && *to ? to : NULL);
    if (!o) {
        mno_respond_error(req, 500, "INTERNAL_ERROR", "messages listing failed");
        return;
    }
    respond_reply(req, (mno_reply){200, o});
}
