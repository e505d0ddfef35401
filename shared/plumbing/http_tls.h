/* TLS for an HTTP listener (shared/plumbing/http_server.h): the PEM
 * certificate and private key libmicrohttpd hands to GnuTLS, read from
 * the files MILLOM_TLS_CERT and MILLOM_TLS_KEY name and checked with
 * OpenSSL before anything starts, so that a wrong file stops the program
 * with a message naming the variable instead of failing at the first
 * handshake. */
#ifndef MILLOM_HTTP_TLS_H
#define MILLOM_HTTP_TLS_H

#include <stddef.h>

/* The largest certificate or key file read. */
#define HTTP_TLS_MAX_FILE (1024 * 1024)

typedef struct {
    char *cert_pem; /* the certificate, then its intermediates (leaf first); NULL: plain HTTP */
    char *key_pem;  /* its private key, unencrypted */
} http_tls;

/* Reads MILLOM_TLS_CERT and MILLOM_TLS_KEY (paths; unset or empty: none).
 * Neither set: 0 with out empty (plain HTTP). Both: 0 with out filled
 * when the certificate file holds a PEM certificate, the key file an
 * unencrypted PEM private key (PKCS#8, RSA or EC), and the key is the
 * certificate's; a certificate past its notAfter is taken with a warning.
 * Otherwise -1 with err naming the variable and the file: only one of
 * the two set, a file missing or unreadable, no PEM of the right kind, an
 * encrypted key, a key of another certificate. Caller clears out. */
int http_tls_from_env(http_tls *out, char *err, size_t errlen);
/* Frees out's PEM text, the key wiped first. */
void http_tls_clear(http_tls *t);

#endif
