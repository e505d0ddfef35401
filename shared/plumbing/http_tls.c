/* See http_tls.h. OpenSSL only reads and checks the files here; the TLS
 * itself is libmicrohttpd's (GnuTLS), which takes the same PEM text. */
#include "shared/plumbing/http_tls.h"
#include "shared/plumbing/files.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/settings.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Never asks for a passphrase (OpenSSL's default would read the terminal):
 * an encrypted key fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The file a variable names, NUL-terminated; NULL with err. */
static char *read_pem_file(const char *var, const char *path, size_t *len, char *err,
                           size_t errlen) {
    char *text = files_read_all(path, HTTP_TLS_MAX_FILE, len);
    if (!text)
        snprintf(err, errlen, "%s: cannot read %s: %s", var, path,
                 errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
    return text;
}

/* The first certificate of the PEM text; NULL with err. */
static X509 *first_cert(const char *pem, size_t len, const char *path, char *err, size_t errlen) {
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (!x)
        snprintf(err, errlen, "MILLOM_TLS_CERT: %s holds no PEM certificate (BEGIN CERTIFICATE)",
                 path);
    return x;
}

/* The first private key of the PEM text; NULL with err. */
static EVP_PKEY *first_key(const char *pem, size_t len, const char *path, char *err,
                           size_t errlen) {
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (!k)
        snprintf(err, errlen,
                 "MILLOM_TLS_KEY: %s holds no unencrypted PEM private key (BEGIN PRIVATE KEY, "
                 "RSA or EC PRIVATE KEY)",
                 path);
    return k;
}

int http_tls_from_env(http_tls *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const char *cert_path = setting_str("MILLOM_TLS_CERT", "");
    const char *key_path = setting_str("MILLOM_TLS_KEY", "");
    if (!*cert_path && !*key_path) return 0;
    if (!*cert_path || !*key_path) {
        snprintf(err, errlen, "%s is set but %s is not: HTTPS needs both (or neither, for HTTP)",
                 *cert_path ? "MILLOM_TLS_CERT" : "MILLOM_TLS_KEY",
                 *cert_path ? "MILLOM_TLS_KEY" : "MILLOM_TLS_CERT");
        return -1;
    }
    size_t cert_len = 0, key_len = 0;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = -1;
    out->cert_pem = read_pem_file("MILLOM_TLS_CERT", cert_path, &cert_len, err, errlen);
    if (!out->cert_pem) goto out;
    out->key_pem = read_pem_file("MILLOM_TLS_KEY", key_path, &key_len, err, errlen);
    if (!out->key_pem) goto out;
    if (!(cert = first_cert(out->cert_pem, cert_len, cert_path, err, errlen)) ||
        !(key = first_key(out->key_pem, key_len, key_path, err, errlen)))
        goto out;
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "MILLOM_TLS_KEY: %s is not the key of the certificate in %s",
                 key_path, cert_path);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        log_warn("MILLOM_TLS_CERT: the certificate in %s has expired; clients will refuse it",
                 cert_path);
    rc = 0;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    if (rc != 0) http_tls_clear(out);
    return rc;
}

void http_tls_clear(http_tls *t) {
    if (t->key_pem) OPENSSL_cleanse(t->key_pem, strlen(t->key_pem));
    free(t->key_pem);
    free(t->cert_pem);
    t->key_pem = t->cert_pem = NULL;
}
