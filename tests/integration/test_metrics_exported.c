/* The alert rules (the .yml files of docker/prometheus/rules) and the
 * Grafana dashboards (the .json files of docker/grafana/dashboards) name
 * only metrics the programs really export (issue 19 item 2). Starts the
 * whole stack, makes one read-path request and one purchase so the request
 * paths have run, reads GET /metrics of every program that
 * docker/prometheus/prometheus.yml scrapes, and checks that every Millom
 * metric name in those files (a token millom_..., in queries, summaries
 * and descriptions alike) is a series name or a `# TYPE` family there. A
 * name that no program exports would make an alert that can never fire,
 * or an empty panel; so would a counter registered only at its first
 * increase (the test found millom_edge_deadline_exceeded_total so).
 * Whether the files are valid (PromQL, promtool tests) is
 * tests/integration/test_observability_config.sh. */
#include <check.h>
#include <curl/curl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/stack.h"

#define BASE_PORT 22100
#define MAX_NAMES 1024
#define NAME_LEN 128

static test_stack stack;

typedef struct {
    char names[MAX_NAMES][NAME_LEN];
    int n;
} name_set;

static int name_set_has(const name_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return 1;
    return 0;
}

static void name_set_add(name_set *s, const char *name, size_t len) {
    ck_assert_msg(len > 0 && len < NAME_LEN, "metric name of %zu characters", len);
    char copy[NAME_LEN];
    memcpy(copy, name, len);
    copy[len] = '\0';
    if (name_set_has(s, copy)) return;
    ck_assert_int_lt(s->n, MAX_NAMES);
    memcpy(s->names[s->n++], copy, len + 1);
}

static int is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == ':';
}

/* Adds the names a Prometheus text exposition defines: every sample's name
 * (a histogram's _bucket, _sum and _count included) and every `# TYPE`
 * family (a histogram's base name). */
static void add_exposition_names(name_set *s, const char *text) {
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        const char *name = line;
        if (strncmp(line, "# TYPE ", 7) == 0)
            name = line + 7;
        else if (line[0] == '#')
            name = NULL;
        if (name) {
            size_t len = 0;
            while (is_name_char(name[len])) len++;
            if (len > 0) name_set_add(s, name, len);
        }
        line = end ? end + 1 : NULL;
    }
}

/* Adds every whole token of `text` that starts with "millom_" (metric
 * names; alert names are MillomCamelCase and settings MILLOM_UPPER, so
 * neither matches). */
static void add_referenced_names(name_set *s, const char *text) {
    for (const char *p = text; *p; p++) {
        if (p != text && is_name_char(p[-1])) continue;
        if (strncmp(p, "millom_", 7) != 0) continue;
        size_t len = 0;
        while (is_name_char(p[len])) len++;
        name_set_add(s, p, len);
        p += len - 1;
    }
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    fclose(f);
    return text;
}

/* Adds the names referenced by every file matching pattern; returns how
 * many files matched. */
static int add_names_of_files(name_set *s, const char *pattern) {
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) return 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *text = read_file(g.gl_pathv[i]);
        add_referenced_names(s, text);
        free(text);
    }
    int n = (int)g.gl_pathc;
    globfree(&g);
    return n;
}

/* The programs prometheus.yml scrapes, by job (compose service) name. */
static void add_exported_names(name_set *s) {
    const struct {
        const char *job;
        int port;
    } programs[] = {
        {"api-edge", stack.edge_port},           {"mno-sandbox", stack.mno_port},
        {"offer-resolver", stack.resolver_port}, {"purchase-executor", stack.executor_port},
        {"notifier", stack.notifier_port},       {"settlement-reporter", stack.settlement_port},
        {"sp-sandbox", stack.sp_port},
    };
    char *scrape_config = read_file("docker/prometheus/prometheus.yml");
    for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++) {
        char job[64];
        snprintf(job, sizeof job, "job_name: %s\n", programs[i].job);
        ck_assert_msg(strstr(scrape_config, job) != NULL, "prometheus.yml does not scrape %s",
                      programs[i].job);
        char url[128], host[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", programs[i].port);
        /* Prometheus finds the targets by DNS and names them by address:
         * api-edge must answer /metrics for a Host outside
         * MILLOM_ALLOWED_HOSTS. */
        snprintf(host, sizeof host, "Host: 172.31.0.9:%d", programs[i].port);
        const char *headers[] = {host, NULL};
        test_response r;
        ck_assert_int_eq(test_http("GET", url, headers, NULL, &r), 0);
        ck_assert_msg(r.status == 200, "%s: GET /metrics answered %ld", programs[i].job, r.status);
        add_exposition_names(s, r.body);
        test_response_free(&r);
    }
    free(scrape_config);
}

/* One balance request and one purchase through api-edge: the read path,
 * the purchase path, the outbox and the consumers downstream have run. */
static void drive_traffic(void) {
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/std/testserviceprovider/tp/924542610003/balance",
             stack.edge_port);
    test_response r;
    ck_assert_int_eq(test_http("GET", url, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    test_response_free(&r);

    snprintf(url, sizeof url,
             "http://127.0.0.1:%d/std/testserviceprovider/tp/924542610003/upsellOffer",
             stack.edge_port);
    long status = 0;
    json_t *offers = test_get_json(url, NULL, &status);
    ck_assert_int_eq(status, 200);
    json_t *first = json_array_get(json_object_get(offers, "offers"), 0);
    const char *plan = json_string_value(json_object_get(first, "planId"));
    const char *context = json_string_value(json_object_get(first, "offerContext"));
    ck_assert_msg(plan && context, "upsellOffer gave no offer");
    json_t *body = json_pack("{s:s, s:s, s:s}", "transid", "metrics-exported-1", "planid", plan,
                             "offercontext", context);
    char *text = json_dumps(body, JSON_COMPACT);
    snprintf(url, sizeof url,
             "http://127.0.0.1:%d/std/testserviceprovider/tp/924542610003/purchasePlan",
             stack.edge_port);
    ck_assert_int_eq(test_http("POST", url, NULL, text, &r), 0);
    ck_assert_msg(r.status == 200 || r.status == 202, "purchasePlan answered %ld: %s", r.status,
                  r.body ? r.body : "");
    test_response_free(&r);
    free(text);
    json_decref(body);
    json_decref(offers);
}

START_TEST(rules_and_dashboards_name_only_exported_metrics) {
    drive_traffic();

    static name_set exported, referenced;
    add_exported_names(&exported);
    ck_assert_int_ge(add_names_of_files(&referenced, "docker/prometheus/rules/*.yml"), 1);
    ck_assert_int_ge(add_names_of_files(&referenced, "docker/grafana/dashboards/*.json"), 1);
    /* The scan found the names the issue asks alerts for (and so works). */
    const char *wanted[] = {"millom_kafka_consumer_lag",
                            "millom_kafka_dlq_total",
                            "millom_outbox_depth",
                            "millom_purchases_stuck",
                            "millom_delivery_queue_depth",
                            "millom_http_requests_total",
                            "millom_http_request_seconds_bucket",
                            NULL};
    for (size_t i = 0; wanted[i]; i++)
        ck_assert_msg(name_set_has(&referenced, wanted[i]), "the rules do not use %s", wanted[i]);

    int missing = 0;
    for (int i = 0; i < referenced.n; i++) {
        if (name_set_has(&exported, referenced.names[i])) continue;
        fprintf(stderr, "not exported by any program: %s\n", referenced.names[i]);
        missing++;
    }
    ck_assert_msg(missing == 0, "%d of %d referenced metric names are exported by no program",
                  missing, referenced.n);
    fprintf(stderr, "%d referenced metric names, all among the %d the programs export\n",
            referenced.n, exported.n);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *env[] = {NULL};
    if (stack_start(&stack, BASE_PORT, env) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        return 1;
    }
    Suite *s = suite_create("metrics_exported");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rules_and_dashboards_name_only_exported_metrics);
    suite_add_tcase(s, tc);
    return stack_run_suite(&stack, s);
}
