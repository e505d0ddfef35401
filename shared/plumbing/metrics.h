/* Prometheus metrics: counters, gauges and latency histograms in one
 * process-wide registry, rendered as text for GET /metrics. Updates are
 * lock-free (atomics); registration takes a lock, so register once and
 * keep the pointer. */
#ifndef MILLOM_METRICS_H
#define MILLOM_METRICS_H

typedef struct metric metric;

/* `labels` is the inside of the braces, e.g. "route=\"balance\"", or NULL.
 * The same name and labels return the same metric. */
metric *metric_counter(const char *name, const char *help, const char *labels);
metric *metric_gauge(const char *name, const char *help, const char *labels);
/* Buckets in seconds: 1ms .. 10s. */
metric *metric_histogram(const char *name, const char *help, const char *labels);

void metric_add(metric *m, long delta);       /* counters and gauges */
void metric_set(metric *m, long value);       /* gauges */
void metric_observe_ms(metric *m, double ms); /* histograms */
long metric_value(const metric *m);

/* Prometheus text exposition of every metric. Caller frees. */
char *metrics_render(void);

#endif
