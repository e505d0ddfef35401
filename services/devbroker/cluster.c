/* devbroker's mock cluster and bootstrap file: see devbroker.h. */
#include "devbroker.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/text.h"
#include "shared/plumbing/files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "shared/plumbing/log.h"

struct devbroker {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    /* "No bootstrap.servers configured": true, and irrelevant for a handle
     * that only hosts the mock cluster. */
    if (strcmp(fac, "CONFWARN") == 0) return;
    log_level l = level <= 3   ? LOG_ERROR
                  : level == 4 ? LOG_WARN
                  : level <= 6 ? LOG_INFO
                               : LOG_DEBUG;
    log_write(l, NULL, "rdkafka %s: %s", fac, buf);
}

static int create_topic(devbroker *b, const char *topic, int partitions, int rf, char *err,
                        size_t errlen) {
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(b->mc, topic, partitions, rf);
    if (e) {
        text_printf(err, errlen, "create topic %s: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
    log_debug("devbroker: topic %s (%d partitions)", topic, partitions);
    return 0;
}

devbroker *devbroker_new(int brokers, int partitions, int reply_partitions, char *err,
                         size_t errlen) {
    devbroker *b = calloc(1, sizeof *b);
    if (!b) {
        text_printf(err, errlen, "out of memory");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "client.id", "devbroker", NULL, 0);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    char e[512];
    /* The handle only hosts the mock cluster; it never connects anywhere. */
    b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!b->rk) {
        text_printf(err, errlen, "rd_kafka_new: %s", e);
        rd_kafka_conf_destroy(conf);
        free(b);
        return NULL;
    }
    b->mc = rd_kafka_mock_cluster_new(b->rk, brokers);
    if (!b->mc) {
        text_printf(err, errlen, "could not start the mock cluster (see rdkafka logs)");
        rd_kafka_destroy(b->rk);
        free(b);
        return NULL;
    }
    /* The brokers refuse connections until every topic exists: a client
     * that knew this address (devbroker restarted on the same port) would
     * otherwise ask for a topic first, the mock cluster would create it
     * with its default partition count, and the creation below would fail. */
    for (int id = 1; id <= brokers; id++) rd_kafka_mock_broker_set_down(b->mc, id);
    int rf = brokers < 3 ? brokers : 3;
    char dlq[256];
    for (const millom_topic *t = millom_topics; t->name; t++) {
        int parts = t->kind == TOPIC_KIND_REPLIES ? reply_partitions : partitions;
        if (create_topic(b, t->name, parts, rf, err, errlen)) goto fail;
        if (t->kind != TOPIC_KIND_CONSUMED) continue;
        snprintf(dlq, sizeof dlq, "%s" TOPIC_DLQ_SUFFIX, t->name);
        if (create_topic(b, dlq, partitions, rf, err, errlen)) goto fail;
    }
    for (int id = 1; id <= brokers; id++) rd_kafka_mock_broker_set_up(b->mc, id);
    return b;
fail:
    devbroker_free(b);
    return NULL;
}

const char *devbroker_bootstraps(const devbroker *b) {
    return rd_kafka_mock_cluster_bootstraps(b->mc);
}

void devbroker_free(devbroker *b) {
    if (!b) return;
    rd_kafka_mock_cluster_destroy(b->mc);
    rd_kafka_destroy(b->rk);
    free(b);
}

int devbroker_write_file(const char *path, const char *bootstrap, char *err, size_t errlen) {
    if (files_mkdir_parents(path)) {
        text_printf(err, errlen, "create the directory of %s: %s", path, strerror(errno));
        return -1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        text_printf(err, errlen, "open %s: %s", tmp, strerror(errno));
        return -1;
    }
    char line[1024];
    int n = snprintf(line, sizeof line, "%s\n", bootstrap);
    if (n < 0 || (size_t)n >= sizeof line || write(fd, line, (size_t)n) != n || fsync(fd)) {
        text_printf(err, errlen, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path)) {
        text_printf(err, errlen, "rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
