/* Small wrappers over OpenSSL libcrypto: see crypto.h.
 *
 * Return conventions: int functions return 0 on success and -1 on failure
 * (crypto_equal returns 1/0 as documented in the header). */
#include "shared/plumbing/crypto.h"
#include "shared/plumbing/service.h"

#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* AES-256-GCM and SHA-256, fetched from the default provider once per
 * process. EVP_aes_256_gcm() and EVP_sha256() make OpenSSL 3 look the
 * algorithm up again (a lock and a search of its store) on every
 * EVP_CipherInit_ex or EVP_Digest: an upsellOffer answer seals an
 * offerContext per offer. NULL when the fetch failed: the calls then pass
 * the legacy handles and OpenSSL fetches as before. */
static EVP_CIPHER *aes_256_gcm;
static EVP_MD *sha256;
static pthread_once_t algorithms_once = PTHREAD_ONCE_INIT;

static void algorithms_fetch(void) {
    aes_256_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_CIPHER *cipher_aes_256_gcm(void) {
    pthread_once(&algorithms_once, algorithms_fetch);
    return aes_256_gcm ? aes_256_gcm : EVP_aes_256_gcm();
}

static const EVP_MD *md_sha256(void) {
    pthread_once(&algorithms_once, algorithms_fetch);
    return sha256 ? sha256 : EVP_sha256();
}

int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char out[CRYPTO_SHA256_LEN]) {
    static const unsigned char empty[1];
    unsigned int out_len = 0;

    if (out == NULL || key_len > INT_MAX || (key == NULL && key_len > 0) ||
        (msg == NULL && msg_len > 0))
        return -1;
    if (key == NULL) key = empty;
    if (msg == NULL) msg = empty;
    if (HMAC(md_sha256(), key, (int)key_len, msg, msg_len, out, &out_len) == NULL ||
        out_len != CRYPTO_SHA256_LEN)
        return -1;
    return 0;
}

/* Base64 of len bytes with the standard alphabet and '=' padding. */
char *crypto_b64_encode(const void *data, size_t len) {
    if (data == NULL && len > 0) return NULL;
    /* EVP_EncodeBlock takes an int length and writes 4 chars per 3 bytes
     * plus a NUL, with '=' padding and no newlines. */
    if (len > (size_t)INT_MAX / 4 * 3 - 3) return NULL;
    size_t cap = 4 * ((len + 2) / 3) + 1;
    char *out = malloc(cap);
    if (out == NULL) return NULL;
    if (len == 0) {
        out[0] = '\0';
        return out;
    }
    if (EVP_EncodeBlock((unsigned char *)out, data, (int)len) < 0) {
        free(out);
        return NULL;
    }
    return out;
}

char *crypto_b64url_encode(const void *data, size_t len) {
    char *out = crypto_b64_encode(data, len);
    if (out == NULL) return NULL;
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '=') n--;
    out[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

/* Value of one character of the base64 alphabet (url: the base64url
 * one), -1 for anything else. */
static int b64_value(char c, int url) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

/* Decodes n characters of the alphabet (url or standard) without padding;
 * the unused low bits of the last character must be zero, so every byte
 * string has exactly one accepted encoding. */
static unsigned char *b64_decode_unpadded(const char *text, size_t n, int url, size_t *out_len) {
    size_t rem = n % 4;
    if (rem == 1 || n > (size_t)INT_MAX - 4) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (b64_value(text[i], url) < 0) return NULL;
    }
    if (rem == 2 && (b64_value(text[n - 1], url) & 0x0f) != 0) return NULL;
    if (rem == 3 && (b64_value(text[n - 1], url) & 0x03) != 0) return NULL;

    size_t pad = rem == 0 ? 0 : 4 - rem;
    size_t std_len = n + pad;
    char *std = malloc(std_len + 1);
    /* EVP_DecodeBlock writes 3 bytes per 4 chars, padding included. */
    unsigned char *out = malloc(std_len / 4 * 3 + 1);
    if (std == NULL || out == NULL) {
        free(std);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    for (size_t i = n; i < std_len; i++) std[i] = '=';
    std[std_len] = '\0';

    size_t len = 0;
    if (std_len > 0) {
        int got = EVP_DecodeBlock(out, (const unsigned char *)std, (int)std_len);
        if (got < 0 || (size_t)got != std_len / 4 * 3) {
            free(std);
            free(out);
            return NULL;
        }
        len = (size_t)got - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
    }
    free(std);
    out[len] = '\0';
    if (out_len != NULL) *out_len = len;
    return out;
}

/* Strict: only the base64url alphabet, no padding, no whitespace. */
unsigned char *crypto_b64url_decode(const char *text, size_t *out_len) {
    if (text == NULL) return NULL;
    return b64_decode_unpadded(text, strlen(text), 1, out_len);
}

/* Strict: the standard alphabet, padded to a multiple of 4 characters
 * with at most two '=', nothing else. */
unsigned char *crypto_b64_decode(const char *text, size_t *out_len) {
    if (text == NULL) return NULL;
    size_t n = strlen(text);
    if (n % 4 != 0) return NULL;
    size_t data = n;
    while (data > 0 && n - data < 2 && text[data - 1] == '=') data--;
    return b64_decode_unpadded(text, data, 0, out_len);
}

int crypto_random(void *buf, size_t len) {
    if (buf == NULL && len > 0) return -1;
    unsigned char *p = buf;
    while (len > 0) {
        int chunk = len > (size_t)INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, chunk) != 1) return -1;
        p += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

/* crypto_uuid and the AEAD nonces draw their bytes from a per-thread pool
 * filled by RAND_bytes RANDOM_POOL_SIZE bytes at a time: one RAND_bytes
 * call costs a system call (getpid, OpenSSL's fork check) and the DRBG's
 * locking whatever its length, and ids and nonces are made per message on
 * the hot paths (a correlator for every event an operator publishes
 * without one, an rpc id per read, a nonce per offerContext of every
 * upsellOffer answer). The bytes are the CSPRNG's own; each is handed out
 * once and wiped from the pool. A forked child starts with an empty pool
 * (random_pool_forget), so parent and child never share ids or nonces. */
#define RANDOM_POOL_SIZE 1024
static _Thread_local unsigned char random_pool[RANDOM_POOL_SIZE];
static _Thread_local size_t random_pool_left;
static pthread_once_t random_pool_once = PTHREAD_ONCE_INIT;

static void random_pool_forget(void) { random_pool_left = 0; }
static void random_pool_register(void) { pthread_atfork(NULL, NULL, random_pool_forget); }

/* n (at most RANDOM_POOL_SIZE) bytes from the pool. -1 when the CSPRNG
 * failed. */
static int random_pooled(unsigned char *b, size_t n) {
    if (n > RANDOM_POOL_SIZE) return -1;
    pthread_once(&random_pool_once, random_pool_register);
    if (random_pool_left < n) {
        if (crypto_random(random_pool, sizeof random_pool) != 0) return -1;
        random_pool_left = sizeof random_pool;
    }
    unsigned char *next = random_pool + sizeof random_pool - random_pool_left;
    memcpy(b, next, n);
    OPENSSL_cleanse(next, n);
    random_pool_left -= n;
    return 0;
}

/* 16 bytes from the pool; aborts without a working CSPRNG: an id that is
 * not random would silently collide, and there is no safe way on. */
static void uuid_bytes(unsigned char b[16]) {
    if (random_pooled(b, 16) != 0) {
        fprintf(stderr, "crypto_uuid: RAND_bytes failed\n");
        abort();
    }
}

/* b as a UUID of this version: 36 characters, lower-case hex. */
static void uuid_format(unsigned char b[16], unsigned version, char out[37]) {
    b[6] = (unsigned char)((b[6] & 0x0f) | (version << 4));
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

void crypto_uuid(char out[37]) {
    unsigned char b[16];
    uuid_bytes(b);
    uuid_format(b, 4, out);
}

void crypto_uuid_v7(char out[37]) {
    unsigned char b[16];
    uuid_bytes(b);
    uint64_t ms = (uint64_t)now_ms();
    for (int i = 0; i < 6; i++) b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    uuid_format(b, 7, out);
}

int crypto_equal(const void *a, const void *b, size_t len) {
    if (len == 0) return 1;
    if (a == NULL || b == NULL) return 0;
    return CRYPTO_memcmp(a, b, len) == 0;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int crypto_aead_key_from_text(const char *text, unsigned char key[CRYPTO_AEAD_KEY_LEN]) {
    size_t n = text != NULL ? strlen(text) : 0;
    if (n == 0) return -1;
    int hex = n == 2 * CRYPTO_AEAD_KEY_LEN;
    for (size_t i = 0; hex && i < n; i++) hex = hex_digit(text[i]) >= 0;
    if (hex) {
        for (size_t i = 0; i < CRYPTO_AEAD_KEY_LEN; i++)
            key[i] = (unsigned char)(hex_digit(text[2 * i]) << 4 | hex_digit(text[2 * i + 1]));
        return 0;
    }
    return EVP_Digest(text, n, key, NULL, md_sha256(), NULL) == 1 ? 0 : -1;
}

/* One AES-256-GCM pass. Encrypting writes `tag`; decrypting checks it.
 * Returns the output length or -1. */
static int aead_pass(int encrypt, const unsigned char *key, const unsigned char *iv,
                     const void *aad, size_t aad_len, const unsigned char *in, size_t in_len,
                     unsigned char *out, unsigned char *tag) {
    if (in_len > INT_MAX / 2 || aad_len > INT_MAX / 2) return -1;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, total = -1;
    if (ctx == NULL) return -1;
    if (EVP_CipherInit_ex(ctx, cipher_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CRYPTO_AEAD_IV_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, encrypt) != 1 ||
        (aad_len > 0 &&
         EVP_CipherUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)aad_len) != 1) ||
        EVP_CipherUpdate(ctx, out, &len, in, (int)in_len) != 1)
        goto out;
    total = len;
    if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_AEAD_TAG_LEN, tag) != 1) {
        total = -1;
        goto out;
    }
    if (EVP_CipherFinal_ex(ctx, out + total, &len) != 1) { /* tag mismatch when decrypting */
        total = -1;
        goto out;
    }
    total += len;
    if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_AEAD_TAG_LEN, tag) != 1)
        total = -1;
out:
    EVP_CIPHER_CTX_free(ctx);
    return total;
}

int crypto_aead_seal(const unsigned char key[CRYPTO_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                     const void *in, size_t in_len, unsigned char *out) {
    if (random_pooled(out, CRYPTO_AEAD_IV_LEN) != 0) return -1;
    int n = aead_pass(1, key, out, aad, aad_len, in, in_len, out + CRYPTO_AEAD_IV_LEN,
                      out + CRYPTO_AEAD_IV_LEN + in_len);
    if (n < 0 || (size_t)n != in_len) return -1;
    return (int)(in_len + CRYPTO_AEAD_OVERHEAD);
}

int crypto_aead_open(const unsigned char key[CRYPTO_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                     const unsigned char *in, size_t in_len, unsigned char *out) {
    if (in == NULL || in_len < CRYPTO_AEAD_OVERHEAD) return -1;
    size_t clen = in_len - CRYPTO_AEAD_OVERHEAD;
    /* EVP wants a tag buffer it may write; copy it out of the const input. */
    unsigned char tag[CRYPTO_AEAD_TAG_LEN];
    memcpy(tag, in + CRYPTO_AEAD_IV_LEN + clen, sizeof tag);
    int n = aead_pass(0, key, in, aad, aad_len, in + CRYPTO_AEAD_IV_LEN, clen, out, tag);
    if (n < 0 || (size_t)n != clen) {
        OPENSSL_cleanse(out, clen);
        return -1;
    }
    return n;
}
