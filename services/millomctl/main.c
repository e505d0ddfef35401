/* millomctl: command-line entry; see millomctl.h for the commands. */
#include "millomctl.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/topics.h"

#include <stdlib.h>
#include <string.h>

#include "shared/plumbing/log.h"
#include "shared/plumbing/service.h"

static int usage(void) {
    fprintf(stderr,
            "usage: millomctl settlements tail [--format csv|json] [--from-beginning]\n"
            "                                  [--max N] [--idle-exit-ms MS]\n"
            "       millomctl reports tail     (same options)\n"
            "       millomctl purchases generate --count N [--day YYYY-MM-DD] [--prefix P]\n"
            "       millomctl events generate --count N --msisdn M [--msisdn M2]... [--type T]\n"
            "                                 [--operator OP] [--prefix P] [--times FILE]\n"
            "       millomctl link --path /rnf/... [--base URL] [--ttl S] [--param k=v]...\n"
            "       millomctl purchases get TRANSID [--operator OP] [--service-provider SP]\n"
            "                                       [--edge URL] [--format table|json|csv]\n"
            "       millomctl consents SUBSCRIBER   (same options)\n"
            "       millomctl dlq list [TOPIC] [--max N] [--timeout-ms MS] [--format F]\n"
            "       millomctl dlq replay TOPIC [--dry-run] [--max N] [--timeout-ms MS]\n"
            "                                  [--format F]\n"
            "exit codes of purchases, consents and dlq: 0 ok, 1 not found, 2 usage,\n"
            "3 api-edge or the broker unreachable, 4 refused or failed\n");
    return CTL_EXIT_USAGE;
}

static int parse_long(const char *s, long *out) {
    char *end;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || !*s || *end || v < 0) return -1;
    *out = v;
    return 0;
}

static int tail_main(const char *topic, int argc, char **argv) {
    tail_opts o = {.topic = topic, .format = OUT_CSV};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--from-beginning") == 0) {
            o.from_beginning = 1;
        } else if (strcmp(a, "--format") == 0 && v) {
            if (strcmp(v, "csv") == 0)
                o.format = OUT_CSV;
            else if (strcmp(v, "json") == 0)
                o.format = OUT_JSON;
            else
                return usage();
            i++;
        } else if (strcmp(a, "--max") == 0 && parse_long(v, &o.max) == 0) {
            i++;
        } else if (strcmp(a, "--idle-exit-ms") == 0 && parse_long(v, &o.idle_exit_ms) == 0) {
            i++;
        } else {
            return usage();
        }
    }
    return tail_run(&o);
}

static int generate_main(int argc, char **argv) {
    generate_opts o = {0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--count") == 0 && parse_long(v, &o.count) == 0)
            i++;
        else if (strcmp(a, "--day") == 0 && v)
            o.day = argv[++i];
        else if (strcmp(a, "--prefix") == 0 && v)
            o.prefix = argv[++i];
        else
            return usage();
    }
    return o.count > 0 ? generate_run(&o) : usage();
}

static int events_main(int argc, char **argv) {
    events_opts o = {.type = "low-data", .op = "tp"};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--count") == 0 && parse_long(v, &o.count) == 0)
            i++;
        else if (strcmp(a, "--msisdn") == 0 && v && o.n_msisdns < MILLOMCTL_MAX_LIST)
            o.msisdns[o.n_msisdns++] = argv[++i];
        else if (strcmp(a, "--type") == 0 && v)
            o.type = argv[++i];
        else if (strcmp(a, "--operator") == 0 && v)
            o.op = argv[++i];
        else if (strcmp(a, "--prefix") == 0 && v)
            o.prefix = argv[++i];
        else if (strcmp(a, "--times") == 0 && v)
            o.times_file = argv[++i];
        else
            return usage();
    }
    return o.count > 0 && o.n_msisdns > 0 ? events_run(&o) : usage();
}

static int link_main(int argc, char **argv) {
    link_opts o = {.ttl_s = 600};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (strcmp(a, "--path") == 0 && v) {
            o.path = argv[++i];
        } else if (strcmp(a, "--base") == 0 && v) {
            o.base = argv[++i];
        } else if (strcmp(a, "--ttl") == 0 && v) {
            o.ttl_s = strtol(v, &end, 10); /* <= 0: an expired link, for tests */
            if (!*v || *end) return usage();
            i++;
        } else if (strcmp(a, "--param") == 0 && v && o.n_params < MILLOMCTL_MAX_LIST) {
            o.params[o.n_params++] = argv[++i];
        } else {
            return usage();
        }
    }
    return o.path ? link_run(&o) : usage();
}

/* purchases get TRANSID / consents SUBSCRIBER and their options. */
static int mgmt_main(int argc, char **argv, int (*run)(const mgmt_opts *, const char *)) {
    char edge[64];
    snprintf(edge, sizeof edge, "http://127.0.0.1:%s", setting_str("MILLOM_EDGE_PORT", "8080"));
    mgmt_opts o = {.format = OUT_TABLE, .edge = edge, .op = "tp"};
    const char *subject = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--format") == 0 && parse_format(v, &o.format) == 0)
            i++;
        else if (strcmp(a, "--operator") == 0 && v)
            o.op = argv[++i];
        else if (strcmp(a, "--service-provider") == 0 && v)
            o.provider = argv[++i];
        else if (strcmp(a, "--edge") == 0 && v)
            o.edge = argv[++i];
        else if (a[0] != '-' && !subject)
            subject = a;
        else
            return usage();
    }
    return subject && *subject ? run(&o, subject) : usage();
}

static int dlq_main(int argc, char **argv, int replay) {
    dlq_opts o = {.format = OUT_TABLE, .replay = replay, .timeout_ms = 10000};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--format") == 0 && parse_format(v, &o.format) == 0)
            i++;
        else if (strcmp(a, "--dry-run") == 0 && replay)
            o.dry_run = 1;
        else if (strcmp(a, "--max") == 0 && parse_long(v, &o.max) == 0)
            i++;
        else if (strcmp(a, "--timeout-ms") == 0 && parse_long(v, &o.timeout_ms) == 0 &&
                 o.timeout_ms > 0)
            i++;
        else if (a[0] != '-' && !o.topic)
            o.topic = a;
        else
            return usage();
    }
    if (replay && !o.topic) return usage();
    return dlq_run(&o);
}

int main(int argc, char **argv) {
    /* Logs (warnings of librdkafka) go to stderr; rows to stdout. */
    if (!setting_str("MILLOM_LOG_LEVEL", NULL)) setenv("MILLOM_LOG_LEVEL", "warn", 1);
    service_init("millomctl");
    if (argc >= 3 && strcmp(argv[1], "settlements") == 0 && strcmp(argv[2], "tail") == 0)
        return tail_main(TOPIC_SETTLEMENT_RECORDS, argc - 3, argv + 3);
    if (argc >= 3 && strcmp(argv[1], "reports") == 0 && strcmp(argv[2], "tail") == 0)
        return tail_main(TOPIC_SETTLEMENT_REPORTS, argc - 3, argv + 3);
    if (argc >= 3 && strcmp(argv[1], "purchases") == 0 && strcmp(argv[2], "generate") == 0)
        return generate_main(argc - 3, argv + 3);
    if (argc >= 3 && strcmp(argv[1], "events") == 0 && strcmp(argv[2], "generate") == 0)
        return events_main(argc - 3, argv + 3);
    if (argc >= 2 && strcmp(argv[1], "link") == 0) return link_main(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "purchases") == 0 && strcmp(argv[2], "get") == 0)
        return mgmt_main(argc - 3, argv + 3, purchases_get_run);
    if (argc >= 2 && strcmp(argv[1], "consents") == 0)
        return mgmt_main(argc - 2, argv + 2, consents_run);
    if (argc >= 3 && strcmp(argv[1], "dlq") == 0 && strcmp(argv[2], "list") == 0)
        return dlq_main(argc - 3, argv + 3, 0);
    if (argc >= 3 && strcmp(argv[1], "dlq") == 0 && strcmp(argv[2], "replay") == 0)
        return dlq_main(argc - 3, argv + 3, 1);
    return usage();
}
