/* Replies on millom.replies from notifier's consumer, and its batches
 * (kafka_consumer_opts.batch_begin): the messages of a batch are handled
 * in one SQLite transaction, and a batch that fails is rolled back and
 * handled again message by message. So a reply must not leave before the
 * transaction whose verdict it tells has committed: inside a batch it is
 * kept and produced after the commit, and dropped on a rollback (the
 * message is handled again and answers then). Outside a batch it goes at
 * once, as before. Only the consumer thread calls these. */
#include "notifier.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/store.h"

#include <stdlib.h>
#include <string.h>

typedef struct deferred_reply {
    Millom__V1__RequestMeta meta; /* the strings below */
    char *correlation_id, *reply_topic, *content_type, *body;
    size_t body_len;
    int status, retry_after_s;
    char correlator[CORRELATOR_SIZE]; /* the request id of the message it answers */
    struct deferred_reply *next;
} deferred_reply;

static void deferred_free(deferred_reply *d) {
    while (d) {
        deferred_reply *next = d->next;
        free(d->correlation_id);
        free(d->reply_topic);
        free(d->content_type);
        free(d->body);
        free(d);
        d = next;
    }
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

int notifier_reply(notifier *n, const Millom__V1__RequestMeta *meta, int status,
                   const char *content_type, const char *body, size_t body_len, int retry_after_s) {
    if (!n->in_batch)
        return rpc_reply(n->producer, meta, status, content_type, body, body_len, retry_after_s);
    deferred_reply *d = calloc(1, sizeof *d);
    if (!d) return -1;
    millom__v1__request_meta__init(&d->meta);
    d->correlation_id = dup_or_empty(meta ? meta->correlation_id : NULL);
    d->reply_topic = dup_or_empty(meta ? meta->reply_topic : NULL);
    d->content_type = dup_or_empty(content_type);
    d->body = malloc(body_len + 1);
    if (!d->correlation_id || !d->reply_topic || !d->content_type || !d->body) {
        deferred_free(d);
        return -1;
    }
    if (body_len) memcpy(d->body, body, body_len);
    d->body[body_len] = '\0';
    d->body_len = body_len;
    d->meta.correlation_id = d->correlation_id;
    d->meta.reply_topic = d->reply_topic;
    d->meta.reply_partition = meta ? meta->reply_partition : -1;
    d->meta.deadline_ms = meta ? meta->deadline_ms : 0;
    d->status = status;
    d->retry_after_s = retry_after_s;
    correlator_copy_current(d->correlator);
    /* Kept in order: pushed at the head, reversed when sent. */
    d->next = n->deferred;
    n->deferred = d;
    return 0;
}

int notifier_batch_begin(void *state) {
    notifier *n = state;
    if (store_batch_begin(n->db) != SQLITE_OK) return -1;
    n->in_batch = 1;
    return 0;
}

int notifier_batch_commit(void *state) {
    notifier *n = state;
    int rc = store_batch_commit(n->db);
    n->in_batch = 0;
    deferred_reply *list = n->deferred, *rev = NULL;
    n->deferred = NULL;
    while (list) {
        deferred_reply *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    for (deferred_reply *d = rev; rc == SQLITE_OK && d; d = d->next) {
        if (rpc_expired(&d->meta)) continue;
        correlator_set(d->correlator); /* the reply carries its request's id */
        if (rpc_reply(n->producer, &d->meta, d->status, d->content_type, d->body, d->body_len,
                      d->retry_after_s) != 0)
            log_warn("cannot produce the reply for %s", d->correlation_id);
    }
    correlator_clear();
    deferred_free(rev);
    return rc == SQLITE_OK ? 0 : -1;
}

void notifier_batch_rollback(void *state) {
    notifier *n = state;
    store_batch_rollback(n->db);
    n->in_batch = 0;
    deferred_free(n->deferred);
    n->deferred = NULL;
}
