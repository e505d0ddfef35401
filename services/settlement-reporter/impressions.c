/* millom.offer.impressions: which plans a provider showed to a subscriber
 * (offer-resolver publishes one per successful upsellOffer answer). Kept
 * one row per impression, de-duplicated by its id so a redelivery does
 * not inflate the denominator of the conversion rate. */
#include "settlement.h"
#include "shared/plumbing/stmt_cache.h"

#include <stdio.h>
#include <string.h>

#include "shared/plumbing/service.h"
#include "shared/plumbing/store.h"

static int store_impression(sqlite3 *db, const Millom__V1__OfferImpression *im) {
    static const char sql[] =
        "INSERT OR IGNORE INTO impressions (impression_id, operator, service_provider,"
        " subscriber_hash, shown_at_ms) VALUES (?,?,?,?,?)";
    static const char plan_sql[] =
        "INSERT OR IGNORE INTO impression_plans (impression_id, plan_id) VALUES (?,?)";
    sqlite3_stmt *st = stmt_get(db, sql);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, im->impression_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, im->operator_, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, im->service_provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, im->subscriber_hash ? im->subscriber_hash : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, im->shown_at_ms > 0 ? im->shown_at_ms : now_ms());
    int rc = sqlite3_step(st);
    stmt_done(db, st);
    if (rc != SQLITE_DONE) return -1;
    if (sqlite3_changes(db) == 0) return 0; /* seen before */
    for (size_t i = 0; i < im->n_plan_ids; i++) {
        if (!im->plan_ids[i] || !*im->plan_ids[i]) continue;
        st = stmt_get(db, plan_sql);
        if (!st) return -1;
        sqlite3_bind_text(st, 1, im->impression_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, im->plan_ids[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        stmt_done(db, st);
        if (rc != SQLITE_DONE) return -1;
    }
    return 1;
}

kafka_verdict settlement_on_impression(settlement *s, const void *payload, size_t len, char *err,
                                       size_t errlen) {
    Millom__V1__OfferImpression *im =
        millom__v1__offer_impression__unpack(NULL, len, (const uint8_t *)payload);
    if (!im) {
        snprintf(err, errlen, "not a millom.v1.OfferImpression");
        return KAFKA_DEAD_LETTER;
    }
    kafka_verdict v = KAFKA_DONE;
    if (!im->impression_id || !*im->impression_id || !im->operator_ || !*im->operator_ ||
        !im->service_provider || !*im->service_provider) {
        snprintf(err, errlen, "impression_id, operator and service_provider are required");
        v = KAFKA_DEAD_LETTER;
    } else if (store_begin(s->db) != SQLITE_OK) {
        v = KAFKA_RETRY;
    } else {
        int rc = store_impression(s->db, im);
        if (rc < 0 || store_commit(s->db) != SQLITE_OK) {
            store_rollback(s->db);
            snprintf(err, errlen, "impression store: %s", sqlite3_errmsg(s->db));
            v = KAFKA_RETRY;
        } else if (rc > 0) {
            settlement_count(s, s->impressions, &s->batch.impressions);
        }
    }
    millom__v1__offer_impression__free_unpacked(im, NULL);
    return v;
}
