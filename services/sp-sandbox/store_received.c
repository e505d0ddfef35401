/* What sp-sandbox received: one row per request, in its own SQLite file.
 * Bodies are kept as received (a refused body too, with the reason). */
#include "sp_sandbox.h"

#include "shared/plumbing/log.h"
#include "shared/plumbing/clock.h"
#include "shared/plumbing/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const migrations[] = {
    "CREATE TABLE received ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL CHECK (kind IN ('notification','callback')),"
    " received_at_ms INTEGER NOT NULL,"
    " content_type TEXT,"
    " has_authorization INTEGER NOT NULL,"
    " body BLOB NOT NULL,"
    " error TEXT,"
    " transaction_id TEXT,"
    " status INTEGER NOT NULL);"
    "CREATE INDEX received_kind ON received(kind, id);",
    /* The notifier's X-Millom-Delivery-Id header: a resend carries the same. */
    "ALTER TABLE received ADD COLUMN delivery_id TEXT;",
    /* The Standard Webhooks headers as received, and what was checked and
     * passed (NULL: nothing configured). */
    "ALTER TABLE received ADD COLUMN webhook_id TEXT;"
    "ALTER TABLE received ADD COLUMN webhook_timestamp TEXT;"
    "ALTER TABLE received ADD COLUMN webhook_signature TEXT;"
    "ALTER TABLE received ADD COLUMN verified TEXT;",
    /* Millom's request id (x-correlator header), as received. */
    "ALTER TABLE received ADD COLUMN correlator TEXT;",
};

struct sp_store {
    sqlite3 *db;
    pthread_mutex_t lock;
};

const char *sp_kind_name(sp_kind k) { return k == SP_KIND_CALLBACK ? "callback" : "notification"; }

int sp_kind_parse(const char *name) {
    if (name && strcmp(name, "notification") == 0) return SP_KIND_NOTIFICATION;
    if (name && strcmp(name, "callback") == 0) return SP_KIND_CALLBACK;
    return -1;
}

static sp_store *wrap(sqlite3 *db) {
    if (!db) return NULL;
    sp_store *s = calloc(1, sizeof *s);
    if (!s) {
        store_close(db);
        return NULL;
    }
    s->db = db;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

sp_store *sp_store_open(char *err, size_t errlen) {
    return wrap(
        store_open("sp-sandbox", migrations, sizeof migrations / sizeof *migrations, err, errlen));
}

sp_store *sp_store_open_path(const char *path, char *err, size_t errlen) {
    return wrap(
        store_open_path(path, migrations, sizeof migrations / sizeof *migrations, err, errlen));
}

void sp_store_close(sp_store *s) {
    if (!s) return;
    store_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int64_t sp_store_record(sp_store *s, const sp_received *r) {
    static const char sql[] =
        "INSERT INTO received(kind, received_at_ms, content_type, has_authorization, body, error,"
        " transaction_id, status, delivery_id, webhook_id, webhook_timestamp, webhook_signature,"
        " verified, correlator) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    int64_t id = -1;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, sp_kind_name(r->kind), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->received_at_ms);
        if (r->content_type) sqlite3_bind_text(st, 3, r->content_type, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, r->has_authorization);
        sqlite3_bind_blob(st, 5, r->body ? r->body : "", (int)r->body_len, SQLITE_TRANSIENT);
        if (r->error) sqlite3_bind_text(st, 6, r->error, -1, SQLITE_TRANSIENT);
        if (r->transaction_id) sqlite3_bind_text(st, 7, r->transaction_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 8, r->status);
        if (r->delivery_id) sqlite3_bind_text(st, 9, r->delivery_id, -1, SQLITE_TRANSIENT);
        const char *more[] = {r->webhook_id, r->webhook_timestamp, r->webhook_signature,
                              r->verified};
        for (int i = 0; i < 4; i++)
            if (more[i]) sqlite3_bind_text(st, 10 + i, more[i], -1, SQLITE_TRANSIENT);
        if (r->correlator) sqlite3_bind_text(st, 14, r->correlator, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_DONE) id = sqlite3_last_insert_rowid(s->db);
    }
    if (id < 0) log_error("sp-sandbox: cannot record a request: %s", sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return id;
}

static json_t *iso_time(int64_t ms) {
    char buf[CLOCK_RFC3339_LEN];
    clock_rfc3339_ms(ms, buf, sizeof buf);
    return json_string(buf);
}

/* The body parsed when it was valid, else the raw text (null if not UTF-8). */
static json_t *body_json(const void *body, int len, bool valid) {
    if (valid) {
        json_t *j = json_loadb(body, (size_t)len, 0, NULL);
        if (j) return j;
    }
    json_t *raw = json_stringn(body ? body : "", (size_t)len);
    return raw ? raw : json_null();
}

/* "token signature" as ["token", "signature"]. */
static json_t *verified_json(const char *text) {
    json_t *list = json_array();
    const char *p = text ? text : "";
    while (*p) {
        size_t n = strcspn(p, " ");
        if (n) json_array_append_new(list, json_stringn(p, n));
        p += n;
        p += strspn(p, " ");
    }
    return list;
}

static json_t *row_json(sqlite3_stmt *st) {
    json_t *o = json_object();
    int64_t ms = sqlite3_column_int64(st, 2);
    const void *body = sqlite3_column_blob(st, 5);
    int len = sqlite3_column_bytes(st, 5);
    bool valid = sqlite3_column_type(st, 6) == SQLITE_NULL;
    json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, 0)));
    json_object_set_new(o, "kind", json_string((const char *)sqlite3_column_text(st, 1)));
    json_object_set_new(o, "receivedAt", iso_time(ms));
    json_object_set_new(o, "receivedAtMs", json_integer(ms));
    if (sqlite3_column_type(st, 3) != SQLITE_NULL)
        json_object_set_new(o, "contentType",
                            json_string((const char *)sqlite3_column_text(st, 3)));
    json_object_set_new(o, "authorization", json_boolean(sqlite3_column_int(st, 4)));
    json_object_set_new(o, "body", body_json(body, len, valid));
    if (!valid)
        json_object_set_new(o, "error", json_string((const char *)sqlite3_column_text(st, 6)));
    if (sqlite3_column_type(st, 7) != SQLITE_NULL)
        json_object_set_new(o, "transactionId",
                            json_string((const char *)sqlite3_column_text(st, 7)));
    json_object_set_new(o, "status", json_integer(sqlite3_column_int(st, 8)));
    if (sqlite3_column_type(st, 9) != SQLITE_NULL)
        json_object_set_new(o, "deliveryId", json_string((const char *)sqlite3_column_text(st, 9)));
    static const char *const names[] = {"webhookId", "webhookTimestamp", "webhookSignature"};
    for (int i = 0; i < 3; i++)
        if (sqlite3_column_type(st, 10 + i) != SQLITE_NULL)
            json_object_set_new(o, names[i],
                                json_string((const char *)sqlite3_column_text(st, 10 + i)));
    if (sqlite3_column_type(st, 13) != SQLITE_NULL)
        json_object_set_new(o, "verified",
                            verified_json((const char *)sqlite3_column_text(st, 13)));
    if (sqlite3_column_type(st, 14) != SQLITE_NULL)
        json_object_set_new(o, "correlator",
                            json_string((const char *)sqlite3_column_text(st, 14)));
    return o;
}

json_t *sp_store_list(sp_store *s, int kind, int64_t since, long limit) {
    static const char sql[] =
        "SELECT id, kind, received_at_ms, content_type, has_authorization, body, error,"
        " transaction_id, status, delivery_id, webhook_id, webhook_timestamp, webhook_signature,"
        " verified, correlator FROM received"
        " WHERE id > ?1 AND (?2 IS NULL OR kind = ?2) ORDER BY id LIMIT ?3";
    json_t *list = json_array();
    int rc = SQLITE_ERROR;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, since);
        if (kind >= 0) sqlite3_bind_text(st, 2, sp_kind_name((sp_kind)kind), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, limit > 0 ? limit : -1);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(list, row_json(st));
    }
    if (rc != SQLITE_DONE) log_error("sp-sandbox: listing failed: %s", sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    if (rc != SQLITE_DONE) {
        json_decref(list);
        return NULL;
    }
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer((json_int_t)json_array_size(list)));
    json_object_set_new(o, "received", list);
    return o;
}

long sp_store_clear(sp_store *s) {
    pthread_mutex_lock(&s->lock);
    long n = -1;
    if (store_exec(s->db, "DELETE FROM received") == SQLITE_OK) n = sqlite3_changes(s->db);
    pthread_mutex_unlock(&s->lock);
    return n;
}
