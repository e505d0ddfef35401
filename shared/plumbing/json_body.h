/* A request body that must be one JSON object (jansson). */
#ifndef SHARED_JSON_BODY_H
#define SHARED_JSON_BODY_H

#include <jansson.h>
#include <stddef.h>

/* The object body[0..len) holds (NULL body counts as empty): a new
 * reference, or NULL with msg "body must be a JSON object" and, when it
 * does not parse at all, jansson's reason. */
json_t *json_body_object(const char *body, size_t len, char *msg, size_t msglen);

#endif
