/* Request ids (shared/plumbing/correlator.h): the check of x-correlator,
 * fresh ids, the per-thread current id, and the work queue carrying it
 * from the pushing thread to the job. (The HTTP echo, Kafka headers and
 * logs on the real stack: tests/integration/test_request_ids.c; the outbox
 * and the consumer: test_shared_outbox.c.) */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/correlator.h"
#include "shared/plumbing/work_queue.h"

START_TEST(what_is_accepted) {
    ck_assert(correlator_valid("a", 1));
    ck_assert(correlator_valid("shop-7f3a.checkout:17_x", 23));
    char longest[CORRELATOR_MAX + 2];
    memset(longest, 'Z', sizeof longest);
    ck_assert(correlator_valid(longest, CORRELATOR_MAX));
    ck_assert(!correlator_valid(longest, CORRELATOR_MAX + 1));
    ck_assert(!correlator_valid("", 0));
    ck_assert(!correlator_valid(NULL, 3));
    const char *const bad[] = {"a b", "a/b", "a\"b", "a\r\nX: y", "é", "a,b", "a;b", "a=b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!correlator_valid(bad[i], strlen(bad[i])), "%s accepted", bad[i]);
    ck_assert(!correlator_valid("ab\0c", 4)); /* an embedded NUL */
}
END_TEST

START_TEST(fresh_ids_are_uuids) {
    char a[CORRELATOR_SIZE], b[CORRELATOR_SIZE];
    correlator_new(a);
    correlator_new(b);
    ck_assert_int_eq(strlen(a), 36);
    ck_assert(correlator_valid(a, strlen(a)));
    ck_assert_int_eq(a[14], '4');
    ck_assert_str_ne(a, b);
}
END_TEST

static void *other_thread(void *arg) {
    char *seen = arg;
    strcpy(seen, correlator_current());
    return NULL;
}

START_TEST(the_current_id_is_per_thread) {
    ck_assert_str_eq(correlator_current(), "");
    correlator_set("mine");
    ck_assert_str_eq(correlator_current(), "mine");
    char seen[CORRELATOR_SIZE] = "unset";
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, other_thread, seen), 0);
    pthread_join(t, NULL);
    ck_assert_str_eq(seen, "");
    correlator_set("bad id"); /* an invalid one clears */
    ck_assert_str_eq(correlator_current(), "");
    correlator_set_n("abcdef", 3);
    ck_assert_str_eq(correlator_current(), "abc");
    char copy[CORRELATOR_SIZE];
    correlator_copy_current(copy);
    ck_assert_str_eq(copy, "abc");
    correlator_clear();
    ck_assert_str_eq(correlator_current(), "");
}
END_TEST

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    char seen[2][CORRELATOR_SIZE];
} jobs_seen;

static void run_job(void *arg, void *state, void *job) {
    (void)state;
    jobs_seen *s = arg;
    int i = (int)(intptr_t)job;
    pthread_mutex_lock(&s->mu);
    strcpy(s->seen[i], correlator_current());
    s->done++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

START_TEST(work_queue_jobs_run_with_the_pushers_id) {
    jobs_seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    work_queue_opts o = {.threads = 1, .capacity = 4, .run = run_job, .arg = &s};
    work_queue *q = work_queue_new(&o);
    ck_assert_ptr_nonnull(q);
    correlator_set("req-1");
    ck_assert_int_eq(work_queue_push(q, (void *)(intptr_t)0), 0);
    correlator_clear();
    ck_assert_int_eq(work_queue_push(q, (void *)(intptr_t)1), 0);
    pthread_mutex_lock(&s.mu);
    while (s.done < 2) pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    work_queue_free(q);
    ck_assert_str_eq(s.seen[0], "req-1");
    ck_assert_str_eq(s.seen[1], "");
}
END_TEST

int main(void) {
    Suite *s = suite_create("correlator");
    TCase *tc = tcase_create("correlator");
    tcase_add_test(tc, what_is_accepted);
    tcase_add_test(tc, fresh_ids_are_uuids);
    tcase_add_test(tc, the_current_id_is_per_thread);
    tcase_add_test(tc, work_queue_jobs_run_with_the_pushers_id);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
