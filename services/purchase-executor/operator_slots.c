/* See operator_slots.h. */
#include "operator_slots.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "shared/plumbing/metrics.h"

struct slot {
    const tenant_operator *op;
    int max, used;
    pthread_cond_t freed;
    metric *in_flight; /* gauge millom_operator_calls_in_flight{operator} */
};

struct operator_slots {
    pthread_mutex_t mu;
    struct slot *slot;
    size_t n;
};

operator_slots *operator_slots_new(const tenants *t) {
    operator_slots *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n = tenants_operator_count(t);
    s->slot = calloc(s->n ? s->n : 1, sizeof *s->slot);
    if (!s->slot) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    for (size_t i = 0; i < s->n; i++) {
        struct slot *sl = &s->slot[i];
        sl->op = tenants_operator_at(t, i);
        sl->max = sl->op->max_in_flight > 0 ? sl->op->max_in_flight : 1;
        pthread_cond_init(&sl->freed, NULL);
        char labels[160];
        snprintf(labels, sizeof labels, "operator=\"%s\"", sl->op->id);
        sl->in_flight = metric_gauge("millom_operator_calls_in_flight",
                                     "Calls to an operator's backend now running (at most its "
                                     "maxInFlight).",
                                     labels);
    }
    return s;
}

void operator_slots_free(operator_slots *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) pthread_cond_destroy(&s->slot[i].freed);
    pthread_mutex_destroy(&s->mu);
    free(s->slot);
    free(s);
}

static struct slot *slot_of(operator_slots *s, const tenant_operator *op) {
    for (size_t i = 0; s && op && i < s->n; i++)
        if (s->slot[i].op == op) return &s->slot[i];
    return NULL;
}

void operator_slot_take(operator_slots *s, const tenant_operator *op) {
    struct slot *sl = slot_of(s, op);
    if (!sl) return;
    pthread_mutex_lock(&s->mu);
    while (sl->used >= sl->max) pthread_cond_wait(&sl->freed, &s->mu);
    sl->used++;
    metric_set(sl->in_flight, sl->used);
    pthread_mutex_unlock(&s->mu);
}

void operator_slot_give(operator_slots *s, const tenant_operator *op) {
    struct slot *sl = slot_of(s, op);
    if (!sl) return;
    pthread_mutex_lock(&s->mu);
    if (sl->used > 0) sl->used--;
    metric_set(sl->in_flight, sl->used);
    pthread_cond_signal(&sl->freed);
    pthread_mutex_unlock(&s->mu);
}
