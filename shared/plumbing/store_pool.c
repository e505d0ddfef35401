/* See store_pool.h. The free connections are a stack under one mutex:
 * the one given back last is taken first, so under light load the same
 * connection, with its pages and statements warm, serves everyone. */
#include "shared/plumbing/store_pool.h"
#include "shared/plumbing/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct store_pool {
    pthread_mutex_t lock;
    pthread_cond_t given; /* a connection came back */
    int waiting;          /* threads waiting on given */
    sqlite3 **all;        /* every connection, for close */
    sqlite3 **free_stack; /* the free ones: free_stack[0..n_free) */
    int n, n_free;
};

store_pool *store_pool_open(const char *path, int n,
                            sqlite3 *(*open_db)(const char *path, char *err, size_t errlen),
                            char *err, size_t errlen) {
    if (n < 1) {
        snprintf(err, errlen, "a store pool needs at least one connection");
        return NULL;
    }
    store_pool *p = calloc(1, sizeof *p);
    if (!p) goto oom;
    p->all = calloc((size_t)n, sizeof *p->all);
    p->free_stack = calloc((size_t)n, sizeof *p->free_stack);
    if (!p->all || !p->free_stack) goto oom;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->given, NULL);
    for (int i = 0; i < n; i++) {
        sqlite3 *db = open_db(path, err, errlen);
        if (!db) {
            store_pool_close(p);
            return NULL;
        }
        p->all[p->n++] = db;
        p->free_stack[p->n_free++] = db;
    }
    return p;
oom:
    if (p) {
        free(p->all);
        free(p->free_stack);
        free(p);
    }
    snprintf(err, errlen, "out of memory");
    return NULL;
}

sqlite3 *store_pool_take(store_pool *p) {
    pthread_mutex_lock(&p->lock);
    while (p->n_free == 0) {
        p->waiting++;
        pthread_cond_wait(&p->given, &p->lock);
        p->waiting--;
    }
    sqlite3 *db = p->free_stack[--p->n_free];
    pthread_mutex_unlock(&p->lock);
    return db;
}

void store_pool_give(store_pool *p, sqlite3 *db) {
    pthread_mutex_lock(&p->lock);
    p->free_stack[p->n_free++] = db;
    int wake = p->waiting > 0;
    pthread_mutex_unlock(&p->lock);
    /* After unlocking: the woken thread does not block again on the lock. */
    if (wake) pthread_cond_signal(&p->given);
}

int store_pool_size(const store_pool *p) { return p->n; }

void store_pool_close(store_pool *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) store_close(p->all[i]);
    pthread_cond_destroy(&p->given);
    pthread_mutex_destroy(&p->lock);
    free(p->all);
    free(p->free_stack);
    free(p);
}
