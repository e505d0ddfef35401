/* shared/plumbing/snapshot.c: a pinned version survives a publish and is
 * freed by its last unpin; the cell's own version is freed with the cell;
 * and readers on several threads that pin while a writer publishes
 * thousands of versions always see whole, live versions (under ASan a
 * use after free, under ThreadSanitizer a race would fail the test), and
 * every version is freed exactly once. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "shared/plumbing/snapshot.h"

static atomic_long freed;

typedef struct {
    long a, b; /* always equal in a whole version */
    long payload[16];
} version_obj;

static version_obj *obj_new(long n) {
    version_obj *o = calloc(1, sizeof *o);
    ck_assert_ptr_nonnull(o);
    o->a = o->b = n;
    for (int i = 0; i < 16; i++) o->payload[i] = n;
    return o;
}

static void obj_free(void *p) {
    version_obj *o = p;
    o->a = -1; /* a reader still looking would see it (ASan sees it first) */
    free(o);
    atomic_fetch_add(&freed, 1);
}

START_TEST(pinned_version_outlives_publish) {
    atomic_store(&freed, 0);
    snapshot_cell *c = snapshot_cell_new(obj_new(1), obj_free);
    ck_assert_ptr_nonnull(c);
    snapshot_version *p1 = snapshot_pin(c);
    ck_assert_int_eq(((version_obj *)snapshot_value(p1))->a, 1);
    ck_assert_int_eq(snapshot_publish(c, obj_new(2), obj_free), 0);
    ck_assert_int_eq(atomic_load(&freed), 0); /* version 1 is still pinned */
    snapshot_version *p2 = snapshot_pin(c);
    ck_assert_int_eq(((version_obj *)snapshot_value(p2))->a, 2);
    ck_assert_int_eq(((version_obj *)snapshot_value(p1))->a, 1);
    snapshot_unpin(p1);
    ck_assert_int_eq(atomic_load(&freed), 1);
    ck_assert_int_eq(snapshot_publish(c, obj_new(3), obj_free), 0);
    ck_assert_int_eq(atomic_load(&freed), 1);         /* version 2: pinned */
    snapshot_version *again = snapshot_pin_again(p2); /* outlives p2's pin */
    snapshot_unpin(p2);
    ck_assert_int_eq(atomic_load(&freed), 1);
    ck_assert_int_eq(((version_obj *)snapshot_value(again))->a, 2);
    snapshot_unpin(again);
    ck_assert_int_eq(atomic_load(&freed), 2);
    snapshot_unpin(NULL);
    snapshot_cell_free(c);
    ck_assert_int_eq(atomic_load(&freed), 3);
}
END_TEST

START_TEST(version_pinned_past_the_cell) {
    atomic_store(&freed, 0);
    snapshot_cell *c = snapshot_cell_new(obj_new(7), obj_free);
    snapshot_version *p = snapshot_pin(c);
    snapshot_cell_free(c);
    ck_assert_int_eq(atomic_load(&freed), 0);
    ck_assert_int_eq(((version_obj *)snapshot_value(p))->b, 7);
    snapshot_unpin(p);
    ck_assert_int_eq(atomic_load(&freed), 1);
}
END_TEST

#define READERS 4
#define PUBLISHES 3000

static atomic_int writer_done;
static atomic_long problems; /* counted on the readers' threads, asserted on the test's */

static void *reader(void *arg) {
    snapshot_cell *c = arg;
    long last = 0, pins = 0;
    while (!atomic_load(&writer_done) || pins < 1000) {
        snapshot_version *v = snapshot_pin(c);
        const version_obj *o = snapshot_value(v);
        long a = o->a;
        int bad = a != o->b || a < last; /* versions only move forwards */
        for (int i = 0; i < 16; i++) bad |= o->payload[i] != a;
        if (bad) atomic_fetch_add(&problems, 1);
        last = a;
        snapshot_unpin(v);
        pins++;
    }
    return NULL;
}

START_TEST(readers_see_whole_live_versions) {
    atomic_store(&freed, 0);
    atomic_store(&writer_done, 0);
    atomic_store(&problems, 0);
    snapshot_cell *c = snapshot_cell_new(obj_new(0), obj_free);
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, reader, c), 0);
    for (long n = 1; n <= PUBLISHES; n++)
        ck_assert_int_eq(snapshot_publish(c, obj_new(n), obj_free), 0);
    atomic_store(&writer_done, 1);
    for (int i = 0; i < READERS; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&problems), 0);
    ck_assert_int_eq(atomic_load(&freed), PUBLISHES); /* all but the current */
    snapshot_cell_free(c);
    ck_assert_int_eq(atomic_load(&freed), PUBLISHES + 1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pinned_version_outlives_publish);
    tcase_add_test(tc, version_pinned_past_the_cell);
    tcase_add_test(tc, readers_see_whole_live_versions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
