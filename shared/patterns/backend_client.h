/* Calls to an operator's backend-integration API
 * (millom-backend-integration.yaml): GET /balance and GET /offers. */
#ifndef MILLOM_BACKEND_CLIENT_H
#define MILLOM_BACKEND_CLIENT_H

#include "shared/contracts/config.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/http_client.h"

typedef struct {
    const tenant_operator *op;
    const char *resource; /* "balance" or "offers" */
    const char *customer_id;
    const char *customer_id_type; /* "MSISDN" or "OPET" */
    const char *channel_id;
    const char *service_provider;
    const char *lang;
    const char *trans_id;
    const char *dealer_code; /* optional extension parameter */
    /* /offers filters (optional, the spec's names): offerType, maxPrice,
     * numberofOffers; NULL or "" leaves one out. */
    const char *offer_type;
    const char *max_price;
    const char *number_of_offers;
    long timeout_ms; /* for the whole of backend_get, a token fetch included */
    /* 1: a token was refused for this call already (offer-resolver's loop
     * got the 401): backend_get fetches a fresh one and does not retry
     * again on a second 401. */
    int token_refused;
} backend_request;

/* Room for a backend URL. */
#define BACKEND_URL_MAX 2048

/* Room for the x-correlator header line. */
#define BACKEND_CORRELATOR_LINE (sizeof CORRELATOR_HEADER + 2 + CORRELATOR_SIZE)

/* The headers of a backend GET, NULL-terminated in out: Accept, the
 * calling thread's request id as x-correlator (written into line; left
 * out when there is none), so the operator's logs can be matched with
 * Millom's, and auth when not NULL. */
void backend_headers(const char *auth, char line[BACKEND_CORRELATOR_LINE], const char *out[4]);

/* Writes the URL of req's GET (every value percent-encoded) into url.
 * 0, or -1 when it does not fit in len or out of memory. */
int backend_url(const backend_request *req, char *url, size_t len);

/* Builds the URL and performs the GET. Returns http_get's result. With
 * backendAuth it sends a bearer token and, on a 401, drops the token and
 * retries once with a fresh one (a token refused again is dropped too);
 * when no token can be had, -1 with status 0 and the reason in
 * out->error (nothing was sent). */
int backend_get(http_client *c, const backend_request *req, http_result *out);

/* Outbound OAuth for the operator's backend: the operator entry's optional
 * "backendAuth": {"tokenUrl", "clientId", "clientSecret" or
 * "clientSecretEnv" (name of an environment variable holding it), "scope"}
 * (shared/patterns/oauth_client.h). 0 with hdr "" without backendAuth; 1 with hdr
 * "Authorization: Bearer ..."; -1 with a message (no secret) in hdr. */
int backend_auth_header(const tenant_operator *op, http_client *hc, char *hdr, size_t len);
/* The same without ever waiting, for a thread that drives many calls
 * (offer-resolver's backend loop): 0 with hdr "" without backendAuth, 1
 * with the cached token's header (*refresh_due 1 when it is within its
 * refresh margin: still valid, but someone should fetch the next one);
 * -1 when a token has to be fetched first (or backendAuth is unusable):
 * the caller then makes the call with backend_get on a thread that may
 * wait. */
int backend_auth_cached(const tenant_operator *op, char *hdr, size_t len, int *refresh_due);
/* After a 401 to a request sent with hdr: drops that token (if still
 * current), so the next backend_auth_header fetches a fresh one. */
void backend_auth_rejected(const tenant_operator *op, const char *hdr);
/* Room for an Authorization header with a JWT. */
#define BACKEND_AUTH_HEADER_MAX 4096

#endif
