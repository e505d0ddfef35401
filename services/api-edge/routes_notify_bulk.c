/* POST /notify/{operator}/v1/bulk (scope cco.dd.notify.{operator}.bulk): an
 * extension of millom-notify.yaml for operators that notify many
 * subscribers at once. The body is a JSON array of up to
 * MILLOM_NOTIFY_BULK_MAX_ITEMS (10000) items; each item is one single
 * notification, its query parameters as fields next to the NotifyRequest
 * body's:
 *
 *   [{"idValue":"924542610003","idType":"MSISDN","override":false,
 *     "transactionId":"bulk-0001","type":"out-of-data", ...}, ...]
 *
 * The answer is 200 {"accepted": n, "results": [...]}, one verdict per item
 * in the items' order: {"status":202} or the single endpoint's error body
 * with its status ({"status":403,"errorType":"NO_CONSENT","description":..},
 * {"status":400,"errorMessage":..,"cause":"BAD_REQUEST"}, 503 for an item
 * notifier did not answer within MILLOM_NOTIFY_BULK_DEADLINE_MS).
 *
 * Each item is checked by the single endpoint's notify_item_check and
 * decided by notifier's same rules (consent, quota, duplicate
 * transactionId): every valid item is produced at once as its own
 * SubscriberEvent with its own correlation id, and the replies are
 * collected as they come (notifier decides them in its consumer batches),
 * so 10,000 items are one pass over Kafka, not 10,000 round trips. A
 * transactionId given twice in one request is refused at its second
 * occurrence here (409, as a duplicate of an earlier request is), since
 * items of different subscribers are decided on different partitions in
 * no set order.
 *
 * Limits: the body at most MILLOM_NOTIFY_BULK_MAX_BODY bytes (413 before it
 * is read), more items than allowed 413, not an array or an empty one 400. */
#include "edge.h"
#include "shared/plumbing/errors.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/topics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bulk_wait bulk_wait;

/* The rpc callback's argument of one item. */
typedef struct {
    bulk_wait *w;
    size_t index;
} bulk_slot;

/* One bulk request while its items' replies come in. */
struct bulk_wait {
    http_request *req;
    pthread_mutex_t lock;
    size_t pending; /* replies still due, plus one while items are being sent */
    json_t *results;
    bulk_slot *slots;
};

static json_t *refusal_json(const notify_refusal *why) {
    if (!why->error_type)
        return json_pack("{s:i, s:s, s:s}", "status", 400, "errorMessage", why->message, "cause",
                         CAUSE_BAD_REQUEST);
    return json_pack("{s:i, s:s, s:s}", "status", why->status, "errorType", why->error_type,
                     "description", why->message);
}

/* The verdict of a Reply: {"status": its status} and its JSON body's fields. */
static json_t *reply_json(const Millom__V1__Reply *reply) {
    if (!reply)
        return json_pack("{s:i, s:s, s:s}", "status", 503, "errorMessage",
                         "notifier did not answer in time; send this item again", "cause",
                         CAUSE_SERVICE_UNAVAILABLE);
    int status = reply->http_status >= 100 && reply->http_status < 600 ? reply->http_status : 500;
    json_t *v = json_pack("{s:i}", "status", status);
    json_t *body = reply->body.len
                       ? json_loadb((const char *)reply->body.data, reply->body.len, 0, NULL)
                       : NULL;
    if (json_is_object(body)) json_object_update(v, body);
    json_decref(body);
    return v;
}

/* Answers and frees w once nothing is pending. Called with w->lock held;
 * releases it. */
static void release(bulk_wait *w) {
    int done = --w->pending == 0;
    pthread_mutex_unlock(&w->lock);
    if (!done) return;
    size_t i, accepted = 0;
    json_t *v;
    json_array_foreach(w->results, i, v) {
        if (json_integer_value(json_object_get(v, "status")) == 202) accepted++;
    }
    http_respond_json(
        w->req, 200,
        json_pack("{s:I, s:o}", "accepted", (json_int_t)accepted, "results", w->results));
    pthread_mutex_destroy(&w->lock);
    free(w->slots);
    free(w);
}

static void on_item_reply(void *arg, const Millom__V1__Reply *reply) {
    bulk_slot *slot = arg;
    bulk_wait *w = slot->w;
    json_t *v = reply_json(reply);
    pthread_mutex_lock(&w->lock);
    json_array_set_new(w->results, slot->index, v ? v : json_pack("{s:i}", "status", 500));
    release(w);
}

/* The query parameter `override` of an item: absent, a boolean or the
 * query's own "true"/"false". */
static const char *override_of(const json_t *item) {
    const json_t *o = json_object_get(item, "override");
    if (!o) return NULL;
    if (json_is_boolean(o)) return json_is_true(o) ? "true" : "false";
    const char *s = json_string_value(o);
    return s ? s : "not a boolean";
}

/* Checks every item (pass one: nothing sent yet). Fills results for the
 * refused ones and items[i] (valid[i] = 1) for the others; the number of
 * valid items. */
static size_t check_items(const tenant_operator *op, const json_t *array, notify_item *items,
                          char *valid, json_t *results) {
    json_t *seen = json_object(); /* transactionId -> its first valid item */
    size_t i, n_valid = 0;
    const json_t *item;
    json_array_foreach(array, i, item) {
        notify_refusal why;
        int rc = -1;
        if (!json_is_object(item)) {
            why.status = 400;
            why.error_type = NULL;
            snprintf(why.message, sizeof why.message, "item %zu must be a JSON object", i);
        } else {
            rc = notify_item_check(op, json_string_value(json_object_get(item, "idValue")),
                                   json_string_value(json_object_get(item, "idType")),
                                   override_of(item), item, &items[i], &why);
        }
        if (rc == 0 && json_object_get(seen, items[i].body.transaction_id)) {
            rc = -1;
            why.status = 409;
            why.error_type = "INTERNAL_ERROR";
            snprintf(why.message, sizeof why.message,
                     "duplicate transactionId '%.128s' (item %" JSON_INTEGER_FORMAT
                     " of this request)",
                     items[i].body.transaction_id,
                     json_integer_value(json_object_get(seen, items[i].body.transaction_id)));
        }
        if (rc != 0) {
            json_array_set_new(results, i, refusal_json(&why));
            continue;
        }
        json_object_set_new(seen, items[i].body.transaction_id, json_integer((json_int_t)i));
        valid[i] = 1;
        n_valid++;
    }
    json_decref(seen);
    return n_valid;
}

/* Registers and produces item i (pass two). 0, or -1 with its verdict to give. */
static int send_item(api_edge *e, const tenant_operator *op, notify_item *it, bulk_slot *slot,
                     uint8_t **buf, size_t *cap, const char **why) {
    notify_event ne;
    notify_item_event(op, it, &ne);
    if (rpc_call_begin(e->rpc, e->bulk_deadline_ms, on_item_reply, slot, &ne.meta) != 0) {
        *why = "too many requests in flight; send this item again";
        return -1;
    }
    size_t len = millom__v1__subscriber_event__get_packed_size(&ne.ev);
    if (len > *cap) {
        uint8_t *grown = realloc(*buf, len);
        if (grown) *buf = grown, *cap = len;
    }
    if (len > *cap ||
        kafka_produce(e->producer, TOPIC_SUBSCRIBER_EVENTS, -1, it->msisdn, strlen(it->msisdn),
                      *buf, millom__v1__subscriber_event__pack(&ne.ev, *buf), NULL, 0) != 0) {
        rpc_call_cancel(e->rpc, ne.meta.correlation_id);
        *why = "message bus unavailable; send this item again";
        return -1;
    }
    return 0;
}

void routes_notify_bulk(api_edge *e, http_request *req, const edge_match *m) {
    const tenant_operator *op = tenants_operator(edge_tenants(m), m->params.op);
    if (!op) {
        http_respond_error(req, CAUSE_BAD_REQUEST, "unknown operator '%s'", m->params.op);
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    json_error_t jerr;
    json_t *array = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_array(array) || json_array_size(array) == 0) {
        if (array)
            http_respond_error(req, CAUSE_BAD_REQUEST,
                               "the body must be a non-empty JSON array of notifications");
        else
            http_respond_error(req, CAUSE_BAD_REQUEST, "body is not valid JSON: %s", jerr.text);
        json_decref(array);
        return;
    }
    size_t n = json_array_size(array);
    if (n > (size_t)e->bulk_max_items) {
        http_respond_error(req, CAUSE_PAYLOAD_TOO_LARGE,
                           "%zu notifications in one request; at most %ld", n, e->bulk_max_items);
        json_decref(array);
        return;
    }
    bulk_wait *w = calloc(1, sizeof *w);
    notify_item *items = calloc(n, sizeof *items);
    char *valid = calloc(n, 1);
    json_t *results = json_array();
    if (w) w->slots = calloc(n, sizeof *w->slots);
    for (size_t i = 0; results && i < n; i++)
        if (json_array_append_new(results, json_null()) != 0) break;
    if (!w || !w->slots || !items || !valid || json_array_size(results) != n) {
        http_respond_error(req, CAUSE_UNSPECIFIED, "out of memory");
        if (w) free(w->slots);
        free(w);
        free(items);
        free(valid);
        json_decref(results);
        json_decref(array);
        return;
    }
    size_t n_valid = check_items(op, array, items, valid, results);
    json_decref(array);
    pthread_mutex_init(&w->lock, NULL);
    w->req = req;
    w->results = results;
    w->pending = n_valid + 1;
    if (n_valid) http_defer(req); /* before producing: replies may beat us back */
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        if (!valid[i]) continue;
        w->slots[i] = (bulk_slot){w, i};
        const char *why = NULL;
        if (send_item(e, op, &items[i], &w->slots[i], &buf, &cap, &why) == 0) continue;
        pthread_mutex_lock(&w->lock);
        json_array_set_new(results, i,
                           json_pack("{s:i, s:s, s:s}", "status", 503, "errorMessage", why, "cause",
                                     CAUSE_SERVICE_UNAVAILABLE));
        release(w); /* not the last: this loop still holds one */
    }
    if (n_valid) log_debug("bulk notification: %zu of %zu items sent to notifier", n_valid, n);
    free(buf);
    free(items);
    free(valid);
    pthread_mutex_lock(&w->lock);
    release(w);
}

size_t notify_bulk_max_body(void *app, const char *method, const char *path) {
    const api_edge *e = app;
    static const char prefix[] = "/notify/", suffix[] = "/v1/bulk";
    size_t n = path ? strlen(path) : 0;
    if (!method || strcmp(method, "POST") != 0 || n <= sizeof prefix + sizeof suffix - 2 ||
        strncmp(path, prefix, sizeof prefix - 1) != 0 ||
        strcmp(path + n - (sizeof suffix - 1), suffix) != 0 ||
        memchr(path + sizeof prefix - 1, '/', n - (sizeof prefix - 1) - (sizeof suffix - 1)))
        return 0;
    return (size_t)e->bulk_max_body;
}
