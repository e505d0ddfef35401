/* Request ids ("correlators"): one id per request that api-edge takes,
 * carried with everything that request causes, so one grep finds its log
 * lines in every service.
 *
 * Where it travels: the HTTP header `x-correlator` into api-edge (checked
 * with correlator_valid, or made with correlator_new) and back out in every
 * answer; a Kafka header of the same name on every message produced
 * because of the request; the `x-correlator` header of the webhooks it
 * causes; and the "correlator" field of every JSON log line about it.
 *
 * How: each thread has a "current correlator". Whoever starts work on
 * behalf of a request sets it: the HTTP server around the handler, the
 * Kafka consumer around each message's handler (from the message's
 * header, or a fresh id when it has none: events an operator publishes
 * straight to Kafka), the work queue around each job (copied at the push),
 * the outbox relay around each row (stored with the row by outbox_add).
 * The code that runs in between needs no change: log_write adds the
 * current correlator to each line and kafka_produce adds it as a header.
 * Work that outlives the thread (a purchase finished by a callback or by
 * the retry thread, a queued webhook) stores the id with its row and sets
 * it again when it picks the row up.
 *
 * A thread-local fixed buffer, so setting it costs a copy of at most 128
 * bytes and never allocates. */
#ifndef MILLOM_CORRELATOR_H
#define MILLOM_CORRELATOR_H

#include <stddef.h>

#define CORRELATOR_HEADER "x-correlator" /* HTTP and Kafka header name */
#define CORRELATOR_MAX 128               /* characters */
#define CORRELATOR_SIZE (CORRELATOR_MAX + 1)
/* The characters a correlator may have, for error messages and docs. */
#define CORRELATOR_CHARSET "A-Z a-z 0-9 . _ : -"

/* 1 when s[0..len) is 1 to CORRELATOR_MAX characters, each a letter, a
 * digit, '.', '_', ':' or '-'; else 0. Pure; s may be NULL (0). */
int correlator_valid(const char *s, size_t len);

/* Writes a fresh id into out: a random RFC 4122 version 4 UUID (OpenSSL
 * RAND_bytes through crypto_uuid), lower-case, 36 characters. */
void correlator_new(char out[CORRELATOR_SIZE]);

/* The calling thread's current correlator: "" when none. Borrowed: valid
 * until the thread sets another. */
const char *correlator_current(void);

/* Sets the calling thread's current correlator to a copy of s[0..len)
 * when that is valid; clears it for NULL, an empty or an invalid one. */
void correlator_set_n(const char *s, size_t len);
/* correlator_set_n for a NUL-terminated string (NULL clears). */
void correlator_set(const char *s);
/* Clears the current correlator (the thread's work for a request ended). */
void correlator_clear(void);

/* Copies the current correlator into out (CORRELATOR_SIZE bytes): for
 * work handed to another thread or stored with a row. */
void correlator_copy_current(char out[CORRELATOR_SIZE]);

#endif
