/* kafka_produce_wait (kafka.h): produce one message and wait for its
 * delivery report, for the few places that must know a message is in the
 * log before they go on (purchase-executor's cache invalidation). */
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

/* Shared by the waiter and the delivery callback; the last one frees, so
 * a waiter that gave up leaves it to a report that comes later. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, refs;
    rd_kafka_resp_err_t err;
} delivery_wait;

static void delivery_wait_release(delivery_wait *w) {
    pthread_mutex_lock(&w->mu);
    int last = --w->refs == 0;
    pthread_mutex_unlock(&w->mu);
    if (last) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
    }
}

static void on_delivered(void *arg, rd_kafka_resp_err_t err) {
    delivery_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->err = err;
    pthread_mutex_unlock(&w->mu);
    /* After unlocking (our reference keeps w alive): woken under the lock,
     * the waiter would only block again on it. */
    pthread_cond_signal(&w->cv);
    delivery_wait_release(w);
}

kafka_wait_result kafka_produce_wait_headers(kafka_producer *p, const char *topic,
                                             int32_t partition, const void *key, size_t key_len,
                                             const void *value, size_t value_len,
                                             rd_kafka_headers_t *headers, long timeout_ms,
                                             rd_kafka_resp_err_t *err) {
    if (err) *err = RD_KAFKA_RESP_ERR_NO_ERROR;
    delivery_wait *w = calloc(1, sizeof *w);
    if (!w) {
        if (headers) rd_kafka_headers_destroy(headers);
        return KAFKA_WAIT_FAILED;
    }
    pthread_mutex_init(&w->mu, NULL);
    clock_cond_init(&w->cv);
    w->refs = 2; /* the waiter and the delivery callback */
    if (kafka_produce_headers_cb(p, topic, partition, key, key_len, value, value_len, headers,
                                 on_delivered, w) != 0) {
        w->refs = 1; /* the callback will not run */
        delivery_wait_release(w);
        return KAFKA_WAIT_FAILED;
    }
    struct timespec until;
    clock_deadline_in(&until, timeout_ms);
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT) break;
    int done = w->done;
    rd_kafka_resp_err_t e = w->err;
    pthread_mutex_unlock(&w->mu);
    delivery_wait_release(w);
    if (!done) return KAFKA_WAIT_TIMED_OUT;
    if (err) *err = e;
    return e ? KAFKA_WAIT_FAILED : KAFKA_WAIT_DELIVERED;
}

kafka_wait_result kafka_produce_wait(kafka_producer *p, const char *topic, int32_t partition,
                                     const void *key, size_t key_len, const void *value,
                                     size_t value_len, long timeout_ms, rd_kafka_resp_err_t *err) {
    return kafka_produce_wait_headers(p, topic, partition, key, key_len, value, value_len, NULL,
                                      timeout_ms, err);
}
