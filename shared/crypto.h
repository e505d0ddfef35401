/* Small wrappers over OpenSSL libcrypto: HMAC-SHA256, base64url, random
 * ids, constant-time compare. */
#ifndef MILLOM_CRYPTO_H
#define MILLOM_CRYPTO_H

#include <stddef.h>

#define CRYPTO_SHA256_LEN 32

int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char out[CRYPTO_SHA256_LEN]);
/* Base64url without padding. Caller frees. */
char *crypto_b64url_encode(const void *data, size_t len);
/* NULL on malformed input. Caller frees; *out_len gets the length. */
unsigned char *crypto_b64url_decode(const char *text, size_t *out_len);
/* Random RFC 4122 version 4 UUID, 36 chars + NUL. */
void crypto_uuid(char out[37]);
int crypto_random(void *buf, size_t len);
/* 1 if equal, in time independent of where they differ. */
int crypto_equal(const void *a, const void *b, size_t len);

#endif
