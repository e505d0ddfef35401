/* The Top-up API's request (apis/topup/top-up.yaml, TopupRequest) and the
 * top-up id, as pure functions: routes_topup.c validates with them and
 * tests/unit drive them directly. */
#ifndef API_EDGE_REQUEST_TOPUP_H
#define API_EDGE_REQUEST_TOPUP_H

#include <stddef.h>

#define TOPUP_NAME_MAX 100     /* bytes of a requestor's or donor's name */
#define TOPUP_REFERENCE_MAX 64 /* characters of a partner reference */
#define TOPUP_ID_LEN 35        /* "tu-" and 32 hex digits */

typedef struct {
    char reference[TOPUP_REFERENCE_MAX + 1]; /* the partner reference */
    char requestor[16];                      /* E.164 digits, no '+' */
    char requestor_name[TOPUP_NAME_MAX + 1];
    char donor[16];
    char donor_name[TOPUP_NAME_MAX + 1];
} topup_request;

/* Parses {requestor: {userNumber: {msisdn}, name}, donor: {...},
 * partnerReference?} with the partner reference from the body or, when
 * reference_header is not NULL, the X-Partner-Reference header (both: they
 * must agree). msisdn: E.164 (shared/contracts/msisdn.h: '+' or "00"
 * optional, 8 to 15 digits); names 1 to TOPUP_NAME_MAX bytes of UTF-8
 * without control characters, not blank; the partner reference 1 to
 * TOPUP_REFERENCE_MAX of letters, digits, '-', '.', '_', ':'; requestor
 * and donor different numbers. 0, or -1 with a message naming the field. */
int topup_request_parse(const char *body, size_t len, const char *reference_header,
                        topup_request *out, char *msg, size_t msglen);

/* The id of the provider's request with that partner reference: the same
 * pair always gives the same id (the idempotency key, and the Kafka key
 * that brings every message about it to one purchase-executor), another
 * pair another. out has TOPUP_ID_LEN + 1 bytes. */
void topup_id_for(const char *provider, const char *reference, char *out);
/* 1 when id has topup_id_for's shape. */
int topup_id_valid(const char *id);

#endif
