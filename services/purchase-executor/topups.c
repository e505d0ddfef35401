/* Top-up requests: the store, the operator calls and the answers. See
 * topups.h. */
#include "topups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "shared/contracts/money.h"
#include "shared/contracts/topup_state.h"
#include "shared/patterns/backend_client.h"
#include "shared/plumbing/clock.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"
#include "shared/plumbing/topics.h"
#include "millom/v1/topup.pb-c.h"

typedef struct {
    char id[72], provider[72], op[40], reference[136];
    char requestor[32], requestor_name[136], donor[32], donor_name[136];
    char link[2048];
    Millom__V1__TopupState state;
    int64_t amount_minor;
    char error[256];
    int64_t created_ms, updated_ms;
} topup;

static void copy(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

/* ---- store ---- */

/* 1 found (*t filled), 0 none, -1 store error. */
static int topup_load(sqlite3 *db, const char *id, topup *t) {
    sqlite3_stmt *st = NULL;
    int found = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT service_provider, operator, partner_reference,"
                           " requestor_msisdn, requestor_name, donor_msisdn, donor_name,"
                           " donor_link, state, amount_minor, error, created_ms, updated_ms"
                           " FROM topups WHERE topup_id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) found = 0;
    if (rc != SQLITE_ROW) goto out;
    memset(t, 0, sizeof *t);
    copy(t->id, sizeof t->id, id);
    copy(t->provider, sizeof t->provider, (const char *)sqlite3_column_text(st, 0));
    copy(t->op, sizeof t->op, (const char *)sqlite3_column_text(st, 1));
    copy(t->reference, sizeof t->reference, (const char *)sqlite3_column_text(st, 2));
    copy(t->requestor, sizeof t->requestor, (const char *)sqlite3_column_text(st, 3));
    copy(t->requestor_name, sizeof t->requestor_name, (const char *)sqlite3_column_text(st, 4));
    copy(t->donor, sizeof t->donor, (const char *)sqlite3_column_text(st, 5));
    copy(t->donor_name, sizeof t->donor_name, (const char *)sqlite3_column_text(st, 6));
    copy(t->link, sizeof t->link, (const char *)sqlite3_column_text(st, 7));
    t->state = (Millom__V1__TopupState)sqlite3_column_int(st, 8);
    t->amount_minor = sqlite3_column_int64(st, 9);
    copy(t->error, sizeof t->error, (const char *)sqlite3_column_text(st, 10));
    t->created_ms = sqlite3_column_int64(st, 11);
    t->updated_ms = sqlite3_column_int64(st, 12);
    found = 1;
out:
    if (found < 0) log_error("topup load: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return found;
}

/* The TopupEvent of t (final) into the outbox, inside the open transaction. */
static int add_event(purchase_flow *f, sqlite3 *db, const topup *t) {
    const tenant_operator *op = tenants_operator(f->tenants, t->op);
    Millom__V1__TopupEvent ev = MILLOM__V1__TOPUP_EVENT__INIT;
    ev.topup_id = (char *)t->id;
    ev.service_provider = (char *)t->provider;
    ev.operator_ = (char *)t->op;
    ev.partner_reference = (char *)t->reference;
    ev.state = t->state;
    ev.amount_minor = t->amount_minor;
    ev.currency = (char *)(op ? op->currency : "");
    ev.currency_scale = op ? op->currency_scale : 0;
    ev.error = (char *)t->error;
    ev.occurred_at_ms = t->updated_ms;
    size_t n = millom__v1__topup_event__get_packed_size(&ev);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return SQLITE_NOMEM;
    millom__v1__topup_event__pack(&ev, buf);
    int rc = outbox_add(db, TOPIC_TOPUP_EVENTS, t->id, strlen(t->id), buf, n);
    free(buf);
    return rc;
}

/* Inserts t (new) or moves it from `expect` to t's state (expect 0: insert),
 * with its event when the new state is final, in one transaction. 1 done,
 * 0 the row was not in `expect` (someone else moved it), -1 store error. */
static int topup_store(purchase_flow *f, const topup *t, Millom__V1__TopupState expect) {
    sqlite3 *db = store_pool_take(f->db_pool);
    sqlite3_stmt *st = NULL;
    int result = -1;
    if (store_begin(db) != SQLITE_OK) {
        store_pool_give(f->db_pool, db);
        return -1;
    }
    const char *sql =
        expect ? "UPDATE topups SET state = ?10, amount_minor = ?11, error = ?12, updated_ms = ?14"
                 " WHERE topup_id = ?1 AND state = ?15"
               : "INSERT INTO topups (topup_id, service_provider, operator, partner_reference,"
                 " requestor_msisdn, requestor_name, donor_msisdn, donor_name, donor_link, state,"
                 " amount_minor, error, created_ms, updated_ms)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) goto fail;
    const char *texts[] = {t->id,        t->provider,   t->op,
                           t->reference, t->requestor,  t->requestor_name,
                           t->donor,     t->donor_name, t->link};
    /* An UPDATE reads ?1 only of these; SQLite numbers its parameters up
     * to the highest (?15), so binding the unread ones is harmless. */
    for (int i = 0; i < 9; i++) sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, t->state);
    sqlite3_bind_int64(st, 11, t->amount_minor);
    sqlite3_bind_text(st, 12, t->error, -1, SQLITE_STATIC);
    if (!expect) sqlite3_bind_int64(st, 13, t->created_ms);
    sqlite3_bind_int64(st, 14, t->updated_ms);
    if (expect) sqlite3_bind_int(st, 15, expect);
    if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    if (sqlite3_changes(db) == 0) {
        result = 0;
        goto fail;
    }
    if (topup_state_is_final(t->state) && add_event(f, db, t) != SQLITE_OK) goto fail;
    if (store_commit(db) != SQLITE_OK) goto fail;
    sqlite3_finalize(st);
    store_pool_give(f->db_pool, db);
    if (topup_state_is_final(t->state)) outbox_relay_notify(f->relay);
    return 1;
fail:
    if (result < 0) log_error("topup %s: cannot store: %s", t->id, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    store_rollback(db);
    store_pool_give(f->db_pool, db);
    return result;
}

/* topup_load on a connection of the pool. */
static int topup_read(purchase_flow *f, const char *id, topup *t) {
    sqlite3 *db = store_pool_take(f->db_pool);
    int found = topup_load(db, id, t);
    store_pool_give(f->db_pool, db);
    return found;
}

/* ---- answers ---- */

static json_t *party_json(const char *msisdn, const char *name) {
    char e164[40];
    snprintf(e164, sizeof e164, "+%s", msisdn);
    return json_pack("{s:{s:s}, s:s}", "userNumber", "msisdn", e164, "name", name);
}

/* The request as its provider (and the donor page) sees it; caller frees. */
static char *topup_text(purchase_flow *f, const topup *t) {
    char created[40], updated[40];
    clock_rfc3339_ms(t->created_ms, created, sizeof created);
    clock_rfc3339_ms(t->updated_ms, updated, sizeof updated);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "topupId", t->id, "partnerReference",
                  t->reference, "status", topup_state_name(t->state), "operator", t->op,
                  "requestor", party_json(t->requestor, t->requestor_name), "donor",
                  party_json(t->donor, t->donor_name), "createdAt", created, "updatedAt", updated);
    const tenant_operator *op = tenants_operator(f->tenants, t->op);
    char value[40];
    if (j && t->amount_minor > 0 && op &&
        money_format(t->amount_minor, op->currency_scale, value, sizeof value) > 0)
        json_object_set_new(j, "amount",
                            json_pack("{s:s, s:s}", "value", value, "currency", op->currency));
    if (j && t->error[0]) json_object_set_new(j, "error", json_string(t->error));
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    return text;
}

static void reply_topup(purchase_flow *f, const Millom__V1__TopupCommand *c, int status,
                        const topup *t) {
    char *text = topup_text(f, t);
    flow_reply(f, c->meta, text ? status : 500, text ? text : "");
    free(text);
}

static void reply_error(purchase_flow *f, const Millom__V1__TopupCommand *c, const char *cause,
                        const char *msg) {
    char *text = error_document_text(cause, msg);
    flow_reply(f, c->meta, error_status(cause), text ? text : "");
    free(text);
}

/* ---- operator calls ---- */

/* POSTs body to {backendUrl}{path} of t's operator. The HTTP status (0: no
 * answer), the errorType of a refusal in error. */
static long backend_post(purchase_flow *f, const topup *t, const char *path, json_t *body,
                         char *error, size_t errlen) {
    const tenant_operator *op = tenants_operator(f->tenants, t->op);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!op || !text) {
        free(text);
        snprintf(error, errlen, "operator %s is not configured", t->op);
        return 0;
    }
    char url[1024], auth[BACKEND_AUTH_HEADER_MAX];
    snprintf(url, sizeof url, "%s%s", op->backend_url, path);
    const char *headers[2] = {NULL, NULL};
    if (backend_auth_header(op, f->http, auth, sizeof auth) > 0) headers[0] = auth;
    http_result res;
    http_post(f->http, url, headers, "application/json", text, strlen(text),
              f->cfg.backend_timeout_ms, &res);
    free(text);
    long status = res.status;
    error[0] = '\0';
    if (status == 0) {
        snprintf(error, errlen, "no answer from the operator: %.200s", res.error);
    } else if (status >= 300) {
        json_t *e = json_loadb(res.body ? res.body : "", res.body_len, 0, NULL);
        const char *type = json_string_value(json_object_get(e, "errorType"));
        snprintf(error, errlen, "%s", type ? type : "ERROR");
        json_decref(e);
    }
    http_result_free(&res);
    return status;
}

/* Asks the operator to send the donor the link; stores LINK_SENT or
 * LINK_FAILED (with its event). t is updated. */
static int send_link(purchase_flow *f, topup *t) {
    char text[2600], error[256];
    snprintf(text, sizeof text, "%s (+%s) asks you for a top-up. Choose an amount: %s",
             t->requestor_name, t->requestor, t->link);
    long status = backend_post(f, t, "/messages",
                               json_pack("{s:s, s:s, s:s, s:s}", "to", t->donor, "channel", "SMS",
                                         "text", text, "reference", t->id),
                               error, sizeof error);
    if (status == 0 || status >= 500) {
        log_warn("topup %s: the operator did not take the donor's message (%s); kept REQUESTED",
                 t->id, error);
        return 0; /* REQUESTED: a repeat of the request sends it again */
    }
    topup next = *t;
    next.state = status < 300 ? MILLOM__V1__TOPUP_STATE__TOPUP_STATE_LINK_SENT
                              : MILLOM__V1__TOPUP_STATE__TOPUP_STATE_LINK_FAILED;
    copy(next.error, sizeof next.error, status < 300 ? "" : error);
    next.updated_ms = now_ms();
    int rc = topup_store(f, &next, MILLOM__V1__TOPUP_STATE__TOPUP_STATE_REQUESTED);
    if (rc < 0) return -1;
    if (rc == 0) return topup_read(f, t->id, t) < 0 ? -1 : 0;
    *t = next;
    log_info("topup %s: donor's message %s", t->id, status < 300 ? "sent" : "refused");
    return 0;
}

/* ---- the commands ---- */

static int same_request(const topup *t, const Millom__V1__TopupCommand *c) {
    return strcmp(t->provider, c->service_provider) == 0 &&
           strcmp(t->reference, c->partner_reference) == 0 &&
           strcmp(t->requestor, c->requestor_msisdn) == 0 &&
           strcmp(t->requestor_name, c->requestor_name) == 0 &&
           strcmp(t->donor, c->donor_msisdn) == 0 && strcmp(t->donor_name, c->donor_name) == 0;
}

static kafka_verdict on_request(purchase_flow *f, const Millom__V1__TopupCommand *c) {
    topup t;
    int found = topup_read(f, c->topup_id, &t);
    if (found < 0) return KAFKA_RETRY;
    if (found && !same_request(&t, c)) {
        reply_error(f, c, CAUSE_PURCHASE_CONFLICT,
                    "this partner reference was used for another top-up request");
        return KAFKA_DONE;
    }
    if (!found) {
        memset(&t, 0, sizeof t);
        copy(t.id, sizeof t.id, c->topup_id);
        copy(t.provider, sizeof t.provider, c->service_provider);
        copy(t.op, sizeof t.op, c->operator_);
        copy(t.reference, sizeof t.reference, c->partner_reference);
        copy(t.requestor, sizeof t.requestor, c->requestor_msisdn);
        copy(t.requestor_name, sizeof t.requestor_name, c->requestor_name);
        copy(t.donor, sizeof t.donor, c->donor_msisdn);
        copy(t.donor_name, sizeof t.donor_name, c->donor_name);
        copy(t.link, sizeof t.link, c->donor_link);
        t.state = MILLOM__V1__TOPUP_STATE__TOPUP_STATE_REQUESTED;
        t.created_ms = t.updated_ms = now_ms();
        int rc = topup_store(f, &t, 0);
        if (rc < 0) return KAFKA_RETRY;
        log_info("topup %s of %s: recorded", t.id, t.provider);
    }
    /* New, or recorded before the operator took the message (a crash, an
     * operator that did not answer): send it now. */
    if (t.state == MILLOM__V1__TOPUP_STATE__TOPUP_STATE_REQUESTED && send_link(f, &t) < 0)
        return KAFKA_RETRY;
    reply_topup(f, c, 202, &t);
    return KAFKA_DONE;
}

static kafka_verdict on_donate(purchase_flow *f, const Millom__V1__TopupCommand *c, topup *t) {
    if (t->state == MILLOM__V1__TOPUP_STATE__TOPUP_STATE_CREDITED &&
        t->amount_minor == c->amount_minor) {
        reply_topup(f, c, 200, t); /* the same choice again */
        return KAFKA_DONE;
    }
    if (t->state != MILLOM__V1__TOPUP_STATE__TOPUP_STATE_LINK_SENT) {
        char msg[128];
        snprintf(msg, sizeof msg, "this top-up request is %s", topup_state_name(t->state));
        reply_error(f, c, CAUSE_PURCHASE_CONFLICT, msg);
        return KAFKA_DONE;
    }
    if (c->amount_minor <= 0) {
        reply_error(f, c, CAUSE_BAD_REQUEST, "the amount must be positive");
        return KAFKA_DONE;
    }
    char path[128], error[256];
    snprintf(path, sizeof path, "/topup/%s", t->requestor);
    long status = backend_post(
        f, t, path,
        json_pack("{s:s, s:I}", "transId", t->id, "amountMinor", (json_int_t)c->amount_minor),
        error, sizeof error);
    if (status == 0 || status >= 500) {
        log_warn("topup %s: credit not answered (%s); still LINK_SENT", t->id, error);
        reply_error(f, c, CAUSE_SERVICE_UNAVAILABLE,
                    "the operator did not answer; try again in a moment");
        return KAFKA_DONE;
    }
    topup next = *t;
    next.state = status < 300 ? MILLOM__V1__TOPUP_STATE__TOPUP_STATE_CREDITED
                              : MILLOM__V1__TOPUP_STATE__TOPUP_STATE_CREDIT_FAILED;
    next.amount_minor = c->amount_minor;
    copy(next.error, sizeof next.error, status < 300 ? "" : error);
    next.updated_ms = now_ms();
    int rc = topup_store(f, &next, MILLOM__V1__TOPUP_STATE__TOPUP_STATE_LINK_SENT);
    if (rc < 0) return KAFKA_RETRY; /* the operator credits the transId once */
    if (rc == 0 && topup_read(f, t->id, &next) < 0) return KAFKA_RETRY;
    log_info("topup %s: %s", t->id, topup_state_name(next.state));
    reply_topup(f, c, 200, &next);
    return KAFKA_DONE;
}

kafka_verdict handle_topup(purchase_flow *f, const void *payload, size_t len, char *err,
                           size_t errlen) {
    Millom__V1__TopupCommand *c = millom__v1__topup_command__unpack(NULL, len, payload);
    if (!c) {
        snprintf(err, errlen, "not a millom.v1.TopupCommand");
        return KAFKA_DEAD_LETTER;
    }
    kafka_verdict v = KAFKA_DONE;
    if (!c->topup_id || !*c->topup_id || !c->service_provider || !*c->service_provider) {
        snprintf(err, errlen, "a TopupCommand without topup_id or service_provider");
        v = KAFKA_DEAD_LETTER;
    } else if (c->kind == MILLOM__V1__TOPUP_COMMAND_KIND__TOPUP_COMMAND_REQUEST) {
        v = on_request(f, c);
    } else {
        topup t;
        int found = topup_read(f, c->topup_id, &t);
        if (found < 0) {
            v = KAFKA_RETRY;
        } else if (!found || strcmp(t.provider, c->service_provider) != 0) {
            reply_error(f, c, CAUSE_NOT_FOUND, "no such top-up request");
        } else if (c->kind == MILLOM__V1__TOPUP_COMMAND_KIND__TOPUP_COMMAND_DONATE) {
            v = on_donate(f, c, &t);
        } else {
            reply_topup(f, c, 200, &t);
        }
    }
    millom__v1__topup_command__free_unpacked(c, NULL);
    return v;
}
