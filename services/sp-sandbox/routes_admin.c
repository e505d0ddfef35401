/* Admin endpoints for tests, on the same port:
 *
 *   GET  /admin/received[?kind=notification|callback][&since=ID][&limit=N]
 *        {"received": [{"id", "kind", "receivedAt", "receivedAtMs",
 *        "contentType", "authorization", "body", "error", "transactionId",
 *        "status", "deliveryId", "webhookId", "webhookTimestamp",
 *        "webhookSignature", "verified"}], "count": n}, oldest first, ids >
 *        since. body is the parsed JSON, or the raw text when it was
 *        refused (then "error" says why).
 *   DELETE /admin/clear, POST /admin/clear
 *        forgets everything received: {"cleared": n}. Ids keep growing.
 *   POST /admin/behaviour {"failStatus": S, "failCount": N, "delayMs": D, "hang": B,
 *                          "tokenFailStatus": T}
 *        Replaces the behaviour for later /notifications and /callbacks;
 *        absent fields mean normal ({} = answer at once, 200). failStatus 0
 *        or 400..599 for the next failCount requests (0 = until changed),
 *        then normal again; delayMs 0..600000 before every answer; hang true
 *        holds answers until hang is lifted; tokenFailStatus 0 or 400..599:
 *        POST /oauth/token answers it until changed. Answers the new
 *        behaviour.
 *   GET  /admin/behaviour   the current behaviour (failCount = failures left,
 *                           pending = answers waiting now, maxPending = the
 *                           most waiting at once since it was set).
 *   POST /admin/reset       normal behaviour, hung requests answered;
 *                           keeps what was received.
 *   DELETE /admin/tokens, POST /admin/tokens
 *        forgets every token /oauth/token issued: {"revoked": n}.
 * These answer at once, whatever the behaviour. */
#include "sp_sandbox.h"
#include "shared/plumbing/json_body.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *behaviour_json(sp_behaviour *b) {
    sp_behaviour_cfg c;
    sp_behaviour_get(b, &c);
    json_t *o = json_object();
    json_object_set_new(o, "failStatus", json_integer(c.fail_status));
    json_object_set_new(o, "failCount", json_integer(c.fail_count));
    json_object_set_new(o, "delayMs", json_integer(c.delay_ms));
    json_object_set_new(o, "hang", json_boolean(c.hang));
    json_object_set_new(o, "tokenFailStatus", json_integer(c.token_fail_status));
    json_object_set_new(o, "pending", json_integer(sp_behaviour_pending(b)));
    json_object_set_new(o, "maxPending", json_integer(sp_behaviour_max_pending(b)));
    return o;
}

static bool int_in(json_t *v, long lo, long hi, long *out) {
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return false;
    *out = (long)json_integer_value(v);
    return true;
}

/* Validates the body field by field; -1 with a message naming the field. */
static int parse_behaviour(const char *body, size_t len, sp_behaviour_cfg *out, char *msg,
                           size_t msglen) {
    memset(out, 0, sizeof *out);
    json_t *j = json_body_object(body, len, msg, msglen);
    if (!j) return -1;
    const char *key;
    json_t *v;
    int rc = 0;
    long n;
    json_object_foreach(j, key, v) {
        if (strcmp(key, "failStatus") == 0) {
            if (!int_in(v, 0, 599, &n) || (n != 0 && n < 400)) {
                snprintf(msg, msglen, "failStatus must be 0 or an integer from 400 to 599");
                rc = -1;
                break;
            }
            out->fail_status = (int)n;
        } else if (strcmp(key, "failCount") == 0) {
            if (!int_in(v, 0, 1000000000, &out->fail_count)) {
                snprintf(msg, msglen, "failCount must be an integer >= 0 (0 = always)");
                rc = -1;
                break;
            }
        } else if (strcmp(key, "delayMs") == 0) {
            if (!int_in(v, 0, 600000, &out->delay_ms)) {
                snprintf(msg, msglen, "delayMs must be an integer from 0 to 600000");
                rc = -1;
                break;
            }
        } else if (strcmp(key, "hang") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(msg, msglen, "hang must be true or false");
                rc = -1;
                break;
            }
            out->hang = json_is_true(v);
        } else if (strcmp(key, "tokenFailStatus") == 0) {
            if (!int_in(v, 0, 599, &n) || (n != 0 && n < 400)) {
                snprintf(msg, msglen, "tokenFailStatus must be 0 or an integer from 400 to 599");
                rc = -1;
                break;
            }
            out->token_fail_status = (int)n;
        } else {
            snprintf(msg, msglen,
                     "unknown field %.40s (failStatus, failCount, delayMs, hang, tokenFailStatus)",
                     key);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && out->fail_count && !out->fail_status) {
        snprintf(msg, msglen, "failCount needs failStatus");
        rc = -1;
    }
    json_decref(j);
    return rc;
}

/* A non-negative integer query parameter; `fallback` when absent. */
static int query_long(http_request *req, const char *name, long fallback, long *out) {
    const char *s = http_query(req, name);
    if (!s || !*s) {
        *out = fallback;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0) return -1;
    *out = v;
    return 0;
}

static void received(sp_app *app, http_request *req) {
    const char *kind_name = http_query(req, "kind");
    int kind = kind_name && *kind_name ? sp_kind_parse(kind_name) : -1;
    if (kind_name && *kind_name && kind < 0) {
        sp_respond_error(req, 400, "kind must be notification or callback");
        return;
    }
    long since, limit;
    if (query_long(req, "since", 0, &since) != 0 || query_long(req, "limit", 0, &limit) != 0) {
        sp_respond_error(req, 400, "since and limit must be non-negative integers");
        return;
    }
    json_t *o = sp_store_list(app->store, kind, since, limit);
    if (!o) {
        sp_respond_error(req, 500, "listing failed");
        return;
    }
    http_respond_json(req, 200, o);
}

void sp_route_admin(sp_app *app, http_request *req, const char *sub) {
    const char *method = http_method(req);
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;

    if (strcmp(sub, "received") == 0) {
        if (!get) {
            sp_method_not_allowed(req, "GET");
            return;
        }
        received(app, req);
    } else if (strcmp(sub, "clear") == 0) {
        if (!post && strcmp(method, "DELETE") != 0) {
            sp_method_not_allowed(req, "DELETE, POST");
            return;
        }
        long n = sp_store_clear(app->store);
        if (n < 0) {
            sp_respond_error(req, 500, "clearing failed");
            return;
        }
        json_t *o = json_object();
        json_object_set_new(o, "cleared", json_integer(n));
        http_respond_json(req, 200, o);
    } else if (strcmp(sub, "behaviour") == 0) {
        if (post) {
            size_t len;
            const char *body = http_body(req, &len);
            char msg[160];
            sp_behaviour_cfg cfg;
            if (parse_behaviour(body, len, &cfg, msg, sizeof msg) != 0) {
                sp_respond_error(req, 400, msg);
                return;
            }
            sp_behaviour_set(app->behaviour, &cfg);
        } else if (!get) {
            sp_method_not_allowed(req, "GET, POST");
            return;
        }
        http_respond_json(req, 200, behaviour_json(app->behaviour));
    } else if (strcmp(sub, "tokens") == 0) {
        if (!post && strcmp(method, "DELETE") != 0) {
            sp_method_not_allowed(req, "DELETE, POST");
            return;
        }
        json_t *o = json_object();
        json_object_set_new(o, "revoked",
                            json_integer(app->auth ? sp_auth_revoke_all(app->auth) : 0));
        http_respond_json(req, 200, o);
    } else if (strcmp(sub, "reset") == 0) {
        if (!post) {
            sp_method_not_allowed(req, "POST");
            return;
        }
        sp_behaviour_reset(app->behaviour);
        http_respond_json(req, 200, behaviour_json(app->behaviour));
    } else {
        sp_respond_error(req, 404, "no such admin path");
    }
}
