/* Request ids: see correlator.h. */
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/crypto.h"

#include <string.h>

/* The current correlator of this thread: "" when none. */
static _Thread_local char current[CORRELATOR_SIZE];

int correlator_valid(const char *s, size_t len) {
    if (!s || len == 0 || len > CORRELATOR_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) return 0;
    }
    return 1;
}

void correlator_new(char out[CORRELATOR_SIZE]) { crypto_uuid(out); }

const char *correlator_current(void) { return current; }

void correlator_set_n(const char *s, size_t len) {
    if (!correlator_valid(s, len)) {
        current[0] = '\0';
        return;
    }
    memcpy(current, s, len);
    current[len] = '\0';
}

void correlator_set(const char *s) { correlator_set_n(s, s ? strlen(s) : 0); }

void correlator_clear(void) { current[0] = '\0'; }

void correlator_copy_current(char out[CORRELATOR_SIZE]) {
    memcpy(out, current, strlen(current) + 1);
}
