/* Consents and CPID registrations in notifier.db: see notifier.h. */
#include "notifier.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/clock.h"
#include "shared/plumbing/log.h"
#include "shared/patterns/outbox.h"
#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Migration 1: consents and CPID registrations; 2: the outbox
 * (millom.notifications.dlq); 3: notifications (de-duplication, quota
 * usage, the delivery queue). Append, never edit. */
#define CONSENTS_SQL                                                                  \
    "CREATE TABLE consents ("                                                         \
    "  provider TEXT NOT NULL, msisdn TEXT NOT NULL, operator TEXT NOT NULL,"         \
    "  types TEXT NOT NULL," /* JSON array of NotificationType; [] = revoked */       \
    "  language TEXT NOT NULL, transaction_id TEXT NOT NULL,"                         \
    "  updated_ms INTEGER NOT NULL,"                                                  \
    "  PRIMARY KEY (provider, msisdn)) WITHOUT ROWID;"                                \
    "CREATE INDEX consents_by_msisdn ON consents (msisdn);"                           \
    "CREATE TABLE cpid_registrations ("                                               \
    "  provider TEXT NOT NULL, msisdn TEXT NOT NULL, operator TEXT NOT NULL,"         \
    "  cpid TEXT NOT NULL, expires_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL," \
    "  PRIMARY KEY (provider, msisdn)) WITHOUT ROWID;"                                \
    "CREATE INDEX cpid_registrations_by_msisdn ON cpid_registrations (msisdn);"

#define NOTIFICATIONS_SQL                                                                   \
    "CREATE TABLE notify_dedup ("                                                           \
    "  operator TEXT NOT NULL, transaction_id TEXT NOT NULL, correlation_id TEXT NOT NULL," \
    "  msisdn TEXT NOT NULL, created_ms INTEGER NOT NULL,"                                  \
    "  PRIMARY KEY (operator, transaction_id)) WITHOUT ROWID;"                              \
    "CREATE TABLE notify_usage ("                                                           \
    "  msisdn TEXT NOT NULL, provider TEXT NOT NULL, type TEXT NOT NULL,"                   \
    "  sent_ms INTEGER NOT NULL);"                                                          \
    "CREATE INDEX notify_usage_by_key ON notify_usage (msisdn, provider, type, sent_ms);"   \
    "CREATE TABLE deliveries ("                                                             \
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"                                               \
    "  kind TEXT NOT NULL, provider TEXT NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL,"  \
    "  dedup_key TEXT UNIQUE,"                 /* callbacks: provider:transid:state */      \
    "  state TEXT NOT NULL DEFAULT 'pending'," /* pending, delivered, dead */               \
    "  attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL,"                      \
    "  first_attempt_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',"   \
    "  created_ms INTEGER NOT NULL);"                                                       \
    "CREATE INDEX deliveries_due ON deliveries (state, next_ms);"

/* 4: the changelog tables; 5: rows follow their partition
 * (shared/patterns/changelog.h) — every table gets its version and partition, and
 * the two tables keyed locally by a rowid get a uid to be known by
 * elsewhere. */
#define CL_COLUMNS(t)                                                     \
    "ALTER TABLE " t " ADD COLUMN cl_version INTEGER NOT NULL DEFAULT 0;" \
    "ALTER TABLE " t " ADD COLUMN cl_partition INTEGER NOT NULL DEFAULT -1;"
/* clang-format off */
#define NOTIFIER_CHANGELOG_SQL                                                   \
    CL_COLUMNS("consents")                                                       \
    CL_COLUMNS("cpid_registrations")                                             \
    CL_COLUMNS("notify_dedup")                                                   \
    CL_COLUMNS("notify_usage")                                                   \
    CL_COLUMNS("deliveries")                                                     \
    "ALTER TABLE notify_usage ADD COLUMN uid TEXT;"                              \
    "CREATE UNIQUE INDEX notify_usage_uid ON notify_usage (uid);"                \
    "ALTER TABLE deliveries ADD COLUMN uid TEXT;"                                \
    "CREATE UNIQUE INDEX deliveries_uid ON deliveries (uid);"
/* clang-format on */

/* 6: which accepted notifications used override=true, to cap them per
 * operator and subscriber (MILLOM_NOTIFY_OVERRIDE_MAX). */
#define NOTIFY_OVERRIDE_SQL                                                               \
    "ALTER TABLE notify_dedup ADD COLUMN override INTEGER NOT NULL DEFAULT 0;"            \
    "CREATE INDEX notify_dedup_overrides ON notify_dedup (msisdn, operator, created_ms) " \
    "WHERE override=1;"

/* 7: the delivery worker claims due rows per provider (delivery_worker.c). */
#define DELIVERIES_BY_PROVIDER_SQL \
    "CREATE INDEX deliveries_due_by_provider ON deliveries (state, provider, next_ms);"

/* 8: the request id of each delivery (shared/plumbing/correlator.h), sent in
 * its x-correlator header; 9: the outbox's (outbox_correlator_migration_sql). */
#define DELIVERIES_CORRELATOR_SQL "ALTER TABLE deliveries ADD COLUMN correlator TEXT;"

/* 10: the subscriber's opt-outs of a consent (its notifications'
 * unsubscribe links): {"<NotificationType>": <epoch ms>, ...}, and when the
 * latest was made (a registration older than that leaves them alone). */
#define CONSENT_OPT_OUTS_SQL                                               \
    "ALTER TABLE consents ADD COLUMN opt_outs TEXT NOT NULL DEFAULT '{}';" \
    "ALTER TABLE consents ADD COLUMN opted_out_ms INTEGER NOT NULL DEFAULT 0;"

static const char *const provider_msisdn[] = {"provider", "msisdn", NULL};
static const char *const dedup_keys[] = {"operator", "transaction_id", NULL};
static const char *const local_id[] = {"id", NULL};
static const changelog_table notifier_tables[] = {
    {.table = "consents", .key_columns = provider_msisdn},
    {.table = "cpid_registrations", .key_columns = provider_msisdn},
    {.table = "notify_dedup", .key_columns = dedup_keys},
    {.table = "notify_usage", .uid_column = "uid"},
    {.table = "deliveries", .uid_column = "uid", .local_columns = local_id},
};
const changelog_spec notifier_changelog = {
    .topic = TOPIC_NOTIFIER_CHANGELOG,
    .tables = notifier_tables,
    .n_tables = sizeof notifier_tables / sizeof notifier_tables[0],
};

sqlite3 *notifier_store_open(const char *path, char *err, size_t errlen) {
    const char *const migrations[] = {CONSENTS_SQL,
                                      outbox_migration_sql,
                                      NOTIFICATIONS_SQL,
                                      changelog_migration_sql,
                                      NOTIFIER_CHANGELOG_SQL,
                                      NOTIFY_OVERRIDE_SQL,
                                      DELIVERIES_BY_PROVIDER_SQL,
                                      DELIVERIES_CORRELATOR_SQL,
                                      outbox_correlator_migration_sql,
                                      CONSENT_OPT_OUTS_SQL};
    size_t count = sizeof migrations / sizeof migrations[0];
    sqlite3 *db = path ? store_open_path(path, migrations, count, err, errlen)
                       : store_open("notifier", migrations, count, err, errlen);
    if (db && changelog_capture(db, &notifier_changelog, err, errlen) != 0) {
        store_close(db);
        return NULL;
    }
    return db;
}

int notifier_open(notifier *n, const char *path, char *err, size_t errlen) {
    n->db = notifier_store_open(path, err, errlen);
    if (!n->db) return -1;
    snprintf(n->db_path, sizeof n->db_path, "%s", path ? path : "");
    if (!path) snprintf(n->db_path, sizeof n->db_path, "%s/notifier.db", service_data_dir());
    return 0;
}

void notifier_close(notifier *n) {
    store_close(n->db);
    n->db = NULL;
}

int consent_put(notifier *n, const char *provider, const char *op, const char *msisdn,
                const char *types_json, const char *language, const char *transaction_id,
                int64_t occurred_ms) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            n->db,
            "INSERT INTO consents (provider, msisdn, operator, types, language, "
            "transaction_id, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
            "ON CONFLICT (provider, msisdn) DO UPDATE SET "
            "operator=excluded.operator, types=excluded.types, "
            "language=excluded.language, transaction_id=excluded.transaction_id, "
            "updated_ms=excluded.updated_ms, "
            /* registering a type again (after the opt-out) takes it back */
            "opt_outs=CASE WHEN excluded.updated_ms > consents.opted_out_ms THEN "
            "(SELECT json_group_object(key, value) FROM json_each(consents.opt_outs) "
            "WHERE key NOT IN (SELECT value FROM json_each(excluded.types))) "
            "ELSE consents.opt_outs END "
            "WHERE excluded.updated_ms >= consents.updated_ms",
            -1, &st, NULL) != SQLITE_OK) {
        log_warn("consent_put: %s", sqlite3_errmsg(n->db));
        return -1;
    }
    sqlite3_bind_text(st, 1, provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, types_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, language, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, transaction_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, occurred_ms);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    if (rc) log_warn("consent_put: %s", sqlite3_errmsg(n->db));
    sqlite3_finalize(st);
    return rc;
}

int consent_opt_out(notifier *n, const char *provider, const char *op, const char *msisdn,
                    const char *type, int64_t occurred_ms) {
    /* No consent yet: a row without types keeps the opt-out, so a later
     * registration of that type is still what takes it back. */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(n->db,
                           "INSERT INTO consents (provider, msisdn, operator, types, language, "
                           "transaction_id, updated_ms, opt_outs, opted_out_ms) "
                           "VALUES (?1, ?2, ?3, '[]', 'en', '', 0, json_object(?4, ?5), ?5) "
                           "ON CONFLICT (provider, msisdn) DO UPDATE SET "
                           "opt_outs=json_set(consents.opt_outs, '$.\"' || ?4 || '\"', "
                           "coalesce(json_extract(consents.opt_outs, '$.\"' || ?4 || '\"'), ?5)), "
                           "opted_out_ms=max(consents.opted_out_ms, ?5)",
                           -1, &st, NULL) != SQLITE_OK) {
        log_warn("consent_opt_out: %s", sqlite3_errmsg(n->db));
        return -1;
    }
    sqlite3_bind_text(st, 1, provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, occurred_ms);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    if (rc) log_warn("consent_opt_out: %s", sqlite3_errmsg(n->db));
    sqlite3_finalize(st);
    return rc;
}

int cpid_registration_put(notifier *n, const char *provider, const char *op, const char *msisdn,
                          const char *cpid, int64_t expires_ms, int64_t occurred_ms) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(n->db,
                           "INSERT INTO cpid_registrations (provider, msisdn, operator, cpid, "
                           "expires_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                           "ON CONFLICT (provider, msisdn) DO UPDATE SET "
                           "operator=excluded.operator, cpid=excluded.cpid, "
                           "expires_ms=excluded.expires_ms, updated_ms=excluded.updated_ms "
                           "WHERE excluded.updated_ms >= cpid_registrations.updated_ms",
                           -1, &st, NULL) != SQLITE_OK) {
        log_warn("cpid_registration_put: %s", sqlite3_errmsg(n->db));
        return -1;
    }
    sqlite3_bind_text(st, 1, provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, msisdn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, cpid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, expires_ms);
    sqlite3_bind_int64(st, 6, occurred_ms);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    if (rc) log_warn("cpid_registration_put: %s", sqlite3_errmsg(n->db));
    sqlite3_finalize(st);
    return rc;
}

static json_t *time_json(int64_t ms) {
    char buf[CLOCK_RFC3339_LEN];
    clock_rfc3339_ms(ms, buf, sizeof buf);
    return json_string(buf);
}

static json_t *text(const unsigned char *s) {
    json_t *j = json_string(s ? (const char *)s : "");
    return j ? j : json_string("?");
}

/* The stored opt-outs {"type": ms} as [{"type", "at"}], by type. */
static json_t *opt_outs_json(const unsigned char *stored) {
    json_t *map = json_loads(stored ? (const char *)stored : "{}", 0, NULL), *list = json_array();
    const char *type;
    json_t *at;
    json_object_foreach(map, type, at) {
        json_array_append_new(
            list, json_pack("{s:s, s:o}", "type", type, "at", time_json(json_integer_value(at))));
    }
    json_decref(map);
    return list;
}

json_t *consents_lookup(notifier *n, const char *op, const char *msisdn, const char *provider) {
    if (!provider) provider = "";
    json_t *consents = json_array(), *cpids = json_array();
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(n->db,
                                "SELECT provider, types, language, transaction_id, updated_ms, "
                                "opt_outs FROM consents WHERE msisdn=?1 AND operator=?2 AND "
                                "(?3='' OR provider=?3) ORDER BY provider",
                                -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, msisdn, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, op, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, provider, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *types = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
            if (!json_is_array(types)) {
                json_decref(types);
                types = json_array();
            }
            /* A notifier without a TTL (consent_ttl_ms 0): nothing expires. */
            int64_t updated = sqlite3_column_int64(st, 4), expires = updated + n->consent_ttl_ms;
            int expired = n->consent_ttl_ms > 0 && expires <= now_ms();
            json_t *c = json_object();
            json_object_set_new(c, "serviceProvider", text(sqlite3_column_text(st, 0)));
            json_object_set_new(c, "active", json_boolean(json_array_size(types) > 0 && !expired));
            json_object_set_new(c, "types", types);
            json_object_set_new(c, "language", text(sqlite3_column_text(st, 2)));
            json_object_set_new(c, "transactionId", text(sqlite3_column_text(st, 3)));
            json_object_set_new(c, "updatedAt", time_json(updated));
            if (n->consent_ttl_ms > 0) json_object_set_new(c, "expiresAt", time_json(expires));
            json_object_set_new(c, "expired", json_boolean(expired));
            json_object_set_new(c, "optedOut", opt_outs_json(sqlite3_column_text(st, 5)));
            json_array_append_new(consents, c);
        }
        ok = rc == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (ok)
        ok = sqlite3_prepare_v2(n->db,
                                "SELECT provider, expires_ms, updated_ms FROM cpid_registrations "
                                "WHERE msisdn=?1 AND operator=?2 AND (?3='' OR provider=?3) "
                                "ORDER BY provider",
                                -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, msisdn, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, op, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, provider, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *c = json_object();
            json_object_set_new(c, "serviceProvider", text(sqlite3_column_text(st, 0)));
            json_object_set_new(c, "registeredAt", time_json(sqlite3_column_int64(st, 2)));
            json_object_set_new(c, "expiresAt", time_json(sqlite3_column_int64(st, 1)));
            json_array_append_new(cpids, c);
        }
        ok = rc == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (!ok) {
        log_warn("consents_lookup: %s", sqlite3_errmsg(n->db));
        json_decref(consents);
        json_decref(cpids);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o, s:o}", "operator", op, "subscriberId", msisdn, "consents",
                     consents, "cpidRegistrations", cpids);
}
