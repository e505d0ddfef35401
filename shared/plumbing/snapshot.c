/* See snapshot.h. A version carries its own reference count: one for the
 * cell while it is current, one per pin. The lock only makes "load the
 * current pointer, then count the pin" one step, so that a publish cannot
 * drop the cell's reference (and free the version) between the two. */
#include "shared/plumbing/snapshot.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct snapshot_version {
    atomic_long refs;
    void *value;
    void (*free_fn)(void *);
};

struct snapshot_cell {
    pthread_mutex_t mu;
    snapshot_version *current; /* under mu */
};

static snapshot_version *version_new(void *value, void (*free_fn)(void *)) {
    snapshot_version *v = malloc(sizeof *v);
    if (!v) return NULL;
    atomic_init(&v->refs, 1); /* the cell's */
    v->value = value;
    v->free_fn = free_fn;
    return v;
}

snapshot_cell *snapshot_cell_new(void *first, void (*free_fn)(void *)) {
    assert(first);
    snapshot_cell *c = malloc(sizeof *c);
    snapshot_version *v = c ? version_new(first, free_fn) : NULL;
    if (!v) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->current = v;
    return c;
}

void snapshot_cell_free(snapshot_cell *c) {
    if (!c) return;
    snapshot_unpin(c->current);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

snapshot_version *snapshot_pin(snapshot_cell *c) {
    pthread_mutex_lock(&c->mu);
    snapshot_version *v = c->current;
    atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&c->mu);
    return v;
}

snapshot_version *snapshot_pin_again(snapshot_version *v) {
    atomic_fetch_add(&v->refs, 1); /* v cannot reach 0 meanwhile: the caller's pin */
    return v;
}

void *snapshot_value(const snapshot_version *v) { return v->value; }

void snapshot_unpin(snapshot_version *v) {
    if (!v) return;
    /* Sequentially consistent (acquire and release): every reader's last
     * use of the version happens before the free by whoever counts it
     * down to zero. */
    if (atomic_fetch_sub(&v->refs, 1) != 1) return;
    if (v->free_fn) v->free_fn(v->value);
    free(v);
}

int snapshot_publish(snapshot_cell *c, void *value, void (*free_fn)(void *)) {
    assert(value);
    snapshot_version *v = version_new(value, free_fn);
    if (!v) return -1;
    pthread_mutex_lock(&c->mu);
    snapshot_version *old = c->current;
    c->current = v;
    pthread_mutex_unlock(&c->mu);
    snapshot_unpin(old); /* the cell's reference; readers keep theirs */
    return 0;
}
