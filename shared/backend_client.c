/* See backend_client.h. Every value is percent-encoded; the subscriber id
 * is never logged in full. */
#include "shared/backend_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int backend_get(http_client *c, const backend_request *req, http_result *out) {
    const char *names[] = {"customerIdType", "channelId", "serviceProviderId", "lang", "transId",
                           "dealerCode"};
    const char *values[] = {req->customer_id_type, req->channel_id, req->service_provider,
                            req->lang, req->trans_id, req->dealer_code};
    char *id = http_escape(req->customer_id);
    char url[2048];
    int n = snprintf(url, sizeof url, "%s/%s/%s", req->op->backend_url, req->resource,
                     id ? id : "");
    free(id);
    char sep = '?';
    for (size_t i = 0; i < sizeof names / sizeof names[0] && n > 0 && (size_t)n < sizeof url; i++) {
        if (!values[i] || !*values[i]) continue;
        char *v = http_escape(values[i]);
        n += snprintf(url + n, sizeof url - (size_t)n, "%c%s=%s", sep, names[i], v ? v : "");
        free(v);
        sep = '&';
    }
    if (n < 0 || (size_t)n >= sizeof url) {
        memset(out, 0, sizeof *out);
        snprintf(out->error, sizeof out->error, "backend URL too long");
        return -1;
    }
    const char *const headers[] = {"Accept: application/json", NULL};
    return http_get(c, url, headers, req->timeout_ms, out);
}
