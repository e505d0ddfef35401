/* ErrorDocument causes and their HTTP status: see errors.h. */
#include "shared/plumbing/errors.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *cause;
    int status;
    int retry_after;
} error_table[] = {
    {CAUSE_UNSPECIFIED, 500, 0},
    {CAUSE_INVALID_NUMBER, 404, 0},
    {CAUSE_BAD_REQUEST, 400, 0},
    {CAUSE_USER_ROAMING, 403, 0},
    {CAUSE_USER_OPT_OUT, 403, 0},
    {CAUSE_TOO_MANY_REQUESTS, 429, 1},
    {CAUSE_SERVICE_UNAVAILABLE, 503, 1},
    {CAUSE_PURCHASE_CONFLICT, 409, 0},
    {CAUSE_INSUFFICIENT_FUNDS, 402, 0},
    {CAUSE_NOT_ALLOWED, 403, 0},
    {CAUSE_BAD_CPID, 410, 0},
    {CAUSE_UNAUTHORIZED, 401, 0},
    {CAUSE_PAYLOAD_TOO_LARGE, 413, 0},
    {CAUSE_NOT_FOUND, 404, 0},
    {CAUSE_METHOD_NOT_ALLOWED, 405, 0},
    {CAUSE_UNSUPPORTED_MEDIA_TYPE, 415, 0},
    {CAUSE_MISDIRECTED_REQUEST, 421, 0},
};

static int find_cause(const char *cause) {
    if (cause == NULL) return -1;
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++) {
        if (strcmp(error_table[i].cause, cause) == 0) return (int)i;
    }
    return -1;
}

int error_status(const char *cause) {
    int i = find_cause(cause);
    return i < 0 ? 500 : error_table[i].status;
}

int error_retry_after(const char *cause) {
    int i = find_cause(cause);
    return i < 0 ? 0 : error_table[i].retry_after;
}

/* A JSON string for text; bytes that are not valid UTF-8 become '?' so an
 * error message built from hostile input still produces a document. */
static json_t *safe_string(const char *text) {
    json_t *s = json_string(text);
    if (s != NULL) return s;
    char *copy = strdup(text);
    if (copy == NULL) return NULL;
    for (char *p = copy; *p != '\0'; p++) {
        if ((unsigned char)*p >= 0x80) *p = '?';
    }
    s = json_string(copy);
    free(copy);
    return s;
}

/* A NULL or empty cause is reported as ERROR_CAUSE_UNSPECIFIED; a NULL
 * message leaves errorMessage out. */
json_t *error_document(const char *cause, const char *message) {
    if (cause == NULL || cause[0] == '\0') cause = CAUSE_UNSPECIFIED;
    json_t *doc = json_object();
    if (doc == NULL) return NULL;
    if (message != NULL && json_object_set_new(doc, "errorMessage", safe_string(message)) != 0)
        goto fail;
    if (json_object_set_new(doc, "cause", safe_string(cause)) != 0) goto fail;
    return doc;
fail:
    json_decref(doc);
    return NULL;
}

char *error_document_text(const char *cause, const char *message) {
    json_t *doc = error_document(cause, message);
    if (doc == NULL) return NULL;
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}
