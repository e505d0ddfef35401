/* The operator backend's errorResponse (millom-backend-integration.yaml)
 * seen from Millom: which ErrorDocument cause each errorType becomes, and
 * how its messages are cleaned before they reach an SP. Used by every
 * service that calls an operator backend. */
#ifndef MILLOM_BACKEND_ERRORS_H
#define MILLOM_BACKEND_ERRORS_H

#include <stddef.h>

/* The cause for an errorType (matched ignoring case). Without a known
 * errorType the HTTP status decides: no answer (0), 5xx, 408 and 429 are
 * SERVICE_UNAVAILABLE (the operator is overloaded, not the SP over its
 * rate); a 404 without errorType is INVALID_NUMBER; anything else
 * ERROR_CAUSE_UNSPECIFIED. *message gets a static human-readable text.
 *
 * FORBIDDEN means roaming: the backend spec has no roaming errorType, and
 * for an otherwise valid, known, unbarred subscriber (barring has
 * USER_BARRED) roaming is the reason an operator forbids a sale. */
const char *backend_error_cause(const char *error_type, long http_status, const char **message);

/* 1 if error_type is one of the backend spec's errorType values (ignoring
 * case), else 0 (NULL included). The one list of them: the table above. */
int backend_error_type_known(const char *error_type);

/* Copies text with runs of 7+ digits masked (they may be an MSISDN): 12+
 * digits keep 4 at each end ("9245****0003"), shorter runs keep 2; control
 * characters become spaces; a cut never splits a UTF-8 character. Always
 * NUL-terminates when outlen > 0. */
void backend_mask_digits(const char *text, char *out, size_t outlen);

#endif
