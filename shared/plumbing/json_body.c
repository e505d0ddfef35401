/* See json_body.h. */
#include "shared/plumbing/json_body.h"

#include <stdio.h>

json_t *json_body_object(const char *body, size_t len, char *msg, size_t msglen) {
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", body ? len : 0, 0, &jerr);
    if (j && json_is_object(j)) return j;
    snprintf(msg, msglen, "body must be a JSON object%s%.80s", j ? "" : ": ", j ? "" : jerr.text);
    json_decref(j);
    return NULL;
}
