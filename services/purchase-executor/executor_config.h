/* purchase-executor's settings: a plain struct that every layer may read,
 * filled once at start by executor_config_load (executor.c). */
#ifndef PURCHASE_EXECUTOR_EXECUTOR_CONFIG_H
#define PURCHASE_EXECUTOR_EXECUTOR_CONFIG_H

#include "purchase_outcome.h"

typedef struct {
    long timer_s;               /* MILLOM_PURCHASE_TIMER_S, 60; 0 disables */
    long activate_timeout_ms;   /* MILLOM_ACTIVATE_TIMEOUT_MS, 5000 */
    long backend_timeout_ms;    /* MILLOM_BACKEND_TIMEOUT_MS, 2000 (GET /offers) */
    long max_attempts;          /* MILLOM_ACTIVATE_MAX_ATTEMPTS, 20 */
    long invalidate_timeout_ms; /* MILLOM_INVALIDATE_TIMEOUT_MS, 1000 */
    char callback_base[256];    /* MILLOM_CALLBACK_BASE_URL, http://127.0.0.1:8080 */
    char channel_id[65];        /* MILLOM_CHANNEL_ID, "App" */
    recheck_policy recheck;     /* MILLOM_PENDING_RECHECK_S (60),
                                     MILLOM_PENDING_RECHECK_MAX_S (600) */
    long pending_max_age_s;     /* MILLOM_PENDING_MAX_AGE_S, 3600: overdue after */
    long lanes;                 /* MILLOM_EXECUTOR_LANES, 16: commands handled at once */
    long db_connections;        /* MILLOM_EXECUTOR_DB_CONNECTIONS, 4: flow.db_pool */
} executor_config;

#endif
