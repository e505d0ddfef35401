/* Strict HTTP at api-edge (issue 16, item 7): which Host names it answers
 * for and which request bodies it takes as JSON. Pure functions, so every
 * rule is unit-tested directly; router.c applies them to each request. */
#ifndef API_EDGE_REQUEST_HTTP_H
#define API_EDGE_REQUEST_HTTP_H

#include <stddef.h>

/* The allow-list used when MILLOM_ALLOWED_HOSTS is unset: the loopback
 * names, any port. */
#define EDGE_DEFAULT_ALLOWED_HOSTS "localhost,127.0.0.1,[::1]"

/* 1 if the Host header value ("name", "name:port", "[v6]", "[v6]:port")
 * is in allow_list, comma-separated entries "name" (any port) or
 * "name:port" (that port only); names compare case-insensitively and a
 * single trailing dot is ignored. The entry "*" allows every host. 0 for a
 * missing, empty or malformed Host. */
int edge_host_allowed(const char *allow_list, const char *host);

/* 1 if the Content-Type header value is application/json (any case, with
 * parameters; a charset parameter must be utf-8). */
int edge_content_type_is_json(const char *content_type);

/* Checks a request body the application will parse as JSON: NULL if
 * acceptable, else the ErrorDocument cause with a message in msg:
 * UNSUPPORTED_MEDIA_TYPE when content_type is not JSON's, BAD_REQUEST when
 * the body holds a NUL byte. (Bytes after the JSON value are refused by
 * the parsers: jansson's json_loadb checks for the end of input.) */
const char *edge_json_body_check(const char *content_type, const char *body, size_t len, char *msg,
                                 size_t msglen);

/* 1 if a request with this method and path carries a JSON body when it
 * has one: every POST, PUT and PATCH but the token endpoint (a form,
 * RFC 6749) and the signed-link pages under /rnf/ (browser forms): the
 * rows of the route table (routes.h) flagged EDGE_ROUTE_FORM_BODY. */
int edge_body_must_be_json(const char *method, const char *path);

#endif
