/* Unit tests of the metrics registry: counters, gauges, label groups, histograms, concurrent updates (shared/plumbing/metrics.c). The registry is process-wide, so every test uses its own metric names. Runs with and without CK_FORK. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/metrics.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static char *render(void) {
    char *text = metrics_render();
    ck_assert_ptr_nonnull(text);
    return text;
}

static void assert_has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return;
    }
    ck_abort_msg("missing line \"%s\" in:\n%s", line, text);
}

static int count_occurrences(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

START_TEST(test_metrics_counter_gauge) {
    metric *c = metric_counter("t1_requests_total", "Requests served.", "route=\"balance\"");
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_eq(metric_counter("t1_requests_total", "Requests served.", "route=\"balance\""),
                     c);
    metric *c2 = metric_counter("t1_requests_total", "Requests served.", "route=\"purchase\"");
    ck_assert_ptr_ne(c2, c);
    metric *plain = metric_counter("t1_plain_total", "No labels.", NULL);
    ck_assert_ptr_eq(metric_counter("t1_plain_total", "No labels.", ""), plain);
    metric_add(c, 2);
    metric_add(c, 1);
    metric_add(c, -5); /* counters never go down */
    metric_add(plain, 7);
    ck_assert_int_eq(metric_value(c), 3);
    ck_assert_int_eq(metric_value(c2), 0);

    metric *g = metric_gauge("t1_in_flight", "In-flight requests.", NULL);
    metric_set(g, 10);
    metric_add(g, -3);
    ck_assert_int_eq(metric_value(g), 7);
    metric_set(c, 100); /* not a gauge: ignored */
    ck_assert_int_eq(metric_value(c), 3);

    /* One name, one type. */
    ck_assert_ptr_null(metric_gauge("t1_requests_total", "x", "route=\"balance\""));
    ck_assert_ptr_null(metric_counter(NULL, "x", NULL));

    char *text = render();
    assert_has_line(text, "# HELP t1_requests_total Requests served.");
    assert_has_line(text, "# TYPE t1_requests_total counter");
    assert_has_line(text, "t1_requests_total{route=\"balance\"} 3");
    assert_has_line(text, "t1_requests_total{route=\"purchase\"} 0");
    assert_has_line(text, "# TYPE t1_plain_total counter");
    assert_has_line(text, "t1_plain_total 7");
    assert_has_line(text, "# TYPE t1_in_flight gauge");
    assert_has_line(text, "t1_in_flight 7");
    ck_assert_int_eq(count_occurrences(text, "# HELP t1_requests_total "), 1);
    ck_assert_int_eq(count_occurrences(text, "# TYPE t1_requests_total "), 1);
    free(text);

    /* NULL is harmless. */
    metric_add(NULL, 1);
    metric_set(NULL, 1);
    metric_observe_ms(NULL, 1);
    ck_assert_int_eq(metric_value(NULL), 0);
}
END_TEST

START_TEST(test_metrics_grouping) {
    /* Series of one name registered apart still render together. */
    metric *a = metric_counter("t2_group_total", "Grouped.", "k=\"a\"");
    metric *other = metric_counter("t2_other_total", "Other.", NULL);
    metric *b = metric_counter("t2_group_total", "Grouped.", "k=\"b\"");
    metric_add(a, 1);
    metric_add(b, 2);
    metric_add(other, 3);
    char *text = render();
    ck_assert_int_eq(count_occurrences(text, "# HELP t2_group_total "), 1);
    ck_assert_int_eq(count_occurrences(text, "# TYPE t2_group_total counter\n"), 1);
    const char *type = strstr(text, "# TYPE t2_group_total counter\n");
    const char *sa = strstr(text, "t2_group_total{k=\"a\"} 1\n");
    const char *sb = strstr(text, "t2_group_total{k=\"b\"} 2\n");
    const char *so = strstr(text, "# HELP t2_other_total");
    ck_assert_ptr_nonnull(type);
    ck_assert_ptr_nonnull(sa);
    ck_assert_ptr_nonnull(sb);
    ck_assert_ptr_nonnull(so);
    ck_assert(type < sa && sa < sb);
    ck_assert(sb < so || so < type); /* no other family in between */
    ck_assert_msg(!(so > type && so < sb), "family split:\n%s", text);

    metric *h = metric_counter("t2_help_total", "Line one\nback\\slash", NULL);
    ck_assert_ptr_nonnull(h);
    free(text);
    text = render();
    assert_has_line(text, "# HELP t2_help_total Line one\\nback\\\\slash");
    free(text);
}
END_TEST

START_TEST(test_metrics_histogram) {
    metric *h = metric_histogram("t3_latency_seconds", "Latency.", "route=\"balance\"");
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_eq(metric_histogram("t3_latency_seconds", "Latency.", "route=\"balance\""), h);
    metric_observe_ms(h, 0.5);   /* <= 0.001 */
    metric_observe_ms(h, 1.0);   /* exactly on the 0.001 bound */
    metric_observe_ms(h, 3);     /* <= 0.005 */
    metric_observe_ms(h, 20);    /* <= 0.025 */
    metric_observe_ms(h, 20000); /* above 10s: +Inf only */
    metric_observe_ms(h, -4);    /* clamped to 0 */
    metric_observe_ms(h, NAN);   /* ignored */
    ck_assert_int_eq(metric_value(h), 6);
    metric_add(h, 5); /* not a counter: ignored */
    ck_assert_int_eq(metric_value(h), 6);

    metric *plain = metric_histogram("t3_plain_seconds", "Plain.", NULL);
    metric_observe_ms(plain, 250);

    char *text = render();
    assert_has_line(text, "# HELP t3_latency_seconds Latency.");
    assert_has_line(text, "# TYPE t3_latency_seconds histogram");
    static const char *lines[] = {
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.001\"} 3",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.0025\"} 3",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.005\"} 4",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.01\"} 4",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.025\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.05\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.1\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.25\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"0.5\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"1\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"2.5\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"5\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"10\"} 5",
        "t3_latency_seconds_bucket{route=\"balance\",le=\"+Inf\"} 6",
        "t3_latency_seconds_sum{route=\"balance\"} 20.024500",
        "t3_latency_seconds_count{route=\"balance\"} 6",
        "# TYPE t3_plain_seconds histogram",
        "t3_plain_seconds_bucket{le=\"0.1\"} 0",
        "t3_plain_seconds_bucket{le=\"0.25\"} 1",
        "t3_plain_seconds_bucket{le=\"10\"} 1",
        "t3_plain_seconds_bucket{le=\"+Inf\"} 1",
        "t3_plain_seconds_sum 0.250000",
        "t3_plain_seconds_count 1",
    };
    for (size_t i = 0; i < N_ELEMS(lines); i++) assert_has_line(text, lines[i]);
    /* Buckets appear in ascending order, +Inf last. */
    ck_assert(strstr(text, "le=\"0.001\"} 3") < strstr(text, "le=\"0.0025\"} 3"));
    ck_assert(strstr(text, "route=\"balance\",le=\"10\"") <
              strstr(text, "route=\"balance\",le=\"+Inf\""));
    ck_assert(strstr(text, "route=\"balance\",le=\"+Inf\"") <
              strstr(text, "t3_latency_seconds_sum{"));
    free(text);
}
END_TEST

enum { THREADS = 8, PER_THREAD = 20000 };

static void *hammer(void *arg) {
    (void)arg;
    metric *c = metric_counter("t4_concurrent_total", "Concurrent.", NULL);
    metric *h = metric_histogram("t4_concurrent_seconds", "Concurrent.", NULL);
    for (int i = 0; i < PER_THREAD; i++) {
        metric_add(c, 1);
        metric_observe_ms(h, 2);
    }
    return NULL;
}

START_TEST(test_metrics_concurrent) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    metric *c = metric_counter("t4_concurrent_total", "Concurrent.", NULL);
    ck_assert_int_eq(metric_value(c), THREADS * PER_THREAD);
    char *text = render();
    char line[128];
    snprintf(line, sizeof line, "t4_concurrent_total %d", THREADS * PER_THREAD);
    assert_has_line(text, line);
    snprintf(line, sizeof line, "t4_concurrent_seconds_bucket{le=\"0.0025\"} %d",
             THREADS * PER_THREAD);
    assert_has_line(text, line);
    snprintf(line, sizeof line, "t4_concurrent_seconds_count %d", THREADS * PER_THREAD);
    assert_has_line(text, line);
    snprintf(line, sizeof line, "t4_concurrent_seconds_sum %.6f", THREADS * PER_THREAD * 0.002);
    assert_has_line(text, line);
    ck_assert_int_eq(count_occurrences(text, "# TYPE t4_concurrent_total"), 1);
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, test_metrics_counter_gauge);
    tcase_add_test(tc, test_metrics_grouping);
    tcase_add_test(tc, test_metrics_histogram);
    tcase_add_test(tc, test_metrics_concurrent);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
