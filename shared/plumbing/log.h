/* JSON-lines logging on stderr: one object per line with ts, level,
 * service, msg and, for a line about a request, its request id in
 * "correlator". Thread-safe. */
#ifndef MILLOM_LOG_H
#define MILLOM_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Names the service in every line; reads MILLOM_LOG_LEVEL (debug|info|warn|error). */
void log_init(const char *service);
/* correlator: the request id for the line's "correlator" field; NULL takes
 * the calling thread's current one (shared/plumbing/correlator.h), which is
 * how every log_info/log_warn call inside a request's handler, a consumed
 * message's handler or a job carries its request's id without passing it
 * along. "" writes the line without one. */
void log_write(log_level level, const char *correlator, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_write(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, 0, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, 0, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, 0, __VA_ARGS__)

/* Masks an MSISDN for info-level logs: "924542610003" -> "9245****0003". */
const char *log_mask_msisdn(const char *msisdn, char *buf, unsigned buflen);

#endif
