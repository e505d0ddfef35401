/* rpc_call_wait (rpc.h): one request/reply call that blocks its thread,
 * for a service asking another one on a worker thread (notifier's offers
 * for a rich notification). api-edge never blocks: it uses the callback
 * form. */
#include "shared/patterns/rpc.h"
#include "shared/plumbing/clock.h"
#include "shared/plumbing/text.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One call. Owned by the waiter unless it gave up waiting first
 * (abandoned): then the reply callback, which always runs once, frees it. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, abandoned;
    int status; /* 0: no reply (deadline passed, shutdown) */
    char *body;
} sync_call;

static void sync_call_free(sync_call *c) {
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->body);
    free(c);
}

static void on_reply(void *arg, const Millom__V1__Reply *reply) {
    sync_call *c = arg;
    pthread_mutex_lock(&c->mu);
    if (reply) {
        c->status = reply->http_status;
        c->body = malloc(reply->body.len + 1);
        if (c->body) {
            if (reply->body.len) memcpy(c->body, reply->body.data, reply->body.len);
            c->body[reply->body.len] = '\0';
        }
    }
    c->done = 1;
    int abandoned = c->abandoned;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (abandoned) sync_call_free(c);
}

int rpc_call_wait(rpc_client *rpc, kafka_producer *producer, const char *topic, const char *key,
                  ProtobufCMessage *request, Millom__V1__RequestMeta *meta, int timeout_ms,
                  int *status, char **body, char *err, size_t errlen) {
    *status = 0;
    *body = NULL;
    sync_call *c = calloc(1, sizeof *c);
    if (!c) {
        text_printf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&c->mu, NULL);
    clock_cond_init(&c->cv);
    if (rpc_call_begin(rpc, timeout_ms, on_reply, c, meta) != 0) {
        text_printf(err, errlen, "too many calls in flight");
        sync_call_free(c);
        return -1;
    }
    /* The request carries meta, filled just now: pack it only here. */
    size_t len = protobuf_c_message_get_packed_size(request);
    uint8_t *buf = malloc(len ? len : 1);
    int rc = -1;
    if (buf) {
        protobuf_c_message_pack(request, buf);
        rc = kafka_produce(producer, topic, -1, key, strlen(key), buf, len, NULL, 0);
        free(buf);
    }
    if (rc != 0) {
        rpc_call_cancel(rpc, meta->correlation_id); /* the callback will not run */
        text_printf(err, errlen, "cannot produce to %s", topic);
        sync_call_free(c);
        return -1;
    }
    /* The rpc client answers every call by its deadline (NULL reply); the
     * extra second only guards against a stalled reader thread. */
    struct timespec until;
    clock_deadline_in(&until, (long)timeout_ms + 1000);
    pthread_mutex_lock(&c->mu);
    while (!c->done)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT) break;
    if (!c->done) {
        c->abandoned = 1; /* on_reply frees it when it finally runs */
        pthread_mutex_unlock(&c->mu);
        return 0; /* *status 0: no answer */
    }
    pthread_mutex_unlock(&c->mu);
    *status = c->status;
    *body = c->body;
    c->body = NULL;
    sync_call_free(c);
    return 0;
}
