/* Admin endpoints for tests, on the same port as the backend API:
 *
 *   POST /admin/behaviour {"delayMs": N, "failStatus": S, "failErrorType": T, "hang": B,
 *                          "repeatAnswer": R, "callbackDelayMs": D,
 *                          "callbackStyle": C, "callbackFail": F}
 *        Replaces the behaviour of every later backend call; absent fields
 *        mean normal (so {} is the same as no delay, no failure, no hang).
 *        delayMs 0..600000; failStatus 0 (none) or 400..599, answered with
 *        {"errorType": T} (T defaults from the status: 503 CONGESTED, 504
 *        TIMEOUT, 500 INTERNAL_ERROR, ...); hang true holds answers until
 *        hang is lifted. Activations: repeatAnswer "ORIGINAL" (default) or
 *        "ALREADY_EXECUTED"; callbackDelayMs 0..600000 (default
 *        MILLOM_MNO_CALLBACK_DELAY_MS); callbackStyle "backend" (default) or
 *        "millom"; callbackFail true makes async completions FAIL. Answers
 *        the new behaviour.
 *   GET  /admin/behaviour   the current behaviour.
 *   POST /admin/reset       back to the start-up behaviour (MILLOM_MNO_DELAY_MS),
 *                           counters to zero, hung requests answered. Keeps
 *                           activations, balances and plans.
 *   POST /admin/reseed      seeded subscribers, balances, plans and offers
 *                           restored, every activation deleted, queued
 *                           completions and callbacks dropped.
 *   GET  /admin/stats       {"balance": n, "offers": n, "activate": n,
 *                           "pending": n, "asyncQueued": n}: backend calls
 *                           received since start or reset, answers now
 *                           waiting for a delay or a hang, and async
 *                           completions and callback deliveries queued.
 *   GET  /admin/activations[?transId=X]
 *                           {"activations": [...], "count": n}
 *   POST /admin/subscribers {"msisdn": "9245...", "opet": O, "subscriptionType": T,
 *                            "pricePlan": P, "balanceMinor": B, "loanMinor": L,
 *                            "ewalletMinor": E,
 *                            "subscriberState": S, "status": A, "offers": [ids]}
 *        Adds a subscriber, or replaces the fields of an existing one (its
 *        plans and activations stay); the seed data's columns, money in PKR
 *        minor units. Only msisdn (5 to 20 digits) is required; defaults:
 *        no OPET, PREPAID, "djuice", 0, 0, 0, GOOD_TO_GO, ACTIVE, and offers
 *        (ids from the catalogue, in ranking order) none for a new
 *        subscriber, unchanged for an existing one. 201 {"msisdn", "created":
 *        true} or 200 with "created": false; 400 naming a bad field. Lets a
 *        bench or a test work with many subscribers. Not kept by reseed.
 * These answer at once, whatever the behaviour. */
#include "mno_sandbox.h"
#include "shared/plumbing/json_body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const error_types[] = {
    "TIMEOUT",
    "PARSING_ERROR",
    "INTERNAL_ERROR",
    "UNKNOWN_SUBSCRIBER_ID",
    "INVALID_PRODUCT",
    "USER_BARRED",
    "CONGESTED",
    "PURCHASE_IN_PROGRESS",
    "PURCHASE_ALREADY_EXECUTED",
    "NOT_IMPLEMENTED",
    "INSUFFICIENT_FUNDS",
    "BAD_REQUEST",
    "CONFLICT",
    "FORBIDDEN",
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
    if (c->fail_status)
        json_object_set_new(o, "failErrorType", json_string(mno_behaviour_error_type(c)));
    json_object_set_new(o, "hang", json_boolean(c->hang));
    json_object_set_new(o, "repeatAnswer",
                        json_string(c->repeat_answer == MNO_REPEAT_ALREADY_EXECUTED
                                        ? "ALREADY_EXECUTED"
                                        : "ORIGINAL"));
    if (c->callback_delay_set)
        json_object_set_new(o, "callbackDelayMs", json_integer(c->callback_delay_ms));
    json_object_set_new(
        o, "callbackStyle",
        json_string(c->callback_style == MNO_CALLBACK_MILLOM ? "millom" : "backend"));
    json_object_set_new(o, "callbackFail", json_boolean(c->callback_fail));
    return o;
}

/* Validates the body field by field; -1 with a message naming the field. */
static int parse_behaviour(const char *body, size_t len, mno_behaviour_cfg *out, char *msg,
                           size_t msglen) {
    memset(out, 0, sizeof *out);
    json_t *j = json_body_object(body, len, msg, msglen);
    if (!j) return -1;
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(j, key, v) {
        if (strcmp(key, "delayMs") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > 600000) {
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
                snprintf(msg, msglen,
                         "failErrorType must be an errorType of the backend API, e.g. CONGESTED");
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
        } else if (strcmp(key, "repeatAnswer") == 0) {
            const char *t = json_string_value(v);
            if (t && strcmp(t, "ORIGINAL") == 0) {
                out->repeat_answer = MNO_REPEAT_ORIGINAL;
            } else if (t && strcmp(t, "ALREADY_EXECUTED") == 0) {
                out->repeat_answer = MNO_REPEAT_ALREADY_EXECUTED;
            } else {
                snprintf(msg, msglen, "repeatAnswer must be ORIGINAL or ALREADY_EXECUTED");
                rc = -1;
                break;
            }
        } else if (strcmp(key, "callbackDelayMs") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > 600000) {
                snprintf(msg, msglen, "callbackDelayMs must be an integer from 0 to 600000");
                rc = -1;
                break;
            }
            out->callback_delay_set = true;
            out->callback_delay_ms = (long)json_integer_value(v);
        } else if (strcmp(key, "callbackStyle") == 0) {
            const char *t = json_string_value(v);
            if (t && strcmp(t, "backend") == 0) {
                out->callback_style = MNO_CALLBACK_BACKEND;
            } else if (t && strcmp(t, "millom") == 0) {
                out->callback_style = MNO_CALLBACK_MILLOM;
            } else {
                snprintf(msg, msglen, "callbackStyle must be backend or millom");
                rc = -1;
                break;
            }
        } else if (strcmp(key, "callbackFail") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(msg, msglen, "callbackFail must be true or false");
                rc = -1;
                break;
            }
            out->callback_fail = json_is_true(v);
        } else {
            snprintf(msg, msglen,
                     "unknown field %.40s (delayMs, failStatus, failErrorType, hang, repeatAnswer,"
                     " callbackDelayMs, callbackStyle, callbackFail)",
                     key);
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

static const char *const subscription_types[] = {"UNSPECIFIED", "PREPAID", "POSTPAID", NULL};
static const char *const subscriber_states[] = {"GOOD_TO_GO", "NEED_OFFERS", "NEED_LOANS",
                                                "NEED_TOPUP", NULL};
static const char *const subscriber_statuses[] = {"ACTIVE", "BARRED", "ROAMING", NULL};

/* The string v if it is one of allowed, else NULL. */
static const char *one_of(json_t *v, const char *const *allowed) {
    const char *t = json_string_value(v);
    for (size_t i = 0; t && allowed[i]; i++)
        if (strcmp(t, allowed[i]) == 0) return allowed[i];
    return NULL;
}

/* A string of 1..max bytes, else NULL. */
static const char *short_string(json_t *v, size_t max) {
    const char *t = json_string_value(v);
    size_t n = t ? json_string_length(v) : 0;
    return t && n > 0 && n <= max && strlen(t) == n ? t : NULL;
}

static bool money_minor(json_t *v, int64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > 100000000000000LL)
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* Fills spec from the body j (borrowed: spec's strings point into j;
 * offers, of j's array size, is the caller's). 0, or -1 with msg. */
static int parse_subscriber(json_t *j, mno_subscriber_spec *spec, const char **offers, char *msg,
                            size_t msglen) {
    *spec = (mno_subscriber_spec){.subscription_type = "PREPAID",
                                  .price_plan = "djuice",
                                  .state = "GOOD_TO_GO",
                                  .status = "ACTIVE"};
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        const char *bad = NULL;
        if (strcmp(key, "msisdn") == 0) {
            const char *m = json_string_value(v);
            size_t n = m ? strlen(m) : 0;
            if (!m || n < 5 || n > 20 || strspn(m, "0123456789") != n || n != json_string_length(v))
                bad = "msisdn must be a string of 5 to 20 digits";
            spec->msisdn = m;
        } else if (strcmp(key, "opet") == 0) {
            spec->opet = json_is_null(v) ? NULL : short_string(v, 64);
            if (!json_is_null(v) && !spec->opet)
                bad = "opet must be null or a string of 1 to 64 bytes";
        } else if (strcmp(key, "subscriptionType") == 0) {
            if (!(spec->subscription_type = one_of(v, subscription_types)))
                bad = "subscriptionType must be UNSPECIFIED, PREPAID or POSTPAID";
        } else if (strcmp(key, "pricePlan") == 0) {
            if (!(spec->price_plan = short_string(v, 63)))
                bad = "pricePlan must be a string of 1 to 63 bytes";
        } else if (strcmp(key, "balanceMinor") == 0) {
            if (!money_minor(v, &spec->balance_minor))
                bad = "balanceMinor must be a non-negative integer (PKR minor units)";
        } else if (strcmp(key, "loanMinor") == 0) {
            if (!money_minor(v, &spec->loan_minor))
                bad = "loanMinor must be a non-negative integer (PKR minor units)";
        } else if (strcmp(key, "ewalletMinor") == 0) {
            if (!money_minor(v, &spec->ewallet_minor))
                bad = "ewalletMinor must be a non-negative integer (PKR minor units)";
        } else if (strcmp(key, "subscriberState") == 0) {
            if (!(spec->state = one_of(v, subscriber_states)))
                bad = "subscriberState must be GOOD_TO_GO, NEED_OFFERS, NEED_LOANS or NEED_TOPUP";
        } else if (strcmp(key, "status") == 0) {
            if (!(spec->status = one_of(v, subscriber_statuses)))
                bad = "status must be ACTIVE, BARRED or ROAMING";
        } else if (strcmp(key, "offers") == 0) {
            size_t i;
            json_t *o;
            if (!json_is_array(v)) bad = "offers must be an array of offer ids";
            json_array_foreach(v, i, o) {
                if (bad) break;
                if (!(offers[i] = short_string(o, 64))) {
                    bad = "offers must be an array of offer ids";
                    break;
                }
                for (size_t k = 0; k < i; k++)
                    if (strcmp(offers[k], offers[i]) == 0)
                        bad = "offers: an offer id is listed twice";
            }
            spec->offers_set = true;
            spec->offers = offers;
            spec->n_offers = json_array_size(v);
        } else {
            snprintf(msg, msglen,
                     "unknown field %.40s (msisdn, opet, subscriptionType, pricePlan, balanceMinor,"
                     " loanMinor, ewalletMinor, subscriberState, status, offers)",
                     key);
            return -1;
        }
        if (bad) {
            snprintf(msg, msglen, "%s", bad);
            return -1;
        }
    }
    if (!spec->msisdn) {
        snprintf(msg, msglen, "msisdn is required");
        return -1;
    }
    return 0;
}

static void put_subscriber(mno_app *app, http_request *req) {
    size_t len;
    const char *body = http_body(req, &len);
    char msg[200];
    json_t *j = json_body_object(body, len, msg, sizeof msg);
    if (!j) {
        mno_respond_error(req, 400, "BAD_REQUEST", msg);
        return;
    }
    json_t *arr = json_object_get(j, "offers");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    const char **offers = calloc(n ? n : 1, sizeof *offers);
    mno_subscriber_spec spec;
    bool created = false;
    if (!offers) {
        mno_respond_error(req, 500, "INTERNAL_ERROR", "out of memory");
    } else if (parse_subscriber(j, &spec, offers, msg, sizeof msg) != 0) {
        mno_respond_error(req, 400, "BAD_REQUEST", msg);
    } else {
        int rc = mno_subscriber_put(app->store, &spec, &created, msg, sizeof msg);
        if (rc > 0) {
            mno_respond_error(req, 400, "BAD_REQUEST", msg);
        } else if (rc < 0) {
            mno_respond_error(req, 500, "INTERNAL_ERROR", "subscriber could not be stored");
        } else {
            json_t *o = json_object();
            json_object_set_new(o, "msisdn", json_string(spec.msisdn));
            json_object_set_new(o, "created", json_boolean(created));
            respond_json(req, created ? 201 : 200, o);
        }
    }
    free(offers);
    json_decref(j);
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
        json_object_set_new(o, "balance",
                            json_integer(mno_behaviour_calls(app->behaviour, MNO_CALL_BALANCE)));
        json_object_set_new(o, "offers",
                            json_integer(mno_behaviour_calls(app->behaviour, MNO_CALL_OFFERS)));
        json_object_set_new(o, "activate",
                            json_integer(mno_behaviour_calls(app->behaviour, MNO_CALL_ACTIVATE)));
        json_object_set_new(o, "pending", json_integer(mno_behaviour_pending(app->behaviour)));
        json_object_set_new(
            o, "asyncQueued",
            json_integer(app->activations ? mno_activations_queued(app->activations) : 0));
        respond_json(req, 200, o);
    } else if (strcmp(sub, "activations") == 0) {
        if (!get) {
            mno_method_not_allowed(req, "GET");
            return;
        }
        const char *trans_id = http_query(req, "transId");
        json_t *o = mno_activations_json(app->store, trans_id && *trans_id ? trans_id : NULL);
        if (!o) {
            mno_respond_error(req, 500, "INTERNAL_ERROR", "activations listing failed");
            return;
        }
        respond_json(req, 200, o);
    } else if (strcmp(sub, "reseed") == 0) {
        if (!post) {
            mno_method_not_allowed(req, "POST");
            return;
        }
        if (app->activations) mno_activations_cancel_all(app->activations);
        long deleted = mno_store_reseed(app->store);
        if (deleted < 0) {
            mno_respond_error(req, 500, "INTERNAL_ERROR", "reseed failed");
            return;
        }
        json_t *o = json_object();
        json_object_set_new(o, "reseeded", json_true());
        json_object_set_new(o, "activationsDeleted", json_integer(deleted));
        respond_json(req, 200, o);
    } else if (strcmp(sub, "subscribers") == 0) {
        if (!post) {
            mno_method_not_allowed(req, "POST");
            return;
        }
        put_subscriber(app, req);
    } else {
        mno_respond_error(req, 404, "BAD_REQUEST", "no such admin path");
    }
}
