/* shared/plumbing/file_watch.c against real files in a temporary
 * directory: a write in place, a new file renamed over the old one (an
 * editor's save, `mv`), a deletion and a re-creation, the stat fallback
 * alone, another file in the same directory (nothing told), SIGHUP (told
 * with the watch off too). Waits are bounded polls (a change is told
 * within a second); nothing measures time. */
#include <check.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/plumbing/file_watch.h"

static atomic_int changed, hangups;

static void on_event(void *arg, file_watch_reason why) {
    (void)arg;
    atomic_fetch_add(why == FILE_WATCH_HANGUP ? &hangups : &changed, 1);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls until *counter reaches n, up to 1 s (the promise) plus slack for
 * a loaded machine; 1 if it did. */
static int wait_count(atomic_int *counter, int n) {
    for (int i = 0; i < 300 && atomic_load(counter) < n; i++) sleep_ms(10);
    return atomic_load(counter) >= n;
}

static char dir[64], path[128];

static void write_file(const char *p, const char *text) {
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/millom-watch-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tenants.json", dir);
    write_file(path, "{\"v\":1}");
    atomic_store(&changed, 0);
    atomic_store(&hangups, 0);
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static file_watch *start(int watch, int stat_only) {
    file_watch_opts o = {
        .path = path, .watch = watch, .stat_only = stat_only, .hangup = 1, .fn = on_event};
    char err[128];
    file_watch *w = file_watch_start(&o, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    return w;
}

START_TEST(write_in_place_is_told) {
    file_watch *w = start(1, 0);
    /* Sizes differ: a same-size write within one tick of the file
     * system's clock would look unchanged (file_watch.h). */
    write_file(path, "{\"v\":22}");
    ck_assert(wait_count(&changed, 1));
    write_file(path, "{\"v\":333}");
    ck_assert(wait_count(&changed, 2));
    file_watch_stop(w);
    ck_assert_int_eq(atomic_load(&hangups), 0);
}
END_TEST

START_TEST(rename_over_the_file_is_told) {
    file_watch *w = start(1, 0);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s/.tenants.json.swp", dir);
    write_file(tmp, "{\"v\":2}");
    ck_assert_int_eq(rename(tmp, path), 0); /* an editor's save, or mv */
    ck_assert(wait_count(&changed, 1));
    /* Writing the temporary file told nothing by itself: one change. */
    sleep_ms(300);
    ck_assert_int_eq(atomic_load(&changed), 1);
    file_watch_stop(w);
}
END_TEST

START_TEST(another_file_in_the_directory_is_not_told) {
    file_watch *w = start(1, 0);
    char other[160];
    snprintf(other, sizeof other, "%s/other.json", dir);
    write_file(other, "{}");
    write_file(other, "{\"x\":1}");
    unlink(other);
    sleep_ms(800); /* past the settling time and a stat poll */
    ck_assert_int_eq(atomic_load(&changed), 0);
    /* ... while the file itself still is */
    write_file(path, "{\"v\":2}");
    ck_assert(wait_count(&changed, 1));
    file_watch_stop(w);
}
END_TEST

START_TEST(deleted_then_back_is_told_once_back) {
    file_watch *w = start(1, 0);
    ck_assert_int_eq(unlink(path), 0);
    sleep_ms(700);
    ck_assert_int_eq(atomic_load(&changed), 0); /* nothing to read: nothing told */
    write_file(path, "{\"v\":333}");
    ck_assert(wait_count(&changed, 1));
    file_watch_stop(w);
}
END_TEST

START_TEST(stat_fallback_alone_sees_both_kinds) {
    file_watch *w = start(1, 1);
    write_file(path, "{\"v\":22}");
    ck_assert(wait_count(&changed, 1));
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s/new.json", dir);
    write_file(tmp, "{\"v\":22}"); /* same size, another inode */
    ck_assert_int_eq(rename(tmp, path), 0);
    ck_assert(wait_count(&changed, 2));
    file_watch_stop(w);
}
END_TEST

START_TEST(sighup_is_told_with_the_watch_off) {
    file_watch *w = start(0, 0);
    write_file(path, "{\"v\":2}");
    sleep_ms(800);
    ck_assert_int_eq(atomic_load(&changed), 0); /* the watch is off */
    ck_assert_int_eq(raise(SIGHUP), 0);         /* and the process lives on */
    ck_assert(wait_count(&hangups, 1));
    ck_assert_int_eq(raise(SIGHUP), 0);
    ck_assert(wait_count(&hangups, 2));
    ck_assert_int_eq(atomic_load(&changed), 0);
    file_watch_stop(w);
}
END_TEST

int main(void) {
    Suite *s = suite_create("file_watch");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, write_in_place_is_told);
    tcase_add_test(tc, rename_over_the_file_is_told);
    tcase_add_test(tc, another_file_in_the_directory_is_not_told);
    tcase_add_test(tc, deleted_then_back_is_told_once_back);
    tcase_add_test(tc, stat_fallback_alone_sees_both_kinds);
    tcase_add_test(tc, sighup_is_told_with_the_watch_off);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
