/* JSON-lines logging. Each line is built with jansson (so messages are
 * escaped correctly) and written with one fwrite under a lock, so lines
 * from different threads never interleave. */
#include "shared/plumbing/settings.h"
#include "shared/plumbing/log.h"
#include "shared/plumbing/correlator.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *log_service = "millom";
static log_level log_min = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"debug", "info", "warn", "error"};

static pthread_once_t level_once = PTHREAD_ONCE_INIT;

/* Through shared/plumbing/settings.h; a bad level exits 1 (on stderr directly:
 * the log is not ready yet). */
static void read_level(void) {
    static const char *const names[] = {"debug", "info", "warn", "error", NULL};
    settings_reader s = SETTINGS_INIT;
    log_min = (log_level)settings_enum(&s, "MILLOM_LOG_LEVEL", names, LOG_INFO);
    if (!settings_ok(&s)) {
        fprintf(stderr, "bad setting: %s\n", settings_error(&s));
        exit(1);
    }
}

void log_init(const char *service) {
    log_service = service;
    pthread_once(&level_once, read_level);
}

void log_write(log_level level, const char *correlator, const char *fmt, ...) {
    pthread_once(&level_once, read_level); /* for programs that never call log_init */
    if (level < log_min) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(when));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "service", json_string(log_service));
    /* json_stringn_nocheck would keep invalid UTF-8; replace it instead. */
    json_t *m = json_string(msg);
    json_object_set_new(line, "msg", m ? m : json_string("(message not UTF-8)"));
    if (!correlator) correlator = correlator_current();
    if (*correlator) json_object_set_new(line, "correlator", json_string(correlator));
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text) return;
    size_t len = strlen(text);
    text[len] = '\n';
    pthread_mutex_lock(&log_lock);
    fwrite(text, 1, len + 1, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
    text[len] = '\0';
    free(text);
}

const char *log_mask_msisdn(const char *msisdn, char *buf, unsigned buflen) {
    size_t n = msisdn ? strlen(msisdn) : 0;
    if (buflen == 0) return "";
    if (n < 8) {
        snprintf(buf, buflen, "****");
        return buf;
    }
    snprintf(buf, buflen, "%.4s****%s", msisdn, msisdn + n - 4);
    return buf;
}
