/* Small wrappers over OpenSSL libcrypto: HMAC-SHA256, base64, random
 * ids, constant-time compare, AES-256-GCM sealing (CPIDs, offerContexts). */
#ifndef MILLOM_CRYPTO_H
#define MILLOM_CRYPTO_H

#include <stddef.h>

#define CRYPTO_SHA256_LEN 32

int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char out[CRYPTO_SHA256_LEN]);
/* Base64 (RFC 4648 §4: standard alphabet, '=' padding). Caller frees. */
char *crypto_b64_encode(const void *data, size_t len);
/* Strict: the standard alphabet, '=' padding to a multiple of 4, no
 * whitespace, unused bits zero (one accepted encoding per byte string).
 * NULL on malformed input. Caller frees; *out_len gets the length. */
unsigned char *crypto_b64_decode(const char *text, size_t *out_len);
/* Base64url (RFC 4648 §5) without padding. Caller frees. */
char *crypto_b64url_encode(const void *data, size_t len);
/* NULL on malformed input. Caller frees; *out_len gets the length. */
unsigned char *crypto_b64url_decode(const char *text, size_t *out_len);
/* Random RFC 4122 version 4 UUID, 36 chars + NUL, lower-case. Bytes come
 * from a per-thread pool refilled by RAND_bytes (see crypto.c). */
void crypto_uuid(char out[37]);
/* RFC 9562 version 7 UUID: the Unix time in milliseconds, then 74 random
 * bits. Ids made later sort later, so rows keyed by them are appended to
 * an index instead of landing on random pages of it. */
void crypto_uuid_v7(char out[37]);
int crypto_random(void *buf, size_t len);
/* 1 if equal, in time independent of where they differ. */
int crypto_equal(const void *a, const void *b, size_t len);

/* AES-256-GCM (authenticated encryption) through OpenSSL EVP. A sealed
 * blob is IV[12] || ciphertext || tag[16], with a fresh random IV per seal;
 * `aad` is authenticated but not stored (it binds the blob to a use). */
#define CRYPTO_AEAD_KEY_LEN 32
#define CRYPTO_AEAD_IV_LEN 12
#define CRYPTO_AEAD_TAG_LEN 16
#define CRYPTO_AEAD_OVERHEAD (CRYPTO_AEAD_IV_LEN + CRYPTO_AEAD_TAG_LEN)
/* A key from text: 64 hex digits are the raw key, any other non-empty
 * text is a passphrase hashed with SHA-256. 0, or -1 for NULL/empty. */
int crypto_aead_key_from_text(const char *text, unsigned char key[CRYPTO_AEAD_KEY_LEN]);
/* Seals in_len bytes into out (in_len + CRYPTO_AEAD_OVERHEAD bytes).
 * Returns the sealed length or -1. */
int crypto_aead_seal(const unsigned char key[CRYPTO_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                     const void *in, size_t in_len, unsigned char *out);
/* Opens a sealed blob into out (in_len - CRYPTO_AEAD_OVERHEAD bytes).
 * Returns the plaintext length, or -1 when it is too short or does not
 * authenticate (tampered, other key, other aad). */
int crypto_aead_open(const unsigned char key[CRYPTO_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                     const unsigned char *in, size_t in_len, unsigned char *out);

#endif
