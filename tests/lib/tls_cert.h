/* Certificates made at run time for tests (OpenSSL libcrypto): a CA and a
 * server certificate it signs, for HTTPS over loopback with the CA pinned
 * on the client (CURLOPT_CAINFO). Nothing is kept between runs. */
#ifndef TESTS_TLS_CERT_H
#define TESTS_TLS_CERT_H

/* Paths of the PEM files written by tls_cert_make. */
typedef struct {
    char ca[300];   /* the CA's certificate: what a client trusts */
    char cert[300]; /* the server's certificate (signed by the CA) */
    char key[300];  /* the server's private key (PKCS#8, unencrypted) */
} tls_files;

/* Makes a fresh CA (EC P-256, valid from a minute ago for a day) and a
 * server certificate for 127.0.0.1 and localhost that it signs, and
 * writes them as dir/<prefix>-ca.pem, -cert.pem, -key.pem. 0, or -1 with
 * a message on stderr. */
int tls_cert_make(const char *dir, const char *prefix, tls_files *out);

#endif
