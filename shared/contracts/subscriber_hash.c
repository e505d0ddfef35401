/* The subscriber as settlement topics show it: never the MSISDN (DESIGN:
 * "nor in settlement topics"), but a keyed hash, so analysts can count
 * distinct buyers and join impressions to purchases while nobody without
 * the key can test a guessed number against it (a plain SHA-256 of a
 * 12-digit MSISDN is brute-forced in seconds).
 *
 * Key: MILLOM_SUBSCRIBER_HASH_KEY through shared/contracts/keys.h (per profile). */
#include "shared/contracts/subscriber_hash.h"
#include "shared/plumbing/text.h"

#include <stdio.h>
#include <string.h>

#include "shared/plumbing/crypto.h"
#include "shared/contracts/keys.h"

void subscriber_hash(const char *subscriber, char out[65]) {
    const char *key = keys_get("MILLOM_SUBSCRIBER_HASH_KEY"); /* shared/contracts/keys.h */
    unsigned char mac[CRYPTO_SHA256_LEN];
    if (!subscriber) subscriber = "";
    if (crypto_hmac_sha256(key, strlen(key), subscriber, strlen(subscriber), mac) != 0) {
        out[0] = '\0';
        return;
    }
    text_hex(mac, CRYPTO_SHA256_LEN, out);
}
