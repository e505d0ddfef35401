/* Calls in flight to each operator's backend: at most the operator's
 * "maxInFlight" (tenants file, default 32) at once, across every thread of
 * purchase-executor (its lanes and the retry thread). A thread that finds
 * them all taken waits for one (a counting semaphore per operator); every
 * call ends within its timeout, so the wait is bounded. Thread-safe. */
#ifndef PURCHASE_EXECUTOR_OPERATOR_SLOTS_H
#define PURCHASE_EXECUTOR_OPERATOR_SLOTS_H

#include "shared/contracts/config.h"

typedef struct operator_slots operator_slots;

/* One semaphore per operator of t (which must outlive it). NULL: out of
 * memory. */
operator_slots *operator_slots_new(const tenants *t);
void operator_slots_free(operator_slots *s);
/* Takes a slot for op, waiting while none is free; op not among the
 * tenants' (or s NULL): no limit. Every take is followed by one give. */
void operator_slot_take(operator_slots *s, const tenant_operator *op);
void operator_slot_give(operator_slots *s, const tenant_operator *op);

#endif
