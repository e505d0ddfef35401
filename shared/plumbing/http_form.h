/* Client credentials as HTTP carries them: form-urlencoded bodies
 * (application/x-www-form-urlencoded) and HTTP Basic (RFC 7617, each part
 * form-urlencoded as RFC 6749 §2.3.1 says). api-edge's token endpoint and
 * shop form and sp-sandbox's token endpoint read them here. Pure
 * functions on libcurl's percent-decoder. */
#ifndef MILLOM_HTTP_FORM_H
#define MILLOM_HTTP_FORM_H

#include <stddef.h>

/* "Basic base64(id:secret)" into id and secret (NUL-terminated). 0 on
 * success; -1 when it is not Basic, not base64, has no ':' or an empty
 * id, holds a NUL, or a part does not fit. */
int http_basic_parse(const char *header, char *id, size_t idlen, char *secret, size_t secretlen);
/* The decoded value of name in an application/x-www-form-urlencoded body
 * of len bytes ('+' is a space). 1 found, 0 absent, -1 malformed, too
 * long for out or repeated (RFC 6749 §3.2: no parameter twice). */
int http_form_get(const char *body, size_t len, const char *name, char *out, size_t outlen);

/* A token request of the client-credentials grant (RFC 6749 §4.4, §2.3.1):
 * an application/x-www-form-urlencoded body with grant_type and maybe
 * scope, the client in HTTP Basic or in the form's client_id and
 * client_secret (one way, not both). */
typedef struct {
    char id[129];
    char secret[256];
    char scope[1024];
    int has_scope;
} client_credentials;

/* Reads the request from its Content-Type and Authorization headers
 * (either may be NULL) and body into *out. NULL, or the RFC's error code
 * ("invalid_request", "unsupported_grant_type", "invalid_client") with
 * *status (400 or 401) and *description set. Wipe out->secret with
 * OPENSSL_cleanse when done; the copies on this function's stack are. */
const char *client_credentials_read(const char *content_type, const char *authorization,
                                    const char *body, size_t len, client_credentials *out,
                                    int *status, const char **description);

#endif
