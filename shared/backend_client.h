/* Calls to an operator's backend-integration API
 * (millom-backend-integration.yaml): GET /balance and GET /offers. */
#ifndef MILLOM_BACKEND_CLIENT_H
#define MILLOM_BACKEND_CLIENT_H

#include "shared/config.h"
#include "shared/http_client.h"

typedef struct {
    const tenant_operator *op;
    const char *resource;          /* "balance" or "offers" */
    const char *customer_id;
    const char *customer_id_type;  /* "MSISDN" or "OPET" */
    const char *channel_id;
    const char *service_provider;
    const char *lang;
    const char *trans_id;
    const char *dealer_code;       /* optional extension parameter */
    long timeout_ms;
} backend_request;

/* Builds the URL and performs the GET. Returns http_get's result. */
int backend_get(http_client *c, const backend_request *req, http_result *out);

#endif
