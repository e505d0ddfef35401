/* Prometheus metrics registry: see metrics.h.
 *
 * Metrics live in one process-wide singly linked list, appended under a
 * mutex and never freed (they are registered once at start-up and live as
 * long as the process). Updates are lock-free atomics; metrics_render()
 * takes the registration lock only to walk the list safely. */
#include "shared/plumbing/metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const double bucket_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])

struct metric {
    struct metric *next;
    enum metric_type type;
    char *name;
    char *help;
    char *labels;                   /* NULL when the series has no labels */
    _Atomic long value;             /* counters and gauges */
    _Atomic long buckets[NBUCKETS]; /* histograms: per bucket, not cumulative */
    _Atomic long long sum_us;       /* histograms: sum of observations */
    _Atomic long count;             /* histograms: number of observations */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static metric *registry_head;
static metric *registry_tail;

static const char *type_name(enum metric_type t) {
    switch (t) {
    case METRIC_COUNTER: return "counter";
    case METRIC_GAUGE: return "gauge";
    default: return "histogram";
    }
}

static int same_labels(const char *a, const char *b) {
    if (a == NULL || b == NULL) return a == b;
    return strcmp(a, b) == 0;
}

static metric *metric_register(enum metric_type type, const char *name, const char *help,
                               const char *labels) {
    if (name == NULL || name[0] == '\0') return NULL;
    if (labels != NULL && labels[0] == '\0') labels = NULL;

    metric *found = NULL;
    pthread_mutex_lock(&registry_lock);
    for (metric *m = registry_head; m != NULL; m = m->next) {
        if (strcmp(m->name, name) != 0) continue;
        if (m->type != type) {
            /* One name, one type: Prometheus would reject the exposition. */
            pthread_mutex_unlock(&registry_lock);
            fprintf(stderr, "metrics: %s registered again as %s (was %s)\n", name, type_name(type),
                    type_name(m->type));
            return NULL;
        }
        if (same_labels(m->labels, labels)) {
            found = m;
            break;
        }
    }
    if (found == NULL) {
        metric *m = calloc(1, sizeof *m);
        if (m != NULL) {
            m->type = type;
            m->name = strdup(name);
            m->help = strdup(help != NULL ? help : "");
            m->labels = labels != NULL ? strdup(labels) : NULL;
            if (m->name == NULL || m->help == NULL || (labels != NULL && m->labels == NULL)) {
                free(m->name);
                free(m->help);
                free(m->labels);
                free(m);
                m = NULL;
            }
        }
        if (m != NULL) {
            atomic_init(&m->value, 0);
            for (size_t i = 0; i < NBUCKETS; i++) atomic_init(&m->buckets[i], 0);
            atomic_init(&m->sum_us, 0);
            atomic_init(&m->count, 0);
            if (registry_tail != NULL)
                registry_tail->next = m;
            else
                registry_head = m;
            registry_tail = m;
        }
        found = m;
    }
    pthread_mutex_unlock(&registry_lock);
    return found;
}

metric *metric_counter(const char *name, const char *help, const char *labels) {
    return metric_register(METRIC_COUNTER, name, help, labels);
}

metric *metric_gauge(const char *name, const char *help, const char *labels) {
    return metric_register(METRIC_GAUGE, name, help, labels);
}

metric *metric_histogram(const char *name, const char *help, const char *labels) {
    return metric_register(METRIC_HISTOGRAM, name, help, labels);
}

/* Counters only go up: a negative delta on a counter is ignored. */
void metric_add(metric *m, long delta) {
    if (m == NULL || m->type == METRIC_HISTOGRAM) return;
    if (m->type == METRIC_COUNTER && delta < 0) return;
    atomic_fetch_add_explicit(&m->value, delta, memory_order_relaxed);
}

void metric_set(metric *m, long value) {
    if (m == NULL || m->type != METRIC_GAUGE) return;
    atomic_store_explicit(&m->value, value, memory_order_relaxed);
}

void metric_observe_ms(metric *m, double ms) {
    if (m == NULL || m->type != METRIC_HISTOGRAM || isnan(ms)) return;
    if (ms < 0) ms = 0;
    double seconds = ms / 1000.0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        if (seconds <= bucket_bounds[i]) {
            atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    /* Observations above the last bound only show in +Inf (= count). */
    double us = ms * 1000.0;
    long long add = us >= 9e18 ? (long long)9e18 : llround(us);
    atomic_fetch_add_explicit(&m->sum_us, add, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

long metric_value(const metric *m) {
    if (m == NULL) return 0;
    if (m->type == METRIC_HISTOGRAM)
        return atomic_load_explicit(&((metric *)m)->count, memory_order_relaxed);
    return atomic_load_explicit(&((metric *)m)->value, memory_order_relaxed);
}

/* HELP text escaping per the text format: backslash and newline. */
static void put_help(FILE *f, const char *help) {
    for (const char *p = help; *p != '\0'; p++) {
        if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
}

static void render_series(FILE *f, metric *m) {
    if (m->type != METRIC_HISTOGRAM) {
        long v = atomic_load_explicit(&m->value, memory_order_relaxed);
        if (m->labels != NULL)
            fprintf(f, "%s{%s} %ld\n", m->name, m->labels, v);
        else
            fprintf(f, "%s %ld\n", m->name, v);
        return;
    }

    /* Read the count first: buckets may then run ahead of it by a few
     * in-flight observations, but +Inf is printed as max(cumulative, count)
     * so the series stays monotonic. */
    long count = atomic_load_explicit(&m->count, memory_order_relaxed);
    long long sum_us = atomic_load_explicit(&m->sum_us, memory_order_relaxed);
    const char *sep = m->labels != NULL ? "," : "";
    const char *labels = m->labels != NULL ? m->labels : "";
    long cumulative = 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        cumulative += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        fprintf(f, "%s_bucket{%s%sle=\"%g\"} %ld\n", m->name, labels, sep, bucket_bounds[i],
                cumulative);
    }
    if (count < cumulative) count = cumulative;
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %ld\n", m->name, labels, sep, count);
    if (m->labels != NULL) {
        fprintf(f, "%s_sum{%s} %.6f\n", m->name, labels, (double)sum_us / 1e6);
        fprintf(f, "%s_count{%s} %ld\n", m->name, labels, count);
    } else {
        fprintf(f, "%s_sum %.6f\n", m->name, (double)sum_us / 1e6);
        fprintf(f, "%s_count %ld\n", m->name, count);
    }
}

char *metrics_render(void) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (f == NULL) return NULL;

    pthread_mutex_lock(&registry_lock);
    for (metric *m = registry_head; m != NULL; m = m->next) {
        /* Render each name once, at its first registration, with all of
         * its series together. */
        int seen = 0;
        for (metric *p = registry_head; p != m; p = p->next) {
            if (strcmp(p->name, m->name) == 0) {
                seen = 1;
                break;
            }
        }
        if (seen) continue;
        fprintf(f, "# HELP %s ", m->name);
        put_help(f, m->help);
        fprintf(f, "\n# TYPE %s %s\n", m->name, type_name(m->type));
        for (metric *s = m; s != NULL; s = s->next) {
            if (strcmp(s->name, m->name) == 0) render_series(f, s);
        }
    }
    pthread_mutex_unlock(&registry_lock);

    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
