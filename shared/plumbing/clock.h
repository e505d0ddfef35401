/* Time helpers: RFC 3339 text and monotonic deadlines for condition
 * variables. The clocks themselves are now_ms() and mono_ms() in
 * shared/plumbing/service.h. */
#ifndef SHARED_CLOCK_H
#define SHARED_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* "2026-12-02T01:10:30.123Z" for ms since the epoch (UTC, milliseconds);
 * buflen >= CLOCK_RFC3339_LEN. */
#define CLOCK_RFC3339_LEN 32
void clock_rfc3339_ms(int64_t ms, char *buf, size_t buflen);

/* *ts = CLOCK_MONOTONIC now + ms: the absolute time for
 * pthread_cond_timedwait on a condition variable made with
 * pthread_condattr_setclock(CLOCK_MONOTONIC). */
void clock_deadline_in(struct timespec *ts, long ms);

/* pthread_cond_init of a condition variable whose timed waits use
 * CLOCK_MONOTONIC (so clock_deadline_in applies, and a changed wall clock
 * does not stretch a wait). */
void clock_cond_init(pthread_cond_t *cv);

/* Sleeps ms milliseconds (a signal does not end it early). */
void clock_sleep_ms(long ms);

#endif
