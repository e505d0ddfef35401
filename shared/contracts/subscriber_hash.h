/* The subscriber as settlement topics show it: a keyed hash, never the
 * MSISDN. offer-resolver's impressions and settlement-reporter's records
 * use this one function, so analysts can join them. */
#ifndef SHARED_SUBSCRIBER_HASH_H
#define SHARED_SUBSCRIBER_HASH_H

/* Hex HMAC-SHA256 of the subscriber id (NULL counts as "") under
 * MILLOM_SUBSCRIBER_HASH_KEY (shared/contracts/keys.h, per profile); "" on a crypto
 * failure. */
void subscriber_hash(const char *subscriber, char out[65]);

#endif
