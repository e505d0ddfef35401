/* Request/reply over Kafka: see rpc.h. */
#include "shared/plumbing/settings.h"
#include "shared/patterns/rpc.h"
#include "shared/plumbing/text.h"
#include "shared/plumbing/topics.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/correlator.h"
#include "shared/plumbing/crypto.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

#define RPC_BUCKETS 65536u /* power of two */
#define RPC_DEFAULT_MAX_PENDING 65536
/* The longest the reader waits for a reply when no call is due sooner:
 * an idle client wakes once a second, not every few milliseconds. */
#define RPC_DEFAULT_POLL_MS 1000
#define RPC_WATERMARK_TIMEOUT_MS 10000

typedef struct rpc_call {
    char id[37];
    char correlator[CORRELATOR_SIZE]; /* the caller's request id, for the callback */
    rpc_reply_fn fn;
    void *arg;
    int64_t deadline; /* mono_ms() */
    size_t heap_idx;
    struct rpc_call *next; /* bucket chain */
} rpc_call;

struct rpc_client {
    kafka_producer *producer;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* rk's consumer queue: yielded to wake the reader */
    int32_t partition;
    int poll_ms;
    size_t max_pending;

    pthread_mutex_t mu;
    rpc_call **buckets; /* by correlation id */
    rpc_call **heap;    /* min-heap by deadline */
    size_t n;
    int64_t reader_wakes_at; /* mono_ms() the reader's wait ends by */

    pthread_t thread;
    int has_thread;
    atomic_int stop;
    atomic_int ready;
    atomic_int closed; /* rpc_client_close ran */
};

/* ------------------------------------------------------ table and heap */

static uint32_t hash_id(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h & (RPC_BUCKETS - 1);
}

static rpc_call **bucket_slot(rpc_client *c, const char *id) {
    rpc_call **pp = &c->buckets[hash_id(id)];
    while (*pp && strcmp((*pp)->id, id) != 0) pp = &(*pp)->next;
    return pp;
}

static void heap_swap(rpc_client *c, size_t a, size_t b) {
    rpc_call *t = c->heap[a];
    c->heap[a] = c->heap[b];
    c->heap[b] = t;
    c->heap[a]->heap_idx = a;
    c->heap[b]->heap_idx = b;
}

static void heap_up(rpc_client *c, size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (c->heap[p]->deadline <= c->heap[i]->deadline) break;
        heap_swap(c, p, i);
        i = p;
    }
}

static void heap_down(rpc_client *c, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->n && c->heap[l]->deadline < c->heap[m]->deadline) m = l;
        if (r < c->n && c->heap[r]->deadline < c->heap[m]->deadline) m = r;
        if (m == i) return;
        heap_swap(c, i, m);
        i = m;
    }
}

/* Removes a call from both structures (lock held). */
static void unlink_call(rpc_client *c, rpc_call *call) {
    rpc_call **pp = bucket_slot(c, call->id);
    if (*pp == call) *pp = call->next;
    size_t i = call->heap_idx;
    c->n--;
    if (i != c->n) {
        c->heap[i] = c->heap[c->n];
        c->heap[i]->heap_idx = i;
        heap_down(c, i);
        heap_up(c, i);
    }
    call->next = NULL;
}

/* ---------------------------------------------------------------- client */

rpc_client *rpc_client_new(kafka_producer *producer, int32_t reply_partition, char *err,
                           size_t errlen) {
    if (reply_partition < 0) {
        text_printf(err, errlen, "rpc: reply partition must be >= 0");
        return NULL;
    }
    rpc_client *c = calloc(1, sizeof *c);
    if (!c) {
        text_printf(err, errlen, "out of memory");
        return NULL;
    }
    c->producer = producer;
    c->partition = reply_partition;
    settings_reader set = SETTINGS_INIT;
    c->poll_ms = (int)settings_ms(&set, "MILLOM_RPC_POLL_MS", RPC_DEFAULT_POLL_MS, 1, 60000);
    c->max_pending =
        (size_t)settings_long(&set, "MILLOM_RPC_MAX_PENDING", RPC_DEFAULT_MAX_PENDING, 1, 1L << 24);
    if (!settings_ok(&set)) free(c);
    settings_exit_on_error(&set);
    c->buckets = calloc(RPC_BUCKETS, sizeof *c->buckets);
    c->heap = calloc(c->max_pending, sizeof *c->heap);
    if (!c->buckets || !c->heap) {
        text_printf(err, errlen, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&c->mu, NULL);

    char id[37], group[48], client_id[64];
    crypto_uuid(id);
    snprintf(group, sizeof group, "rpc-%s", id);
    snprintf(client_id, sizeof client_id, "rpc-replies-%d", (int)reply_partition);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* group.id only because rd_kafka_consumer_poll needs one: this consumer
     * is assigned statically and never subscribes or commits. */
    if (kafka_conf_common(conf, client_id, err, errlen) ||
        rd_kafka_conf_set(conf, "group.id", group, NULL, 0) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", NULL, 0) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "false", NULL, 0) != RD_KAFKA_CONF_OK ||
        /* Past the end of the partition (a restarted devbroker starts with
         * empty topics): read the new partition from its beginning, as
         * replies for this instance may already be there; "latest" would
         * skip them and their requests would time out. */
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0) != RD_KAFKA_CONF_OK) {
        if (err && !err[0]) text_printf(err, errlen, "rpc: kafka config rejected");
        rd_kafka_conf_destroy(conf);
        pthread_mutex_destroy(&c->mu);
        goto fail;
    }
    char e[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!c->rk) {
        text_printf(err, errlen, "rpc consumer: %s", e);
        rd_kafka_conf_destroy(conf);
        pthread_mutex_destroy(&c->mu);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk);
    c->queue = rd_kafka_queue_get_consumer(c->rk);
    return c;
fail:
    free(c->buckets);
    free(c->heap);
    free(c);
    return NULL;
}

/* Calls every call in `list` (chained by next) with `reply`, then frees them. */
static void complete(rpc_call *list, const Millom__V1__Reply *reply) {
    while (list) {
        rpc_call *next = list->next;
        /* The callback works for the request that made the call (its log
         * lines carry that request's id), whether a reply came or not. */
        correlator_set(list->correlator);
        list->fn(list->arg, reply);
        correlator_clear();
        free(list);
        list = next;
    }
}

static void sweep_expired(rpc_client *c) {
    int64_t now = mono_ms();
    rpc_call *expired = NULL, **tail = &expired;
    pthread_mutex_lock(&c->mu);
    while (c->n > 0 && c->heap[0]->deadline <= now) {
        rpc_call *call = c->heap[0];
        unlink_call(c, call);
        *tail = call;
        tail = &call->next;
    }
    pthread_mutex_unlock(&c->mu);
    complete(expired, NULL);
}

static void handle_reply(rpc_client *c, const rd_kafka_message_t *m) {
    Millom__V1__Reply *reply = millom__v1__reply__unpack(NULL, m->len, (const uint8_t *)m->payload);
    if (!reply) {
        log_warn("rpc: skipping undecodable reply at %s [%d] @%lld (%zu bytes)",
                 rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset, m->len);
        return;
    }
    rpc_call *call = NULL;
    if (reply->correlation_id && reply->correlation_id[0]) {
        pthread_mutex_lock(&c->mu);
        rpc_call **pp = bucket_slot(c, reply->correlation_id);
        call = *pp;
        if (call) unlink_call(c, call);
        pthread_mutex_unlock(&c->mu);
    }
    if (call) {
        complete(call, reply);
    } else {
        log_debug("rpc: reply for unknown or expired call %s",
                  reply->correlation_id ? reply->correlation_id : "");
    }
    millom__v1__reply__free_unpacked(reply, NULL);
}

/* How long the reader may wait for a reply: until the earliest call's
 * deadline, at most poll_ms. rpc_call_begin wakes it for a call due
 * sooner. */
static int reader_wait_ms(rpc_client *c) {
    int64_t now = mono_ms(), wait = c->poll_ms;
    pthread_mutex_lock(&c->mu);
    if (c->n > 0 && c->heap[0]->deadline - now < wait) wait = c->heap[0]->deadline - now;
    if (wait < 0) wait = 0;
    c->reader_wakes_at = now + wait;
    pthread_mutex_unlock(&c->mu);
    return (int)wait;
}

static void *reader_thread(void *arg) {
    service_thread_name("rpc-replies");
    rpc_client *c = arg;
    while (!atomic_load(&c->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, reader_wait_ms(c));
        if (m) {
            if (!m->err)
                handle_reply(c, m);
            else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("rpc consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
        }
        sweep_expired(c);
    }
    return NULL;
}

int rpc_client_start(rpc_client *c) {
    if (c->has_thread) return -1;
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c->rk, TOPIC_REPLIES, c->partition,
                                                             &lo, &hi, RPC_WATERMARK_TIMEOUT_MS);
    if (e) {
        log_error("rpc: cannot read the end of %s [%d]: %s", TOPIC_REPLIES, (int)c->partition,
                  rd_kafka_err2str(e));
        return -1;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC_REPLIES, c->partition)->offset = hi;
    e = rd_kafka_assign(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        log_error("rpc: assign %s [%d]: %s", TOPIC_REPLIES, (int)c->partition, rd_kafka_err2str(e));
        return -1;
    }
    int rc = pthread_create(&c->thread, NULL, reader_thread, c);
    if (rc) {
        log_error("rpc reader thread: %s", strerror(rc));
        rd_kafka_assign(c->rk, NULL);
        return -1;
    }
    c->has_thread = 1;
    atomic_store(&c->ready, 1);
    log_info("rpc: reading replies from %s [%d] at offset %lld", TOPIC_REPLIES, (int)c->partition,
             (long long)hi);
    return 0;
}

int rpc_client_ready(const rpc_client *c) { return c && atomic_load(&c->ready); }

int rpc_call_begin(rpc_client *c, int timeout_ms, rpc_reply_fn fn, void *arg,
                   Millom__V1__RequestMeta *meta) {
    if (!fn || !meta || timeout_ms < 0) return -1;
    rpc_call *call = calloc(1, sizeof *call);
    if (!call) return -1;
    call->fn = fn;
    call->arg = arg;
    call->deadline = mono_ms() + timeout_ms;
    correlator_copy_current(call->correlator);

    pthread_mutex_lock(&c->mu);
    if (c->n >= c->max_pending || atomic_load(&c->stop)) {
        pthread_mutex_unlock(&c->mu);
        free(call);
        return -1;
    }
    rpc_call **slot;
    do { /* a v4 uuid colliding is practically impossible, but stay unique */
        crypto_uuid(call->id);
        slot = bucket_slot(c, call->id);
    } while (*slot);
    *slot = call;
    call->heap_idx = c->n;
    c->heap[c->n++] = call;
    heap_up(c, call->heap_idx);
    /* Due before the reader looks again (a shorter timeout than the calls
     * it waits for): it must look sooner. */
    int wake_reader = call->deadline < c->reader_wakes_at;
    pthread_mutex_unlock(&c->mu);
    if (wake_reader) rd_kafka_queue_yield(c->queue);

    millom__v1__request_meta__init(meta);
    meta->correlation_id = call->id;
    meta->reply_partition = c->partition;
    meta->deadline_ms = now_ms() + timeout_ms;
    return 0;
}

void rpc_call_cancel(rpc_client *c, const char *correlation_id) {
    if (!correlation_id) return;
    pthread_mutex_lock(&c->mu);
    rpc_call *call = *bucket_slot(c, correlation_id);
    if (call) unlink_call(c, call);
    pthread_mutex_unlock(&c->mu);
    free(call);
}

size_t rpc_pending_count(rpc_client *c) {
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void rpc_client_close(rpc_client *c) {
    if (!c || atomic_exchange(&c->closed, 1)) return;
    atomic_store(&c->stop, 1); /* rpc_call_begin refuses from now on */
    rd_kafka_queue_yield(c->queue);
    if (c->has_thread) pthread_join(c->thread, NULL);
    atomic_store(&c->ready, 0);

    rpc_call *all = NULL;
    pthread_mutex_lock(&c->mu);
    while (c->n > 0) {
        rpc_call *call = c->heap[c->n - 1];
        unlink_call(c, call);
        call->next = all;
        all = call;
    }
    pthread_mutex_unlock(&c->mu);
    complete(all, NULL);
}

void rpc_client_free(rpc_client *c) {
    if (!c) return;
    rpc_client_close(c);
    rd_kafka_queue_destroy(c->queue);
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c->heap);
    free(c);
}

/* ------------------------------------------------------------- responder */

int rpc_expired(const Millom__V1__RequestMeta *meta) {
    return meta && meta->deadline_ms > 0 && now_ms() > meta->deadline_ms;
}

int rpc_reply(kafka_producer *p, const Millom__V1__RequestMeta *meta, int http_status,
              const char *content_type, const char *body, size_t body_len, int retry_after_s) {
    if (!p || !meta || !meta->correlation_id || !meta->correlation_id[0] ||
        meta->reply_partition < 0)
        return -1;
    Millom__V1__Reply reply = MILLOM__V1__REPLY__INIT;
    reply.correlation_id = meta->correlation_id;
    reply.http_status = http_status;
    reply.content_type = (char *)(content_type ? content_type : "");
    reply.body.data = (uint8_t *)body;
    reply.body.len = body ? body_len : 0;
    reply.retry_after_s = retry_after_s;

    size_t len = millom__v1__reply__get_packed_size(&reply);
    uint8_t stackbuf[4096];
    uint8_t *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!buf) return -1;
    millom__v1__reply__pack(&reply, buf);
    const char *topic =
        meta->reply_topic && meta->reply_topic[0] ? meta->reply_topic : TOPIC_REPLIES;
    int rc = kafka_produce(p, topic, meta->reply_partition, meta->correlation_id,
                           strlen(meta->correlation_id), buf, len, NULL, 0);
    if (buf != stackbuf) free(buf);
    return rc;
}
