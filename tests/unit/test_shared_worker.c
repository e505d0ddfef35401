/* shared/plumbing/worker.c: rounds run until stopped, worker_wake ends a long sleep,
 * worker_quiesce bumps the epoch and waits for a running round, and a
 * stop ends a sleep. Polls are bounded; nothing measures wall-clock time. */
#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "shared/plumbing/worker.h"

static atomic_int rounds, hold, in_round;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Counts, optionally stays busy while `hold` is set, then sleeps a minute:
 * only a wake-up or a stop starts the next round soon. */
static long round_fn(void *arg, worker *w) {
    (void)arg;
    (void)w;
    atomic_fetch_add(&rounds, 1);
    atomic_store(&in_round, 1);
    while (atomic_load(&hold)) sleep_ms(1);
    atomic_store(&in_round, 0);
    return 60000;
}

static int wait_rounds(int n) {
    for (int i = 0; i < 5000 && atomic_load(&rounds) < n; i++) sleep_ms(1);
    return atomic_load(&rounds) >= n;
}

START_TEST(wake_starts_the_next_round) {
    atomic_store(&rounds, 0);
    char err[128];
    worker *w = worker_start(round_fn, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(w);
    ck_assert(wait_rounds(1));
    worker_wake(w);
    ck_assert(wait_rounds(2));
    worker_wake(w);
    ck_assert(wait_rounds(3));
    ck_assert(!worker_stopping(w));
    worker_stop(w); /* ends the minute's sleep */
}
END_TEST

START_TEST(quiesce_waits_for_the_running_round) {
    atomic_store(&rounds, 0);
    atomic_store(&hold, 1);
    char err[128];
    worker *w = worker_start(round_fn, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(w);
    for (int i = 0; i < 5000 && !atomic_load(&in_round); i++) sleep_ms(1);
    ck_assert(atomic_load(&in_round));
    int epoch = worker_epoch(w);
    ck_assert_int_eq(worker_quiesce(w, 20), -1); /* the round is held */
    ck_assert_int_eq(worker_epoch(w), epoch + 1);
    atomic_store(&hold, 0);
    ck_assert_int_eq(worker_quiesce(w, 5000), 0);
    ck_assert_int_eq(worker_epoch(w), epoch + 2);
    ck_assert(!atomic_load(&in_round));
    ck_assert_int_eq(worker_quiesce(NULL, 0), 0);
    worker_stop(w);
    worker_stop(NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("worker");
    tcase_add_test(tc, wake_starts_the_next_round);
    tcase_add_test(tc, quiesce_waits_for_the_running_round);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
