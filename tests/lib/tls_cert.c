/* See tls_cert.h. */
#include "tls_cert.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ex && X509_add_ext(x, ex, -1) == 1;
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

/* A certificate for key named cn, signed by issuer (NULL: itself). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key) {
    X509 *x = X509_new();
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int ok = x && RAND_bytes(serial, sizeof serial) == 1;
    serial[0] &= 0x7f; /* positive */
    ok = ok && (bn = BN_bin2bn(serial, sizeof serial, NULL)) &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) && X509_set_version(x, 2) &&
         X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
         X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, key);
    BN_free(bn);
    X509_NAME *name = ok ? X509_get_subject_name(x) : NULL;
    ok = ok &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) &&
         X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (ok && !issuer)
        ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
             add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
             add_ext(x, &ctx, NID_subject_key_identifier, "hash") == 0;
    else if (ok)
        ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
             add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") == 0 &&
             add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") == 0 &&
             add_ext(x, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") == 0 &&
             add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") == 0;
    ok = ok && X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int write_pem(const char *path, X509 *x, EVP_PKEY *key) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok ? 0 : -1;
}

int tls_cert_make(const char *dir, const char *prefix, tls_files *out) {
    snprintf(out->ca, sizeof out->ca, "%s/%s-ca.pem", dir, prefix);
    snprintf(out->cert, sizeof out->cert, "%s/%s-cert.pem", dir, prefix);
    snprintf(out->key, sizeof out->key, "%s/%s-key.pem", dir, prefix);
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
    X509 *ca = ca_key ? make_cert(ca_key, "Millom test CA", NULL, NULL) : NULL;
    X509 *cert = ca && key ? make_cert(key, "127.0.0.1", ca, ca_key) : NULL;
    int rc = cert && write_pem(out->ca, ca, NULL) == 0 && write_pem(out->cert, cert, NULL) == 0 &&
                     write_pem(out->key, NULL, key) == 0
                 ? 0
                 : -1;
    if (rc != 0) fprintf(stderr, "tls_cert_make: cannot make or write %s's certificates\n", prefix);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return rc;
}
