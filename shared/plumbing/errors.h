/* The ErrorDocument causes of the standard API and their HTTP status. One
 * table, used by every service, and mirrored in the README. */
#ifndef MILLOM_ERRORS_H
#define MILLOM_ERRORS_H

#include <jansson.h>

#define CAUSE_UNSPECIFIED "ERROR_CAUSE_UNSPECIFIED"
#define CAUSE_INVALID_NUMBER "INVALID_NUMBER"
#define CAUSE_BAD_REQUEST "BAD_REQUEST"
#define CAUSE_USER_ROAMING "USER_ROAMING"
#define CAUSE_USER_OPT_OUT "USER_OPT_OUT"
#define CAUSE_TOO_MANY_REQUESTS "TOO_MANY_REQUESTS"
#define CAUSE_SERVICE_UNAVAILABLE "SERVICE_UNAVAILABLE"
#define CAUSE_PURCHASE_CONFLICT "PURCHASE_CONFLICT"
#define CAUSE_INSUFFICIENT_FUNDS "INSUFFICIENT_FUNDS"
#define CAUSE_NOT_ALLOWED "NOT_ALLOWED"
#define CAUSE_BAD_CPID "BAD_CPID"
#define CAUSE_UNAUTHORIZED "UNAUTHORIZED"
#define CAUSE_PAYLOAD_TOO_LARGE "PAYLOAD_TOO_LARGE"
#define CAUSE_NOT_FOUND "NOT_FOUND"
#define CAUSE_METHOD_NOT_ALLOWED "METHOD_NOT_ALLOWED"
/* A body that is not application/json where JSON is expected (415). */
#define CAUSE_UNSUPPORTED_MEDIA_TYPE "UNSUPPORTED_MEDIA_TYPE"
/* A Host this server does not answer for (421, RFC 9110 15.5.20). */
#define CAUSE_MISDIRECTED_REQUEST "MISDIRECTED_REQUEST"

/* HTTP status for a cause (500 for unknown causes). */
int error_status(const char *cause);
/* Seconds for Retry-After for a cause, 0 when it carries none. */
int error_retry_after(const char *cause);
/* {"errorMessage": message, "cause": cause}. Caller owns the result. */
json_t *error_document(const char *cause, const char *message);
/* The same as a malloc'd JSON string. */
char *error_document_text(const char *cause, const char *message);

#endif
