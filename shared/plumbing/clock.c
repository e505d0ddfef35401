/* See clock.h. */
#include "shared/plumbing/clock.h"

#include <errno.h>
#include <stdio.h>

void clock_rfc3339_ms(int64_t ms, char *buf, size_t buflen) {
    if (!buf || buflen == 0) return;
    int64_t secs = ms / 1000, milli = ms % 1000;
    if (milli < 0) { /* floor for times before the epoch */
        secs -= 1;
        milli += 1000;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    char base[24];
    if (!gmtime_r(&t, &tm) || strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, buflen, "%s.%03dZ", base, (int)milli);
}

void clock_deadline_in(struct timespec *ts, long ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void clock_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

void clock_cond_init(pthread_cond_t *cv) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}
