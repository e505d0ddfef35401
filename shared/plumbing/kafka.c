/* Kafka on librdkafka: see kafka.h. */
#include "shared/plumbing/kafka.h"
#include "shared/plumbing/settings.h"
#include "shared/plumbing/clock.h"
#include "shared/plumbing/correlator.h"
#include "shared/plumbing/text.h"
#include "shared/plumbing/topics.h"
#include "shared/plumbing/kafka_lag.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "shared/plumbing/log.h"
#include "shared/plumbing/metrics.h"
#include "shared/plumbing/service.h"

#define DEFAULT_BROKER_FILE "var/broker.bootstrap"
#define BOOTSTRAP_WAIT_MS 10000
#define QUEUE_FULL_RETRY_MS 1000
#define RETRY_BACKOFF_MIN_MS 100
#define RETRY_BACKOFF_MAX_MS 5000

/* ---------------------------------------------------------------- helpers */

static double mono_ms_f(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The Kafka settings of every client, read once through shared/plumbing/settings.h
 * when the first client (or the health metric) starts: a bad value exits 1
 * with a message that names the variable. */
static struct {
    long down_ready_s;         /* MILLOM_KAFKA_DOWN_READY_S */
    long fetch_wait_ms;        /* MILLOM_KAFKA_FETCH_WAIT_MS */
    long background_wait_ms;   /* MILLOM_KAFKA_BACKGROUND_FETCH_WAIT_MS */
    long linger_ms;            /* MILLOM_KAFKA_LINGER_MS */
    long background_linger_ms; /* MILLOM_KAFKA_BACKGROUND_LINGER_MS */
    long commit_interval_ms;   /* MILLOM_KAFKA_COMMIT_INTERVAL_MS */
    long session_timeout_ms;   /* MILLOM_KAFKA_SESSION_TIMEOUT_MS */
    long batch_max;            /* MILLOM_BATCH_MAX */
    long batch_wait_ms;        /* MILLOM_BATCH_WAIT_MS */
    const char *offset_reset;  /* MILLOM_KAFKA_OFFSET_RESET */
    const char *debug;         /* MILLOM_KAFKA_DEBUG, e.g. "cgrp,fetch" */
    const char *broker_file;   /* MILLOM_BROKER_FILE */
    const char *profile;       /* MILLOM_PROFILE */
} kset;
static pthread_once_t kset_once = PTHREAD_ONCE_INIT;

static void kset_read(void) {
    static const char *const resets[] = {"earliest", "latest", NULL};
    settings_reader s = SETTINGS_INIT;
    kset.down_ready_s = settings_seconds(&s, "MILLOM_KAFKA_DOWN_READY_S", 10, 0, 86400);
    kset.fetch_wait_ms = settings_ms(&s, "MILLOM_KAFKA_FETCH_WAIT_MS", 500, 0, 300000);
    kset.background_wait_ms =
        settings_ms(&s, "MILLOM_KAFKA_BACKGROUND_FETCH_WAIT_MS", 500, 0, 300000);
    kset.linger_ms = settings_ms(&s, "MILLOM_KAFKA_LINGER_MS", 1, 0, 900000);
    kset.background_linger_ms = settings_ms(&s, "MILLOM_KAFKA_BACKGROUND_LINGER_MS", 5, 0, 900000);
    kset.commit_interval_ms = settings_ms(&s, "MILLOM_KAFKA_COMMIT_INTERVAL_MS", 100, 0, 3600000);
    kset.session_timeout_ms = settings_ms(&s, "MILLOM_KAFKA_SESSION_TIMEOUT_MS", 10000, 1, 3600000);
    kset.batch_max = settings_long(&s, "MILLOM_BATCH_MAX", 500, 1, 100000);
    kset.batch_wait_ms = settings_ms(&s, "MILLOM_BATCH_WAIT_MS", 2, 0, 60000);
    kset.offset_reset = resets[settings_enum(&s, "MILLOM_KAFKA_OFFSET_RESET", resets, 0)];
    kset.debug = settings_str(&s, "MILLOM_KAFKA_DEBUG", NULL);
    kset.broker_file = settings_str(&s, "MILLOM_BROKER_FILE", DEFAULT_BROKER_FILE);
    kset.profile = settings_str(&s, "MILLOM_PROFILE", NULL);
    settings_exit_on_error(&s);
}

void kafka_settings_load(void) { pthread_once(&kset_once, kset_read); }

static void kset_load(void) { kafka_settings_load(); }

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                    size_t errlen) {
    char e[256];
    if (rd_kafka_conf_set(conf, name, value, e, sizeof e) != RD_KAFKA_CONF_OK) {
        text_printf(err, errlen, "kafka config %s=%s: %s", name, value, e);
        return -1;
    }
    return 0;
}

static int conf_set_long(rd_kafka_conf_t *conf, const char *name, long value, char *err,
                         size_t errlen) {
    char v[32];
    snprintf(v, sizeof v, "%ld", value);
    return conf_set(conf, name, v, err, errlen);
}

/* ---------------------------------------------------------------- metrics */

static metric *m_produced, *m_produce_errors, *m_produce_seconds, *m_handler_seconds;
static metric *m_batches, *m_batch_messages, *m_batch_fallbacks;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;
static void health_init(void); /* broker health, below */

static void metrics_init(void) {
    m_produced =
        metric_counter("millom_kafka_produced_total", "Messages the broker acknowledged.", NULL);
    m_produce_errors = metric_counter("millom_kafka_produce_errors_total",
                                      "Messages that could not be produced.", NULL);
    m_produce_seconds =
        metric_histogram("millom_kafka_produce_seconds",
                         "Time from enqueueing a message to the broker's acknowledgement.", NULL);
    m_handler_seconds = metric_histogram("millom_kafka_handler_seconds",
                                         "Time spent in Kafka message handlers.", NULL);
    m_batches = metric_counter("millom_kafka_batches_total",
                               "Batches of messages handled in one transaction.", NULL);
    m_batch_messages = metric_counter("millom_kafka_batch_messages_total",
                                      "Messages handled in batches (divide by batches: the mean "
                                      "batch size).",
                                      NULL);
    m_batch_fallbacks = metric_counter("millom_kafka_batch_fallbacks_total",
                                       "Batches rolled back and handled again message by message "
                                       "(a handler refused a message, or the commit failed).",
                                       NULL);
    health_init();
}

static metric *topic_counter(const char *name, const char *help, const char *topic) {
    char labels[320];
    snprintf(labels, sizeof labels, "topic=\"%s\"", topic);
    return metric_counter(name, help, labels);
}

#define CONSUMED_NAME "millom_kafka_consumed_total"
#define CONSUMED_HELP "Messages handed to a consumer's handler."
#define DLQ_NAME "millom_kafka_dlq_total"
#define DLQ_HELP "Messages sent to a dead-letter topic, by source topic."

/* ---------------------------------------------------------- broker health
 *
 * Process-wide, for /readyz (kafka_healthy). librdkafka reports through
 * error_cb when every broker it knows became unreachable
 * (_ALL_BROKERS_DOWN) and when an idempotent producer hit a fatal error
 * (_FATAL); it reports nothing when a broker comes back, so a producer's
 * thread asks for metadata once a second while brokers are down and the
 * first answer ends the outage. A short outage (a broker restarting) keeps
 * the process ready; one longer than MILLOM_KAFKA_DOWN_READY_S (default 10)
 * makes it not ready, logged once when it starts and once when it ends. A
 * fatal error is permanent: logged once, not ready, and the process is
 * asked to stop (exit status 1, see kafka_fatal_error_seen) so its
 * supervisor (compose's restart policy) starts a fresh one. */

static atomic_llong brokers_down_since; /* mono_ms of the outage's start; 0: up */
static atomic_llong brokers_back_at;    /* mono_ms the last outage ended; 0: none yet */
static atomic_int outage_reported;      /* the outage's "not ready" was logged */
static atomic_int fatal_seen;
static long down_ready_ms = 10000; /* MILLOM_KAFKA_DOWN_READY_S */
static metric *m_broker_up;

static void health_init(void) {
    kset_load();
    down_ready_ms = kset.down_ready_s * 1000;
    m_broker_up = metric_gauge("millom_kafka_broker_up",
                               "1 while a Kafka broker is reachable, 0 while none is.", NULL);
    metric_set(m_broker_up, 1);
}

int kafka_fatal_error_seen(void) { return atomic_load(&fatal_seen); }

int kafka_healthy(void) {
    pthread_once(&metrics_once, metrics_init); /* down_ready_ms */
    if (atomic_load(&fatal_seen)) return 0;
    long long since = atomic_load(&brokers_down_since);
    return since == 0 || mono_ms() - since < down_ready_ms;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t cause = rd_kafka_fatal_error(rk, why, sizeof why);
        if (atomic_exchange(&fatal_seen, 1) == 0) {
            log_error("kafka %s: fatal error %s: %s; not ready, stopping (exit status 1) to "
                      "be restarted",
                      rd_kafka_name(rk), rd_kafka_err2name(cause), why);
            metric_set(m_broker_up, 0);
            service_request_stop();
        }
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        long long up = 0;
        if (atomic_compare_exchange_strong(&brokers_down_since, &up, (long long)mono_ms())) {
            metric_set(m_broker_up, 0);
            log_warn("kafka %s: no broker reachable (%s); not ready if none is back within "
                     "%ld s",
                     rd_kafka_name(rk), reason, down_ready_ms / 1000);
        }
        return;
    }
    /* Connection failures are also logged by log_cb ("FAIL"); others here. */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
        log_debug("kafka %s: %s", rd_kafka_name(rk), reason);
    else
        log_warn("kafka %s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name(err), reason);
}

/* Called by a producer's thread between polls: logs an outage that lasted
 * past the readiness limit, and ends one when a broker answers. */
static void health_check(rd_kafka_t *rk, double *last_probe_ms) {
    long long since = atomic_load(&brokers_down_since);
    if (since == 0) return;
    long long down_ms = (long long)mono_ms() - since;
    if (down_ms >= down_ready_ms && atomic_exchange(&outage_reported, 1) == 0)
        log_error("kafka: no broker reachable for %lld s: not ready", down_ms / 1000);
    double now = mono_ms_f();
    if (now - *last_probe_ms < 1000.0) return;
    *last_probe_ms = now;
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    rd_kafka_metadata_destroy(md);
    if (!atomic_compare_exchange_strong(&brokers_down_since, &since, 0)) return;
    atomic_store(&brokers_back_at, (long long)mono_ms());
    metric_set(m_broker_up, 1);
    down_ms = (long long)mono_ms() - since;
    if (atomic_exchange(&outage_reported, 0))
        log_info("kafka: a broker is reachable again after %lld s: ready", down_ms / 1000);
    else
        log_info("kafka: a broker is reachable again after %lld ms", down_ms);
}

/* -------------------------------------------------------------- bootstrap */

static char *trim(char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* The trimmed contents of a small file, or NULL if absent or empty. */
static char *read_trimmed(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *t = trim(buf);
    return *t ? strdup(t) : NULL;
}

char *kafka_bootstrap(char *err, size_t errlen) {
    kset_load();
    const char *env = setting_str("KAFKA_BOOTSTRAP", NULL);
    if (env && *env) {
        char *copy = strdup(env);
        char *t = trim(copy);
        if (*t) {
            memmove(copy, t, strlen(t) + 1);
            return copy;
        }
        free(copy);
    }
    const char *path = kset.broker_file;
    double deadline = mono_ms_f() + BOOTSTRAP_WAIT_MS;
    int logged = 0;
    for (;;) {
        char *b = read_trimmed(path);
        if (b) return b;
        if (mono_ms_f() >= deadline) break;
        if (!logged) {
            log_info("waiting for %s (is devbroker running? or set KAFKA_BOOTSTRAP)", path);
            logged = 1;
        }
        clock_sleep_ms(100);
    }
    text_printf(err, errlen,
                "no Kafka bootstrap: KAFKA_BOOTSTRAP is unset and %s did not appear within %d s",
                path, BOOTSTRAP_WAIT_MS / 1000);
    return NULL;
}

/* ------------------------------------------------------------ common conf */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    log_level l;
    if (level <= 3)
        l = LOG_ERROR;
    else if (level == 4)
        l = LOG_WARN;
    else if (level <= 6)
        l = LOG_INFO;
    else
        l = LOG_DEBUG;
    log_write(l, NULL, "rdkafka %s %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

/* --------------------------------------------------------------- security
 *
 * librdkafka's security settings from the environment, for every client
 * (kafka.h, kafka_conf_security). A bad or inconsistent combination is an
 * error that names the variable, so a service never falls back to an
 * unauthenticated connection it was not meant to make. The password is
 * never part of a message or a log line. */

static const char *env_nonempty(const char *name) { return setting_str(name, NULL); }

/* The password from KAFKA_SASL_PASSWORD or the file KAFKA_SASL_PASSWORD_FILE
 * (docker secrets; one trailing newline ignored), into out. */
static int sasl_password(char *out, size_t outlen, char *err, size_t errlen) {
    const char *inline_pw = env_nonempty("KAFKA_SASL_PASSWORD");
    const char *file = env_nonempty("KAFKA_SASL_PASSWORD_FILE");
    if (inline_pw && file) {
        text_printf(err, errlen,
                    "KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set: "
                    "set one");
        return -1;
    }
    if (!inline_pw && !file) {
        text_printf(err, errlen,
                    "KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) is required "
                    "with KAFKA_SECURITY_PROTOCOL=sasl_*");
        return -1;
    }
    if (inline_pw) {
        if (strlen(inline_pw) >= outlen) {
            text_printf(err, errlen, "KAFKA_SASL_PASSWORD is longer than %zu bytes", outlen - 1);
            return -1;
        }
        memcpy(out, inline_pw, strlen(inline_pw) + 1);
        return 0;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        text_printf(err, errlen, "KAFKA_SASL_PASSWORD_FILE=%s: %s", file, strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, outlen - 1, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    out[n] = '\0';
    if (more) {
        text_printf(err, errlen, "KAFKA_SASL_PASSWORD_FILE=%s: longer than %zu bytes", file,
                    outlen - 1);
        return -1;
    }
    if (n > 0 && out[n - 1] == '\n') out[--n] = '\0';
    if (n > 0 && out[n - 1] == '\r') out[--n] = '\0';
    if (n == 0 || strlen(out) != n) {
        text_printf(err, errlen, "KAFKA_SASL_PASSWORD_FILE=%s: empty or not text", file);
        return -1;
    }
    return 0;
}

/* A readable file named by `var`, set as librdkafka's `prop`. */
static int conf_file(rd_kafka_conf_t *conf, const char *var, const char *prop, char *err,
                     size_t errlen) {
    const char *path = env_nonempty(var);
    if (!path) return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        text_printf(err, errlen, "%s=%s: %s", var, path, strerror(errno));
        return -1;
    }
    fclose(f);
    char e[256];
    if (rd_kafka_conf_set(conf, prop, path, e, sizeof e) != RD_KAFKA_CONF_OK) {
        text_printf(err, errlen, "%s=%s: %s", var, path, e);
        return -1;
    }
    return 0;
}

static atomic_int security_logged;

int kafka_conf_security(rd_kafka_conf_t *conf, char *err, size_t errlen) {
    static const char *const protocols[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};
    static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    const char *proto_env = env_nonempty("KAFKA_SECURITY_PROTOCOL");
    const char *proto = "plaintext";
    if (proto_env) {
        proto = NULL;
        for (size_t i = 0; i < sizeof protocols / sizeof *protocols; i++)
            if (strcasecmp(proto_env, protocols[i]) == 0) proto = protocols[i];
        if (!proto) {
            text_printf(err, errlen,
                        "KAFKA_SECURITY_PROTOCOL=%s: not one of plaintext, ssl, sasl_plaintext, "
                        "sasl_ssl",
                        proto_env);
            return -1;
        }
    }
    int sasl = strncmp(proto, "sasl_", 5) == 0;
    int ssl = strcmp(proto, "ssl") == 0 || strcmp(proto, "sasl_ssl") == 0;
    /* A setting the protocol would ignore is a mistake, not a default. */
    static const char *const sasl_vars[] = {"KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
                                            "KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD_FILE"};
    static const char *const ssl_vars[] = {
        "KAFKA_SSL_CA_LOCATION", "KAFKA_SSL_CERTIFICATE_LOCATION", "KAFKA_SSL_KEY_LOCATION"};
    for (size_t i = 0; !sasl && i < sizeof sasl_vars / sizeof *sasl_vars; i++)
        if (env_nonempty(sasl_vars[i])) {
            text_printf(err, errlen, "%s is set but KAFKA_SECURITY_PROTOCOL=%s uses no SASL",
                        sasl_vars[i], proto);
            return -1;
        }
    for (size_t i = 0; !ssl && i < sizeof ssl_vars / sizeof *ssl_vars; i++)
        if (env_nonempty(ssl_vars[i])) {
            text_printf(err, errlen, "%s is set but KAFKA_SECURITY_PROTOCOL=%s uses no TLS",
                        ssl_vars[i], proto);
            return -1;
        }
    if (conf_set(conf, "security.protocol", proto, err, errlen)) return -1;

    const char *mech = NULL, *user = NULL;
    if (sasl) {
        const char *mech_env = env_nonempty("KAFKA_SASL_MECHANISM");
        if (!mech_env) {
            text_printf(err, errlen,
                        "KAFKA_SASL_MECHANISM is required with "
                        "KAFKA_SECURITY_PROTOCOL=%s (SCRAM-SHA-512, SCRAM-SHA-256 "
                        "or PLAIN)",
                        proto);
            return -1;
        }
        for (size_t i = 0; i < sizeof mechanisms / sizeof *mechanisms; i++)
            if (strcasecmp(mech_env, mechanisms[i]) == 0) mech = mechanisms[i];
        if (!mech) {
            text_printf(err, errlen,
                        "KAFKA_SASL_MECHANISM=%s: not one of SCRAM-SHA-512, SCRAM-SHA-256, PLAIN",
                        mech_env);
            return -1;
        }
        user = env_nonempty("KAFKA_SASL_USERNAME");
        if (!user) {
            text_printf(err, errlen,
                        "KAFKA_SASL_USERNAME is required with "
                        "KAFKA_SECURITY_PROTOCOL=%s",
                        proto);
            return -1;
        }
        char pw[1024];
        if (sasl_password(pw, sizeof pw, err, errlen)) return -1;
        char e[256];
        int bad = rd_kafka_conf_set(conf, "sasl.password", pw, e, sizeof e) != RD_KAFKA_CONF_OK;
        explicit_bzero(pw, sizeof pw);
        if (bad) {
            text_printf(err, errlen, "KAFKA_SASL_PASSWORD: refused by librdkafka: %s", e);
            return -1;
        }
        if (conf_set(conf, "sasl.mechanisms", mech, err, errlen) ||
            conf_set(conf, "sasl.username", user, err, errlen))
            return -1;
    }
    if (ssl) {
        int cert = env_nonempty("KAFKA_SSL_CERTIFICATE_LOCATION") != NULL;
        int key = env_nonempty("KAFKA_SSL_KEY_LOCATION") != NULL;
        if (cert != key) {
            text_printf(err, errlen, "%s is set without %s (mTLS needs both)",
                        cert ? "KAFKA_SSL_CERTIFICATE_LOCATION" : "KAFKA_SSL_KEY_LOCATION",
                        cert ? "KAFKA_SSL_KEY_LOCATION" : "KAFKA_SSL_CERTIFICATE_LOCATION");
            return -1;
        }
        if (conf_file(conf, "KAFKA_SSL_CA_LOCATION", "ssl.ca.location", err, errlen) ||
            conf_file(conf, "KAFKA_SSL_CERTIFICATE_LOCATION", "ssl.certificate.location", err,
                      errlen) ||
            conf_file(conf, "KAFKA_SSL_KEY_LOCATION", "ssl.key.location", err, errlen))
            return -1;
    }
    if (atomic_exchange(&security_logged, 1) == 0) {
        if (sasl)
            log_info("kafka: security.protocol=%s, SASL %s as %s", proto, mech, user);
        else
            log_info("kafka: security.protocol=%s%s", proto,
                     ssl && env_nonempty("KAFKA_SSL_CERTIFICATE_LOCATION") ? " (mTLS)" : "");
        kset_load();
        const char *profile = kset.profile;
        if (!sasl && !env_nonempty("KAFKA_SSL_CERTIFICATE_LOCATION") && profile &&
            strcmp(profile, "production") == 0)
            log_warn("kafka: unauthenticated connections (KAFKA_SECURITY_PROTOCOL=%s) in the "
                     "production profile: whoever reaches the broker can write commands and "
                     "read subscribers' events; set KAFKA_SECURITY_PROTOCOL=sasl_ssl",
                     proto);
    }
    return 0;
}

/* consumer: also set consumer-only properties (a producer warns about them). */
static int conf_common(rd_kafka_conf_t *conf, const char *client_id, int consumer, char *err,
                       size_t errlen) {
    char *bootstrap = kafka_bootstrap(err, errlen);
    if (!bootstrap) return -1;
    int rc = conf_set(conf, "bootstrap.servers", bootstrap, err, errlen);
    free(bootstrap);
    if (rc) return -1;
    if (kafka_conf_security(conf, err, errlen)) return -1;
    if (client_id && *client_id && conf_set(conf, "client.id", client_id, err, errlen)) return -1;
    if (conf_set(conf, "socket.nagle.disable", "true", err, errlen)) return -1;
    /* Keys map to partitions as in the Java client (murmur2), so events an
     * operator publishes with any Kafka client land on the same partition
     * number as Millom's own messages about that subscriber, and the
     * consumer that owns the subscriber's state sees all of them. */
    if (!consumer && conf_set(conf, "partitioner", "murmur2_random", err, errlen)) return -1;
    if (consumer && conf_set_long(conf, "fetch.wait.max.ms", kset.fetch_wait_ms, err, errlen))
        return -1;
    const char *debug = kset.debug;
    if (debug && *debug && conf_set(conf, "debug", debug, err, errlen)) return -1;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    pthread_once(&metrics_once, metrics_init); /* error_cb's metric and limit */
    rd_kafka_conf_set_error_cb(conf, error_cb);
    return 0;
}

int kafka_conf_common(rd_kafka_conf_t *conf, const char *client_id, char *err, size_t errlen) {
    return conf_common(conf, client_id, 1, err, errlen);
}

int kafka_conf_background(rd_kafka_conf_t *conf, char *err, size_t errlen) {
    pthread_once(&kset_once, kset_read);
    return conf_set_long(conf, "fetch.wait.max.ms", kset.background_wait_ms, err, errlen);
}

/* --------------------------------------------------------------- producer */

struct kafka_producer {
    rd_kafka_t *rk;
    pthread_t thread;
    atomic_int stop;
    atomic_long failures;
    pthread_mutex_t mu;        /* guards topics */
    rd_kafka_topic_t **topics; /* topics whose metadata was fetched */
    size_t n_topics, cap_topics;
};

struct delivery {
    kafka_delivery_fn fn;
    void *arg;
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    kafka_producer *p = opaque;
    if (m->err) {
        atomic_fetch_add(&p->failures, 1);
        metric_add(m_produce_errors, 1);
        log_warn("kafka delivery to %s [%d] failed: %s", m->rkt ? rd_kafka_topic_name(m->rkt) : "?",
                 (int)m->partition, rd_kafka_err2str(m->err));
    } else {
        metric_add(m_produced, 1);
        /* librdkafka stamps every message when produce() enqueues it, so
         * every produce path (with or without a callback, dead letters
         * too) is measured without a per-message allocation here. */
        int64_t us = rd_kafka_message_latency(m);
        if (us >= 0) metric_observe_ms(m_produce_seconds, (double)us / 1000.0);
    }
    struct delivery *d = m->_private;
    if (d) {
        d->fn(d->arg, m->err);
        free(d);
    }
}

static void *producer_thread(void *arg) {
    service_thread_name("kafka-producer");
    kafka_producer *p = arg;
    double last_probe_ms = 0;
    while (!atomic_load(&p->stop)) {
        rd_kafka_poll(p->rk, 100);
        health_check(p->rk, &last_probe_ms);
    }
    return NULL;
}

kafka_producer *kafka_producer_new(const char *client_id, int background, char *err,
                                   size_t errlen) {
    pthread_once(&metrics_once, metrics_init);
    kafka_producer *p = calloc(1, sizeof *p);
    if (!p) {
        text_printf(err, errlen, "out of memory");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_common(conf, client_id, 0, err, errlen) ||
        conf_set(conf, "enable.idempotence", "true", err, errlen) ||
        conf_set(conf, "acks", "all", err, errlen) ||
        /* 1 ms, not 0: with idempotence at most 5 requests are in flight per
         * broker, so sending every message alone caps throughput at a few
         * thousand per second; waiting 1 ms to batch quadrupled the read
         * path's req/s on devbroker and cut its p50 from ~45 to ~8 ms.
         * A background producer waits 5 ms (librdkafka's own default):
         * each request, its wake-ups and its delivery reports then carry
         * several times more messages (purchase-executor's CPU per
         * purchase -20..30%), for a few ms nobody interactive waits on. */
        conf_set_long(conf, "linger.ms", background ? kset.background_linger_ms : kset.linger_ms,
                      err, errlen)) {
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, p);
    char e[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!p->rk) {
        text_printf(err, errlen, "kafka producer: %s", e);
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    int rc = pthread_create(&p->thread, NULL, producer_thread, p);
    if (rc) {
        text_printf(err, errlen, "kafka producer thread: %s", strerror(rc));
        pthread_mutex_destroy(&p->mu);
        rd_kafka_destroy(p->rk);
        free(p);
        return NULL;
    }
    return p;
}

/* librdkafka 2.0.2 asks for the metadata of a topic that rd_kafka_producev
 * meets for the first time only on its next 1 s timer tick, so the first
 * message to each topic waited up to a second. rd_kafka_topic_new() starts
 * that query at once (without blocking), so create a handle per topic on
 * first use and keep it for the producer's lifetime. */
static void warm_topic(kafka_producer *p, const char *topic) {
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_topics; i++) {
        if (strcmp(rd_kafka_topic_name(p->topics[i]), topic) == 0) {
            pthread_mutex_unlock(&p->mu);
            return;
        }
    }
    if (p->n_topics == p->cap_topics) {
        size_t cap = p->cap_topics ? p->cap_topics * 2 : 16;
        rd_kafka_topic_t **t = realloc(p->topics, cap * sizeof *t);
        if (!t) {
            pthread_mutex_unlock(&p->mu);
            return;
        }
        p->topics = t;
        p->cap_topics = cap;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topic, NULL);
    if (!rkt) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->topics[p->n_topics++] = rkt;
    pthread_mutex_unlock(&p->mu);
}

/* hdrs with the calling thread's request id (correlator.h) as header
 * x-correlator, unless there is none or hdrs has one already; made when
 * NULL. Every message produced on behalf of a request thus carries its id
 * without its producer knowing. */
static rd_kafka_headers_t *with_correlator(rd_kafka_headers_t *hdrs) {
    const char *id = correlator_current();
    if (!*id) return hdrs;
    const void *v;
    size_t n;
    if (!hdrs)
        hdrs = rd_kafka_headers_new(1);
    else if (rd_kafka_header_get_last(hdrs, CORRELATOR_HEADER, &v, &n) ==
             RD_KAFKA_RESP_ERR_NO_ERROR)
        return hdrs;
    rd_kafka_header_add(hdrs, CORRELATOR_HEADER, -1, id, -1);
    return hdrs;
}

int kafka_take_correlator(const rd_kafka_message_t *msg, int fresh_if_none) {
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_message_headers(msg, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h &&
        rd_kafka_header_get_last(h, CORRELATOR_HEADER, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        correlator_valid(v, n)) {
        correlator_set_n(v, n);
        return 1;
    }
    if (!fresh_if_none) {
        correlator_clear();
        return 0;
    }
    char fresh[CORRELATOR_SIZE];
    correlator_new(fresh);
    correlator_set(fresh);
    return 0;
}

/* Produces with a headers object (owned here until librdkafka takes it). */
static int produce_raw(kafka_producer *p, const char *topic, int32_t partition, const void *key,
                       size_t key_len, const void *value, size_t value_len,
                       rd_kafka_headers_t *hdrs, void *opaque) {
    warm_topic(p, topic);
    hdrs = with_correlator(hdrs);
    double deadline = mono_ms_f() + QUEUE_FULL_RETRY_MS;
    for (;;) {
        rd_kafka_resp_err_t e;
        if (hdrs) {
            e = rd_kafka_producev(
                p->rk, RD_KAFKA_V_TOPIC(topic),
                RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_HEADERS(hdrs),
                RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        } else {
            e = rd_kafka_producev(
                p->rk, RD_KAFKA_V_TOPIC(topic),
                RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_OPAQUE(opaque),
                RD_KAFKA_V_END);
        }
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0; /* headers now owned by the message */
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && mono_ms_f() < deadline) {
            /* The producer thread serves delivery reports; give it a moment. */
            clock_sleep_ms(5);
            continue;
        }
        if (hdrs) rd_kafka_headers_destroy(hdrs);
        atomic_fetch_add(&p->failures, 1);
        metric_add(m_produce_errors, 1);
        log_warn("kafka produce to %s failed: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
}

int kafka_produce(kafka_producer *p, const char *topic, int32_t partition, const void *key,
                  size_t key_len, const void *value, size_t value_len, const kafka_header *headers,
                  size_t n_headers) {
    rd_kafka_headers_t *hdrs = NULL;
    if (n_headers > 0) {
        hdrs = rd_kafka_headers_new(n_headers);
        for (size_t i = 0; i < n_headers; i++)
            rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                headers[i].value ? -1 : 0);
    }
    return produce_raw(p, topic, partition, key, key_len, value, value_len, hdrs, NULL);
}

int kafka_produce_headers_cb(kafka_producer *p, const char *topic, int32_t partition,
                             const void *key, size_t key_len, const void *value, size_t value_len,
                             rd_kafka_headers_t *headers, kafka_delivery_fn on_delivery,
                             void *arg) {
    struct delivery *d = NULL;
    if (on_delivery) {
        d = malloc(sizeof *d);
        if (!d) {
            if (headers) rd_kafka_headers_destroy(headers);
            return -1;
        }
        d->fn = on_delivery;
        d->arg = arg;
    }
    int rc = produce_raw(p, topic, partition, key, key_len, value, value_len, headers, d);
    if (rc) free(d);
    return rc;
}

int kafka_produce_cb(kafka_producer *p, const char *topic, int32_t partition, const void *key,
                     size_t key_len, const void *value, size_t value_len,
                     kafka_delivery_fn on_delivery, void *arg) {
    return kafka_produce_headers_cb(p, topic, partition, key, key_len, value, value_len, NULL,
                                    on_delivery, arg);
}

int kafka_producer_flush(kafka_producer *p, int timeout_ms) {
    return rd_kafka_flush(p->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

rd_kafka_t *kafka_producer_handle(kafka_producer *p) { return p->rk; }

void kafka_producer_free(kafka_producer *p) {
    if (!p) return;
    if (rd_kafka_flush(p->rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_warn("kafka producer: %d message(s) not delivered after 10 s, dropping them",
                 rd_kafka_outq_len(p->rk));
        /* Purged messages get a delivery report with an error, so every
         * on_delivery callback still runs exactly once. */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(p->rk, 1000);
    }
    atomic_store(&p->stop, 1);
    pthread_join(p->thread, NULL);
    rd_kafka_poll(p->rk, 0);
    for (size_t i = 0; i < p->n_topics; i++) rd_kafka_topic_destroy(p->topics[i]);
    free(p->topics);
    pthread_mutex_destroy(&p->mu);
    rd_kafka_destroy(p->rk);
    free(p);
}

/* ------------------------------------------------------------ dead letter */

static int dead_letter(kafka_producer *p, const rd_kafka_message_t *msg, const char *error,
                       metric *counter) {
    const char *topic = rd_kafka_topic_name(msg->rkt);
    char dlq[512], part[16], off[32];
    snprintf(dlq, sizeof dlq, "%s" TOPIC_DLQ_SUFFIX, topic);
    snprintf(part, sizeof part, "%d", (int)msg->partition);
    snprintf(off, sizeof off, "%lld", (long long)msg->offset);
    if (!error || !*error) error = "unspecified";

    rd_kafka_headers_t *orig = NULL, *hdrs;
    if (rd_kafka_message_headers(msg, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
        hdrs = rd_kafka_headers_copy(orig);
    else
        hdrs = rd_kafka_headers_new(4);
    rd_kafka_header_add(hdrs, "error", -1, error, -1);
    rd_kafka_header_add(hdrs, "source.topic", -1, topic, -1);
    rd_kafka_header_add(hdrs, "source.partition", -1, part, -1);
    rd_kafka_header_add(hdrs, "source.offset", -1, off, -1);

    int rc = produce_raw(p, dlq, RD_KAFKA_PARTITION_UA, msg->key, msg->key_len, msg->payload,
                         msg->len, hdrs, NULL);
    if (rc == 0) {
        metric_add(counter, 1);
        log_warn("dead-lettered %s [%d] @%lld to %s: %s", topic, (int)msg->partition,
                 (long long)msg->offset, dlq, error);
    }
    return rc;
}

int kafka_dead_letter(kafka_producer *p, const rd_kafka_message_t *msg, const char *error) {
    pthread_once(&metrics_once, metrics_init);
    return dead_letter(p, msg, error,
                       topic_counter(DLQ_NAME, DLQ_HELP, rd_kafka_topic_name(msg->rkt)));
}

/* --------------------------------------------------------------- consumer */

struct topic_metrics {
    char *topic;
    metric *consumed;
    metric *dlq;
};

struct kafka_consumer {
    rd_kafka_t *rk;
    kafka_handler_fn handler;
    void *handler_arg;
    void (*on_assign)(void *arg, const rd_kafka_topic_partition_list_t *parts);
    void (*on_revoke)(void *arg, const rd_kafka_topic_partition_list_t *parts);
    int (*before_commit)(void *arg);
    int (*batch_begin)(void *arg);
    int (*batch_commit)(void *arg);
    void (*batch_rollback)(void *arg);
    kafka_producer *dlq;
    int poll_timeout_ms;
    /* Batch mode: the messages collected for the next batch (owned). */
    rd_kafka_message_t **batch;
    size_t batch_len, batch_max;
    long batch_wait_ms;
    long backoff_ms; /* the next retry's pause; reset by a success */
    struct topic_metrics *tm;
    size_t n_topics;
    atomic_int stop;
    atomic_int ready;         /* holds an assignment (kafka_consumer_ready) */
    atomic_llong assigned_at; /* mono_ms of the last assignment */
    long session_ms;          /* MILLOM_KAFKA_SESSION_TIMEOUT_MS */
    pthread_t thread;
    int has_thread;
    int uncommitted; /* offsets stored since the last commit */
    int64_t last_commit_ms;
    long commit_interval_ms; /* MILLOM_KAFKA_COMMIT_INTERVAL_MS */
    double last_lag_ms;      /* last kafka_lag_sample (mono_ms_f) */
    /* Lanes mode (section "lanes" below): the handler's argument outside
     * lanes (handler_arg, or lane_arg(handler_arg, 0)), and the lanes. */
    void *call_arg;
    struct lanes *ln; /* NULL: no lanes */
};

static void batch_handle(kafka_consumer *c);
/* Lanes (below), as far as the rebalance callback, commits and the
 * consumer's life need them. */
static int lanes_new(kafka_consumer *c, const kafka_consumer_opts *o);
static void lanes_revoke(kafka_consumer *c, const rd_kafka_topic_partition_list_t *parts);
static void lanes_forget(kafka_consumer *c, const rd_kafka_topic_partition_list_t *parts);
static void lanes_commit(kafka_consumer *c, int force, int async, int insist);
static void lanes_free(kafka_consumer *c);

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    kafka_consumer *c = opaque;
    /* A batch being collected when the group rebalances is handled now,
     * while its partitions are still this consumer's (the callback runs
     * in the polling thread, between two polls of the collection). */
    if (c->batch_len) batch_handle(c);
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_info("kafka consumer %s: assigned %d partition(s)", rd_kafka_name(rk), parts->cnt);
        if (c->on_assign) c->on_assign(c->handler_arg, parts);
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                log_error("kafka incremental assign: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
            if (e) log_error("kafka assign: %s", rd_kafka_err2str(e));
        }
        atomic_store(&c->assigned_at, (long long)mono_ms());
        atomic_store(&c->ready, 1);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        log_info("kafka consumer %s: revoked %d partition(s)", rd_kafka_name(rk), parts->cnt);
        /* Eager rebalancing takes every partition away until the next
         * assignment, and a lost assignment (session timed out) is gone:
         * not ready until assigned again. */
        if (!cooperative || rd_kafka_assignment_lost(rk)) atomic_store(&c->ready, 0);
        /* Lanes: drop what was queued for these partitions, let the
         * running ones finish. */
        if (c->ln) lanes_revoke(c, parts);
        /* What was handled must be committed before another member takes
         * the partitions over. The callback runs in the polling thread, so
         * no handler is running now. */
        if (c->on_revoke) c->on_revoke(c->handler_arg, parts);
        if (c->uncommitted && (!c->before_commit || c->before_commit(c->handler_arg) == 0)) {
            rd_kafka_commit(rk, NULL, 0);
            c->uncommitted = 0;
        }
        if (c->ln) {
            lanes_commit(c, 1, 0, 0);
            lanes_forget(c, parts);
        }
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e) rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
    } else {
        log_error("kafka rebalance error: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    (void)opaque;
    (void)offsets;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warn("kafka consumer %s: offset commit failed: %s", rd_kafka_name(rk),
                 rd_kafka_err2str(err));
}

static void consumer_destroy_fields(kafka_consumer *c) {
    lanes_free(c);
    for (size_t i = 0; i < c->n_topics; i++) free(c->tm[i].topic);
    for (size_t i = 0; i < c->batch_len; i++) rd_kafka_message_destroy(c->batch[i]);
    free(c->batch);
    free(c->tm);
    free(c);
}

kafka_consumer *kafka_consumer_new(const kafka_consumer_opts *o, char *err, size_t errlen) {
    pthread_once(&metrics_once, metrics_init);
    if (!o || !o->group_id || !*o->group_id || !o->topics || !o->topics[0] || !o->handler) {
        text_printf(err, errlen, "kafka consumer: group_id, topics and handler are required");
        return NULL;
    }
    if (!o->dlq) {
        text_printf(err, errlen, "kafka consumer: a dead-letter producer is required");
        return NULL;
    }
    kafka_consumer *c = calloc(1, sizeof *c);
    if (!c) {
        text_printf(err, errlen, "out of memory");
        return NULL;
    }
    c->handler = o->handler;
    c->handler_arg = o->handler_arg;
    c->call_arg = o->handler_arg;
    c->on_assign = o->on_assign;
    c->on_revoke = o->on_revoke;
    c->before_commit = o->before_commit;
    c->batch_begin = o->batch_begin;
    c->batch_commit = o->batch_commit;
    c->batch_rollback = o->batch_rollback;
    c->backoff_ms = RETRY_BACKOFF_MIN_MS;
    c->dlq = o->dlq;
    c->poll_timeout_ms = o->poll_timeout_ms > 0 ? o->poll_timeout_ms : 100;
    while (o->topics[c->n_topics]) c->n_topics++;
    c->tm = calloc(c->n_topics, sizeof *c->tm);
    if (!c->tm) {
        free(c);
        text_printf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < c->n_topics; i++) {
        c->tm[i].topic = strdup(o->topics[i]);
        c->tm[i].consumed = topic_counter(CONSUMED_NAME, CONSUMED_HELP, o->topics[i]);
        c->tm[i].dlq = topic_counter(DLQ_NAME, DLQ_HELP, o->topics[i]);
    }

    /* librdkafka's default is 45 s. devbroker's mock group coordinator
     * (2.0.2) holds a group that its last member left in "Joining" for
     * session.timeout.ms - 1 s, so a restarted service would wait that long
     * for its partitions; 10 s keeps restarts quick and is valid on real
     * Kafka (group.min.session.timeout.ms is 6 s there). */
    kset_load();
    c->commit_interval_ms = kset.commit_interval_ms;
    if (c->batch_begin && c->batch_commit && c->batch_rollback) {
        c->batch_max = (size_t)kset.batch_max;
        c->batch_wait_ms = kset.batch_wait_ms;
        c->batch = calloc(c->batch_max, sizeof *c->batch);
        if (!c->batch) {
            consumer_destroy_fields(c);
            text_printf(err, errlen, "out of memory");
            return NULL;
        }
    }
    if (lanes_new(c, o) != 0) {
        text_printf(err, errlen,
                    o->lanes > 1 && c->batch ? "kafka consumer: lanes and batches "
                                               "cannot be combined"
                                             : "out of memory");
        consumer_destroy_fields(c);
        return NULL;
    }
    long session_ms = kset.session_timeout_ms;
    c->session_ms = session_ms;
    const char *reset = kset.offset_reset;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (kafka_conf_common(conf, o->client_id ? o->client_id : o->group_id, err, errlen) ||
        conf_set(conf, "group.id", o->group_id, err, errlen) ||
        conf_set(conf, "enable.auto.commit", "false", err, errlen) ||
        conf_set(conf, "enable.auto.offset.store", "false", err, errlen) ||
        conf_set(conf, "auto.offset.reset", reset, err, errlen) ||
        conf_set(conf, "enable.partition.eof", "false", err, errlen) ||
        conf_set_long(conf, "session.timeout.ms", session_ms, err, errlen) ||
        conf_set_long(conf, "heartbeat.interval.ms", session_ms / 3 > 0 ? session_ms / 3 : 1, err,
                      errlen) ||
        (o->background && kafka_conf_background(conf, err, errlen))) {
        rd_kafka_conf_destroy(conf);
        consumer_destroy_fields(c);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
    rd_kafka_conf_set_opaque(conf, c);
    char e[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!c->rk) {
        text_printf(err, errlen, "kafka consumer: %s", e);
        rd_kafka_conf_destroy(conf);
        consumer_destroy_fields(c);
        return NULL;
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)c->n_topics);
    for (size_t i = 0; i < c->n_topics; i++)
        rd_kafka_topic_partition_list_add(subs, o->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (se) {
        text_printf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(se));
        rd_kafka_destroy(c->rk);
        consumer_destroy_fields(c);
        return NULL;
    }
    return c;
}

static struct topic_metrics *metrics_for(kafka_consumer *c, const char *topic) {
    for (size_t i = 0; i < c->n_topics; i++)
        if (strcmp(c->tm[i].topic, topic) == 0) return &c->tm[i];
    return NULL;
}

/* Marks a message done: its offset is stored now (only ever after the
 * handler finished, so after its SQLite commit) and committed to the
 * broker with the next batch, at most every MILLOM_KAFKA_COMMIT_INTERVAL_MS
 * (default 100; 0 commits every message). One commit request per message
 * would cost the broker more than the messages themselves; a crash in
 * between redelivers at most that interval's messages, which idempotent
 * handlers absorb. */
static void commit(kafka_consumer *c, const rd_kafka_message_t *m) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset + 1;
    rd_kafka_offsets_store(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    c->uncommitted = 1;
}

/* Commits the stored offsets if the interval passed (or `force`). */
static void commit_stored(kafka_consumer *c, int force) {
    if (c->ln) {
        lanes_commit(c, force, 1, 0);
        return;
    }
    if (!c->uncommitted) return;
    double now = mono_ms_f();
    if (!force && now - (double)c->last_commit_ms < (double)c->commit_interval_ms) return;
    if (c->before_commit && c->before_commit(c->handler_arg) != 0) return; /* next round */
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, 1);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) log_warn("kafka commit: %s", rd_kafka_err2str(e));
    c->uncommitted = 0;
    c->last_commit_ms = (int64_t)now;
}

static void seek_back(kafka_consumer *c, const rd_kafka_message_t *m) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 5000);
    if (e) {
        log_warn("kafka seek %s [%d] to %lld: %s", rd_kafka_topic_name(m->rkt), (int)m->partition,
                 (long long)m->offset, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (l->elems[0].err) {
        log_warn("kafka seek %s [%d] to %lld: %s", rd_kafka_topic_name(m->rkt), (int)m->partition,
                 (long long)m->offset, rd_kafka_err2str(l->elems[0].err));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static int should_stop(const kafka_consumer *c) {
    return atomic_load(&c->stop) || service_stopping();
}

/* Sleeps `ms`, waking early when asked to stop or when *abandon (if
 * given: a lane giving up its message) is set. */
static void backoff_sleep(kafka_consumer *c, long ms, const atomic_int *abandon) {
    while (ms > 0 && !should_stop(c) && !(abandon && atomic_load(abandon))) {
        long step = ms < 50 ? ms : 50;
        clock_sleep_ms(step);
        ms -= step;
    }
}

/* Sends a message the handler rejected to its DLQ. 0 when it is safely
 * there (the offset may be stored), -1 when it has to be retried. */
static int reject(kafka_consumer *c, const rd_kafka_message_t *m, const char *err) {
    const char *topic = rd_kafka_topic_name(m->rkt);
    struct topic_metrics *tm = metrics_for(c, topic);
    const char *why = err[0] ? err : "handler rejected the message";
    metric *counter = tm ? tm->dlq : topic_counter(DLQ_NAME, DLQ_HELP, topic);
    kafka_take_correlator(m, 0); /* the log lines below name the message's request */
    int rc = dead_letter(c->dlq, m, why, counter);
    correlator_clear();
    if (rc == 0) return 0;
    log_warn("kafka consumer: dead-lettering %s [%d] @%lld failed, will retry", topic,
             (int)m->partition, (long long)m->offset);
    return -1;
}

/* The handler on m with its argument (a lane's own, or call_arg), timed. */
static kafka_verdict call_handler(kafka_consumer *c, void *arg, const rd_kafka_message_t *m,
                                  char *err, size_t errlen) {
    double t0 = mono_ms_f();
    /* The handler works on behalf of the message's request: its log lines
     * and the messages it produces carry the message's x-correlator (a
     * fresh one for a message without: the first Millom service to handle
     * an operator's own event names it). */
    kafka_take_correlator(m, 1);
    kafka_verdict v = c->handler(arg, m, err, errlen);
    correlator_clear();
    metric_observe_ms(m_handler_seconds, mono_ms_f() - t0);
    return v;
}

/* The pause after a retry of `ms`: doubled, up to RETRY_BACKOFF_MAX_MS. */
static long next_backoff(long ms) {
    return ms * 2 > RETRY_BACKOFF_MAX_MS ? RETRY_BACKOFF_MAX_MS : ms * 2;
}

/* One message on its own: the handler, then its offset, the DLQ, or a
 * pause and a seek back to it (the messages behind it wait: order per
 * partition). 0 when it is done with, -1 when it will come again. */
static int handle_one(kafka_consumer *c, rd_kafka_message_t *m) {
    char err[512] = "";
    kafka_verdict v = call_handler(c, c->call_arg, m, err, sizeof err);
    int retry = 0;
    if (v == KAFKA_DONE) {
        commit(c, m);
    } else if (v == KAFKA_DEAD_LETTER) {
        if (reject(c, m, err) == 0)
            commit(c, m);
        else
            retry = 1;
    } else {
        retry = 1;
    }
    if (!retry) {
        c->backoff_ms = RETRY_BACKOFF_MIN_MS;
        return 0;
    }
    log_info("kafka consumer: retrying %s [%d] @%lld in %ld ms%s%s", rd_kafka_topic_name(m->rkt),
             (int)m->partition, (long long)m->offset, c->backoff_ms, err[0] ? ": " : "", err);
    seek_back(c, m);
    backoff_sleep(c, c->backoff_ms, NULL);
    c->backoff_ms = next_backoff(c->backoff_ms);
    return -1;
}

static void batch_release(kafka_consumer *c) {
    for (size_t i = 0; i < c->batch_len; i++) rd_kafka_message_destroy(c->batch[i]);
    c->batch_len = 0;
}

/* The collected batch in one transaction: batch_begin, the handler for
 * each message in order, batch_commit, then every offset. When a handler
 * answers anything but KAFKA_DONE, or the transaction cannot begin or
 * commit, the whole batch is rolled back and handled again message by
 * message, each in its own transaction as without batches: a poison
 * message goes to the DLQ alone and its neighbours are not lost. After a
 * retried message the rest of the batch is dropped here; the seek back
 * brings it again, in order. */
static void batch_handle(kafka_consumer *c) {
    size_t n = c->batch_len;
    if (!n) return;
    int whole = n > 1 && c->batch_begin(c->handler_arg) == 0;
    if (whole) {
        for (size_t i = 0; i < n && whole; i++) {
            char err[512] = "";
            if (call_handler(c, c->call_arg, c->batch[i], err, sizeof err) != KAFKA_DONE) {
                c->batch_rollback(c->handler_arg);
                whole = 0;
            }
        }
        if (whole && c->batch_commit(c->handler_arg) != 0) whole = 0;
        if (whole) {
            for (size_t i = 0; i < n; i++) commit(c, c->batch[i]);
            metric_add(m_batches, 1);
            metric_add(m_batch_messages, (double)n);
            c->backoff_ms = RETRY_BACKOFF_MIN_MS;
            batch_release(c);
            return;
        }
        metric_add(m_batch_fallbacks, 1);
    }
    for (size_t i = 0; i < n; i++) {
        if (handle_one(c, c->batch[i]) == 0) continue;
        /* batch[i] will come again (handle_one sought its partition back);
         * so must what the batch holds of other partitions after it: each
         * of those partitions goes back to its first message left here. */
        for (size_t j = i + 1; j < n; j++) {
            int seen = 0;
            for (size_t k = i; k < j && !seen; k++)
                seen = c->batch[k]->partition == c->batch[j]->partition &&
                       strcmp(rd_kafka_topic_name(c->batch[k]->rkt),
                              rd_kafka_topic_name(c->batch[j]->rkt)) == 0;
            if (!seen) seek_back(c, c->batch[j]);
        }
        break;
    }
    batch_release(c);
}

/* A polled message: 1 and counted when it is one to handle; 0 when it was
 * an error event (logged and destroyed). */
static int accept_message(kafka_consumer *c, rd_kafka_message_t *m) {
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("kafka consumer %s: %s", rd_kafka_name(c->rk), rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return 0;
    }
    struct topic_metrics *tm = metrics_for(c, rd_kafka_topic_name(m->rkt));
    if (tm) metric_add(tm->consumed, 1);
    return 1;
}

/* Collects a batch behind its first message: what is already fetched, or
 * arrives within MILLOM_BATCH_WAIT_MS, up to MILLOM_BATCH_MAX. */
static void batch_collect(kafka_consumer *c, rd_kafka_message_t *first) {
    c->batch[c->batch_len++] = first;
    double deadline = mono_ms_f() + (double)c->batch_wait_ms;
    while (c->batch_len && c->batch_len < c->batch_max && !should_stop(c)) {
        double left = deadline - mono_ms_f();
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, left > 0 ? (int)left + 1 : 0);
        if (!m) {
            if (left <= 0) break;
            continue;
        }
        if (!accept_message(c, m)) continue;
        c->batch[c->batch_len++] = m;
    }
}

/* ------------------------------------------------------------------ lanes
 *
 * kafka_consumer_opts.lanes > 1: the polling thread hands each message to
 * lane hash(key) % lanes (no key: hash of topic and partition); each lane
 * is a thread with a bounded queue that handles its messages in order, so
 * one key's messages keep their order and different keys run at once.
 *
 * Offsets: every message handed out is tracked in its partition's list of
 * unfinished offsets (ascending: a partition's messages arrive in order).
 * A finished message is marked done; the partition's commit point moves
 * past the leading done ones, so it never passes a message that has not
 * finished. Commits take a snapshot of those points first, then
 * before_commit, then commit exactly the snapshot: a message a lane
 * finishes meanwhile waits for the next round (its changelog records may
 * not be delivered yet).
 *
 * A revoke (and a stop) drops the queued messages of the partitions going
 * away (never finished, so their offsets are never committed: the next
 * owner gets them), makes a lane that is backing off before retrying one
 * of them give up, and waits until no lane runs one. */

#define LANE_QUEUE 64    /* messages queued per lane */
#define LANE_WAIT_MS 100 /* the polling thread's wait for room, between stop checks */

struct lane {
    kafka_consumer *c;
    int idx;
    void *arg; /* the handler's argument */
    pthread_t thread;
    int started;
    pthread_cond_t wake;               /* a message was queued, or quit */
    rd_kafka_message_t *q[LANE_QUEUE]; /* ring, owned */
    size_t head, n;
    const rd_kafka_message_t *current; /* being handled (outside the lock) */
    atomic_int abandon;                /* give up retrying current */
    long backoff_ms;
};

struct part_track {
    char *topic;
    int32_t partition;
    int64_t *off; /* handed out, not all finished: ascending */
    unsigned char *done;
    size_t n, cap;
    int64_t upto; /* the offset to commit (all before it finished); -1: none */
};

struct lanes {
    pthread_mutex_t mu;  /* everything below and the lanes' queues */
    pthread_cond_t room; /* a queue has room */
    pthread_cond_t idle; /* a lane finished (or gave up) a message */
    struct lane *lane;
    int n;
    struct part_track *pt;
    size_t n_pt, cap_pt;
    int dirty;  /* a commit point moved since the last commit */
    int broken; /* out of memory tracking: commit nothing more */
    int quit;
    double last_commit_ms;
};

static void cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(cv, mu, &ts);
}

static uint32_t fnv1a(const void *p, size_t n, uint32_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

static int lane_for(const struct lanes *L, const rd_kafka_message_t *m) {
    uint32_t h = 2166136261u;
    if (m->key && m->key_len) {
        h = fnv1a(m->key, m->key_len, h);
    } else {
        const char *t = rd_kafka_topic_name(m->rkt);
        int32_t part = m->partition;
        h = fnv1a(t, strlen(t), h);
        h = fnv1a(&part, sizeof part, h);
    }
    return (int)(h % (uint32_t)L->n);
}

static int in_parts(const rd_kafka_topic_partition_list_t *parts, const char *topic,
                    int32_t partition) {
    for (int i = 0; parts && i < parts->cnt; i++)
        if (parts->elems[i].partition == partition && strcmp(parts->elems[i].topic, topic) == 0)
            return 1;
    return 0;
}

static int msg_in_parts(const rd_kafka_topic_partition_list_t *parts, const rd_kafka_message_t *m) {
    return in_parts(parts, rd_kafka_topic_name(m->rkt), m->partition);
}

/* Under L->mu. */
static struct part_track *track_find(struct lanes *L, const char *topic, int32_t partition) {
    for (size_t i = 0; i < L->n_pt; i++)
        if (L->pt[i].partition == partition && strcmp(L->pt[i].topic, topic) == 0) return &L->pt[i];
    return NULL;
}

/* Under L->mu: m is handed out. 0, or -1 out of memory. */
static int track_add(struct lanes *L, const rd_kafka_message_t *m) {
    const char *topic = rd_kafka_topic_name(m->rkt);
    struct part_track *t = track_find(L, topic, m->partition);
    if (!t) {
        if (L->n_pt == L->cap_pt) {
            size_t cap = L->cap_pt ? L->cap_pt * 2 : 8;
            struct part_track *g = realloc(L->pt, cap * sizeof *g);
            if (!g) return -1;
            L->pt = g;
            L->cap_pt = cap;
        }
        t = &L->pt[L->n_pt];
        memset(t, 0, sizeof *t);
        t->topic = strdup(topic);
        if (!t->topic) return -1;
        t->partition = m->partition;
        t->upto = -1;
        L->n_pt++;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        int64_t *o = realloc(t->off, cap * sizeof *o);
        if (!o) return -1;
        t->off = o;
        unsigned char *d = realloc(t->done, cap);
        if (!d) return -1;
        t->done = d;
        t->cap = cap;
    }
    size_t i = t->n; /* nearly always the end: offsets arrive in order */
    while (i > 0 && t->off[i - 1] > m->offset) i--;
    memmove(t->off + i + 1, t->off + i, (t->n - i) * sizeof *t->off);
    memmove(t->done + i + 1, t->done + i, t->n - i);
    t->off[i] = m->offset;
    t->done[i] = 0;
    t->n++;
    return 0;
}

/* Under L->mu: m finished (its offset may be committed once every earlier
 * one did). */
static void track_finish(struct lanes *L, const rd_kafka_message_t *m) {
    struct part_track *t = track_find(L, rd_kafka_topic_name(m->rkt), m->partition);
    if (!t) return; /* forgotten: revoked meanwhile */
    size_t lo = 0, hi = t->n;
    while (lo < hi) { /* the first entry >= m->offset */
        size_t mid = (lo + hi) / 2;
        if (t->off[mid] < m->offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    while (lo < t->n && t->off[lo] == m->offset && t->done[lo]) lo++; /* a duplicate */
    if (lo == t->n || t->off[lo] != m->offset) return;
    t->done[lo] = 1;
    size_t k = 0;
    while (k < t->n && t->done[k]) k++;
    if (!k) return;
    t->upto = t->off[k - 1] + 1;
    memmove(t->off, t->off + k, (t->n - k) * sizeof *t->off);
    memmove(t->done, t->done + k, t->n - k);
    t->n -= k;
    L->dirty = 1;
}

/* One message in its lane, retried there until done with: 1 when it is
 * (handled, or safely in its DLQ), 0 when the lane gave up on it (stop,
 * or its partition was revoked). */
static int lane_handle(kafka_consumer *c, struct lane *l, const rd_kafka_message_t *m) {
    for (;;) {
        char err[512] = "";
        kafka_verdict v = call_handler(c, l->arg, m, err, sizeof err);
        if (v == KAFKA_DONE || (v == KAFKA_DEAD_LETTER && reject(c, m, err) == 0)) {
            l->backoff_ms = RETRY_BACKOFF_MIN_MS;
            return 1;
        }
        if (should_stop(c) || atomic_load(&l->abandon)) return 0;
        log_info("kafka consumer: lane %d retrying %s [%d] @%lld in %ld ms%s%s", l->idx,
                 rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset,
                 l->backoff_ms, err[0] ? ": " : "", err);
        backoff_sleep(c, l->backoff_ms, &l->abandon);
        l->backoff_ms = next_backoff(l->backoff_ms);
        if (should_stop(c) || atomic_load(&l->abandon)) return 0;
    }
}

static void *lane_main(void *arg) {
    struct lane *l = arg;
    kafka_consumer *c = l->c;
    struct lanes *L = c->ln;
    service_thread_name("lane-%d", (int)(l - L->lane));
    pthread_mutex_lock(&L->mu);
    for (;;) {
        /* Stopping: nothing new starts (a message behind one given up on
         * would break its key's order); lanes_stop drops the queue. */
        while ((!l->n || should_stop(c)) && !L->quit) {
            if (!l->n) {
                pthread_cond_wait(&l->wake, &L->mu);
                continue;
            }
            cond_wait_ms(&l->wake, &L->mu, LANE_WAIT_MS);
        }
        if (L->quit) break;
        rd_kafka_message_t *m = l->q[l->head];
        l->head = (l->head + 1) % LANE_QUEUE;
        l->n--;
        l->current = m;
        atomic_store(&l->abandon, 0);
        pthread_cond_broadcast(&L->room);
        pthread_mutex_unlock(&L->mu);
        int done = lane_handle(c, l, m);
        pthread_mutex_lock(&L->mu);
        if (done) track_finish(L, m);
        l->current = NULL;
        pthread_cond_broadcast(&L->idle);
        pthread_mutex_unlock(&L->mu);
        rd_kafka_message_destroy(m);
        pthread_mutex_lock(&L->mu);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

static int lanes_new(kafka_consumer *c, const kafka_consumer_opts *o) {
    if (o->lanes <= 1) {
        if (o->lane_arg) c->call_arg = o->lane_arg(o->handler_arg, 0);
        return 0;
    }
    if (c->batch) return -1;
    struct lanes *L = calloc(1, sizeof *L);
    if (!L) return -1;
    L->lane = calloc((size_t)o->lanes, sizeof *L->lane);
    if (!L->lane) {
        free(L);
        return -1;
    }
    L->n = o->lanes;
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->room, NULL);
    pthread_cond_init(&L->idle, NULL);
    for (int i = 0; i < L->n; i++) {
        struct lane *l = &L->lane[i];
        l->c = c;
        l->idx = i;
        l->arg = o->lane_arg ? o->lane_arg(o->handler_arg, i) : o->handler_arg;
        l->backoff_ms = RETRY_BACKOFF_MIN_MS;
        pthread_cond_init(&l->wake, NULL);
    }
    c->ln = L;
    return 0;
}

static void lanes_stop(kafka_consumer *c);

static int lanes_start(kafka_consumer *c) {
    struct lanes *L = c->ln;
    for (int i = 0; i < L->n; i++) {
        int rc = pthread_create(&L->lane[i].thread, NULL, lane_main, &L->lane[i]);
        if (rc) {
            log_error("kafka consumer lane thread: %s", strerror(rc));
            lanes_stop(c);
            return -1;
        }
        L->lane[i].started = 1;
    }
    log_info("kafka consumer %s: %d lanes", rd_kafka_name(c->rk), L->n);
    return 0;
}

/* Drops the queued messages that `drop` selects (NULL: all). Under L->mu. */
static void lanes_drop_queued(struct lanes *L, const rd_kafka_topic_partition_list_t *drop) {
    for (int i = 0; i < L->n; i++) {
        struct lane *l = &L->lane[i];
        size_t kept = 0;
        for (size_t k = 0; k < l->n; k++) {
            rd_kafka_message_t *m = l->q[(l->head + k) % LANE_QUEUE];
            if (!drop || msg_in_parts(drop, m))
                rd_kafka_message_destroy(m);
            else
                l->q[(l->head + kept++) % LANE_QUEUE] = m;
        }
        l->n = kept;
    }
    pthread_cond_broadcast(&L->room);
}

/* The polling thread: queues m in its lane, waiting while that is full.
 * Stopping meanwhile drops m (not handed out: never committed). */
static void lanes_dispatch(kafka_consumer *c, rd_kafka_message_t *m) {
    struct lanes *L = c->ln;
    struct lane *l = &L->lane[lane_for(L, m)];
    pthread_mutex_lock(&L->mu);
    while (l->n == LANE_QUEUE && !should_stop(c)) {
        cond_wait_ms(&L->room, &L->mu, LANE_WAIT_MS);
    }
    if (l->n == LANE_QUEUE) {
        pthread_mutex_unlock(&L->mu);
        rd_kafka_message_destroy(m);
        return;
    }
    if (track_add(L, m) != 0) {
        /* Its offset cannot be held back, so none may be committed any
         * more: stop; the next owner starts from the last commit. */
        L->broken = 1;
        pthread_mutex_unlock(&L->mu);
        log_error("kafka consumer %s: out of memory tracking offsets; stopping",
                  rd_kafka_name(c->rk));
        rd_kafka_message_destroy(m);
        service_request_stop();
        return;
    }
    l->q[(l->head + l->n) % LANE_QUEUE] = m;
    l->n++;
    pthread_mutex_unlock(&L->mu);
    /* After unlocking: a lane woken under L->mu would only block again on
     * it. The lane waits only with an empty queue, under L->mu, so the
     * message is seen whether it waits yet or not. */
    pthread_cond_signal(&l->wake);
}

static int lane_runs_one_of(const struct lanes *L, const rd_kafka_topic_partition_list_t *parts) {
    for (int i = 0; i < L->n; i++)
        if (L->lane[i].current && (!parts || msg_in_parts(parts, L->lane[i].current))) return 1;
    return 0;
}

/* In the rebalance callback (polling thread), before on_revoke. */
static void lanes_revoke(kafka_consumer *c, const rd_kafka_topic_partition_list_t *parts) {
    struct lanes *L = c->ln;
    pthread_mutex_lock(&L->mu);
    lanes_drop_queued(L, parts);
    for (int i = 0; i < L->n; i++)
        if (L->lane[i].current && msg_in_parts(parts, L->lane[i].current))
            atomic_store(&L->lane[i].abandon, 1);
    while (lane_runs_one_of(L, parts)) pthread_cond_wait(&L->idle, &L->mu);
    pthread_mutex_unlock(&L->mu);
}

/* After the revoke's commit: the partitions' tracking goes (a message of
 * theirs still arriving, or a later assignment, starts afresh). */
static void lanes_forget(kafka_consumer *c, const rd_kafka_topic_partition_list_t *parts) {
    struct lanes *L = c->ln;
    pthread_mutex_lock(&L->mu);
    for (size_t i = 0; i < L->n_pt;) {
        struct part_track *t = &L->pt[i];
        if (!in_parts(parts, t->topic, t->partition)) {
            i++;
            continue;
        }
        free(t->topic);
        free(t->off);
        free(t->done);
        L->pt[i] = L->pt[--L->n_pt];
    }
    pthread_mutex_unlock(&L->mu);
}

/* Commits a snapshot of the commit points (when one moved, and the
 * interval passed or `force`), after before_commit agreed (or `insist`:
 * the final commit). */
static void lanes_commit(kafka_consumer *c, int force, int async, int insist) {
    struct lanes *L = c->ln;
    pthread_mutex_lock(&L->mu);
    double now = mono_ms_f();
    if (L->broken || !L->dirty ||
        (!force && now - L->last_commit_ms < (double)c->commit_interval_ms)) {
        pthread_mutex_unlock(&L->mu);
        return;
    }
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(L->n_pt ? (int)L->n_pt : 1);
    for (size_t i = 0; i < L->n_pt; i++)
        if (L->pt[i].upto >= 0)
            rd_kafka_topic_partition_list_add(l, L->pt[i].topic, L->pt[i].partition)->offset =
                L->pt[i].upto;
    L->dirty = 0;
    L->last_commit_ms = now;
    pthread_mutex_unlock(&L->mu);
    int go = l->cnt > 0;
    if (go && c->before_commit && c->before_commit(c->handler_arg) != 0) {
        if (insist) {
            log_warn("kafka consumer %s: committing although before_commit refused",
                     rd_kafka_name(c->rk));
        } else {
            go = 0;
            pthread_mutex_lock(&L->mu);
            L->dirty = 1; /* next round */
            pthread_mutex_unlock(&L->mu);
        }
    }
    if (go) {
        rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, l, async);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            log_warn("kafka consumer %s: commit: %s", rd_kafka_name(c->rk), rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* At the end of kafka_consumer_run: queued messages dropped, running ones
 * finish (a lane backing off gives up), threads joined. */
static void lanes_stop(kafka_consumer *c) {
    struct lanes *L = c->ln;
    pthread_mutex_lock(&L->mu);
    L->quit = 1;
    lanes_drop_queued(L, NULL);
    for (int i = 0; i < L->n; i++) {
        if (L->lane[i].current) atomic_store(&L->lane[i].abandon, 1);
        pthread_cond_signal(&L->lane[i].wake);
    }
    pthread_mutex_unlock(&L->mu);
    for (int i = 0; i < L->n; i++) {
        if (L->lane[i].started) pthread_join(L->lane[i].thread, NULL);
        L->lane[i].started = 0;
    }
}

static void lanes_free(kafka_consumer *c) {
    struct lanes *L = c->ln;
    if (!L) return;
    lanes_drop_queued(L, NULL);
    for (int i = 0; i < L->n; i++) pthread_cond_destroy(&L->lane[i].wake);
    for (size_t i = 0; i < L->n_pt; i++) {
        free(L->pt[i].topic);
        free(L->pt[i].off);
        free(L->pt[i].done);
    }
    free(L->pt);
    free(L->lane);
    pthread_cond_destroy(&L->room);
    pthread_cond_destroy(&L->idle);
    pthread_mutex_destroy(&L->mu);
    free(L);
    c->ln = NULL;
}

/* ------------------------------------------------------------- the loop */

int kafka_consumer_run(kafka_consumer *c) {
    if (c->ln && lanes_start(c) != 0) return -1;
    while (!should_stop(c)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, c->poll_timeout_ms);
        commit_stored(c, 0);
        double now_ms = mono_ms_f();
        if (now_ms - c->last_lag_ms >= 1000.0) { /* lag gauges, once a second */
            c->last_lag_ms = now_ms;
            kafka_lag_sample(c->rk);
        }
        if (!m) continue;
        if (!accept_message(c, m)) continue;
        if (c->batch) {
            batch_collect(c, m);
            batch_handle(c);
        } else if (c->ln) {
            lanes_dispatch(c, m);
        } else {
            handle_one(c, m);
            rd_kafka_message_destroy(m);
        }
    }
    /* Stopped while collecting: those messages were not handled and their
     * offsets not stored; the next owner gets them. */
    batch_release(c);
    if (c->ln) lanes_stop(c);
    return 0;
}

static void *consumer_thread(void *arg) {
    service_thread_name("kafka-consumer");
    kafka_consumer_run(arg);
    return NULL;
}

int kafka_consumer_start(kafka_consumer *c) {
    if (c->has_thread) return -1;
    int rc = pthread_create(&c->thread, NULL, consumer_thread, c);
    if (rc) {
        log_error("kafka consumer thread: %s", strerror(rc));
        return -1;
    }
    c->has_thread = 1;
    return 0;
}

void kafka_consumer_stop(kafka_consumer *c) {
    if (c) atomic_store(&c->stop, 1);
}

int kafka_consumer_ready(const kafka_consumer *c) {
    if (!c || !atomic_load(&c->ready)) return 0;
    /* After a broker outage the assignment held from before is confirmed
     * only by a new one (the group was rebuilt: a restarted broker, or a
     * session that timed out) or by a whole session timeout passing
     * without it being lost (the membership survived). Until then a
     * consumer that still believes in its old partitions is not ready:
     * requests sent to it would wait out the rebalance. */
    long long back = atomic_load(&brokers_back_at);
    return back == 0 || atomic_load(&c->assigned_at) >= back ||
           (long long)mono_ms() - back >= c->session_ms;
}

void kafka_consumer_free(kafka_consumer *c) {
    if (!c) return;
    kafka_consumer_stop(c);
    if (c->has_thread) pthread_join(c->thread, NULL);
    /* Synchronously commit what the handlers finished (async commits may
     * still be in flight). Nothing new is the common case. */
    rd_kafka_resp_err_t e;
    if (c->ln) {
        lanes_commit(c, 1, 0, 1);
    } else {
        if (c->before_commit && c->before_commit(c->handler_arg) != 0)
            log_warn("kafka consumer %s: committing although before_commit refused",
                     rd_kafka_name(c->rk));
        e = rd_kafka_commit(c->rk, NULL, 0);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            log_warn("kafka consumer %s: final commit: %s", rd_kafka_name(c->rk),
                     rd_kafka_err2str(e));
    }
    e = rd_kafka_consumer_close(c->rk);
    if (e) log_warn("kafka consumer close: %s", rd_kafka_err2str(e));
    rd_kafka_destroy(c->rk);
    consumer_destroy_fields(c);
}
